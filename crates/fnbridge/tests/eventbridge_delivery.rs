//! End-to-end tests of how `eventbridge` triggers deliver (delivery.md §3): `errorsTolerance:
//! NONE` blocking a trigger on an event that ran out of retries and resuming it in order (the
//! `Blocked` status in the API and CLI, across a restart, and after an update), and
//! `event-streaming` batches cut by count or by time, retried whole (and blocking under NONE),
//! with out-of-range windows refused; dead letters published on a bus with their error;
//! asynchronous pushes (`asyncInvocationType`) governed by the function's async config.
//! CloudEvents are posted to the real server; handlers report what they received
//! through a file in a directory shared with the sandbox.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{BIN, Server, mount_args, ok_json, shared_dir};
use serde_json::{Value, json};

/// Records each event's id in `OUT_FILE`; fails event `e1` while `FLAG_FILE` does not exist.
const ORDERED: &str = r#"
import json, os

def handler(event, context):
    e = json.loads(event)
    if e["id"] == "e1" and not os.path.exists(os.environ["FLAG_FILE"]):
        raise RuntimeError("downstream unavailable for e1")
    with open(os.environ["OUT_FILE"], "a") as f:
        f.write(e["id"] + "\n")
    return "ok"
"#;

fn post_event(s: &Server, id: &str) {
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "application/cloudevents+json")
        .body(
            json!({"specversion": "1.0", "id": id, "source": "my.shop", "type": "order.created",
                   "data": {"n": id}})
            .to_string(),
        )
        .send()
        .unwrap();
    let v = ok_json(r);
    assert_eq!(v["FailedEntryCount"], 0, "{v}");
}

fn trigger(s: &Server, function: &str, name: &str) -> Value {
    s.get(&format!("/2023-03-30/functions/{function}/triggers/{name}"))
}

/// Polls `f` until it returns `Some`, for at most a minute.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every task of `function`, by id.
fn tasks(s: &Server, function: &str) -> Vec<Value> {
    let v = s.get(&format!("/tasks?functionName={function}&limit=100"));
    v["asyncTasks"].as_array().cloned().unwrap_or_default()
}

#[test]
fn errors_tolerance_none_blocks_the_trigger_until_the_failing_event_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("delivered.txt");
    let flag = shared.path().join("fixed");
    let [mflag, mount] = mount_args(shared.path());
    // One delivery of the function at a time, so "in order" is observable.
    let mut s = Server::start_with(
        dir.path(),
        &[
            "--retry-base-ms",
            "20",
            "--max-in-flight-per-function",
            "1",
            &mflag,
            &mount,
        ],
    );
    ok_json(s.deploy(
        "ordered",
        &[("index.py", ORDERED)],
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap(),
                                        "FLAG_FILE": flag.to_str().unwrap()}}),
    ));
    // errorsTolerance is left out: NONE is the default. No retries before the block, then the
    // exponential schedule (1 s, 2 s, 4 s, ...) while blocked.
    let config = json!({"triggerEnable": true, "asyncInvocationType": false,
        "eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"eventSchema": "CloudEvents"}},
        "runOptions": {"mode": "event-driven", "retryStrategy":
            {"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY", "MaximumRetryAttempts": 0}}});
    let created = ok_json(s.post(
        "/2023-03-30/functions/ordered/triggers",
        &json!({"triggerName": "orders", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
    assert_eq!(created["status"], "OK");

    post_event(&s, "e1");
    let blocked = wait_for("the trigger to be blocked", || {
        let t = trigger(&s, "ordered", "orders");
        (t["status"] == "Blocked").then_some(t)
    });
    let by = &blocked["blockedBy"];
    assert!(
        by["error"]
            .as_str()
            .unwrap()
            .contains("downstream unavailable for e1"),
        "{blocked}"
    );
    assert!(by["since"].as_str().unwrap().ends_with('Z'), "{blocked}");
    let e1_task = by["taskId"].as_str().unwrap().to_string();
    let listed = s.get("/2023-03-30/functions/ordered/triggers");
    assert_eq!(listed["triggers"][0]["status"], "Blocked", "{listed}");
    assert_eq!(
        listed["triggers"][0]["blockedBy"]["taskId"],
        e1_task.as_str()
    );
    // The CLI's list shows it too.
    let cli = std::process::Command::new(BIN)
        .args(["trigger", "list", "ordered"])
        .env("FNBRIDGE_ENDPOINT", &s.base)
        .env("FNBRIDGE_DATA_DIR", &s.data)
        .env_remove("FNBRIDGE_TOKEN")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{table}");
    assert!(
        table.contains("STATUS") && table.contains("Blocked"),
        "{table}"
    );

    for id in ["e2", "e3", "e4", "e5"] {
        post_event(&s, id);
    }
    // e1 is retried while blocked (a second and a third attempt after e2..e5 were accepted),
    // and meanwhile none of e2..e5 ran.
    let attempts_of = |s: &Server| {
        let t = s.get(&format!(
            "/2023-03-30/functions/ordered/async-tasks/{e1_task}"
        ));
        t["attemptRecords"].as_array().map_or(0, |a| a.len())
    };
    wait_for("two retries of e1", || (attempts_of(&s) >= 3).then_some(()));
    assert!(
        lines(&out).is_empty(),
        "delivered while blocked: {:?}",
        lines(&out)
    );
    let all = tasks(&s, "ordered");
    assert_eq!(all.len(), 5, "{all:?}");
    let e1 = all
        .iter()
        .find(|t| t["taskId"] == e1_task.as_str())
        .unwrap();
    assert!(
        e1["status"] == "Retrying" || e1["status"] == "Running",
        "{e1}"
    );
    for t in all.iter().filter(|t| t["taskId"] != e1_task.as_str()) {
        assert_eq!(t["status"], "Enqueued", "held: {t}");
        assert_eq!(t["attempts"], 0, "held: {t}");
    }

    // The block is durable: a restart finds the trigger blocked and still holds e2..e5.
    s.restart();
    assert_eq!(trigger(&s, "ordered", "orders")["status"], "Blocked");
    let before = attempts_of(&s);
    wait_for("a retry of e1 after the restart", || {
        (attempts_of(&s) > before).then_some(())
    });
    assert!(
        lines(&out).is_empty(),
        "delivered while blocked: {:?}",
        lines(&out)
    );

    // The cause is fixed: the next retry of e1 succeeds, the block lifts by itself, and the held
    // events follow in the order they were accepted.
    std::fs::write(&flag, "").unwrap();
    wait_for("all five events", || (lines(&out).len() >= 5).then_some(()));
    assert_eq!(lines(&out), ["e1", "e2", "e3", "e4", "e5"]);
    let t = wait_for("the block to lift", || {
        let t = trigger(&s, "ordered", "orders");
        (t["status"] == "OK").then_some(t)
    });
    assert!(t.get("blockedBy").is_none(), "{t}");
    // Nothing was dead-lettered under NONE.
    let dlq = s.get("/dlq?functionName=ordered");
    assert_eq!(dlq["entries"].as_array().map_or(0, |e| e.len()), 0, "{dlq}");
}

#[test]
fn updating_a_blocked_trigger_retries_its_event_at_once_and_all_lets_it_go() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("delivered.txt");
    let flag = shared.path().join("never");
    let [mflag, mount] = mount_args(shared.path());
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "20", &mflag, &mount]);
    ok_json(s.deploy(
        "ordered",
        &[("index.py", ORDERED)],
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap(),
                                        "FLAG_FILE": flag.to_str().unwrap()}}),
    ));
    // BACKOFF_RETRY with no retries: blocked at the first failure, then retried every 10-20 s.
    let mut config = json!({"eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "runOptions": {"errorsTolerance": "NONE", "retryStrategy":
            {"PushRetryStrategy": "BACKOFF_RETRY", "MaximumRetryAttempts": 0}}});
    ok_json(s.post(
        "/2023-03-30/functions/ordered/triggers",
        &json!({"triggerName": "orders", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
    post_event(&s, "e1");
    wait_for("the trigger to be blocked", || {
        (trigger(&s, "ordered", "orders")["status"] == "Blocked").then_some(())
    });
    post_event(&s, "e2");
    // e1 fails for good; the user switches the trigger to ALL. The update retries e1 at once
    // (not in 10-20 s); it fails again and, tolerated now, goes to the dead-letter queue, and
    // e2 is delivered.
    config["runOptions"]["errorsTolerance"] = json!("ALL");
    let updated = ok_json(
        s.req(
            reqwest::Method::PUT,
            "/2023-03-30/functions/ordered/triggers/orders",
        )
        .json(&json!({"triggerConfig": config.to_string()}))
        .send()
        .unwrap(),
    );
    let now_config: Value =
        serde_json::from_str(updated["triggerConfig"].as_str().unwrap()).unwrap();
    assert_eq!(
        now_config["runOptions"]["errorsTolerance"], "ALL",
        "{updated}"
    );
    let entries = wait_for("e1 in the dead-letter queue", || {
        let dlq = s.get("/dlq?functionName=ordered");
        let e = dlq["entries"].as_array().cloned().unwrap_or_default();
        (!e.is_empty()).then_some(e)
    });
    wait_for("e2", || (lines(&out) == ["e2"]).then_some(()));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let stored: Value = serde_json::from_str(entries[0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(stored["id"], "e1");
    assert_eq!(entries[0]["attempts"], 2);
    assert_eq!(trigger(&s, "ordered", "orders")["status"], "OK");
}

/// `asyncInvocationType: true`: the push is an asynchronous invocation, so the function's async
/// config governs a failing event (delivery.md §3), not the trigger's retryStrategy or
/// errorsTolerance: with `maxAsyncRetryAttempts: 1` the event is tried twice, goes to the
/// dead-letter queue, and the trigger never blocks (here NONE with no push retries would block it
/// at the first failure).
#[test]
fn asynchronous_pushes_follow_the_functions_async_config() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("delivered.txt");
    let flag = shared.path().join("never");
    let [mflag, mount] = mount_args(shared.path());
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "20", &mflag, &mount]);
    ok_json(s.deploy(
        "ordered",
        &[("index.py", ORDERED)],
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap(),
                                        "FLAG_FILE": flag.to_str().unwrap()}}),
    ));
    ok_json(
        s.req(
            reqwest::Method::PUT,
            "/2023-03-30/functions/ordered/async-invoke-config",
        )
        .json(&json!({"maxAsyncRetryAttempts": 1}))
        .send()
        .unwrap(),
    );
    let config = json!({"eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "asyncInvocationType": true,
        "runOptions": {"errorsTolerance": "NONE", "retryStrategy":
            {"PushRetryStrategy": "BACKOFF_RETRY", "MaximumRetryAttempts": 0}}});
    ok_json(s.post(
        "/2023-03-30/functions/ordered/triggers",
        &json!({"triggerName": "orders", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
    post_event(&s, "e1");
    let entries = wait_for("e1 in the dead-letter queue", || {
        let dlq = s.get("/dlq?functionName=ordered");
        let e = dlq["entries"].as_array().cloned().unwrap_or_default();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(entries.len(), 1, "{entries:?}");
    let stored: Value = serde_json::from_str(entries[0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(stored["id"], "e1");
    // One first try and the one retry the function's async config allows.
    assert_eq!(entries[0]["attempts"], 2, "{entries:?}");
    assert_eq!(trigger(&s, "ordered", "orders")["status"], "OK");
    post_event(&s, "e2");
    wait_for("e2", || (lines(&out) == ["e2"]).then_some(()));
    assert_eq!(trigger(&s, "ordered", "orders")["status"], "OK");
}

/// Records each invocation's batch as a JSON line of ids (a CloudEvent's `id`, or `n` of a raw
/// `data`); fails the first invocation when `FAIL_ONCE` names a file that does not exist yet.
const BATCHES: &str = r#"
import json, os

def handler(event, context):
    batch = json.loads(event)
    ids = [e["id"] if "specversion" in e else e["n"] for e in batch]
    with open(os.environ["OUT_FILE"], "a") as f:
        f.write(json.dumps(ids) + "\n")
    once = os.environ.get("FAIL_ONCE")
    if once and not os.path.exists(once):
        open(once, "w").close()
        raise RuntimeError("the first try of a batch fails")
    return "ok"
"#;

/// Posts `ids` as one CloudEvents batch (one commit, so they are ready together).
fn post_batch(s: &Server, ids: &[&str]) {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"specversion": "1.0", "id": id, "source": "my.stream", "type": "tick",
                   "data": {"n": id}})
        })
        .collect();
    let r = s
        .req(reqwest::Method::POST, "/buses/default/events")
        .header("Content-Type", "application/cloudevents-batch+json")
        .body(Value::Array(events).to_string())
        .send()
        .unwrap();
    let v = ok_json(r);
    assert_eq!(v["FailedEntryCount"], 0, "{v}");
}

fn streaming_config(schema: &str, window: Value, retry: Value) -> Value {
    json!({"eventRuleFilterPattern": json!({"source": ["my.stream"]}).to_string(),
        "eventSinkConfig": {"deliveryOption": {"eventSchema": schema}},
        "runOptions": {"mode": "event-streaming", "errorsTolerance": "ALL",
                       "batchWindow": window, "retryStrategy": retry}})
}

/// A streaming function and trigger; returns the server, the batches file and the dirs to keep.
fn streaming(
    config: Value,
    fail_once: bool,
) -> (
    Server,
    std::path::PathBuf,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("batches.txt");
    let [mflag, mount] = mount_args(shared.path());
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "20", &mflag, &mount]);
    let mut env = json!({"OUT_FILE": out.to_str().unwrap()});
    if fail_once {
        env["FAIL_ONCE"] = json!(shared.path().join("failed-once").to_str().unwrap());
    }
    ok_json(s.deploy(
        "stream",
        &[("index.py", BATCHES)],
        json!({"environmentVariables": env}),
    ));
    ok_json(s.post(
        "/2023-03-30/functions/stream/triggers",
        &json!({"triggerName": "ticks", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
    (s, out, dir, shared)
}

fn batches(path: &Path) -> Vec<Vec<String>> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn event_streaming_cuts_batches_by_count() {
    let (s, out, _d, _sh) = streaming(
        streaming_config(
            "CloudEvents",
            json!({"CountBasedWindow": 3, "TimeBasedWindow": 15}),
            json!({"PushRetryStrategy": "BACKOFF_RETRY"}),
        ),
        false,
    );
    // Six events ready together: two full batches of three, each a JSON array of the
    // CloudEvents in the order they were accepted, without waiting for the 15 s window.
    post_batch(&s, &["a1", "a2", "a3", "a4", "a5", "a6"]);
    wait_for("two batches", || (batches(&out).len() >= 2).then_some(()));
    let mut got = batches(&out);
    got.sort();
    assert_eq!(got, [["a1", "a2", "a3"], ["a4", "a5", "a6"]]);
    // Every task of a batch records the one attempt that carried it.
    let all = tasks(&s, "stream");
    assert_eq!(all.len(), 6, "{all:?}");
    wait_for("six succeeded tasks", || {
        tasks(&s, "stream")
            .iter()
            .all(|t| t["status"] == "Succeeded" && t["attempts"] == 1)
            .then_some(())
    });
}

#[test]
fn event_streaming_cuts_a_batch_by_time_and_delivers_raw_data() {
    let (s, out, _d, _sh) = streaming(
        streaming_config(
            "RawData",
            json!({"CountBasedWindow": 100, "TimeBasedWindow": 1}),
            json!({"PushRetryStrategy": "BACKOFF_RETRY"}),
        ),
        false,
    );
    // Two events never reach the count of 100: the time window cuts their batch.
    post_batch(&s, &["b1", "b2"]);
    wait_for("one batch", || (!batches(&out).is_empty()).then_some(()));
    assert_eq!(
        batches(&out),
        [["b1", "b2"]],
        "RawData: the data objects, in one array"
    );
}

#[test]
fn a_failed_batch_is_retried_whole() {
    let (s, out, _d, _sh) = streaming(
        streaming_config(
            "CloudEvents",
            json!({"CountBasedWindow": 4, "TimeBasedWindow": 0}),
            json!({"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY"}),
        ),
        true,
    );
    post_batch(&s, &["c1", "c2", "c3", "c4"]);
    wait_for("four succeeded tasks", || {
        let t = tasks(&s, "stream");
        (t.len() == 4 && t.iter().all(|t| t["status"] == "Succeeded")).then_some(())
    });
    // The same four events in the failed try and in its retry, and each task shows both.
    assert_eq!(
        batches(&out),
        [["c1", "c2", "c3", "c4"], ["c1", "c2", "c3", "c4"]]
    );
    for t in tasks(&s, "stream") {
        assert_eq!(t["attempts"], 2, "{t}");
    }
}

#[test]
fn out_of_range_batch_windows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("stream", &[("index.py", BATCHES)], json!({})));
    for (window, msg) in [
        (
            json!({"CountBasedWindow": 10001}),
            "triggerConfig.runOptions.batchWindow.CountBasedWindow: must be an integer from 1 to 10000, got 10001",
        ),
        (
            json!({"TimeBasedWindow": 16}),
            "triggerConfig.runOptions.batchWindow.TimeBasedWindow: must be an integer from 0 to 15, got 16",
        ),
    ] {
        let c = streaming_config("CloudEvents", window, json!({}));
        common::expect_error(
            s.post(
                "/2023-03-30/functions/stream/triggers",
                &json!({"triggerName": "ticks", "triggerType": "eventbridge",
                        "triggerConfig": c.to_string()}),
            ),
            400,
            "InvalidArgument",
            msg,
        );
    }
    let v = s.get("/2023-03-30/functions/stream/triggers");
    assert_eq!(v["triggers"].as_array().map_or(0, |t| t.len()), 0, "{v}");
}

#[test]
fn exhausted_events_are_published_on_the_dead_letter_bus_with_their_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let failing =
        "def handler(event, context):\n    raise RuntimeError('downstream unavailable')\n";
    let echo = "def handler(event, context):\n    return event.decode()\n";
    ok_json(s.deploy("fails", &[("index.py", failing)], json!({})));
    ok_json(s.deploy("catcher", &[("index.py", echo)], json!({})));
    let arn = "acs:eventbridge:cn-hangzhou:1234567890123456:eventbus/dead";
    let config = json!({"eventRuleFilterPattern": json!({"source": ["my.shop"]}).to_string(),
        "runOptions": {"errorsTolerance": "ALL", "deadLetterQueue": {"Arn": arn},
            "retryStrategy": {"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY",
                              "MaximumRetryAttempts": 1}}});
    let create = |s: &Server| {
        s.post(
            "/2023-03-30/functions/fails/triggers",
            &json!({"triggerName": "orders", "triggerType": "eventbridge",
                    "triggerConfig": config.to_string()}),
        )
    };
    // The dead-letter bus must exist.
    common::expect_error(
        create(&s),
        404,
        "EventBusNotExist",
        "event bus 'dead' does not exist",
    );
    ok_json(s.post("/buses", &json!({"eventBusName": "dead"})));
    ok_json(create(&s));
    // A rule on the dead-letter bus picks the dead letters up by their attributes.
    let catch = json!({"eventBusName": "dead",
        "eventRuleFilterPattern": json!({"source": ["my.shop"],
            "deadletterreason": ["RetriesExhausted"]}).to_string(),
        "runOptions": {"errorsTolerance": "ALL"}});
    ok_json(s.post(
        "/2023-03-30/functions/catcher/triggers",
        &json!({"triggerName": "dead-letters", "triggerType": "eventbridge",
                "triggerConfig": catch.to_string()}),
    ));
    // A failing rule on the dead-letter bus that dead-letters to that same bus: its dead letter
    // would come back to it forever, so a dead letter is published once and then kept in
    // fnbridge's own queue.
    let looping = json!({"eventBusName": "dead",
        "eventRuleFilterPattern": json!({"deadletterreason": ["RetriesExhausted"]}).to_string(),
        "runOptions": {"errorsTolerance": "ALL", "deadLetterQueue": {"Arn": arn},
            "retryStrategy": {"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY",
                              "MaximumRetryAttempts": 0}}});
    ok_json(s.post(
        "/2023-03-30/functions/fails/triggers",
        &json!({"triggerName": "loop", "triggerType": "eventbridge",
                "triggerConfig": looping.to_string()}),
    ));
    // The bus cannot be deleted while a trigger dead-letters to it.
    let r = s
        .req(reqwest::Method::DELETE, "/buses/dead")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 409, "{}", r.text().unwrap());

    post_event(&s, "doomed");
    let got = wait_for("the dead letter at the catcher", || {
        let t = tasks(&s, "catcher");
        let done = t.iter().find(|t| t["status"] == "Succeeded")?;
        let id = done["taskId"].as_str()?;
        let full = s.get(&format!("/2023-03-30/functions/catcher/async-tasks/{id}"));
        serde_json::from_str::<Value>(full["returnPayload"].as_str()?).ok()
    });
    assert_eq!(got["id"], "doomed");
    assert_eq!(got["source"], "my.shop");
    assert_eq!(got["data"], json!({"n": "doomed"}));
    assert_eq!(got["aliyuneventbusname"], "dead");
    assert_eq!(got["deadletterreason"], "RetriesExhausted");
    assert_eq!(got["deadletterattempts"], 2);
    assert!(
        got["deadlettererror"]
            .as_str()
            .unwrap()
            .contains("downstream unavailable"),
        "{got}"
    );
    assert!(
        got["deadlettertrigger"]
            .as_str()
            .unwrap()
            .ends_with(":functions/fails/triggers/orders"),
        "{got}"
    );
    // The first dead letter went to the bus, not to fnbridge's own queue; the looping rule's
    // dead letter of it did.
    let entries = wait_for("the looping rule's dead letter", || {
        let dlq = s.get("/dlq?functionName=fails");
        let e = dlq["entries"].as_array().cloned().unwrap_or_default();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["triggerName"], "loop");
    let failed = tasks(&s, "fails");
    assert_eq!(
        failed.len(),
        2,
        "the original and the looping rule's: {failed:?}"
    );
    assert!(failed.iter().all(|t| t["status"] == "Failed"), "{failed:?}");
    assert_eq!(tasks(&s, "catcher").len(), 1, "one dead letter on the bus");
}

/// Records each delivered batch; fails a batch holding `s1` while `FLAG_FILE` does not exist.
const BATCH_BLOCKER: &str = r#"
import json, os

def handler(event, context):
    ids = [e["id"] for e in json.loads(event)]
    if "s1" in ids and not os.path.exists(os.environ["FLAG_FILE"]):
        raise RuntimeError("batch with s1 refused")
    with open(os.environ["OUT_FILE"], "a") as f:
        f.write(json.dumps(ids) + "\n")
    return "ok"
"#;

#[test]
fn a_failing_streaming_batch_blocks_its_trigger_and_later_events_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_dir();
    let out = shared.path().join("batches.txt");
    let flag = shared.path().join("fixed");
    let [mflag, mount] = mount_args(shared.path());
    let s = Server::start_with(dir.path(), &["--retry-base-ms", "20", &mflag, &mount]);
    ok_json(s.deploy(
        "stream",
        &[("index.py", BATCH_BLOCKER)],
        json!({"environmentVariables": {"OUT_FILE": out.to_str().unwrap(),
                                        "FLAG_FILE": flag.to_str().unwrap()}}),
    ));
    let mut config = streaming_config(
        "CloudEvents",
        json!({"CountBasedWindow": 3, "TimeBasedWindow": 0}),
        json!({"PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY", "MaximumRetryAttempts": 0}),
    );
    config["runOptions"]["errorsTolerance"] = json!("NONE");
    ok_json(s.post(
        "/2023-03-30/functions/stream/triggers",
        &json!({"triggerName": "ticks", "triggerType": "eventbridge",
                "triggerConfig": config.to_string()}),
    ));
    post_batch(&s, &["s1", "s2", "s3"]);
    wait_for("the trigger to be blocked", || {
        (trigger(&s, "stream", "ticks")["status"] == "Blocked").then_some(())
    });
    post_batch(&s, &["s4", "s5"]);
    // The failed batch is retried whole while the later events wait.
    wait_for("a retry of the failed batch", || {
        tasks(&s, "stream")
            .iter()
            .any(|t| t["attempts"].as_u64() >= Some(2))
            .then_some(())
    });
    assert!(
        lines(&out).is_empty(),
        "delivered while blocked: {:?}",
        lines(&out)
    );
    std::fs::write(&flag, "").unwrap();
    wait_for("two batches", || (batches(&out).len() >= 2).then_some(()));
    assert_eq!(batches(&out), [vec!["s1", "s2", "s3"], vec!["s4", "s5"]]);
    wait_for("the block to lift", || {
        (trigger(&s, "stream", "ticks")["status"] == "OK").then_some(())
    });
}
