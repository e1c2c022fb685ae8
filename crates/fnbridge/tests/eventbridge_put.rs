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

#[test]
fn kill_9_during_put_events_from_four_clients_loses_no_acknowledged_event() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let (mut s, key) = start(dir.path());
    ok_json(s.deploy("orders", &[("index.py", ECHO)], json!({})));
    shop_trigger(&s, "orders");

    let acks = tempfile::tempdir().unwrap();
    let script = common::repo().join("crates/fnbridge/tests/eventbridge/crash_put_events.py");
    let endpoint = s.base.trim_start_matches("http://").to_string();
    let clients: Vec<std::process::Child> = (0..4)
        .map(|i| {
            std::process::Command::new(&py)
                .arg(&script)
                .args([&endpoint, acks.path().to_str().unwrap(), &i.to_string()])
                .env("FNB_AK", &key.0)
                .env("FNB_SK", &key.1)
                .env("NO_PROXY", "*")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let acked_of = |i: usize| -> Vec<String> {
        std::fs::read_to_string(acks.path().join(format!("acked-{i}")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    // Kill once every client has some batches acknowledged, so the kill lands mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..4).any(|i| acked_of(i).len() < 50) {
        assert!(Instant::now() < deadline, "the clients made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    for mut c in clients {
        c.wait().unwrap();
    }
    let acked: Vec<String> = (0..4).flat_map(acked_of).collect();
    s.restart();

    // Every acknowledged event has its delivery; nothing was delivered that no client sent.
    let ids = delivered_ids(&s, "orders", acked.len(), Duration::from_secs(240));
    let mut per_id: std::collections::BTreeMap<&str, usize> = Default::default();
    for id in &ids {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    for id in &acked {
        assert!(
            per_id.contains_key(id.as_str()),
            "acknowledged event {id} has no delivery"
        );
    }
    for id in per_id.keys() {
        let (c, n) = id
            .strip_prefix('c')
            .and_then(|r| r.split_once('-'))
            .unwrap_or_else(|| panic!("a delivery of an event no client sent: {id}"));
        assert!(
            c.parse::<u8>().unwrap() < 4 && n.parse::<u64>().is_ok(),
            "{id}"
        );
    }
    // The SDK does not resend, so an event is stored, and delivered, once; those committed but
    // not acknowledged (the kill came before the answer) are the only extras.
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    let unacknowledged = per_id.len() - acked.len();
    eprintln!(
        "acknowledged {}, stored {}, committed but unacknowledged {unacknowledged}, duplicate deliveries {duplicates}",
        acked.len(),
        per_id.len()
    );
    assert_eq!(duplicates, 0, "an event was stored twice");
    assert!(acked.len() >= 200, "{} acknowledged", acked.len());
}
