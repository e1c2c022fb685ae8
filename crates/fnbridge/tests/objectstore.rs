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

/// The venv's python, or `None` outside CI when it is not installed (then the test says so).
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("FNBRIDGE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/test.sh installs the Python clients",
        p.display()
    );
    eprintln!(
        "skipped: {} missing (run scripts/test.sh once)",
        p.display()
    );
    None
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
    assert_eq!(e["oss"]["object"]["key"], "uploads/a b.jpg");
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
