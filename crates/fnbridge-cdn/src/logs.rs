//! Offline logs (cdn.md §7): every edge request one line in the 13-field format, appended to a
//! local file per domain and period before the request is answered (so a line of any answered
//! request survives `kill -9`) and fsynced per batch by a background thread (so the line is on
//! disk shortly after, without the request waiting for it); when the period has closed, the
//! file is gzipped, stored in the log bucket under `{domain}/{YYYY_MM_DD}/{name}` (Beijing
//! time), its object row committed in one transaction with `LogFileCreated` (presigned
//! `filePath`). A restart finishes every file of a closed period it finds; a period without
//! requests has no file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::error::CdnError;
use crate::events;
use crate::service::Cdn;

/// Where and how offline logs are written.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Local directory of the files still being written.
    pub dir: PathBuf,
    /// Length of a period in seconds (3600: hourly files).
    pub period_s: i64,
    /// The object-store bucket the files go to.
    pub bucket: String,
    /// Base URL of the object store for presigned URLs (`http://127.0.0.1:9001`).
    pub oss_endpoint: String,
    /// The access key presigned URLs are signed with, and its secret.
    pub access_key_id: String,
    pub access_key_secret: String,
    /// How long a presigned URL is valid.
    pub url_validity: Duration,
}

/// Appends lines to the local file of their domain and period. `write` returns once the line
/// is in the file (written, so it survives a crash of the process); a background thread fsyncs
/// the files written since its last pass, so each batch of lines is durable on disk shortly
/// after (one fsync per file per batch, whatever the request rate).
#[derive(Clone)]
pub struct LogSender {
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    period: i64,
    /// Open files by (domain, period start), and the ones written since the last fsync pass.
    files: std::sync::Mutex<Files>,
    /// Set by the first write after an fsync pass, which then wakes the syncer (one wake per
    /// batch, not per line).
    pending: std::sync::atomic::AtomicBool,
    wake: std::sync::Condvar,
    wake_lock: std::sync::Mutex<()>,
}

#[derive(Default)]
struct Files {
    open: HashMap<(String, i64), std::sync::Arc<std::fs::File>>,
    dirty: Vec<std::sync::Arc<std::fs::File>>,
}

impl LogSender {
    /// Appends `text` (one line, without its newline) for `domain` at `end_ms`.
    pub fn write(&self, domain: &str, end_ms: i64, text: &str) {
        use std::sync::atomic::Ordering;
        let sh = &*self.shared;
        let now_s = fnbridge_store::now_ms() / 1000;
        let end_s = end_ms / 1000;
        let mut start = end_s - end_s.rem_euclid(sh.period);
        // A line written after its period ended goes to the current file: the closer may be
        // reading the old one (it waits a further second, so this check always wins the race).
        if start + sh.period <= now_s {
            start = now_s - now_s.rem_euclid(sh.period);
        }
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        {
            let mut files = sh.files.lock().unwrap_or_else(|p| p.into_inner());
            let key = (domain.to_string(), start);
            let f = match files.open.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let path = local_file(&sh.dir, domain, start);
                    match std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                    {
                        Ok(f) => {
                            let f = std::sync::Arc::new(f);
                            // Files of closed periods are finished by the closer: stop
                            // holding them.
                            let period = sh.period;
                            files.open.retain(|(_, s), _| s + period > now_s - 1);
                            files.open.insert(key, f.clone());
                            f
                        }
                        Err(e) => {
                            tracing::error!(error = %e, path = %path.display(), "cdn: cannot open a log file");
                            return;
                        }
                    }
                }
            };
            // One write(2) of the whole line to an O_APPEND file: lines never interleave.
            if let Err(e) = (&*f).write_all(&line) {
                tracing::error!(error = %e, "cdn: cannot write a log line");
                return;
            }
            if !files.dirty.iter().any(|d| std::sync::Arc::ptr_eq(d, &f)) {
                files.dirty.push(f);
            }
        }
        if !sh.pending.swap(true, Ordering::AcqRel) {
            let _g = sh.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
            sh.wake.notify_one();
        }
    }
}

/// `[9/Jun/2015:01:58:09 +0800]`.
pub fn log_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    let f = time::macros::format_description!(
        "[day padding:none]/[month repr:short]/[year]:[hour]:[minute]:[second] +0800"
    );
    format!("[{}]", t.format(&f).unwrap_or_default())
}

/// Appends a field for a quoted position: `-` when empty, quotes and line breaks left out.
fn push_quoted(out: &mut String, s: Option<&str>) {
    out.push('"');
    match s.filter(|s| !s.is_empty()) {
        Some(s) => out.extend(s.chars().filter(|c| !matches!(c, '"' | '\n' | '\r'))),
        None => out.push('-'),
    }
    out.push('"');
}

/// What a request and its answer contribute to a line.
pub struct Request<'a> {
    pub end_ms: i64,
    pub forwarded_for: Option<&'a str>,
    pub remote_ip: std::net::IpAddr,
    pub response_ms: u64,
    pub referer: Option<&'a str>,
    pub method: &'a str,
    /// `http://{host}`, then `path`: the requested URL.
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub request_size: u64,
    pub response_size: u64,
    pub hit: bool,
    pub user_agent: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

thread_local! {
    /// The last second `log_time` formatted, and its text: lines of one second share it.
    static LAST_TIME: std::cell::RefCell<(i64, String)> =
        const { std::cell::RefCell::new((i64::MIN, String::new())) };
}

/// The 13 fields of cdn.md §7.1, built in one buffer.
pub fn format_line(r: &Request<'_>) -> String {
    use std::fmt::Write as _;
    let mut xff = r
        .forwarded_for
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.contains(' '));
    let mut out = String::with_capacity(256);
    LAST_TIME.with(|t| {
        let mut t = t.borrow_mut();
        let sec = r.end_ms.div_euclid(1000);
        if t.0 != sec {
            *t = (sec, log_time(r.end_ms));
        }
        out.push_str(&t.1);
    });
    out.push(' ');
    match xff.next() {
        Some(c) => out.push_str(c),
        None => {
            let _ = write!(out, "{}", r.remote_ip);
        }
    }
    out.push(' ');
    out.push_str(xff.next().unwrap_or("-"));
    let _ = write!(out, " {} ", r.response_ms);
    push_quoted(&mut out, r.referer);
    let _ = write!(out, " \"{} http://{}", r.method, r.host);
    out.extend(r.path.chars().filter(|c| !matches!(c, '"' | ' ')));
    let _ = write!(
        out,
        "\" {} {} {} {} ",
        r.status,
        r.request_size,
        r.response_size,
        if r.hit { "HIT" } else { "MISS" }
    );
    push_quoted(&mut out, r.user_agent);
    out.push(' ');
    push_quoted(&mut out, r.content_type);
    let _ = write!(out, " {}", r.remote_ip);
    out
}

/// Beijing-time parts of Unix seconds.
fn bj(s: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(s)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8))
}

/// The object key of a domain's file for `[start, end)`:
/// `{domain}/{YYYY_MM_DD}/{domain}_{YYYY}_{MM}_{DD}_{HHMMSS}_{HHMMSS}.gz`, Beijing time.
pub fn object_key(domain: &str, start_s: i64, end_s: i64) -> (String, String) {
    let s = bj(start_s);
    let e = bj(end_s);
    let day = format!("{:04}_{:02}_{:02}", s.year(), s.month() as u8, s.day());
    let name = format!(
        "{domain}_{day}_{:02}{:02}{:02}_{:02}{:02}{:02}.gz",
        s.hour(),
        s.minute(),
        s.second(),
        e.hour(),
        e.minute(),
        e.second()
    );
    (format!("{domain}/{day}/{name}"), name)
}

/// Percent-encodes what a URL query value needs.
fn pe(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl LogConfig {
    /// A presigned OSS V1 GET URL of `key` in the log bucket, path style, slashes unescaped.
    pub fn presign(&self, key: &str, now_s: i64) -> String {
        let expires = now_s + self.url_validity.as_secs() as i64;
        let to_sign = format!("GET\n\n\n{expires}\n/{}/{key}", self.bucket);
        let sig = fnbridge_objectstore::sig::oss_v1::sign(&self.access_key_secret, &to_sign);
        let path: String = key.split('/').map(pe).collect::<Vec<_>>().join("/");
        format!(
            "{}/{}/{path}?OSSAccessKeyId={}&Expires={expires}&Signature={}",
            self.oss_endpoint.trim_end_matches('/'),
            self.bucket,
            pe(&self.access_key_id),
            pe(&sig)
        )
    }
}

/// The local file of `domain`'s period starting at `start_s`.
fn local_file(dir: &Path, domain: &str, start_s: i64) -> PathBuf {
    dir.join(format!("{domain}@{start_s}.log"))
}

/// Starts the syncer and the closer; returns the sender the edge writes through.
pub fn start(cdn: Cdn, cfg: LogConfig) -> std::io::Result<LogSender> {
    std::fs::create_dir_all(&cfg.dir)?;
    let shared = std::sync::Arc::new(Shared {
        dir: cfg.dir.clone(),
        period: cfg.period_s.max(1),
        files: Default::default(),
        pending: Default::default(),
        wake: Default::default(),
        wake_lock: Default::default(),
    });
    let sh = shared.clone();
    std::thread::Builder::new()
        .name("cdn-log-sync".into())
        .spawn(move || syncer(&sh))?;
    tokio::spawn(closer(cdn, cfg));
    Ok(LogSender { shared })
}

/// How long the syncer gathers writes before an fsync pass: a line is on disk at most about
/// this long (plus the fsync) after its request was answered.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// Fsyncs the files written since its last pass, one pass per batch of writes. A blocking
/// thread: fsyncs would stall the runtime's workers.
fn syncer(sh: &Shared) {
    use std::sync::atomic::Ordering;
    loop {
        {
            let mut g = sh.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
            while !sh.pending.load(Ordering::Acquire) {
                g = sh.wake.wait(g).unwrap_or_else(|p| p.into_inner());
            }
        }
        // Gather the batch: lines written in the next moment share this pass's fsync (one
        // pass per SYNC_EVERY at most, however many requests).
        std::thread::sleep(SYNC_EVERY);
        // Writes from here on wake the next pass.
        sh.pending.store(false, Ordering::Release);
        let dirty = std::mem::take(&mut sh.files.lock().unwrap_or_else(|p| p.into_inner()).dirty);
        for f in dirty {
            if let Err(e) = f.sync_data() {
                tracing::error!(error = %e, "cdn: log fsync failed");
            }
        }
    }
}

fn period_start(p: &Path) -> Option<i64> {
    let name = p.file_name()?.to_str()?;
    let (_, rest) = name.rsplit_once('@')?;
    rest.strip_suffix(".log")?.parse().ok()
}

/// Finishes files whose period has closed (and some slack for lines still in flight), once
/// a second, and at start for what a previous run left.
async fn closer(cdn: Cdn, cfg: LogConfig) {
    let period = cfg.period_s.max(1);
    let mut tick =
        tokio::time::interval(Duration::from_secs(1).min(Duration::from_secs(period as u64)));
    loop {
        tick.tick().await;
        let now_s = fnbridge_store::now_ms() / 1000;
        let Ok(mut rd) = tokio::fs::read_dir(&cfg.dir).await else {
            continue;
        };
        let mut due = Vec::new();
        while let Ok(Some(e)) = rd.next_entry().await {
            let p = e.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let Some((domain, _)) = name.rsplit_once('@') else {
                continue;
            };
            if let Some(start) = period_start(&p)
                && start + period + 1 < now_s
            {
                due.push((p.clone(), domain.to_string(), start));
            }
        }
        due.sort_by_key(|(_, _, s)| *s);
        for (p, domain, start) in due {
            if let Err(e) = finish(&cdn, &cfg, &p, &domain, start, start + period).await {
                tracing::warn!(error = %e, file = %p.display(), "cdn: cannot finish a log file; retrying");
            }
        }
    }
}

/// Whether a bucket creation failed only because the bucket exists.
fn objects_exists(e: &fnbridge_objectstore::ObjError) -> bool {
    e.code == fnbridge_objectstore::Code::BucketAlreadyExists
}

/// Gzips a closed period's file into the log bucket, its object and `LogFileCreated` committed
/// together, then removes the local file.
async fn finish(
    cdn: &Cdn,
    cfg: &LogConfig,
    path: &Path,
    domain: &str,
    start_s: i64,
    end_s: i64,
) -> Result<(), CdnError> {
    let raw = tokio::fs::read(path).await.map_err(CdnError::internal)?;
    if raw.is_empty() {
        let _ = tokio::fs::remove_file(path).await;
        return Ok(());
    }
    let gz = tokio::task::spawn_blocking(move || {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&raw)?;
        e.finish()
    })
    .await
    .map_err(CdnError::internal)?
    .map_err(CdnError::internal)?;
    let size = gz.len() as u64;
    let (key, _) = object_key(domain, start_s, end_s);
    let objects = &cdn.inner.objects;
    // The log bucket is made with the first log file, not at start: a server that never logs
    // has no bucket the user did not ask for.
    if objects.bucket(&cfg.bucket).await.is_err() {
        objects
            .create_bucket(&cfg.bucket)
            .await
            .or_else(|e| {
                // Made concurrently by another closer: fine.
                if objects_exists(&e) { Ok(()) } else { Err(e) }
            })
            .map_err(|e| CdnError::internal(format!("log bucket '{}': {e}", cfg.bucket)))?;
    }
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(gz)) });
    let w = objects
        .write_data(&cfg.bucket, &key, body, u64::MAX, Default::default())
        .await
        .map_err(|e| CdnError::internal(format!("log bucket: {e}")))?;
    let ctx = fnbridge_objectstore::store::ReqCtx {
        request_id: events::uuid(),
        source_ip: "127.0.0.1".into(),
    };
    let meta = fnbridge_objectstore::store::PutMeta {
        content_type: Some("application/gzip".into()),
        meta: vec![
            ("cdn-start".into(), start_s.to_string()),
            ("cdn-end".into(), end_s.to_string()),
        ],
    };
    let now_s = fnbridge_store::now_ms() / 1000;
    let ev = events::event(
        &cdn.inner.cfg.identity,
        "LogFileCreated",
        domain,
        json!({"domain": domain, "startTime": start_s, "endTime": end_s, "fileSize": size,
               "filePath": cfg.presign(&key, now_s)}),
        now_s,
    );
    // The object row and LogFileCreated in one transaction: no file without its event, no
    // event naming a file that is not there.
    objects
        .commit_put_with_events(
            &cfg.bucket,
            &key,
            w,
            meta,
            fnbridge_objectstore::events::Op::Put,
            fnbridge_store::objects::ObjectKind::Normal,
            &ctx,
            events::with_cloud_events(&cdn.inner.cfg.identity, vec![ev], now_s * 1000),
        )
        .await
        .map_err(|e| CdnError::internal(format!("log bucket: {e}")))?;
    // Only now: a crash before this line finishes the file again (same key, the event again).
    tokio::fs::remove_file(path)
        .await
        .map_err(CdnError::internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_names() {
        let l = format_line(&Request {
            end_ms: 1_433_786_289_000,
            forwarded_for: Some("10.10.10.10, 2.2.2.2"),
            remote_ip: "1.1.1.1".parse().unwrap(),
            response_ms: 1542,
            referer: None,
            method: "GET",
            host: "www.aliyun.com",
            path: "/index.html",
            status: 200,
            request_size: 191,
            response_size: 2830,
            hit: false,
            user_agent: Some("Mozilla/5.0"),
            content_type: Some("text/html"),
        });
        assert_eq!(
            l,
            "[9/Jun/2015:01:58:09 +0800] 10.10.10.10 2.2.2.2 1542 \"-\" \"GET http://www.aliyun.com/index.html\" 200 191 2830 MISS \"Mozilla/5.0\" \"text/html\" 1.1.1.1"
        );
        // 2018-10-29T16:00:00Z is 2018-10-30 00:00 in Beijing.
        let (key, name) = object_key("aliyundoc.com", 1_540_828_800, 1_540_832_400);
        assert_eq!(name, "aliyundoc.com_2018_10_30_000000_010000.gz");
        assert_eq!(
            key,
            "aliyundoc.com/2018_10_30/aliyundoc.com_2018_10_30_000000_010000.gz"
        );
    }

    #[test]
    fn presigned_like_oss2() {
        let cfg = LogConfig {
            dir: PathBuf::new(),
            period_s: 3600,
            bucket: "cdnlog".into(),
            oss_endpoint: "http://127.0.0.1:9000".into(),
            access_key_id: "testak".into(),
            access_key_secret: "secret".into(),
            url_validity: Duration::from_secs(0),
        };
        let u = cfg.presign(
            "example.com/2026_11_22/example.com_2026_11_22_090000_100000.gz",
            1795348800,
        );
        assert!(u.starts_with("http://127.0.0.1:9000/cdnlog/example.com/2026_11_22/example.com_2026_11_22_090000_100000.gz?OSSAccessKeyId=testak&Expires=1795348800&Signature="), "{u}");
    }
}
