//! The caching edge: one listener for every domain, routed by `Host`. A request for an online
//! domain is served from the memory cache when fresh (`X-Cache: HIT`), else fetched from the
//! origin (`MISS`; concurrent misses of one URL share one fetch), revalidated with the origin's
//! validators when stale. Stopped or unknown domains and blocked URLs get 403.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::io::AsyncReadExt;

use crate::cache::Cached;
use crate::domain::Origin;
use crate::service::{Cdn, LiveDomain, Url};

pub type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

/// Why a fetched response is not in the cache: served to the callers that waited for it.
#[derive(Debug)]
pub enum NotCached {
    /// Not cacheable (an error status, `no-store`, …) but small: served as is.
    Response(Arc<Cached>),
    /// A bucket object above the cacheable size: each caller streams it.
    Large,
    /// The origin failed.
    Failed(String),
}

fn now_ms() -> i64 {
    fnbridge_store::now_ms()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).unwrap_or_default()
}

fn parse_http_date(s: &str) -> Option<i64> {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &f)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp() * 1000)
}

/// Freshness lifetime in ms from `Cache-Control`/`Expires`; `None` when not cacheable.
pub fn ttl_ms(
    cache_control: Option<&str>,
    expires: Option<&str>,
    default: Duration,
) -> Option<i64> {
    if let Some(cc) = cache_control {
        let mut max_age = None;
        let mut s_maxage = None;
        for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            match d.as_str() {
                "no-store" | "private" | "no-cache" => return None,
                _ => {}
            }
            if let Some(v) = d.strip_prefix("s-maxage=") {
                s_maxage = v.trim_matches('"').parse::<i64>().ok();
            } else if let Some(v) = d.strip_prefix("max-age=") {
                max_age = v.trim_matches('"').parse::<i64>().ok();
            }
        }
        if let Some(s) = s_maxage.or(max_age) {
            return Some(s.max(0).saturating_mul(1000));
        }
    }
    if let Some(e) = expires {
        // An unparsable Expires means already expired (RFC 9111 §5.3).
        return Some(
            parse_http_date(e)
                .map(|t| (t - now_ms()).max(0))
                .unwrap_or(0),
        );
    }
    Some(default.as_millis() as i64)
}

/// The object key a path names in a bucket origin.
fn object_key(path: &str) -> String {
    let p = path.strip_prefix('/').unwrap_or(path);
    percent_encoding::percent_decode_str(p)
        .decode_utf8_lossy()
        .into_owned()
}

/// What revalidation has to go on.
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

enum Fetch {
    Fresh(Arc<Cached>),
    NotModified,
}

/// Fetches `u` from `d`'s origin. With validators, answers `NotModified` when they still hold.
async fn fetch(
    cdn: &Cdn,
    d: &LiveDomain,
    u: &Url,
    v: Option<Validators>,
) -> Result<Fetch, NotCached> {
    let cfg = &cdn.inner.cfg;
    match &d.origin {
        Origin::Bucket(bucket) => {
            let key = object_key(&u.path);
            let rec = match cdn.inner.objects.head(bucket, &key).await {
                Ok(r) => r,
                Err(e) if e.code == fnbridge_objectstore::Code::NoSuchKey => {
                    return Err(NotCached::Response(error_entry(404, "not found\n")));
                }
                Err(e) => return Err(NotCached::Failed(e.to_string())),
            };
            let etag = format!("\"{}\"", rec.etag);
            if let Some(v) = &v
                && v.etag.as_deref() == Some(etag.as_str())
            {
                return Ok(Fetch::NotModified);
            }
            if rec.size > cfg.max_object {
                return Err(NotCached::Large);
            }
            let (rec, mut file) = cdn
                .inner
                .objects
                .open_object(bucket, &key)
                .await
                .map_err(|e| NotCached::Failed(e.to_string()))?;
            let mut buf = Vec::with_capacity(rec.size as usize);
            (&mut file)
                .take(cfg.max_object + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| NotCached::Failed(e.to_string()))?;
            Ok(Fetch::Fresh(Arc::new(Cached {
                status: 200,
                content_type: Some(rec.content_type.clone()),
                etag: Some(format!("\"{}\"", rec.etag)),
                last_modified: Some(http_date(rec.modified_ms)),
                cache_control: None,
                body: Bytes::from(buf),
                expires_ms: AtomicI64::new(now_ms() + cfg.default_ttl.as_millis() as i64),
                header_values: Default::default(),
                hit: std::sync::atomic::AtomicBool::new(false),
            })))
        }
        Origin::Http { host, port } => {
            let uri = match &u.query {
                Some(q) => format!("http://{host}:{port}{}?{q}", u.path),
                None => format!("http://{host}:{port}{}", u.path),
            };
            let mut req = Request::get(uri).header(header::HOST, u.domain.as_str());
            if let Some(v) = &v {
                if let Some(e) = &v.etag {
                    req = req.header(header::IF_NONE_MATCH, e.as_str());
                }
                if let Some(m) = &v.last_modified {
                    req = req.header(header::IF_MODIFIED_SINCE, m.as_str());
                }
            }
            let req = req
                .body(http_body_util::Empty::new())
                .map_err(|e| NotCached::Failed(format!("origin request: {e}")))?;
            // The whole exchange, body included, within the origin timeout (as reqwest's).
            match tokio::time::timeout(cfg.origin_timeout, fetch_http(cdn, req, v.is_some())).await
            {
                Ok(r) => r,
                Err(_) => Err(NotCached::Failed("the origin timed out".into())),
            }
        }
    }
}

/// The HTTP client of the miss path.
pub(crate) type OriginClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<Bytes>,
>;

/// A pooled keep-alive HTTP/1 client (no redirects followed, Nagle off), connecting within
/// `timeout`.
pub(crate) fn origin_client(timeout: Duration) -> OriginClient {
    let mut c = hyper_util::client::legacy::connect::HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(timeout));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(c)
}

/// Sends a GET to an HTTP origin and reads its answer into an entry (`validating`: the
/// request carries validators, so 304 means they hold).
async fn fetch_http(
    cdn: &Cdn,
    req: Request<http_body_util::Empty<Bytes>>,
    validating: bool,
) -> Result<Fetch, NotCached> {
    let cfg = &cdn.inner.cfg;
    let resp = cdn
        .inner
        .origin
        .request(req)
        .await
        .map_err(|e| NotCached::Failed(e.to_string()))?;
    if resp.status() == StatusCode::NOT_MODIFIED && validating {
        return Ok(Fetch::NotModified);
    }
    let h = |n: header::HeaderName| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (ct, etag, lm, cc, exp) = (
        h(header::CONTENT_TYPE),
        h(header::ETAG),
        h(header::LAST_MODIFIED),
        h(header::CACHE_CONTROL),
        h(header::EXPIRES),
    );
    let status = resp.status().as_u16();
    let content_length = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Too large to cache, and the origin said so up front: each request streams it
    // (`pass_through_http`, with its Range). A body that only turns out too large
    // while it is read fails below.
    if status == 200 && content_length.is_some_and(|n| n > cfg.max_object) {
        return Err(NotCached::Large);
    }
    // Sized up front from Content-Length (within the bound): no regrowth while reading.
    // The chunks are copied, not kept: they are slices of hyper's read buffer, which a
    // cached entry would pin beyond the bytes the cache's weigher counts.
    let cap = content_length.unwrap_or(0).min(cfg.max_object);
    let mut body = Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    let mut incoming = resp.into_body();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| NotCached::Failed(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if (body.len() + chunk.len()) as u64 > cfg.max_object {
            return Err(NotCached::Failed(
                "the origin's object is larger than the edge serves".into(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let ttl = ttl_ms(cc.as_deref(), exp.as_deref(), cfg.default_ttl);
    let entry = Arc::new(Cached {
        status,
        content_type: ct,
        etag,
        last_modified: lm,
        cache_control: cc,
        body: Bytes::from(body),
        expires_ms: AtomicI64::new(now_ms() + ttl.unwrap_or(0)),
        header_values: Default::default(),
        hit: std::sync::atomic::AtomicBool::new(false),
    });
    match (status, ttl) {
        (200 | 203 | 204 | 206 | 300 | 301 | 404 | 410, Some(_)) if status == 200 => {
            Ok(Fetch::Fresh(entry))
        }
        _ => Err(NotCached::Response(entry)),
    }
}

fn error_entry(status: u16, msg: &'static str) -> Arc<Cached> {
    Arc::new(Cached {
        status,
        content_type: Some("text/plain".into()),
        etag: None,
        last_modified: None,
        cache_control: None,
        body: Bytes::from_static(msg.as_bytes()),
        expires_ms: AtomicI64::new(0),
        header_values: Default::default(),
        hit: std::sync::atomic::AtomicBool::new(false),
    })
}

/// The entry for `u`, from the cache or the origin (coalesced); `true` when this call went to
/// the origin. Push uses it to fill the cache ahead of requests.
pub async fn fill(
    cdn: &Cdn,
    d: &LiveDomain,
    u: &Url,
) -> Result<(Arc<Cached>, bool), Arc<NotCached>> {
    let key = u.key();
    let cache = &cdn.inner.cache;
    if let Some(e) = cache.get(&key).await {
        if e.fresh(now_ms()) {
            return Ok((e, false));
        }
        // Stale: ask the origin whether it still holds.
        let v = Validators {
            etag: e.etag.clone(),
            last_modified: e.last_modified.clone(),
        };
        return match fetch(cdn, d, u, Some(v)).await {
            Ok(Fetch::NotModified) => {
                let ttl = ttl_ms(e.cache_control.as_deref(), None, cdn.inner.cfg.default_ttl)
                    .unwrap_or(0);
                let renewed = Arc::new(Cached {
                    status: e.status,
                    content_type: e.content_type.clone(),
                    etag: e.etag.clone(),
                    last_modified: e.last_modified.clone(),
                    cache_control: e.cache_control.clone(),
                    body: e.body.clone(),
                    expires_ms: AtomicI64::new(now_ms() + ttl),
                    header_values: Default::default(),
                    hit: std::sync::atomic::AtomicBool::new(true),
                });
                cache.insert(key, renewed.clone()).await;
                Ok((renewed, false))
            }
            Ok(Fetch::Fresh(n)) => {
                cache.insert(key, n.clone()).await;
                Ok((n, true))
            }
            Err(e) => {
                cache.remove(&key).await;
                Err(Arc::new(e))
            }
        };
    }
    cache
        .get_or_fetch(&key, async {
            match fetch(cdn, d, u, None).await {
                Ok(Fetch::Fresh(e)) => Ok(e),
                Ok(Fetch::NotModified) => Err(NotCached::Failed("unexpected 304".into())),
                Err(e) => Err(e),
            }
        })
        .await
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(full(msg.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A `Range` that no byte of the body satisfies (answered 416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single `bytes=` range resolved against `len`: `Ok(None)` for no or an unsupported range
/// (the whole body is served), `Err(Unsatisfiable)` when unsatisfiable.
pub fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse().map_err(|_| Unsatisfiable)?
        };
        if s >= len || e < s {
            return Err(Unsatisfiable);
        }
        (s, e.min(len - 1))
    };
    Ok(Some(r))
}

/// Answers from an entry: conditional GET, Range, HEAD.
fn respond(req_headers: &http::HeaderMap, head: bool, e: &Cached, hit: bool) -> Response<Body> {
    let len = e.body.len() as u64;
    let inm = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::OK);
    let mut body = e.body.clone();
    let mut content_range = None;
    if e.status == 200 && inm.is_some() && inm == e.etag.as_deref() {
        status = StatusCode::NOT_MODIFIED;
        body = Bytes::new();
    } else if e.status == 200 {
        match parse_range(
            req_headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
            len,
        ) {
            Ok(Some((s, end))) => {
                status = StatusCode::PARTIAL_CONTENT;
                body = e.body.slice(s as usize..=end as usize);
                content_range = Some(format!("bytes {s}-{end}/{len}"));
            }
            Ok(None) => {}
            Err(Unsatisfiable) => {
                let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
        }
    }
    let n = body.len();
    let mut r = Response::new(if head { full(Bytes::new()) } else { full(body) });
    *r.status_mut() = status;
    let h = r.headers_mut();
    let hv = e.header_values();
    for (name, v) in [
        (header::CONTENT_TYPE, &hv.content_type),
        (header::ETAG, &hv.etag),
        (header::LAST_MODIFIED, &hv.last_modified),
        (header::CACHE_CONTROL, &hv.cache_control),
    ] {
        if let Some(v) = v {
            h.insert(name, v.clone());
        }
    }
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    if head || status == StatusCode::NOT_MODIFIED {
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(if head { n } else { 0 }),
        );
    }
    r
}

/// Streams a bucket object too large to cache, answering `If-None-Match` (304) and a single
/// `Range` (206 from a seek into the object's file, 416 when unsatisfiable) like a cached one.
async fn pass_through(
    cdn: &Cdn,
    bucket: &str,
    u: &Url,
    req_headers: &http::HeaderMap,
    head: bool,
) -> Response<Body> {
    use tokio::io::AsyncSeekExt;
    let key = object_key(&u.path);
    let (rec, mut file) = match cdn.inner.objects.open_object(bucket, &key).await {
        Ok(x) => x,
        Err(e) => return text(StatusCode::BAD_GATEWAY, &format!("origin: {e}\n")),
    };
    let etag = format!("\"{}\"", rec.etag);
    let inm = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut status = StatusCode::OK;
    let (mut start, mut len) = (0u64, rec.size);
    let mut content_range = None;
    if inm == Some(etag.as_str()) {
        status = StatusCode::NOT_MODIFIED;
        len = 0;
    } else {
        match parse_range(
            req_headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
            rec.size,
        ) {
            Ok(Some((s, e))) => {
                status = StatusCode::PARTIAL_CONTENT;
                (start, len) = (s, e - s + 1);
                content_range = Some(format!("bytes {s}-{e}/{}", rec.size));
            }
            Ok(None) => {}
            Err(Unsatisfiable) => {
                let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", rec.size)) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
        }
    }
    let body: Body = if head || len == 0 {
        full(Bytes::new())
    } else {
        if start > 0
            && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
        {
            return text(StatusCode::BAD_GATEWAY, &format!("origin: {e}\n"));
        }
        let stream = futures::stream::unfold(file.take(len), |mut f| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        });
        BodyExt::boxed(http_body_util::StreamBody::new(stream))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rec.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(rec.modified_ms)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("x-cache", HeaderValue::from_static("MISS"));
    r
}

/// Streams an HTTP origin's object too large to cache: the request goes to the origin with the
/// client's `Range` and validators, and the origin's status, body and entity headers come back
/// as they are (206 with `Content-Range`, 304, 416 …).
async fn pass_through_http(
    cdn: &Cdn,
    host: &str,
    port: u16,
    u: &Url,
    req_headers: &http::HeaderMap,
    head: bool,
) -> Response<Body> {
    let url = match &u.query {
        Some(q) => format!("http://{host}:{port}{}?{q}", u.path),
        None => format!("http://{host}:{port}{}", u.path),
    };
    let method = if head {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let mut r = cdn
        .inner
        .http
        .request(method, &url)
        .header("host", u.domain.as_str());
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        if let Some(v) = req_headers.get(&name) {
            r = r.header(name, v.clone());
        }
    }
    let resp = match r.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = %u.display(), error = %e, "cdn: origin failed");
            return text(StatusCode::BAD_GATEWAY, "the origin failed\n");
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = http::HeaderMap::new();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_RANGE,
        header::ETAG,
        header::LAST_MODIFIED,
        header::CACHE_CONTROL,
        header::ACCEPT_RANGES,
    ] {
        if let Some(v) = resp.headers().get(name.as_str())
            && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
        {
            headers.insert(name, v);
        }
    }
    let body: Body = if head {
        full(Bytes::new())
    } else {
        let stream = futures::stream::unfold(resp, |mut resp| async move {
            match resp.chunk().await {
                Ok(Some(c)) => Some((Ok(hyper::body::Frame::data(c)), resp)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e)), resp)),
            }
        });
        BodyExt::boxed(http_body_util::StreamBody::new(stream))
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out.headers_mut()
        .insert("x-cache", HeaderValue::from_static("MISS"));
    out
}

/// Serves one edge request.
pub async fn handle<B>(cdn: &Cdn, req: &Request<B>) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let host = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .to_ascii_lowercase();
    let snap = cdn.snapshot();
    let Some(d) = snap.route(&host).cloned() else {
        return text(
            StatusCode::FORBIDDEN,
            "unknown domain: this host is not served by this CDN\n",
        );
    };
    if !d.online {
        return text(StatusCode::FORBIDDEN, "the domain is offline (stopped)\n");
    }
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the edge serves GET and HEAD\n",
        );
    }
    let u = Url {
        domain: host.clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_owned),
    };
    if !snap.blocked.is_empty() && snap.blocked.contains(&format!("{host}{}", u.path)) {
        return text(StatusCode::FORBIDDEN, "this URL is blocked\n");
    }
    drop(snap);
    match fill(cdn, &d, &u).await {
        Ok((e, fetched)) => respond(req.headers(), head, &e, !fetched),
        Err(e) => match &*e {
            NotCached::Response(e) => respond(req.headers(), head, e, false),
            NotCached::Large => match &d.origin {
                Origin::Bucket(b) => pass_through(cdn, b, &u, req.headers(), head).await,
                Origin::Http { host, port } => {
                    pass_through_http(cdn, host, *port, &u, req.headers(), head).await
                }
            },
            NotCached::Failed(m) => {
                tracing::warn!(url = %u.display(), error = %m, "cdn: origin failed");
                text(StatusCode::BAD_GATEWAY, "the origin failed\n")
            }
        },
    }
}

/// Accepts connections until `shutdown` resolves: at most `max_connections` at once, a request
/// head within `header_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cdn: Cdn,
    max_connections: usize,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cdn: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let cdn = cdn.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let cdn = cdn.clone();
                async move { Ok::<_, Infallible>(handle_logged(&cdn, &req, remote).await) }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = b.serve_connection(io, svc).await {
                tracing::debug!(error = %e, "cdn: connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Serves a request and, when offline logs are on, writes its line to the domain's log file
/// before answering (fsynced per batch in the background: `logs`).
pub async fn handle_logged<B>(cdn: &Cdn, req: &Request<B>, remote: SocketAddr) -> Response<Body> {
    let started = std::time::Instant::now();
    let resp = handle(cdn, req).await;
    let Some((logs, _)) = cdn.inner.logs.get() else {
        return resp;
    };
    let h = |n: header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok());
    let host = h(header::HOST).unwrap_or("-");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let domain: std::borrow::Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    };
    // Only requests to domains this CDN serves are logged (a file per domain).
    if cdn.inner.snapshot.load().route(&domain).is_none() {
        return resp;
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let request_size = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + path.len()
        + req.method().as_str().len()
        + 12;
    let body_size = http_body::Body::size_hint(resp.body())
        .exact()
        .unwrap_or_else(|| {
            resp.headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        });
    let end_ms = now_ms();
    let line = crate::logs::format_line(&crate::logs::Request {
        end_ms,
        forwarded_for: h(header::HeaderName::from_static("x-forwarded-for")),
        remote_ip: remote.ip(),
        response_ms: started.elapsed().as_millis() as u64,
        referer: h(header::REFERER),
        method: req.method().as_str(),
        host: &domain,
        path,
        status: resp.status().as_u16(),
        request_size: request_size as u64,
        response_size: body_size,
        hit: resp.headers().get("x-cache").is_some_and(|v| v == "HIT"),
        user_agent: h(header::USER_AGENT),
        content_type: resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    });
    logs.write(&domain, end_ms, &line);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }

    #[test]
    fn ttls() {
        let d = Duration::from_secs(60);
        assert_eq!(ttl_ms(None, None, d), Some(60_000));
        assert_eq!(ttl_ms(Some("public, max-age=5"), None, d), Some(5000));
        assert_eq!(ttl_ms(Some("max-age=5, s-maxage=7"), None, d), Some(7000));
        assert_eq!(ttl_ms(Some("no-store"), None, d), None);
        assert_eq!(ttl_ms(None, Some("garbage"), d), Some(0));
        assert_eq!(
            parse_http_date(&http_date(1_700_000_000_000)),
            Some(1_700_000_000_000)
        );
    }
}
