//! The CLI against a real server: deploy from a directory, create a trigger, send events, and
//! read tasks and the dead-letter queue; plus `pattern test` exit codes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

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

#[test]
fn walkthrough_via_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let code = repo().join("examples/cdn-sample");
    let (rc, out, err) = cli(
        &s,
        &[
            "function",
            "create",
            "cdn-sample",
            "--code",
            code.to_str().unwrap(),
            "--runtime",
            "python3.10",
            "--handler",
            "index.handler",
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("cdn-sample"), "{out}");
    let cfg = format!(
        "@{}",
        repo()
            .join("examples/cdn-sample/trigger-LogFileCreated.json")
            .display()
    );
    let (rc, out, err) = cli(
        &s,
        &[
            "trigger",
            "create",
            "cdn-sample",
            "logs",
            "--type",
            "cdn_events",
            "--config",
            &cfg,
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let (rc, out, _) = cli(&s, &["trigger", "list", "cdn-sample"]);
    assert_eq!(rc, 0);
    assert!(out.contains("logs") && out.contains("cdn_events"), "{out}");
    let ev = repo().join("examples/events/LogFileCreated.json");
    let (rc, out, err) = cli(&s, &["events", "put", ev.to_str().unwrap()]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("DELIVERIES"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rc, out, _) = cli(&s, &["tasks", "list", "--function", "cdn-sample", "--json"]);
        assert_eq!(rc, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        if v["asyncTasks"][0]["status"] == "Succeeded" {
            let id = v["asyncTasks"][0]["taskId"].as_str().unwrap().to_string();
            let (rc, out, _) = cli(&s, &["tasks", "get", "cdn-sample", &id]);
            assert_eq!(rc, 0);
            assert!(
                out.contains("eventName:LogFileCreated, domain: example.com, info: http://cdnlog"),
                "{out}"
            );
            assert!(out.contains("FC Invoke Start RequestId"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "task never succeeded: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rc, out, _) = cli(
        &s,
        &[
            "function",
            "invoke",
            "cdn-sample",
            "--payload-file",
            ev.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 0);
    assert!(
        out.starts_with("eventName:LogFileCreated, domain: example.com"),
        "{out}"
    );
    let (rc, out, _) = cli(&s, &["dlq", "list"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("ID"), "{out}");
    let (rc, _, err) = cli(&s, &["function", "delete", "cdn-sample"]);
    assert_eq!(rc, 2);
    assert!(err.contains("FunctionNotEmpty"), "{err}");
    let (rc, _, err) = cli(&s, &["function", "get", "nope"]);
    assert_eq!(rc, 2);
    assert!(
        err.contains("FunctionNotFound (404): function 'nope' does not exist"),
        "{err}"
    );
}

#[test]
fn pattern_test_exit_codes() {
    let run = |p: &str, e: &str| {
        let out = Command::new(BIN)
            .args(["pattern", "test", "--pattern", p, "--event", e])
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    assert_eq!(
        run(r#"{"a":["x"]}"#, r#"{"a":"x"}"#),
        (0, "match".to_string())
    );
    assert_eq!(
        run(r#"{"a":["x"]}"#, r#"{"a":"y"}"#),
        (1, "no match".to_string())
    );
    assert_eq!(run(r#"{"a":"x"}"#, r#"{"a":"x"}"#).0, 2);
    assert_eq!(run(r#"{"a":["x"]}"#, "/no/such/file").0, 2);
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    ok_json(s.deploy(
        "f",
        &[("index.py", "def handler(e, c):\n    return 'x'\n")],
        serde_json::json!({}),
    ));
    let st = s.sigterm();
    assert!(st.success(), "{st:?}");
}
