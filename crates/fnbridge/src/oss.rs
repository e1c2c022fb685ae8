//! The object-store commands (`bucket`, `cp` (upload, download, or server-side copy between two
//! `oss://` URLs), `ls`, `rm`): an S3 client that signs with SigV4,
//! as `aws s3` does, so the CLI goes through the same door, keys and checks as every other
//! client. Its key is the user's (`--access-key-id`/`--access-key-secret` or the environment), or
//! one the CLI creates once with the admin token (`POST /keys`) and keeps, mode 0600, in the data
//! directory next to `admin.token`: whoever can read the admin token may mint keys anyway, and a
//! key kept there goes away with the server's state it belongs to.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::blocking::{Body, Client as Http, RequestBuilder, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::{BucketCmd, CpArgs, Global, LsArgs, OssGlobal, RmArgs};
use crate::client::Client;
use crate::output::{self, outln};

/// Files this large get a progress bar (on a terminal): smaller ones finish before it draws.
const PROGRESS_MIN_BYTES: u64 = 1 << 20;
/// The file the CLI keeps its own access key in, inside the data directory.
const KEY_FILE: &str = "cli-access-key.json";
/// SigV4's hash of an empty payload, sent with every body-less request.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An S3 client of the object store.
pub struct Oss {
    http: Http,
    endpoint: String,
    host: String,
    ak: String,
    sk: String,
}

/// `oss://bucket/key` split; the key may be empty (a bucket or a listing of all of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub bucket: String,
    pub key: String,
}

pub fn parse_url(s: &str) -> Option<Url> {
    let rest = s.strip_prefix("oss://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some(Url {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

fn url_or_fail(s: &str) -> anyhow::Result<Url> {
    parse_url(s).with_context(|| format!("'{s}' is not an oss://bucket/key URL"))
}

/// A bucket named bare or as `oss://bucket`.
fn bucket_name(s: &str) -> anyhow::Result<String> {
    if s.starts_with("oss://") {
        let u = url_or_fail(s)?;
        if !u.key.is_empty() {
            bail!("'{s}' names an object, not a bucket");
        }
        return Ok(u.bucket);
    }
    Ok(s.to_string())
}

/// Percent-encodes for S3 paths and SigV4: every byte but the unreserved ones, and '/' too
/// unless `keep_slash` (keys keep their slashes in paths; query values encode them).
fn enc(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The `Authorization` value of a SigV4 request signed over host, x-amz-content-sha256 and
/// x-amz-date. `path` is already encoded; `query` pairs are encoded and sorted here.
#[allow(clippy::too_many_arguments)] // SigV4's own inputs, each a string: a struct would only rename them
#[cfg(test)]
pub fn sigv4(
    ak: &str,
    sk: &str,
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    payload_hash: &str,
    amz_date: &str,
) -> String {
    sigv4_with(
        ak,
        sk,
        method,
        host,
        path,
        query,
        payload_hash,
        amz_date,
        None,
    )
}

/// `sigv4`, also signing `x-amz-copy-source` when given (a server-side copy).
#[allow(clippy::too_many_arguments)]
fn sigv4_with(
    ak: &str,
    sk: &str,
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    payload_hash: &str,
    amz_date: &str,
    copy_source: Option<&str>,
) -> String {
    let region = "us-east-1";
    let date = &amz_date[..amz_date.len().min(8)];
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (enc(k, false), enc(v, false)))
        .collect();
    q.sort();
    let canonical_query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let (signed, copy_line) = match copy_source {
        Some(c) => (
            "host;x-amz-content-sha256;x-amz-copy-source;x-amz-date",
            format!("x-amz-copy-source:{c}\n"),
        ),
        None => ("host;x-amz-content-sha256;x-amz-date", String::new()),
    };
    let canonical = format!(
        "{method}\n{path}\n{canonical_query}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\n{copy_line}x-amz-date:{amz_date}\n\n{signed}\n{payload_hash}"
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{sk}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex::encode(hmac(&k, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}")
}

fn amz_now() -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "19700101T000000Z".into())
}

/// The text of the first `<tag>` in `xml`, entities decoded.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

/// Every `<name>...</name>` block of `xml`, in order.
fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

impl Oss {
    pub fn new(o: &OssGlobal) -> anyhow::Result<Oss> {
        let (ak, sk) = match (&o.access_key_id, &o.access_key_secret) {
            (Some(a), Some(s)) => (a.clone(), s.clone()),
            (Some(_), None) | (None, Some(_)) => {
                bail!("--access-key-id and --access-key-secret go together")
            }
            (None, None) => cli_key(&o.global)?,
        };
        let endpoint = o.oss_endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&endpoint)
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        if host.is_empty() {
            bail!("--oss-endpoint '{}' names no host", o.oss_endpoint);
        }
        Ok(Oss {
            http: Http::builder().timeout(None).build()?,
            endpoint,
            host,
            ak,
            sk,
        })
    }

    /// A signed request for `bucket`/`key` (either may be empty) with `query`.
    fn request(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
        has_body: bool,
    ) -> RequestBuilder {
        self.request_with(method, bucket, key, query, has_body, None)
    }

    /// `request`, with a signed `x-amz-copy-source` when given.
    fn request_with(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
        has_body: bool,
        copy_source: Option<&str>,
    ) -> RequestBuilder {
        let mut path = String::from("/");
        if !bucket.is_empty() {
            path.push_str(&enc(bucket, false));
            if !key.is_empty() {
                path.push('/');
                path.push_str(&enc(key, true));
            }
        }
        // Bodies stream from files, so they are not hashed first: SigV4's UNSIGNED-PAYLOAD.
        let payload = if has_body {
            "UNSIGNED-PAYLOAD"
        } else {
            EMPTY_SHA256
        };
        let date = amz_now();
        let auth = sigv4_with(
            &self.ak,
            &self.sk,
            method.as_str(),
            &self.host,
            &path,
            query,
            payload,
            &date,
            copy_source,
        );
        let mut url = format!("{}{}", self.endpoint, path);
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k, false), enc(v, false)))
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let rb = self
            .http
            .request(method, url)
            .header("x-amz-date", date)
            .header("x-amz-content-sha256", payload)
            .header("authorization", auth);
        match copy_source {
            Some(c) => rb.header("x-amz-copy-source", c),
            None => rb,
        }
    }

    /// Copies an object on the server (S3 CopyObject: the bytes never leave it), returning its
    /// size.
    fn copy(&self, from: &Url, to: &Url) -> anyhow::Result<u64> {
        let what = || {
            format!(
                "cannot copy oss://{}/{} to oss://{}/{}",
                from.bucket, from.key, to.bucket, to.key
            )
        };
        let source = format!("/{}/{}", enc(&from.bucket, false), enc(&from.key, true));
        self.send(
            self.request_with(Method::PUT, &to.bucket, &to.key, &[], false, Some(&source))
                .header("content-length", 0),
        )
        .with_context(what)?;
        let head = self.send(self.request(Method::HEAD, &to.bucket, &to.key, &[], false))?;
        let len = head
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(len)
    }

    /// Sends and fails on any status >= 400 with the store's error code and message.
    fn send(&self, rb: RequestBuilder) -> anyhow::Result<Response> {
        let resp = rb
            .send()
            .with_context(|| format!("cannot reach the object store at {}", self.endpoint))?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            let body = resp.text().unwrap_or_default();
            match (tag(&body, "Code"), tag(&body, "Message")) {
                (Some(code), msg) => {
                    bail!("{code} ({}): {}", status.as_u16(), msg.unwrap_or_default())
                }
                _ => bail!("HTTP {status}"),
            }
        }
        Ok(resp)
    }

    fn text(&self, rb: RequestBuilder) -> anyhow::Result<String> {
        Ok(self.send(rb)?.text()?)
    }

    /// Every object (and, with a delimiter, common prefix) under `prefix`, following
    /// continuation tokens.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> anyhow::Result<(Vec<Value>, Vec<String>)> {
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(d) = delimiter {
                q.push(("delimiter".into(), d.into()));
            }
            if let Some(t) = &token {
                q.push(("continuation-token".into(), t.clone()));
            }
            let xml = self.text(self.request(Method::GET, bucket, "", &q, false))?;
            for c in blocks(&xml, "Contents") {
                objects.push(json!({
                    "key": tag(c, "Key").unwrap_or_default(),
                    "size": tag(c, "Size").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
                    "lastModified": tag(c, "LastModified").unwrap_or_default(),
                    "etag": tag(c, "ETag").unwrap_or_default().trim_matches('"'),
                }));
            }
            for p in blocks(&xml, "CommonPrefixes") {
                if let Some(p) = tag(p, "Prefix") {
                    prefixes.push(p);
                }
            }
            token = tag(&xml, "NextContinuationToken").filter(|t| !t.is_empty());
            if tag(&xml, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                return Ok((objects, prefixes));
            }
        }
    }

    /// Fails with the store's answer when `bucket` cannot take uploads. An upload into a missing
    /// bucket is refused before its body is read, and the client then reports only that the
    /// connection closed mid-body: asking first says why.
    fn check_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let q = [
            ("list-type".to_string(), "2".to_string()),
            ("max-keys".to_string(), "0".to_string()),
        ];
        self.send(self.request(Method::GET, bucket, "", &q, false))
            .map(drop)
            .with_context(|| format!("cannot upload into bucket {bucket}"))
    }

    fn buckets(&self) -> anyhow::Result<Vec<Value>> {
        let xml = self.text(self.request(Method::GET, "", "", &[], false))?;
        Ok(blocks(&xml, "Bucket")
            .into_iter()
            .map(|b| {
                json!({
                    "name": tag(b, "Name").unwrap_or_default(),
                    "creationDate": tag(b, "CreationDate").unwrap_or_default(),
                })
            })
            .collect())
    }

    fn put_file(&self, path: &Path, u: &Url, progress: bool) -> anyhow::Result<u64> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = f.metadata()?.len();
        let bar = bar(len, progress, &u.key);
        let reader = Progress {
            inner: f,
            bar: bar.clone(),
        };
        self.send(
            self.request(Method::PUT, &u.bucket, &u.key, &[], true)
                .header("content-length", len)
                .body(Body::sized(reader, len)),
        )
        .with_context(|| {
            format!(
                "cannot upload {} to oss://{}/{}",
                path.display(),
                u.bucket,
                u.key
            )
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(len)
    }

    /// Downloads into a temporary file beside `path` and renames it over `path` at the end, so
    /// a failed download leaves no half-written file under the wanted name.
    fn get_file(&self, u: &Url, path: &Path, progress: bool) -> anyhow::Result<u64> {
        let mut resp = self
            .send(self.request(Method::GET, &u.bucket, &u.key, &[], false))
            .with_context(|| format!("cannot download oss://{}/{}", u.bucket, u.key))?;
        let len = resp.content_length().unwrap_or(0);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = tmp_beside(path);
        let bar = bar(len, progress, &u.key);
        let result = (|| -> anyhow::Result<u64> {
            let mut out =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut buf = vec![0u8; 256 << 10];
            let mut total = 0u64;
            loop {
                let n = resp.read(&mut buf).context("download interrupted")?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                total += n as u64;
                if let Some(b) = &bar {
                    b.inc(n as u64);
                }
            }
            if len != 0 && total != len {
                bail!(
                    "download of oss://{}/{} ended at {total} of {len} bytes",
                    u.bucket,
                    u.key
                );
            }
            out.sync_all()?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(total)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        result
    }
}

fn tmp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.fnbridge-{}.part", std::process::id()))
}

/// A progress bar on standard error for a transfer of `len` bytes, when wanted and large
/// enough to be worth drawing; indicatif draws nothing when standard error is not a terminal.
fn bar(len: u64, progress: bool, what: &str) -> Option<indicatif::ProgressBar> {
    if !progress || len < PROGRESS_MIN_BYTES {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    Some(b)
}

/// A reader that advances a progress bar as the upload reads it.
struct Progress<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

/// The CLI's own access key: read from the data directory when it is still a key of the
/// server, else created with the admin token and written there (0600).
fn cli_key(g: &Global) -> anyhow::Result<(String, String)> {
    let c = Client::new(g)?;
    let path = g.data_dir.join(KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let (Some(ak), Some(sk)) = (v["accessKeyId"].as_str(), v["accessKeySecret"].as_str())
    {
        // A kept key outlives nothing: a server started afresh in this directory, or a
        // `key delete`, leaves it unknown, so check it is still listed before signing with it.
        let keys = c.json(c.request(Method::GET, "/keys"))?;
        let listed = keys["accessKeys"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["accessKeyId"].as_str() == Some(ak));
        if listed {
            return Ok((ak.to_string(), sk.to_string()));
        }
    }
    let v = c.json(
        c.request(Method::POST, "/keys")
            .json(&json!({"description": "fnbridge CLI (bucket, cp, ls, rm)"})),
    )?;
    let (Some(ak), Some(sk)) = (v["accessKeyId"].as_str(), v["accessKeySecret"].as_str()) else {
        bail!("the server's POST /keys answer has no accessKeyId/accessKeySecret");
    };
    let body = serde_json::to_string(&json!({"accessKeyId": ak, "accessKeySecret": sk}))?;
    if let Err(e) = write_private(&path, body.as_bytes()) {
        // Still usable for this command; the next one makes another key.
        eprintln!(
            "fnbridge: cannot keep the CLI's access key in {}: {e:#}",
            path.display()
        );
    }
    Ok((ak.to_string(), sk.to_string()))
}

/// Writes a secret readable by its owner only: created 0600, never widened.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = tmp_beside(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub fn bucket(o: &OssGlobal, cmd: BucketCmd) -> anyhow::Result<i32> {
    let s = Oss::new(o)?;
    let g = &o.global;
    match cmd {
        BucketCmd::Create { name } => {
            let b = bucket_name(&name)?;
            s.send(s.request(Method::PUT, &b, "", &[], false))?;
            if g.json {
                output::json(&json!({"name": b, "created": true}));
            } else {
                outln!("created bucket {b}");
            }
        }
        BucketCmd::List => print_buckets(g, &s.buckets()?),
        BucketCmd::Delete { name } => {
            let b = bucket_name(&name)?;
            s.send(s.request(Method::DELETE, &b, "", &[], false))?;
            if g.json {
                output::json(&json!({"name": b, "deleted": true}));
            } else {
                outln!("deleted bucket {b}");
            }
        }
    }
    Ok(0)
}

fn print_buckets(g: &Global, list: &[Value]) {
    if g.json {
        output::json(&json!({ "buckets": list }));
    } else {
        output::table(
            &["NAME", "CREATED"],
            &output::rows(list, &["name", "creationDate"]),
        );
    }
}

pub fn ls(a: &LsArgs) -> anyhow::Result<i32> {
    let s = Oss::new(&a.oss)?;
    let g = &a.oss.global;
    let Some(url) = &a.url else {
        print_buckets(g, &s.buckets()?);
        return Ok(0);
    };
    let u = url_or_fail(url)?;
    let (objects, prefixes) = s.list(&u.bucket, &u.key, (!a.recursive).then_some("/"))?;
    if g.json {
        output::json(&json!({ "objects": objects, "prefixes": prefixes }));
    } else {
        let mut rows: Vec<Vec<String>> = prefixes
            .iter()
            .map(|p| vec!["PRE".into(), "-".into(), p.clone()])
            .collect();
        rows.extend(objects.iter().map(|o| {
            vec![
                output::cell(o, "lastModified"),
                output::cell(o, "size"),
                output::cell(o, "key"),
            ]
        }));
        output::table(&["MODIFIED", "SIZE", "KEY"], &rows);
    }
    Ok(0)
}

pub fn rm(a: &RmArgs) -> anyhow::Result<i32> {
    let s = Oss::new(&a.oss)?;
    let g = &a.oss.global;
    let u = url_or_fail(&a.url)?;
    let keys: Vec<String> = if a.recursive {
        s.list(&u.bucket, &u.key, None)?
            .0
            .iter()
            .filter_map(|o| o["key"].as_str().map(str::to_string))
            .collect()
    } else {
        if u.key.is_empty() {
            bail!(
                "'{}' names a bucket: use `fnbridge bucket delete` or rm --recursive",
                a.url
            );
        }
        vec![u.key.clone()]
    };
    for k in &keys {
        s.send(s.request(Method::DELETE, &u.bucket, k, &[], false))?;
        if !g.json {
            outln!("deleted oss://{}/{k}", u.bucket);
        }
    }
    if g.json {
        output::json(&json!({"bucket": u.bucket, "deleted": keys}));
    }
    Ok(0)
}

pub fn cp(a: &CpArgs) -> anyhow::Result<i32> {
    let s = Oss::new(&a.oss)?;
    let g = &a.oss.global;
    let progress = !a.no_progress && !g.json;
    let mut copied: Vec<Value> = Vec::new();
    match (parse_url(&a.from), parse_url(&a.to)) {
        (Some(from), Some(to)) => {
            s.check_bucket(&to.bucket)?;
            if a.recursive {
                let prefix = &from.key;
                let base = if to.key.is_empty() || to.key.ends_with('/') {
                    to.key.clone()
                } else {
                    format!("{}/", to.key)
                };
                for o in s.list(&from.bucket, prefix, None)?.0 {
                    let Some(k) = o["key"].as_str() else { continue };
                    let rel = k
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(k)
                        .trim_start_matches('/');
                    let src = Url {
                        bucket: from.bucket.clone(),
                        key: k.to_string(),
                    };
                    let dest = Url {
                        bucket: to.bucket.clone(),
                        key: format!("{base}{rel}"),
                    };
                    let n = s.copy(&src, &dest)?;
                    copied.push(copy_done(g, &src, &dest, n));
                }
            } else {
                if from.key.is_empty() {
                    bail!("'{}' names a bucket: add --recursive", a.from);
                }
                let mut dest = to.clone();
                if dest.key.is_empty() || dest.key.ends_with('/') {
                    dest.key
                        .push_str(from.key.rsplit('/').next().unwrap_or(&from.key));
                }
                let n = s.copy(&from, &dest)?;
                copied.push(copy_done(g, &from, &dest, n));
            }
        }
        (None, None) => bail!("one of the two paths must be an oss://bucket/key URL"),
        (None, Some(to)) => {
            let from = Path::new(&a.from);
            s.check_bucket(&to.bucket)?;
            if a.recursive {
                let mut files = Vec::new();
                walk(from, &mut files)?;
                let base = if to.key.is_empty() || to.key.ends_with('/') {
                    to.key.clone()
                } else {
                    format!("{}/", to.key)
                };
                for f in files {
                    let rel = f.strip_prefix(from).unwrap_or(&f);
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    let dest = Url {
                        bucket: to.bucket.clone(),
                        key: format!("{base}{rel}"),
                    };
                    let n = s.put_file(&f, &dest, progress)?;
                    copied.push(done(g, &f.display().to_string(), &dest, n, true));
                }
            } else {
                if from.is_dir() {
                    bail!("{} is a directory: add --recursive", from.display());
                }
                let mut dest = to.clone();
                if dest.key.is_empty() || dest.key.ends_with('/') {
                    let name = from
                        .file_name()
                        .with_context(|| format!("{} names no file", from.display()))?;
                    dest.key.push_str(&name.to_string_lossy());
                }
                let n = s.put_file(from, &dest, progress)?;
                copied.push(done(g, &a.from, &dest, n, true));
            }
        }
        (Some(from), None) => {
            let to = Path::new(&a.to);
            if a.recursive {
                let prefix = &from.key;
                for o in s.list(&from.bucket, prefix, None)?.0 {
                    let Some(k) = o["key"].as_str() else { continue };
                    let rel = k
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(k)
                        .trim_start_matches('/');
                    let Some(local) = safe_join(to, rel) else {
                        eprintln!(
                            "fnbridge: skipped oss://{}/{k}: its name does not make a path under {}",
                            from.bucket,
                            to.display()
                        );
                        continue;
                    };
                    let src = Url {
                        bucket: from.bucket.clone(),
                        key: k.to_string(),
                    };
                    let n = s.get_file(&src, &local, progress)?;
                    copied.push(done(g, &local.display().to_string(), &src, n, false));
                }
            } else {
                if from.key.is_empty() {
                    bail!("'{}' names a bucket: add --recursive", a.from);
                }
                let local = if to.is_dir() || a.to.ends_with('/') {
                    let name = from.key.rsplit('/').next().unwrap_or(&from.key);
                    safe_join(to, name)
                        .with_context(|| format!("'{}' does not make a file name", from.key))?
                } else {
                    to.to_path_buf()
                };
                let n = s.get_file(&from, &local, progress)?;
                copied.push(done(g, &local.display().to_string(), &from, n, false));
            }
        }
    }
    if g.json {
        output::json(&json!({ "copied": copied }));
    }
    Ok(0)
}

/// Prints one server-side copy for people, returns it for `--json`.
fn copy_done(g: &Global, from: &Url, to: &Url, bytes: u64) -> Value {
    let (from, to) = (
        format!("oss://{}/{}", from.bucket, from.key),
        format!("oss://{}/{}", to.bucket, to.key),
    );
    if !g.json {
        outln!("copy: {from} -> {to} ({bytes} bytes)");
    }
    json!({"from": from, "to": to, "bytes": bytes})
}

/// Prints one copy for people, returns it for `--json`.
fn done(g: &Global, local: &str, u: &Url, bytes: u64, upload: bool) -> Value {
    let remote = format!("oss://{}/{}", u.bucket, u.key);
    if !g.json {
        if upload {
            outln!("upload: {local} -> {remote} ({bytes} bytes)");
        } else {
            outln!("download: {remote} -> {local} ({bytes} bytes)");
        }
    }
    let (from, to) = if upload {
        (local.to_string(), remote)
    } else {
        (remote, local.to_string())
    };
    json!({"from": from, "to": to, "bytes": bytes})
}

/// `dir/rel`, or `None` when `rel` would climb out of `dir` (`..`, an absolute path) or is
/// empty: object keys are not trusted to name local paths.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    let mut any = false;
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => {
                out.push(p);
                any = true;
            }
        }
    }
    any.then_some(out)
}

/// Every regular file under `dir`, depth first, in name order.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("oss://b/a/b c"),
            Some(Url {
                bucket: "b".into(),
                key: "a/b c".into()
            })
        );
        assert_eq!(parse_url("oss://b").map(|u| u.key), Some(String::new()));
        assert_eq!(parse_url("oss:///k"), None);
        assert_eq!(parse_url("/tmp/x"), None);
    }

    #[test]
    fn keys_do_not_climb_out() {
        let d = Path::new("/tmp/d");
        assert_eq!(safe_join(d, "a/../../x"), None);
        assert_eq!(safe_join(d, "/a//b"), Some(PathBuf::from("/tmp/d/a/b")));
        assert_eq!(safe_join(d, ""), None);
    }

    /// The example of the AWS SigV4 documentation (GET object with a range, header signing).
    #[test]
    fn sigv4_matches_aws_example() {
        let auth = sigv4(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            &[],
            EMPTY_SHA256,
            "20130524T000000Z",
        );
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        ));
    }
}
