//! The sandbox end to end, through the real server: what a deployed handler can reach (not the
//! admin token, the database, other functions' code, the server's environment; not /code or
//! anything outside its /tmp for writing), that its processes die with its instance and with a
//! SIGKILLed server, that published code stays as published, and that a requirements.txt naming
//! a local path runs nothing as the server's user.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Invokes `name` synchronously with `payload` and returns the body as text.
fn invoke(s: &Server, name: &str, qualifier: &str, payload: &Value) -> String {
    let r = s
        .req(
            Method::POST,
            &format!("/2023-03-30/functions/{name}/invocations?qualifier={qualifier}"),
        )
        .body(payload.to_string())
        .send()
        .unwrap();
    let error = r
        .headers()
        .get("x-fc-error-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().unwrap();
    assert_eq!(error, None, "{text}");
    text
}

/// Tries to read and write each path it is given; reports what happened.
const PROBE: &str = r#"
import json, os

def attempt(fn):
    try:
        fn()
        return "allowed"
    except Exception as e:
        return type(e).__name__

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def write(path):
    with open(path, "a") as f:
        f.write("tampered")

def handler(event, context):
    e = json.loads(event)
    return json.dumps({
        "uid": os.getuid(),
        "read": {p: attempt(lambda p=p: read(p)) for p in e["read"]},
        "write": {p: attempt(lambda p=p: write(p)) for p in e["write"]},
        "escape": attempt(lambda: read(os.environ["FC_FUNC_CODE_PATH"] + "/../../../admin.token")),
    })
"#;

#[test]
fn a_handler_reaches_nothing_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy(
        "other",
        &[("index.py", "def handler(e, c):\n    return 'other'\n")],
        json!({}),
    ));
    ok_json(s.deploy("probe", &[("index.py", PROBE)], json!({})));
    let data = s.data.canonicalize().unwrap();
    let other_code = std::fs::read_dir(data.join("code/other"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("index.py");
    let pid = s.child.as_ref().unwrap().id();
    let read = [
        data.join("admin.token"),
        data.join("fnbridge.db"),
        other_code.clone(),
        format!("/proc/{pid}/environ").into(),
    ];
    let write = [
        std::path::PathBuf::from("/code/index.py"),
        "/code/new.py".into(),
        data.join("admin.token"),
        other_code.clone(),
        "/etc/passwd".into(),
        "/var/evil".into(),
    ];
    let out = invoke(
        &s,
        "probe",
        "LATEST",
        &json!({"read": read, "write": write}),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["uid"], 0, "{v}");
    for (path, what) in v["read"].as_object().unwrap() {
        assert_ne!(what, "allowed", "read {path}: {v}");
    }
    for (path, what) in v["write"].as_object().unwrap() {
        assert_ne!(what, "allowed", "write {path}: {v}");
    }
    assert_ne!(v["escape"], "allowed", "{v}");
    assert_eq!(
        std::fs::read_to_string(&other_code).unwrap(),
        "def handler(e, c):\n    return 'other'\n"
    );
}

const TAMPER: &str = r#"
import os

def handler(event, context):
    for path in ("/code/index.py", os.environ["FC_FUNC_CODE_PATH"] + "/index.py"):
        try:
            with open(path, "w") as f:
                f.write("def handler(e, c):\n    return 'TAMPERED'\n")
        except OSError:
            pass
    return "original"
"#;

#[test]
fn published_code_cannot_be_changed_by_running_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", TAMPER)], json!({})));
    let v = ok_json(s.post("/2023-03-30/functions/f/versions", &json!({})));
    let version = v["versionId"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(invoke(&s, "f", &version, &json!({})), "original");
    }
    // A restart starts new instances from the stored code.
    s.restart();
    assert_eq!(invoke(&s, "f", &version, &json!({})), "original");
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "original");
}

/// Starts `sleep <marker>` in a new session (so outside the worker's process group) and returns.
fn setsid_code(marker: u32) -> String {
    format!(
        "import subprocess, time\n\ndef handler(event, context):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'], start_new_session=True)\n    time.sleep(0.3)\n    return 'started'\n"
    )
}

/// Pids of running `sleep <marker>` processes.
fn sleepers(marker: u32) -> Vec<u32> {
    let want = format!("sleep\0{marker}\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

fn gone_within(marker: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if sleepers(marker).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_setsid_grandchild_dies_with_a_sigkilled_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let marker = 7000 + std::process::id() % 1000;
    ok_json(s.deploy("f", &[("index.py", &setsid_code(marker))], json!({})));
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "started");
    assert_eq!(sleepers(marker).len(), 1, "the grandchild runs");
    s.kill9();
    assert!(
        gone_within(marker, Duration::from_secs(10)),
        "the grandchild outlived the server"
    );
}

#[test]
fn a_setsid_grandchild_dies_with_its_reaped_instance() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--idle-timeout-s", "1"]);
    let marker = 8000 + std::process::id() % 1000;
    ok_json(s.deploy("f", &[("index.py", &setsid_code(marker))], json!({})));
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "started");
    assert_eq!(sleepers(marker).len(), 1, "the grandchild runs");
    assert!(
        gone_within(marker, Duration::from_secs(10)),
        "the grandchild outlived its instance"
    );
}

#[test]
fn a_requirements_txt_with_a_local_path_runs_nothing_as_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let marker = dir.path().join("setup-ran");
    let setup = format!(
        "open({:?}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='pkg', version='1')\n",
        marker.to_str().unwrap()
    );
    for requirement in ["./pkg", "-e ./pkg", "pkg @ file:///code/pkg"] {
        let files = [
            ("index.py", "def handler(e, c):\n    return 'ok'\n"),
            ("requirements.txt", requirement),
            ("pkg/setup.py", setup.as_str()),
        ];
        let r = s.deploy("f", &files, json!({}));
        expect_error(
            r,
            400,
            "InvalidArgument",
            "only packages from the package index",
        );
        assert!(
            !marker.exists(),
            "{requirement}: setup.py ran as the server's user"
        );
    }
}

const ENDPOINT: &str = r#"
import os, urllib.request, urllib.error

def handler(event, context):
    url = os.environ["FNBRIDGE_API_ENDPOINT"] + "/2023-03-30/functions"
    try:
        urllib.request.urlopen(url, timeout=5)
        return "200"
    except urllib.error.HTTPError as e:
        return str(e.code)
"#;

#[test]
fn the_api_is_reachable_from_inside_at_its_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", ENDPOINT)], json!({})));
    // Reached the API, which wants a token.
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "401");
}

const VERSION: &str = "import sys, os\n\ndef handler(event, context):\n    return '%d.%d %s %s' % (sys.version_info[0], sys.version_info[1], os.environ['FC_FUNCTION_VERSION'], context.function.version_id)\n";

#[test]
fn python_runtimes_run_on_their_own_interpreter_and_versions_agree() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for (runtime, minor) in [
        ("python3.9", "3.9"),
        ("python3.10", "3.10"),
        ("python3.12", "3.12"),
    ] {
        let name = format!("v{}", minor.replace('.', ""));
        let created =
            ok_json(s.deploy(&name, &[("index.py", VERSION)], json!({"runtime": runtime})));
        let interpreter = created["interpreter"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !interpreter.contains("not installed") {
            assert!(
                interpreter.starts_with(&format!("Python {minor}.")),
                "{interpreter}"
            );
            assert_eq!(
                invoke(&s, &name, "LATEST", &json!({})),
                format!("{minor} LATEST LATEST")
            );
        }
        let got = s.get(&format!("/2023-03-30/functions/{name}"));
        assert_eq!(got["interpreter"].as_str(), Some(interpreter.as_str()));
    }
}

const OSS2: &str = "import oss2\n\ndef handler(event, context):\n    return oss2.__name__\n";

#[test]
fn oss2_is_importable_without_requirements() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", OSS2)], json!({})));
    // The layer is installed in the background at the first server start (shared by tests).
    let start = Instant::now();
    loop {
        let r = s
            .req(Method::POST, "/2023-03-30/functions/f/invocations")
            .body("{}")
            .send()
            .unwrap();
        let failed = r.headers().contains_key("x-fc-error-type");
        let text = r.text().unwrap();
        if !failed {
            assert_eq!(text, "oss2");
            return;
        }
        assert!(text.contains("ModuleNotFoundError"), "{text}");
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the layer never arrived: {text}"
        );
        // A new instance is needed to see the layer once it is installed.
        s.req(Method::PUT, "/2023-03-30/functions/f")
            .json(&json!({"description": format!("{:?}", start.elapsed())}))
            .send()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
    }
}
