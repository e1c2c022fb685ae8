//! PutEvents against the CDN ingest path, in the same run on the same server: events per second
//! from the request to handler completion with a no-op Python handler, and latency from the
//! request to handler start, for (1) `POST /events` with CDN events to a `cdn_events` trigger
//! and (2) `POST /openapi/putEvents` with CloudEvents of the same size to an `eventbridge`
//! trigger. Rounds alternate the two paths (A B A B ...) so the shared host's drift hits both.
//!
//! Run: `cargo bench -p fnbridge --bench put_events` (env: EVENTS, CLIENTS, BATCH, LAT_EVENTS,
//! ROUNDS).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Server, env_usize, sample_event};

const NOOP: &str = "def handler(event, context):\n    return ''\n";
/// Stamps the handler's start: the CDN event's traceId or the CloudEvent's id.
const STAMP: &str = r#"
import json, os, time
OUT = os.environ["OUT_FILE"]
def handler(event, context):
    t = time.time_ns()
    e = json.loads(event)
    key = e["events"][0]["traceId"] if "events" in e else e["id"]
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, ("%s %d\n" % (key, t)).encode())
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

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Ingest,
    PutEvents,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Ingest => "POST /events (cdn_events)",
            Path::PutEvents => "PutEvents (eventbridge)",
        }
    }
}

/// One event of `path` with key `key`: the sample CDN event for ingest, a CloudEvent of the
/// same size (the CDN event as its `data`) for PutEvents. `stamp` picks the events the stamping
/// function's trigger takes.
fn event(path: Path, sample: &Value, key: &str, stamp: bool) -> Value {
    match path {
        Path::Ingest => {
            let mut e = sample.clone();
            e["traceId"] = json!(key);
            if stamp {
                e["eventName"] = json!("CdnDomainAdded");
            }
            e
        }
        Path::PutEvents => {
            let mut data = sample.clone();
            if let Some(m) = data.as_object_mut() {
                m.remove("traceId");
            }
            json!({"specversion": "1.0", "id": key, "source": "bench.app",
                   "type": if stamp { "stamp" } else { "noop" },
                   "datacontenttype": "application/json", "data": data})
        }
    }
}

fn request(path: Path, events: Vec<Value>) -> (&'static str, Value) {
    match path {
        Path::Ingest => ("/events", json!({"events": events})),
        Path::PutEvents => ("/openapi/putEvents", Value::Array(events)),
    }
}

fn eb_trigger(server: &Server, function: &str, kind: &str) {
    let config = json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": json!({"source": ["bench.app"], "type": [kind]}).to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": "CloudEvents", "concurrency": 1}},
        "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL",
                       "retryStrategy": {"PushRetryStrategy": "BACKOFF_RETRY"}}});
    server.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": format!("eb-{kind}"), "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    );
}

struct Round {
    delivered_per_s: f64,
    acked_per_s: f64,
    p50: f64,
    p99: f64,
}

#[allow(clippy::too_many_arguments)]
fn round(
    server: &Server,
    path: Path,
    r: usize,
    sample: &Value,
    events: usize,
    clients: usize,
    batch: usize,
    lat_events: usize,
    out: &std::path::Path,
) -> Round {
    let succeeded = || server.get("/stats")["succeeded"].as_u64().unwrap() as usize;
    let before = succeeded();
    let sent = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut hs = Vec::new();
    for c in 0..clients {
        let (base, token, sample, sent) = (
            server.base.clone(),
            server.token.clone(),
            sample.clone(),
            sent.clone(),
        );
        hs.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            loop {
                let n = sent.fetch_add(batch, Ordering::Relaxed);
                if n >= events {
                    break;
                }
                let evs: Vec<Value> = (0..batch)
                    .map(|k| event(path, &sample, &format!("r{r}-c{c}-{}", n + k), false))
                    .collect();
                let (p, body) = request(path, evs);
                let resp = http
                    .post(format!("{base}{p}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .unwrap();
                assert!(resp.status().is_success(), "{}", resp.text().unwrap());
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let ingest = t0.elapsed();
    let target = events.div_ceil(batch) * batch;
    while succeeded() - before < target {
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = t0.elapsed();

    // Latency: single-event requests, paced, to the warm stamping function.
    let _ = std::fs::remove_file(out);
    let mut sends = std::collections::HashMap::new();
    for i in 0..lat_events {
        let key = format!("lat-{r}-{i}");
        let (p, body) = request(path, vec![event(path, sample, &key, true)]);
        let sent_at = now_ns();
        server.post(p, &body);
        sends.insert(key, sent_at);
        std::thread::sleep(Duration::from_micros(500));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let stamps = loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.lines().count() >= lat_events || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut lat: Vec<f64> = stamps
        .lines()
        .filter_map(|l| {
            let (id, t) = l.split_once(' ')?;
            Some((t.parse::<i128>().ok()? - sends.get(id)?) as f64 / 1e6)
        })
        .collect();
    Round {
        delivered_per_s: target as f64 / total.as_secs_f64(),
        acked_per_s: target as f64 / ingest.as_secs_f64(),
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
    }
}

fn main() {
    let events = env_usize("EVENTS", 10_000);
    let clients = env_usize("CLIENTS", 4);
    let batch = env_usize("BATCH", 100);
    let lat_events = env_usize("LAT_EVENTS", 1_000);
    let rounds = env_usize("ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    // The stamps file is in a directory the sandboxed instances may write (uid 65534).
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let mount = format!("{}:rw", shared.display());
    let (server, _) = Server::start(&dir.path().join("data"), &["--sandbox-mount", &mount]);
    let out = shared.join("stamps.txt");
    server.deploy("noop", NOOP);
    server.deploy_with(
        "stamp",
        STAMP,
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap()}}),
    );
    server.cdn_trigger("noop", "t-LogFileCreated", "LogFileCreated");
    server.cdn_trigger("stamp", "t-CdnDomainAdded", "CdnDomainAdded");
    eb_trigger(&server, "noop", "noop");
    eb_trigger(&server, "stamp", "stamp");
    let sample = sample_event();
    let sizes: Vec<usize> = [Path::Ingest, Path::PutEvents]
        .iter()
        .map(|p| event(*p, &sample, "r0-c0-0000", false).to_string().len())
        .collect();

    // Warm both functions' instances through both paths.
    for path in [Path::Ingest, Path::PutEvents] {
        for stamp in [false, true] {
            let evs = (0..32)
                .map(|i| event(path, &sample, &format!("warm-{i}"), stamp))
                .collect();
            let (p, body) = request(path, evs);
            server.post(p, &body);
        }
    }
    while server.get("/stats")["succeeded"].as_u64().unwrap() < 128 {
        std::thread::sleep(Duration::from_millis(5));
    }

    println!(
        "machine: {} cores; event size: CDN {} B, CloudEvent {} B; {clients} clients x {batch} events/request, {events} events and {lat_events} latency events per round",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        sizes[0],
        sizes[1]
    );
    let mut all: Vec<(Path, Round)> = Vec::new();
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [Path::Ingest, Path::PutEvents]
        } else {
            [Path::PutEvents, Path::Ingest]
        };
        for path in order {
            let x = round(
                &server, path, r, &sample, events, clients, batch, lat_events, &out,
            );
            println!(
                "round {r} {:<27} delivered {:>6.0} events/s (acknowledged {:>6.0}/s); request -> handler start p50 {:.3} ms, p99 {:.3} ms",
                path.name(),
                x.delivered_per_s,
                x.acked_per_s,
                x.p50,
                x.p99
            );
            all.push((path, x));
        }
    }
    let median = |path: Path, f: fn(&Round) -> f64| {
        let mut v: Vec<f64> = all
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, x)| f(x))
            .collect();
        pct(&mut v, 0.5)
    };
    for (label, f) in [
        (
            "delivered events/s",
            (|x: &Round| x.delivered_per_s) as fn(&Round) -> f64,
        ),
        ("acknowledged events/s", |x: &Round| x.acked_per_s),
        ("p50 ms", |x: &Round| x.p50),
        ("p99 ms", |x: &Round| x.p99),
    ] {
        let (a, b) = (median(Path::Ingest, f), median(Path::PutEvents, f));
        println!(
            "median {label:<22} ingest {a:>9.3}  PutEvents {b:>9.3}  PutEvents/ingest {:.2}",
            b / a
        );
    }
    server.kill9();
}
