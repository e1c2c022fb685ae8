//! Bad input gets a 4xx with a clear FC-shaped error, and leaves nothing half-created.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const OK: &str = "def handler(event, context):\n    return 'ok'\n";

#[test]
fn authentication_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let token_file = dir.path().join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let r = s.http.get(s.url("/2023-03-30/functions")).send().unwrap();
    expect_error(r, 401, "AccessDenied", "Authorization: Bearer");
    let r = s
        .http
        .get(s.url("/2023-03-30/functions"))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    expect_error(r, 403, "InvalidAccessKeyID", "not valid");
    // The scheme is case-insensitive (RFC 9110).
    let r = s
        .http
        .get(s.url("/2023-03-30/functions"))
        .header("authorization", format!("bearer {}", s.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(s.url("/2023-03-30/functions"))
        .header("authorization", "Basic abc")
        .send()
        .unwrap();
    expect_error(r, 401, "AccessDenied", "unsupported Authorization scheme");
    let r = s
        .http
        .post(s.url("/events"))
        .body(example("events/LogFileCreated.json"))
        .send()
        .unwrap();
    expect_error(r, 401, "AccessDenied", "Bearer");
    assert_eq!(
        s.http.get(s.url("/health")).send().unwrap().text().unwrap(),
        "ok"
    );
    // The token survives a restart.
    let before = s.token.clone();
    drop(s);
    let s = Server::start(dir.path());
    assert_eq!(s.token, before);
}

#[test]
fn bad_functions_are_rejected_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let f = "/2023-03-30/functions";
    expect_error(
        s.post_raw(f, "{not json"),
        400,
        "InvalidArgument",
        "invalid request body",
    );
    expect_error(
        s.deploy("bad name", &[("index.py", OK)], json!({})),
        400,
        "InvalidArgument",
        "functionName",
    );
    expect_error(
        s.deploy("f", &[("index.py", OK)], json!({"runtime": "cobol"})),
        400,
        "InvalidArgument",
        "unknown runtime 'cobol'",
    );
    expect_error(
        s.deploy(
            "f",
            &[("index.py", OK)],
            json!({"memorySize": 100, "timeout": 0}),
        ),
        400,
        "InvalidArgument",
        "memorySize: 100 MB must be a multiple of 64",
    );
    expect_error(
        s.deploy("f", &[("index.py", OK)], json!({"bogus": 1})),
        400,
        "InvalidArgument",
        "unknown field `bogus`",
    );
    expect_error(
        s.deploy("f", &[("main.py", OK)], json!({})),
        400,
        "InvalidArgument",
        "handler",
    );
    expect_error(
        s.deploy(
            "f",
            &[("index.py", "def other(e, c):\n    pass\n")],
            json!({}),
        ),
        400,
        "InvalidArgument",
        "handler",
    );
    expect_error(
        s.deploy(
            "f",
            &[("index.py", OK), ("../escape.py", "x = 1\n")],
            json!({}),
        ),
        400,
        "InvalidArgument",
        "escapes the code directory",
    );
    assert!(!dir.path().join("code/escape.py").exists());
    assert_eq!(
        s.get(f)["functions"],
        json!([]),
        "no function was created by a rejected request"
    );

    ok_json(s.deploy("f", &[("index.py", OK)], json!({})));
    expect_error(
        s.deploy("f", &[("index.py", OK)], json!({})),
        409,
        "FunctionAlreadyExists",
        "'f' already exists",
    );
    expect_error(
        s.req(Method::GET, "/2023-03-30/functions/nope")
            .send()
            .unwrap(),
        404,
        "FunctionNotFound",
        "function 'nope' does not exist",
    );
    expect_error(
        s.req(Method::POST, "/2023-03-30/functions/nope/invocations")
            .body("x")
            .send()
            .unwrap(),
        404,
        "FunctionNotFound",
        "nope",
    );
    expect_error(
        s.req(Method::GET, "/nowhere").send().unwrap(),
        400,
        "PathNotSupported",
        "/nowhere",
    );

    // Oversized payloads: async limit 128 KB.
    let big = vec![b'x'; 128 * 1024 + 1];
    expect_error(
        s.req(Method::POST, "/2023-03-30/functions/f/invocations")
            .header("x-fc-invocation-type", "Async")
            .body(big)
            .send()
            .unwrap(),
        400,
        "EntityTooLarge",
        "131072",
    );
    // A failed update keeps the old deployment.
    expect_error(
        s.req(Method::PUT, "/2023-03-30/functions/f")
            .json(&json!({"code": {"zipFile": zip_b64(&[("index.py", "def handler(:\n")])}}))
            .send()
            .unwrap(),
        400,
        "InvalidArgument",
        "handler",
    );
    let r = s
        .req(Method::POST, "/2023-03-30/functions/f/invocations")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "ok");
}

#[test]
fn bad_triggers_and_events_are_rejected_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", OK)], json!({})));
    let t = "/2023-03-30/functions/f/triggers";
    let trig = |cfg: serde_json::Value| json!({"triggerName": "t", "triggerType": "cdn_events", "triggerConfig": cfg.to_string()});
    expect_error(
        s.post(t, &trig(json!({"eventName": "LogFileMade", "eventVersion": "1.0.0", "filter": {"domain": ["a.com"]}}))),
        400,
        "InvalidArgument",
        "LogFileMade",
    );
    expect_error(
        s.post(t, &trig(json!({"eventName": "LogFileCreated", "eventVersion": "2.0.0", "filter": {"domain": ["a.com"]}}))),
        400,
        "InvalidArgument",
        "1.0.0",
    );
    expect_error(
        s.post(t, &trig(json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "filter": {"domain": []}}))),
        400,
        "InvalidArgument",
        "domain",
    );
    expect_error(
        s.post(
            t,
            &trig(json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0"})),
        ),
        400,
        "InvalidArgument",
        "filter",
    );
    expect_error(
        s.post(
            t,
            &json!({"triggerName": "t", "triggerType": "cdn_events", "triggerConfig": "{oops"}),
        ),
        400,
        "InvalidArgument",
        "triggerConfig: not valid JSON",
    );
    expect_error(
        s.post(
            t,
            &json!({"triggerName": "t", "triggerType": "timer", "triggerConfig": "{}"}),
        ),
        400,
        "InvalidArgument",
        "triggerType: 'timer' is not supported",
    );
    expect_error(
        s.post("/2023-03-30/functions/ghost/triggers", &trig(json!({}))),
        404,
        "FunctionNotFound",
        "ghost",
    );
    assert_eq!(s.get(t)["triggers"], json!([]));
    ok_json(s.cdn_trigger("f", "t", "LogFileCreated", &["example.com"]));
    expect_error(
        s.cdn_trigger("f", "t", "CdnDomainAdded", &["example.com"]),
        409,
        "TriggerAlreadyExists",
        "'t'",
    );
    // Object form of triggerConfig (FC 2.0 clients) is accepted and echoed as a string.
    let v = ok_json(s.post(
        t,
        &json!({"triggerName": "obj", "triggerType": "cdn_events",
                "triggerConfig": {"eventName": "CdnDomainAdded", "eventVersion": "1.0.0", "filter": {"domain": ["example.com"]}}}),
    ));
    assert!(v["triggerConfig"].is_string());
    expect_error(
        s.req(Method::DELETE, "/2023-03-30/functions/f")
            .send()
            .unwrap(),
        409,
        "FunctionNotEmpty",
        "trigger",
    );

    // Events: a bad one rejects the whole envelope; nothing is stored or delivered.
    let good = serde_json::from_str::<serde_json::Value>(&example("events/LogFileCreated.json"))
        .unwrap()["events"][0]
        .clone();
    let mut bad_version = good.clone();
    bad_version["eventVersion"] = json!("1.0.1");
    let mut bad_name = good.clone();
    bad_name["eventName"] = json!("LogFileDeleted");
    expect_error(
        s.post("/events", &json!({"events": [good, bad_version]})),
        400,
        "InvalidArgument",
        "events[1].eventVersion",
    );
    expect_error(
        s.post("/events", &json!({"events": [bad_name]})),
        400,
        "InvalidArgument",
        "LogFileDeleted",
    );
    expect_error(
        s.post_raw("/events", "{\"events\": [}"),
        400,
        "InvalidArgument",
        "not valid JSON",
    );
    let huge = json!({"events": [{"eventName": "LogFileCreated", "eventSource": "cdn", "eventVersion": "1.0.0",
        "resource": {"domain": "example.com"}, "pad": "x".repeat(2 * 1024 * 1024)}]});
    expect_error(s.post("/events", &huge), 400, "EntityTooLarge", "bytes");
    assert_eq!(
        s.get("/tasks")["asyncTasks"],
        json!([]),
        "rejected events created no delivery"
    );
}
