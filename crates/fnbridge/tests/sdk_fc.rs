//! The official FC 3.0 Python SDK (`alibabacloud_fc20230330`, pinned in
//! scripts/test-requirements.txt) against the real server: every operation fnbridge
//! serves, signed with a key from `fnbridge key create`, each answer parsed by the SDK's models;
//! refusals of a wrong secret, a stale date and a replayed nonce; role credentials inside
//! functions. The script is `tests/sdk/fc_sdk.py`.

mod common;

use std::process::Command;

use common::{BIN, Server, repo};

/// The interpreter with the SDK installed: `$FNBRIDGE_TEST_PYTHON`, which `scripts/test.sh`
/// sets after installing the pinned packages into `target/test-venv`, else that venv if present.
fn sdk_python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("FNBRIDGE_TEST_PYTHON") {
        return p.into();
    }
    let venv = repo().join("target/test-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    panic!(
        "the FC SDK tests need a Python with alibabacloud_fc20230330: run `bash scripts/test.sh` \
         (it installs scripts/test-requirements.txt into target/test-venv), or set FNBRIDGE_TEST_PYTHON"
    );
}

/// Runs a CLI command against the server and returns its stdout.
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

#[test]
fn the_official_sdk_drives_every_operation() {
    let python = sdk_python();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key: serde_json::Value =
        serde_json::from_str(&cli(&s, &["key", "create", "--json"])).unwrap();
    let (ak, sk) = (
        key["accessKeyId"].as_str().unwrap(),
        key["accessKeySecret"].as_str().unwrap(),
    );
    assert_eq!(key.as_object().unwrap().len(), 2, "{key}");
    // The secret is nowhere in the database.
    let db = std::fs::read(dir.path().join("fnbridge.db")).unwrap();
    assert!(
        !db.windows(sk.len()).any(|w| w == sk.as_bytes()),
        "secret stored in the database"
    );
    cli(
        &s,
        &[
            "role",
            "create",
            "invoker",
            "--policy",
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["fc:GetFunction","fc:InvokeFunction"],"Resource":"acs:fc:*:*:functions/*"}]}"#,
        ],
    );
    cli(
        &s,
        &[
            "role",
            "create",
            "nothing",
            "--policy",
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}"#,
        ],
    );
    let account = "1234567890123456"; // serve's default --account-id
    let out = Command::new(&python)
        .arg(repo().join("crates/fnbridge/tests/sdk/fc_sdk.py"))
        .args([s.base.as_str(), ak, sk, account])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all ok"),
        "fc_sdk.py failed:\n{stdout}\n{stderr}"
    );
    print!("{stdout}");
    let keys = cli(&s, &["key", "list", "--json"]);
    assert!(keys.contains(ak) && !keys.contains(sk), "{keys}");
    cli(&s, &["key", "delete", ak]);
}
