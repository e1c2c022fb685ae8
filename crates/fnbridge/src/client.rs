//! The HTTP client of the CLI: resolves endpoint and token, sends requests, and turns FC error
//! bodies into readable errors.

use anyhow::{Context, bail};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};

use crate::cli::Global;

pub struct Client {
    http: Http,
    endpoint: String,
    token: String,
}

impl Client {
    pub fn new(g: &Global) -> anyhow::Result<Client> {
        let token = match &g.token {
            Some(t) => t.clone(),
            None => {
                let path = g.data_dir.join("admin.token");
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no --token given and cannot read {} (set --token/FNBRIDGE_TOKEN, or --data-dir/FNBRIDGE_DATA_DIR to the server's data directory)",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string()
            }
        };
        let http = Http::builder().timeout(None).build()?;
        Ok(Client {
            http,
            endpoint: g.endpoint.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.endpoint, path))
            .bearer_auth(&self.token)
    }

    /// Sends and fails on any status >= 400 with the server's message.
    pub fn send(&self, rb: RequestBuilder) -> anyhow::Result<Response> {
        let resp = rb
            .send()
            .with_context(|| format!("cannot reach fnbridge at {}", self.endpoint))?;
        if resp.status().as_u16() >= 400 {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(v) if v.get("Code").is_some() => bail!(
                    "{} ({}): {}",
                    v["Code"].as_str().unwrap_or(""),
                    status.as_u16(),
                    v["Message"].as_str().unwrap_or("")
                ),
                _ => bail!("HTTP {status}: {body}"),
            }
        }
        Ok(resp)
    }

    pub fn json(&self, rb: RequestBuilder) -> anyhow::Result<serde_json::Value> {
        let resp = self.send(rb)?;
        let text = resp.text()?;
        if text.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).context("server sent invalid JSON")
    }
}

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
