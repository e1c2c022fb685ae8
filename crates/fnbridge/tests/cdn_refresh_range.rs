//! End to end, the real server driven by the official CDN SDK, oss2 and requests
//! (`tests/cdn/cdn_refresh_range.py`): RefreshObjectCaches `Force` (expire and revalidate
//! without it, purge with it, ignored for File), Range / If-None-Match / HEAD on an object too
//! large for the edge's cache (streamed from the bucket origin), and AddCdnDomain's hourly call
//! quota refused with `Throttling`. The edge caches objects up to 128 KiB here
//! (`--cdn-cache-mb 1`), so the script's 300 KiB object is streamed.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn refresh_force_large_object_ranges_and_the_add_domain_quota() {
    let Some(py) = std::env::var_os("FNBRIDGE_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(repo().join("target/test-venv/bin/python")).filter(|p| p.exists()))
    else {
        panic!(
            "this test needs alibabacloud_cdn20180510, oss2 and requests: run `bash scripts/test.sh` or set FNBRIDGE_TEST_PYTHON"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let edge_port = free_port();
    let add_limit = "5";
    let s = Server::start_with(
        dir.path(),
        &[
            "--cdn-listen",
            &format!("127.0.0.1:{edge_port}"),
            "--cdn-cache-mb",
            "1",
            "--cdn-add-domain-per-hour",
            add_limit,
        ],
    );
    let out = Command::new(BIN)
        .args([
            "key",
            "create",
            "--json",
            "--endpoint",
            &s.base,
            "--token",
            &s.token,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(&py)
        .arg(repo().join("crates/fnbridge/tests/cdn/cdn_refresh_range.py"))
        .args([
            &s.base,
            &s.oss,
            &format!("http://127.0.0.1:{edge_port}"),
            key["accessKeyId"].as_str().unwrap(),
            key["accessKeySecret"].as_str().unwrap(),
            "range.example.com",
            add_limit,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cdn_refresh_range.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "ok RefreshObjectCaches Directory Force=false expires",
        "ok RefreshObjectCaches Directory Force=true purges",
        "ok RefreshObjectCaches IgnoreParams Force",
        "ok RefreshObjectCaches Regex Force=false",
        "ok RefreshObjectCaches File ignores Force",
        "ok large object Range If-None-Match HEAD",
        "ok AddCdnDomain Throttling",
    ] {
        assert!(stdout.contains(step), "missing '{step}':\n{stdout}");
    }
}
