//! End-to-end tests of the object store with the real clients (boto3, oss2,
//! alibabacloud-oss-v2, cos-python-sdk-v5), unchanged apart from endpoint and keys, and of the
//! triggers its uploads fire. The clients live in `target/test-venv` (scripts/test.sh installs
//! them from scripts/test-requirements.txt).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, ok_json, repo};
use serde_json::{Value, json};

/// The test venv's python (see `common::test_python`).
fn python() -> Option<std::path::PathBuf> {
    common::test_python()
}

/// A server, with an access key of its account (`POST /keys`, what `fnbridge key create`
/// calls) that the Python clients sign with: they read it from FNB_AK / FNB_SK.
fn start(dir: &std::path::Path) -> Server {
    let s = Server::start_with(dir, &["--retry-base-ms", "20"]);
    let key = ok_json(s.post("/keys", &json!({"description": "object store tests"})));
    let (ak, sk) = (
        key["accessKeyId"].as_str().unwrap().to_string(),
        key["accessKeySecret"].as_str().unwrap().to_string(),
    );
    KEY.with(|k| *k.borrow_mut() = Some((ak, sk)));
    s
}

thread_local! {
    /// The key of the server this test thread started.
    static KEY: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

fn run_script(py: &PathBuf, script: &str, args: &[&str]) {
    let path = repo()
        .join("crates/fnbridge/tests/objectstore")
        .join(script);
    let (ak, sk) = KEY
        .with(|k| k.borrow().clone())
        .expect("start() made a key");
    let out = Command::new(py)
        .arg(&path)
        .args(args)
        .env("FNB_AK", ak)
        .env("FNB_SK", sk)
        .env("NO_PROXY", "")
        .output()
        .expect("run python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn boto3_with_its_defaults() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    run_script(
        &py,
        "boto3_roundtrip.py",
        &[&s.oss, scratch.path().to_str().unwrap()],
    );
}

#[test]
fn oss2_and_alibabacloud_oss_v2() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    run_script(&py, "oss2_roundtrip.py", &[&s.oss]);
}

/// The object files under `<data>/objects/` (inline objects have none).
fn object_files(data: &std::path::Path) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(data.join("objects")).unwrap().flatten() {
        if shard.file_name() == "tmp" || !shard.path().is_dir() {
            continue;
        }
        n += std::fs::read_dir(shard.path()).unwrap().count();
    }
    n
}

/// Objects up to 64 KiB are stored in the database (a PUT is one commit), larger ones in files:
/// boto3 reads, ranges, copies and overwrites both kinds, and the data dir holds a file only for
/// what is above the bound, with the files of overwritten and deleted objects removed.
#[test]
fn small_objects_are_inline_and_large_ones_files() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    run_script(&py, "inline_and_files.py", &[&s.oss, "put"]);
    assert_eq!(
        object_files(dir.path()),
        1,
        "only the 64 KiB + 1 object has a file"
    );
    // Inline bytes survive a crash like the rows they belong to.
    s.restart();
    run_script(&py, "inline_and_files.py", &[&s.oss, "rest"]);
    assert_eq!(
        object_files(dir.path()),
        1,
        "'small' now holds the large bytes in a file; parts, copies and replaced files are gone"
    );
}

/// The object files under `<data>/objects/` with their inode numbers.
fn object_inodes(data: &std::path::Path) -> Vec<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for shard in std::fs::read_dir(data.join("objects")).unwrap().flatten() {
        if shard.file_name() == "tmp" || !shard.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let m = f.metadata().unwrap();
            out.push((f.path(), m.ino(), m.len()));
        }
    }
    out
}

/// AppendObject writes only the new bytes into the object's one file (same inode throughout,
/// no copy), with oss2 checking the CRC-64 chain; an append the client cuts off mid-body
/// changes nothing visible and the next one lands at the same position.
#[test]
fn appends_write_only_their_bytes_into_the_one_file() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    run_script(&py, "append.py", &[&s.oss, "first"]);
    let first = object_inodes(dir.path());
    assert_eq!(first.len(), 1, "{first:?}");
    run_script(&py, "append.py", &[&s.oss, "more"]);
    let after = object_inodes(dir.path());
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!((&after[0].0, after[0].1), (&first[0].0, first[0].1));
    // Five chunks of 100 KiB + n bytes.
    assert_eq!(after[0].2, 5 * 100 * 1024 + (1 + 2 + 3 + 4));
}

/// Tasks of a function, waiting until `n` have finished.
fn finished_tasks(s: &Server, function: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get("/tasks");
        let tasks: Vec<Value> = v["asyncTasks"].as_array().cloned().unwrap_or_default();
        let done: Vec<Value> = tasks
            .into_iter()
            .filter(|t| t["functionName"] == function && t["status"] == "Succeeded")
            .collect();
        if done.len() >= n {
            return done;
        }
        assert!(Instant::now() < deadline, "{function}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn uploads_fire_oss_and_cos_triggers_with_their_event_shapes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let echo = "def handler(event, context):\n    return event.decode()\n";
    ok_json(s.deploy("thumbs", &[("index.py", echo)], json!({})));
    ok_json(s.deploy("cosfn", &[("index.py", echo)], json!({})));
    ok_json(s.post(
        "/2023-03-30/functions/thumbs/triggers",
        &json!({"triggerName": "jpg", "triggerType": "oss",
                "triggerConfig": json!({"events": ["oss:ObjectCreated:*"],
                    "filter": {"key": {"prefix": "uploads/", "suffix": ".jpg"}}}).to_string(),
                "sourceArn": "acs:oss:cn-hangzhou:1234567890123456:photos"}),
    ));
    ok_json(s.post(
        "/2023-03-30/functions/cosfn/triggers",
        &json!({"triggerName": "pics", "triggerType": "cos",
                "triggerConfig": json!({"bucketUrl": "pics-1250000000.cos.ap-guangzhou.myqcloud.com",
                    "event": "cos:ObjectCreated:*"}).to_string()}),
    ));
    run_script(&py, "triggers.py", &[&s.oss]);

    let tasks = finished_tasks(&s, "thumbs", 1);
    // Give a wrongly matched upload time to show up too.
    std::thread::sleep(Duration::from_millis(500));
    let tasks_again = finished_tasks(&s, "thumbs", 1);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks_again.len(), 1, "{tasks_again:?}");
    let id = tasks[0]["taskId"].as_str().unwrap();
    let t = s.get(&format!("/2023-03-30/functions/thumbs/async-tasks/{id}"));
    let payload: Value = serde_json::from_str(t["returnPayload"].as_str().unwrap()).unwrap();
    let e = &payload["events"][0];
    assert_eq!(e["eventName"], "ObjectCreated:PutObject");
    assert_eq!(e["eventSource"], "acs:oss");
    assert_eq!(e["eventVersion"], "1.0");
    assert_eq!(e["region"], "cn-hangzhou");
    assert_eq!(e["oss"]["bucket"]["name"], "photos");
    assert_eq!(
        e["oss"]["bucket"]["arn"],
        "acs:oss:cn-hangzhou:1234567890123456:photos"
    );
    // The raw key, not URL-encoded (events.md §3), spaces, '+' and non-ASCII included.
    assert_eq!(e["oss"]["object"]["key"], "uploads/相册 a+b.jpg");
    assert_eq!(e["oss"]["object"]["size"], 10);
    assert_eq!(e["oss"]["object"]["deltaSize"], 10);
    // md5(b"jpeg bytes"), upper-case, no quotes.
    assert_eq!(
        e["oss"]["object"]["eTag"],
        "2CCD799F3A5130350478899447B6AA06"
    );
    assert_eq!(e["oss"]["object"]["objectMeta"]["mimeType"], "image/jpeg");
    assert_eq!(
        e["oss"]["object"]["objectMeta"]["userMeta"]["x-oss-meta-camera"],
        "x100"
    );
    assert_eq!(
        e["responseElements"]["requestId"].as_str().unwrap().len(),
        24
    );
    assert!(e["eventTime"].as_str().unwrap().ends_with('Z'));

    // Two puts in the bucket (the trigger has no key filter); the delete is not ObjectCreated.
    let cos = finished_tasks(&s, "cosfn", 2);
    assert_eq!(cos.len(), 2, "{cos:?}");
    let records: Vec<Value> = cos
        .iter()
        .map(|t| {
            let id = t["taskId"].as_str().unwrap();
            let t = s.get(&format!("/2023-03-30/functions/cosfn/async-tasks/{id}"));
            serde_json::from_str::<Value>(t["returnPayload"].as_str().unwrap()).unwrap()
        })
        .collect();
    let payload = records
        .iter()
        .find(|p| p["Records"][0]["cos"]["cosObject"]["key"] == "/1250000000/pics/filterdir/a.jpg")
        .unwrap_or_else(|| panic!("{records:?}"));
    let r = &payload["Records"][0];
    assert_eq!(r["event"]["eventName"], "cos:ObjectCreated:Put");
    assert_eq!(r["event"]["eventSource"], "qcs::cos");
    assert_eq!(
        r["cos"]["cosObject"]["key"],
        "/1250000000/pics/filterdir/a.jpg"
    );
    assert_eq!(r["cos"]["cosBucket"]["name"], "pics");
    assert_eq!(r["cos"]["cosBucket"]["region"], "gz");
    assert_eq!(r["cos"]["cosObject"]["size"], 9);
}

#[test]
fn bad_input_is_refused_with_the_protocol_code_and_nothing_stored() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    run_script(&py, "bad_input.py", &[&s.oss]);
}

/// A function with a role reaches the object store at `FNBRIDGE_OSS_ENDPOINT` from inside its
/// sandbox and signs with its `context.credentials` through `oss2.StsAuth`, as FC code does
/// against OSS; a function without a role has no credentials to sign with.
#[test]
fn a_function_uses_its_sts_credentials_with_oss2_against_the_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "writer", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:*"], "Resource": ["*"]}]}}),
    ));
    let code = r#"
import os, oss2
def handler(event, context):
    c = context.credentials
    if not c.access_key_id:
        return "no credentials"
    auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token)
    bucket = oss2.Bucket(auth, os.environ["FNBRIDGE_OSS_ENDPOINT"], "from-fn")
    bucket.create_bucket()
    bucket.put_object("hello.txt", b"written by the function")
    return bucket.get_object("hello.txt").read().decode()
"#;
    ok_json(s.deploy(
        "writer",
        &[("index.py", code)],
        json!({"role": "acs:ram::1234567890123456:role/writer", "timeout": 60}),
    ));
    ok_json(s.deploy("anonymous", &[("index.py", code)], json!({"timeout": 60})));
    let invoke = |f: &str| {
        let r = s
            .req(
                reqwest::Method::POST,
                &format!("/2023-03-30/functions/{f}/invocations"),
            )
            .body("{}")
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{f}: {status} {text}");
        text
    };
    assert_eq!(invoke("writer"), "written by the function");
    assert_eq!(invoke("anonymous"), "no credentials");
}

/// A role's STS credentials, handed to a function and used from outside with boto3 (S3 SigV4,
/// header and presigned) and cos-python-sdk-v5 (COS): held to the role's policy by the S3 and
/// COS fronts as by the OSS one (`sandbox.rs` covers oss2 from inside a handler).
#[test]
fn sts_credentials_are_held_to_the_role_policy_over_s3_and_cos() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "reader", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"],
             "Resource": ["acs:oss:*:*:pol-a/*", "acs:oss:*:*:pola-1250000000/*"]}]}}),
    ));
    let code = r#"
import json
def handler(event, context):
    c = context.credentials
    return json.dumps([c.access_key_id, c.access_key_secret, c.security_token])
"#;
    ok_json(s.deploy(
        "creds",
        &[("index.py", code)],
        json!({"role": "acs:ram::1234567890123456:role/reader", "timeout": 60}),
    ));
    let r = s
        .req(
            reqwest::Method::POST,
            "/2023-03-30/functions/creds/invocations",
        )
        .body("{}")
        .send()
        .unwrap();
    let creds: Vec<String> = serde_json::from_str(&r.text().unwrap()).unwrap();
    let (ak, sk) = KEY.with(|k| k.borrow().clone()).unwrap();
    let out = Command::new(&py)
        .arg(repo().join("crates/fnbridge/tests/objectstore/sts_policy.py"))
        .arg(&s.oss)
        .env("FNB_AK", ak)
        .env("FNB_SK", sk)
        .env("STS_AK", &creds[0])
        .env("STS_SK", &creds[1])
        .env("STS_TOKEN", &creds[2])
        .env("NO_PROXY", "")
        .output()
        .expect("run python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "sts_policy.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the `fnbridge` binary against `s` (its admin token found in the data dir, as a user on
/// the server's machine has it); returns status, stdout and stderr.
fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::BIN)
        .args(args)
        .env("FNBRIDGE_ENDPOINT", &s.base)
        .env("FNBRIDGE_OSS_ENDPOINT", &s.oss)
        .env("FNBRIDGE_DATA_DIR", &s.data)
        .env_remove("FNBRIDGE_TOKEN")
        .env_remove("FNBRIDGE_ACCESS_KEY_ID")
        .env_remove("FNBRIDGE_ACCESS_KEY_SECRET")
        .output()
        .expect("run fnbridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_ok(s: &Server, args: &[&str]) -> String {
    let (code, out, err) = cli(s, args);
    assert_eq!(code, 0, "fnbridge {args:?}:\n{out}\n{err}");
    out
}

fn cli_json(s: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = cli_ok(s, &a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The CLI's bucket, cp, ls and rm against a real server: a 3 MB file up and down byte for
/// byte, a key with a space, '+' and non-ASCII, a recursive copy both ways, listing with and
/// without "directories", the key it keeps (0600, reused, replaced when the server no longer
/// knows it) and errors naming the store's code.
#[test]
fn cli_bucket_cp_ls_rm() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let work = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = work.path().join("big.bin");
    std::fs::write(&src, &big).unwrap();

    assert!(
        cli_ok(&s, &["bucket", "create", "oss://cli-test"]).contains("created bucket cli-test")
    );
    let keyfile = dir.path().join("cli-access-key.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keyfile).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kept = std::fs::read_to_string(&keyfile).unwrap();
    let buckets = cli_json(&s, &["bucket", "list"]);
    assert_eq!(buckets["buckets"][0]["name"], "cli-test", "{buckets}");
    // The next command signs with the same key: no new key per command.
    assert_eq!(std::fs::read_to_string(&keyfile).unwrap(), kept);

    let up = cli_json(&s, &["cp", src.to_str().unwrap(), "oss://cli-test/dir/"]);
    assert_eq!(up["copied"][0]["to"], "oss://cli-test/dir/big.bin", "{up}");
    assert_eq!(up["copied"][0]["bytes"], 3_000_000);
    cli_ok(
        &s,
        &["cp", src.to_str().unwrap(), "oss://cli-test/a b+ü.bin"],
    );
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("x.txt"), "x").unwrap();
    std::fs::write(tree.join("sub/y.txt"), "yy").unwrap();
    cli_ok(
        &s,
        &["cp", "-r", tree.to_str().unwrap(), "oss://cli-test/tree"],
    );

    let top = cli_json(&s, &["ls", "oss://cli-test"]);
    let keys: Vec<&str> = top["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a b+ü.bin"], "{top}");
    assert_eq!(top["prefixes"], json!(["dir/", "tree/"]));
    let all = cli_json(&s, &["ls", "-r", "oss://cli-test/tree/"]);
    let keys: Vec<&str> = all["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["tree/sub/y.txt", "tree/x.txt"], "{all}");
    let table = cli_ok(&s, &["ls", "oss://cli-test"]);
    assert!(
        table.contains("PRE") && table.contains("3000000  a b+ü.bin"),
        "{table}"
    );

    let back = work.path().join("back.bin");
    cli_ok(
        &s,
        &["cp", "oss://cli-test/a b+ü.bin", back.to_str().unwrap()],
    );
    assert!(
        std::fs::read(&back).unwrap() == big,
        "downloaded bytes differ"
    );
    let down = work.path().join("down");
    cli_ok(
        &s,
        &["cp", "-r", "oss://cli-test/tree/", down.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(down.join("sub/y.txt")).unwrap(),
        "yy"
    );
    assert_eq!(std::fs::read_to_string(down.join("x.txt")).unwrap(), "x");

    // Server-side copies between two oss:// URLs: one object (into a "directory", keeping its
    // name), and a prefix with -r.
    cli_ok(&s, &["bucket", "create", "oss://cli-copy"]);
    let c = cli_json(&s, &["cp", "oss://cli-test/a b+ü.bin", "oss://cli-copy/c/"]);
    assert_eq!(c["copied"][0]["to"], "oss://cli-copy/c/a b+ü.bin", "{c}");
    assert_eq!(c["copied"][0]["bytes"], 3_000_000, "{c}");
    let back2 = work.path().join("back2.bin");
    cli_ok(
        &s,
        &["cp", "oss://cli-copy/c/a b+ü.bin", back2.to_str().unwrap()],
    );
    assert!(std::fs::read(&back2).unwrap() == big, "copied bytes differ");
    let c = cli_json(
        &s,
        &["cp", "-r", "oss://cli-test/tree/", "oss://cli-copy/t2"],
    );
    let to: Vec<&str> = c["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        ["oss://cli-copy/t2/sub/y.txt", "oss://cli-copy/t2/x.txt"],
        "{c}"
    );
    let copy_back = work.path().join("y.txt");
    cli_ok(
        &s,
        &[
            "cp",
            "oss://cli-copy/t2/sub/y.txt",
            copy_back.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&copy_back).unwrap(), "yy");
    let (code, _, err) = cli(&s, &["cp", "oss://cli-test/nope", "oss://cli-copy/x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("NoSuchKey") && err.contains("oss://cli-test/nope"),
        "{err}"
    );
    let (code, _, err) = cli(
        &s,
        &["cp", "oss://cli-test/dir/big.bin", "oss://no-such-bucket/x"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("NoSuchBucket"), "{err}");
    let rm = cli_json(&s, &["rm", "-r", "oss://cli-copy/"]);
    assert_eq!(rm["deleted"].as_array().unwrap().len(), 3, "{rm}");
    cli_ok(&s, &["bucket", "delete", "oss://cli-copy"]);

    // Refusals carry the store's code; a missing object leaves no file behind.
    let (code, _, err) = cli(&s, &["bucket", "delete", "cli-test"]);
    assert_eq!(code, 2);
    assert!(err.contains("BucketNotEmpty"), "{err}");
    let missing = work.path().join("missing.bin");
    let (code, _, err) = cli(
        &s,
        &["cp", "oss://cli-test/nope", missing.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(err.contains("NoSuchKey"), "{err}");
    assert!(!missing.exists());
    let (code, _, err) = cli(&s, &["cp", src.to_str().unwrap(), "oss://no-such-bucket/k"]);
    assert_eq!(code, 2);
    assert!(err.contains("NoSuchBucket"), "{err}");

    // A kept key the server no longer knows is replaced, not signed with.
    let v: Value = serde_json::from_str(&kept).unwrap();
    let id = v["accessKeyId"].as_str().unwrap();
    let r = s
        .req(reqwest::Method::DELETE, &format!("/keys/{id}"))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    cli_ok(&s, &["rm", "oss://cli-test/a b+ü.bin"]);
    assert_ne!(std::fs::read_to_string(&keyfile).unwrap(), kept);

    let rm = cli_json(&s, &["rm", "-r", "oss://cli-test/"]);
    assert_eq!(rm["deleted"].as_array().unwrap().len(), 3, "{rm}");
    cli_ok(&s, &["bucket", "delete", "oss://cli-test"]);
    assert_eq!(cli_json(&s, &["ls"])["buckets"], json!([]));

    // A key given on the command line is used as given, and a wrong one refused by the store.
    let (code, _, err) = cli(
        &s,
        &[
            "ls",
            "--access-key-id",
            "LTAInope",
            "--access-key-secret",
            "x",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
}

#[test]
fn requests_over_the_size_limits_are_refused_and_store_nothing() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    run_script(&py, "size_limits.py", &[&s.oss]);
}

/// boto3 (`addressing_style: virtual`, `bucket.localhost`) and oss2 (`bucket.oss.test`, a
/// name given with --oss-domain) with the bucket in the Host; the script maps those names to
/// 127.0.0.1 in its own resolver, since they do not resolve on a plain machine.
#[test]
fn virtual_host_style_with_boto3_and_oss2() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &["--oss-domain", "localhost", "--oss-domain", "oss.test"],
    );
    let key = ok_json(s.post("/keys", &json!({"description": "vhost"})));
    KEY.with(|k| {
        *k.borrow_mut() = Some((
            key["accessKeyId"].as_str().unwrap().to_string(),
            key["accessKeySecret"].as_str().unwrap().to_string(),
        ))
    });
    run_script(&py, "virtual_host.py", &[&s.oss]);
}

/// The `aws` command on PATH (scripts/test.sh installs Debian's awscli when there is none), or
/// `None` outside CI when there is none (then the test says so).
fn aws() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("aws"))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "aws is missing: scripts/test.sh installs awscli"
        );
        eprintln!("skipped: no aws on PATH (scripts/test.sh installs awscli)");
    }
    found
}

/// `aws s3` with its defaults apart from endpoint and keys: mb, cp up (10 MB: multipart) and
/// down byte for byte, ls with a prefix, presign (works, then expires), rm, rb.
#[test]
fn aws_cli_s3() {
    let Some(aws) = aws() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let (ak, sk) = KEY.with(|k| k.borrow().clone()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> String {
        let out = Command::new(&aws)
            .arg("--endpoint-url")
            .arg(&s.oss)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &ak)
            .env("AWS_SECRET_ACCESS_KEY", &sk)
            .env("AWS_DEFAULT_REGION", "cn-hangzhou")
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .env("HOME", home.path())
            .env("NO_PROXY", "*")
            .output()
            .expect("run aws");
        assert!(
            out.status.success(),
            "aws {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let work = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let src = work.path().join("ten.bin");
    std::fs::write(&src, &data).unwrap();
    let src = src.to_str().unwrap();

    assert!(run(&["s3", "mb", "s3://aws-cli"]).contains("make_bucket: aws-cli"));
    run(&["s3", "cp", src, "s3://aws-cli/dir/ten.bin"]);
    run(&["s3", "cp", src, "s3://aws-cli/other/x.bin"]);
    let back = work.path().join("back.bin");
    run(&[
        "s3",
        "cp",
        "s3://aws-cli/dir/ten.bin",
        back.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&back).unwrap() == data,
        "downloaded bytes differ"
    );

    let ls = run(&["s3", "ls", "s3://aws-cli/dir/"]);
    assert!(
        ls.contains("10000000 ten.bin") && !ls.contains("x.bin"),
        "{ls}"
    );
    let top = run(&["s3", "ls", "s3://aws-cli/"]);
    assert!(
        top.contains("PRE dir/") && top.contains("PRE other/"),
        "{top}"
    );
    let rec = run(&["s3", "ls", "--recursive", "s3://aws-cli/di"]);
    assert!(
        rec.contains("dir/ten.bin") && !rec.contains("other/"),
        "{rec}"
    );

    let url = run(&[
        "s3",
        "presign",
        "s3://aws-cli/dir/ten.bin",
        "--expires-in",
        "2",
    ]);
    let url = url.trim();
    let r = reqwest::blocking::get(url).unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert!(r.bytes().unwrap().as_ref() == data.as_slice());
    std::thread::sleep(Duration::from_millis(3100));
    let r = reqwest::blocking::get(url).unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("<Code>AccessDenied</Code>"));

    run(&["s3", "rm", "s3://aws-cli/dir/ten.bin"]);
    run(&["s3", "rm", "--recursive", "s3://aws-cli/other/"]);
    assert_eq!(
        run(&["s3", "ls", "--recursive", "s3://aws-cli/"]).trim(),
        ""
    );
    run(&["s3", "rb", "s3://aws-cli"]);
    assert!(!run(&["s3", "ls"]).contains("aws-cli"));
}

/// The keys named by the OSS events of every task of `function` (any status: a task exists
/// from the moment its event commits), following nextToken.
fn event_keys(s: &Server, function: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut next = String::new();
    loop {
        let v = s.get(&format!(
            "/2023-03-30/functions/{function}/async-tasks?limit=100&includePayload=true&nextToken={next}"
        ));
        // FC's ListAsyncTasks names the list `tasks`.
        for t in v["tasks"].as_array().into_iter().flatten() {
            let payload: Value =
                serde_json::from_str(t["taskPayload"].as_str().unwrap_or("null")).unwrap();
            for e in payload["events"].as_array().into_iter().flatten() {
                keys.push(e["oss"]["object"]["key"].as_str().unwrap().to_string());
            }
        }
        match v["nextToken"].as_str() {
            Some(n) if !n.is_empty() => next = n.to_string(),
            _ => return keys,
        }
    }
}

/// `kill -9` while 4 boto3 processes PUT concurrently: after the restart every acknowledged
/// object reads back with its bytes and has its event (duplicates allowed and counted), and no
/// event names an object that is not stored.
#[test]
fn kill9_during_concurrent_puts_keeps_every_acknowledged_object_and_its_event() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let (ak, sk) = KEY.with(|k| k.borrow().clone()).unwrap();
    ok_json(s.deploy(
        "sink",
        &[(
            "index.py",
            "def handler(event, context):\n    return 'ok'\n",
        )],
        json!({}),
    ));
    ok_json(s.post(
        "/2023-03-30/functions/sink/triggers",
        &json!({"triggerName": "all", "triggerType": "oss",
                "triggerConfig": json!({"events": ["oss:ObjectCreated:*"]}).to_string(),
                "sourceArn": "acs:oss:cn-hangzhou:1234567890123456:crash"}),
    ));
    run_script(&py, "crash_puts.py", &[&s.oss, "create"]);

    let acks = tempfile::tempdir().unwrap();
    let script = repo().join("crates/fnbridge/tests/objectstore/crash_puts.py");
    let clients: Vec<std::process::Child> = (0..4)
        .map(|i| {
            Command::new(&py)
                .arg(&script)
                .args([&s.oss, "put", acks.path().to_str().unwrap(), &i.to_string()])
                .env("FNB_AK", &ak)
                .env("FNB_SK", &sk)
                .env("NO_PROXY", "*")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Kill once every client has some PUTs acknowledged, so the kill lands mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let acked = (0..4)
            .filter(|i| {
                std::fs::read_to_string(acks.path().join(format!("acked-{i}")))
                    .is_ok_and(|t| t.lines().count() >= 10)
            })
            .count();
        if acked == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the clients made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    s.kill9();
    for mut c in clients {
        c.wait().unwrap();
    }
    s.restart();

    let out = Command::new(&py)
        .arg(&script)
        .args([&s.oss, "verify", acks.path().to_str().unwrap()])
        .env("FNB_AK", &ak)
        .env("FNB_SK", &sk)
        .env("NO_PROXY", "*")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let acked: std::collections::BTreeSet<String> = v["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let stored: std::collections::BTreeSet<String> = v["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(acked.len() >= 40, "{} acknowledged", acked.len());
    assert!(acked.is_subset(&stored));

    let events = event_keys(&s, "sink");
    let mut per_key: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in &events {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    for k in &acked {
        assert!(
            per_key.contains_key(k.as_str()),
            "no event for acknowledged {k}"
        );
    }
    for k in per_key.keys() {
        assert!(
            stored.contains(*k),
            "an event names {k}, which is not stored"
        );
    }
    let duplicates = events.len() - per_key.len();
    eprintln!(
        "kill -9: {} acknowledged, {} stored, {} events, {duplicates} duplicate",
        acked.len(),
        stored.len(),
        events.len()
    );
}
