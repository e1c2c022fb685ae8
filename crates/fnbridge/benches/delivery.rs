//! End-to-end delivery benchmark: events per second from `POST /events` to handler completion
//! with a no-op Python handler, and latency from acknowledgement to handler start, against the
//! raw cost of the same handler called in a loop in one Python process.
//!
//! Run: `cargo bench -p fnbridge --bench delivery` (env: EVENTS, CLIENTS, BATCH, LAT_EVENTS).

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Server, env_usize, sample_event};

const NOOP: &str = "def handler(event, context):\n    return ''\n";
const STAMP: &str = r#"
import json, os, time
OUT = os.environ["OUT_FILE"]
def handler(event, context):
    t = time.time_ns()
    e = json.loads(event)["events"][0]
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, ("%s %d\n" % (e["traceId"], t)).encode())
    os.close(fd)
    return ''
"#;

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let events = env_usize("EVENTS", 20_000);
    let clients = env_usize("CLIENTS", 4);
    let batch = env_usize("BATCH", 100);
    let lat_events = env_usize("LAT_EVENTS", 2_000);
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Server::start(&dir.path().join("data"), &[]);
    let (base, token) = (server.base.clone(), server.token.clone());
    let post = |path: &str, body: &Value| server.post(path, body);
    let out = dir.path().join("stamps.txt");
    server.deploy("noop", NOOP);
    server.deploy_with(
        "stamp",
        STAMP,
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap()}}),
    );
    server.cdn_trigger("noop", "t-LogFileCreated", "LogFileCreated");
    server.cdn_trigger("stamp", "t-CdnDomainAdded", "CdnDomainAdded");
    let ev = sample_event();
    let size = ev.to_string().len();

    // Raw cost: the same no-op handler called in a loop in one Python process.
    let raw = Command::new("python3")
        .args(["-c", &format!("import time\n{NOOP}\nb=b'x'*{size}\nn=200000\nt=time.perf_counter()\nfor _ in range(n): handler(b, None)\nd=time.perf_counter()-t\nprint(n/d, d/n*1e9)")])
        .output()
        .unwrap();
    let raw = String::from_utf8(raw.stdout).unwrap();
    let mut it = raw.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    let (raw_rate, raw_ns) = (it.next().unwrap(), it.next().unwrap());

    // Warm up: one event so instances exist.
    post("/events", &json!({"events": [ev]}));
    let stats = || server.get("/stats");
    while stats()["succeeded"].as_u64().unwrap() < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }

    // (a) throughput, end to end.
    let sent = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut hs = Vec::new();
    for c in 0..clients {
        let (base, token, ev, sent) = (base.clone(), token.clone(), ev.clone(), sent.clone());
        hs.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            let mut i = c * 1_000_000;
            loop {
                let n = sent.fetch_add(batch, Ordering::Relaxed);
                if n >= events {
                    break;
                }
                let evs: Vec<Value> = (0..batch)
                    .map(|k| {
                        let mut e = ev.clone();
                        e["traceId"] = json!(format!("t{}", i + k));
                        e
                    })
                    .collect();
                i += batch;
                let r = http
                    .post(format!("{base}/events"))
                    .bearer_auth(&token)
                    .json(&json!({"events": evs}))
                    .send()
                    .unwrap();
                assert!(r.status().is_success());
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let ingest = t0.elapsed();
    let target = 1 + events.div_ceil(batch) * batch;
    while (stats()["succeeded"].as_u64().unwrap() as usize) < target {
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = t0.elapsed();
    let delivered = target - 1;

    // (b) latency from acknowledgement to handler start, one event per request, paced. Warm
    // the function first so cold starts (a Python start is ~70 ms here) are not counted.
    let mut warm_ev = ev.clone();
    warm_ev["eventName"] = json!("CdnDomainAdded");
    let warm: Vec<Value> = (0..32)
        .map(|i| {
            let mut e = warm_ev.clone();
            e["traceId"] = json!(format!("warm-{i}"));
            e
        })
        .collect();
    post("/events", &json!({"events": warm}));
    while std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .count()
        < 32
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sends = std::collections::HashMap::new();
    let mut acks = std::collections::HashMap::new();
    for i in 0..lat_events {
        let mut e = warm_ev.clone();
        e["traceId"] = json!(format!("lat-{i}"));
        let sent_at = now_ns();
        post("/events", &json!({"events": [e]}));
        acks.insert(format!("lat-{i}"), now_ns());
        sends.insert(format!("lat-{i}"), sent_at);
        std::thread::sleep(Duration::from_micros(500));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let stamps = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= lat_events + 32 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Two views of the same events: from the client's receipt of the acknowledgement (negative
    // when the handler started before the HTTP response arrived), and from the moment the
    // request was sent (an upper bound on acknowledgement -> start).
    let mut lat = Vec::new();
    let mut from_send = Vec::new();
    for l in stamps.lines() {
        let Some((id, t)) = l.split_once(' ') else {
            continue;
        };
        let (Some(ack), Some(sent), Ok(t)) = (acks.get(id), sends.get(id), t.parse::<i128>())
        else {
            continue;
        };
        lat.push((t - ack) as f64 / 1e6);
        from_send.push((t - sent) as f64 / 1e6);
    }
    server.kill9();

    println!(
        "machine: {} cores; event size {size} bytes; {clients} clients x {batch} events/request",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "raw python loop (one process, no-op handler): {raw_rate:.0} calls/s ({raw_ns:.0} ns/call)"
    );
    println!(
        "end to end: {delivered} events in {:.2} s = {:.0} events/s delivered (ingest acknowledged at {:.0} events/s)",
        total.as_secs_f64(),
        delivered as f64 / total.as_secs_f64(),
        delivered as f64 / ingest.as_secs_f64()
    );
    let n = lat.len();
    println!(
        "client ack received -> handler start over {n} events: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
    println!(
        "request sent -> handler start (upper bound of ack -> start): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(&mut from_send, 0.5),
        pct(&mut from_send, 0.99),
        pct(&mut from_send, 1.0)
    );
}
