//! The CLI a new user expects, against a real server: no panic on a closed pipe, `--json` from
//! every command, versions / aliases / async config / custom-runtime settings, help with
//! defaults, a default data dir and token discovery from any directory, `pattern test` on
//! envelopes and trigger configs, `logs --follow` across a restart, and errors that say what to do.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Runs the CLI against `s`, finding the token through FNBRIDGE_DATA_DIR like a user would.
fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("FNBRIDGE_ENDPOINT", &s.base)
        .env("FNBRIDGE_DATA_DIR", &s.data)
        .env_remove("FNBRIDGE_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI and parses its standard output as one JSON document.
fn cli_json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (rc, out, err) = cli(s, &a);
    assert_eq!(rc, 0, "{args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's output, delivered as they are written.
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; `None` when the stream ends or `timeout` passes.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

fn write_zip(path: &Path, files: &[(&str, &str)]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data.as_bytes()).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    ok_json(s.deploy(
        "f",
        &[(
            "index.py",
            "def handler(e, c):\n    print('hi')\n    return 'x'\n",
        )],
        json!({}),
    ));
    ok_json(s.cdn_trigger("f", "t", "LogFileCreated", &["example.com"]));
    let r = s
        .req(Method::POST, "/2023-03-30/functions/f/invocations")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "x");
    let ev = repo().join("examples/events/LogFileCreated.json");
    let commands: &[&[&str]] = &[
        &["function", "list"],
        &["function", "list", "--json"],
        &["function", "get", "f"],
        &["function", "invoke", "f"],
        &["trigger", "list", "f"],
        &["tasks", "list"],
        &["dlq", "list", "--json"],
        &["logs", "f"],
        &["events", "put", ev.to_str().unwrap()],
        &[
            "pattern",
            "test",
            "--pattern",
            r#"{"a":["x"]}"#,
            "--event",
            r#"{"a":"x"}"#,
        ],
    ];
    for args in commands {
        // The reader is gone before the command writes anything: every write is EPIPE, as for
        // `fnbridge function list | head -0`, and the same once `head -1` has its line.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .args(*args)
            .env("FNBRIDGE_ENDPOINT", &s.base)
            .env("FNBRIDGE_DATA_DIR", &s.data)
            .env_remove("FNBRIDGE_TOKEN")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn every_command_prints_json_and_versions_aliases_async_config_work() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let code = repo().join("examples/cdn-sample");
    let code = code.to_str().unwrap();
    let ev = repo().join("examples/events/LogFileCreated.json");
    let ev = ev.to_str().unwrap();
    let cfg = format!(
        "@{}",
        repo()
            .join("examples/cdn-sample/trigger-LogFileCreated.json")
            .display()
    );

    let f = cli_json(&s, &["function", "create", "cdn", "--code", code]);
    assert_eq!(f["functionName"], "cdn");
    cli_json(&s, &["function", "create", "sink", "--code", code]);
    assert_eq!(
        cli_json(&s, &["function", "get", "cdn"])["runtime"],
        "python3.10"
    );
    assert_eq!(
        cli_json(&s, &["function", "list"])["functions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let inv = cli_json(
        &s,
        &["function", "invoke", "cdn", "--payload-file", ev, "--log"],
    );
    assert!(
        inv["payload"]
            .as_str()
            .unwrap()
            .starts_with("eventName:LogFileCreated"),
        "{inv}"
    );
    assert!(
        inv["log"].as_str().unwrap().contains("FC Invoke Start"),
        "{inv}"
    );
    assert!(inv["errorType"].is_null(), "{inv}");
    let queued = cli_json(
        &s,
        &["function", "invoke", "cdn", "--payload-file", ev, "--async"],
    );
    let task = queued["taskId"].as_str().unwrap().to_string();
    assert!(!task.is_empty(), "{queued}");
    let t = cli_json(
        &s,
        &["function", "test", "cdn", "--event-name", "CdnDomainAdded"],
    );
    assert!(
        t["payload"].as_str().unwrap().contains("CdnDomainAdded"),
        "{t}"
    );
    let l = cli_json(&s, &["function", "test", "cdn", "--list"]);
    assert!(
        l["templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "LogFileCreated")
    );

    // Versions and aliases.
    let v1 = cli_json(&s, &["version", "publish", "cdn", "--description", "first"]);
    assert_eq!(v1["versionId"], "1");
    cli_json(
        &s,
        &["function", "update", "cdn", "--description", "second"],
    );
    assert_eq!(
        cli_json(&s, &["version", "publish", "cdn"])["versionId"],
        "2"
    );
    let vs = cli_json(&s, &["version", "list", "cdn"]);
    assert_eq!(vs["versions"].as_array().unwrap().len(), 2, "{vs}");
    let a = cli_json(
        &s,
        &[
            "alias",
            "create",
            "cdn",
            "prod",
            "--version",
            "1",
            "--weight",
            "2=0.1",
        ],
    );
    assert_eq!(a["versionId"], "1");
    assert_eq!(a["additionalVersionWeight"], json!({"2": 0.1}));
    let a = cli_json(
        &s,
        &[
            "alias",
            "update",
            "cdn",
            "prod",
            "--version",
            "2",
            "--clear-weights",
        ],
    );
    assert_eq!(a["versionId"], "2");
    assert_eq!(a["additionalVersionWeight"], json!({}));
    assert_eq!(
        cli_json(&s, &["alias", "get", "cdn", "prod"])["versionId"],
        "2"
    );
    assert_eq!(
        cli_json(&s, &["alias", "list", "cdn"])["aliases"][0]["aliasName"],
        "prod"
    );
    let (rc, out, _) = cli(&s, &["alias", "list", "cdn"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("NAME") && out.contains("prod"), "{out}");

    // Async config.
    let sink_arn = cli_json(&s, &["function", "get", "sink"])["functionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let c = cli_json(
        &s,
        &[
            "async-config",
            "put",
            "cdn",
            "--max-retries",
            "0",
            "--max-age-s",
            "60",
            "--on-failure",
            &sink_arn,
        ],
    );
    assert_eq!(c["maxAsyncRetryAttempts"], 0, "{c}");
    let c = cli_json(&s, &["async-config", "get", "cdn"]);
    assert_eq!(c["maxAsyncEventAgeInSeconds"], 60, "{c}");
    assert_eq!(
        c["destinationConfig"]["onFailure"]["destination"],
        sink_arn.as_str()
    );
    let c = cli_json(&s, &["async-config", "put", "cdn", "--qualifier", "prod"]);
    assert_eq!(c["maxAsyncRetryAttempts"], 3, "{c}");
    assert_eq!(c["qualifier"], "prod", "{c}");

    // Triggers, events, tasks, dead letters, logs.
    let tr = cli_json(
        &s,
        &[
            "trigger",
            "create",
            "cdn",
            "logs",
            "--type",
            "cdn_events",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(tr["triggerName"], "logs");
    cli_json(
        &s,
        &["trigger", "update", "cdn", "logs", "--description", "d"],
    );
    assert_eq!(
        cli_json(&s, &["trigger", "get", "cdn", "logs"])["description"],
        "d"
    );
    cli_json(&s, &["trigger", "list", "cdn"]);
    let put = cli_json(&s, &["events", "put", ev]);
    assert_eq!(
        put["events"][0]["taskIds"].as_array().unwrap().len(),
        1,
        "{put}"
    );
    let got = cli_json(&s, &["tasks", "get", "cdn", &task]);
    assert_eq!(got["taskId"], task.as_str());
    cli_json(&s, &["tasks", "list", "--function", "cdn"]);
    cli_json(&s, &["dlq", "list"]);
    let (rc, out, err) = cli(&s, &["logs", "cdn", "--json"]);
    assert_eq!(rc, 0, "{err}");
    assert!(!out.is_empty());
    for line in out.lines() {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(r["text"].is_string(), "{r}");
    }
    let p = cli_json(
        &s,
        &[
            "pattern",
            "test",
            "--pattern",
            r#"{"a":["x"]}"#,
            "--event",
            r#"{"a":"x"}"#,
        ],
    );
    assert_eq!(p["matched"], 1);

    // Deletes answer JSON too.
    assert_eq!(
        cli_json(&s, &["async-config", "delete", "cdn"])["deleted"],
        true
    );
    assert_eq!(
        cli_json(
            &s,
            &["async-config", "delete", "cdn", "--qualifier", "prod"]
        )["deleted"],
        true
    );
    cli_json(&s, &["trigger", "delete", "cdn", "logs"]);
    cli_json(&s, &["alias", "delete", "cdn", "prod"]);
    let d = cli_json(&s, &["version", "delete", "cdn", "1"]);
    assert_eq!(d["versionId"], "1");
    assert_eq!(
        cli_json(&s, &["function", "delete", "sink"])["functionName"],
        "sink"
    );
}

const CUSTOM_SERVER: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        out = ("custom:%s" % body.decode()).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

HTTPServer(("127.0.0.1", int(os.environ["FC_CUSTOM_LISTEN_PORT"])), H).serve_forever()
"#;

#[test]
fn custom_runtime_settings_and_zip_code_via_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let zip = dir.path().join("app.zip");
    write_zip(&zip, &[("server.py", CUSTOM_SERVER)]);
    let f = cli_json(
        &s,
        &[
            "function",
            "create",
            "web",
            "--code",
            zip.to_str().unwrap(),
            "--runtime",
            "custom.debian12",
            "--command",
            "python3",
            "--args",
            "server.py",
            "--port",
            "9000",
            "--instance-concurrency",
            "4",
        ],
    );
    assert_eq!(
        f["customRuntimeConfig"],
        json!({"command": ["python3"], "args": ["server.py"], "port": 9000}),
        "{f}"
    );
    assert_eq!(f["instanceConcurrency"], 4);
    let (rc, out, err) = cli(&s, &["function", "invoke", "web", "--payload", "hi"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out.trim(), "custom:hi");
    // One setting changed; the others stay.
    let f = cli_json(&s, &["function", "update", "web", "--port", "9001"]);
    assert_eq!(
        f["customRuntimeConfig"],
        json!({"command": ["python3"], "args": ["server.py"], "port": 9001}),
        "{f}"
    );
    // A Python function from a zip file, and a file that is no zip.
    let py = dir.path().join("py.zip");
    write_zip(&py, &[("index.py", &example("cdn-sample/index.py"))]);
    let f = cli_json(
        &s,
        &["function", "create", "py", "--code", py.to_str().unwrap()],
    );
    assert_eq!(f["functionName"], "py");
    let ev = repo().join("examples/events/LogFileCreated.json");
    let (rc, out, err) = cli(
        &s,
        &[
            "function",
            "invoke",
            "py",
            "--payload-file",
            ev.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(out.starts_with("eventName:LogFileCreated"), "{out}");
    let not_zip = dir.path().join("index.py");
    std::fs::write(&not_zip, "x").unwrap();
    let (rc, _, err) = cli(
        &s,
        &[
            "function",
            "create",
            "bad",
            "--code",
            not_zip.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 2);
    assert!(err.contains("not a directory or a zip file"), "{err}");
}

#[test]
fn help_lists_defaults_and_keeps_server_flags_on_serve() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let serve = help(&["serve"]);
    for needle in [
        "--retry-base-ms <RETRY_BASE_MS>",
        "[default: 1000]",
        "[default: 256]",
        "[default: 127.0.0.1:9000]",
        "--data-dir",
    ] {
        assert!(
            serve.contains(needle),
            "serve --help lacks {needle}: {serve}"
        );
    }
    for client_only in ["--endpoint", "--token", "--json"] {
        assert!(
            !serve.contains(client_only),
            "serve --help shows {client_only}: {serve}"
        );
    }
    for args in [
        &["function", "list"][..],
        &["tasks", "list"],
        &["logs"],
        &["alias", "create"],
    ] {
        let h = help(args);
        for server_only in ["--python", "--retry-base-ms", "--max-in-flight", "--listen"] {
            assert!(
                !h.contains(server_only),
                "{args:?} --help shows {server_only}: {h}"
            );
        }
        assert!(
            h.contains("[default: http://127.0.0.1:9000]"),
            "{args:?}: {h}"
        );
        assert!(h.contains("--json"), "{args:?}: {h}");
    }
    let tasks = help(&["tasks", "list"]);
    assert!(
        tasks.contains("Most tasks to show [default: 20]"),
        "{tasks}"
    );
    let create = help(&["function", "create"]);
    assert!(create.contains("<NAME>  Function name"), "{create}");
    assert!(create.contains("[create default: python3.10]"), "{create}");
    let top = help(&[]);
    for c in ["version", "alias", "async-config"] {
        assert!(top.contains(&format!("  {c} ")), "{top}");
    }
}

/// `fnbridge serve` in `cwd` with only `env` to find its data dir; returns it and its endpoint.
fn serve_in(cwd: &Path, env: &[(&str, &Path)]) -> (Killed, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("FNBRIDGE_DATA_DIR")
        .env_remove("XDG_DATA_HOME")
        .env("FNBRIDGE_LOG", "warn")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("fnbridge listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (Killed(child), base)
}

#[test]
fn default_data_dir_and_token_work_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (work1, work2) = (dir.path().join("work1"), dir.path().join("work2"));
    for d in [&home, &work1, &work2] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (_server, base) = serve_in(&work1, &[("HOME", &home)]);
    let data = home.join(".local/share/fnbridge");
    assert!(
        data.join("admin.token").is_file(),
        "no token in {}",
        data.display()
    );
    assert!(
        !work1.join("fnbridge-data").exists(),
        "state created in the cwd"
    );
    let client = |cwd: &Path, env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["function", "list", "--json"])
            .current_dir(cwd)
            .env("FNBRIDGE_ENDPOINT", &base)
            .env_remove("FNBRIDGE_DATA_DIR")
            .env_remove("FNBRIDGE_TOKEN")
            .env_remove("XDG_DATA_HOME")
            .env("HOME", &home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // From another directory, with nothing but HOME: the default data dir's token.
    let (rc, out, err) = client(&work2, &[]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("\"functions\""), "{out}");
    // XDG_DATA_HOME comes before HOME, and the error names the file it looked for.
    let xdg = dir.path().join("xdg");
    let (rc, _, err) = client(&work2, &[("XDG_DATA_HOME", xdg.to_str().unwrap())]);
    assert_eq!(rc, 2);
    assert!(
        err.contains(&xdg.join("fnbridge/admin.token").display().to_string()),
        "{err}"
    );
    // FNBRIDGE_DATA_DIR and --data-dir name the directory; FNBRIDGE_TOKEN wins over files.
    let d = data.to_str().unwrap();
    let x = xdg.to_str().unwrap();
    assert_eq!(
        client(&work2, &[("XDG_DATA_HOME", x), ("FNBRIDGE_DATA_DIR", d)]).0,
        0
    );
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    assert_eq!(
        client(
            &work2,
            &[("XDG_DATA_HOME", x), ("FNBRIDGE_TOKEN", token.trim())]
        )
        .0,
        0
    );
    let mut cmd = Command::new(BIN);
    let out = cmd
        .args(["function", "list", "--data-dir", d])
        .current_dir(&work2)
        .env("FNBRIDGE_ENDPOINT", &base)
        .env_remove("FNBRIDGE_TOKEN")
        .env_remove("FNBRIDGE_DATA_DIR")
        .env("XDG_DATA_HOME", x)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With XDG_DATA_HOME set, the server uses it.
    let (_server2, _) = serve_in(&work1, &[("HOME", &home), ("XDG_DATA_HOME", &xdg)]);
    assert!(xdg.join("fnbridge/admin.token").is_file());
    assert!(!work1.join("fnbridge-data").exists());
}

#[test]
fn pattern_test_takes_envelopes_and_trigger_configs() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["pattern", "test"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cfg = format!(
        "@{}",
        repo()
            .join("examples/cdn-sample/trigger-LogFileCreated.json")
            .display()
    );
    let ev_path = repo().join("examples/events/LogFileCreated.json");
    let ev = ev_path.to_str().unwrap();
    let (rc, out, err) = run(&[
        "--trigger-type",
        "cdn_events",
        "--config",
        &cfg,
        "--event",
        ev,
        "--show",
    ]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        out,
        "{\"eventSource\":[\"cdn\"],\"eventName\":[\"LogFileCreated\"],\"eventVersion\":[\"1.0.0\"],\"resource\":{\"domain\":[\"example.com\"]}}\nevents[0]: match\n"
    );
    // Each event of an envelope is tested on its own.
    let env: Value = serde_json::from_str(&example("events/LogFileCreated.json")).unwrap();
    let one = env["events"][0].clone();
    let mut other = one.clone();
    other["resource"]["domain"] = json!("other.example.org");
    let both = json!({"events": [one, other]}).to_string();
    let (rc, out, _) = run(&[
        "--trigger-type",
        "cdn_events",
        "--config",
        &cfg,
        "--event",
        &both,
    ]);
    assert_eq!(
        (rc, out.as_str()),
        (0, "events[0]: match\nevents[1]: no match\n")
    );
    let none = json!({"events": [other]}).to_string();
    let (rc, out, _) = run(&[
        "--trigger-type",
        "cdn_events",
        "--config",
        &cfg,
        "--event",
        &none,
    ]);
    assert_eq!((rc, out.as_str()), (1, "events[0]: no match\n"));
    // A single event still answers match / no match.
    let (rc, out, _) = run(&[
        "--trigger-type",
        "cdn_events",
        "--config",
        &cfg,
        "--event",
        &one.to_string(),
    ]);
    assert_eq!((rc, out.as_str()), (0, "match\n"));
    // --show alone, and --json.
    let (rc, out, _) = run(&[
        "--trigger-type",
        "oss",
        "--source-arn",
        "acs:oss:cn-hangzhou:1234567890123456:bucket",
        "--config",
        r#"{"events":["oss:ObjectCreated:*"],"filter":{"key":{"prefix":"a/"}}}"#,
        "--show",
    ]);
    assert_eq!(rc, 0);
    assert!(out.contains(r#""bucket":{"name":["bucket"]}"#), "{out}");
    let (rc, out, _) = run(&[
        "--trigger-type",
        "cdn_events",
        "--config",
        &cfg,
        "--event",
        &both,
        "--show",
        "--json",
    ]);
    assert_eq!(rc, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matched"], 1);
    assert_eq!(
        v["results"][1],
        json!({"event": "events[1]", "match": false})
    );
    assert_eq!(v["pattern"]["resource"]["domain"], json!(["example.com"]));
    // A config that cannot match is refused with its reason.
    let (rc, _, err) = run(&[
        "--trigger-type",
        "cdn_events",
        "--event",
        ev,
        "--config",
        r#"{"eventName":"LogFileCreated","eventVersion":"1.0.0","filter":{"domain":["*.example.com"]}}"#,
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("only exact domains match"), "{err}");
    let (rc, _, err) = run(&["--event", ev]);
    assert_eq!(rc, 2, "{err}");
}

#[test]
fn errors_say_what_went_wrong_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    ok_json(s.deploy(
        "f",
        &[("index.py", "def handler(e, c):\n    return 'x'\n")],
        json!({}),
    ));

    let (rc, _, err) = cli(&s, &["tasks", "get", "nosuchfn", "x"]);
    assert_eq!(rc, 2);
    assert!(
        err.contains("FunctionNotFound (404): function 'nosuchfn' does not exist"),
        "{err}"
    );
    let (rc, _, err) = cli(&s, &["tasks", "get", "f", "x"]);
    assert_eq!(rc, 2);
    assert!(err.contains("AsyncTaskNotFound"), "{err}");

    let (rc, _, err) = cli(&s, &["logs", "f", "--request-id", "nosuch"]);
    assert_eq!(rc, 2);
    assert!(err.contains("no log record of request 'nosuch'"), "{err}");

    // One event without its envelope.
    let env: Value = serde_json::from_str(&example("events/LogFileCreated.json")).unwrap();
    let single = dir.path().join("single.json");
    std::fs::write(&single, env["events"][0].to_string()).unwrap();
    let (rc, _, err) = cli(&s, &["events", "put", single.to_str().unwrap()]);
    assert_eq!(rc, 2);
    assert!(
        err.contains("InvalidArgument") && err.contains("wrap it as {\"events\":[EVENT]}"),
        "{err}"
    );

    // traceId is the idempotency key: a number is refused, not replaced.
    let mut bad = env.clone();
    bad["events"][0]["traceId"] = json!(12345);
    expect_error(
        s.post("/events", &bad),
        400,
        "InvalidArgument",
        "events[0].traceId: must be a string",
    );

    // A test event must be JSON.
    let not_json = dir.path().join("bad.json");
    std::fs::write(&not_json, "{\"events\": [").unwrap();
    let (rc, _, err) = cli(
        &s,
        &[
            "function",
            "test",
            "f",
            "--event-name",
            "broken",
            "--payload-file",
            not_json.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 2);
    assert!(
        err.contains("InvalidArgument") && err.contains("not valid JSON"),
        "{err}"
    );
    expect_error(
        s.req(Method::PUT, "/2023-03-30/functions/f/test-events/broken")
            .body("nope")
            .send()
            .unwrap(),
        400,
        "InvalidArgument",
        "not valid JSON",
    );

    // A wildcard domain never matches: refused with the reason.
    let (rc, _, err) = cli(
        &s,
        &[
            "trigger",
            "create",
            "f",
            "t",
            "--type",
            "cdn_events",
            "--config",
            r#"{"eventName":"LogFileCreated","eventVersion":"1.0.0","filter":{"domain":["*.example.com"]}}"#,
        ],
    );
    assert_eq!(rc, 2);
    assert!(
        err.contains(
            "wildcard domain \"*.example.com\" is not supported: only exact domains match"
        ),
        "{err}"
    );
}

#[test]
fn logs_follow_reconnects_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let spawn = |listen: &str| {
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args(["--listen", listen])
            .env("FNBRIDGE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("fnbridge listening on ")
            .unwrap()
            .to_string();
        (Killed(child), base)
    };
    let (server, base) = spawn("127.0.0.1:0");
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let http = reqwest::blocking::Client::new();
    let call = |base: &str, path: &str, body: String| {
        let r = http
            .post(format!("{base}{path}"))
            .bearer_auth(token.trim())
            .body(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    };
    let deploy = json!({
        "functionName": "f", "runtime": "python3.10", "handler": "index.handler", "timeout": 10,
        "code": {"zipFile": zip_b64(&[("index.py", "def handler(e, c):\n    print('hello', e.decode())\n    return 'x'\n")])},
    });
    call(&base, "/2023-03-30/functions", deploy.to_string());
    call(&base, "/2023-03-30/functions/f/invocations", "one".into());

    let mut follow = Command::new(BIN)
        .args(["logs", "f", "--follow"])
        .env("FNBRIDGE_ENDPOINT", &base)
        .env("FNBRIDGE_DATA_DIR", &data)
        .env_remove("FNBRIDGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(follow.stdout.take().unwrap());
    let err = lines(follow.stderr.take().unwrap());
    let _follow = Killed(follow);
    assert!(wait_line(&out, "hello one", Duration::from_secs(30)).is_some());

    drop(server); // SIGKILL
    assert!(
        wait_line(&err, "reconnecting", Duration::from_secs(30)).is_some(),
        "--follow did not notice the server going away, or gave up"
    );
    let port = base.rsplit(':').next().unwrap();
    let (_server, base2) = spawn(&format!("127.0.0.1:{port}"));
    assert_eq!(base2, base);
    call(&base, "/2023-03-30/functions/f/invocations", "two".into());
    assert!(
        wait_line(&out, "hello two", Duration::from_secs(30)).is_some(),
        "--follow did not print the invocation after the restart"
    );
    assert!(wait_line(&err, "reconnected", Duration::from_secs(5)).is_some());
}

#[test]
fn bundled_examples_have_distinct_trace_ids_and_a_failing_function() {
    let mut ids = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(repo().join("examples/events")).unwrap() {
        let path = e.unwrap().path();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for ev in v["events"].as_array().into_iter().flatten() {
            if let Some(id) = ev["traceId"].as_str() {
                assert!(!id.contains('*'), "{}: masked traceId {id}", path.display());
                if let Some(other) = ids.insert(id.to_string(), path.clone()) {
                    panic!(
                        "{} and {} share traceId {id}",
                        other.display(),
                        path.display()
                    );
                }
            }
        }
    }
    assert!(ids.len() >= 8, "{ids:?}");

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let code = repo().join("examples/failing");
    let (rc, out, err) = cli(
        &s,
        &[
            "function",
            "create",
            "failing",
            "--code",
            code.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let cfg = format!(
        "@{}",
        repo()
            .join("examples/cdn-sample/trigger-LogFileCreated.json")
            .display()
    );
    let (rc, _, err) = cli(
        &s,
        &[
            "trigger",
            "create",
            "failing",
            "logs",
            "--type",
            "cdn_events",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(rc, 0, "{err}");
    let ev = repo().join("examples/events/LogFileCreated.json");
    let put = cli_json(&s, &["events", "put", ev.to_str().unwrap()]);
    let task = put["events"][0]["taskIds"][0].as_str().unwrap().to_string();
    let t = s.wait_task("failing", &task, Duration::from_secs(60));
    assert_eq!(t["status"], "Failed", "{t}");
    assert_eq!(t["attempts"], 4, "{t}");
    let dlq = cli_json(&s, &["dlq", "list", "--function", "failing"]);
    let last = dlq["entries"][0]["lastError"].as_str().unwrap_or_default();
    assert!(last.contains("this sample always fails"), "{dlq}");
}
