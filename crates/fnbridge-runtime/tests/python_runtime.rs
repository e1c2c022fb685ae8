//! End-to-end tests of Python instances: real `python3` workers behind `Runtime::invoke`.

mod common;

use std::time::Duration;

use common::{exits_soon, invocation, json, runtime, runtime_with, text};
use fnbridge_runtime::{FunctionError, Hook, RuntimeError};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_cdn_sample_runs_unchanged() {
    let fx = runtime();
    let spec = fx.function("cdn", include_str!("fixtures/seed_001_cdn_handler.py"));
    let event = include_str!("fixtures/seed_001_log_file_created.json");
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-seed", event))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));
    assert_eq!(
        text(&out.body),
        "eventName:LogFileCreated, domain: example.com, info: http://cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.aliyun.com/2017_12_27/www.aliyun.com_2017_12_27_0800_0900.gz?OSSAccessKeyId=xxxx&Expires=xxxx&Signature=xxxx"
    );
    assert_eq!(
        out.log,
        "FC Invoke Start RequestId: r-seed\nFC Invoke End RequestId: r-seed\n"
    );
}

const CONTEXT_HANDLER: &str = r#"
import json, os, sys

def handler(event, context):
    c = context
    return {
        "event_type": type(event).__name__,
        "event": event.decode(),
        "request_id": c.request_id,
        "credentials": [c.credentials.access_key_id, c.credentials.access_key_secret, c.credentials.security_token],
        "function": [c.function.name, c.function.handler, c.function.memory, c.function.timeout,
                     c.function.version_id, c.function.qualifier],
        "service": [c.service.name, c.service.log_project, c.service.log_store, c.service.qualifier,
                    c.service.version_id],
        "region": c.region,
        "account_id": c.account_id,
        "tracing": [c.tracing.span_context, c.tracing.jaeger_endpoint, c.tracing.span_baggages],
        "logger_is_logger": c.getLogger() is c.logger and hasattr(c.logger, "info"),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "env": {k: v for k, v in os.environ.items()},
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_is_bytes_and_context_and_environment_follow_the_contract() {
    let fx = runtime();
    let spec = fx.function_files("ctx", "r1", &[("index.py", CONTEXT_HANDLER)], |s| {
        s.env.insert("MY_SETTING".into(), "on".into());
        s.timeout = Duration::from_secs(7);
        s.memory_mb = 256;
    });
    let mut inv = invocation("r-ctx", &b"{\"a\":1}"[..]);
    inv.qualifier = "prod".into();
    inv.version_id = "3".into();
    let out = fx.runtime.invoke(&spec, inv).await.unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));
    let v = json(&out.body);
    assert_eq!(v["event_type"], "bytes");
    assert_eq!(v["event"], "{\"a\":1}");
    assert_eq!(v["request_id"], "r-ctx");
    assert_eq!(
        v["credentials"],
        serde_json::json!(["STS.test-ak", "test-sk", "test-token"])
    );
    assert_eq!(
        v["function"],
        serde_json::json!(["ctx", "index.handler", 256, 7, "3", "prod"])
    );
    assert_eq!(
        v["service"],
        serde_json::json!(["ctx", "", "", "prod", "3"])
    );
    assert_eq!(v["region"], "cn-hangzhou");
    assert_eq!(v["account_id"], "1234567890123456");
    assert_eq!(v["tracing"], serde_json::json!(["", "", {}]));
    assert_eq!(v["logger_is_logger"], true);

    let code_dir = std::path::absolute(&spec.code_dir).unwrap();
    let code_dir = code_dir.to_str().unwrap();
    assert_eq!(v["cwd"], code_dir);
    assert_eq!(v["path0"], code_dir);

    let env = v["env"].as_object().unwrap();
    let expect = [
        ("FC_FUNC_CODE_PATH", code_dir),
        ("FC_ACCOUNT_ID", "1234567890123456"),
        ("FC_FUNCTION_HANDLER", "index.handler"),
        ("FC_FUNCTION_MEMORY_SIZE", "256"),
        ("FC_FUNCTION_NAME", "ctx"),
        ("FC_REGION", "cn-hangzhou"),
        ("FC_FUNCTION_VERSION", "3"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.test-ak"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-sk"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "test-token"),
        ("MY_SETTING", "on"),
    ];
    for (key, value) in expect {
        assert_eq!(env.get(key).and_then(|v| v.as_str()), Some(value), "{key}");
    }
    assert_eq!(env["FC_INSTANCE_ID"], out.instance_id.as_str());
    assert!(env.contains_key("PATH"));
    // The server's own environment (cargo sets CARGO_* for this test process) stays out.
    let leaked: Vec<_> = env.keys().filter(|k| k.starts_with("CARGO")).collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instance_keeps_globals_between_invocations() {
    let fx = runtime();
    let spec = fx.function(
        "counter",
        "import os\nimported = 0\nimported += 1\ncalls = 0\n\ndef handler(event, context):\n    global calls\n    calls += 1\n    return '%d %d %d' % (imported, calls, os.getpid())\n",
    );
    let mut pids = Vec::new();
    let mut instances = Vec::new();
    for i in 1..=3 {
        let out = fx
            .runtime
            .invoke(&spec, invocation(&format!("r-{i}"), ""))
            .await
            .unwrap();
        let body = text(&out.body).to_owned();
        let parts: Vec<&str> = body.split(' ').collect();
        assert_eq!(parts[..2], ["1".to_owned(), i.to_string()], "{body}");
        pids.push(parts[2].to_owned());
        instances.push(out.instance_id);
    }
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "{pids:?}");
    assert!(instances.windows(2).all(|w| w[0] == w[1]), "{instances:?}");
    assert_eq!(fx.runtime.instance_count("counter"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_values_are_encoded_by_type() {
    let fx = runtime();
    let spec = fx.function(
        "types",
        "def handler(event, context):\n    return {b'none': None, b'dict': {'a': [1, 'x']}, b'list': [1, 2], b'int': 42,\n            b'bytes': b'\\x00\\xff', b'str': 'h\\u00e9', b'bytearray': bytearray(b'ba')}[event]\n",
    );
    let cases: [(&str, &[u8]); 7] = [
        ("none", b""),
        ("dict", br#"{"a": [1, "x"]}"#),
        ("list", b"[1, 2]"),
        ("int", b"42"),
        ("bytes", b"\x00\xff"),
        ("str", "hé".as_bytes()),
        ("bytearray", b"ba"),
    ];
    for (event, want) in cases {
        let out = fx
            .runtime
            .invoke(&spec, invocation(event, event))
            .await
            .unwrap();
        assert_eq!(
            out.error,
            None,
            "{event}: {}",
            String::from_utf8_lossy(&out.body)
        );
        assert_eq!(&out.body[..], want, "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_becomes_error_json_and_the_instance_survives() {
    let fx = runtime();
    let spec = fx.function(
        "raises",
        "def helper(event):\n    raise ValueError('something is wrong: %s' % event.decode())\n\ndef handler(event, context):\n    if event == b'ok':\n        return 'fine'\n    helper(event)\n",
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-err", "boom"))
        .await
        .unwrap();
    let err = out.error.expect("function error");
    assert_eq!(err, FunctionError::Unhandled);
    assert_eq!(err.error_type(), "UnhandledInvocationError");
    assert_eq!(err.kind(), "unhandled");
    let v = json(&out.body);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["errorMessage", "errorType", "stackTrace"]);
    assert_eq!(v["errorMessage"], "something is wrong: boom");
    assert_eq!(v["errorType"], "ValueError");
    let index = std::path::absolute(spec.code_dir.join("index.py")).unwrap();
    let file = format!("File \"{}\"", index.display());
    assert_eq!(
        v["stackTrace"],
        serde_json::json!([
            [file, "line 7", "in handler", "helper(event)"],
            [
                file,
                "line 2",
                "in helper",
                "raise ValueError('something is wrong: %s' % event.decode())"
            ],
        ])
    );
    assert!(out.log.contains("[ERROR] Traceback"), "{}", out.log);
    assert!(
        out.log.ends_with("FC Invoke End RequestId: r-err\n"),
        "{}",
        out.log
    );

    let again = fx
        .runtime
        .invoke(&spec, invocation("r-ok", "ok"))
        .await
        .unwrap();
    assert_eq!(again.error, None);
    assert_eq!(text(&again.body), "fine");
    assert_eq!(again.instance_id, out.instance_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_errors_fail_every_invocation_the_same_way() {
    let fx = runtime();
    let broken = fx.function("broken", "import json\nraise RuntimeError('bad import')\n");
    for id in ["r-1", "r-2"] {
        let out = fx
            .runtime
            .invoke(&broken, invocation(id, ""))
            .await
            .unwrap();
        assert_eq!(out.error, Some(FunctionError::Unhandled));
        let v = json(&out.body);
        assert_eq!(v["errorType"], "RuntimeError");
        assert_eq!(v["errorMessage"], "bad import");
    }
    let missing = fx.function("missing", "def other(event, context):\n    pass\n");
    let out = fx
        .runtime
        .invoke(&missing, invocation("r-3", ""))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::Unhandled));
    assert_eq!(json(&out.body)["errorType"], "HandlerNotFound");
}

const LOGGING_HANDLER: &str = r#"
import logging, os, sys

def handler(event, context):
    tag = event.decode()
    print("print " + tag)
    logging.getLogger().info("root " + tag)
    logging.getLogger("child").warning("child " + tag)
    context.getLogger().error("context " + tag)
    logging.debug("debug is below the root level")
    sys.stderr.write("stderr " + tag + "\n")
    os.write(1, ("fd1 " + tag + "\n").encode())
    os.write(2, ("fd2 " + tag + "\n").encode())
    sys.stdout.write("no newline " + tag)
    return tag
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_captured_per_request_between_markers() {
    let fx = runtime();
    let spec = fx.function("logs", LOGGING_HANDLER);
    for tag in ["a", "b"] {
        let rid = format!("r-log-{tag}");
        let out = fx
            .runtime
            .invoke(&spec, invocation(&rid, tag))
            .await
            .unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        let lines: Vec<&str> = out.log.lines().collect();
        assert_eq!(lines.len(), 10, "{}", out.log);
        assert_eq!(lines[0], format!("FC Invoke Start RequestId: {rid}"));
        assert_eq!(lines[1], format!("print {tag}"));
        for (line, level, what) in [
            (lines[2], "INFO", "root"),
            (lines[3], "WARNING", "child"),
            (lines[4], "ERROR", "context"),
        ] {
            let (stamp, rest) = line.split_once(' ').unwrap();
            assert_eq!(rest, format!("{rid} [{level}] {what} {tag}"));
            assert_utc_millis(stamp);
        }
        assert_eq!(
            lines[5..10],
            [
                format!("stderr {tag}"),
                format!("fd1 {tag}"),
                format!("fd2 {tag}"),
                format!("no newline {tag}"),
                format!("FC Invoke End RequestId: {rid}"),
            ]
        );
        let other = if tag == "a" { "b" } else { "a" };
        assert!(!out.log.contains(&format!(" {other}\n")), "{}", out.log);
    }
}

/// `yyyy-MM-ddTHH:mm:ss.fffZ`
fn assert_utc_millis(stamp: &str) {
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape_ok, "{stamp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_truncated_not_buffered() {
    let fx = runtime();
    let spec = fx.function(
        "flood",
        "import sys\n\ndef handler(event, context):\n    line = 'x' * 1023 + '\\n'\n    for _ in range(5 * 1024):\n        sys.stdout.write(line)\n    sys.stdout.write('y' * (3 * 1024 * 1024))\n    return 'done'\n",
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-flood", ""))
        .await
        .unwrap();
    assert_eq!(text(&out.body), "done");
    assert!(out.log.len() <= 1024 * 1024 + 200, "{}", out.log.len());
    assert!(out.log.contains("log truncated"));
    assert!(out.log.ends_with("FC Invoke End RequestId: r-flood\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_instance_and_its_children() {
    let fx = runtime();
    let spec = fx.function_files(
        "slow",
        "r1",
        &[(
            "index.py",
            "import subprocess, time\n\ndef handler(event, context):\n    if event == b'sleep':\n        child = subprocess.Popen(['sleep', '1000'])\n        print('child', child.pid, flush=True)\n        time.sleep(1000)\n    return 'quick'\n",
        )],
        |s| s.timeout = Duration::from_millis(500),
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-slow", "sleep"))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::Timeout));
    assert_eq!(out.error.unwrap().error_type(), "UnhandledInvocationError");
    assert_eq!(
        text(&out.body),
        r#"{"errorMessage":"Function timed out after 0.5 seconds","errorType":"FunctionTimeout","stackTrace":[]}"#
    );
    assert!(
        out.log
            .starts_with("FC Invoke Start RequestId: r-slow\nchild "),
        "{}",
        out.log
    );
    assert!(
        out.log.ends_with(
            "FC Invoke End RequestId: r-slow, Error: Function timed out after 0.5 seconds\n"
        ),
        "{}",
        out.log
    );
    let pid: u32 = out.log.lines().nth(1).unwrap()["child ".len()..]
        .parse()
        .unwrap();
    assert!(
        exits_soon(pid).await,
        "grandchild {pid} survived the timeout"
    );

    let next = fx
        .runtime
        .invoke(&spec, invocation("r-next", ""))
        .await
        .unwrap();
    assert_eq!(next.error, None);
    assert_eq!(text(&next.body), "quick");
    assert_ne!(next.instance_id, out.instance_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_is_replaced() {
    let fx = runtime();
    let spec = fx.function(
        "crash",
        "import os, ctypes\n\ndef handler(event, context):\n    print('going down')\n    if event == b'exit':\n        os._exit(1)\n    if event == b'segv':\n        ctypes.string_at(0)\n    return 'alive'\n",
    );
    let first = fx
        .runtime
        .invoke(&spec, invocation("r-warm", ""))
        .await
        .unwrap();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-exit", "exit"))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::Crashed));
    assert_eq!(out.instance_id, first.instance_id);
    let v = json(&out.body);
    assert_eq!(v["errorType"], "FunctionCrashed");
    assert_eq!(
        v["errorMessage"],
        "Process exited unexpectedly (exit code 1)"
    );
    assert_eq!(
        out.log,
        "FC Invoke Start RequestId: r-exit\ngoing down\nFC Invoke End RequestId: r-exit, Error: Process exited unexpectedly (exit code 1)\n"
    );

    let segv = fx
        .runtime
        .invoke(&spec, invocation("r-segv", "segv"))
        .await
        .unwrap();
    assert_eq!(segv.error, Some(FunctionError::Crashed));
    assert_eq!(
        json(&segv.body)["errorMessage"],
        "Process exited unexpectedly (signal 11)"
    );
    assert_ne!(segv.instance_id, out.instance_id);

    let next = fx
        .runtime
        .invoke(&spec, invocation("r-after", ""))
        .await
        .unwrap();
    assert_eq!(next.error, None);
    assert_eq!(text(&next.body), "alive");
    assert_ne!(next.instance_id, segv.instance_id);
    assert_eq!(fx.runtime.instance_count("crash"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_runs_out_of_memory() {
    let fx = runtime();
    let spec = fx.function(
        "hog",
        "hoard = []\n\ndef handler(event, context):\n    if event == b'big':\n        hoard.append(bytearray(1024 * 1024 * 1024))\n    if event == b'creep':\n        while True:\n            hoard.append(bytearray(16 * 1024 * 1024))\n    return 'small'\n",
    );
    for (rid, event) in [("r-big", "big"), ("r-creep", "creep")] {
        let out = fx
            .runtime
            .invoke(&spec, invocation(rid, event))
            .await
            .unwrap();
        assert_eq!(
            out.error,
            Some(FunctionError::OutOfMemory),
            "{}",
            text(&out.body)
        );
        assert_eq!(out.error.unwrap().kind(), "out_of_memory");
        assert_eq!(json(&out.body)["errorType"], "MemoryError");
        let next = fx
            .runtime
            .invoke(&spec, invocation("r-small", ""))
            .await
            .unwrap();
        assert_eq!(text(&next.body), "small");
        assert_ne!(
            next.instance_id, out.instance_id,
            "out-of-memory instances are replaced"
        );
    }
}

const INIT_HANDLER: &str = r#"
import os
initialized = 0

def initialize(context):
    global initialized
    initialized += 1
    print("init for", context.request_id)
    if os.path.exists("fail-init"):
        raise RuntimeError("init failed")

def handler(event, context):
    return str(initialized)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initializer_runs_once_per_instance() {
    let fx = runtime();
    let spec = fx.function_files("init", "r1", &[("index.py", INIT_HANDLER)], |s| {
        s.initializer = Some(Hook {
            handler: "index.initialize".into(),
            timeout: Duration::from_secs(5),
        });
    });
    let first = fx
        .runtime
        .invoke(&spec, invocation("r-1", ""))
        .await
        .unwrap();
    assert_eq!(first.error, None, "{}", text(&first.body));
    assert_eq!(text(&first.body), "1");
    assert_eq!(
        first.log,
        "FC Initialize Start RequestId: r-1\ninit for r-1\nFC Initialize End RequestId: r-1\nFC Invoke Start RequestId: r-1\nFC Invoke End RequestId: r-1\n"
    );
    let second = fx
        .runtime
        .invoke(&spec, invocation("r-2", ""))
        .await
        .unwrap();
    assert_eq!(text(&second.body), "1");
    assert_eq!(
        second.log,
        "FC Invoke Start RequestId: r-2\nFC Invoke End RequestId: r-2\n"
    );

    // A failing initializer fails the invocation that started the instance, and the instance
    // is discarded, so the next invocation runs the initializer again.
    let failing = fx.function_files(
        "init",
        "r2",
        &[("index.py", INIT_HANDLER), ("fail-init", "")],
        |s| {
            s.initializer = Some(Hook {
                handler: "index.initialize".into(),
                timeout: Duration::from_secs(5),
            });
        },
    );
    for rid in ["r-3", "r-4"] {
        let out = fx
            .runtime
            .invoke(&failing, invocation(rid, ""))
            .await
            .unwrap();
        assert_eq!(out.error, Some(FunctionError::InitFailed));
        assert_eq!(out.error.unwrap().error_type(), "UnhandledInvocationError");
        let v = json(&out.body);
        assert_eq!(v["errorType"], "RuntimeError");
        assert_eq!(v["errorMessage"], "init failed");
        assert!(
            out.log.starts_with(&format!(
                "FC Initialize Start RequestId: {rid}\ninit for {rid}\n"
            )),
            "{}",
            out.log
        );
        assert!(
            out.log
                .ends_with(&format!("FC Initialize End RequestId: {rid}\n")),
            "{}",
            out.log
        );
        assert!(!out.log.contains("FC Invoke Start"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initializer_timeout_fails_the_invocation() {
    let fx = runtime();
    let spec = fx.function_files(
        "init-slow",
        "r1",
        &[("index.py", "import time\n\ndef initialize(context):\n    time.sleep(1000)\n\ndef handler(event, context):\n    return 'x'\n")],
        |s| s.initializer = Some(Hook { handler: "index.initialize".into(), timeout: Duration::from_millis(300) }),
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-1", ""))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::InitFailed));
    assert_eq!(
        json(&out.body)["errorMessage"],
        "Initializer timed out after 0.3 seconds"
    );
    assert!(
        out.log.ends_with(
            "FC Initialize End RequestId: r-1, Error: Initializer timed out after 0.3 seconds\n"
        ),
        "{}",
        out.log
    );
    assert_eq!(fx.runtime.instance_count("init-slow"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_beyond_the_instance_cap_queue() {
    let fx = runtime_with(|c| c.max_instances_per_function = 2);
    let spec = fx.function(
        "busy",
        "import time\n\ndef handler(event, context):\n    time.sleep(0.2)\n    return context.request_id\n",
    );
    let calls = (0..6).map(|i| {
        let runtime = fx.runtime.clone();
        let spec = spec.clone();
        tokio::spawn(async move {
            runtime
                .invoke(&spec, invocation(&format!("r-{i}"), ""))
                .await
                .unwrap()
        })
    });
    let calls: Vec<_> = calls.collect();
    let mut instances = std::collections::BTreeSet::new();
    for (i, call) in calls.into_iter().enumerate() {
        let out = call.await.unwrap();
        assert_eq!(text(&out.body), format!("r-{i}"));
        instances.insert(out.instance_id);
    }
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert_eq!(fx.runtime.instance_count("busy"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_get_their_own_instances_within_the_cap() {
    let fx = runtime_with(|c| c.max_instances_per_function = 1);
    let v1 = fx.function_files(
        "rev",
        "r1",
        &[("index.py", "def handler(e, c):\n    return 'one'\n")],
        |_| {},
    );
    let v2 = fx.function_files(
        "rev",
        "r2",
        &[("index.py", "def handler(e, c):\n    return 'two'\n")],
        |_| {},
    );
    let a = fx.runtime.invoke(&v1, invocation("r-1", "")).await.unwrap();
    let b = fx.runtime.invoke(&v2, invocation("r-2", "")).await.unwrap();
    assert_eq!((text(&a.body), text(&b.body)), ("one", "two"));
    assert_ne!(a.instance_id, b.instance_id);
    // The cap is per function: r2's instance replaced r1's.
    assert_eq!(fx.runtime.instance_count("rev"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_and_reap_stop_instances() {
    let fx = runtime_with(|c| c.idle_timeout = Duration::ZERO);
    let spec = fx.function("gone", "def handler(e, c):\n    return 'x'\n");
    let a = fx
        .runtime
        .invoke(&spec, invocation("r-1", ""))
        .await
        .unwrap();
    assert!(fx.runtime.instance_count("gone") <= 1);
    fx.runtime.retire("gone");
    assert_eq!(fx.runtime.instance_count("gone"), 0);
    let b = fx
        .runtime
        .invoke(&spec, invocation("r-2", ""))
        .await
        .unwrap();
    assert_ne!(a.instance_id, b.instance_id);
    fx.runtime.reap_idle();
    assert_eq!(fx.runtime.instance_count("gone"), 0);
    let c = fx
        .runtime
        .invoke(&spec, invocation("r-3", ""))
        .await
        .unwrap();
    assert_ne!(b.instance_id, c.instance_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_busy_instances_and_refuses_new_work() {
    let fx = runtime();
    let spec = fx.function(
        "stuck",
        "import socket, time\n\ndef handler(event, context):\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(event.decode())\n    time.sleep(1000)\n",
    );
    // The handler reports that it is running by connecting to this socket.
    let path = fx.dir.path().join("started.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let busy = {
        let runtime = fx.runtime.clone();
        let spec = spec.clone();
        let event = path.to_str().unwrap().to_owned();
        tokio::spawn(async move { runtime.invoke(&spec, invocation("r-1", event)).await })
    };
    let _running = listener.accept().await.unwrap();
    fx.runtime.shutdown().await;
    let result = busy.await.unwrap();
    assert!(
        matches!(result, Err(RuntimeError::ShuttingDown)),
        "{result:?}"
    );
    let after = fx.runtime.invoke(&spec, invocation("r-2", "")).await;
    assert!(
        matches!(after, Err(RuntimeError::ShuttingDown)),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_runtimes_are_refused() {
    let fx = runtime();
    let spec = fx.function_files("node", "r1", &[("index.py", "")], |s| {
        s.runtime = "nodejs18".into()
    });
    let err = fx
        .runtime
        .invoke(&spec, invocation("r-1", ""))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::UnsupportedRuntime(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_while_starting_fails_with_its_output() {
    let fx = runtime();
    // sitecustomize runs while the interpreter starts, before the bootstrap.
    let spec = fx.function_files(
        "nostart",
        "r1",
        &[
            ("index.py", "def handler(e, c):\n    return 'x'\n"),
            (
                "site/sitecustomize.py",
                "import os\nprint('site says goodbye', flush=True)\nos._exit(3)\n",
            ),
        ],
        |s| {
            let site = std::path::absolute(s.code_dir.join("site")).unwrap();
            s.env
                .insert("PYTHONPATH".into(), site.to_str().unwrap().into());
        },
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-1", ""))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::Crashed));
    assert_eq!(
        out.log,
        "site says goodbye\nFC Invoke End RequestId: r-1, Error: Process exited unexpectedly (exit code 3)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invocation_discards_its_instance() {
    let fx = runtime();
    let spec = fx.function(
        "cancel",
        "import socket, time\n\ndef handler(event, context):\n    if event:\n        s = socket.socket(socket.AF_UNIX)\n        s.connect(event.decode())\n        time.sleep(1000)\n    return 'done'\n",
    );
    let path = fx.dir.path().join("cancel.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let busy = {
        let runtime = fx.runtime.clone();
        let spec = spec.clone();
        let event = path.to_str().unwrap().to_owned();
        tokio::spawn(async move { runtime.invoke(&spec, invocation("r-1", event)).await })
    };
    let _running = listener.accept().await.unwrap();
    busy.abort();
    assert!(busy.await.unwrap_err().is_cancelled());
    // The instance was mid-request, so it is gone rather than back in the pool.
    assert_eq!(fx.runtime.instance_count("cancel"), 0);
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-2", ""))
        .await
        .unwrap();
    assert_eq!(text(&out.body), "done");
}

/// Seed 002's handler (with the seed's indentation error fixed and the downloaded body stored,
/// per seeds/README.md), against stand-ins for `oss2` and `requests` shipped in the code: the
/// credentials reach `oss2.StsAuth`, and libraries in the code directory import.
const SEED_002_HANDLER: &str = r#"import json
import oss2
import requests

def handler(event, context):
    creds = context.credentials
    auth = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    bucket = oss2.Bucket(auth, 'your endpoint', 'your bucket name')

    # Parse the event to get the source object info.
    eventObj = json.loads(event)["events"]
    fileUrl = eventObj[0]["eventParameter"]["filePath"]
    file = requests.get(fileUrl)
    result = bucket.put_object("your log name", file.content)

    return result.status
"#;

const OSS2_STUB: &str = r#"
class StsAuth:
    def __init__(self, access_key_id, access_key_secret, security_token):
        self.args = (access_key_id, access_key_secret, security_token)

class _Result:
    status = 200

class Bucket:
    def __init__(self, auth, endpoint, bucket_name):
        self.auth = auth

    def put_object(self, key, data):
        print("put", key, len(data), *self.auth.args)
        return _Result()
"#;

const REQUESTS_STUB: &str = r#"
class _Response:
    content = b"log-bytes"

def get(url):
    print("get", url)
    return _Response()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_handler_gets_working_credentials() {
    let fx = runtime();
    let files = [
        ("index.py", SEED_002_HANDLER),
        ("oss2.py", OSS2_STUB),
        ("requests.py", REQUESTS_STUB),
    ];
    let spec = fx.function_files("dump", "r1", &files, |_| {});
    let event = include_str!("fixtures/seed_001_log_file_created.json");
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-dump", event))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));
    assert_eq!(text(&out.body), "200");
    assert!(
        out.log
            .contains("\nget http://cdnlog.cn-hangzhou.oss.aliyun-inc.com/"),
        "{}",
        out.log
    );
    assert!(
        out.log
            .contains("\nput your log name 9 STS.test-ak test-sk test-token\n"),
        "{}",
        out.log
    );
}

const PRE_STOP_HANDLER: &str = r#"
import os, socket, time

def handler(event, context):
    return str(os.getpid())

def pre_stop(context):
    print("bye from", context.request_id)
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["PRESTOP_SOCK"])
    s.sendall(("%s %s" % (context.request_id, context.credentials.access_key_id)).encode())
    s.close()
    if os.environ.get("HANG"):
        time.sleep(1000)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_runs_before_an_idle_instance_is_stopped() {
    for hang in [false, true] {
        let fx = runtime_with(|c| c.idle_timeout = Duration::ZERO);
        let path = fx.dir.path().join("prestop.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let spec = fx.function_files("bye", "r1", &[("index.py", PRE_STOP_HANDLER)], |s| {
            s.pre_stop = Some(Hook {
                handler: "index.pre_stop".into(),
                timeout: Duration::from_millis(500),
            });
            s.env
                .insert("PRESTOP_SOCK".into(), path.to_str().unwrap().into());
            if hang {
                s.env.insert("HANG".into(), "1".into());
            }
        });
        let out = fx
            .runtime
            .invoke(&spec, invocation("r-1", ""))
            .await
            .unwrap();
        let pid: u32 = text(&out.body).parse().unwrap();
        // The background reaper may have got there first; either way the hook runs once.
        fx.runtime.reap_idle();
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("pre_stop within 10 s")
            .unwrap();
        let mut report = String::new();
        conn.read_to_string(&mut report).await.unwrap();
        assert_eq!(report, format!("{}-prestop STS.test-ak", out.instance_id));
        // Stopped after the hook returns, or once its timeout runs out.
        assert!(
            exits_soon(pid).await,
            "worker {pid} survived (hang: {hang})"
        );
    }
}
