//! End-to-end tests of event archives and replays: an archive keeps its bus's matching events,
//! a replay of an explicit event-time range publishes exactly those again (to every rule, or to
//! the named rules only) with its progress, replayed events are not archived again, and bad
//! requests are refused with the field named.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Server, expect_error, ok_json};
use serde_json::{Value, json};

const ECHO: &str = "def handler(event, context):\n    return event.decode()\n";

fn shop_trigger(s: &Server, function: &str) {
    let config = json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": "CloudEvents", "concurrency": 1}},
        "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL",
                       "retryStrategy": {"PushRetryStrategy": "BACKOFF_RETRY"}}});
    ok_json(s.post(
        &format!("/2023-03-30/functions/{function}/triggers"),
        &json!({"triggerName": "shop", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
}

/// The CloudEvents delivered to `function`, once exactly `n` tasks exist and all succeeded (and
/// a moment longer, so that extra deliveries show too).
fn delivered(s: &Server, function: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settled = false;
    loop {
        let v = s.get(&format!(
            "/tasks?functionName={function}&limit=100&includePayload=true"
        ));
        let tasks = v["asyncTasks"].as_array().cloned().unwrap_or_default();
        let done = tasks.iter().filter(|t| t["status"] == "Succeeded").count();
        assert!(tasks.len() <= n, "{function}: more than {n} tasks: {v}");
        if done == n {
            if !settled {
                settled = true;
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            return tasks
                .iter()
                .map(|t| serde_json::from_str(t["taskPayload"].as_str().unwrap()).unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "{function}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Event ids per replay name (`""` for the original deliveries).
fn by_replay(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        let replay = e["aliyunreplayname"].as_str().unwrap_or("").to_string();
        out.entry(replay)
            .or_default()
            .push(e["id"].as_str().unwrap().to_string());
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    out
}

fn wait_replay(s: &Server, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.get(&format!("/replays/{name}"));
        if r["state"] != "RUNNING" {
            return r;
        }
        assert!(Instant::now() < deadline, "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event(id: &str, time: &str, source: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": source, "type": "order.created",
           "time": time, "data": {"order": id}})
}

#[test]
fn a_replay_of_an_archived_hour_redelivers_exactly_that_hour() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for f in ["orders", "audit"] {
        ok_json(s.deploy(f, &[("index.py", ECHO)], json!({})));
        shop_trigger(&s, f);
    }
    let a = ok_json(s.post(
        "/archives",
        &json!({"archiveName": "shop", "eventPattern": {"source": ["my.shop"]},
                "retentionDays": 7, "description": "all shop events"}),
    ));
    assert_eq!(a["eventBusName"], "default");
    assert_eq!(a["retentionDays"], 7);

    // Three events in the hour 10:00-11:00, two after it, one the archive does not want.
    let batch = json!([
        event("h1", "2026-11-26T10:00:00Z", "my.shop"),
        event("h2", "2026-11-26T10:30:00.500Z", "my.shop"),
        event("h3", "2026-11-26T18:59:59.999+08:00", "my.shop"),
        event("l1", "2026-11-26T11:00:00Z", "my.shop"),
        event("l2", "2026-11-26T12:00:00Z", "my.shop"),
        event("x1", "2026-11-26T10:10:00Z", "other.app"),
    ]);
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "application/cloudevents-batch+json")
        .body(batch.to_string())
        .send()
        .unwrap();
    assert_eq!(ok_json(r)["FailedEntryCount"], 0);
    let originals = ["h1", "h2", "h3", "l1", "l2"];
    for f in ["orders", "audit"] {
        assert_eq!(by_replay(&delivered(&s, f, 5))[""], originals);
    }
    let a = s.get("/archives/shop");
    assert_eq!(a["eventCount"], 5, "{a}");
    assert!(a["sizeBytes"].as_u64().unwrap() > 0);

    // The hour, to every rule of the bus.
    let r = ok_json(s.post(
        "/replays",
        &json!({"replayName": "hour", "archiveName": "shop",
                "eventStartTime": "2026-11-26T10:00:00Z", "eventEndTime": "2026-11-26T11:00:00Z"}),
    ));
    assert_eq!(r["eventsTotal"], 3, "{r}");
    let r = wait_replay(&s, "hour");
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["eventsDone"], 3);
    assert_eq!(r["eventLastReplayedTime"], "2026-11-26T10:59:59.999Z");
    for f in ["orders", "audit"] {
        let got = delivered(&s, f, 8);
        assert_eq!(by_replay(&got)["hour"], ["h1", "h2", "h3"], "{f}");
        let replayed = got
            .iter()
            .find(|e| e["id"] == "h2" && e["aliyunreplayname"] == "hour");
        let replayed = replayed.unwrap();
        assert_eq!(replayed["time"], "2026-11-26T10:30:00.500Z");
        assert_eq!(replayed["data"], json!({"order": "h2"}));
        assert_eq!(replayed["aliyuneventbusname"], "default");
    }

    // The same hour, to one rule only (Unix milliseconds work too).
    let r = ok_json(s.post(
        "/replays",
        &json!({"replayName": "audit-only", "archiveName": "shop",
                "eventStartTime": 1_795_687_200_000i64, "eventEndTime": 1_795_690_800_000i64,
                "destination": {"eventBusName": "default", "rules": ["audit/shop"]}}),
    ));
    assert_eq!(r["rules"], json!(["audit/shop"]));
    assert_eq!(wait_replay(&s, "audit-only")["state"], "COMPLETED");
    assert_eq!(
        by_replay(&delivered(&s, "audit", 11))["audit-only"],
        ["h1", "h2", "h3"]
    );
    assert!(!by_replay(&delivered(&s, "orders", 8)).contains_key("audit-only"));

    // Replayed events are not archived again; the listing shows both replays.
    assert_eq!(s.get("/archives/shop")["eventCount"], 5);
    let all = s.get("/replays");
    let names: Vec<&str> = all["replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["replayName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{all}");
    assert!(names.contains(&"hour") && names.contains(&"audit-only"));
    assert_eq!(s.get("/archives")["archives"][0]["archiveName"], "shop");
}

#[test]
fn bad_archive_and_replay_requests_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let post = |path: &str, body: Value| s.post(path, &body);
    expect_error(
        post(
            "/archives",
            json!({"archiveName": "a", "eventPattern": {"source": "not-an-array"}}),
        ),
        400,
        "InvalidArgument",
        "eventPattern:",
    );
    expect_error(
        post(
            "/archives",
            json!({"archiveName": "a", "eventBusName": "nope", "eventPattern": {"source": ["x"]}}),
        ),
        404,
        "EventBusNotExist",
        "nope",
    );
    expect_error(
        post(
            "/archives",
            json!({"archiveName": "a b", "eventPattern": {"source": ["x"]}}),
        ),
        400,
        "InvalidArgument",
        "archiveName",
    );
    expect_error(
        post(
            "/archives",
            json!({"archiveName": "a", "eventPattern": {"source": ["x"]}, "retentionDays": 100000}),
        ),
        400,
        "InvalidArgument",
        "retentionDays",
    );
    ok_json(post(
        "/archives",
        json!({"archiveName": "a", "eventPattern": {"source": ["x"]}}),
    ));
    expect_error(
        post(
            "/archives",
            json!({"archiveName": "a", "eventPattern": {"source": ["x"]}}),
        ),
        409,
        "ArchiveAlreadyExist",
        "'a'",
    );
    let replay = |name: &str, archive: &str, start: Value, end: Value, rules: Value| {
        json!({"replayName": name, "archiveName": archive, "eventStartTime": start,
               "eventEndTime": end, "destination": {"rules": rules}})
    };
    let t0 = json!("2026-11-26T10:00:00Z");
    let t1 = json!("2026-11-26T11:00:00Z");
    expect_error(
        post(
            "/replays",
            replay("r", "nope", t0.clone(), t1.clone(), json!([])),
        ),
        404,
        "ArchiveNotExist",
        "nope",
    );
    expect_error(
        post(
            "/replays",
            replay("r", "a", t1.clone(), t0.clone(), json!([])),
        ),
        400,
        "InvalidArgument",
        "eventStartTime must be before eventEndTime",
    );
    expect_error(
        post(
            "/replays",
            replay("r", "a", json!("today"), t1.clone(), json!([])),
        ),
        400,
        "InvalidArgument",
        "eventStartTime: 'today'",
    );
    expect_error(
        post(
            "/replays",
            replay("r", "a", t0.clone(), t1.clone(), json!(["f/none"])),
        ),
        400,
        "InvalidArgument",
        "destination.rules: 'f/none'",
    );
    ok_json(post(
        "/replays",
        replay("r", "a", t0.clone(), t1.clone(), json!([])),
    ));
    expect_error(
        post("/replays", replay("r", "a", t0, t1, json!([]))),
        409,
        "ReplayAlreadyExist",
        "'r'",
    );
    assert_eq!(wait_replay(&s, "r")["eventsTotal"], 0);
    // A bus with an archive is not deleted until the archive is.
    ok_json(post("/buses", json!({"eventBusName": "orders"})));
    ok_json(post(
        "/archives",
        json!({"archiveName": "of-orders", "eventBusName": "orders",
               "eventPattern": {"source": ["x"]}}),
    ));
    expect_error(
        s.req(reqwest::Method::DELETE, "/buses/orders")
            .send()
            .unwrap(),
        409,
        "EventBusNotEmpty",
        "archive(s) of-orders",
    );
    let r = s
        .req(reqwest::Method::DELETE, "/archives/of-orders")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(reqwest::Method::DELETE, "/buses/orders")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(reqwest::Method::DELETE, "/archives/a")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    expect_error(
        s.req(reqwest::Method::GET, "/archives/a").send().unwrap(),
        404,
        "ArchiveNotExist",
        "'a'",
    );
}

/// Runs the CLI against `s`; returns (exit code, stdout, stderr).
fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--endpoint", &s.base, "--token", &s.token])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn cli_json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = cli(s, &all);
    assert_eq!(code, 0, "fnbridge {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn the_cli_archives_and_replays_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("orders", &[("index.py", ECHO)], json!({})));
    shop_trigger(&s, "orders");
    let a = cli_json(
        &s,
        &[
            "archive",
            "create",
            "shop",
            "--pattern",
            r#"{"source":["my.shop"]}"#,
            "--retention-days",
            "30",
        ],
    );
    assert_eq!(a["retentionDays"], 30);
    let batch = json!([
        event("h1", "2026-11-26T10:15:00Z", "my.shop"),
        event("h2", "2026-11-26T10:45:00Z", "my.shop"),
        event("l1", "2026-11-26T11:15:00Z", "my.shop"),
    ]);
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "application/cloudevents-batch+json")
        .body(batch.to_string())
        .send()
        .unwrap();
    assert_eq!(ok_json(r)["FailedEntryCount"], 0);
    delivered(&s, "orders", 3);
    assert_eq!(cli_json(&s, &["archive", "get", "shop"])["eventCount"], 3);
    let (code, text, _) = cli(&s, &["archive", "list"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("shop") && text.contains("RETENTION DAYS"),
        "{text}"
    );

    // `replay start` waits for the end and prints the final state.
    let r = cli_json(
        &s,
        &[
            "replay",
            "start",
            "hour",
            "--archive",
            "shop",
            "--start",
            "2026-11-26T10:00:00Z",
            "--end",
            "2026-11-26T11:00:00Z",
            "--rule",
            "orders/shop",
        ],
    );
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["eventsDone"], 2);
    assert_eq!(r["eventsTotal"], 2);
    assert_eq!(r["rules"], json!(["orders/shop"]));
    assert_eq!(by_replay(&delivered(&s, "orders", 5))["hour"], ["h1", "h2"]);
    let (code, text, _) = cli(&s, &["replay", "get", "hour"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("COMPLETED") && text.contains("eventsDone"),
        "{text}"
    );
    let (_, text, _) = cli(&s, &["replay", "list"]);
    assert!(
        text.contains("hour") && text.contains("COMPLETED"),
        "{text}"
    );

    // Refusals exit non-zero with the server's words.
    let (code, _, err) = cli(&s, &["replay", "cancel", "hour"]);
    assert_ne!(code, 0);
    assert!(err.contains("not RUNNING"), "{err}");
    let (code, _, err) = cli(&s, &["archive", "create", "bad", "--pattern", "{not json"]);
    assert_ne!(code, 0);
    assert!(err.contains("--pattern"), "{err}");
    let (code, _, _) = cli(&s, &["archive", "delete", "shop"]);
    assert_eq!(code, 0);
    let (code, _, err) = cli(&s, &["archive", "get", "shop"]);
    assert_ne!(code, 0);
    assert!(err.contains("ArchiveNotExist"), "{err}");
}

#[test]
fn a_replay_killed_mid_way_resumes_after_restart_without_repeats_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    // A small backlog bound makes the replay wait for deliveries, so the kill lands mid-way.
    let mut s = Server::start_with(
        dir.path(),
        &["--retry-base-ms", "20", "--max-backlog", "250"],
    );
    ok_json(s.post(
        "/archives",
        &json!({"archiveName": "all", "eventPattern": {"source": ["my.shop"]}}),
    ));
    let n = 1500;
    for chunk in 0..n / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let k = chunk * 100 + i;
                event(
                    &format!("e{k:05}"),
                    &format!("2026-11-26T10:{:02}:{:02}Z", k / 60 % 60, k % 60),
                    "my.shop",
                )
            })
            .collect();
        let r = s
            .req(reqwest::Method::POST, "/buses/default/events")
            .header("Content-Type", "application/cloudevents-batch+json")
            .body(Value::Array(batch).to_string())
            .send()
            .unwrap();
        assert_eq!(ok_json(r)["FailedEntryCount"], 0);
    }
    assert_eq!(s.get("/archives/all")["eventCount"], n);
    // The trigger comes after the events: only the replay delivers to it.
    ok_json(s.deploy(
        "slow",
        &[(
            "index.py",
            "import time\ndef handler(event, context):\n    time.sleep(0.01)\n    return event.decode()\n",
        )],
        json!({}),
    ));
    shop_trigger(&s, "slow");
    ok_json(s.post(
        "/replays",
        &json!({"replayName": "r", "archiveName": "all",
                "eventStartTime": "2026-11-26T00:00:00Z", "eventEndTime": "2026-11-27T00:00:00Z"}),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.get("/replays/r");
        assert_eq!(
            r["state"], "RUNNING",
            "the replay ended before the kill: {r}"
        );
        if r["eventsDone"].as_u64().unwrap() >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "{r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    s.restart();
    let deadline = Instant::now() + Duration::from_secs(240);
    let r = loop {
        let r = s.get("/replays/r");
        if r["state"] != "RUNNING" {
            break r;
        }
        assert!(Instant::now() < deadline, "{r}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert_eq!(r["eventsDone"], n);
    // Every archived event has exactly one task: none repeated, none skipped.
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let v = s.get(&format!(
            "/tasks?functionName=slow&limit=100&includePayload=true&nextToken={token}"
        ));
        for t in v["asyncTasks"].as_array().unwrap() {
            let e: Value = serde_json::from_str(t["taskPayload"].as_str().unwrap()).unwrap();
            assert_eq!(e["aliyunreplayname"], "r");
            *per_id
                .entry(e["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        match v["nextToken"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(per_id.len(), n as usize);
    assert!(
        per_id.values().all(|&c| c == 1),
        "an event was replayed twice"
    );
}
