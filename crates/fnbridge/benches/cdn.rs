//! CDN edge benchmark against nginx `proxy_cache`, in one run: a plain origin (an nginx serving
//! static 1 KB and 100 KB files, keep-alive), fnbridge's edge (`fnbridge serve`, a domain whose
//! origin is that nginx by IP:port), and Debian `nginx` with `proxy_cache` in front of the same
//! origin, once with `worker_processes 1` and once with `auto`. Every edge logs every request
//! (fnbridge: its offline-log lines; nginx: the combined access log). Load is `wrk` with
//! `Host: bench.example.com`; each row runs the targets one after the other.
//!
//! Rows: hits of 1 KB and 100 KB (warmed first, checked `X-Cache: HIT`), misses of 1 KB and
//! 100 KB (a query string no other request used, from benches/cdn_miss.lua; the domain does not
//! ignore parameters), then the caches' size against their bounds after those streams of misses
//! (fnbridge: memory tier bound `--cdn-cache-mb` plus disk tier `--cdn-disk-cache-mb`; nginx:
//! `max_size` of `proxy_cache_path`). Everything (caches, logs, data dir) is on tmpfs
//! (`/dev/shm`), as in ../shared/benchmarks/anchors.md.
//!
//! Needs `nginx` and `wrk` on PATH (`apt-get install nginx-light wrk`) and root (nginx workers
//! run as root to read the temp dir). `CDN_BENCH_SECONDS` (default 4) is each row's window,
//! `CDN_BENCH_ROUNDS` (3) how many times every row runs (targets interleaved; the median is
//! reported with the range, as the shared host's load moves figures by tens of percent),
//! `CDN_BENCH_CONNS` (64) wrk's connections, `CDN_BENCH_THREADS` (1) its threads,
//! `CDN_BENCH_CACHE_MB` (32) / `CDN_BENCH_DISK_MB` (128) the edges' memory and disk bounds
//! (nginx gets `max_size` = the disk bound plus the memory bound), `CDN_BENCH_ROWS` (all) runs
//! only the rows whose name contains it (e.g. `miss`).
//! Run: `nice -n 10 cargo bench -p fnbridge --bench cdn`.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Server, env_usize};

const HOST: &str = "bench.example.com";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An nginx master process, stopped gracefully (SIGTERM) so its workers go with it.
struct Nginx {
    child: Child,
}

impl Nginx {
    fn start(dir: &Path, name: &str, conf: &str) -> Nginx {
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx on PATH (apt-get install nginx-light)");
        Nginx { child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The `http {}` preamble every nginx here shares: temp paths inside `dir`.
fn preamble(dir: &Path, name: &str, workers: &str) -> String {
    let d = dir.display();
    format!(
        "user root;\nworker_processes {workers};\npid {d}/{name}.pid;\nerror_log {d}/{name}.err warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  client_body_temp_path {d}/{name}-t1; proxy_temp_path {d}/{name}-t2;\n  \
         fastcgi_temp_path {d}/{name}-t3; uwsgi_temp_path {d}/{name}-t4; scgi_temp_path {d}/{name}-t5;\n  \
         keepalive_requests 1000000;\n"
    )
}

/// Bytes of the files under `dir` (what a cache holds on disk).
fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

struct Row {
    rps: f64,
    p50: String,
    p99: String,
    requests: u64,
    errors: u64,
}

/// `wrk` against `url` (with the miss script and its args when given).
fn wrk(url: &str, seconds: &str, script: Option<(&Path, &str, &str)>) -> Row {
    let conns = env_usize("CDN_BENCH_CONNS", 64).to_string();
    let threads = env_usize("CDN_BENCH_THREADS", 1).to_string();
    let mut c = Command::new("wrk");
    c.args(["-t", &threads, "-c", &conns, "-d", seconds, "--latency"])
        .args(["-H", &format!("Host: {HOST}")]);
    if let Some((s, _, _)) = script {
        c.arg("-s").arg(s);
    }
    c.arg(url);
    if let Some((_, path, nonce)) = script {
        c.args(["--", path, nonce]);
    }
    let out = c.output().expect("wrk on PATH (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let num = |prefix: &str, nth: usize| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(nth))
            .map(str::to_owned)
    };
    let rps = num("Requests/sec:", 1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no rate for {url}:\n{text}"));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let errors = num("Non-2xx or 3xx responses:", 4)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64)
        + num("Socket errors:", 3).map(|_| 1).unwrap_or(0);
    if errors > 0 {
        eprintln!("wrk: errors from {url}:\n{text}");
    }
    Row {
        rps,
        p50: num("50%", 1).unwrap_or_else(|| "-".into()),
        p99: num("99%", 1).unwrap_or_else(|| "-".into()),
        requests,
        errors,
    }
}

/// One GET through an edge: (status, X-Cache, body length).
fn get(http: &reqwest::blocking::Client, port: u16, path: &str) -> (u16, String, usize) {
    let r = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", HOST)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let xc = r
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    (status, xc, r.bytes().unwrap().len())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let seconds = format!("{}s", env_usize("CDN_BENCH_SECONDS", 4));
    let cache_mb = env_usize("CDN_BENCH_CACHE_MB", 32);
    let disk_mb = env_usize("CDN_BENCH_DISK_MB", 128);
    let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
    let dir = tmp.path().to_path_buf();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/cdn_miss.lua");
    let nonce = format!("{}", std::process::id());

    // The origin: static files, keep-alive, no log.
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("1k"), vec![b'a'; 1024]).unwrap();
    std::fs::write(www.join("100k"), vec![b'b'; 100 * 1024]).unwrap();
    let origin_port = free_port();
    let _origin = Nginx::start(
        &dir,
        "origin",
        &format!(
            "{}  access_log off;\n  server {{ listen 127.0.0.1:{origin_port} backlog=4096; root {}; }}\n}}\n",
            preamble(&dir, "origin", "1"),
            www.display()
        ),
    );
    wait_port(origin_port);

    // nginx proxy_cache edges, one and `auto` workers, cache and access log on tmpfs.
    let mut nginx_edges = Vec::new();
    for (name, workers) in [("nginx-1", "1"), ("nginx-auto", "auto")] {
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "{}  access_log {d}/{name}-access.log combined;\n  \
             proxy_cache_path {d}/{name}-cache levels=1:2 keys_zone={name}:64m max_size={}m inactive=1h use_temp_path=off;\n  \
             upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}\n  \
             server {{ listen 127.0.0.1:{port} backlog=4096;\n    location / {{ proxy_pass http://origin; proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\"; proxy_cache {name}; proxy_cache_valid 200 10m;\n      \
             add_header X-Cache $upstream_cache_status; }} }}\n}}\n",
            preamble(&dir, name, workers),
            cache_mb + disk_mb,
        );
        let n = Nginx::start(&dir, name, &conf);
        wait_port(port);
        nginx_edges.push((name, port, dir.join(format!("{name}-cache")), n));
    }

    // fnbridge: a domain whose origin is the same nginx, its data dir (disk tier, offline
    // logs) on the same tmpfs.
    let data = dir.join("fnbridge");
    let edge_port = free_port();
    let (fnb, _) = Server::start(
        &data,
        &[
            "--cdn-listen",
            &format!("127.0.0.1:{edge_port}"),
            "--cdn-cache-mb",
            &cache_mb.to_string(),
            "--cdn-disk-cache-mb",
            &disk_mb.to_string(),
        ],
    );
    wait_port(edge_port);
    let out = Command::new(env!("CARGO_BIN_EXE_fnbridge"))
        .args(["cdn", "domain", "add", HOST, "--origin"])
        .arg(format!("127.0.0.1:{origin_port}"))
        .args(["--endpoint", &fnb.base, "--token", &fnb.token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cdn domain add: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut targets: Vec<(&str, u16)> = vec![("fnbridge", edge_port)];
    targets.extend(nginx_edges.iter().map(|(n, p, _, _)| (*n, *p)));

    // Warm and check: the second GET of each file is a hit of the right size everywhere, and
    // a fresh query string is a miss.
    let http = reqwest::blocking::Client::new();
    for (name, port) in &targets {
        for (path, len) in [("/1k", 1024), ("/100k", 100 * 1024)] {
            let first = get(&http, *port, path);
            assert_eq!((first.0, first.2), (200, len), "{name} {path}: {first:?}");
            let second = get(&http, *port, path);
            assert_eq!(second, (200, "HIT".into(), len), "{name} {path}");
            let fresh = get(&http, *port, &format!("{path}?check-{nonce}"));
            assert_eq!(fresh, (200, "MISS".into(), len), "{name} {path}?…");
        }
    }

    let rounds = env_usize("CDN_BENCH_ROUNDS", 3).max(1);
    println!(
        "# CDN edge vs nginx proxy_cache: wrk -t{} -c{} -d{seconds}, {rounds} rounds (targets interleaved), log on, tmpfs; load average before: {}",
        env_usize("CDN_BENCH_THREADS", 1),
        env_usize("CDN_BENCH_CONNS", 64),
        loadavg()
    );
    let only = std::env::var("CDN_BENCH_ROWS").unwrap_or_default();
    let rows: Vec<(&str, &str, bool)> = [
        ("hit 1 KB", "/1k", false),
        ("hit 100 KB", "/100k", false),
        ("miss 1 KB", "/1k", true),
        ("miss 100 KB", "/100k", true),
    ]
    .into_iter()
    .filter(|(row, _, _)| row.contains(only.as_str()))
    .collect();
    // results[row][target]: every round's figures.
    let mut results: Vec<Vec<Vec<Row>>> = rows
        .iter()
        .map(|_| targets.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut missed_bytes = vec![0u64; targets.len()];
    for round in 0..rounds {
        for (ri, (_, path, miss)) in rows.iter().enumerate() {
            for (ti, (name, port)) in targets.iter().enumerate() {
                let r = if *miss {
                    let n = format!("{nonce}-{name}-{round}");
                    let r = wrk(
                        &format!("http://127.0.0.1:{port}/"),
                        &seconds,
                        Some((&script, path, &n)),
                    );
                    let size = if *path == "/1k" { 1024 } else { 100 * 1024 };
                    missed_bytes[ti] += r.requests * size;
                    r
                } else {
                    wrk(&format!("http://127.0.0.1:{port}{path}"), &seconds, None)
                };
                results[ri][ti].push(r);
            }
        }
    }
    println!("| row | target | req/s median (min-max) | p50 | p99 | errors |");
    println!("|---|---|---:|---:|---:|---:|");
    for (ri, (row, _, _)) in rows.iter().enumerate() {
        for (ti, (name, _)) in targets.iter().enumerate() {
            let runs = &mut results[ri][ti];
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let med = &runs[runs.len() / 2];
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            println!(
                "| {row} | {name} | {:.0} ({:.0}-{:.0}) | {} | {} | {errors} |",
                med.rps,
                runs[0].rps,
                runs[runs.len() - 1].rps,
                med.p50,
                med.p99
            );
        }
    }

    // The bounded-cache check, after the streams of unique misses above.
    let (rss, hwm) = fnb.rss_kb();
    println!();
    println!("load average after: {}", loadavg());
    println!(
        "| target | unique misses streamed through | bound | cache on disk after | RSS (peak) |"
    );
    println!("|---|---:|---|---:|---:|");
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "| fnbridge | {:.0} MiB | memory {cache_mb} MiB + disk {disk_mb} MiB | {:.1} MiB | {:.1} MiB ({:.1} MiB) |",
        mib(missed_bytes[0]),
        mib(du(&data.join("cdn-cache"))),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    for (i, (name, _, cache, _)) in nginx_edges.iter().enumerate() {
        println!(
            "| {name} | {:.0} MiB | max_size {} MiB | {:.1} MiB | - |",
            mib(missed_bytes[i + 1]),
            cache_mb + disk_mb,
            mib(du(cache))
        );
    }
    fnb.kill9();
}
