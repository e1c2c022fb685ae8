//! Versions and aliases end to end: immutable snapshots, qualifiers resolved at delivery time,
//! an alias moved from version 1 to 2 changes what a trigger invokes, weighted routing, and
//! deletes refused while something points at a version or alias.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn code(tag: &str) -> String {
    format!(
        "def handler(event, context):\n    return '{tag}:' + context.function.version_id + ':' + context.function.qualifier\n"
    )
}

fn update_code(s: &Server, tag: &str) {
    ok_json(
        s.req(Method::PUT, "/2023-03-30/functions/f")
            .json(&json!({"code": {"zipFile": zip_b64(&[("index.py", &code(tag))])}}))
            .send()
            .unwrap(),
    );
}

fn publish(s: &Server) -> String {
    let v = ok_json(s.post(
        "/2023-03-30/functions/f/versions",
        &json!({"description": "release"}),
    ));
    v["versionId"].as_str().unwrap().to_string()
}

fn invoke(s: &Server, qualifier: &str) -> String {
    let r = s
        .req(
            Method::POST,
            &format!("/2023-03-30/functions/f/invocations?qualifier={qualifier}"),
        )
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().unwrap()
}

fn deliver(s: &Server) -> String {
    let r = ok_json(s.post_raw("/events", example("events/LogFileCreated.json")));
    let task = r["events"][0]["taskIds"][0].as_str().unwrap().to_string();
    let t = s.wait_task("f", &task, Duration::from_secs(60));
    assert_eq!(t["status"], "Succeeded", "{t}");
    t["returnPayload"].as_str().unwrap().to_string()
}

#[test]
fn versions_aliases_and_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", &code("v1"))], json!({})));
    assert_eq!(publish(&s), "1");
    expect_error(
        s.post("/2023-03-30/functions/f/versions", &json!({})),
        400,
        "InvalidArgument",
        "has not changed since version 1",
    );
    update_code(&s, "v2");
    assert_eq!(publish(&s), "2");
    update_code(&s, "v3");

    assert_eq!(invoke(&s, "1"), "v1:1:1");
    assert_eq!(invoke(&s, "2"), "v2:2:2");
    // LATEST has no version number; the context says LATEST, as FC_FUNCTION_VERSION does.
    assert_eq!(invoke(&s, "LATEST"), "v3:LATEST:LATEST");
    expect_error(
        s.req(
            Method::POST,
            "/2023-03-30/functions/f/invocations?qualifier=9",
        )
        .body("{}")
        .send()
        .unwrap(),
        404,
        "VersionNotFound",
        "version '9'",
    );
    let got = s.get("/2023-03-30/functions/f?qualifier=1");
    assert_eq!(got["qualifier"], "1");
    let list = s.get("/2023-03-30/functions/f/versions");
    assert_eq!(
        list["versions"][0]["versionId"], "2",
        "newest first by default: {list}"
    );

    // An alias, a trigger bound to it, and moving the alias.
    ok_json(s.post(
        "/2023-03-30/functions/f/aliases",
        &json!({"aliasName": "prod", "versionId": "1"}),
    ));
    assert_eq!(invoke(&s, "prod"), "v1:1:prod");
    let t = ok_json(s.post(
        "/2023-03-30/functions/f/triggers",
        &json!({"triggerName": "logs", "triggerType": "cdn_events", "qualifier": "prod",
                "triggerConfig": json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "filter": {"domain": ["example.com"]}}).to_string()}),
    ));
    assert_eq!(t["qualifier"], "prod");
    assert_eq!(deliver(&s), "v1:1:prod");
    ok_json(
        s.req(Method::PUT, "/2023-03-30/functions/f/aliases/prod")
            .json(&json!({"versionId": "2"}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        deliver(&s),
        "v2:2:prod",
        "the trigger follows the alias at delivery time"
    );

    // Deletes refused while in use.
    expect_error(
        s.req(Method::DELETE, "/2023-03-30/functions/f/versions/2")
            .send()
            .unwrap(),
        409,
        "VersionInUse",
        "alias 'prod'",
    );
    expect_error(
        s.req(Method::DELETE, "/2023-03-30/functions/f/aliases/prod")
            .send()
            .unwrap(),
        409,
        "AliasInUse",
        "trigger 'logs'",
    );
    assert_eq!(
        s.req(Method::DELETE, "/2023-03-30/functions/f/versions/1")
            .send()
            .unwrap()
            .status(),
        204
    );
    expect_error(
        s.post(
            "/2023-03-30/functions/f/aliases",
            &json!({"aliasName": "old", "versionId": "1"}),
        ),
        400,
        "InvalidArgument",
        "version '1' of function 'f' does not exist",
    );
    // Version ids are never reused.
    assert_eq!(publish(&s), "3");
}

#[test]
fn weighted_alias_splits_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", &code("a"))], json!({})));
    publish(&s);
    update_code(&s, "b");
    publish(&s);
    let bad = |w: Value| {
        s.post(
            "/2023-03-30/functions/f/aliases",
            &json!({"aliasName": "x", "versionId": "1", "additionalVersionWeight": w}),
        )
    };
    expect_error(
        bad(json!({"2": 1.5})),
        400,
        "InvalidArgument",
        "between 0 and 1",
    );
    expect_error(
        bad(json!({"1": 0.1})),
        400,
        "AdditionalVersionContainsMajorVersion",
        "'1'",
    );
    expect_error(
        bad(json!({"7": 0.1})),
        400,
        "InvalidArgument",
        "version '7'",
    );
    ok_json(s.post(
        "/2023-03-30/functions/f/aliases",
        &json!({"aliasName": "canary", "versionId": "1", "additionalVersionWeight": {"2": 0.25}}),
    ));
    let n = 400;
    let to_b = (0..n)
        .filter(|_| invoke(&s, "canary").starts_with("b:2"))
        .count();
    // Binomial(400, 0.25): mean 100, sd 8.7; ±5 sd keeps this test from flaking.
    assert!(
        (57..=143).contains(&to_b),
        "{to_b} of {n} went to version 2, expected about 100"
    );
    let a = s.get("/2023-03-30/functions/f/aliases/canary");
    assert_eq!(a["additionalVersionWeight"], json!({"2": 0.25}));
}
