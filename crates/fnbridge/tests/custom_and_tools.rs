//! Custom runtimes through the API, test events with templates, and function logs via the CLI.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

const SERVER: &str = r#"
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        rid = self.headers.get("x-fc-request-id")
        print("FC Invoke Start RequestId: %s" % rid, flush=True)
        print("custom runtime got %d bytes" % len(body), flush=True)
        if body == b"fail":
            out, status = b'{"errorMessage":"asked to fail","errorType":"CustomError"}', 404
        else:
            out, status = ("custom:%s:%s" % (self.headers.get("x-fc-function-name"), body.decode())).encode(), 200
        print("FC Invoke End RequestId: %s" % rid, flush=True)
        self.send_response(status)
        if status != 200:
            self.send_header("x-fc-status", "404")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

HTTPServer(("127.0.0.1", int(os.environ["FC_CUSTOM_LISTEN_PORT"])), H).serve_forever()
"#;

#[test]
fn custom_runtime_function_through_the_api_and_a_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let body = json!({
        "functionName": "web", "runtime": "custom.debian12", "handler": "index.handler", "timeout": 10,
        "code": {"zipFile": zip_b64(&[("server.py", SERVER)])},
        "customRuntimeConfig": {"command": ["python3"], "args": ["server.py"], "port": 9000},
    });
    let f = ok_json(s.post("/2023-03-30/functions", &body));
    assert_eq!(f["customRuntimeConfig"]["command"], json!(["python3"]));
    let r = s
        .req(Method::POST, "/2023-03-30/functions/web/invocations")
        .header("x-fc-log-type", "Tail")
        .body("hi")
        .send()
        .unwrap();
    assert!(r.headers().get("x-fc-error-type").is_none());
    assert_eq!(r.text().unwrap(), "custom:web:hi");
    let r = s
        .req(Method::POST, "/2023-03-30/functions/web/invocations")
        .body("fail")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-fc-error-type"], "UnhandledInvocationError");
    assert!(r.text().unwrap().contains("asked to fail"));

    ok_json(s.cdn_trigger("web", "logs", "LogFileCreated", &["example.com"]));
    let sample = example("events/LogFileCreated.json");
    let rec = ok_json(s.post_raw("/events", sample.clone()));
    let task = rec["events"][0]["taskIds"][0].as_str().unwrap().to_string();
    let t = s.wait_task("web", &task, Duration::from_secs(60));
    assert_eq!(t["status"], "Succeeded", "{t}");
    // The event's own text, as the sample file writes it, inside {"events":[...]}.
    let start = sample.find("{\n      \"eventName\"").unwrap();
    let end = sample.rfind('}').unwrap();
    let event = sample[start..end]
        .trim_end()
        .trim_end_matches(']')
        .trim_end();
    assert_eq!(
        t["returnPayload"].as_str().unwrap(),
        format!("custom:web:{{\"events\":[{event}]}}"),
        "{t}"
    );
    assert!(
        t["log"].as_str().unwrap().contains("custom runtime got"),
        "{t}"
    );

    // A server that exits at once: FC's 412 CAExited, with its output in the message or log.
    ok_json(s.post(
        "/2023-03-30/functions",
        &json!({"functionName": "dies", "runtime": "custom", "handler": "h", "timeout": 5,
                "code": {"zipFile": zip_b64(&[("server.py", "import sys\nprint('cannot start: no config')\nsys.exit(3)\n")])},
                "customRuntimeConfig": {"command": ["python3"], "args": ["server.py"]}}),
    ));
    expect_error(
        s.req(Method::POST, "/2023-03-30/functions/dies/invocations")
            .body("x")
            .send()
            .unwrap(),
        412,
        "CAExited",
        "",
    );

    // Deploy-time checks for custom runtimes.
    let bad = |cfg: serde_json::Value, files: &[(&str, &str)]| {
        s.post(
            "/2023-03-30/functions",
            &json!({"functionName": "bad", "runtime": "custom", "handler": "h", "code": {"zipFile": zip_b64(files)},
                    "customRuntimeConfig": cfg}),
        )
    };
    expect_error(
        bad(json!({"args": ["x"]}), &[("server.py", SERVER)]),
        400,
        "InvalidArgument",
        "'bootstrap' not found in the code",
    );
    expect_error(
        bad(json!({"command": "python3"}), &[("server.py", SERVER)]),
        400,
        "InvalidArgument",
        "customRuntimeConfig.command",
    );
    expect_error(
        bad(
            json!({"command": ["python3"], "healthCheckConfig": {"periodSeconds": 0}}),
            &[("server.py", SERVER)],
        ),
        400,
        "InvalidArgument",
        "periodSeconds",
    );
}

fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("FNBRIDGE_ENDPOINT", &s.base)
        .env("FNBRIDGE_TOKEN", &s.token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_events_templates_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy(
        "cdn-sample",
        &[("index.py", &example("cdn-sample/index.py"))],
        json!({}),
    ));

    // Every CDN event and the object-storage events have templates.
    let t = s.get("/templates");
    for e in [
        "LogFileCreated",
        "CachedObjectsBlocked",
        "CdnDomainDeleted",
        "oss:ObjectCreated:PutObject",
        "cos:ObjectCreated:Put",
    ] {
        assert!(
            t["templates"].as_array().unwrap().iter().any(|x| x == e),
            "{e} missing: {t}"
        );
    }
    let (rc, out, err) = cli(
        &s,
        &[
            "function",
            "test",
            "cdn-sample",
            "--event-name",
            "CachedObjectsRefreshed",
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("eventName:CachedObjectsRefreshed, domain: example.com, info: /2018/03/16/13/33b430c57e7.mp4"), "{out}");
    assert!(out.contains("FC Invoke Start RequestId"), "{out}");

    // A saved test event takes precedence and is listed.
    let custom = example("events/LogFileCreated.json").replace("example.com", "saved.example.com");
    let file = dir.path().join("ev.json");
    std::fs::write(&file, &custom).unwrap();
    let (rc, out, err) = cli(
        &s,
        &[
            "function",
            "test",
            "cdn-sample",
            "--event-name",
            "my-event",
            "--payload-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("domain: saved.example.com"), "{out}");
    let (_, out, _) = cli(&s, &["function", "test", "cdn-sample", "--list"]);
    assert!(
        out.contains("  my-event") && out.contains("  LogFileCreated"),
        "{out}"
    );
    let (rc, _, err) = cli(
        &s,
        &[
            "function",
            "test",
            "cdn-sample",
            "--event-name",
            "NoSuchThing",
        ],
    );
    assert_eq!(rc, 2);
    assert!(err.contains("no test event 'NoSuchThing'"), "{err}");

    // Logs: every invocation's log is kept; --request-id narrows to one.
    let r = s
        .req(Method::POST, "/2023-03-30/functions/cdn-sample/invocations")
        .body(example("events/CdnDomainAdded.json"))
        .send()
        .unwrap();
    let rid = r.headers()["x-fc-request-id"].to_str().unwrap().to_string();
    // A sync invocation's log is stored after its answer (group-committed without holding the
    // caller): wait for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let (rc, out, _) = cli(&s, &["logs", "cdn-sample"]);
        assert_eq!(rc, 0);
        if out.matches("FC Invoke Start RequestId").count() >= 3
            || std::time::Instant::now() > deadline
        {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(out.matches("FC Invoke Start RequestId").count(), 3, "{out}");
    let (rc, out, _) = cli(&s, &["logs", "cdn-sample", "--request-id", &rid]);
    assert_eq!(rc, 0);
    assert_eq!(out.matches("FC Invoke Start RequestId").count(), 1, "{out}");
    assert!(out.contains(&rid));

    // --follow prints records that arrive after it started.
    let mut follow = Command::new(BIN)
        .args(["logs", "cdn-sample", "--follow"])
        .env("FNBRIDGE_ENDPOINT", &s.base)
        .env("FNBRIDGE_TOKEN", &s.token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let r = s
        .req(Method::POST, "/2023-03-30/functions/cdn-sample/invocations")
        .body(example("events/CdnDomainStopped.json"))
        .send()
        .unwrap();
    let rid2 = r.headers()["x-fc-request-id"].to_str().unwrap().to_string();
    let stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.contains(&format!("FC Invoke End RequestId: {rid2}")) {
                return true;
            }
        }
        false
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert!(
        reader.join().unwrap(),
        "--follow never printed the new invocation"
    );
}
