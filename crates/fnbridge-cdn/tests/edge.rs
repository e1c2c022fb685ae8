//! The edge against an HTTP origin that counts its requests: a burst of concurrent misses makes
//! one origin request, `max-age` expiry revalidates with `If-None-Match` (a 304 keeps the
//! body), `no-store` is never cached, Range and HEAD are served from the cache, stopped and
//! unknown domains get 403, and a refreshed URL goes back to the origin (revalidated without
//! `Force`, refetched with it). An object too large to cache is streamed with the client's Range
//! and validators passed to the origin.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fnbridge_cdn::events::Identity;
use fnbridge_cdn::service::ObjectType;
use fnbridge_cdn::{Cdn, CdnConfig};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};

/// An origin: `/slow` (100 ms, max-age 60), `/short` (max-age 1, ETag "v1", 304 on match),
/// `/nostore` (no-store). Counts requests per path.
async fn origin() -> (u16, Arc<[AtomicUsize; 3]>) {
    let counts: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let c = c.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let c = c.clone();
                    async move {
                        let mut r = Response::builder().header("content-type", "text/plain");
                        let body = match req.uri().path() {
                            "/slow" => {
                                c[0].fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                r = r.header("cache-control", "max-age=60");
                                "slow body"
                            }
                            "/short" => {
                                c[1].fetch_add(1, Ordering::SeqCst);
                                r = r
                                    .header("cache-control", "max-age=1")
                                    .header("etag", "\"v1\"");
                                if req
                                    .headers()
                                    .get("if-none-match")
                                    .is_some_and(|v| v == "\"v1\"")
                                {
                                    r = r.status(304);
                                    ""
                                } else {
                                    "0123456789"
                                }
                            }
                            _ => {
                                c[2].fetch_add(1, Ordering::SeqCst);
                                r = r.header("cache-control", "no-store");
                                "fresh every time"
                            }
                        };
                        Ok::<_, Infallible>(r.body(Full::new(Bytes::from(body))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (port, counts)
}

async fn get(cdn: &Cdn, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Bytes) {
    let mut b = Request::get(path).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(()).unwrap();
    let resp = fnbridge_cdn::edge::handle(cdn, &req).await;
    let status = resp.status().as_u16();
    let xc = resp
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, xc, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_coalescing_revalidation() {
    let dir = tempfile::tempdir().unwrap();
    let store = fnbridge_store::Store::open(&dir.path().join("db")).unwrap();
    let sink = Arc::new(fnbridge_objectstore::LogOnlySink(store.clone()));
    let objects = fnbridge_objectstore::ObjectStore::open(
        store.clone(),
        &dir.path().join("objects"),
        sink.clone(),
        fnbridge_objectstore::Identity {
            region: "cn-hangzhou".into(),
            account_id: "1".into(),
            cos_region: "ap-guangzhou".into(),
        },
        Default::default(),
    )
    .await
    .unwrap();
    let mut cfg = CdnConfig::new(Identity {
        region: "cn-hangzhou".into(),
        account_id: "1".into(),
    });
    // A small daily directory quota, to see it refused.
    cfg.daily_dirs = 2;
    let cdn = Cdn::open(store, objects, sink, cfg).await.unwrap();
    let (port, counts) = origin().await;
    let sources = format!(r#"[{{"content":"127.0.0.1","type":"ipaddr","port":{port}}}]"#);
    cdn.add_domain("t.example.com", "web", &sources, None)
        .await
        .unwrap();
    let dup = cdn
        .add_domain("t.example.com", "web", &sources, None)
        .await
        .unwrap_err();
    assert_eq!(dup.code, "DomainAlreadyExist");

    // A burst of 20 concurrent misses: one origin request, one MISS.
    let mut hs = Vec::new();
    for _ in 0..20 {
        let cdn = cdn.clone();
        hs.push(tokio::spawn(async move {
            get(&cdn, "t.example.com", "/slow", &[]).await
        }));
    }
    let mut misses = 0;
    for h in hs {
        let (status, xc, body) = h.await.unwrap();
        assert_eq!((status, &body[..]), (200, &b"slow body"[..]));
        if xc == "MISS" {
            misses += 1;
        }
    }
    assert_eq!(
        counts[0].load(Ordering::SeqCst),
        1,
        "coalesced into one origin request"
    );
    assert_eq!(misses, 1);

    // max-age=1: HIT, then after expiry a revalidation (304) keeps the body.
    assert_eq!(get(&cdn, "t.example.com", "/short", &[]).await.1, "MISS");
    let (_, xc, _) = get(&cdn, "t.example.com", "/short", &[]).await;
    assert_eq!(xc, "HIT");
    let (s, _, b) = get(&cdn, "t.example.com", "/short", &[("range", "bytes=2-4")]).await;
    assert_eq!((s, &b[..]), (206, &b"234"[..]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, xc, b) = get(&cdn, "t.example.com", "/short", &[]).await;
    assert_eq!((s, xc.as_str(), &b[..]), (200, "HIT", &b"0123456789"[..]));
    assert_eq!(
        counts[1].load(Ordering::SeqCst),
        2,
        "one fetch and one revalidation"
    );

    // no-store: every request goes to the origin.
    for _ in 0..3 {
        assert_eq!(get(&cdn, "t.example.com", "/nostore", &[]).await.1, "MISS");
    }
    assert_eq!(counts[2].load(Ordering::SeqCst), 3);

    // Refresh: the next request goes to the origin.
    cdn.refresh("t.example.com/slow", ObjectType::File, false)
        .await
        .unwrap();
    assert_eq!(get(&cdn, "t.example.com", "/slow", &[]).await.1, "MISS");
    assert_eq!(counts[0].load(Ordering::SeqCst), 2);

    // IgnoreParams refreshes every query variant of a path (`/slow` has no validators, so
    // even an expiring refresh refetches it); Regex what its pattern matches.
    for q in ["/slow?a=1", "/slow?a=2"] {
        get(&cdn, "t.example.com", q, &[]).await;
        assert_eq!(get(&cdn, "t.example.com", q, &[]).await.1, "HIT");
    }
    cdn.refresh("t.example.com/slow", ObjectType::IgnoreParams, false)
        .await
        .unwrap();
    assert_eq!(get(&cdn, "t.example.com", "/slow?a=1", &[]).await.1, "MISS");
    assert_eq!(get(&cdn, "t.example.com", "/slow?a=2", &[]).await.1, "MISS");
    assert_eq!(get(&cdn, "t.example.com", "/short", &[]).await.1, "HIT");
    // Without Force a Regex refresh expires: the next request revalidates with the origin,
    // whose 304 keeps the entry (a HIT after one origin request); with Force it purges.
    let before = counts[1].load(Ordering::SeqCst);
    cdn.refresh("t.example.com/sh.*", ObjectType::Regex, false)
        .await
        .unwrap();
    assert_eq!(get(&cdn, "t.example.com", "/short", &[]).await.1, "HIT");
    assert_eq!(counts[1].load(Ordering::SeqCst), before + 1);
    assert_eq!(get(&cdn, "t.example.com", "/slow?a=1", &[]).await.1, "HIT");
    cdn.refresh("t.example.com/sh.*", ObjectType::Regex, true)
        .await
        .unwrap();
    assert_eq!(get(&cdn, "t.example.com", "/short", &[]).await.1, "MISS");
    assert_eq!(counts[1].load(Ordering::SeqCst), before + 2);
    let two = "t.example.com/a\nt.example.com/b";
    let e = cdn
        .refresh(two, ObjectType::Regex, false)
        .await
        .unwrap_err();
    assert_eq!(e.code, "Quota.Exceeded", "one regex per request");

    // The daily directory quota (2 here): refused once used up, and a refused request
    // records no task.
    for d in ["d1", "d2"] {
        cdn.refresh(&format!("t.example.com/{d}/"), ObjectType::Directory, false)
            .await
            .unwrap();
    }
    let e = cdn
        .refresh("t.example.com/d3/", ObjectType::Directory, false)
        .await
        .unwrap_err();
    assert_eq!(e.code, "Quota.Exceeded", "{e}");
    let (tasks, _) = cdn
        .tasks(fnbridge_store::cdn::CdnTaskFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let dirs: Vec<&str> = tasks
        .iter()
        .filter(|t| t.object_type == "Directory")
        .map(|t| t.object_path.as_str())
        .collect();
    assert_eq!(
        dirs,
        ["http://t.example.com/d2/", "http://t.example.com/d1/"]
    );

    // Stopped and unknown domains are refused.
    cdn.set_online("t.example.com", false).await.unwrap();
    assert_eq!(get(&cdn, "t.example.com", "/slow", &[]).await.0, 403);
    assert_eq!(get(&cdn, "other.example.com", "/slow", &[]).await.0, 403);
}

/// An origin serving `/big`: 5000 bytes, ETag "big", one `bytes=a-b` / `bytes=a-` range (206),
/// 304 on a matching If-None-Match.
async fn big_origin() -> (u16, Bytes) {
    let body: Bytes = (0..5000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let b = body.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let b = b.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let b = b.clone();
                    async move {
                        let r = Response::builder()
                            .header("etag", "\"big\"")
                            .header("content-type", "application/octet-stream");
                        let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
                        let resp = if h("if-none-match") == Some("\"big\"") {
                            r.status(304).body(Full::new(Bytes::new()))
                        } else if let Some(spec) = h("range").and_then(|r| r.strip_prefix("bytes="))
                        {
                            let (a, e) = spec.split_once('-').unwrap();
                            let a: usize = a.parse().unwrap();
                            let e: usize = if e.is_empty() {
                                b.len() - 1
                            } else {
                                e.parse().unwrap()
                            };
                            r.status(206)
                                .header("content-range", format!("bytes {a}-{e}/{}", b.len()))
                                .body(Full::new(b.slice(a..=e)))
                        } else {
                            r.body(Full::new(b))
                        };
                        Ok::<_, Infallible>(resp.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (port, body)
}

/// An HTTP origin's object larger than the edge caches is streamed with the client's Range and
/// validators passed to the origin (it used to be refused with 502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_http_objects_stream_with_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = fnbridge_store::Store::open(&dir.path().join("db")).unwrap();
    let sink = Arc::new(fnbridge_objectstore::LogOnlySink(store.clone()));
    let objects = fnbridge_objectstore::ObjectStore::open(
        store.clone(),
        &dir.path().join("objects"),
        sink.clone(),
        fnbridge_objectstore::Identity {
            region: "cn-hangzhou".into(),
            account_id: "1".into(),
            cos_region: "ap-guangzhou".into(),
        },
        Default::default(),
    )
    .await
    .unwrap();
    let mut cfg = CdnConfig::new(Identity {
        region: "cn-hangzhou".into(),
        account_id: "1".into(),
    });
    cfg.max_object = 1000;
    let cdn = Cdn::open(store, objects, sink, cfg).await.unwrap();
    let (port, body) = big_origin().await;
    let sources = format!(r#"[{{"content":"127.0.0.1","type":"ipaddr","port":{port}}}]"#);
    cdn.add_domain("big.example.com", "web", &sources, None)
        .await
        .unwrap();

    for _ in 0..2 {
        let (status, xc, got) = get(&cdn, "big.example.com", "/big", &[]).await;
        assert_eq!((status, xc.as_str()), (200, "MISS"), "never cached");
        assert_eq!(got, body);
    }
    let (status, _, got) = get(
        &cdn,
        "big.example.com",
        "/big",
        &[("range", "bytes=100-199")],
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(got, body.slice(100..200));
    let (status, _, got) = get(&cdn, "big.example.com", "/big", &[("range", "bytes=4990-")]).await;
    assert_eq!((status, &got[..]), (206, &body[4990..]));
    let (status, _, got) = get(
        &cdn,
        "big.example.com",
        "/big",
        &[("if-none-match", "\"big\"")],
    )
    .await;
    assert_eq!((status, got.len()), (304, 0));

    // The headers come through too.
    let req = Request::get("/big")
        .header("host", "big.example.com")
        .header("range", "bytes=0-9")
        .body(())
        .unwrap();
    let resp = fnbridge_cdn::edge::handle(&cdn, &req).await;
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(h("content-range").as_deref(), Some("bytes 0-9/5000"));
    assert_eq!(h("etag").as_deref(), Some("\"big\""));
    assert_eq!(h("content-length").as_deref(), Some("10"));
}
