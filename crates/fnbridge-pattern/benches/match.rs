//! Matching throughput on one core: events matched per second against 1 / 100 / 10,000 / 100,000
//! patterns for three workloads (CDN domain filters, OSS prefix/suffix filters, a mixed
//! EventBridge set), ~1 KB events of the Alibaba CDN and OSS shapes, plus the naive loop
//! evaluator at 100 and 10,000 patterns. The index is measured on the path the platform uses
//! (`Matcher::matches_serialized_into`, events it serialized from a map) and, for comparison, on
//! the trusted-bytes path (`matches_trusted_into`, which never stops early) and the validating
//! path (`matches_into`); `BENCH_NO_VALIDATING=1` leaves those two out. Plain `std::time`; run
//! with `cargo bench -p fnbridge-pattern --bench match`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use fnbridge_pattern::compile::{CDN_EVENT_NAMES, cdn_events, oss};
use fnbridge_pattern::{FullEvent, Matcher, Pattern, Serialized};
use serde_json::json;

const EVENTS: usize = 20_000;
const SIZES: [usize; 4] = [1, 100, 10_000, 100_000];
const MIN_TIME: Duration = Duration::from_millis(1500);

/// xorshift64*: deterministic, dependency-free.
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

fn cdn_event(rng: &mut Rng, pool: usize) -> String {
    let name = *rng.pick(&CDN_EVENT_NAMES);
    // Most events concern a configured domain; some match nothing.
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

fn cdn_patterns(rng: &mut Rng, n: usize, pool: usize) -> Vec<Pattern> {
    (0..n)
        .map(|i| {
            // Every domain of the pool is configured at least once once n >= pool.
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

const OSS_TYPES: [&str; 6] = [
    "PutObject",
    "PostObject",
    "CopyObject",
    "AppendObject",
    "CompleteMultipartUpload",
    "DeleteObject",
];
const EXTS: [&str; 8] = [
    ".jpg", ".png", ".zip", ".csv", ".json", ".log", ".mp4", ".tar.gz",
];

fn bucket(i: usize) -> String {
    format!("bucket-{i}")
}

fn oss_key(rng: &mut Rng) -> String {
    format!(
        "dir{}/sub{}/file-{}{}",
        rng.below(200),
        rng.below(10),
        rng.below(100_000),
        rng.pick(&EXTS)
    )
}

fn oss_record(rng: &mut Rng, buckets: usize) -> serde_json::Value {
    oss_record_with(rng, buckets, true)
}

/// An OSS event object; `rich` adds the user metadata a native event carries (the CloudEvent
/// form below omits it to stay near 1 KB with its envelope).
fn oss_record_with(rng: &mut Rng, buckets: usize, rich: bool) -> serde_json::Value {
    let t = *rng.pick(&OSS_TYPES);
    let family = if t == "DeleteObject" {
        "ObjectRemoved"
    } else {
        "ObjectCreated"
    };
    let b = bucket(rng.below(buckets));
    let key = oss_key(rng);
    json!({"eventName": format!("{family}:{t}"), "eventSource": "acs:oss", "eventTime": "2022-08-13T06:45:43.000Z",
        "eventVersion": "1.0",
        "oss": {"bucket": {"arn": format!("acs:oss:cn-hangzhou:1234567890123456:{b}"), "name": b,
                           "ownerIdentity": "1234567890123456", "virtualBucket": ""},
                "object": {"deltaSize": 122539, "eTag": "688A7BF4F233DC9C88A80BF985AB7329", "key": key,
                           "size": rng.below(10_000_000), "objectMeta": if rich {
                               json!({"mimeType": "application/octet-stream",
                                      "userMeta": {"x-oss-meta-last-modified": "20250213", "x-oss-meta-owner": "data-pipeline-team",
                                                   "x-oss-meta-source": "ingest-gateway-cn-hangzhou-03",
                                                   "x-oss-meta-checksum-sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}})
                           } else {
                               json!({"mimeType": "application/octet-stream"})
                           }},
                "ossSchemaVersion": "1.0", "ruleId": "9adac8e253828f4f7c0466d941fa3db81161e853"},
        "region": "cn-hangzhou", "requestParameters": {"sourceIPAddress": format!("140.205.{}.{}", rng.below(256), rng.below(256))},
        "responseElements": {"requestId": format!("58F9FF2D3DF792092E{:06X}", rng.below(1 << 24))},
        "userIdentity": {"principalId": "1234567890123456"}})
}

fn oss_event(rng: &mut Rng, buckets: usize) -> String {
    oss_record(rng, buckets).to_string()
}

fn oss_patterns(rng: &mut Rng, n: usize, buckets: usize) -> Vec<Pattern> {
    (0..n)
        .map(|i| {
            let events: Vec<String> = match rng.below(3) {
                0 => vec!["oss:ObjectCreated:*".into()],
                1 => vec![format!("oss:ObjectCreated:{}", OSS_TYPES[rng.below(5)])],
                _ => vec![
                    "oss:ObjectCreated:PutObject".into(),
                    "oss:ObjectRemoved:DeleteObject".into(),
                ],
            };
            let prefix = format!("dir{}/", rng.below(200));
            let suffix = rng.pick(&EXTS).to_string();
            let key = match rng.below(3) {
                0 => json!({"prefix": prefix}),
                1 => json!({"suffix": suffix}),
                _ => json!({"prefix": prefix, "suffix": suffix}),
            };
            let b = if i < buckets { i } else { rng.below(buckets) };
            let arn = format!("acs:oss:cn-hangzhou:1234567890123456:{}", bucket(b));
            oss(
                &json!({"events": events, "filter": {"key": key}}),
                Some(&arn),
            )
            .unwrap()
            .pattern
        })
        .collect()
}

/// The EventBridge CloudEvent for an OSS event (events.md §6).
fn cloud_event(rng: &mut Rng, buckets: usize) -> String {
    let data = oss_record_with(rng, buckets, false);
    let b = data["oss"]["bucket"]["name"].as_str().unwrap().to_string();
    let key = data["oss"]["object"]["key"].as_str().unwrap().to_string();
    let name = data["eventName"].as_str().unwrap().to_string();
    json!({"id": format!("69B1A2C3D4E5F607182{:05X}", rng.below(1 << 20)), "source": "acs.oss", "specversion": "1.0",
        "type": format!("oss:{name}"), "subject": format!("acs:oss:cn-hangzhou:1234567890123456:{b}/{key}"),
        "time": "2026-03-11T05:40:45.000Z", "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": "1234567890123456", "aliyunoriginalaccountid": "1234567890123456",
        "aliyuneventbusname": "default", "aliyunregionid": if rng.below(4) == 0 { "cn-shanghai" } else { "cn-hangzhou" },
        "aliyunpublishtime": "2026-03-11T05:40:45.682Z", "aliyunpublishaddr": "10.50.132.112", "data": data})
    .to_string()
}

fn mixed_patterns(rng: &mut Rng, n: usize, buckets: usize) -> Vec<Pattern> {
    (0..n)
        .map(|i| {
            let b = bucket(if i < buckets { i } else { rng.below(buckets) });
            let subject = format!("acs:oss:cn-hangzhou:1234567890123456:{b}/");
            let mut p = json!({"source": ["acs.oss"], "data": {"oss": {"bucket": {"name": [b]}}}});
            match i % 7 {
                0 => p["type"] = json!([format!("oss:ObjectCreated:{}", rng.pick(&OSS_TYPES))]),
                1 => p["subject"] = json!([{"prefix": format!("{subject}dir{}/", rng.below(200))}]),
                2 => p["data"]["oss"]["object"] = json!({"key": [{"suffix": rng.pick(&EXTS)}]}),
                3 => {
                    let lo = rng.below(9_000_000);
                    p["data"]["oss"]["object"] = json!({"size": [{"numeric": [">=", lo, "<", lo + 1_000_000]}]})
                }
                4 => p["aliyunregionid"] = json!([{"anything-but": ["cn-shanghai", "cn-beijing"]}]),
                5 => p["subject"] = json!([{"wildcard": format!("{subject}dir{}/*{}", rng.below(200), rng.pick(&EXTS))}]),
                _ => p["data"]["requestParameters"] = json!({"sourceIPAddress": [{"exists": true}]}),
            }
            Pattern::parse(&p.to_string()).unwrap()
        })
        .collect()
}

struct Row {
    workload: &'static str,
    patterns: usize,
    engine: &'static str,
    events_per_s: f64,
    best: f64,
    matches_per_event: f64,
    build: Duration,
}

/// CPU time this thread has run, from the scheduler (nanosecond resolution): rates are per CPU
/// second, so another process sharing the machine slows the wall clock but not the figure. Falls
/// back to wall time where the file does not exist.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }
    fn wall(&self) -> Duration {
        self.wall.elapsed()
    }
    /// Seconds of CPU time since start (wall time if unavailable).
    fn secs(&self) -> f64 {
        match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Rounds per measurement; the median round is reported (the machine is shared, so single
/// rounds can be disturbed by other processes).
const ROUNDS: usize = 7;

/// How the index reads events: as the platform does (`Matcher::matches_serialized_into` on the
/// text it has just serialized), trusting valid JSON bytes (`matches_trusted_into`), or
/// validating everything (`matches_into`).
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Serialized,
    Trusted,
    Validating,
}

fn run_index(m: &Matcher, events: &[Serialized], path: Path) -> (f64, f64, f64) {
    let mut out = Vec::new();
    let matches_into = |e: &Serialized, out: &mut Vec<u64>| match path {
        Path::Serialized => m.matches_serialized_into(e, out),
        Path::Trusted => m.matches_trusted_into(e.as_str().as_bytes(), out),
        Path::Validating => m.matches_into(e.as_str().as_bytes(), out),
    };
    // Warm-up pass.
    for e in events {
        matches_into(e, &mut out).unwrap();
    }
    let mut rates = Vec::with_capacity(ROUNDS);
    let (mut n_all, mut hits) = (0usize, 0usize);
    for _ in 0..ROUNDS {
        let clock = Clock::start();
        let mut n = 0usize;
        while clock.wall() < MIN_TIME / ROUNDS as u32 {
            for e in events {
                matches_into(black_box(e), &mut out).unwrap();
                hits += out.len();
            }
            n += events.len();
        }
        rates.push(n as f64 / clock.secs());
        n_all += n;
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        rates[ROUNDS / 2],
        rates[ROUNDS - 1],
        hits as f64 / n_all as f64,
    )
}

/// One timed round of the platform's path over `events` (at least `MIN_TIME / ROUNDS`):
/// events per CPU second.
fn one_round(m: &Matcher, events: &[Serialized]) -> f64 {
    let mut out = Vec::new();
    let clock = Clock::start();
    let mut n = 0usize;
    while clock.wall() < MIN_TIME / ROUNDS as u32 {
        for e in events {
            m.matches_serialized_into(black_box(e), &mut out).unwrap();
        }
        n += events.len();
    }
    n as f64 / clock.secs()
}

/// The 100,000-pattern rate over the 100-pattern rate, measured in paired rounds (A B B A, ...)
/// so that the load other processes put on the machine, which drifts over seconds, weighs on
/// both sides of each ratio alike. Returns the median and the range of the per-pair ratios.
fn paired_ratio(
    small: (&Matcher, &[Serialized]),
    large: (&Matcher, &[Serialized]),
) -> (f64, f64, f64) {
    for (m, ev) in [small, large] {
        one_round(m, ev); // warm-up
    }
    let mut ratios = Vec::with_capacity(ROUNDS);
    for k in 0..ROUNDS {
        let (a, b) = if k % 2 == 0 {
            let a = one_round(small.0, small.1);
            (a, one_round(large.0, large.1))
        } else {
            let b = one_round(large.0, large.1);
            (one_round(small.0, small.1), b)
        };
        ratios.push(b / a);
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (ratios[ROUNDS / 2], ratios[0], ratios[ROUNDS - 1])
}

fn run_naive(patterns: &[Pattern], events: &[String]) -> (f64, f64) {
    let budget = Duration::from_millis(1500);
    let clock = Clock::start();
    let (mut n, mut hits) = (0usize, 0usize);
    'outer: loop {
        for e in events {
            let ev = FullEvent::parse(black_box(e.as_bytes())).unwrap();
            hits += patterns.iter().filter(|p| p.matches_event(&ev)).count();
            n += 1;
            if n % 16 == 0 && clock.wall() > budget {
                break 'outer;
            }
        }
    }
    let secs = clock.secs();
    (n as f64 / secs, hits as f64 / n as f64)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects workloads by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut rows = Vec::new();
    let mut ratios: Vec<(&str, f64, f64, f64)> = Vec::new();
    type Gen = fn(&mut Rng, usize, usize) -> Vec<Pattern>;
    type EvGen = fn(&mut Rng, usize) -> String;
    let workloads: [(&'static str, Gen, EvGen); 3] = [
        ("cdn", cdn_patterns, cdn_event),
        ("oss", oss_patterns, oss_event),
        ("mixed", mixed_patterns, cloud_event),
    ];
    for (name, gen_patterns, gen_event) in workloads {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let sizes: Vec<usize> = match std::env::var("BENCH_SIZES") {
            Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
            Err(_) => SIZES.to_vec(),
        };
        // The 100 and 100,000-pattern matchers, kept for the paired ratio.
        let mut kept: Vec<(usize, Matcher, Vec<Serialized>)> = Vec::new();
        for &n in &sizes {
            // CDN: a domain pool as large as the pattern set (each domain in ~2 patterns);
            // OSS and mixed: ten patterns per bucket.
            let pool = if name == "cdn" {
                n.max(100)
            } else {
                (n / 10).max(10)
            };
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
            let patterns = gen_patterns(&mut rng, n, pool);
            let count = std::env::var("BENCH_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(EVENTS);
            let events: Vec<String> = (0..count).map(|_| gen_event(&mut rng, pool)).collect();
            let avg_len = events.iter().map(String::len).sum::<usize>() / events.len();
            let m = match std::env::var("BENCH_GROUP_MAX")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                Some(g) => Matcher::with_group_max(g),
                None => Matcher::new(),
            };
            let t = Instant::now();
            m.insert_many(
                patterns
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(i, p)| (i as u64, p)),
            );
            let build = t.elapsed();
            // The events as the platform holds them: serialized from a map.
            let serialized: Vec<Serialized> = events
                .iter()
                .map(|e| {
                    let s = Serialized::from_value(&serde_json::from_str(e).unwrap());
                    assert_eq!(s.as_str(), e);
                    s
                })
                .collect();
            let others = std::env::var_os("BENCH_NO_VALIDATING").is_none();
            for (engine, path) in [
                ("index", Path::Serialized),
                ("index, trusted bytes", Path::Trusted),
                ("index, validating", Path::Validating),
            ] {
                if path != Path::Serialized && !others {
                    continue;
                }
                let (rate, best, hits) = run_index(&m, &serialized, path);
                eprintln!(
                    "{name:>6} {n:>7} patterns  {engine:<17}  {rate:>12.0} events/s (best round {best:.0})  {hits:>6.2} matches/event  build {build:?}  ({avg_len} B events)"
                );
                rows.push(Row {
                    workload: name,
                    patterns: n,
                    engine,
                    events_per_s: rate,
                    best,
                    matches_per_event: hits,
                    build,
                });
            }
            if (n == 100 || n == 10_000) && std::env::var_os("BENCH_NO_NAIVE").is_none() {
                let (rate, hits) = run_naive(&patterns, &events);
                eprintln!(
                    "{name:>6} {n:>7} patterns  naive  {rate:>12.0} events/s  {hits:>6.2} matches/event"
                );
                rows.push(Row {
                    workload: name,
                    patterns: n,
                    engine: "naive loop",
                    events_per_s: rate,
                    best: rate,
                    matches_per_event: hits,
                    build: Duration::ZERO,
                });
            }
            if n == 100 || n == 100_000 {
                kept.push((n, m, serialized));
            }
        }
        if let [(100, m_small, ev_small), (100_000, m_large, ev_large)] = kept.as_slice() {
            let (median, lo, hi) = paired_ratio((m_small, ev_small), (m_large, ev_large));
            eprintln!(
                "{name:>6} 100,000 vs 100 patterns, paired rounds: {median:.2} (range {lo:.2}-{hi:.2})"
            );
            ratios.push((name, median, lo, hi));
        }
    }

    if filter.is_none() || filter.as_deref() == Some("incremental") {
        // Inserting 100,000 CDN patterns one at a time (the logarithmic merge policy).
        let n = 100_000;
        let mut rng = Rng(7);
        let patterns = cdn_patterns(&mut rng, n, n);
        let events: Vec<Serialized> = (0..EVENTS)
            .map(|_| {
                Serialized::from_value(&serde_json::from_str(&cdn_event(&mut rng, n)).unwrap())
            })
            .collect();
        let m = Matcher::new();
        let t = Instant::now();
        for (i, p) in patterns.iter().enumerate() {
            m.insert(i as u64, p);
        }
        let build = t.elapsed();
        let (rate, best, hits) = run_index(&m, &events, Path::Serialized);
        eprintln!(
            "cdn {n} patterns inserted one at a time: {build:?}, {} segments, {rate:.0} events/s, {hits:.2} matches/event",
            m.segments()
        );
        rows.push(Row {
            workload: "cdn (one-by-one inserts)",
            patterns: n,
            engine: "index",
            events_per_s: rate,
            best,
            matches_per_event: hits,
            build,
        });
    }

    if !ratios.is_empty() {
        println!(
            "\n| workload | rate at 100,000 patterns / rate at 100, paired rounds: median | range |"
        );
        println!("|---|---:|---:|");
        for (name, median, lo, hi) in &ratios {
            println!("| {name} | {median:.2} | {lo:.2}-{hi:.2} |");
        }
    }
    println!(
        "\n| workload | patterns | engine | events/s (median) | events/s (best round) | matches/event | build |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for r in &rows {
        let build = if r.build.is_zero() {
            "-".to_string()
        } else {
            format!("{:.1} ms", r.build.as_secs_f64() * 1000.0)
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {} |",
            r.workload, r.patterns, r.engine, r.events_per_s, r.best, r.matches_per_event, build
        );
    }
}
