//! End to end: the built-in CDN driven by the official CDN SDK (`alibabacloud_cdn20180510`),
//! oss2 and requests (`tests/cdn/cdn_sdk.py`): a bucket as origin, the edge's MISS/HIT, Range,
//! refresh, push, block, stop; the offline log files dumped by the corrected seed 002 function
//! (`examples/cdn-log-dump`) on `LogFileCreated`; and the seed 001 handler
//! (`examples/cdn-sample`), unchanged, answering all eight events the CDN produced.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const EVENTS: [&str; 8] = [
    "LogFileCreated",
    "CachedObjectsRefreshed",
    "CachedObjectsPushed",
    "CachedObjectsBlocked",
    "CdnDomainStarted",
    "CdnDomainStopped",
    "CdnDomainAdded",
    "CdnDomainDeleted",
];
const DOMAIN: &str = "cdn.example.com";

fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("FNBRIDGE_TEST_PYTHON") {
        return p.into();
    }
    let venv = repo().join("target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "the CDN test needs alibabacloud_cdn20180510, oss2 and requests: run `bash scripts/test.sh` or set FNBRIDGE_TEST_PYTHON"
    );
    venv
}

fn cli(s: &Server, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .args(["--endpoint", &s.base, "--token", &s.token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fnbridge {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tasks of `function`, once at least `n` of them have finished.
fn finished_tasks(s: &Server, function: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = s.get(&format!("/tasks?functionName={function}&limit=100"));
        let tasks: Vec<Value> = all["asyncTasks"].as_array().cloned().unwrap_or_default();
        let done: Vec<Value> = tasks
            .into_iter()
            .filter(|t| {
                ["Succeeded", "Failed", "Expired"].contains(&t["status"].as_str().unwrap_or(""))
            })
            .collect();
        if done.len() >= n {
            // The listing is a summary; each task's own page has its payload and result.
            return done
                .iter()
                .map(|t| {
                    s.get(&format!(
                        "/2023-03-30/functions/{function}/async-tasks/{}",
                        t["taskId"].as_str().unwrap()
                    ))
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{function}: {} of {n} tasks finished: {all}",
            done.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_cdn_end_to_end_with_the_official_sdk_and_the_seed_functions() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let edge_port = free_port();
    let edge = format!("http://127.0.0.1:{edge_port}");
    let s = Server::start_with(
        dir.path(),
        &[
            "--retry-base-ms",
            "20",
            "--python",
            py.to_str().unwrap(),
            "--cdn-listen",
            &format!("127.0.0.1:{edge_port}"),
            "--cdn-log-period-s",
            "3",
        ],
    );
    let key: Value = serde_json::from_str(&cli(&s, &["key", "create", "--json"])).unwrap();
    let (ak, sk) = (
        key["accessKeyId"].as_str().unwrap().to_string(),
        key["accessKeySecret"].as_str().unwrap().to_string(),
    );
    cli(
        &s,
        &[
            "role",
            "create",
            "log-dumper",
            "--policy",
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}"#,
        ],
    );

    // Seed 001's handler, unchanged, on all eight events of the domain.
    ok_json(s.deploy(
        "cdn-sample",
        &[("index.py", &example("cdn-sample/index.py"))],
        json!({}),
    ));
    for e in EVENTS {
        ok_json(s.cdn_trigger("cdn-sample", &format!("on-{e}"), e, &[DOMAIN]));
    }
    // Seed 002's function, corrected, on LogFileCreated.
    ok_json(s.deploy(
        "cdn-log-dump",
        &[("index.py", &example("cdn-log-dump/index.py"))],
        json!({
            "role": "acs:ram::1234567890123456:role/log-dumper",
            "timeout": 60,
            "environmentVariables": {"OSS_ENDPOINT": s.oss, "TARGET_BUCKET": "dumped"},
        }),
    ));
    ok_json(s.cdn_trigger("cdn-log-dump", "on-log", "LogFileCreated", &[DOMAIN]));

    let out = Command::new(&py)
        .arg(repo().join("crates/fnbridge/tests/cdn/cdn_sdk.py"))
        .args([&s.base, &s.oss, &edge, &ak, &sk, DOMAIN, "dumped"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cdn_sdk.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok DeleteCdnDomain"), "{stdout}");

    // The CLI drives the same control plane.
    let d = "cli.example.com";
    assert!(cli(&s, &["cdn", "domain", "add", d, "--bucket", "cdnorigin"]).contains("added"));
    assert!(cli(&s, &["cdn", "domain", "list"]).contains(d));
    let got = cli(&s, &["cdn", "domain", "get", d]);
    assert!(
        got.contains("online") && got.contains("oss cdnorigin"),
        "{got}"
    );
    cli(&s, &["cdn", "domain", "stop", d]);
    assert!(cli(&s, &["cdn", "domain", "get", d]).contains("offline"));
    cli(&s, &["cdn", "domain", "start", d]);
    let r = cli(&s, &["cdn", "refresh", &format!("{d}/a.bin"), "--json"]);
    let task: Value = serde_json::from_str(&r).unwrap();
    let id = task["RefreshTaskId"].as_str().unwrap();
    assert!(cli(&s, &["cdn", "tasks", "--task-id", id]).contains(&format!("http://{d}/a.bin")));
    assert!(cli(&s, &["cdn", "push", &format!("{d}/dir/b.txt")]).contains("push task"));
    assert!(cli(&s, &["cdn", "block", &format!("{d}/a.bin")]).contains("block task"));
    let blocked = reqwest::blocking::Client::new()
        .get(format!("{edge}/a.bin"))
        .header("host", d)
        .send()
        .unwrap();
    assert_eq!(blocked.status(), 403);
    cli(&s, &["cdn", "unblock", &format!("{d}/a.bin")]);
    assert!(cli(&s, &["cdn", "tasks"]).contains("preload"));
    assert!(cli(&s, &["cdn", "logs", d]).contains("FILE"));
    cli(&s, &["cdn", "domain", "delete", d]);
    let out = Command::new(BIN)
        .args([
            "cdn",
            "domain",
            "get",
            d,
            "--endpoint",
            &s.base,
            "--token",
            &s.token,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidDomain.NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The dump function ran for every log file, and succeeded.
    let dumps = finished_tasks(&s, "cdn-log-dump", 1, Duration::from_secs(60));
    for t in &dumps {
        assert_eq!(t["status"], "Succeeded", "{t}");
        assert_eq!(t["returnPayload"], "200", "{t}");
    }

    // Seed 001's handler answered each of the eight events, as the CDN produced them.
    let tasks = finished_tasks(&s, "cdn-sample", 8, Duration::from_secs(60));
    for e in EVENTS {
        let t = tasks
            .iter()
            .find(|t| t["triggerName"] == format!("on-{e}"))
            .unwrap_or_else(|| panic!("no task for {e}: {tasks:?}"));
        assert_eq!(t["status"], "Succeeded", "{e}: {t}");
        let ret = t["returnPayload"].as_str().unwrap();
        assert!(
            ret.starts_with(&format!("eventName:{e}, domain: {DOMAIN}, info: ")),
            "{e}: {ret}"
        );
        let payload: Value = serde_json::from_str(t["taskPayload"].as_str().unwrap()).unwrap();
        let ev = &payload["events"][0];
        assert_eq!(ev["eventSource"], "cdn");
        assert_eq!(ev["eventVersion"], "1.0.0");
        assert_eq!(ev["resource"]["domain"], DOMAIN);
        assert!(
            ev["eventTime"].as_str().unwrap().ends_with("+08:00"),
            "{ev}"
        );
        let p = &ev["eventParameter"];
        let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let want: &[&str] = match e {
            "LogFileCreated" => &["domain", "endTime", "filePath", "fileSize", "startTime"],
            "CachedObjectsRefreshed" | "CachedObjectsPushed" | "CachedObjectsBlocked" => &[
                "completeTime",
                "createTime",
                "domain",
                "objectPath",
                "objectType",
                "taskId",
            ],
            "CdnDomainStarted" | "CdnDomainStopped" => &["domain", "status"],
            _ => &["domain"],
        };
        assert_eq!(keys, want, "{e}: {p}");
        match e {
            "CachedObjectsRefreshed" | "CachedObjectsPushed" => {
                assert!(p["taskId"].is_i64(), "{p}");
                assert!(ret.contains('/'), "{e}: paths in the answer: {ret}");
            }
            "LogFileCreated" => {
                assert!(p["fileSize"].as_u64().unwrap() > 0);
                assert_eq!(
                    p["endTime"].as_i64().unwrap() - p["startTime"].as_i64().unwrap(),
                    3
                );
                let path = p["filePath"].as_str().unwrap();
                assert!(path.contains(&format!("/cdnlog/{DOMAIN}/")), "{path}");
                assert!(
                    path.contains("OSSAccessKeyId=") && path.contains("Signature="),
                    "{path}"
                );
            }
            "CdnDomainStopped" => assert_eq!(p["status"], "offline"),
            "CdnDomainStarted" => assert_eq!(p["status"], "online"),
            _ => {}
        }
    }
}

/// `kill -9` during edge traffic: after the restart, every request that got an answer is in a
/// log file (at least once; duplicates are counted and reported), none is missing.
#[test]
fn kill_9_during_edge_traffic_loses_no_log_line() {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let edge_port = free_port();
    let oss_port = free_port();
    let edge = format!("http://127.0.0.1:{edge_port}");
    let mut s = Server::start_with(
        dir.path(),
        &[
            "--cdn-listen",
            &format!("127.0.0.1:{edge_port}"),
            "--oss-listen",
            &format!("127.0.0.1:{oss_port}"),
            "--cdn-log-period-s",
            "2",
        ],
    );
    // The object store's listener, as a plain HTTP origin (it keeps its port across the
    // restart; the API's does not): anonymous GETs get its error answers, which the edge
    // passes on uncached, so every request goes through the whole path.
    let d = "k9.example.com";
    cli(
        &s,
        &[
            "cdn",
            "domain",
            "add",
            d,
            "--origin",
            &format!("127.0.0.1:{oss_port}"),
        ],
    );

    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (answered, stop, edge) = (answered.clone(), stop.clone(), edge.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let path = format!("/nobucket/k?i={i}");
                if let Ok(r) = http.get(format!("{edge}{path}")).header("host", d).send()
                    && r.text().is_ok()
                {
                    answered.lock().unwrap().push(format!("http://{d}{path}"));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    std::thread::sleep(Duration::from_millis(300));
    s.restart();
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 20,
        "too little traffic: {}",
        answered.len()
    );

    // Wait until the files cover every answered request.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = serde_json::from_str(&cli(&s, &["cdn", "logs", d, "--json"])).unwrap();
        let files = v["DomainLogDetails"]["DomainLogDetail"][0]["LogInfos"]["LogInfoDetail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for f in &files {
            let url = format!("http://{}", f["LogPath"].as_str().unwrap());
            let gz = reqwest::blocking::get(&url).unwrap().bytes().unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .unwrap();
            for line in text.lines() {
                let req = line.split('"').nth(3).unwrap_or("");
                let url = req.strip_prefix("GET ").unwrap_or("").to_string();
                *seen.entry(url).or_default() += 1;
            }
        }
        let missing: Vec<&String> = answered.iter().filter(|u| !seen.contains_key(*u)).collect();
        if missing.is_empty() {
            let dups = seen.values().filter(|n| **n > 1).count();
            eprintln!(
                "kill -9: {} answered requests, all logged, {} logged more than once, {} files",
                answered.len(),
                dups,
                files.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} answered requests missing from the logs, e.g. {:?}",
            missing.len(),
            answered.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
