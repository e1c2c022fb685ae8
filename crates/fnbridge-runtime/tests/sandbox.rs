//! Instances in the sandbox: what a handler can see and do, what happens to its processes, its
//! memory limit, and custom runtimes on their configured port.

mod common;

use std::time::Duration;

use common::{exits_soon, invocation, json, runtime_sandboxed, text};
use fnbridge_runtime::{CustomRuntime, FunctionError};

/// Reports what the sandbox looks like from inside, and tries what it must not be able to do.
const PROBE: &str = r#"
import json, os, subprocess

def attempt(fn):
    try:
        fn()
        return "allowed"
    except Exception as e:
        return type(e).__name__

def write(path):
    with open(path, "w") as f:
        f.write("x")

def handler(event, context):
    caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "NoNewPrivs", "Seccomp:"))]
    return json.dumps({
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "code_path": os.environ.get("FC_FUNC_CODE_PATH"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "caps": caps,
        "write_code": attempt(lambda: write("/code/new.py")),
        "write_index": attempt(lambda: write("/code/index.py")),
        "write_tmp": attempt(lambda: write("/tmp/ok")),
        "write_root": attempt(lambda: write("/etc/evil")),
        "write_usr": attempt(lambda: write("/usr/evil")),
        "unshare": attempt(lambda: os.unshare(os.CLONE_NEWUSER)) if hasattr(os, "unshare") else "n/a",
        "hostname": os.uname().nodename,
        "root": sorted(os.listdir("/")),
    })
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_runs_unprivileged_in_its_own_namespaces_with_its_code_read_only() {
    let fx = runtime_sandboxed(true, |_| {});
    let spec = fx.function_files("probe", "r1", &[("index.py", PROBE)], |s| {
        s.runtime = "python3.12".into();
    });
    let out = fx
        .runtime
        .invoke(&spec, invocation("r1", "{}"))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}\n{}", text(&out.body), out.log);
    let v = json(&out.body);
    assert_ne!(v["uid"], 0, "{v}");
    assert_eq!(v["cwd"], "/code");
    assert_eq!(v["code_path"], "/code");
    // Its own PID namespace: bwrap's reaper, the worker, nothing of the server.
    assert!(v["pids"].as_array().unwrap().len() <= 3, "{v}");
    let caps = v["caps"].to_string();
    assert!(caps.contains("CapEff:\\t0000000000000000"), "{caps}");
    assert!(caps.contains("NoNewPrivs:\\t1"), "{caps}");
    assert!(caps.contains("Seccomp:\\t2"), "{caps}");
    for key in ["write_code", "write_index", "write_root", "write_usr"] {
        assert_ne!(v[key], "allowed", "{key}: {v}");
    }
    assert_eq!(v["write_tmp"], "allowed");
    assert_ne!(v["unshare"], "allowed");
    let code = std::fs::read_to_string(spec.code_dir.join("index.py")).unwrap();
    assert_eq!(code, PROBE, "the code was changed from inside");
    assert!(!spec.code_dir.join("new.py").exists());
}

const TRACEBACK: &str =
    "def handler(event, context):\n    helper()\n\ndef helper():\n    raise ValueError('boom')\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracebacks_name_code_paths_and_no_bootstrap_frames() {
    let fx = runtime_sandboxed(true, |_| {});
    let spec = fx.function("tb", TRACEBACK);
    let out = fx
        .runtime
        .invoke(&spec, invocation("r-tb", "{}"))
        .await
        .expect("invoke");
    assert_eq!(out.error, Some(FunctionError::Unhandled));
    let v = json(&out.body);
    let frames = v["stackTrace"].as_array().unwrap();
    assert_eq!(frames.len(), 2, "{v}");
    assert_eq!(frames[0][0], "File \"/code/index.py\"");
    assert!(!out.log.contains("bootstrap"), "{}", out.log);
    assert!(
        out.log
            .contains("File \"/code/index.py\", line 2, in handler"),
        "{}",
        out.log
    );
}

/// Starts a `setsid` grandchild that outlives its parent, and reports its pid as the host sees
/// it (the handler sees its namespace's pids; the grandchild writes its host pid via /proc).
const SETSID: &str = r#"
import os, subprocess, time

def handler(event, context):
    subprocess.Popen(["setsid", "sh", "-c", "sleep 1000"], start_new_session=True)
    time.sleep(0.2)
    return "started"
"#;

/// Pids (host view) of `sleep 1000` processes whose network namespace is not ours.
fn sandboxed_sleepers() -> Vec<u32> {
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd != b"sleep\x001000\x00" {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setsid_grandchild_dies_with_its_reaped_instance() {
    let fx = runtime_sandboxed(true, |c| c.idle_timeout = Duration::from_millis(300));
    let spec = fx.function("setsid", SETSID);
    let before = sandboxed_sleepers();
    let out = fx
        .runtime
        .invoke(&spec, invocation("r1", "{}"))
        .await
        .unwrap();
    assert_eq!(out.error, None, "{}\n{}", text(&out.body), out.log);
    let started: Vec<u32> = sandboxed_sleepers()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(started.len(), 1, "the grandchild runs: {}", out.log);
    // The reaper stops it once it has been idle for 300 ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    fx.runtime.reap_idle();
    assert_eq!(fx.runtime.instance_count("setsid"), 0);
    assert!(
        exits_soon(started[0]).await,
        "the setsid grandchild outlived its instance"
    );
}

const HOG: &str = r#"
def handler(event, context):
    hoard = bytearray(300 * 1024 * 1024)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    return "survived"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_128_mb_function_allocating_300_mb_is_out_of_memory_and_replaced() {
    let fx = runtime_sandboxed(true, |_| {});
    let spec = fx.function("hog", HOG);
    let out = fx
        .runtime
        .invoke(&spec, invocation("r1", "{}"))
        .await
        .unwrap();
    assert_eq!(
        out.error,
        Some(FunctionError::OutOfMemory),
        "{}\n{}",
        text(&out.body),
        out.log
    );
    // The instance was replaced: the next invocation starts a new one.
    let again = fx
        .runtime
        .invoke(&spec, invocation("r2", "{}"))
        .await
        .unwrap();
    assert_eq!(again.error, Some(FunctionError::OutOfMemory));
    assert_ne!(again.instance_id, out.instance_id);
}

const PORT_SERVER: &str = r#"
import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = ("%s %s" % (os.environ["FC_CUSTOM_LISTEN_PORT"], self.server.server_address[1])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.path == "/invoke":
            import time; time.sleep(0.5)

http.server.ThreadingHTTPServer(("0.0.0.0", 9000), H).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_a_custom_runtime_both_listen_on_9000() {
    let fx = runtime_sandboxed(true, |_| {});
    let spec = fx.function_files("port", "r1", &[("server.py", PORT_SERVER)], |s| {
        s.runtime = "custom.debian12".into();
        s.instance_concurrency = 1;
        s.custom = Some(CustomRuntime {
            command: vec!["python3".into()],
            args: vec!["server.py".into()],
            ..CustomRuntime::default()
        });
    });
    let (a, b) = tokio::join!(
        fx.runtime.invoke(&spec, invocation("r1", "a")),
        fx.runtime.invoke(&spec, invocation("r2", "b")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.error, None, "{}\n{}", text(&a.body), a.log);
    assert_eq!(b.error, None, "{}\n{}", text(&b.body), b.log);
    assert_eq!(text(&a.body), "9000 9000");
    assert_eq!(text(&b.body), "9000 9000");
    assert_ne!(a.instance_id, b.instance_id, "two instances");
    assert_eq!(fx.runtime.instance_count("port"), 2);
}

const ENV_AND_ARGV: &str = r#"
import json, os, sys
def handler(event, context):
    return json.dumps({"uid": os.getuid(), "env": sorted(os.environ), "argv": sys.argv[0:1],
                       "cwd": os.getcwd(), "code": context.function.name})
"#;

/// Instances started from a bwrap that waited in a spare jail (the second and later ones) look
/// exactly like one started directly: same uid, environment names, arguments and directory,
/// and nothing of how it was started (`FNBRIDGE_EXEC`) left in the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_from_spare_jails_are_the_same_as_fresh_ones() {
    let fx = runtime_sandboxed(true, |_| {});
    let mut seen = Vec::new();
    for name in ["first", "second", "third"] {
        let spec = fx.function(name, ENV_AND_ARGV);
        let out = fx
            .runtime
            .invoke(&spec, invocation("r", "{}"))
            .await
            .unwrap();
        assert_eq!(out.error, None, "{}\n{}", text(&out.body), out.log);
        let v: serde_json::Value = serde_json::from_str(text(&out.body)).unwrap();
        assert_eq!(v["uid"], 65534, "{v}");
        assert_eq!(v["code"], name, "{v}");
        assert_eq!(v["argv"][0], "/var/fc/runtime/bootstrap.py", "{v}");
        assert_eq!(v["cwd"], "/code", "{v}");
        assert!(
            !v["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "FNBRIDGE_EXEC"),
            "{v}"
        );
        seen.push(v["env"].clone());
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
}
