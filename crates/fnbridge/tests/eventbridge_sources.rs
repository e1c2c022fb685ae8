//! End-to-end tests of the built-in sources on the `default` bus beyond the object store: every
//! CDN event is also published as its `acs.cdn` CloudEvent, and function lifecycle changes as
//! `acs.fc` CloudEvents, each committed with the change that caused it, reaching `eventbridge`
//! triggers whole or as their `data`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Server, ok_json, zip_b64};
use serde_json::{Value, json};

const ECHO: &str = "def handler(event, context):\n    return event.decode()\n";

fn eb_trigger(s: &Server, function: &str, name: &str, pattern: Value, schema: &str) -> Value {
    let config = json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": pattern.to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": schema, "concurrency": 1}},
        "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL",
                       "retryStrategy": {"PushRetryStrategy": "BACKOFF_RETRY"}}});
    ok_json(s.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": name, "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ))
}

/// What `function` returned (its echo of the event), once `n` tasks have succeeded; a moment
/// longer so that a wrong extra delivery shows too.
fn payloads(s: &Server, function: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settled = false;
    loop {
        let v = s.get(&format!("/tasks?functionName={function}&limit=100"));
        let done: Vec<Value> = v["asyncTasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["functionName"] == function && t["status"] == "Succeeded")
            .collect();
        if done.len() >= n {
            if !settled {
                settled = true;
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            return done
                .iter()
                .map(|t| {
                    let id = t["taskId"].as_str().unwrap();
                    let t = s.get(&format!(
                        "/2023-03-30/functions/{function}/async-tasks/{id}"
                    ));
                    serde_json::from_str(t["returnPayload"].as_str().unwrap()).unwrap()
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "{function}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_cdn_refresh_reaches_an_eventbridge_trigger_as_the_acs_cdn_cloudevent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--retry-base-ms",
            "20",
            "--cdn-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
    );
    ok_json(s.deploy("whole", &[("index.py", ECHO)], json!({})));
    ok_json(s.deploy("raw", &[("index.py", ECHO)], json!({})));
    ok_json(s.deploy("domains", &[("index.py", ECHO)], json!({})));
    let refreshed = json!({"source": ["acs.cdn"], "type": ["cdn:CachedObjectsRefreshed"],
        "subject": ["acs:cdn:cn-hangzhou:1234567890123456:domain/eb.example.com"]});
    eb_trigger(&s, "whole", "ce", refreshed.clone(), "CloudEvents");
    eb_trigger(&s, "raw", "data", refreshed, "RawData");
    eb_trigger(
        &s,
        "domains",
        "lifecycle",
        json!({"source": ["acs.cdn"], "type": [{"prefix": "cdn:CdnDomain"}]}),
        "CloudEvents",
    );

    let d = "eb.example.com";
    cli(&s, &["cdn", "domain", "add", d, "--origin", "127.0.0.1:9"]);
    cli(&s, &["cdn", "domain", "stop", d]);
    let r = cli(&s, &["cdn", "refresh", &format!("{d}/v/a.mp4"), "--json"]);
    let task: Value = serde_json::from_str(&r).unwrap();
    let task_id: i64 = task["RefreshTaskId"].as_str().unwrap().parse().unwrap();

    let got = payloads(&s, "whole", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "source",
            "specversion",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "aliyunaccountid",
            "aliyunoriginalaccountid",
            "aliyuneventbusname",
            "aliyunregionid",
            "aliyunpublishtime",
            "data"
        ]
    );
    assert_eq!(e["source"], "acs.cdn");
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "cdn:CachedObjectsRefreshed");
    assert_eq!(
        e["subject"],
        "acs:cdn:cn-hangzhou:1234567890123456:domain/eb.example.com"
    );
    assert_eq!(e["datacontenttype"], "application/json;charset=utf-8");
    assert_eq!(e["aliyunaccountid"], "1234567890123456");
    assert_eq!(e["aliyunoriginalaccountid"], "1234567890123456");
    assert_eq!(e["aliyuneventbusname"], "default");
    assert_eq!(e["aliyunregionid"], "cn-hangzhou");
    assert!(e["time"].as_str().unwrap().ends_with(".000Z"), "{e}");
    assert!(e["aliyunpublishtime"].as_str().unwrap().ends_with('Z'));
    // `data` is the native CDN event (events.md §2.2), and the id its traceId.
    let data = &e["data"];
    assert_eq!(e["id"], data["traceId"]);
    assert_eq!(e["id"].as_str().unwrap().len(), 36);
    assert_eq!(data["eventName"], "CachedObjectsRefreshed");
    assert_eq!(data["eventSource"], "cdn");
    assert_eq!(data["eventVersion"], "1.0.0");
    assert_eq!(data["region"], "cn-hangzhou");
    assert_eq!(data["userIdentity"]["aliUid"], "1234567890123456");
    assert_eq!(data["resource"]["domain"], d);
    let p = &data["eventParameter"];
    assert_eq!(p["domain"], d);
    assert_eq!(p["taskId"], task_id);
    assert_eq!(p["objectType"], "File");
    assert_eq!(p["objectPath"], json!(["/v/a.mp4"]));
    assert!(
        p["createTime"].is_i64() && p["completeTime"].is_i64(),
        "{p}"
    );
    assert!(data["eventTime"].as_str().unwrap().ends_with("+08:00"));

    // RawData: exactly the native event.
    let raw = payloads(&s, "raw", 1);
    assert_eq!(raw, vec![data.clone()]);

    // Domain lifecycle events go the same way: added, then stopped.
    let mut life: Vec<String> = payloads(&s, "domains", 2)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    life.sort();
    assert_eq!(life, ["cdn:CdnDomainAdded", "cdn:CdnDomainStopped"]);
}

#[test]
fn function_lifecycle_changes_reach_an_eventbridge_trigger_as_acs_fc_cloudevents() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("watcher", &[("index.py", ECHO)], json!({})));
    eb_trigger(
        &s,
        "watcher",
        "fc",
        json!({"source": ["acs.fc"],
               "subject": [{"prefix": "acs:fc:cn-hangzhou:1234567890123456:functions/app"}]}),
        "CloudEvents",
    );
    // Created, updated (a second deploy of the same name), a version, deleted.
    ok_json(s.deploy(
        "app",
        &[("index.py", ECHO)],
        json!({"environmentVariables": {"SECRET_TOKEN": "do-not-publish"}}),
    ));
    ok_json(
        s.req(reqwest::Method::PUT, "/2023-03-30/functions/app")
            .json(&json!({"code": {"zipFile": zip_b64(&[("index.py", "def handler(e, c):\n    return 'v2'\n")])}}))
            .send()
            .unwrap(),
    );
    let v = ok_json(s.post(
        "/2023-03-30/functions/app/versions",
        &json!({"description": "first"}),
    ));
    let r = s
        .req(
            reqwest::Method::DELETE,
            "/2023-03-30/functions/app/versions/1",
        )
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let r = s
        .req(reqwest::Method::DELETE, "/2023-03-30/functions/app")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let got = payloads(&s, "watcher", 4);
    assert_eq!(got.len(), 4, "{got:?}");
    let mut sorted: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "fc:Function:CreateSuccess",
            "fc:Function:DeleteSuccess",
            "fc:Function:UpdateSuccess",
            "fc:Version:PublishSuccess"
        ]
    );
    for e in &got {
        assert_eq!(e["source"], "acs.fc");
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(
            e["subject"],
            "acs:fc:cn-hangzhou:1234567890123456:functions/app"
        );
        assert_eq!(e["aliyuneventbusname"], "default");
        assert_eq!(e["aliyunaccountid"], "1234567890123456");
        assert_eq!(e["aliyunregionid"], "cn-hangzhou");
        assert_eq!(e["datacontenttype"], "application/json;charset=utf-8");
        assert_eq!(e["id"], e["data"]["requestId"]);
        assert_eq!(e["data"]["functionName"], "app");
        assert_eq!(e["data"]["functionArn"], e["subject"]);
        assert_eq!(e["data"]["eventSource"], "acs:fc");
        assert_eq!(e["data"]["runtime"], "python3.10");
        // The environment never leaves in an event.
        assert!(!e.to_string().contains("do-not-publish"), "{e}");
        let action = match e["type"].as_str().unwrap() {
            "fc:Function:CreateSuccess" => "CreateFunction",
            "fc:Function:UpdateSuccess" => "UpdateFunction",
            "fc:Function:DeleteSuccess" => "DeleteFunction",
            _ => "PublishFunctionVersion",
        };
        assert_eq!(e["data"]["eventName"], action);
    }
    let published = got
        .iter()
        .find(|e| e["type"] == "fc:Version:PublishSuccess")
        .unwrap();
    assert_eq!(published["data"]["versionId"], v["versionId"]);
    assert_eq!(published["data"]["description"], "first");
    // The watcher's own creation came before its trigger: only `app` is seen.
    let ids: std::collections::HashSet<&str> =
        got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
}
