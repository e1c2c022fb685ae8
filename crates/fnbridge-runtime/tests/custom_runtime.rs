//! End-to-end tests of custom-runtime instances: real HTTP servers (Python's `http.server`, a
//! shell `bootstrap`, a small C server) behind `Runtime::invoke`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fixture, exits_soon, invocation, json, runtime, runtime_with, text, write};
use fnbridge_runtime::{CustomRuntime, FunctionError, FunctionSpec, HealthCheck, Hook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// A custom runtime in Python: what it does is chosen by the event. `MARKERS=1` makes it write
/// FC's log markers itself; `PRESTOP_SOCK` is where it reports `GET /pre-stop`; `READY_AFTER`
/// fails that many health checks first. An argument overrides the port it listens on.
const SERVER: &str = r#"
import http.server, json, os, socket, subprocess, sys, time

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["FC_CUSTOM_LISTEN_PORT"])
MARKERS = os.environ.get("MARKERS") == "1"
READY_AFTER = int(os.environ.get("READY_AFTER", "0"))
inits = 0
checks = 0
hoard = []

def say(*args):
    print(*args, flush=True)

def tell(path, text):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(text.encode())
    return s

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global checks
        rid = self.headers.get("x-fc-request-id", "")
        if self.path == "/pre-stop":
            say("pre-stop", rid)
            report = {"rid": rid, "ak": self.headers.get("x-fc-access-key-id"),
                      "path": self.headers.get("x-fc-control-path"), "pid": os.getpid()}
            tell(os.environ["PRESTOP_SOCK"], json.dumps(report)).close()
            return self.reply(200, "")
        if self.path == "/ready":
            checks += 1
            return self.reply(200 if checks > READY_AFTER else 503, "")
        self.reply(404, "")

    def do_POST(self):
        global inits
        rid = self.headers["x-fc-request-id"]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/initialize":
            inits += 1
            say("init", rid)
            if os.path.exists("fail-init"):
                return self.reply(404, "init failed", [("x-fc-status", "404")])
            return self.reply(200, "")
        if MARKERS:
            say("FC Invoke Start RequestId: " + rid)
        cmd = body.decode(errors="replace")
        say("handling", rid)
        status, out, headers = 200, "", []
        if cmd == "fail404":
            status, out, headers = 404, '{"errorMessage":"bad","errorType":"E"}', [("x-fc-status", "404")]
        elif cmd == "fail500":
            status = 500
        elif cmd == "sleep":
            child = subprocess.Popen(["sleep", "1000"])
            say("child", child.pid)
            time.sleep(1000)
        elif cmd == "crash":
            say("going down")
            os._exit(3)
        elif cmd.startswith("block:"):
            s = tell(cmd[len("block:"):], "%s %d" % (rid, os.getpid()))
            s.recv(1)
            out = str(os.getpid())
        elif cmd == "hog":
            hoard.append(b"x" * (400 << 20))
            time.sleep(10)
            out = "survived"
        else:
            out = json.dumps({
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "env": dict(os.environ), "cwd": os.getcwd(), "body": cmd, "inits": inits,
                "pid": os.getpid(),
            })
        if MARKERS:
            suffix = ", Error: Unhandled function error" if status != 200 else ""
            say("FC Invoke End RequestId: " + rid + suffix)
        self.reply(status, out, headers)

say("listening on", PORT)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
"#;

/// A custom-runtime function `name` running `SERVER` with `python3 server.py`.
fn server(fx: &Fixture, name: &str, tweak: impl FnOnce(&mut FunctionSpec)) -> Arc<FunctionSpec> {
    server_files(fx, name, &[], tweak)
}

fn server_files(
    fx: &Fixture,
    name: &str,
    extra: &[(&str, &str)],
    tweak: impl FnOnce(&mut FunctionSpec),
) -> Arc<FunctionSpec> {
    let mut files = vec![("server.py", SERVER)];
    files.extend_from_slice(extra);
    fx.function_files(name, "r1", &files, |s| {
        s.runtime = "custom.debian12".into();
        s.custom = Some(CustomRuntime {
            command: vec!["python3".into()],
            args: vec!["server.py".into()],
            ..CustomRuntime::default()
        });
        tweak(s);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_carries_the_event_headers_and_environment() {
    let fx = runtime();
    let spec = server(&fx, "echo", |s| {
        s.env.insert("MY_SETTING".into(), "on".into());
        s.timeout = Duration::from_secs(7);
        s.memory_mb = 256;
        s.handler = "index.handler".into();
    });
    let mut inv = invocation("r-echo", "echo");
    inv.qualifier = "prod".into();
    inv.version_id = "3".into();
    let out = fx.runtime.invoke(&spec, inv).await.unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));
    let v = json(&out.body);
    assert_eq!(v["body"], "echo");
    let h = &v["headers"];
    let expect = [
        ("x-fc-request-id", "r-echo"),
        ("x-fc-access-key-id", "STS.test-ak"),
        ("x-fc-access-key-secret", "test-sk"),
        ("x-fc-security-token", "test-token"),
        ("x-fc-function-name", "echo"),
        ("x-fc-function-handler", "index.handler"),
        ("x-fc-function-memory", "256"),
        ("x-fc-function-timeout", "7"),
        ("x-fc-region", "cn-hangzhou"),
        ("x-fc-account-id", "1234567890123456"),
        ("x-fc-qualifier", "prod"),
        ("x-fc-version-id", "3"),
        ("x-fc-service-name", "echo"),
        ("x-fc-control-path", "/invoke"),
        ("content-type", "application/octet-stream"),
    ];
    for (key, value) in expect {
        assert_eq!(h[key], value, "{key}: {h}");
    }
    assert!(h.get("x-fc-function-initializer").is_none(), "{h}");

    let code_dir = std::path::absolute(&spec.code_dir).unwrap();
    assert_eq!(v["cwd"], code_dir.to_str().unwrap());
    let env = &v["env"];
    let port = env["FC_CUSTOM_LISTEN_PORT"].as_str().unwrap();
    assert_ne!(port, "9000", "each instance gets a port of its own");
    assert!(port.parse::<u16>().unwrap() > 0);
    assert_eq!(env["FC_SERVER_PORT"], port);
    for (key, value) in [
        ("FC_FUNC_CODE_PATH", code_dir.to_str().unwrap()),
        ("FC_FUNCTION_NAME", "echo"),
        ("FC_FUNCTION_HANDLER", "index.handler"),
        ("FC_FUNCTION_MEMORY_SIZE", "256"),
        ("FC_REGION", "cn-hangzhou"),
        ("FC_ACCOUNT_ID", "1234567890123456"),
        ("FC_FUNCTION_VERSION", "3"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.test-ak"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "test-token"),
        ("MY_SETTING", "on"),
    ] {
        assert_eq!(env[key], value, "{key}");
    }
    assert_eq!(env["FC_INSTANCE_ID"], out.instance_id.as_str());
    let leaked: Vec<_> = env
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("CARGO"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");

    // The server writes no markers: the platform adds them around what it wrote meanwhile,
    // and the start-up output opens the first invocation's log.
    assert_eq!(
        out.log,
        format!(
            "listening on {port}\nFC Invoke Start RequestId: r-echo\nhandling r-echo\nFC Invoke End RequestId: r-echo\n"
        )
    );
    let again = fx
        .runtime
        .invoke(&spec, invocation("r-again", &b"\x00\xffraw"[..]))
        .await
        .unwrap();
    assert_eq!(again.instance_id, out.instance_id, "warm instance reused");
    assert_eq!(json(&again.body)["pid"], v["pid"]);
    assert_eq!(
        again.log,
        "FC Invoke Start RequestId: r-again\nhandling r-again\nFC Invoke End RequestId: r-again\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_are_signalled_by_status() {
    let fx = runtime();
    let spec = server(&fx, "errors", |_| {});
    let warm = fx
        .runtime
        .invoke(&spec, invocation("r-0", "echo"))
        .await
        .unwrap();

    let e404 = fx
        .runtime
        .invoke(&spec, invocation("r-404", "fail404"))
        .await
        .unwrap();
    assert_eq!(e404.error, Some(FunctionError::Unhandled));
    assert_eq!(e404.error.unwrap().error_type(), "UnhandledInvocationError");
    assert_eq!(
        text(&e404.body),
        r#"{"errorMessage":"bad","errorType":"E"}"#
    );
    assert_eq!(
        e404.log,
        "FC Invoke Start RequestId: r-404\nhandling r-404\nFC Invoke End RequestId: r-404, Error: Unhandled function error\n"
    );

    let e500 = fx
        .runtime
        .invoke(&spec, invocation("r-500", "fail500"))
        .await
        .unwrap();
    assert_eq!(e500.error, Some(FunctionError::Unhandled));
    let v = json(&e500.body);
    assert_eq!(v["errorType"], "FunctionError");
    assert_eq!(
        v["errorMessage"],
        "Unhandled function error: HTTP 500 with an empty body"
    );
    assert_eq!(v["stackTrace"], serde_json::json!([]));

    // A function error leaves the instance in service.
    let after = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert_eq!(after.error, None);
    for out in [&e404, &e500, &after] {
        assert_eq!(out.instance_id, warm.instance_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_write_markers_keep_their_own() {
    let fx = runtime();
    let spec = server(&fx, "marked", |s| {
        s.env.insert("MARKERS".into(), "1".into());
    });
    fx.runtime
        .invoke(&spec, invocation("r-0", "echo"))
        .await
        .unwrap();
    let ok = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert_eq!(
        ok.log,
        "FC Invoke Start RequestId: r-1\nhandling r-1\nFC Invoke End RequestId: r-1\n"
    );
    let failed = fx
        .runtime
        .invoke(&spec, invocation("r-2", "fail404"))
        .await
        .unwrap();
    assert_eq!(failed.error, Some(FunctionError::Unhandled));
    assert_eq!(
        failed.log,
        "FC Invoke Start RequestId: r-2\nhandling r-2\nFC Invoke End RequestId: r-2, Error: Unhandled function error\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_server_and_its_children() {
    let fx = runtime();
    let spec = server(&fx, "slow", |s| s.timeout = Duration::from_millis(500));
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-slow", "sleep"))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::Timeout));
    assert_eq!(
        text(&out.body),
        r#"{"errorMessage":"Function timed out after 0.5 seconds","errorType":"FunctionTimeout","stackTrace":[]}"#
    );
    assert!(
        out.log.ends_with(
            "handling r-slow\nchild PID\nFC Invoke End RequestId: r-slow, Error: Function timed out after 0.5 seconds\n"
                .replace("PID", child_pid(&out.log).to_string().as_str())
                .as_str()
        ),
        "{}",
        out.log
    );
    let pid = child_pid(&out.log);
    assert!(
        exits_soon(pid).await,
        "grandchild {pid} survived the timeout"
    );
    let next = fx
        .runtime
        .invoke(&spec, invocation("r-next", "echo"))
        .await
        .unwrap();
    assert_eq!(next.error, None);
    assert_ne!(next.instance_id, out.instance_id);
}

fn child_pid(log: &str) -> u32 {
    let line = log.lines().find(|l| l.starts_with("child ")).unwrap();
    line["child ".len()..].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_call_is_replaced() {
    let fx = runtime();
    let spec = server(&fx, "crash", |_| {});
    let warm = fx
        .runtime
        .invoke(&spec, invocation("r-0", "echo"))
        .await
        .unwrap();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-crash", "crash"))
        .await
        .unwrap();
    assert_eq!(
        out.error,
        Some(FunctionError::Crashed),
        "{}",
        text(&out.body)
    );
    assert_eq!(out.instance_id, warm.instance_id);
    let v = json(&out.body);
    assert_eq!(v["errorType"], "FunctionCrashed");
    assert_eq!(
        v["errorMessage"],
        "Process exited unexpectedly (exit code 3)"
    );
    assert_eq!(
        out.log,
        "FC Invoke Start RequestId: r-crash\nhandling r-crash\ngoing down\nFC Invoke End RequestId: r-crash, Error: Process exited unexpectedly (exit code 3)\n"
    );
    let next = fx
        .runtime
        .invoke(&spec, invocation("r-next", "echo"))
        .await
        .unwrap();
    assert_eq!(next.error, None);
    assert_ne!(next.instance_id, out.instance_id);
    assert_eq!(fx.runtime.instance_count("crash"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_exits_at_once_fails_with_its_output() {
    let fx = runtime();
    let spec = server(&fx, "exits", |s| {
        let custom = s.custom.as_mut().unwrap();
        custom.args = vec![
            "-c".into(),
            "import sys; print('bad config', flush=True); sys.exit(2)".into(),
        ];
    });
    let started = Instant::now();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.error, Some(FunctionError::StartFailed));
    assert_eq!(out.error.unwrap().kind(), "start_failed");
    let v = json(&out.body);
    assert_eq!(v["errorType"], "CAExited");
    let message = v["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("Process exited before it was ready on port ")
            && message.ends_with(" (exit code 2)"),
        "{message}"
    );
    assert_eq!(
        out.log,
        format!("bad config\nFC Invoke End RequestId: r-1, Error: {message}\n")
    );
    assert_eq!(fx.runtime.instance_count("exits"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_the_wrong_port_fails_within_the_start_timeout() {
    let fx = runtime_with(|c| c.custom_start_timeout = Duration::from_millis(1500));
    // Listens on the configured port (as in FC, where it is alone) instead of ours.
    let configured = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = server(&fx, "wrong-port", |s| {
        let custom = s.custom.as_mut().unwrap();
        custom.args.push(configured.to_string());
        custom.port = configured;
    });
    let started = Instant::now();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(out.error, Some(FunctionError::StartFailed));
    let v = json(&out.body);
    assert_eq!(v["errorType"], "CAExited");
    let message = v["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("did not listen on port")
            && message.contains("within 1.5 seconds")
            && message.contains(&format!(
                "something listens on the configured port {configured} instead"
            )),
        "{message}"
    );
    assert!(
        out.log.starts_with(&format!("listening on {configured}\n")),
        "{}",
        out.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unusable_commands_are_named() {
    let fx = runtime();
    let missing = server(&fx, "missing", |s| {
        s.custom.as_mut().unwrap().command = vec!["./no-such-server".into()];
    });
    let out = fx
        .runtime
        .invoke(&missing, invocation("r-1", ""))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::StartFailed));
    let v = json(&out.body);
    assert_eq!(v["errorType"], "CAFileNotFound");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("command \"./no-such-server\" not found"),
        "{v}"
    );
    assert!(
        out.log
            .starts_with("FC Invoke End RequestId: r-1, Error: command"),
        "{}",
        out.log
    );

    // No command: `./bootstrap`, which must be executable.
    let spec = server_files(
        &fx,
        "bootstrap",
        &[("bootstrap", "#!/bin/sh\nexec python3 server.py\n")],
        |s| s.custom = None,
    );
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-2", ""))
        .await
        .unwrap();
    assert_eq!(
        json(&out.body)["errorType"],
        "CAFilePermission",
        "{}",
        text(&out.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_bootstrap_starts_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let fx = runtime();
    let spec = server_files(
        &fx,
        "bootstrap",
        &[(
            "bootstrap",
            "#!/bin/sh\necho \"bootstrap on $FC_CUSTOM_LISTEN_PORT\"\nexec python3 server.py\n",
        )],
        |s| s.custom = None,
    );
    let bootstrap = spec.code_dir.join("bootstrap");
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));
    let port = json(&out.body)["env"]["FC_CUSTOM_LISTEN_PORT"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        out.log
            .starts_with(&format!("bootstrap on {port}\nlistening on {port}\n")),
        "{}",
        out.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initializer_runs_once_per_instance() {
    let fx = runtime();
    let hook = Hook {
        handler: "index.initialize".into(),
        timeout: Duration::from_secs(5),
    };
    let spec = server(&fx, "init", |s| s.initializer = Some(hook.clone()));
    let first = fx
        .runtime
        .invoke(&spec, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert_eq!(first.error, None, "{}", text(&first.body));
    let v = json(&first.body);
    assert_eq!(v["inits"], 1);
    assert_eq!(
        v["headers"]["x-fc-function-initializer"],
        "index.initialize"
    );
    assert_eq!(v["headers"]["x-fc-initialization-timeout"], "5");
    assert!(
        first.log.ends_with(
            "FC Initialize Start RequestId: r-1\ninit r-1\nFC Initialize End RequestId: r-1\nFC Invoke Start RequestId: r-1\nhandling r-1\nFC Invoke End RequestId: r-1\n"
        ),
        "{}",
        first.log
    );
    let second = fx
        .runtime
        .invoke(&spec, invocation("r-2", "echo"))
        .await
        .unwrap();
    assert_eq!(json(&second.body)["inits"], 1);
    assert_eq!(second.instance_id, first.instance_id);
    assert!(!second.log.contains("Initialize"), "{}", second.log);

    // A failing initializer fails the invocation and discards the instance; the next
    // invocation starts another one and runs it again.
    let failing = server_files(&fx, "init-fails", &[("fail-init", "")], |s| {
        s.initializer = Some(hook.clone());
    });
    let mut instances = Vec::new();
    for rid in ["r-3", "r-4"] {
        let out = fx
            .runtime
            .invoke(&failing, invocation(rid, "echo"))
            .await
            .unwrap();
        assert_eq!(out.error, Some(FunctionError::InitFailed));
        assert_eq!(text(&out.body), "init failed");
        assert!(
            out.log.ends_with(&format!(
                "FC Initialize Start RequestId: {rid}\ninit {rid}\nFC Initialize End RequestId: {rid}, Error: Unhandled function error\n"
            )),
            "{}",
            out.log
        );
        instances.push(out.instance_id);
    }
    assert_ne!(instances[0], instances[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_share_one_instance() {
    let fx = runtime();
    let spec = server(&fx, "shared", |s| s.instance_concurrency = 2);
    let warm = fx
        .runtime
        .invoke(&spec, invocation("r-0", "echo"))
        .await
        .unwrap();
    // Each call reports in through this socket and then blocks until released, so both are
    // provably in flight at once.
    let path = fx.dir.path().join("shared.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let event = format!("block:{}", path.display());
    let calls: Vec<_> = ["r-a", "r-b"]
        .into_iter()
        .map(|rid| {
            let runtime = fx.runtime.clone();
            let spec = spec.clone();
            let event = event.clone();
            tokio::spawn(async move { runtime.invoke(&spec, invocation(rid, event)).await })
        })
        .collect();
    let mut running = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..2 {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut report = String::new();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        report.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        reports.push(report);
        running.push(conn);
    }
    assert_eq!(fx.runtime.instance_count("shared"), 1);
    for conn in &mut running {
        conn.write_all(b"x").await.unwrap();
    }
    let pid = json(&warm.body)["pid"].to_string();
    for call in calls {
        let out = call.await.unwrap().unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        assert_eq!(out.instance_id, warm.instance_id);
        assert_eq!(text(&out.body), pid);
    }
    reports.sort();
    assert_eq!(reports, [format!("r-a {pid}"), format!("r-b {pid}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_runs_on_retire_and_at_shutdown() {
    for shutdown in [false, true] {
        let fx = runtime();
        let path = fx.dir.path().join("prestop.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let spec = server(&fx, "prestop", |s| {
            s.pre_stop = Some(Hook {
                handler: "index.pre_stop".into(),
                timeout: Duration::from_secs(5),
            });
            s.env
                .insert("PRESTOP_SOCK".into(), path.to_str().unwrap().into());
        });
        let out = fx
            .runtime
            .invoke(&spec, invocation("r-1", "echo"))
            .await
            .unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        assert_eq!(
            json(&out.body)["headers"]["x-fc-instance-lifecycle-pre-stop-handler"],
            "index.pre_stop"
        );
        let report = async {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut report = String::new();
            conn.read_to_string(&mut report).await.unwrap();
            serde_json::from_str::<serde_json::Value>(&report).unwrap()
        };
        let report = if shutdown {
            // Shutdown waits for the hook, so the report is in by the time it returns.
            let (_, report) = tokio::join!(fx.runtime.shutdown(), report);
            report
        } else {
            fx.runtime.retire("prestop");
            tokio::time::timeout(Duration::from_secs(10), report)
                .await
                .expect("GET /pre-stop within 10 s")
        };
        assert_eq!(report["rid"], format!("{}-prestop", out.instance_id));
        assert_eq!(report["ak"], "STS.test-ak");
        assert_eq!(report["path"], "/pre-stop");
        let pid = report["pid"].as_u64().unwrap() as u32;
        assert!(exits_soon(pid).await, "server {pid} outlived its pre-stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_instance_cap_invocations_wait_for_a_free_slot() {
    let fx = runtime_with(|c| c.max_instances_per_function = 1);
    let spec = server(&fx, "capped", |s| s.instance_concurrency = 2);
    let path = fx.dir.path().join("capped.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let event = format!("block:{}", path.display());
    // A cold burst of three: the first starts the only instance, the second joins it once it
    // is up, the third waits for one of them to finish.
    let calls: Vec<_> = ["r-a", "r-b", "r-c"]
        .into_iter()
        .map(|rid| {
            let runtime = fx.runtime.clone();
            let spec = spec.clone();
            let event = event.clone();
            tokio::spawn(async move { runtime.invoke(&spec, invocation(rid, event)).await })
        })
        .collect();
    let mut running = Vec::new();
    for _ in 0..2 {
        running.push(listener.accept().await.unwrap().0);
    }
    assert_eq!(fx.runtime.instance_count("capped"), 1);
    running[0].write_all(b"x").await.unwrap();
    running.push(listener.accept().await.unwrap().0);
    for conn in &mut running[1..] {
        conn.write_all(b"x").await.unwrap();
    }
    let mut instances = std::collections::BTreeSet::new();
    for call in calls {
        let out = call.await.unwrap().unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        instances.insert(out.instance_id);
    }
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(fx.runtime.instance_count("capped"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_decides_readiness() {
    let fx = runtime();
    let check = HealthCheck {
        http_get_url: "/ready".into(),
        period: Duration::from_millis(20),
        failure_threshold: 5,
        ..HealthCheck::default()
    };
    let ready = server(&fx, "healthy", |s| {
        s.env.insert("READY_AFTER".into(), "2".into());
        s.custom.as_mut().unwrap().health_check = Some(check.clone());
    });
    let out = fx
        .runtime
        .invoke(&ready, invocation("r-1", "echo"))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}", text(&out.body));

    let never = server(&fx, "unhealthy", |s| {
        s.env.insert("READY_AFTER".into(), "1000".into());
        s.custom.as_mut().unwrap().health_check = Some(HealthCheck {
            failure_threshold: 3,
            ..check
        });
    });
    let out = fx
        .runtime
        .invoke(&never, invocation("r-2", "echo"))
        .await
        .unwrap();
    assert_eq!(out.error, Some(FunctionError::StartFailed));
    assert_eq!(
        json(&out.body)["errorMessage"],
        "Process failed its health check 3 times in a row (last: GET /ready: HTTP 503)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_killed_as_out_of_memory() {
    let fx = runtime();
    let spec = server(&fx, "hog", |s| s.memory_mb = 128);
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-hog", "hog"))
        .await
        .unwrap();
    assert_eq!(
        out.error,
        Some(FunctionError::OutOfMemory),
        "{}",
        text(&out.body)
    );
    assert_eq!(
        json(&out.body)["errorMessage"],
        "Function ran out of memory (limit 128 MB)"
    );
    let next = fx
        .runtime
        .invoke(&spec, invocation("r-next", "echo"))
        .await
        .unwrap();
    assert_eq!(next.error, None);
    assert_ne!(next.instance_id, out.instance_id);
}

/// A custom runtime in C: a minimal HTTP/1.0 server, one request per connection, answering
/// every request with its `x-fc-request-id`. Skipped if `cc` is not installed.
const C_SERVER: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int main(void) {
    int port = atoi(getenv("FC_CUSTOM_LISTEN_PORT"));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { perror("listen"); return 1; }
    printf("c server on %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        char req[65536];
        size_t n = 0;
        ssize_t r;
        char *end = 0;
        while (!end && n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
            n += r;
            req[n] = 0;
            end = strstr(req, "\r\n\r\n");
        }
        /* Read the body too: closing with unread input would reset the connection. */
        size_t want = 0;
        char *cl = strcasestr(req, "\r\ncontent-length: ");
        if (cl) want = strtoul(cl + 18, 0, 10);
        size_t have = end ? n - (size_t)(end + 4 - req) : 0;
        char sink[4096];
        while (have < want && (r = read(c, sink, sizeof sink)) > 0) have += r;
        char rid[128] = "?";
        char *h = strcasestr(req, "\r\nx-fc-request-id: ");
        if (h) sscanf(h + 19, "%127[^\r]", rid);
        printf("FC Invoke Start RequestId: %s\nc says hi\nFC Invoke End RequestId: %s\n", rid, rid);
        fflush(stdout);
        char resp[512];
        int len = snprintf(resp, sizeof resp,
            "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(rid), rid);
        write(c, resp, len);
        close(c);
    }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_server_runs() {
    let fx = runtime();
    let code_dir = fx.dir.path().join("code").join("c-server").join("r1");
    write(&code_dir.join("server.c"), C_SERVER);
    let cc = std::process::Command::new("cc")
        .arg("-O1")
        .arg("-Wall")
        .arg("-o")
        .arg(code_dir.join("server"))
        .arg(code_dir.join("server.c"))
        .status();
    match cc {
        Ok(status) if status.success() => {}
        other => {
            eprintln!("skipped: cannot compile the C server ({other:?})");
            return;
        }
    }
    let spec = fx.function_files("c-server", "r1", &[], |s| {
        s.runtime = "custom".into();
        s.custom = Some(CustomRuntime {
            command: vec!["./server".into()],
            ..CustomRuntime::default()
        });
    });
    for rid in ["r-1", "r-2"] {
        let out = fx
            .runtime
            .invoke(&spec, invocation(rid, "{}"))
            .await
            .unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        assert_eq!(text(&out.body), rid);
        assert!(
            out.log.ends_with(&format!(
                "FC Invoke Start RequestId: {rid}\nc says hi\nFC Invoke End RequestId: {rid}\n"
            )),
            "{}",
            out.log
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invocation_leaves_a_shared_instance_in_service() {
    let fx = runtime();
    let spec = server(&fx, "cancel", |s| s.instance_concurrency = 2);
    let warm = fx
        .runtime
        .invoke(&spec, invocation("r-0", "echo"))
        .await
        .unwrap();
    let path = fx.dir.path().join("cancel.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let busy = {
        let runtime = fx.runtime.clone();
        let spec = spec.clone();
        let event = format!("block:{}", path.display());
        tokio::spawn(async move { runtime.invoke(&spec, invocation("r-1", event)).await })
    };
    let _running = listener.accept().await.unwrap();
    busy.abort();
    assert!(busy.await.unwrap_err().is_cancelled());
    // Other invocations may still be using it, so it stays; only the request was abandoned.
    assert_eq!(fx.runtime.instance_count("cancel"), 1);
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-2", "echo"))
        .await
        .unwrap();
    assert_eq!(out.error, None);
    assert_eq!(out.instance_id, warm.instance_id);
    assert_eq!(
        out.log, "FC Invoke Start RequestId: r-2\nhandling r-2\nFC Invoke End RequestId: r-2\n",
        "the abandoned invocation's capture must not linger"
    );
}

#[test]
fn servers_do_not_outlive_the_thread_that_started_them() {
    // As if fnbridge were SIGKILLed: nothing is dropped, no kill_on_drop runs; only the
    // thread that spawned the server goes away.
    let (pid, dir) = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let fx = runtime();
        let spec = server(&fx, "orphan", |_| {});
        let out = rt
            .block_on(fx.runtime.invoke(&spec, invocation("r-1", "echo")))
            .unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        let pid = json(&out.body)["pid"].as_u64().unwrap() as u32;
        let dir = fx.dir.path().to_owned();
        std::mem::forget(fx);
        std::mem::forget(rt);
        (pid, dir)
    })
    .join()
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gone = rt.block_on(exits_soon(pid));
    let _ = std::fs::remove_dir_all(dir);
    assert!(gone, "server {pid} outlived the thread that started it");
}

/// `disableInjectCredentials`: `Request` sends the `x-fc-*` key headers empty and keeps the
/// environment's; `Env` the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_left_out_where_the_function_says() {
    let fx = runtime();
    for (name, in_env, in_request) in [("no-request", true, false), ("no-env", false, true)] {
        let spec = server(&fx, name, |s| {
            s.credentials_in_env = in_env;
            s.credentials_in_request = in_request;
        });
        let out = fx
            .runtime
            .invoke(&spec, invocation("r-creds", "x"))
            .await
            .unwrap();
        assert_eq!(out.error, None, "{}", text(&out.body));
        let v = json(&out.body);
        let (h, env) = (&v["headers"], &v["env"]);
        let sent = |x: &serde_json::Value, k: &str| x[k].as_str().is_some_and(|s| !s.is_empty());
        for k in [
            "x-fc-access-key-id",
            "x-fc-access-key-secret",
            "x-fc-security-token",
        ] {
            assert_eq!(sent(h, k), in_request, "{name} {k}: {h}");
        }
        for k in [
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_SECURITY_TOKEN",
        ] {
            assert_eq!(sent(env, k), in_env, "{name} {k}: {env}");
        }
    }
}
