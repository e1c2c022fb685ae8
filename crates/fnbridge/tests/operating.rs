//! Operating safely: no panic reachable from input, one server per data dir, bounded and timed
//! connections, request ids in the log, and a full disk answered as a server-side error.

mod common;

use common::*;
use serde_json::json;

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
