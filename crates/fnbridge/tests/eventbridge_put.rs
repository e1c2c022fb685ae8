//! PutEvents through the real `alibabacloud-eventbridge` SDK: its refusals raise with the code
//! the server gave (EventBridge's lower-case error body), and events acknowledged to concurrent
//! clients survive a `kill -9` of the server.

mod common;

use std::time::{Duration, Instant};

use common::{Server, ok_json};
use serde_json::{Value, json};

const ECHO: &str = "def handler(event, context):\n    return event.decode()\n";

fn python() -> std::path::PathBuf {
    common::test_python().expect(
        "these tests need alibabacloud-eventbridge: run `bash scripts/test.sh` or set FNBRIDGE_TEST_PYTHON",
    )
}

/// A server with an access key the SDK signs with.
fn start(dir: &std::path::Path) -> (Server, (String, String)) {
    let s = Server::start_with(dir, &["--retry-base-ms", "20"]);
    let key = ok_json(s.post("/keys", &json!({"description": "put events tests"})));
    let ak = key["accessKeyId"].as_str().unwrap().to_string();
    let sk = key["accessKeySecret"].as_str().unwrap().to_string();
    (s, (ak, sk))
}

/// An `eventbridge` trigger of `function` on every `my.shop` event of the default bus.
fn shop_trigger(s: &Server, function: &str) {
    let config = json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": "CloudEvents", "concurrency": 1}},
        "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL",
                       "retryStrategy": {"PushRetryStrategy": "BACKOFF_RETRY"}}});
    ok_json(s.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": "shop", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
}

/// Every task of `function` (all pages), with its payload.
fn all_tasks(s: &Server, function: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let v = s.get(&format!(
            "/tasks?functionName={function}&limit=100&includePayload=true&nextToken={token}"
        ));
        out.extend(v["asyncTasks"].as_array().cloned().unwrap_or_default());
        match v["nextToken"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => return out,
        }
    }
}

/// The ids of the CloudEvents delivered to `function`, one per task, once at least `n` tasks
/// succeeded and none is left open (and a moment longer, so that extra deliveries show too).
fn delivered_ids(s: &Server, function: &str, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut settled = false;
    loop {
        let tasks = all_tasks(s, function);
        let done = tasks.iter().filter(|t| t["status"] == "Succeeded").count();
        if done >= n && done == tasks.len() {
            if !settled {
                settled = true;
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            return tasks
                .iter()
                .map(|t| {
                    let e: Value = serde_json::from_str(t["taskPayload"].as_str().unwrap())
                        .unwrap_or_else(|e| panic!("{e}: {t}"));
                    e["id"].as_str().unwrap().to_string()
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{function}: {done} of {} tasks succeeded, {n} expected",
            tasks.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_sdk_raises_with_the_servers_code_for_refused_put_events() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    ok_json(s.deploy("orders", &[("index.py", ECHO)], json!({})));
    shop_trigger(&s, "orders");
    let out = std::process::Command::new(py)
        .arg(common::repo().join("crates/fnbridge/tests/eventbridge/sdk_errors.py"))
        .arg(s.base.trim_start_matches("http://"))
        .env("FNB_AK", &key.0)
        .env("FNB_SK", &key.1)
        .env("NO_PROXY", "*")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().last() == Some("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("refused EventBusNotExist"), "{stdout}");
    // Of everything sent, only the one valid entry of the mixed request was accepted.
    assert_eq!(
        delivered_ids(&s, "orders", 1, Duration::from_secs(60)),
        ["err-4"]
    );
}
