//! Delivery guarantees end to end: retries per the async policy, dead-lettering with the error,
//! redrive, expiry past the maximum event age, and no acknowledged event lost across `kill -9`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const FAILING: &str = r#"
def handler(event, context):
    raise RuntimeError("downstream unavailable")
"#;

#[test]
fn failing_handler_is_retried_then_dead_lettered_and_redrive_redelivers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("flaky", &[("index.py", FAILING)], json!({})));
    ok_json(s.cdn_trigger("flaky", "logs", "LogFileCreated", &["example.com"]));
    let cfg = ok_json(
        s.req(
            reqwest::Method::PUT,
            "/2023-03-30/functions/flaky/async-invoke-config",
        )
        .json(&json!({"maxAsyncRetryAttempts": 2}))
        .send()
        .unwrap(),
    );
    assert_eq!(cfg["maxAsyncRetryAttempts"], 2);
    assert_eq!(cfg["maxAsyncEventAgeInSeconds"], 86400);

    let receipt = ok_json(s.post_raw("/events", example("events/LogFileCreated.json")));
    let task_id = receipt["events"][0]["taskIds"][0]
        .as_str()
        .unwrap()
        .to_string();
    let task = s.wait_task("flaky", &task_id, Duration::from_secs(60));
    assert_eq!(task["status"], "Failed", "{task}");
    assert_eq!(
        task["attempts"], 3,
        "1 attempt + maxAsyncRetryAttempts=2 retries"
    );
    let records = task["attemptRecords"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!(r["errorType"], "UnhandledInvocationError");
        assert!(
            r["errorMessage"]
                .as_str()
                .unwrap()
                .contains("RuntimeError: downstream unavailable"),
            "{r}"
        );
    }
    // Backoff: each retry waited at least 80% of base * 2^(n-1) (base 20 ms).
    let gap = |i: usize| {
        records[i]["startedTime"].as_i64().unwrap() - records[i - 1]["endTime"].as_i64().unwrap()
    };
    assert!(gap(1) >= 16, "first retry after {} ms", gap(1));
    assert!(gap(2) >= 32, "second retry after {} ms", gap(2));

    let dlq = s.get("/dlq?functionName=flaky");
    let entries = dlq["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{dlq}");
    let e = &entries[0];
    assert_eq!(e["taskId"], task_id.as_str());
    assert_eq!(e["triggerName"], "logs");
    assert_eq!(e["reason"], "RetriesExhausted");
    assert_eq!(e["attempts"], 3);
    assert!(
        e["lastError"]
            .as_str()
            .unwrap()
            .contains("downstream unavailable")
    );
    let sent: Value = serde_json::from_str(&example("events/LogFileCreated.json")).unwrap();
    let stored: Value = serde_json::from_str(e["payload"].as_str().unwrap()).unwrap();
    assert_eq!(stored, sent, "the dead letter carries the event");

    // Fix the function, redrive: the event is delivered again and succeeds.
    let fixed = "def handler(event, context):\n    return 'recovered'\n";
    ok_json(
        s.req(reqwest::Method::PUT, "/2023-03-30/functions/flaky")
            .json(&json!({"code": {"zipFile": zip_b64(&[("index.py", fixed)])}}))
            .send()
            .unwrap(),
    );
    let id = e["id"].as_i64().unwrap();
    let r = ok_json(
        s.req(reqwest::Method::POST, &format!("/dlq/{id}/redrive"))
            .send()
            .unwrap(),
    );
    let new_task = r["taskId"].as_str().unwrap();
    let t = s.wait_task("flaky", new_task, Duration::from_secs(60));
    assert_eq!(t["status"], "Succeeded", "{t}");
    assert_eq!(t["returnPayload"], "recovered");
    assert_eq!(s.get("/dlq?functionName=flaky")["entries"], json!([]));
    expect_error(
        s.req(reqwest::Method::POST, &format!("/dlq/{id}/redrive"))
            .send()
            .unwrap(),
        404,
        "DeadLetterNotFound",
        "does not exist",
    );
}

#[test]
fn zero_retries_dead_letters_after_one_attempt_and_async_invoke_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("once", &[("index.py", FAILING)], json!({})));
    ok_json(
        s.req(
            reqwest::Method::PUT,
            "/2023-03-30/functions/once/async-invoke-config",
        )
        .json(&json!({"maxAsyncRetryAttempts": 0}))
        .send()
        .unwrap(),
    );
    let r = s
        .req(
            reqwest::Method::POST,
            "/2023-03-30/functions/once/invocations",
        )
        .header("x-fc-invocation-type", "Async")
        .header("x-fc-async-task-id", "my_task-1")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-fc-async-task-id"], "my_task-1");
    let t = s.wait_task("once", "my_task-1", Duration::from_secs(30));
    assert_eq!(t["status"], "Failed");
    assert_eq!(t["attempts"], 1);
    expect_error(
        s.req(
            reqwest::Method::POST,
            "/2023-03-30/functions/once/invocations",
        )
        .header("x-fc-invocation-type", "Async")
        .header("x-fc-async-task-id", "my_task-1")
        .body("{}")
        .send()
        .unwrap(),
        409,
        "AsyncTaskAlreadyExists",
        "my_task-1",
    );
}

/// The handler appends each event's traceId to a file: the ground truth of what ran.
const RECORDER: &str = r#"
import json, os
def handler(event, context):
    e = json.loads(event)["events"][0]
    line = (e["traceId"] + "\n").encode()
    fd = os.open(os.environ["OUT_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return "ok"
"#;

#[test]
fn kill_9_during_ingest_and_delivery_loses_no_acknowledged_event() {
    const TOTAL: usize = 1000;
    const BATCH: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("delivered.txt");
    let data = dir.path().join("data");
    let [flag, mount] = mount_args(shared.path());
    let mut s = Server::start_with(&data, &["--retry-base-ms", "20", &flag, &mount]);
    ok_json(s.deploy(
        "recorder",
        &[("index.py", RECORDER)],
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap()}}),
    ));
    ok_json(s.cdn_trigger("recorder", "all-logs", "LogFileCreated", &["example.com"]));
    let template: Value = serde_json::from_str(&example("events/LogFileCreated.json")).unwrap();
    let event = move |i: usize| {
        let mut e = template["events"][0].clone();
        e["traceId"] = json!(format!("trace-{i:05}"));
        e
    };

    // A client sends 1,000 events in batches of 10 while the server is killed mid-way.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let base = s.base.clone();
    let token = s.token.clone();
    let sender = {
        let acked = acked.clone();
        let stop = stop.clone();
        let event = event.clone();
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut unacked = 0;
            let mut i = 0;
            while i < TOTAL && !stop.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (i..i + BATCH).map(&event).collect();
                let r = http
                    .post(format!("{base}/events"))
                    .bearer_auth(&token)
                    .json(&json!({"events": batch}))
                    .send();
                match r {
                    Ok(r) if r.status().is_success() => {
                        acked
                            .lock()
                            .unwrap()
                            .extend((i..i + BATCH).map(|j| format!("trace-{j:05}")));
                    }
                    _ => unacked += BATCH,
                }
                i += BATCH;
            }
            unacked
        })
    };
    // Kill once a third of the events are acknowledged (and deliveries are running).
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < TOTAL / 3 {
        assert!(Instant::now() < deadline, "ingest too slow");
        std::thread::sleep(Duration::from_millis(1));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let unacked = sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let delivered_before = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .count();

    // Restart on the same data dir and send the rest.
    s.restart();
    let mut rest = Vec::new();
    let sent: usize = acked.len() + unacked;
    for start in (sent..TOTAL).step_by(BATCH) {
        let batch: Vec<Value> = (start..start + BATCH).map(&event).collect();
        ok_json(s.post("/events", &json!({"events": batch})));
        rest.extend((start..start + BATCH).map(|j| format!("trace-{j:05}")));
    }
    let must: Vec<String> = acked.iter().chain(rest.iter()).cloned().collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for l in text.lines() {
            *counts.entry(l.to_string()).or_default() += 1;
        }
        if must.iter().all(|t| counts.contains_key(t)) {
            break counts;
        }
        let missing = must.iter().filter(|t| !counts.contains_key(*t)).count();
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events never delivered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let unacked_delivered = counts.keys().filter(|k| !must.contains(k)).count();
    eprintln!(
        "kill -9 report: {} acknowledged before the kill, {unacked} unacknowledged, {} sent after restart, \
         {delivered_before} deliveries before the kill, {} distinct delivered, {duplicates} duplicate deliveries, \
         {unacked_delivered} unacknowledged events delivered anyway",
        acked.len(),
        rest.len(),
        counts.len()
    );
    assert!(acked.len() >= TOTAL / 3);
    assert_eq!(must.len() + unacked, TOTAL);
}

/// An event older than the function's `maxAsyncEventAgeInSeconds` when its next retry comes
/// up is not tried again: the task ends `Expired` and goes to the dead-letter queue as
/// `EventAgeExceeded`, although retries were left (the retry base of 1.5 s puts the first
/// retry past the 1 s age limit).
#[test]
fn an_event_past_its_maximum_age_is_dead_lettered_instead_of_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "1500"]);
    ok_json(s.deploy("aged", &[("index.py", FAILING)], json!({})));
    ok_json(s.cdn_trigger("aged", "logs", "LogFileCreated", &["example.com"]));
    ok_json(
        s.req(
            reqwest::Method::PUT,
            "/2023-03-30/functions/aged/async-invoke-config",
        )
        .json(&json!({"maxAsyncRetryAttempts": 8, "maxAsyncEventAgeInSeconds": 1}))
        .send()
        .unwrap(),
    );
    let receipt = ok_json(s.post_raw("/events", example("events/LogFileCreated.json")));
    let task_id = receipt["events"][0]["taskIds"][0]
        .as_str()
        .unwrap()
        .to_string();
    let task = s.wait_task("aged", &task_id, Duration::from_secs(60));
    assert_eq!(task["status"], "Expired", "{task}");
    let dlq = s.get("/dlq?functionName=aged");
    let entries = dlq["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{dlq}");
    assert_eq!(entries[0]["taskId"], task_id.as_str());
    assert_eq!(entries[0]["reason"], "EventAgeExceeded", "{dlq}");
    assert_eq!(
        entries[0]["attempts"], 1,
        "one real attempt, then expiry: {dlq}"
    );
}
