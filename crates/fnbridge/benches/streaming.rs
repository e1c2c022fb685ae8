//! EventBridge delivery throughput, `event-streaming` against `event-driven`, in the same run:
//! the same CloudEvents (~220 bytes as sent) posted to `/buses/default/events` in CloudEvents batch
//! requests, matched by an `eventbridge` trigger of each mode on its own source; the clock stops
//! when the server reports every task succeeded. Streaming delivers batches of up to
//! `CountBasedWindow` (100) events per invocation; event-driven one event per invocation. Both
//! handlers parse what they receive (`json.loads`).
//!
//! Run: `cargo bench -p fnbridge --bench streaming` (env: EVENTS, CLIENTS, BATCH, WINDOW).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, env_usize};

const HANDLER: &str =
    "import json\ndef handler(event, context):\n    json.loads(event)\n    return ''\n";

/// Posts `events` CloudEvents of `source` from `clients` threads, `batch` per request; returns
/// when all are acknowledged.
fn send(server: &Server, source: &str, events: usize, clients: usize, batch: usize) {
    let sent = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for c in 0..clients {
        let (base, token, sent) = (server.base.clone(), server.token.clone(), sent.clone());
        let source = source.to_string();
        hs.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            let mut i = c * 1_000_000;
            loop {
                let n = sent.fetch_add(batch, Ordering::Relaxed);
                if n >= events {
                    break;
                }
                let evs: Vec<Value> = (0..batch.min(events - n))
                    .map(|k| {
                        json!({"specversion": "1.0", "id": format!("{source}-{}", i + k),
                               "source": source, "type": "bench.tick",
                               "datacontenttype": "application/json",
                               "data": {"seq": i + k, "domain": "example.com",
                                        "path": "/2026/11/26/video-0001.mp4", "bytes": 1788115}})
                    })
                    .collect();
                i += batch;
                let r = http
                    .post(format!("{base}/buses/default/events"))
                    .bearer_auth(&token)
                    .header("Content-Type", "application/cloudevents-batch+json")
                    .body(Value::Array(evs).to_string())
                    .send()
                    .unwrap();
                assert!(r.status().is_success());
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
}

/// Sends `events` for one trigger and waits until they all succeeded; returns (events/s
/// delivered, invocations it took).
fn run(server: &Server, source: &str, events: usize, clients: usize, batch: usize) -> (f64, u64) {
    let stats = || server.get("/stats");
    let (done0, attempts0) = (
        stats()["succeeded"].as_u64().unwrap(),
        stats()["attempts"].as_u64().unwrap(),
    );
    let t0 = Instant::now();
    send(server, source, events, clients, batch);
    while stats()["succeeded"].as_u64().unwrap() < done0 + events as u64 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    let attempts = stats()["attempts"].as_u64().unwrap() - attempts0;
    (events as f64 / secs, attempts)
}

fn trigger(server: &Server, function: &str, source: &str, run_options: Value) {
    server.deploy(function, HANDLER);
    server.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": "t", "triggerType": "eventbridge",
                "triggerConfig": json!({
                    "eventRuleFilterPattern": json!({"source": [source]}).to_string(),
                    "runOptions": run_options}).to_string()}),
    );
}

fn main() {
    let events = env_usize("EVENTS", 20_000);
    let clients = env_usize("CLIENTS", 4);
    let batch = env_usize("BATCH", 100);
    let window = env_usize("WINDOW", 100);
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(&dir.path().join("data"), &[]);
    trigger(
        &server,
        "driven",
        "bench.driven",
        json!({"mode": "event-driven", "errorsTolerance": "ALL"}),
    );
    trigger(
        &server,
        "stream",
        "bench.stream",
        json!({"mode": "event-streaming", "errorsTolerance": "ALL",
               "batchWindow": {"CountBasedWindow": window, "TimeBasedWindow": 1}}),
    );
    // Warm both (instances started), then measure each, streaming first and last.
    run(&server, "bench.driven", 200, 1, 100);
    run(&server, "bench.stream", 200, 1, 100);
    let (s1, s1_calls) = run(&server, "bench.stream", events, clients, batch);
    let (d, d_calls) = run(&server, "bench.driven", events, clients, batch);
    let (s2, s2_calls) = run(&server, "bench.stream", events, clients, batch);
    server.kill9();
    println!(
        "machine: {} cores; {events} CloudEvents per run, {clients} clients x {batch} events/request",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "event-streaming (CountBasedWindow {window}, TimeBasedWindow 1 s), run 1: {s1:.0} events/s delivered, {s1_calls} invocations"
    );
    println!("event-driven, same events: {d:.0} events/s delivered, {d_calls} invocations");
    println!(
        "event-streaming, run 2: {s2:.0} events/s delivered, {s2_calls} invocations; streaming / driven = {:.1}x",
        (s1 + s2) / 2.0 / d
    );
}
