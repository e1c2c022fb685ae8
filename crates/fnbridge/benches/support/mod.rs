//! What the end-to-end benchmarks share: starting the real `fnbridge serve` binary on
//! 127.0.0.1:0 in a data dir, talking to its API, deploying a Python function from source, and
//! the sample CDN event.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

pub fn zip_b64(src: &str) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("index.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(src.as_bytes()).unwrap();
        w.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> (Server, Duration) {
        let t = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fnbridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("FNBRIDGE_LOG", "warn")
            // The layer of FC's built-in modules, installed once and shared with the tests
            // (else every run's fresh server spends its first seconds in pip).
            .env(
                "FNBRIDGE_LAYER_DIR",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/python-layers"),
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("fnbridge listening on ")
            .unwrap()
            .to_string();
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        let s = Server {
            child,
            base,
            token,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        };
        // Ready when the API answers.
        while s.try_get("/stats").is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        (s, t.elapsed())
    }

    pub fn try_get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .ok()?;
        r.status().is_success().then(|| r.json().ok())?
    }

    pub fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
    }

    pub fn rss_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn deploy(&self, name: &str, src: &str) {
        self.deploy_with(name, src, json!({}));
    }

    /// Deploys with extra CreateFunction fields (`environmentVariables`, ...).
    pub fn deploy_with(&self, name: &str, src: &str, extra: Value) {
        let mut body = json!({"functionName": name, "runtime": "python3.10",
                              "handler": "index.handler", "code": {"zipFile": zip_b64(src)},
                              "timeout": 60});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post("/2023-03-30/functions", &body);
    }

    /// A `cdn_events` trigger for LogFileCreated of example.com.
    pub fn trigger(&self, function: &str, name: &str) {
        self.cdn_trigger(function, name, "LogFileCreated");
    }

    /// A `cdn_events` trigger for `event` of example.com.
    pub fn cdn_trigger(&self, function: &str, name: &str, event: &str) {
        self.post(
            &format!("/2023-03-30/functions/{function}/triggers"),
            &json!({"triggerName": name, "triggerType": "cdn_events",
                    "triggerConfig": json!({"eventName": event, "eventVersion": "1.0.0",
                                            "filter": {"domain": ["example.com"]}}).to_string()}),
        );
    }
}

pub fn sample_event() -> Value {
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/events/LogFileCreated.json"
        ))
        .unwrap(),
    )
    .unwrap();
    sample["events"][0].clone()
}
