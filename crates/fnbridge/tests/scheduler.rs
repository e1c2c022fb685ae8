//! The store-driven scheduler end to end: a function's backlog does not hold up another
//! function; memory holds a bounded window while every task is still delivered, across a
//! restart; a full backlog is refused with 503 and Retry-After; finished work is pruned while
//! the dead-letter queue is kept.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn event(domain: &str, n: usize) -> Value {
    json!({
        "eventName": "LogFileCreated", "eventSource": "cdn", "region": "cn-hangzhou",
        "eventVersion": "1.0.0", "eventTime": "2018-06-14T15:31:49+08:00",
        "traceId": format!("{domain}-{n}"), "userIdentity": {"aliUid": "1"},
        "resource": {"domain": domain},
        "eventParameter": {"domain": domain, "startTime": 1, "endTime": 2, "fileSize": 3,
                           "filePath": "http://x/y.gz"}
    })
}

/// Posts `n` events for `domain`, 100 per request.
fn post_events(s: &Server, domain: &str, n: usize) {
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(100);
        let events: Vec<Value> = (sent..sent + k).map(|i| event(domain, i)).collect();
        ok_json(s.post("/events", &json!({"events": events})));
        sent += k;
    }
}

fn stats(s: &Server) -> Value {
    s.get("/stats")
}

/// Waits until `cond` holds for the server's stats (the server is another process: its API is
/// all there is to wait on).
fn wait_stats(s: &Server, what: &str, timeout: Duration, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = stats(s);
        if cond(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {v} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SLOW: &str =
    "import time\ndef handler(event, context):\n    time.sleep(1)\n    return 'slow'\n";
const FAST: &str = "def handler(event, context):\n    return 'fast'\n";

#[test]
fn a_function_with_a_huge_backlog_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("slow", &[("index.py", SLOW)], json!({})));
    ok_json(s.deploy("fast", &[("index.py", FAST)], json!({})));
    ok_json(s.cdn_trigger("slow", "t", "LogFileCreated", &["slow.example.com"]));
    ok_json(s.cdn_trigger("fast", "t", "LogFileCreated", &["fast.example.com"]));
    // Warm "fast" once, so what is measured below is scheduling, not a Python cold start.
    let r = ok_json(s.post(
        "/events",
        &json!({"events": [event("fast.example.com", 0)]}),
    ));
    let first = r["events"][0]["taskIds"][0].as_str().unwrap().to_string();
    s.wait_task("fast", &first, Duration::from_secs(30));

    post_events(&s, "slow.example.com", 10_000);
    let st = stats(&s);
    assert!(
        st["open"].as_u64().unwrap() >= 9_000,
        "the backlog is queued: {st}"
    );

    // Each of several deliveries to "fast" starts while "slow" is saturated.
    let mut worst = Duration::ZERO;
    for i in 1..=5 {
        let sent = Instant::now();
        let r = ok_json(s.post(
            "/events",
            &json!({"events": [event("fast.example.com", i)]}),
        ));
        let id = r["events"][0]["taskIds"][0].as_str().unwrap().to_string();
        let t = s.wait_task("fast", &id, Duration::from_secs(60));
        assert_eq!(t["status"], "Succeeded", "{t}");
        worst = worst.max(sent.elapsed());
    }
    let st = stats(&s);
    eprintln!("fast deliveries behind a 10,000-task backlog: worst {worst:?}; stats {st}");
    // Behind a FIFO queue these would wait for ~10,000 one-second tasks on 8 instances
    // (over ten minutes); a generous bound keeps a noisy machine from failing the test.
    assert!(worst < Duration::from_secs(5), "worst {worst:?}");
    // "slow" never holds more than its share of delivery slots or of memory.
    assert!(st["running"].as_u64().unwrap() <= 16 + 1, "{st}");
    assert!(st["resident"].as_u64().unwrap() <= 1024 + 16, "{st}");
}

#[test]
fn a_small_window_still_delivers_everything_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "--retry-base-ms",
        "20",
        "--window-per-function",
        "40",
        "--window",
        "60",
    ];
    let mut s = Server::start_with(dir.path(), &extra);
    ok_json(s.deploy("f", &[("index.py", FAST)], json!({})));
    ok_json(s.cdn_trigger("f", "t", "LogFileCreated", &["w.example.com"]));
    post_events(&s, "w.example.com", 300);
    let mut max_resident = 0;
    // Restart mid-way: the new process reads a window, not the whole backlog.
    s.restart();
    post_events(&s, "w.example.com", 300);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = stats(&s);
        max_resident = max_resident.max(v["resident"].as_u64().unwrap());
        if v["open"].as_u64().unwrap() == 0 && v["running"].as_u64().unwrap() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {v}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(max_resident <= 60, "the window held {max_resident} tasks");
    // Every one of the 600 events was delivered successfully (a crash may repeat a delivery,
    // so at least once each).
    let mut succeeded = 0;
    let mut before = String::new();
    loop {
        let page = s.get(&format!(
            "/tasks?functionName=f&status=Succeeded&limit=100{before}"
        ));
        let tasks = page["asyncTasks"].as_array().unwrap();
        succeeded += tasks.len();
        match page["nextToken"].as_str() {
            Some(t) if !t.is_empty() => before = format!("&nextToken={t}"),
            _ => break,
        }
    }
    assert!(succeeded >= 600, "{succeeded} of 600 delivered");
}

#[test]
fn a_full_backlog_is_refused_with_retry_after_and_nothing_half_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--max-backlog", "150"]);
    ok_json(s.deploy("slow", &[("index.py", SLOW)], json!({})));
    ok_json(s.cdn_trigger("slow", "t", "LogFileCreated", &["slow.example.com"]));
    post_events(&s, "slow.example.com", 100);
    let events: Vec<Value> = (0..100)
        .map(|i| event("slow.example.com", 1000 + i))
        .collect();
    let r = s.post("/events", &json!({"events": events}));
    assert_eq!(r.headers().get("retry-after").unwrap(), "5");
    let v = expect_error(r, 503, "ResourceThrottled", "--max-backlog");
    assert!(
        v["Message"].as_str().unwrap().contains("retry later"),
        "{v}"
    );
    // The refused request stored nothing: the count of open tasks is the first request's.
    let st = stats(&s);
    assert!(st["open"].as_u64().unwrap() <= 100, "{st}");
    // Async invocations are refused the same way while the backlog is full...
    let r = s
        .req(Method::POST, "/2023-03-30/functions/slow/invocations")
        .header("x-fc-invocation-type", "Async")
        .body("{}")
        .send()
        .unwrap();
    // ...unless there is room for one more (100 open < 150).
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
}

#[test]
fn finished_work_is_pruned_and_dead_letters_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--retry-base-ms",
            "20",
            "--retention-days",
            "0",
            "--prune-interval-s",
            "1",
        ],
    );
    ok_json(s.deploy("ok", &[("index.py", FAST)], json!({})));
    ok_json(s.deploy(
        "bad",
        &[(
            "index.py",
            "def handler(event, context):\n    raise Exception('no')\n",
        )],
        json!({}),
    ));
    ok_json(
        s.req(Method::PUT, "/2023-03-30/functions/bad/async-invoke-config")
            .json(&json!({"maxAsyncRetryAttempts": 0}))
            .send()
            .unwrap(),
    );
    ok_json(s.cdn_trigger("ok", "t", "LogFileCreated", &["p.example.com"]));
    ok_json(s.cdn_trigger("bad", "t", "LogFileCreated", &["p.example.com"]));
    post_events(&s, "p.example.com", 20);
    wait_stats(&s, "deliveries done", Duration::from_secs(60), |v| {
        v["succeeded"].as_u64() == Some(20) && v["deadLettered"].as_u64() == Some(20)
    });
    // Pruned once finished: no task records remain.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = s.get("/tasks?limit=100")["asyncTasks"]
            .as_array()
            .unwrap()
            .len();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} finished tasks not pruned"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The dead letters stay, with the event they carry (the event outlives its tasks).
    let dlq = s.get("/dlq?function=bad&limit=100");
    let entries = dlq["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20, "{dlq}");
    let id = entries[0]["id"].as_i64().unwrap();
    let e = s.get(&format!("/dlq/{id}"));
    let payload: Value = serde_json::from_str(e["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        payload["events"][0]["resource"]["domain"], "p.example.com",
        "{e}"
    );
}
