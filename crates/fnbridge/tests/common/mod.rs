//! Test harness: starts the real `fnbridge serve` binary on 127.0.0.1:0 in a temp dir, and
//! talks to it over HTTP like any client would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_fnbridge");

/// The repository root (for examples/).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub struct Server {
    pub child: Option<Child>,
    pub data: PathBuf,
    pub base: String,
    /// The object store's base URL (`http://127.0.0.1:PORT`).
    pub oss: String,
    pub token: String,
    pub http: Client,
    extra: Vec<String>,
}

impl Server {
    /// Starts a server on a fresh temp dir with fast retries.
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &["--retry-base-ms", "20"])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            data: data.to_path_buf(),
            base: String::new(),
            oss: String::new(),
            token: String::new(),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(&self.data)
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.extra)
            .env("FNBRIDGE_LOG", "warn")
            // One layer of FC's built-in modules for every test server, installed once.
            .env(
                "FNBRIDGE_LAYER_DIR",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/python-layers"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fnbridge serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(stdout);
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("fnbridge listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        self.base = addr.to_string();
        if !self.extra.iter().any(|a| a == "off") {
            let mut second = String::new();
            out.read_line(&mut second).unwrap();
            self.oss = second
                .trim()
                .strip_prefix("fnbridge object store (S3, OSS, COS) on ")
                .unwrap_or_default()
                .to_string();
        }
        self.token = std::fs::read_to_string(self.data.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        c.wait().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> Value {
        ok_json(self.req(reqwest::Method::GET, path).send().unwrap())
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.req(reqwest::Method::POST, path)
            .json(body)
            .send()
            .unwrap()
    }

    pub fn post_raw(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> Response {
        self.req(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
    }

    /// Deploys a Python function from a map of file name → source.
    pub fn deploy(&self, name: &str, files: &[(&str, &str)], extra: Value) -> Response {
        let mut body = json!({
            "functionName": name,
            "runtime": "python3.10",
            "handler": "index.handler",
            "code": {"zipFile": zip_b64(files)},
            "timeout": 10,
        });
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post("/2023-03-30/functions", &body)
    }

    pub fn cdn_trigger(
        &self,
        function: &str,
        name: &str,
        event: &str,
        domains: &[&str],
    ) -> Response {
        let cfg =
            json!({"eventName": event, "eventVersion": "1.0.0", "filter": {"domain": domains}});
        self.post(
            &format!("/2023-03-30/functions/{function}/triggers"),
            &json!({"triggerName": name, "triggerType": "cdn_events", "triggerConfig": cfg.to_string()}),
        )
    }

    /// Polls a task until it reaches a final state (the server is another process: there is
    /// nothing to await but its API).
    pub fn wait_task(&self, function: &str, task: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.get(&format!(
                "/2023-03-30/functions/{function}/async-tasks/{task}"
            ));
            let s = v["status"].as_str().unwrap_or("");
            if ["Succeeded", "Failed", "Expired"].contains(&s) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "task {task} still {s} after {timeout:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A directory shared with the server's sandboxed instances (writable by their uid), for
/// handlers that report to the test through files; `mount_args` passes it to `serve`.
pub fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

pub fn mount_args(shared: &Path) -> [String; 2] {
    ["--sandbox-mount".into(), format!("{}:rw", shared.display())]
}

pub fn ok_json(r: Response) -> Value {
    let status = r.status();
    let text = r.text().unwrap();
    assert!(status.is_success(), "HTTP {status}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Asserts an FC error: status, code, and that the message mentions `needle`.
pub fn expect_error(r: Response, status: u16, code: &str, needle: &str) -> Value {
    let st = r.status().as_u16();
    let rid = r
        .headers()
        .get("x-fc-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().unwrap();
    assert_eq!(st, status, "body: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(v["Code"], code, "{v}");
    let msg = v["Message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "message {msg:?} does not mention {needle:?}"
    );
    assert_eq!(v["RequestId"].as_str(), rid.as_deref());
    v
}

pub fn zip_b64(files: &[(&str, &str)]) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

pub fn example(path: &str) -> String {
    std::fs::read_to_string(repo().join("examples").join(path)).unwrap()
}

/// The venv with the Python clients and SDKs the tests drive (`scripts/test.sh` installs them
/// into `target/test-venv` and sets `FNBRIDGE_TEST_PYTHON`), or `None` outside CI when it is
/// missing: the caller then skips, saying so. In CI a missing venv fails the test.
pub fn test_python() -> Option<PathBuf> {
    let p = std::env::var_os("FNBRIDGE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/test.sh installs the Python clients",
        p.display()
    );
    eprintln!(
        "skipped: {} missing (run scripts/test.sh once)",
        p.display()
    );
    None
}
