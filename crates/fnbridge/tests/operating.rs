//! Operating safely: no panic reachable from input, one server per data dir, bounded and timed
//! connections, request ids in the log, and a full disk answered as a server-side error.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;

/// `fnbridge serve` on `data` with stdout and stderr captured; `FNBRIDGE_LOG` set to `log`.
fn serve(data: &Path, extra: &[&str], log: &str) -> Child {
    Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("FNBRIDGE_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fnbridge serve")
}

/// The first line of the server's stdout: `fnbridge listening on ...`, or "" if it exited.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

const OK: &str = "def handler(event, context):\n    return 'ok'\n";

#[test]
fn non_ascii_names_over_the_limit_are_rejected_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // 70 characters each; in the second the 64-byte mark falls inside a character.
    for long in ["é".repeat(70), format!("a{}", "é".repeat(69))] {
        expect_error(
            s.deploy(&long, &[("index.py", OK)], json!({})),
            400,
            "InvalidArgument",
            "longer than 64 characters",
        );
    }
    ok_json(s.deploy("f", &[("index.py", OK)], json!({})));
    let name = format!("a{}", "é".repeat(129));
    expect_error(
        s.post(
            "/2023-03-30/functions/f/triggers",
            &json!({"triggerName": name, "triggerType": "cdn_events", "triggerConfig": "{}"}),
        ),
        400,
        "InvalidArgument",
        "longer than 128 characters",
    );
    expect_error(
        s.post(
            "/2023-03-30/functions/f/aliases",
            &json!({"aliasName": name, "versionId": "1"}),
        ),
        400,
        "InvalidArgument",
        "longer than 128 characters",
    );
    // The server is still there.
    assert_eq!(s.get("/2023-03-30/functions/f")["functionName"], "f");
}

/// A small tmpfs, unmounted on drop (after the server using it, if declared before it).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`, or says why it cannot (not root, no mount in a
    /// container).
    fn mount(dir: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The last partial chunk may have gone in: take what is left, byte by byte.
        while f.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_is_a_server_error_naming_the_disk_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = match Tmpfs::mount(&data, "3m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: needs a small tmpfs data dir: {why}");
            return;
        }
    };
    let s = Server::start(&data);
    ok_json(s.deploy("f", &[("index.py", OK)], json!({})));
    let filler = disk.fill();

    // Unpacking the code hits ENOSPC.
    let v = expect_error(
        s.deploy("g", &[("index.py", OK)], json!({})),
        507,
        "InsufficientStorage",
        "no space left on the disk holding",
    );
    let data_dir = data.canonicalize().unwrap();
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains(&*data_dir.to_string_lossy()),
        "{v}"
    );
    // A store write hits SQLITE_FULL (the WAL grows with every commit).
    let async_invoke = || {
        s.req(reqwest::Method::POST, "/2023-03-30/functions/f/invocations")
            .header("x-fc-invocation-type", "Async")
            .body(vec![b'x'; 64 * 1024])
            .send()
            .unwrap()
    };
    expect_error(async_invoke(), 507, "InsufficientStorage", "fnbridge.db");

    // Space comes back: so does the server, without a restart.
    std::fs::remove_file(filler).unwrap();
    ok_json(s.deploy("g", &[("index.py", OK)], json!({})));
    assert_eq!(async_invoke().status(), 202);
    assert_eq!(s.get("/2023-03-30/functions/g")["functionName"], "g");
    drop(s);
    drop(disk);
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let pid = s.child.as_ref().unwrap().id();
    let mut second = serve(dir.path(), &[], "warn");
    let line = first_line(&mut second);
    if !line.is_empty() {
        let _ = second.kill();
        panic!("a second server started on the same data dir: {line}");
    }
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert!(stderr.contains("fnbridge.lock"), "{stderr}");
    // The first one is undisturbed, and the lock goes with its process, even on SIGKILL.
    ok_json(s.deploy("f", &[("index.py", OK)], json!({})));
    s.restart();
    assert_eq!(s.get("/2023-03-30/functions/f")["functionName"], "f");
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(dir.path(), &[], "info");
    assert!(first_line(&mut child).starts_with("fnbridge listening on"));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// A raw TCP connection to the server, reads bounded by a generous time so a bug fails the test
/// instead of hanging it.
fn connect(base: &str) -> std::net::TcpStream {
    let c = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    c
}

/// Reads until the server closes the connection; returns what it sent. Fails if it is still
/// open after the generous read timeout.
fn read_until_closed(c: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "connection not closed by the server ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn send(c: &mut std::net::TcpStream, text: &str) {
    use std::io::Write;
    c.write_all(text.as_bytes()).unwrap();
}

#[test]
fn silent_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &["--header-timeout-s", "1", "--idle-conn-timeout-s", "1"],
    );
    let mut silent = connect(&s.base);
    let mut half = connect(&s.base);
    send(&mut half, "GET /health HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(read_until_closed(&mut silent), "");
    assert_eq!(read_until_closed(&mut half), "");
    // The server is fine.
    assert_eq!(
        s.http.get(s.url("/health")).send().unwrap().text().unwrap(),
        "ok"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed_but_long_requests_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &["--header-timeout-s", "1", "--idle-conn-timeout-s", "1"],
    );
    let mut c = connect(&s.base);
    send(&mut c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_until_closed(&mut c);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    // A request running longer than both timeouts is not cut off.
    let slow =
        "import time\ndef handler(event, context):\n    time.sleep(2.5)\n    return 'slept'\n";
    ok_json(s.deploy("slow", &[("index.py", slow)], json!({})));
    let r = s
        .req(
            reqwest::Method::POST,
            "/2023-03-30/functions/slow/invocations",
        )
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "slept");
}

#[test]
fn a_body_sent_too_slowly_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--body-timeout-s", "1"]);
    let mut c = connect(&s.base);
    send(
        &mut c,
        &format!(
            "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
            s.token
        ),
    );
    let answer = read_until_closed(&mut c);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"Code\":\"RequestTimeout\""), "{answer}");
    assert!(answer.contains("x-fc-request-id"), "{answer}");
}

#[test]
fn connections_beyond_the_limit_are_refused_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(
        dir.path(),
        &["--max-connections", "2", "--header-timeout-s", "60"],
        "warn",
    );
    let base = first_line(&mut child)
        .trim()
        .strip_prefix("fnbridge listening on ")
        .unwrap()
        .to_string();
    let log = stderr_lines(&mut child);
    let held = [connect(&base), connect(&base)];
    let mut refused = connect(&base);
    assert_eq!(read_until_closed(&mut refused), "");
    let warning = wait_for_line(&log, "refusing API connections");
    assert!(warning.contains("limit=2"), "{warning}");
    drop(held);
    served_again(&base);
    let _ = child.kill();
    let _ = child.wait();
}

/// The server's stderr, line by line, read on a thread.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `needle`; fails if none comes within a generous bound.
fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = log
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// Once connections close, new ones are served again. The server notices a close on its own
/// schedule, so this tries until it has.
fn served_again(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut c = connect(base);
        send(
            &mut c,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if read_until_closed(&mut c).ends_with("ok") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never served again");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn out_of_file_descriptors_is_logged_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    // The object store's listener would take descriptors this test counts for the API.
    let mut child = serve(
        dir.path(),
        &["--header-timeout-s", "60", "--oss-listen", "off"],
        "warn",
    );
    let base = first_line(&mut child)
        .trim()
        .strip_prefix("fnbridge listening on ")
        .unwrap()
        .to_string();
    let log = stderr_lines(&mut child);
    // Room for three more descriptors only.
    let pid = child.id();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = format!("--nofile={}:{}", open + 3, open + 3);
    let set = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &limit])
        .status();
    if !set.is_ok_and(|s| s.success()) {
        eprintln!("skipped: prlimit cannot lower the server's descriptor limit");
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    // More than the room left: descriptors the server held at the count (a background start-up
    // task's, say) may have been closed since, leaving more room than three.
    let held: Vec<_> = (0..64).map(|_| connect(&base)).collect();
    wait_for_line(&log, "cannot accept API connections");
    drop(held);
    served_again(&base);
    let _ = child.kill();
    let _ = child.wait();
}

/// Deliveries that finish while the disk is full keep their outcome: the record is retried
/// until space comes back, and nothing runs twice after a restart.
#[test]
fn completions_on_a_full_disk_are_retried_until_they_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = match Tmpfs::mount(&data, "8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: needs a small tmpfs data dir: {why}");
            return;
        }
    };
    let shared = shared_dir();
    let gate = shared.path().join("gate");
    let code = format!(
        "import os, time\ndef handler(event, context):\n    while not os.path.exists({:?}):\n        time.sleep(0.01)\n    return 'done'\n",
        gate.to_str().unwrap()
    );
    let [flag, mount] = mount_args(shared.path());
    let mut s = Server::start_with(&data, &["--retry-base-ms", "20", &flag, &mount]);
    ok_json(s.deploy("gated", &[("index.py", &code)], json!({"timeout": 60})));
    ok_json(s.cdn_trigger("gated", "t", "LogFileCreated", &["gate.example.com"]));
    let events: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            json!({"eventName": "LogFileCreated", "eventSource": "cdn", "region": "cn-hangzhou",
                   "eventVersion": "1.0.0", "eventTime": "2018-06-14T15:31:49+08:00",
                   "traceId": format!("gate-{i}"), "userIdentity": {"aliUid": "1"},
                   "resource": {"domain": "gate.example.com"}, "eventParameter": {}})
        })
        .collect();
    ok_json(s.post("/events", &json!({"events": events})));
    // Every delivery is running (held at the gate) before the disk fills.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.get("/stats")["running"].as_u64() != Some(12) {
        assert!(std::time::Instant::now() < deadline, "{}", s.get("/stats"));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let filler = disk.fill();
    std::fs::write(&gate, b"open").unwrap();
    // The handlers return; their records cannot be written yet.
    while s.get("/stats")["running"].as_u64() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "{}", s.get("/stats"));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stuck = s.get("/stats");
    assert_eq!(stuck["succeeded"], 12, "{stuck}");
    assert_eq!(
        stuck["open"], 12,
        "nothing committed on a full disk: {stuck}"
    );
    std::fs::remove_file(filler).unwrap();
    while s.get("/stats")["open"].as_u64() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "{}", s.get("/stats"));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // After a restart nothing runs again: every task is Succeeded after one attempt.
    s.restart();
    let st = s.get("/stats");
    assert_eq!(st["open"], 0, "{st}");
    let tasks = s.get("/tasks?functionName=gated&limit=100");
    let tasks = tasks["asyncTasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 12);
    for t in tasks {
        assert_eq!(t["status"], "Succeeded", "{t}");
        assert_eq!(t["attempts"], 1, "ran once: {t}");
    }
    drop(s);
    drop(disk);
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Idle keep-alive connections are closed, and the memory they held goes back to the system.
#[test]
fn idle_connections_are_closed_and_their_memory_returned() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &["--idle-conn-timeout-s", "1", "--max-connections", "4000"],
    );
    let pid = s.child.as_ref().unwrap().id();
    let addr = s.base.trim_start_matches("http://").to_string();
    // Warm up the paths a request takes, so the baseline is the server's steady size.
    for _ in 0..50 {
        let r = s.req(reqwest::Method::GET, "/health").send().unwrap();
        assert_eq!(r.status(), 200);
    }
    let baseline = rss_kb(pid);
    let mut conns = Vec::new();
    for _ in 0..1500 {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        conns.push(c);
    }
    for c in &mut conns {
        let mut buf = [0u8; 256];
        assert!(c.read(&mut buf).unwrap() > 0, "answered");
    }
    let peak = rss_kb(pid);
    // The server closes every one of them once idle (a read then sees the end of the stream).
    for c in &mut conns {
        c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 256];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "closed by the server");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let grown = peak.saturating_sub(baseline);
    loop {
        let now = rss_kb(pid);
        // Back near the baseline: at most a quarter of what the connections added remains.
        if now <= baseline + grown / 4 {
            eprintln!("RSS: baseline {baseline} KB, 1500 connections {peak} KB, after {now} KB");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RSS stays at {now} KB after the connections closed (baseline {baseline} KB, peak {peak} KB)"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
