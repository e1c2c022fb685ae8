//! Object-store benchmark: PUT and GET of 4 KB and 1 MB objects with 1 and 8 boto3 client
//! processes against fnbridge, moto_server and the s3s-fs binary in the same run with the same
//! client (benches/objectstore_client.py); server-bound GET and PUT figures with `wrk` on
//! presigned URLs; and upload acknowledged -> handler start latency through an `oss` trigger.
//!
//! Needs: a Python with boto3 (`OSS_BENCH_PYTHON`, else target/bench-venv or target/test-venv),
//! `moto_server` (`OSS_BENCH_MOTO`, else beside that Python), `s3s-fs` (`OSS_BENCH_S3SFS`, else
//! target/bench-tools/bin/s3s-fs; with TCP_NODELAY: `OSS_BENCH_S3SFS_NODELAY`, else
//! target/bench-tools-nodelay/bin/s3s-fs) and `wrk` on PATH; a server or tool that is missing is skipped
//! and named. `OSS_BENCH_SECONDS` (default 3) is the measured window of each row;
//! `OSS_BENCH_ROUNDS` (default 2) how often each server runs it, in alternating order, its best
//! round reported (this machine's speed drifts over minutes).
//! Run: `nice -n 10 cargo bench -p fnbridge --bench objectstore`.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OSS_BENCH_PYTHON") {
        return p.into();
    }
    for v in [
        "target/bench-venv/bin/python",
        "target/test-venv/bin/python",
    ] {
        let p = repo().join(v);
        if p.exists() {
            return p;
        }
    }
    "python3".into()
}

/// A server under test: its endpoint, keys, and the process to stop afterwards.
struct Target {
    name: &'static str,
    ep: String,
    ak: String,
    sk: String,
    child: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn client(t: &Target, args: &[&str]) -> String {
    let script = repo().join("crates/fnbridge/benches/objectstore_client.py");
    let out = Command::new(python())
        .arg(script)
        .args([args[0], &t.ep, &t.ak, &t.sk])
        .args(&args[1..])
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        t.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `wrk` against `url` (with `script`, if any): requests/s and its latency percentiles.
fn wrk(url: &str, conns: &str, script: Option<&Path>) -> Option<(f64, String, String)> {
    let threads = if conns == "1" { "-t1" } else { "-t2" };
    let mut cmd = Command::new("wrk");
    cmd.args([threads, &format!("-c{conns}"), "-d5s", "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("-")
            .to_string()
    };
    let non2xx = text.lines().any(|l| l.contains("Non-2xx"));
    if non2xx {
        eprintln!("wrk: non-2xx answers from {url}:\n{text}");
    }
    Some((rps, pct("50%"), pct("99%")))
}

fn main() {
    let seconds = std::env::var("OSS_BENCH_SECONDS").unwrap_or_else(|_| "3".into());
    let rounds: usize = std::env::var("OSS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2)
        .max(1);
    let mut targets = Vec::new();

    // fnbridge, its data on the same disk as the others'.
    let data = tempfile::tempdir().unwrap();
    let oss_port = free_port();
    let oss_listen = format!("127.0.0.1:{oss_port}");
    let (fnb, _) = Server::start(data.path(), &["--oss-listen", &oss_listen]);
    wait_port(oss_port);
    let key: Value = fnb
        .http
        .post(format!("{}/keys", fnb.base))
        .bearer_auth(&fnb.token)
        .json(&json!({"description": "bench"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    targets.push(Target {
        name: "fnbridge",
        ep: format!("http://{oss_listen}"),
        ak: key["accessKeyId"].as_str().unwrap().into(),
        sk: key["accessKeySecret"].as_str().unwrap().into(),
        child: None,
    });

    let moto = std::env::var_os("OSS_BENCH_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| python().with_file_name("moto_server"));
    if moto.exists() {
        let port = free_port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port);
        targets.push(Target {
            name: "moto_server",
            ep: format!("http://127.0.0.1:{port}"),
            ak: "testing".into(),
            sk: "testing".into(),
            child: Some(child),
        });
    } else {
        eprintln!("skipped moto_server: {} missing", moto.display());
    }

    // Stock s3s-fs, and the same release with TCP_NODELAY set on accepted sockets (one line
    // added before `serve_connection`, as ../shared/benchmarks/anchors.md compares it).
    let s3sfs_root = tempfile::tempdir().unwrap();
    for (name, var, default) in [
        ("s3s-fs", "OSS_BENCH_S3SFS", "target/bench-tools/bin/s3s-fs"),
        (
            "s3s-fs NODELAY",
            "OSS_BENCH_S3SFS_NODELAY",
            "target/bench-tools-nodelay/bin/s3s-fs",
        ),
    ] {
        let bin = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(default));
        if !bin.exists() {
            eprintln!("skipped {name}: {} missing", bin.display());
            continue;
        }
        let root = s3sfs_root.path().join(name.replace(' ', "-"));
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "benchak",
                "--secret-key",
                "benchsecret",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port);
        targets.push(Target {
            name,
            ep: format!("http://127.0.0.1:{port}"),
            ak: "benchak".into(),
            sk: "benchsecret".into(),
            child: Some(child),
        });
    }

    for t in &targets {
        client(t, &["prep", "bench"]);
    }
    println!(
        "| row | {} |",
        targets
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(targets.len()));
    for (op, size, label) in [
        ("PUT", "4096", "PUT 4 KB"),
        ("GET", "4096", "GET 4 KB"),
        ("PUT", "1048576", "PUT 1 MB"),
        ("GET", "1048576", "GET 1 MB"),
    ] {
        for procs in ["1", "8"] {
            // Each server `rounds` times, in alternating order (a drift in the machine's speed
            // during the run then falls on every server alike); a server's best round counts.
            let mut best: Vec<Option<Value>> = vec![None; targets.len()];
            for round in 0..rounds {
                let mut order: Vec<usize> = (0..targets.len()).collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    let v: Value = serde_json::from_str(&client(
                        &targets[i],
                        &["load", "bench", op, size, procs, &seconds],
                    ))
                    .unwrap();
                    let ops = |v: &Value| v["ops_s"].as_f64().unwrap_or(0.0);
                    if best[i].as_ref().is_none_or(|b| ops(&v) > ops(b)) {
                        best[i] = Some(v);
                    }
                }
            }
            let cells: Vec<String> = best
                .iter()
                .map(|v| {
                    let v = v.clone().unwrap_or_default();
                    format!(
                        "{:.0} ops/s, {:.1} MB/s ({:.1}/{:.1} ms)",
                        v["ops_s"].as_f64().unwrap_or(0.0),
                        v["mb_s"].as_f64().unwrap_or(0.0),
                        v["p50_ms"].as_f64().unwrap_or(0.0),
                        v["p99_ms"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!("| {label}, {procs} client(s) | {} |", cells.join(" | "));
        }
    }

    // Server-bound GET: wrk on a presigned URL of the 4 KB object, no Python in the loop.
    let mut cells = Vec::new();
    for t in &targets {
        let url = client(t, &["presign", "bench", "obj-4096"]);
        cells.push(match wrk(&url, "16", None) {
            Some((rps, p50, p99)) => format!("{rps:.0} req/s ({p50}/{p99})"),
            None => "wrk missing".into(),
        });
    }
    println!(
        "| wrk GET 4 KB presigned, -t2 -c16 | {} |",
        cells.join(" | ")
    );

    // Server-bound PUT: wrk sending the same body to a presigned PUT URL (one key, overwritten
    // by every request: a presigned URL names its key).
    let scratch = tempfile::tempdir().unwrap();
    for (size, label) in [(4096usize, "4 KB"), (1 << 20, "1 MB")] {
        let body = scratch.path().join(format!("body-{size}"));
        std::fs::write(
            &body,
            (0..size)
                .map(|i| (i * 7 + i / 251) as u8)
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let script = scratch.path().join(format!("put-{size}.lua"));
        std::fs::write(
            &script,
            format!(
                "local f = io.open(\"{}\", \"rb\")\nwrk.method = \"PUT\"\nwrk.body = f:read(\"*all\")\nf:close()\n",
                body.display()
            ),
        )
        .unwrap();
        for conns in ["1", "16"] {
            let mut cells = Vec::new();
            for t in &targets {
                let key = format!("wrk-put-{size}");
                let url = client(t, &["presign", "bench", &key, "PUT"]);
                cells.push(match wrk(&url, conns, Some(&script)) {
                    Some((rps, p50, p99)) => format!(
                        "{rps:.0} req/s, {:.1} MB/s ({p50}/{p99})",
                        rps * size as f64 / 1e6
                    ),
                    None => "wrk missing".into(),
                });
            }
            println!(
                "| wrk PUT {label} presigned, -c{conns} | {} |",
                cells.join(" | ")
            );
        }
    }

    // Upload acknowledged -> handler start: the handler returns the time it started.
    fnb.deploy(
        "lat",
        "import time\ndef handler(event, context):\n    return repr(time.time())\n",
    );
    fnb.post(
        "/2023-03-30/functions/lat/triggers",
        &json!({"triggerName": "lat", "triggerType": "oss",
                "triggerConfig": json!({"events": ["oss:ObjectCreated:*"],
                    "filter": {"key": {"prefix": "lat/"}}}).to_string(),
                "sourceArn": "acs:oss:cn-hangzhou:1234567890123456:bench"}),
    );
    // One invocation first, so the uploads measure event delivery to a warm instance (a cold
    // start is its own figure, in the registry benchmark).
    fnb.post("/2023-03-30/functions/lat/invocations", &json!({}));
    let n = 60;
    let acks: Value =
        serde_json::from_str(&client(&targets[0], &["ack", "bench", &n.to_string()])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = loop {
        let v = fnb.get("/2023-03-30/functions/lat/async-tasks?limit=100&includePayload=true");
        let tasks: Vec<Value> = v["tasks"].as_array().cloned().unwrap_or_default();
        if tasks.iter().filter(|t| t["status"] == "Succeeded").count() >= n
            || Instant::now() > deadline
        {
            break tasks;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut lat: Vec<f64> = tasks
        .iter()
        .filter_map(|t| {
            let event: Value = serde_json::from_str(t["taskPayload"].as_str()?).ok()?;
            let key = event["events"][0]["oss"]["object"]["key"].as_str()?;
            let started: f64 = t["returnPayload"].as_str()?.parse().ok()?;
            Some((started - acks[key].as_f64()?) * 1e3)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        println!("upload -> handler start: no tasks finished");
    } else {
        println!(
            "upload acknowledged -> handler start, {} uploads 50 ms apart: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            lat[lat.len() / 2],
            lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
            lat[lat.len() - 1]
        );
    }
    drop(targets);
    fnb.kill9();
}
