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
