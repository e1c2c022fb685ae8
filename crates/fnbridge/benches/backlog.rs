//! Backlog benchmark: what a large queue of undelivered events costs the server.
//!
//! - (a) queues BACKLOG events (default 1,000,000) for a function that cannot keep up (its
//!   handler sleeps), then reports the server's resident memory (RSS now and peak), and the
//!   time a restart after `kill -9` takes until the API answers and until the first queued
//!   delivery starts again;
//! - (b) database bytes per delivered event with 1 and with 100 matching triggers (fresh
//!   servers, DB_EVENTS events each, every delivery finished, WAL checkpointed).
//!
//! Run: `cargo bench -p fnbridge --bench backlog` (env: BACKLOG, DB_EVENTS).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, env_usize, sample_event};

/// Sends `n` events from 4 client threads, 100 per request.
fn ingest(s: &Server, n: usize) -> Duration {
    let ev = sample_event();
    let t = Instant::now();
    let per = n.div_ceil(4);
    std::thread::scope(|scope| {
        for c in 0..4 {
            let ev = &ev;
            scope.spawn(move || {
                let mut sent = c * per;
                let end = ((c + 1) * per).min(n);
                while sent < end {
                    let k = (end - sent).min(100);
                    let events: Vec<Value> = (sent..sent + k)
                        .map(|i| {
                            let mut e = ev.clone();
                            e["traceId"] = json!(format!("trace-{i}"));
                            e
                        })
                        .collect();
                    s.post("/events", &json!({"events": events}));
                    sent += k;
                }
            });
        }
    });
    t.elapsed()
}

fn db_bytes(data: &Path) -> u64 {
    ["fnbridge.db", "fnbridge.db-wal"]
        .iter()
        .map(|f| {
            std::fs::metadata(data.join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn bytes_per_event(root: &Path, triggers: usize, events: usize) -> (f64, f64) {
    let data: PathBuf = root.join(format!("db-{triggers}"));
    let (s, _) = Server::start(&data, &[]);
    s.deploy("noop", "def handler(event, context):\n    return ''\n");
    for i in 0..triggers {
        s.trigger("noop", &format!("t{i}"));
    }
    let before = db_bytes(&data);
    ingest(&s, events);
    let want = (events * triggers) as u64;
    while s.get("/stats")["succeeded"].as_u64().unwrap() < want {
        std::thread::sleep(Duration::from_millis(50));
    }
    while s.get("/stats")["open"].as_u64().unwrap() > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the last records commit, then stop cleanly so the WAL is checkpointed into the file.
    std::thread::sleep(Duration::from_millis(200));
    let pid = s.child.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut child = s.child;
    child.wait().unwrap();
    let c = bytes_in_use(&data);
    let after = db_bytes(&data);
    let per_event = (after.saturating_sub(before)) as f64 / events as f64;
    (per_event, c)
}

/// Bytes of the database file in use (not counting free pages) per the file itself: size
/// minus free-list pages, read from the SQLite header (page size at 16, free pages at 36).
fn bytes_in_use(data: &Path) -> f64 {
    let bytes = std::fs::read(data.join("fnbridge.db")).unwrap_or_default();
    if bytes.len() < 100 {
        return 0.0;
    }
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as u64;
    let page = if page == 1 { 65536 } else { page };
    let free = u32::from_be_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]) as u64;
    (bytes.len() as u64 - free * page) as f64
}

fn main() {
    let backlog = env_usize("BACKLOG", 1_000_000);
    let db_events = env_usize("DB_EVENTS", 5_000);
    let root = tempfile::tempdir().unwrap();

    // (b) first: small and quick.
    let (one, one_used) = bytes_per_event(root.path(), 1, db_events);
    let (hundred, hundred_used) = bytes_per_event(root.path(), 100, db_events / 10);
    println!(
        "database growth per delivered event: 1 trigger {one:.0} B/event ({:.0} KB in use), 100 triggers {hundred:.0} B/event ({:.0} KB in use)",
        one_used / 1024.0,
        hundred_used / 1024.0
    );

    // (a) the backlog.
    let data = root.path().join("backlog");
    let (s, _) = Server::start(&data, &["--max-in-flight-per-function", "2"]);
    s.deploy(
        "slow",
        "import time\ndef handler(event, context):\n    time.sleep(30)\n    return ''\n",
    );
    s.trigger("slow", "t");
    let (rss0, _) = s.rss_kb();
    let took = ingest(&s, backlog);
    let st = s.get("/stats");
    let (rss, hwm) = s.rss_kb();
    println!(
        "queued {backlog} events in {:.1} s ({:.0} events/s); open {} resident {} ({} KB of payloads)",
        took.as_secs_f64(),
        backlog as f64 / took.as_secs_f64(),
        st["open"],
        st["resident"],
        st["residentBytes"].as_u64().unwrap_or(0) / 1024
    );
    println!(
        "server RSS: {:.1} MB at start, {:.1} MB with the backlog, peak {:.1} MB; database {:.0} MB",
        rss0 as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        db_bytes(&data) as f64 / 1048576.0
    );
    s.kill9();
    let (s, ready) = Server::start(&data, &["--max-in-flight-per-function", "2"]);
    let t = Instant::now();
    while s.get("/stats")["running"].as_u64().unwrap() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let first = ready + t.elapsed();
    let st = s.get("/stats");
    let (rss, _) = s.rss_kb();
    println!(
        "restart after kill -9 with {} open: API answers after {:.0} ms, first delivery running after {:.0} ms; RSS {:.1} MB",
        st["open"],
        ready.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0,
        rss as f64 / 1024.0
    );
    s.kill9();
}
