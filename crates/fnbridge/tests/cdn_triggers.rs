//! End to end: the CDN sample handler from seed 001, deployed unchanged, bound to each of the
//! eight CDN events by a `cdn_events` trigger, receives each seed event and returns exactly the
//! string the seed promises; events for other domains or events invoke nothing.

mod common;

use std::time::Duration;

use base64::Engine;
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

fn expected(event: &str) -> String {
    let info = match event {
        "LogFileCreated" => {
            "http://cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.aliyun.com/2017_12_27/www.aliyun.com_2017_12_27_0800_0900.gz?OSSAccessKeyId=xxxx&Expires=xxxx&Signature=xxxx"
        }
        "CachedObjectsRefreshed" => "/2018/03/16/13/33b430c57e7.mp4,/2018/03/16/14/4ff6b9bd54d.mp4",
        "CachedObjectsPushed" => "/2018/03/16/13/33b430c57e7.mp4",
        // The sample's if/elif chain has no branch for these, so info stays "".
        _ => "",
    };
    format!("eventName:{event}, domain: example.com, info: {info}")
}

#[test]
fn the_example_handler_is_the_seed_code_unchanged() {
    // A byte-identical copy of shared/seeds/001_dc51c4a6e9142914.txt, so a lone clone runs it.
    let seed = std::fs::read_to_string(repo().join("crates/fnbridge/tests/data/seed-001.txt"))
        .expect("seed 001 in crates/fnbridge/tests/data");
    let handler = example("cdn-sample/index.py");
    for line in handler.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            seed.contains(&format!("    {line}")),
            "line not in seed 001: {line}"
        );
    }
    assert!(handler.contains("return f\"eventName:{eventName}, domain: {domain}, info: {info}\""));
}

#[test]
fn seed_events_reach_the_seed_handler_through_cdn_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy(
        "cdn-sample",
        &[("index.py", &example("cdn-sample/index.py"))],
        json!({}),
    ));
    for e in EVENTS {
        let t = ok_json(s.cdn_trigger(
            "cdn-sample",
            &format!("on-{e}"),
            e,
            &["example.com", "other.example.org"],
        ));
        assert_eq!(t["triggerType"], "cdn_events");
        assert_eq!(t["qualifier"], "LATEST");
        let cfg: Value = serde_json::from_str(t["triggerConfig"].as_str().unwrap()).unwrap();
        assert_eq!(cfg["eventName"], e);
    }
    for e in EVENTS {
        let body = example(&format!("events/{e}.json"));
        let receipt = ok_json(s.post_raw("/events", body.clone()));
        let tasks = receipt["events"][0]["taskIds"].as_array().unwrap();
        assert_eq!(
            tasks.len(),
            1,
            "{e}: exactly its own trigger matches: {receipt}"
        );
        let task = s.wait_task(
            "cdn-sample",
            tasks[0].as_str().unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(task["status"], "Succeeded", "{e}: {task}");
        assert_eq!(task["returnPayload"], expected(e), "{e}");
        assert_eq!(task["triggerName"], format!("on-{e}"));
        // The handler received {"events":[event]} with the event as sent.
        let delivered: Value = serde_json::from_str(task["taskPayload"].as_str().unwrap()).unwrap();
        let sent: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(delivered, sent, "{e}: payload differs from the event sent");
        let log = task["log"].as_str().unwrap();
        assert!(
            log.contains(&format!(
                "FC Invoke Start RequestId: {}",
                tasks[0].as_str().unwrap()
            )),
            "{log}"
        );
        assert!(log.contains("FC Invoke End RequestId:"), "{log}");
    }

    // Another domain, and an event no trigger names, invoke nothing.
    let other_domain =
        example("events/LogFileCreated.json").replace("example.com", "not-mine.example.net");
    let r = ok_json(s.post_raw("/events", other_domain));
    assert_eq!(r["events"][0]["taskIds"], json!([]));
    s.req(
        reqwest::Method::DELETE,
        "/2023-03-30/functions/cdn-sample/triggers/on-CdnDomainDeleted",
    )
    .send()
    .unwrap();
    let r = ok_json(s.post_raw("/events", example("events/CdnDomainDeleted.json")));
    assert_eq!(r["events"][0]["taskIds"], json!([]));
    let all = s.get("/tasks?functionName=cdn-sample&limit=100");
    assert_eq!(
        all["asyncTasks"].as_array().unwrap().len(),
        8,
        "no task beyond the eight matched events"
    );
}

#[test]
fn sync_invoke_returns_result_log_tail_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let code = r#"
import logging
def handler(event, context):
    print("got", type(event).__name__, len(event))
    logging.getLogger().info("request %s", context.request_id)
    if event == b"boom":
        raise ValueError("asked to fail")
    return {"ok": True, "function": context.function.name}
"#;
    ok_json(s.deploy("echo", &[("index.py", code)], json!({})));
    let r = s
        .req(
            reqwest::Method::POST,
            "/2023-03-30/functions/echo/invocations",
        )
        .header("x-fc-log-type", "Tail")
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-fc-request-id"].to_str().unwrap().to_string();
    assert!(r.headers().get("x-fc-error-type").is_none());
    let log = base64::engine::general_purpose::STANDARD
        .decode(r.headers()["x-fc-log-result"].as_bytes())
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(
        log.contains(&format!("FC Invoke Start RequestId: {rid}")),
        "{log}"
    );
    assert!(log.contains("got bytes 5"), "{log}");
    assert!(
        log.contains(&format!("{rid} [INFO] request {rid}")),
        "{log}"
    );
    let v: Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(v, json!({"ok": true, "function": "echo"}));

    let r = s
        .req(
            reqwest::Method::POST,
            "/2023-03-30/functions/echo/invocations",
        )
        .body("boom")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "function errors keep HTTP 200");
    assert_eq!(r.headers()["x-fc-error-type"], "UnhandledInvocationError");
    let v: Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["errorMessage"], "asked to fail");
    assert!(
        v["stackTrace"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f[2] == "in handler"),
        "{v}"
    );
}

#[test]
fn oss_events_through_ingest_match_oss_triggers_by_type_bucket_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let code = "import json\ndef handler(event, context):\n    e = json.loads(event)['events'][0]\n    return e['eventName'] + ' ' + e['oss']['object']['key']\n";
    ok_json(s.deploy("thumbs", &[("index.py", code)], json!({})));
    let trig = |name: &str, cfg: Value, arn: &str| {
        s.post(
            "/2023-03-30/functions/thumbs/triggers",
            &json!({"triggerName": name, "triggerType": "oss", "triggerConfig": cfg.to_string(), "sourceArn": arn}),
        )
    };
    ok_json(trig(
        "png",
        json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "source/", "suffix": ".png"}}}),
        "acs:oss:cn-hangzhou:1234567890123456:testbucket",
    ));
    expect_error(
        trig(
            "bad",
            json!({"events": ["oss:ObjectMade:*"]}),
            "acs:oss:cn-hangzhou:1234567890123456:testbucket",
        ),
        400,
        "InvalidArgument",
        "ObjectMade",
    );
    let sample = example("events/oss-PutObject.json");
    let r = ok_json(s.post_raw("/events", sample.clone()));
    let task = r["events"][0]["taskIds"][0]
        .as_str()
        .expect("the PutObject event matches")
        .to_string();
    let t = s.wait_task("thumbs", &task, Duration::from_secs(60));
    assert_eq!(t["returnPayload"], "ObjectCreated:PutObject source/a.png");
    for (from, to) in [
        ("source/a.png", "source/a.jpg"),
        ("source/a.png", "other/a.png"),
        ("\"testbucket\"", "\"otherbucket\""),
    ] {
        let r = ok_json(s.post_raw("/events", sample.replace(from, to)));
        assert_eq!(r["events"][0]["taskIds"], json!([]), "{to} must not match");
    }
    let removed = sample.replace("ObjectCreated:PutObject", "ObjectRemoved:DeleteObject");
    assert_eq!(
        ok_json(s.post_raw("/events", removed))["events"][0]["taskIds"],
        json!([])
    );
}

#[test]
fn events_are_stored_and_delivered_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // The handler answers with the exact bytes it was given.
    let echo = "def handler(event, context):\n    return event.decode() if isinstance(event, bytes) else event\n";
    ok_json(s.deploy("echo", &[("index.py", echo)], json!({})));
    ok_json(s.cdn_trigger(
        "echo",
        "on-refresh",
        "CachedObjectsRefreshed",
        &["example.com"],
    ));
    // Whitespace, key order, escapes (the domain's `a` among them) and number forms a JSON
    // serializer would rewrite.
    let event = "{ \"eventVersion\":\"1.0.0\" ,\n  \"eventSource\": \"cdn\", \"eventName\":\"CachedObjectsRefreshed\",\r\n\t\"resource\" : { \"domain\" : \"ex\\u0061mple.com\" }, \"traceId\": \"t\\/42\", \"eventParameter\": {\"objectPath\": [\"/caf\\u00e9.mp4\"], \"n\": 1E2, \"f\": 1.50} }";
    let body = format!("{{\"events\": [\n  {event}\n]}}");
    let r = ok_json(s.post_raw("/events", body));
    assert_eq!(r["events"][0]["eventId"], "t/42");
    let task = r["events"][0]["taskIds"][0]
        .as_str()
        .expect("the escaped domain is example.com")
        .to_string();
    let t = s.wait_task("echo", &task, Duration::from_secs(60));
    let want = format!("{{\"events\":[{event}]}}");
    assert_eq!(t["status"], "Succeeded", "{t}");
    assert_eq!(t["taskPayload"].as_str(), Some(want.as_str()));
    assert_eq!(t["returnPayload"].as_str(), Some(want.as_str()));
}
