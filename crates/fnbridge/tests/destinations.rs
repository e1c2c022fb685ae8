//! Async destinations and failure kinds end to end: after retries are exhausted the onFailure
//! function receives FC's destination payload; onSuccess gets the result; out-of-memory and
//! crashing handlers are recorded as such and their instances replaced.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The destination function stores what it receives, one JSON document per line.
const SINK: &str = r#"
import os
def handler(event, context):
    fd = os.open(os.environ["OUT_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, event.replace(b"\n", b" ") + b"\n")
    os.close(fd)
    return "stored"
"#;

fn wait_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "destination got {} of {n} records",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_failure_and_on_success_destinations_receive_the_documented_payload() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let [flag, mount] = mount_args(shared.path());
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "20", &flag, &mount]);
    let failed = shared.path().join("failed.jsonl");
    let ok = shared.path().join("ok.jsonl");
    ok_json(s.deploy(
        "on-failure",
        &[("index.py", SINK)],
        json!({"environmentVariables": {"OUT_FILE": failed.to_str().unwrap()}}),
    ));
    ok_json(s.deploy(
        "on-success",
        &[("index.py", SINK)],
        json!({"environmentVariables": {"OUT_FILE": ok.to_str().unwrap()}}),
    ));
    let code = "def handler(event, context):\n    if event == b'{\"failure\":true}':\n        raise Exception('My unhandled exception')\n    return 'fine'\n";
    ok_json(s.deploy("main", &[("index.py", code)], json!({})));
    expect_error(
        s.req(Method::PUT, "/2023-03-30/functions/main/async-invoke-config")
            .json(&json!({"destinationConfig": {"onFailure": {"destination": "acs:fc:cn-hangzhou:1:functions/ghost"}}}))
            .send()
            .unwrap(),
        400,
        "InvalidArgument",
        "function 'ghost' does not exist",
    );
    ok_json(
        s.req(Method::PUT, "/2023-03-30/functions/main/async-invoke-config")
            .json(&json!({"maxAsyncRetryAttempts": 1, "destinationConfig": {
                "onFailure": {"destination": "acs:fc:cn-hangzhou:1234567890123456:functions/on-failure"},
                "onSuccess": {"destination": "acs:fc:cn-hangzhou:1234567890123456:functions/on-success"}}}))
            .send()
            .unwrap(),
    );
    let invoke = |body: &str| {
        let r = s
            .req(Method::POST, "/2023-03-30/functions/main/invocations")
            .header("x-fc-invocation-type", "Async")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        r.headers()["x-fc-async-task-id"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let bad = invoke("{\"failure\":true}");
    let good = invoke("{\"failure\":false}");

    let f = &wait_lines(&failed, 1)[0];
    assert!(
        f["timestamp"].as_i64().unwrap() > 1_700_000_000_000,
        "Unix ms: {f}"
    );
    assert_eq!(f["requestContext"]["requestId"], bad.as_str());
    assert_eq!(
        f["requestContext"]["functionArn"],
        "acs:fc:cn-hangzhou:1234567890123456:functions/main"
    );
    assert_eq!(f["requestContext"]["condition"], "UnhandledInvocationError");
    assert_eq!(
        f["requestContext"]["approximateInvokeCount"], 2,
        "1 attempt + 1 retry"
    );
    assert_eq!(
        f["requestPayload"], "{\"failure\":true}",
        "the event, as a string"
    );
    assert_eq!(f["responseContext"]["statusCode"], 200);
    assert_eq!(
        f["responseContext"]["functionError"],
        "UnhandledInvocationError"
    );
    let resp: Value = serde_json::from_str(f["responsePayload"].as_str().unwrap()).unwrap();
    assert_eq!(resp["errorMessage"], "My unhandled exception");
    assert_eq!(resp["errorType"], "Exception");

    let o = &wait_lines(&ok, 1)[0];
    assert_eq!(o["requestContext"]["requestId"], good.as_str());
    assert_eq!(o["requestContext"]["condition"], "Success");
    assert_eq!(o["responsePayload"], "fine");
    assert!(o["responseContext"].get("functionError").is_none());
}

#[test]
fn out_of_memory_and_crashes_are_recorded_and_instances_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let code = r#"
import os
def handler(event, context):
    if event == b"oom":
        hog = bytearray(1024 * 1024 * 1024)
        return str(len(hog))
    if event == b"exit":
        os._exit(1)
    # Not the pid: every sandboxed instance has its own PID namespace, where it is pid 2.
    return "alive:%s" % os.environ["FC_INSTANCE_ID"]
"#;
    ok_json(s.deploy("fragile", &[("index.py", code)], json!({"memorySize": 128})));
    ok_json(
        s.req(
            Method::PUT,
            "/2023-03-30/functions/fragile/async-invoke-config",
        )
        .json(&json!({"maxAsyncRetryAttempts": 0}))
        .send()
        .unwrap(),
    );
    let sync = |body: &str| {
        s.req(Method::POST, "/2023-03-30/functions/fragile/invocations")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let mut before = sync("ping").text().unwrap();
    for (body, kind) in [("oom", "out_of_memory"), ("exit", "crashed")] {
        let r = s
            .req(Method::POST, "/2023-03-30/functions/fragile/invocations")
            .header("x-fc-invocation-type", "Async")
            .body(body)
            .send()
            .unwrap();
        let task = r.headers()["x-fc-async-task-id"]
            .to_str()
            .unwrap()
            .to_string();
        let t = s.wait_task("fragile", &task, Duration::from_secs(60));
        assert_eq!(t["status"], "Failed", "{t}");
        let rec = &t["attemptRecords"][0];
        assert_eq!(rec["errorType"], "UnhandledInvocationError");
        assert!(
            rec["errorMessage"].as_str().unwrap().starts_with(kind),
            "{body}: {rec}"
        );
        // The next call runs on a fresh instance.
        let after = sync("ping").text().unwrap();
        assert!(after.starts_with("alive:"), "{after}");
        assert_ne!(after, before, "{body}: the broken instance was replaced");
        before = after;
    }
}
