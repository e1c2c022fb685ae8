//! The sandbox end to end, through the real server: what a deployed handler can reach (not the
//! admin token, the database, other functions' code, the server's environment; not /code or
//! anything outside its /tmp for writing), that its processes die with its instance and with a
//! SIGKILLed server, that published code stays as published, and that a requirements.txt naming
//! a local path runs nothing as the server's user.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Invokes `name` synchronously with `payload` and returns the body as text.
fn invoke(s: &Server, name: &str, qualifier: &str, payload: &Value) -> String {
    let r = s
        .req(
            Method::POST,
            &format!("/2023-03-30/functions/{name}/invocations?qualifier={qualifier}"),
        )
        .body(payload.to_string())
        .send()
        .unwrap();
    let error = r
        .headers()
        .get("x-fc-error-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().unwrap();
    assert_eq!(error, None, "{text}");
    text
}

/// Tries to read and write each path it is given; reports what happened.
const PROBE: &str = r#"
import json, os

def attempt(fn):
    try:
        fn()
        return "allowed"
    except Exception as e:
        return type(e).__name__

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def write(path):
    with open(path, "a") as f:
        f.write("tampered")

def handler(event, context):
    e = json.loads(event)
    return json.dumps({
        "uid": os.getuid(),
        "read": {p: attempt(lambda p=p: read(p)) for p in e["read"]},
        "write": {p: attempt(lambda p=p: write(p)) for p in e["write"]},
        "escape": attempt(lambda: read(os.environ["FC_FUNC_CODE_PATH"] + "/../../../admin.token")),
    })
"#;

#[test]
fn a_handler_reaches_nothing_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy(
        "other",
        &[("index.py", "def handler(e, c):\n    return 'other'\n")],
        json!({}),
    ));
    ok_json(s.deploy("probe", &[("index.py", PROBE)], json!({})));
    let data = s.data.canonicalize().unwrap();
    let other_code = std::fs::read_dir(data.join("code/other"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("index.py");
    let pid = s.child.as_ref().unwrap().id();
    let read = [
        data.join("admin.token"),
        data.join("fnbridge.db"),
        other_code.clone(),
        format!("/proc/{pid}/environ").into(),
    ];
    let write = [
        std::path::PathBuf::from("/code/index.py"),
        "/code/new.py".into(),
        data.join("admin.token"),
        other_code.clone(),
        "/etc/passwd".into(),
        "/var/evil".into(),
    ];
    let out = invoke(
        &s,
        "probe",
        "LATEST",
        &json!({"read": read, "write": write}),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["uid"], 0, "{v}");
    for (path, what) in v["read"].as_object().unwrap() {
        assert_ne!(what, "allowed", "read {path}: {v}");
    }
    for (path, what) in v["write"].as_object().unwrap() {
        assert_ne!(what, "allowed", "write {path}: {v}");
    }
    assert_ne!(v["escape"], "allowed", "{v}");
    assert_eq!(
        std::fs::read_to_string(&other_code).unwrap(),
        "def handler(e, c):\n    return 'other'\n"
    );
}

const TAMPER: &str = r#"
import os

def handler(event, context):
    for path in ("/code/index.py", os.environ["FC_FUNC_CODE_PATH"] + "/index.py"):
        try:
            with open(path, "w") as f:
                f.write("def handler(e, c):\n    return 'TAMPERED'\n")
        except OSError:
            pass
    return "original"
"#;

#[test]
fn published_code_cannot_be_changed_by_running_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", TAMPER)], json!({})));
    let v = ok_json(s.post("/2023-03-30/functions/f/versions", &json!({})));
    let version = v["versionId"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(invoke(&s, "f", &version, &json!({})), "original");
    }
    // A restart starts new instances from the stored code.
    s.restart();
    assert_eq!(invoke(&s, "f", &version, &json!({})), "original");
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "original");
}

/// Starts `sleep <marker>` in a new session (so outside the worker's process group) and returns.
fn setsid_code(marker: u32) -> String {
    format!(
        "import subprocess, time\n\ndef handler(event, context):\n    subprocess.Popen(['setsid', 'sleep', '{marker}'], start_new_session=True)\n    time.sleep(0.3)\n    return 'started'\n"
    )
}

/// Pids of running `sleep <marker>` processes.
fn sleepers(marker: u32) -> Vec<u32> {
    let want = format!("sleep\0{marker}\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

fn gone_within(marker: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if sleepers(marker).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_setsid_grandchild_dies_with_a_sigkilled_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let marker = 7000 + std::process::id() % 1000;
    ok_json(s.deploy("f", &[("index.py", &setsid_code(marker))], json!({})));
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "started");
    assert_eq!(sleepers(marker).len(), 1, "the grandchild runs");
    s.kill9();
    assert!(
        gone_within(marker, Duration::from_secs(10)),
        "the grandchild outlived the server"
    );
}

#[test]
fn a_setsid_grandchild_dies_with_its_reaped_instance() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--idle-timeout-s", "1"]);
    let marker = 8000 + std::process::id() % 1000;
    ok_json(s.deploy("f", &[("index.py", &setsid_code(marker))], json!({})));
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "started");
    assert_eq!(sleepers(marker).len(), 1, "the grandchild runs");
    assert!(
        gone_within(marker, Duration::from_secs(10)),
        "the grandchild outlived its instance"
    );
}

#[test]
fn a_requirements_txt_with_a_local_path_runs_nothing_as_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let marker = dir.path().join("setup-ran");
    let setup = format!(
        "open({:?}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='pkg', version='1')\n",
        marker.to_str().unwrap()
    );
    for requirement in ["./pkg", "-e ./pkg", "pkg @ file:///code/pkg"] {
        let files = [
            ("index.py", "def handler(e, c):\n    return 'ok'\n"),
            ("requirements.txt", requirement),
            ("pkg/setup.py", setup.as_str()),
        ];
        let r = s.deploy("f", &files, json!({}));
        expect_error(
            r,
            400,
            "InvalidArgument",
            "only packages from the package index",
        );
        assert!(
            !marker.exists(),
            "{requirement}: setup.py ran as the server's user"
        );
    }
}

const ENDPOINT: &str = r#"
import os, urllib.request, urllib.error

def handler(event, context):
    url = os.environ["FNBRIDGE_API_ENDPOINT"] + "/2023-03-30/functions"
    try:
        urllib.request.urlopen(url, timeout=5)
        return "200"
    except urllib.error.HTTPError as e:
        return str(e.code)
"#;

#[test]
fn the_api_is_reachable_from_inside_at_its_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", ENDPOINT)], json!({})));
    // Reached the API, which wants a token.
    assert_eq!(invoke(&s, "f", "LATEST", &json!({})), "401");
}

const VERSION: &str = "import sys, os\n\ndef handler(event, context):\n    return '%d.%d %s %s' % (sys.version_info[0], sys.version_info[1], os.environ['FC_FUNCTION_VERSION'], context.function.version_id)\n";

#[test]
fn python_runtimes_run_on_their_own_interpreter_and_versions_agree() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for (runtime, minor) in [
        ("python3.9", "3.9"),
        ("python3.10", "3.10"),
        ("python3.12", "3.12"),
    ] {
        let name = format!("v{}", minor.replace('.', ""));
        let created =
            ok_json(s.deploy(&name, &[("index.py", VERSION)], json!({"runtime": runtime})));
        let interpreter = created["interpreter"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !interpreter.contains("not installed") {
            assert!(
                interpreter.starts_with(&format!("Python {minor}.")),
                "{interpreter}"
            );
            assert_eq!(
                invoke(&s, &name, "LATEST", &json!({})),
                format!("{minor} LATEST LATEST")
            );
        }
        let got = s.get(&format!("/2023-03-30/functions/{name}"));
        assert_eq!(got["interpreter"].as_str(), Some(interpreter.as_str()));
    }
}

const OSS2: &str = "import oss2\n\ndef handler(event, context):\n    return oss2.__name__\n";

#[test]
fn oss2_is_importable_without_requirements() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", OSS2)], json!({})));
    // The layer is installed in the background at the first server start (shared by tests).
    let start = Instant::now();
    loop {
        let r = s
            .req(Method::POST, "/2023-03-30/functions/f/invocations")
            .body("{}")
            .send()
            .unwrap();
        let failed = r.headers().contains_key("x-fc-error-type");
        let text = r.text().unwrap();
        if !failed {
            assert_eq!(text, "oss2");
            return;
        }
        assert!(text.contains("ModuleNotFoundError"), "{text}");
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the layer never arrived: {text}"
        );
        // A new instance is needed to see the layer once it is installed.
        s.req(Method::PUT, "/2023-03-30/functions/f")
            .json(&json!({"description": format!("{:?}", start.elapsed())}))
            .send()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Waits until the shared layer of built-in modules (oss2, aliyunsdkcore) is importable:
/// it is installed in the background at the first server start.
fn wait_for_layer(s: &Server) {
    ok_json(s.deploy("layer-probe", &[("index.py", OSS2)], json!({})));
    let start = Instant::now();
    loop {
        let r = s
            .req(
                Method::POST,
                "/2023-03-30/functions/layer-probe/invocations",
            )
            .body("{}")
            .send()
            .unwrap();
        let failed = r.headers().contains_key("x-fc-error-type");
        let text = r.text().unwrap();
        if !failed {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the layer never arrived: {text}"
        );
        s.req(Method::PUT, "/2023-03-30/functions/layer-probe")
            .json(&json!({"description": format!("{:?}", start.elapsed())}))
            .send()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Makes buckets `bucket-a` and `bucket-b`, each holding `k.txt`, from a function whose role
/// allows every OSS action.
const SETUP: &str = r#"
import os, oss2
def handler(event, context):
    c = context.credentials
    auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token)
    for name in ("bucket-a", "bucket-b"):
        b = oss2.Bucket(auth, os.environ["FNBRIDGE_OSS_ENDPOINT"], name)
        b.create_bucket()
        b.put_object("k.txt", ("hello " + name).encode())
    return "made"
"#;

/// Tries OSS operations with oss2.StsAuth and CDN actions with aliyunsdkcore (RPC, STS token),
/// both signed with `context.credentials`; reports each outcome.
const LIMITED: &str = r#"
import json, os, oss2
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.request import CommonRequest

def oss(fn):
    try:
        return "ok:" + str(fn())
    except oss2.exceptions.OssError as e:
        return "%d %s" % (e.status, e.code)

def cdn(client, action, **params):
    r = CommonRequest(domain=os.environ["FNBRIDGE_API_ENDPOINT"].split("://", 1)[1],
                      version="2018-05-10", action_name=action)
    r.set_protocol_type("http")
    r.set_method("POST")
    for k, v in params.items():
        r.add_query_param(k, v)
    try:
        client.do_action_with_exception(r)
        return "ok"
    except ServerException as e:
        return "%d %s" % (e.get_http_status(), e.get_error_code())

def handler(event, context):
    c = context.credentials
    auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token)
    ep = os.environ["FNBRIDGE_OSS_ENDPOINT"]
    a = oss2.Bucket(auth, ep, "bucket-a")
    b = oss2.Bucket(auth, ep, "bucket-b")
    client = AcsClient(region_id="cn-hangzhou", credential=StsTokenCredential(
        c.access_key_id, c.access_key_secret, c.security_token))
    return json.dumps({
        "read_a": oss(lambda: a.get_object("k.txt").read().decode()),
        "head_a": oss(lambda: a.head_object("k.txt").content_length),
        "write_a": oss(lambda: a.put_object("new.txt", b"x").status),
        "delete_a": oss(lambda: a.delete_object("k.txt").status),
        "list_a": oss(lambda: len(list(oss2.ObjectIterator(a)))),
        "read_b": oss(lambda: b.get_object("k.txt").read().decode()),
        "copy_b_to_a": oss(lambda: a.copy_object("bucket-b", "k.txt", "copy.txt").status),
        "cdn_describe": cdn(client, "DescribeUserDomains"),
        "cdn_add": cdn(client, "AddCdnDomain", DomainName="a.example.com", CdnType="web",
                       Sources='[{"content":"bucket-a.oss-cn-hangzhou.aliyuncs.com","type":"oss","port":80}]'),
    })
"#;

/// A role's policy is what its STS credentials may do in every service: a handler whose role
/// allows `oss:GetObject` on bucket-a and `cdn:DescribeUserDomains` reads bucket-a, and gets
/// each protocol's refusal (OSS `AccessDenied`, CDN `Forbidden.RAM`, both 403) for writing or
/// listing bucket-a, reading bucket-b, copying from bucket-b (to a key it may write) and adding
/// a CDN domain.
#[test]
fn sts_credentials_do_only_what_the_role_policy_allows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    wait_for_layer(&s);
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "admin", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:*"], "Resource": ["*"]}]}}),
    ));
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "reader", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:bucket-a/*"]},
            {"Effect": "Allow", "Action": ["oss:PutObject"], "Resource": ["acs:oss:*:*:bucket-a/copy*"]},
            {"Effect": "Allow", "Action": ["cdn:DescribeUserDomains"], "Resource": ["*"]}]}}),
    ));
    let role =
        |r: &str| json!({"role": format!("acs:ram::1234567890123456:role/{r}"), "timeout": 60});
    ok_json(s.deploy("setup", &[("index.py", SETUP)], role("admin")));
    ok_json(s.deploy("limited", &[("index.py", LIMITED)], role("reader")));
    assert_eq!(invoke(&s, "setup", "LATEST", &json!({})), "made");
    let out: Value = serde_json::from_str(&invoke(&s, "limited", "LATEST", &json!({}))).unwrap();
    let denied = "403 AccessDenied";
    assert_eq!(out["read_a"], "ok:hello bucket-a", "{out}");
    assert_eq!(out["head_a"], "ok:14", "{out}");
    assert_eq!(out["write_a"], denied, "{out}");
    assert_eq!(out["delete_a"], denied, "{out}");
    assert_eq!(out["list_a"], denied, "{out}");
    assert_eq!(out["read_b"], denied, "{out}");
    assert_eq!(out["copy_b_to_a"], denied, "{out}");
    assert_eq!(out["cdn_describe"], "ok", "{out}");
    assert_eq!(out["cdn_add"], "403 Forbidden.RAM", "{out}");
    // Nothing the refused calls asked for happened: the admin role still reads k.txt, and
    // no new.txt or copy.txt exists.
    let check = r#"
import os, oss2
def handler(event, context):
    c = context.credentials
    b = oss2.Bucket(oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token),
                    os.environ["FNBRIDGE_OSS_ENDPOINT"], "bucket-a")
    return ",".join(sorted(o.key for o in oss2.ObjectIterator(b)))
"#;
    ok_json(s.deploy("check", &[("index.py", check)], role("admin")));
    assert_eq!(invoke(&s, "check", "LATEST", &json!({})), "k.txt");
}

const CREDENTIALS: &str = r#"
import json, os
def handler(event, context):
    return json.dumps({"context": context.credentials.access_key_id,
                       "token": context.credentials.security_token,
                       "env": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
                       "env_token": os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", "")})
"#;

/// `disableInjectCredentials`: `Env` leaves the role's credentials out of the environment,
/// `Request` out of `context.credentials`, `All` out of both, `None` (and no setting) puts them
/// in both; GetFunction echoes it, and a value FC does not know is refused naming the field.
#[test]
fn disable_inject_credentials_leaves_credentials_out_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "r", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["*"]}]}}),
    ));
    let role = "acs:ram::1234567890123456:role/r";
    for (setting, in_context, in_env) in [
        (None, true, true),
        (Some("None"), true, true),
        (Some("Env"), true, false),
        (Some("Request"), false, true),
        (Some("All"), false, false),
    ] {
        let name = format!("c-{}", setting.unwrap_or("unset").to_ascii_lowercase());
        let mut extra = json!({"role": role});
        if let Some(v) = setting {
            extra["disableInjectCredentials"] = json!(v);
        }
        ok_json(s.deploy(&name, &[("index.py", CREDENTIALS)], extra));
        let got = s.get(&format!("/2023-03-30/functions/{name}"));
        assert_eq!(got["disableInjectCredentials"].as_str(), setting, "{got}");
        let out: Value = serde_json::from_str(&invoke(&s, &name, "LATEST", &json!({}))).unwrap();
        let has = |k: &str| out[k].as_str().is_some_and(|v| !v.is_empty());
        assert_eq!(has("context"), in_context, "{setting:?}: {out}");
        assert_eq!(has("token"), in_context, "{setting:?}: {out}");
        assert_eq!(has("env"), in_env, "{setting:?}: {out}");
        assert_eq!(has("env_token"), in_env, "{setting:?}: {out}");
        if in_context {
            assert!(
                out["context"].as_str().unwrap().starts_with("STS."),
                "{out}"
            );
        }
    }
    // Updating the setting applies to the next instance.
    ok_json(
        s.req(Method::PUT, "/2023-03-30/functions/c-unset")
            .json(&json!({"disableInjectCredentials": "All"}))
            .send()
            .unwrap(),
    );
    let out: Value = serde_json::from_str(&invoke(&s, "c-unset", "LATEST", &json!({}))).unwrap();
    assert_eq!(out["context"], "", "{out}");
    assert_eq!(out["env"], "", "{out}");
    expect_error(
        s.deploy(
            "bad",
            &[("index.py", CREDENTIALS)],
            json!({"disableInjectCredentials": "Some"}),
        ),
        400,
        "InvalidArgument",
        "disableInjectCredentials",
    );
}

/// Code written for FC names Alibaba's public endpoints; inside the sandbox they are fnbridge's.
const PUBLIC_ENDPOINTS: &str = r#"
import json, os, urllib.request, urllib.error, oss2

def status(url, data=None):
    try:
        return urllib.request.urlopen(url, data=data, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code

def handler(event, context):
    c = context.credentials
    auth = oss2.StsAuth(c.access_key_id, c.access_key_secret, c.security_token)
    b = oss2.Bucket(auth, 'oss-cn-hangzhou.aliyuncs.com', 'public-ep')
    b.create_bucket()
    b.put_object('hello.txt', b'via the public endpoint')
    internal = oss2.Bucket(auth, 'http://oss-cn-hangzhou-internal.aliyuncs.com', 'public-ep')
    mine = oss2.Bucket(auth, os.environ['FNBRIDGE_OSS_ENDPOINT'], 'public-ep')
    return json.dumps({
        "internal": internal.get_object('hello.txt').read().decode(),
        "own_endpoint": mine.get_object('hello.txt').read().decode(),
        "fc": status('http://1234567890123456.cn-hangzhou.fc.aliyuncs.com/2023-03-30/functions'),
        "cdn": status('http://cdn.aliyuncs.com/?Action=DescribeUserDomains'),
        "eventbridge": status('http://1234567890123456.eventbridge.cn-hangzhou.aliyuncs.com/openapi/putEvents', b'[]'),
    })
"#;

/// `oss2.Bucket(auth, 'oss-cn-hangzhou.aliyuncs.com', bucket)`, unchanged, puts and gets an
/// object in fnbridge's store (virtual-host style, `{bucket}.oss-cn-hangzhou.aliyuncs.com`),
/// the internal endpoint reads it back, and the FC, CDN and EventBridge endpoint names reach
/// fnbridge's API (which then wants a signature: 401, or 400 for the CDN's RPC without one).
#[test]
fn alibaba_public_endpoints_reach_fnbridge_from_inside() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    wait_for_layer(&s);
    ok_json(s.post(
        "/roles",
        &json!({"roleName": "w", "policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:*"], "Resource": ["*"]}]}}),
    ));
    ok_json(s.deploy(
        "public",
        &[("index.py", PUBLIC_ENDPOINTS)],
        json!({"role": "acs:ram::1234567890123456:role/w", "timeout": 60}),
    ));
    let out: Value = serde_json::from_str(&invoke(&s, "public", "LATEST", &json!({}))).unwrap();
    assert_eq!(out["internal"], "via the public endpoint", "{out}");
    assert_eq!(out["own_endpoint"], "via the public endpoint", "{out}");
    assert_eq!(out["fc"], 401, "{out}");
    assert_eq!(out["eventbridge"], 401, "{out}");
    assert_eq!(out["cdn"], 401, "{out}");
}
