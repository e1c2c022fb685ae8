//! End-to-end tests of `eventbridge` triggers: uploads to the object store publish `acs.oss`
//! CloudEvents on the `default` bus, and triggers' `eventRuleFilterPattern`s pick them, delivered
//! whole (`CloudEvents`) or as their `data` (`RawData`); more than ten on one bucket, each with
//! its own prefix; and the config errors refused with the engine's words.
//!
//! Uploads are signed here with OSS V1 (`Authorization: OSS ak:sig`, the object store's own
//! `sign`) so that the tests need no Python client.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Server, expect_error, ok_json};
use serde_json::{Value, json};

/// A server with an access key the uploads are signed with.
fn start(dir: &std::path::Path) -> (Server, (String, String)) {
    let s = Server::start_with(dir, &["--retry-base-ms", "20"]);
    let key = ok_json(s.post("/keys", &json!({"description": "eventbridge tests"})));
    let ak = key["accessKeyId"].as_str().unwrap().to_string();
    let sk = key["accessKeySecret"].as_str().unwrap().to_string();
    (s, (ak, sk))
}

/// The RFC 1123 date of now (`Thu, 26 Nov 2026 15:04:05 GMT`).
fn http_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An OSS V1-signed PUT of `/{bucket}` or `/{bucket}/{key}` (key without encoding-sensitive
/// characters).
fn oss_put(s: &Server, key: &(String, String), bucket: &str, object: Option<&str>, body: &str) {
    let date = http_date();
    let ctype = if object.is_some() { "text/plain" } else { "" };
    let resource = match object {
        Some(k) => format!("/{bucket}/{k}"),
        None => format!("/{bucket}/"),
    };
    let to_sign = format!("PUT\n\n{ctype}\n{date}\n{resource}");
    let sig = fnbridge_objectstore::sig::oss_v1::sign(&key.1, &to_sign);
    let url = match object {
        Some(k) => format!("{}/{bucket}/{k}", s.oss),
        None => format!("{}/{bucket}", s.oss),
    };
    let mut req = s
        .http
        .put(url)
        .header("Date", date)
        .header("Authorization", format!("OSS {}:{sig}", key.0))
        .body(body.to_string());
    if !ctype.is_empty() {
        req = req.header("Content-Type", ctype);
    }
    let r = req.send().unwrap();
    assert!(
        r.status().is_success(),
        "PUT {resource}: {} {}",
        r.status(),
        r.text().unwrap_or_default()
    );
}

const ECHO: &str = "def handler(event, context):\n    return event.decode()\n";

fn eb_trigger(
    s: &Server,
    function: &str,
    name: &str,
    config: Value,
) -> reqwest::blocking::Response {
    s.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": name, "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    )
}

fn config(pattern: Value, schema: &str) -> Value {
    json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": pattern.to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": schema, "concurrency": 1}},
        "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL",
                       "retryStrategy": {"PushRetryStrategy": "BACKOFF_RETRY"}}})
}

/// The payloads a function returned, once `n` tasks have succeeded (and a moment longer, so
/// that a wrong extra delivery shows too).
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

#[test]
fn an_upload_reaches_eventbridge_triggers_as_the_acs_oss_cloudevent_and_as_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    ok_json(s.deploy("whole", &[("index.py", ECHO)], json!({})));
    ok_json(s.deploy("raw", &[("index.py", ECHO)], json!({})));
    ok_json(s.deploy("off", &[("index.py", ECHO)], json!({})));
    let pattern = json!({"source": ["acs.oss"], "type": ["oss:ObjectCreated:PutObject"],
        "subject": [{"prefix": "acs:oss:cn-hangzhou:1234567890123456:photos/src/"}]});
    ok_json(eb_trigger(
        &s,
        "whole",
        "ce",
        config(pattern.clone(), "CloudEvents"),
    ));
    ok_json(eb_trigger(
        &s,
        "raw",
        "data",
        config(pattern.clone(), "RawData"),
    ));
    let mut disabled = config(pattern, "CloudEvents");
    disabled["triggerEnable"] = json!(false);
    ok_json(eb_trigger(&s, "off", "disabled", disabled));

    oss_put(&s, &key, "photos", None, "");
    oss_put(&s, &key, "photos", Some("src/a.txt"), "hello");
    oss_put(&s, &key, "photos", Some("other/b.txt"), "not matched");

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
    assert_eq!(e["source"], "acs.oss");
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "oss:ObjectCreated:PutObject");
    assert_eq!(
        e["subject"],
        "acs:oss:cn-hangzhou:1234567890123456:photos/src/a.txt"
    );
    assert_eq!(e["datacontenttype"], "application/json;charset=utf-8");
    assert_eq!(e["aliyunaccountid"], "1234567890123456");
    assert_eq!(e["aliyunoriginalaccountid"], "1234567890123456");
    assert_eq!(e["aliyuneventbusname"], "default");
    assert_eq!(e["aliyunregionid"], "cn-hangzhou");
    assert_eq!(e["id"].as_str().unwrap().len(), 24);
    assert_eq!(e["id"], e["data"]["responseElements"]["requestId"]);
    assert_eq!(e["time"], e["data"]["eventTime"]);
    assert!(e["aliyunpublishtime"].as_str().unwrap().ends_with('Z'));
    let d = &e["data"];
    assert_eq!(d["eventName"], "ObjectCreated:PutObject");
    assert_eq!(d["eventSource"], "acs:oss");
    assert_eq!(d["oss"]["bucket"]["name"], "photos");
    assert_eq!(d["oss"]["bucket"]["virtualBucket"], "");
    assert_eq!(d["oss"]["object"]["key"], "src/a.txt");
    assert_eq!(d["oss"]["object"]["size"], 5);
    // md5("hello"), upper-case.
    assert_eq!(
        d["oss"]["object"]["eTag"],
        "5D41402ABC4B2A76B9719D911017C592"
    );
    assert!(d["oss"].get("ruleId").is_none());

    // RawData: exactly the `data` of the same event.
    let raw = payloads(&s, "raw", 1);
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0], e["data"]);

    // A disabled trigger gets nothing.
    let tasks = s.get("/tasks");
    assert!(
        !tasks["asyncTasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["functionName"] == "off"),
        "{tasks}"
    );
}

#[test]
fn twelve_triggers_on_one_bucket_each_get_only_their_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    oss_put(&s, &key, "media", None, "");
    for i in 0..12 {
        let f = format!("f{i}");
        ok_json(s.deploy(&f, &[("index.py", ECHO)], json!({})));
        let pattern = json!({"source": ["acs.oss"], "type": [{"prefix": "oss:ObjectCreated:"}],
            "subject": [{"prefix": format!("acs:oss:cn-hangzhou:1234567890123456:media/p{i}/")}]});
        ok_json(eb_trigger(&s, &f, "t", config(pattern, "RawData")));
    }
    for i in 0..12 {
        for j in 0..2 {
            oss_put(&s, &key, "media", Some(&format!("p{i}/k{j}.txt")), "x");
        }
    }
    for i in 0..12 {
        let got = payloads(&s, &format!("f{i}"), 2);
        let mut keys: Vec<String> = got
            .iter()
            .map(|p| p["oss"]["object"]["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        assert_eq!(keys, [format!("p{i}/k0.txt"), format!("p{i}/k1.txt")]);
    }
}

#[test]
fn bad_eventbridge_configs_are_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    ok_json(s.deploy("f", &[("index.py", ECHO)], json!({})));
    let good = json!({"source": ["acs.oss"]});
    let e = expect_error(
        eb_trigger(
            &s,
            "f",
            "bad",
            config(json!({"source": "acs.oss"}), "CloudEvents"),
        ),
        400,
        "InvalidArgument",
        "eventRuleFilterPattern: Event pattern is not valid. Reason: source: \"source\" must be an object or an array",
    );
    assert!(e["Message"].is_string());
    let mut c = config(good.clone(), "CloudEvents");
    c["runOptions"]["retryStrategy"]["PushRetryStrategy"] = json!("SOMETIMES");
    expect_error(
        eb_trigger(&s, "f", "bad", c),
        400,
        "InvalidArgument",
        "PushRetryStrategy: must be one of BACKOFF_RETRY, EXPONENTIAL_DECAY_RETRY",
    );
    let mut c = config(good.clone(), "CloudEvents");
    c["runOptions"]["batchWindow"] = json!({"CountBasedWindow": 10001});
    expect_error(
        eb_trigger(&s, "f", "bad", c),
        400,
        "InvalidArgument",
        "CountBasedWindow: must be an integer from 1 to 10000",
    );
    let c = config(good, "Xml");
    expect_error(
        eb_trigger(&s, "f", "bad", c),
        400,
        "InvalidArgument",
        "eventSchema: must be one of CloudEvents, RawData",
    );
    let list = s.get("/2023-03-30/functions/f/triggers");
    assert_eq!(list["triggers"].as_array().map(Vec::len), Some(0), "{list}");
}

/// A trigger on custom events whose pattern names two fields inside an array of objects.
fn custom_trigger(s: &Server) {
    ok_json(s.deploy("orders", &[("index.py", ECHO)], json!({})));
    let pattern = json!({"source": ["my.shop"], "data": {"items": {"sku": ["a"], "qty": [1]}}});
    ok_json(eb_trigger(
        s,
        "orders",
        "sku-a",
        config(pattern, "CloudEvents"),
    ));
}

#[test]
fn curl_cloudevents_in_every_mode_reach_a_custom_pattern_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    custom_trigger(&s);
    let post = |ctype: &str, body: String, extra: &[(&str, &str)]| {
        let mut r = s
            .req(reqwest::Method::POST, "/buses/default/events")
            .header("Content-Type", ctype)
            .body(body);
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        r.send().unwrap()
    };
    // Structured mode: one event, fields from one element.
    let one = json!({"specversion": "1.0", "id": "e1", "source": "my.shop", "type": "order.created",
        "data": {"items": [{"sku": "b", "qty": 2}, {"sku": "a", "qty": 1}]}});
    let v = ok_json(post("application/cloudevents+json", one.to_string(), &[]));
    assert_eq!(v["FailedEntryCount"], 0, "{v}");
    assert_eq!(v["EntryList"][0]["EventId"], "e1");
    // Batch mode: a mixed-element event (no match), a good one, and one missing its type.
    let batch = json!([
        {"specversion": "1.0", "id": "e2", "source": "my.shop", "type": "order.created",
         "data": {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}},
        {"specversion": "1.0", "id": "e3", "source": "my.shop", "type": "order.created",
         "data": {"items": [{"sku": "a", "qty": 1}]}},
        {"specversion": "1.0", "id": "e4", "source": "my.shop"}
    ]);
    let v = ok_json(post(
        "application/cloudevents-batch+json",
        batch.to_string(),
        &[],
    ));
    assert_eq!(v["FailedEntryCount"], 1, "{v}");
    assert_eq!(v["EntryList"][2]["EventId"], "e4");
    assert_eq!(v["EntryList"][2]["ErrorCode"], "InvalidArgument");
    assert_eq!(
        v["EntryList"][2]["ErrorMessage"],
        "type: required attribute is missing"
    );
    // Binary mode: attributes in ce- headers, the JSON body is data.
    let v = ok_json(post(
        "application/json",
        json!({"items": [{"sku": "a", "qty": 1, "note": "x"}]}).to_string(),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "e5"),
            ("ce-source", "my.shop"),
            ("ce-type", "order.created"),
        ],
    ));
    assert_eq!(v["FailedEntryCount"], 0, "{v}");

    let got = payloads(&s, "orders", 3);
    let mut ids: Vec<&str> = got.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["e1", "e3", "e5"], "{got:?}");
    let e5 = got.iter().find(|p| p["id"] == "e5").unwrap();
    assert_eq!(e5["datacontenttype"], "application/json");
    assert_eq!(e5["aliyuneventbusname"], "default");
    assert_eq!(e5["data"]["items"][0]["note"], "x");
}

#[test]
fn sdk_signed_put_events_reach_a_custom_pattern_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    custom_trigger(&s);
    // The request the alibabacloud-eventbridge SDK sends: a CloudEvents batch to
    // /openapi/putEvents, signed `acs:` over its headers (fnbridge_auth::acs_eb implements the
    // SDK's signer and is tested against its vectors).
    let send = |nonce: &str, secret: &str| {
        let body = json!([{"id": "sdk-1", "source": "my.shop", "specversion": "1.0",
            "type": "order.created", "datacontenttype": "application/json; charset=utf-8",
            "aliyuneventbusname": "default",
            "data": {"items": [{"sku": "a", "qty": 1}]}}])
        .to_string();
        let headers: Vec<(String, String)> = [
            ("date", http_date()),
            (
                "content-type",
                "application/cloudevents-batch+json; charset=utf-8".into(),
            ),
            ("x-acs-signature-nonce", nonce.to_string()),
            ("x-acs-signature-method", "HMAC-SHA1".into()),
            ("x-acs-signature-version", "1.0".into()),
            ("x-eventbridge-version", "2015-06-06".into()),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .collect();
        let to_sign = fnbridge_auth::acs_eb::string_to_sign(&fnbridge_auth::acs_eb::Request {
            method: "POST",
            path: "/openapi/putEvents",
            query: &[],
            headers: &headers,
        });
        let sig = fnbridge_auth::acs_eb::sign(secret, &to_sign);
        let mut r = s
            .http
            .post(s.url("/openapi/putEvents"))
            .header("Authorization", format!("acs:{}:{sig}", key.0))
            .body(body);
        for (k, v) in &headers {
            r = r.header(k.as_str(), v.as_str());
        }
        r.send().unwrap()
    };
    let v = ok_json(send("nonce-1", &key.1));
    assert_eq!(v["FailedEntryCount"], 0, "{v}");
    assert_eq!(v["EntryList"][0]["EventId"], "sdk-1");
    let got = payloads(&s, "orders", 1);
    assert_eq!(got[0]["id"], "sdk-1");
    // A replayed nonce and a wrong secret are refused, in EventBridge's lower-case error body.
    let refused = |r: reqwest::blocking::Response, code: &str, needle: &str| {
        assert_eq!(r.status(), 403);
        let rid = r.headers()["x-fc-request-id"].to_str().unwrap().to_string();
        let v: Value = r.json().unwrap();
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
        assert_eq!(v["requestId"], rid.as_str());
        assert!(v.get("Code").is_none(), "{v}");
    };
    refused(send("nonce-1", &key.1), "SignatureNonceUsed", "nonce-1");
    refused(send("nonce-2", "wrong"), "SignatureNotMatch", "");
}

#[test]
fn bad_cloudevents_are_refused_and_nothing_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    ok_json(s.deploy("all", &[("index.py", ECHO)], json!({})));
    ok_json(eb_trigger(
        &s,
        "all",
        "any",
        config(json!({"source": [{"exists": true}]}), "CloudEvents"),
    ));
    let full = json!({"specversion": "1.0", "id": "x", "source": "s", "type": "t"});
    for missing in ["id", "source", "specversion", "type"] {
        let mut e = full.clone();
        e.as_object_mut().unwrap().remove(missing);
        let r = s
            .req(reqwest::Method::POST, "/buses/default/events")
            .header("Content-Type", "application/cloudevents+json")
            .body(e.to_string())
            .send()
            .unwrap();
        expect_error(
            r,
            400,
            "InvalidArgument",
            &format!("invalid CloudEvent: {missing}: required attribute is missing"),
        );
    }
    let r = s
        .req(reqwest::Method::POST, "/buses/nosuchbus/events")
        .header("Content-Type", "application/cloudevents+json")
        .body(full.to_string())
        .send()
        .unwrap();
    expect_error(
        r,
        404,
        "EventBusNotExist",
        "event bus 'nosuchbus' does not exist",
    );
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .unwrap();
    expect_error(r, 415, "InvalidArgument", "not a CloudEvent");
    std::thread::sleep(Duration::from_millis(500));
    let tasks = s.get("/tasks?functionName=all");
    assert_eq!(
        tasks["asyncTasks"].as_array().map(Vec::len),
        Some(0),
        "{tasks}"
    );
}

/// The test venv's python (see `common::test_python`).
fn python() -> Option<std::path::PathBuf> {
    common::test_python()
}

#[test]
fn the_eventbridge_sdk_put_events_reach_a_custom_pattern_trigger() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    custom_trigger(&s);
    let script = common::repo().join("crates/fnbridge/tests/eventbridge/sdk_put_events.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(s.base.trim_start_matches("http://"))
        .env("FNB_AK", &key.0)
        .env("FNB_SK", &key.1)
        .env("NO_PROXY", "*")
        .output()
        .expect("run python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = payloads(&s, "orders", 1);
    assert_eq!(got[0]["id"], "sdk-py-1");
    assert_eq!(got[0]["subject"], "orders/1");
    assert_eq!(got[0]["data"]["items"][1]["sku"], "a");
}

#[test]
fn custom_buses_keep_their_events_and_cannot_be_deleted_while_they_have_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    ok_json(s.deploy("audit", &[("index.py", ECHO)], json!({})));
    let v = ok_json(s.post(
        "/buses",
        &json!({"eventBusName": "orders", "description": "shop orders"}),
    ));
    assert_eq!(v["eventBusName"], "orders");
    expect_error(
        s.post("/buses", &json!({"eventBusName": "orders"})),
        409,
        "EventBusAlreadyExist",
        "event bus 'orders' already exists",
    );
    let names: Vec<Value> = s.get("/buses")["eventBuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["eventBusName"].clone())
        .collect();
    assert_eq!(names, [json!("default"), json!("orders")]);

    // A trigger on a bus that does not exist is refused, and not created.
    let mut c = config(json!({"source": ["my.shop"]}), "CloudEvents");
    c["eventBusName"] = json!("nosuch");
    expect_error(
        eb_trigger(&s, "audit", "t", c),
        404,
        "EventBusNotExist",
        "event bus 'nosuch' does not exist",
    );
    let mut c = config(json!({"source": ["my.shop"]}), "CloudEvents");
    c["eventBusName"] = json!("orders");
    ok_json(eb_trigger(&s, "audit", "t", c));

    let put = |bus: &str, id: &str| {
        let r = s
            .req(reqwest::Method::POST, &format!("/buses/{bus}/events"))
            .header("Content-Type", "application/cloudevents+json")
            .body(
                json!({"specversion": "1.0", "id": id, "source": "my.shop", "type": "t"})
                    .to_string(),
            )
            .send()
            .unwrap();
        ok_json(r)
    };
    put("default", "on-default");
    put("orders", "on-orders");
    let got = payloads(&s, "audit", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], "on-orders");
    assert_eq!(got[0]["aliyuneventbusname"], "orders");

    // A bus with a rule cannot be deleted; once the rule is gone it can.
    expect_error(
        s.req(reqwest::Method::DELETE, "/buses/orders")
            .send()
            .unwrap(),
        409,
        "EventBusNotEmpty",
        "event bus 'orders' has 1 rule(s) (eventbridge triggers: audit/t); delete them first",
    );
    assert_eq!(s.get("/buses/orders")["eventBusName"], "orders");
    let r = s
        .req(
            reqwest::Method::DELETE,
            "/2023-03-30/functions/audit/triggers/t",
        )
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let r = s
        .req(reqwest::Method::DELETE, "/buses/orders")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    expect_error(
        s.req(reqwest::Method::GET, "/buses/orders").send().unwrap(),
        404,
        "EventBusNotExist",
        "event bus 'orders' does not exist",
    );
}

/// Dead letters of a function, waiting until `n` are there.
fn dead_letters(s: &Server, function: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get(&format!("/dlq?functionName={function}"));
        let e = v["entries"].as_array().cloned().unwrap_or_default();
        if e.len() >= n {
            return e;
        }
        assert!(Instant::now() < deadline, "{function}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_exhausted_event_goes_to_the_dead_letter_queue_on_the_triggers_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    let failing =
        "def handler(event, context):\n    raise RuntimeError('downstream unavailable')\n";
    ok_json(s.deploy("fails", &[("index.py", failing)], json!({})));
    // EXPONENTIAL_DECAY_RETRY capped at 2 retries: 1 s, then 2 s, then the dead-letter queue
    // (errorsTolerance ALL), whatever the function's own async retries (FC's 3, 20 ms here).
    let mut c = config(json!({"source": ["my.shop"]}), "CloudEvents");
    c["runOptions"]["retryStrategy"] =
        json!({"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY", "MaximumRetryAttempts": 2});
    ok_json(eb_trigger(&s, "fails", "t", c));
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "application/cloudevents+json")
        .body(
            json!({"specversion": "1.0", "id": "doomed", "source": "my.shop", "type": "t"})
                .to_string(),
        )
        .send()
        .unwrap();
    ok_json(r);
    let e = &dead_letters(&s, "fails", 1)[0];
    assert_eq!(e["reason"], "RetriesExhausted");
    assert_eq!(e["attempts"], 3);
    assert_eq!(e["triggerName"], "t");
    assert!(
        e["lastError"]
            .as_str()
            .unwrap()
            .contains("downstream unavailable")
    );
    let stored: Value = serde_json::from_str(e["payload"].as_str().unwrap()).unwrap();
    assert_eq!(stored["id"], "doomed");
    // The waits were the schedule's, to the second (each attempt starts at least 1 s, then
    // 2 s, after the previous one ended).
    let id = e["taskId"].as_str().unwrap();
    let t = s.get(&format!("/2023-03-30/functions/fails/async-tasks/{id}"));
    assert_eq!(t["status"], "Failed", "{t}");
    let attempts = t["attemptRecords"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 3, "{t}");
    let gap = |i: usize| {
        attempts[i]["startedTime"].as_i64().unwrap() - attempts[i - 1]["endTime"].as_i64().unwrap()
    };
    assert!(
        (1000..1900).contains(&gap(1)),
        "first retry after {} ms",
        gap(1)
    );
    assert!(
        (2000..2900).contains(&gap(2)),
        "second retry after {} ms",
        gap(2)
    );
}

#[test]
fn test_event_pattern_answers_with_array_consistency_and_the_engines_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    let pattern = json!({"items": {"sku": ["a"], "qty": [1]}});
    let cases = [
        (json!({"items": [{"sku": "a", "qty": 1}]}), true),
        (
            json!({"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}),
            false,
        ),
    ];
    for (event, want) in cases {
        let v = ok_json(s.post(
            "/test-event-pattern",
            &json!({"eventPattern": pattern.to_string(), "event": event}),
        ));
        assert_eq!(v["result"], want, "{event}");
    }
    // exists:false decided per element.
    let absent = json!({"items": {"sku": ["a"], "flag": [{"exists": false}]}});
    for (event, want) in [
        (
            json!({"items": [{"sku": "a", "flag": true}, {"sku": "a"}]}),
            true,
        ),
        (
            json!({"items": [{"sku": "a", "flag": true}, {"sku": "b"}]}),
            false,
        ),
    ] {
        let v = ok_json(s.post(
            "/test-event-pattern",
            &json!({"eventPattern": absent, "event": event}),
        ));
        assert_eq!(v["result"], want, "{event}");
    }
    expect_error(
        s.post(
            "/test-event-pattern",
            &json!({"eventPattern": "{\"source\": \"x\"}", "event": {}}),
        ),
        400,
        "InvalidArgument",
        "eventPattern: Event pattern is not valid. Reason: source: \"source\" must be an object or an array",
    );
}

#[test]
fn events_explain_names_each_triggers_first_failed_field() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path());
    custom_trigger(&s);
    ok_json(s.deploy("big", &[("index.py", ECHO)], json!({})));
    ok_json(eb_trigger(
        &s,
        "big",
        "large",
        config(
            json!({"source": ["my.shop"], "data": {"total": [{"numeric": [">", 100]}]}}),
            "CloudEvents",
        ),
    ));
    let event = json!({"specversion": "1.0", "id": "x", "source": "my.shop", "type": "t",
        "data": {"total": 50, "items": [{"sku": "a", "qty": 1}]}});
    let v = ok_json(s.post("/events/explain", &event));
    assert_eq!(
        v["triggers"],
        json!([
            {"functionName": "big", "triggerName": "large", "triggerType": "eventbridge",
             "matched": false, "firstFailedField": "data.total"},
            {"functionName": "orders", "triggerName": "sku-a", "triggerType": "eventbridge",
             "matched": true}
        ])
    );
    // The CLI prints the same as a table.
    let file = dir.path().join("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fnbridge"))
        .args(["events", "explain", file.to_str().unwrap()])
        .args(["--endpoint", &s.base, "--token", &s.token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("FIRST FAILED FIELD"), "{text}");
    assert!(text.contains("data.total"), "{text}");
}

#[test]
fn the_acs_signature_is_taken_only_for_put_events() {
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = start(dir.path());
    let headers: Vec<(String, String)> = vec![
        ("date".into(), http_date()),
        ("x-acs-signature-nonce".into(), "n1".into()),
    ];
    let to_sign = fnbridge_auth::acs_eb::string_to_sign(&fnbridge_auth::acs_eb::Request {
        method: "GET",
        path: "/2023-03-30/functions",
        query: &[],
        headers: &headers,
    });
    let sig = fnbridge_auth::acs_eb::sign(&key.1, &to_sign);
    let mut r = s
        .http
        .get(s.url("/2023-03-30/functions"))
        .header("Authorization", format!("acs:{}:{sig}", key.0));
    for (k, v) in &headers {
        r = r.header(k.as_str(), v.as_str());
    }
    expect_error(
        r.send().unwrap(),
        401,
        "AccessDenied",
        "accepted only for PutEvents",
    );
}
