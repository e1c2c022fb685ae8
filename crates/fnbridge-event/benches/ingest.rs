//! Ingest's CPU per event against the matcher's alone, on one core: 20,000 ~1 KB CDN events in
//! envelopes of 100, 10,000 `cdn_events` domain patterns (the generator of fnbridge-pattern's
//! `match` bench, so the figures compare).
//!
//! - `matcher`: `Matcher::matches_into` on each event's bytes (validating), nothing else.
//! - `ingest`: `Envelope::parse_matching` on each 100-event envelope (one probed walk per event,
//!   where it starts in the body: validation, captures and match), the envelope's event texts
//!   joined as they are stored, and the `{"events":[event]}` payload of each event that has tasks:
//!   all of `Dispatcher::ingest`'s CPU before the database commit but creating the task rows.
//! - `serde round trip`, for reference: what ingest did before (the envelope parsed into
//!   `serde_json` values, each event serialized again and matched with `matches_serialized`),
//!   without its validation checks, so slightly flattering to it.
//!
//! The two first run in paired rounds (A B B A ...), each at least `MIN_ROUND` of CPU, and the
//! ratio is taken per pair: the shared host's load drifts over seconds and would otherwise move
//! the ratio more than the code does. Run with `cargo bench -p fnbridge-event --bench ingest`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use fnbridge_event::Envelope;
use fnbridge_event::envelope::joined_texts;
use fnbridge_pattern::compile::{CDN_EVENT_NAMES, cdn_events};
use fnbridge_pattern::{Matcher, Pattern, Serialized};
use serde_json::{Value, json};

const EVENTS: usize = 20_000;
const PER_ENVELOPE: usize = 100;
const PATTERNS: usize = 10_000;
const MIN_ROUND: Duration = Duration::from_millis(400);

/// xorshift64*, as in the pattern bench.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn domain(i: usize) -> String {
    format!("cdn{i}.example{}.com", i % 97)
}

/// The pattern bench's CDN event.
fn cdn_event(rng: &mut Rng, pool: usize) -> String {
    let name = *rng.pick(&CDN_EVENT_NAMES);
    let d = if rng.below(10) < 9 {
        domain(rng.below(pool))
    } else {
        format!("unknown{}.net", rng.below(1000))
    };
    let trace = format!(
        "{:08x}-6a4d-4413-894c-{:012x}",
        rng.next() as u32,
        rng.next() >> 16
    );
    let param = if name == "LogFileCreated" {
        json!({"domain": d, "startTime": 1528959600, "endTime": 1528963200, "fileSize": 1788115,
            "filePath": format!("http://cdnlog.cn-hangzhou.oss.aliyun-inc.com/{d}/2018_06_14/{d}_2018_06_14_150000_160000.gz?OSSAccessKeyId=LTAI4G8x7pQkZ3sKfD2wE9aB&Expires=1529049600&Signature=q0r7nB3vQ%2F8zJk9TnXv2sLh4YwE%3D&x-oss-process=log%2Fformat%2Cv2&x-oss-request-id=5B2213F0C5D1E8A3B71F4E62&response-content-disposition=attachment%3B%20filename%3D{d}_2018_06_14_150000_160000.gz&response-content-type=application%2Fgzip&security-token=CAISzwJ1q6Ft5B2yfSjIr5bMPdfhq5RK0YuCYRPfjmUBO9Zq3PLdtzz2IHhMeHFoBe0bs")})
    } else {
        json!({"domain": d, "taskId": 2089687230u64 + rng.below(1000) as u64, "objectType": "File",
            "objectPath": ["/2018/03/16/13/33b430c57e7.mp4", "/2018/03/16/14/4ff6b9bd54d.mp4", "/static/js/app.7f3c2a.js",
                "/images/banner/2024/summer-sale-hero.webp", "/static/css/main.2b9f1e.css", "/video/hls/episode-0142/index.m3u8",
                "/video/hls/episode-0142/segment-00017.ts", "/downloads/installer/client-setup-3.14.2-x64.exe",
                "/api/v2/catalog/products?page=3&size=50&sort=price_desc", "/assets/fonts/NotoSansSC-Regular.woff2",
                "/images/products/sku-88231/gallery-03-large.jpg", "/docs/manual/v3/getting-started.html"],
            "createTime": 1521180769, "completeTime": 1521180777, "status": "online"})
    };
    json!({"eventName": name, "eventSource": "cdn", "region": "cn-hangzhou", "eventVersion": "1.0.0",
        "eventTime": "2018-06-14T15:31:49+08:00", "traceId": trace,
        "userIdentity": {"aliUid": "1234567890123456"}, "resource": {"domain": d},
        "eventParameter": param})
    .to_string()
}

/// The pattern bench's `cdn_events` patterns.
fn cdn_patterns(rng: &mut Rng, n: usize, pool: usize) -> Vec<Pattern> {
    (0..n)
        .map(|i| {
            let mut domains = vec![domain(if i < pool { i } else { rng.below(pool) })];
            for _ in 0..rng.below(3) {
                domains.push(domain(rng.below(pool)));
            }
            let cfg = json!({"eventName": rng.pick(&CDN_EVENT_NAMES), "eventVersion": "1.0.0",
                "filter": {"domain": domains}});
            cdn_events(&cfg).unwrap().pattern
        })
        .collect()
}

/// CPU time of this thread (see the pattern bench); wall time where unavailable.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// Runs `pass` (one pass over all events) until `MIN_ROUND` has elapsed; CPU ns per event.
fn round(events: usize, mut pass: impl FnMut() -> usize) -> f64 {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let (mut n, mut sink) = (0usize, 0usize);
    while wall.elapsed() < MIN_ROUND {
        sink += pass();
        n += events;
    }
    black_box(sink);
    let secs = match (cpu, thread_cpu()) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => wall.elapsed().as_secs_f64(),
    };
    secs * 1e9 / n as f64
}

/// `n` passes, in a function of its own so that callgrind can count it alone
/// (`--collect-atstart=no --toggle-collect='*profiled_passes*'`).
#[inline(never)]
fn profiled_passes(n: usize, pass: &dyn Fn() -> usize) {
    for _ in 0..n {
        black_box(pass());
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ PATTERNS as u64);
    let patterns = cdn_patterns(&mut rng, PATTERNS, PATTERNS);
    let m = Matcher::new();
    m.insert_many(patterns.into_iter().enumerate().map(|(i, p)| (i as u64, p)));
    let events: Vec<String> = (0..EVENTS).map(|_| cdn_event(&mut rng, PATTERNS)).collect();
    let avg = events.iter().map(String::len).sum::<usize>() / EVENTS;

    // The envelopes, and where each event sits in its envelope: the matcher alone reads those
    // very bytes.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut spans: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for (k, chunk) in events.chunks(PER_ENVELOPE).enumerate() {
        let mut b = b"{\"events\":[".to_vec();
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            spans.push((k, b.len()..b.len() + e.len()));
            b.extend_from_slice(e.as_bytes());
        }
        b.extend_from_slice(b"]}");
        bodies.push(b);
    }

    // Both paths agree before anything is timed.
    let mut out = Vec::new();
    let mut matched = 0usize;
    let mut it = spans.iter();
    for body in &bodies {
        let env = Envelope::parse_matching(body, &m).unwrap();
        for ev in &env.events {
            let (k, r) = it.next().unwrap();
            m.matches_into(&bodies[*k][r.clone()], &mut out).unwrap();
            assert_eq!(ev.matched, out);
            assert_eq!(ev.text().as_bytes(), &bodies[*k][r.clone()]);
            matched += out.len();
        }
    }

    let matcher_pass = || {
        let mut out = Vec::new();
        let mut hits = 0;
        for (k, r) in &spans {
            m.matches_into(black_box(&bodies[*k][r.clone()]), &mut out)
                .unwrap();
            hits += out.len();
        }
        hits
    };
    let ingest_pass = || {
        let mut bytes = 0;
        for body in &bodies {
            let env = Envelope::parse_matching(black_box(body), &m).unwrap();
            // What Dispatcher::ingest builds for the store and the deliveries: the texts stored,
            // joined, and the payload of each event that has tasks (here every matched event:
            // every pattern is a CDN trigger's).
            let (texts, spans) = joined_texts(&env.events);
            for (ev, span) in env.events.iter().zip(spans) {
                if !ev.matched.is_empty() {
                    bytes += black_box(ev.payload()).len();
                }
                bytes += span.len() + ev.matched.len();
            }
            black_box(texts);
        }
        bytes
    };
    let serde_pass = || {
        let mut hits = 0;
        for body in &bodies {
            let v: Value = serde_json::from_slice(black_box(body)).unwrap();
            let Value::Object(mut top) = v else {
                unreachable!()
            };
            let Some(Value::Array(evs)) = top.remove("events") else {
                unreachable!()
            };
            for e in evs {
                let Value::Object(map) = e else {
                    unreachable!()
                };
                let s = Serialized::from_map(&map);
                hits += m.matches_serialized(&s).unwrap().len();
                let payload = fnbridge_event::envelope::delivery_payload(s.as_str());
                hits += black_box(payload).len();
            }
        }
        hits
    };

    // For a profiler: one path only, for a few seconds, or for `BENCH_PASSES` passes (an
    // instruction counter such as callgrind is too slow for seconds of work, and a fixed count
    // lets a run with 0 passes be subtracted as the setup's share).
    if let Ok(which) = std::env::var("BENCH_PROFILE") {
        let passes: Option<usize> = std::env::var("BENCH_PASSES")
            .ok()
            .and_then(|v| v.parse().ok());
        let pass = || {
            black_box(if which == "matcher" {
                matcher_pass()
            } else {
                ingest_pass()
            })
        };
        match passes {
            Some(n) => profiled_passes(n, &pass),
            None => {
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(5) {
                    pass();
                }
            }
        }
        return;
    }
    eprintln!(
        "{EVENTS} CDN events of {avg} B on average in envelopes of {PER_ENVELOPE}, {PATTERNS} patterns, {:.2} matches/event; {rounds} paired rounds",
        matched as f64 / EVENTS as f64
    );
    // Warm-up.
    round(EVENTS, matcher_pass);
    round(EVENTS, ingest_pass);
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..rounds {
        let (x, y) = if k % 2 == 0 {
            let x = round(EVENTS, matcher_pass);
            (x, round(EVENTS, ingest_pass))
        } else {
            let y = round(EVENTS, ingest_pass);
            (round(EVENTS, matcher_pass), y)
        };
        eprintln!(
            "  round {k}: matcher {x:.0} ns/event, ingest {y:.0} ns/event, ratio {:.2}",
            y / x
        );
        a.push(x);
        b.push(y);
        ratios.push(y / x);
    }
    let serde = round(EVENTS, serde_pass);
    let (lo, hi) = (
        ratios.iter().cloned().fold(f64::MAX, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max),
    );
    let (ma, mb, mr) = (median(&mut a), median(&mut b), median(&mut ratios));
    println!("\n| path | CPU per event (median) | events/s per core |");
    println!("|---|---:|---:|");
    println!(
        "| `Matcher::matches` alone | {ma:.0} ns | {:.2}M |",
        1e3 / ma
    );
    println!(
        "| ingest: `Envelope::parse_matching`, stored texts, payloads | {mb:.0} ns | {:.2}M |",
        1e3 / mb
    );
    println!(
        "| serde round trip (before), one run | {serde:.0} ns | {:.0}K |",
        1e6 / serde
    );
    println!("\ningest / matcher, paired rounds: median {mr:.2} (range {lo:.2}-{hi:.2})");
}
