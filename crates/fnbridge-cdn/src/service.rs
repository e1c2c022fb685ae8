//! `Cdn`: the one owner of CDN state. Every change (domains, tasks, blocks) checks its rules
//! inside the store write that makes it and commits with its events through the `EventSink`;
//! the edge's snapshot (domains by name, blocked URLs) is rebuilt from the store after each
//! commit under one lock, so it changes in commit order and always ends equal to the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use fnbridge_objectstore::{EventSink, ObjectStore};
use fnbridge_store::cdn::{CdnDomain, CdnTask, CdnTaskFilter};
use fnbridge_store::{Store, now_ms};

use crate::cache::Cache;
use crate::domain::{Origin, check_domain, parse_sources};
use crate::error::CdnError;
use crate::events::{self, Identity};
use crate::quota::CallWindow;

/// Settings the binary passes in.
#[derive(Debug, Clone)]
pub struct CdnConfig {
    pub identity: Identity,
    /// Domains the account may have (Alibaba's default: 50).
    pub max_domains: usize,
    /// How long a response without caching headers stays fresh.
    pub default_ttl: Duration,
    /// Bytes the memory cache may hold.
    pub cache_bytes: u64,
    /// The disk tier: its directory (wiped at start) and the bytes it may hold; `None` for
    /// memory only.
    pub disk_cache: Option<(std::path::PathBuf, u64)>,
    /// Largest body cached; bigger ones are passed through.
    pub max_object: u64,
    /// Per-day quotas (cdn.md §3): refreshed URLs and directories, pushed URLs.
    pub daily_urls: usize,
    pub daily_dirs: usize,
    pub daily_push: usize,
    /// Deadline of an origin request.
    pub origin_timeout: Duration,
    /// AddCdnDomain calls admitted per hour (Alibaba's default: 100), every call counted.
    pub add_domain_per_hour: usize,
    /// DescribeCdnDomainLogs calls admitted per second (cdn.md §6: 100).
    pub describe_logs_per_second: usize,
    /// The clock call-rate quotas read (Unix ms); tests put a fake one here.
    pub clock: fn() -> i64,
}

impl CdnConfig {
    pub fn new(identity: Identity) -> CdnConfig {
        CdnConfig {
            identity,
            max_domains: 50,
            default_ttl: Duration::from_secs(600),
            cache_bytes: 256 << 20,
            disk_cache: None,
            max_object: 16 << 20,
            daily_urls: 10_000,
            daily_dirs: 100,
            daily_push: 10_000,
            origin_timeout: Duration::from_secs(30),
            add_domain_per_hour: 100,
            describe_logs_per_second: 100,
            clock: now_ms,
        }
    }
}

/// Per-request limits (cdn.md §3, §4).
pub const MAX_REFRESH_URLS: usize = 1000;
pub const MAX_REFRESH_DIRS: usize = 100;
pub const MAX_REFRESH_REGEX: usize = 1;
pub const MAX_DOMAINS_PER_CALL: usize = 10;
pub const MAX_PUSH_URLS: usize = 1000;
pub const MAX_URL: usize = 1024;

/// A domain as the edge sees it.
#[derive(Debug, Clone)]
pub struct LiveDomain {
    pub name: String,
    pub origin: Origin,
    pub online: bool,
}

/// What the edge reads on every request.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub domains: HashMap<String, Arc<LiveDomain>>,
    /// Blocked URLs as `host/path`.
    pub blocked: HashSet<String>,
}

impl Snapshot {
    /// The domain serving `host`: an exact name, else the nearest wildcard (`.example.com`).
    pub fn route(&self, host: &str) -> Option<&Arc<LiveDomain>> {
        if let Some(d) = self.domains.get(host) {
            return Some(d);
        }
        let mut rest = host;
        while let Some(i) = rest.find('.') {
            if let Some(d) = self.domains.get(&rest[i..]) {
                return Some(d);
            }
            rest = &rest[i + 1..];
        }
        None
    }
}

/// One URL of a refresh/push/block request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub domain: String,
    /// Starts with `/`.
    pub path: String,
    pub query: Option<String>,
}

impl Url {
    /// `example.com/dir/file.png`, with or without `http://`/`https://`.
    pub fn parse(raw: &str) -> Result<Url, CdnError> {
        let bad = |why: &str| CdnError::invalid("ObjectPath", format!("'{raw}': {why}"));
        if raw.len() > MAX_URL {
            return Err(bad(&format!("longer than {MAX_URL} characters")));
        }
        let s = raw
            .strip_prefix("http://")
            .or_else(|| raw.strip_prefix("https://"))
            .unwrap_or(raw);
        let (host, rest) = match s.find('/') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, "/"),
        };
        let host = host.split(':').next().unwrap_or(host);
        let domain = check_domain(host).map_err(|_| bad("no valid domain"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (rest.to_string(), None),
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("the path has spaces or control characters"));
        }
        Ok(Url {
            domain,
            path,
            query,
        })
    }

    /// The cache key: `host/path[?query]`.
    pub fn key(&self) -> String {
        match &self.query {
            Some(q) => format!("{}{}?{q}", self.domain, self.path),
            None => format!("{}{}", self.domain, self.path),
        }
    }

    pub fn display(&self) -> String {
        format!("http://{}", self.key())
    }
}

/// What a refresh names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    File,
    Directory,
    Regex,
    IgnoreParams,
}

impl ObjectType {
    pub fn parse(s: Option<&str>) -> Result<ObjectType, CdnError> {
        Ok(match s.unwrap_or("File") {
            "File" | "file" => ObjectType::File,
            "Directory" | "directory" => ObjectType::Directory,
            "Regex" | "regex" => ObjectType::Regex,
            "IgnoreParams" | "ExQuery" | "ignoreparams" => ObjectType::IgnoreParams,
            other => {
                return Err(CdnError::invalid(
                    "ObjectType",
                    format!("'{other}' is not File, Directory, Regex or IgnoreParams"),
                ));
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::File => "File",
            ObjectType::Directory => "Directory",
            ObjectType::Regex => "Regex",
            ObjectType::IgnoreParams => "IgnoreParams",
        }
    }
}

/// The CDN service. Cheap to clone.
#[derive(Clone)]
pub struct Cdn {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) objects: ObjectStore,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) cfg: CdnConfig,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Held from a write's commit to its snapshot swap, so snapshots follow commit order.
    write_lock: tokio::sync::Mutex<()>,
    pub(crate) cache: Cache,
    pub(crate) http: reqwest::Client,
    /// The miss path's client to HTTP origins: hyper's pooled HTTP/1 client straight, without
    /// reqwest's URL parsing (IDNA, `url`) and request wrapping on every miss.
    pub(crate) origin: crate::edge::OriginClient,
    /// The offline-log writer and its settings, once started.
    pub(crate) logs: std::sync::OnceLock<(crate::logs::LogSender, crate::logs::LogConfig)>,
    add_domain_calls: CallWindow,
    describe_logs_calls: CallWindow,
}

fn now_s() -> i64 {
    now_ms() / 1000
}

const DAY_MS: i64 = 86_400_000;

impl Cdn {
    pub async fn open(
        store: Store,
        objects: ObjectStore,
        sink: Arc<dyn EventSink>,
        cfg: CdnConfig,
    ) -> Result<Cdn, CdnError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.origin_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(CdnError::internal)?;
        let cdn = Cdn {
            inner: Arc::new(Inner {
                store,
                objects,
                sink,
                cache: Cache::with_disk(cfg.cache_bytes, cfg.disk_cache.clone())
                    .map_err(|e| CdnError::internal(format!("disk cache: {e}")))?,
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                write_lock: tokio::sync::Mutex::new(()),
                http,
                origin: crate::edge::origin_client(cfg.origin_timeout),
                logs: std::sync::OnceLock::new(),
                add_domain_calls: CallWindow::new(
                    "AddCdnDomain",
                    cfg.add_domain_per_hour,
                    3_600_000,
                ),
                describe_logs_calls: CallWindow::new(
                    "DescribeCdnDomainLogs",
                    cfg.describe_logs_per_second,
                    1000,
                ),
                cfg,
            }),
        };
        cdn.reload().await?;
        Ok(cdn)
    }

    /// Starts writing offline logs (`logs`): every edge request from now on is logged.
    pub fn start_logs(&self, cfg: crate::logs::LogConfig) -> std::io::Result<()> {
        let sender = crate::logs::start(self.clone(), cfg.clone())?;
        let _ = self.inner.logs.set((sender, cfg));
        Ok(())
    }

    /// The log files of `domain` stored in the log bucket: (object record, presigned URL).
    pub async fn log_files(
        &self,
        domain: &str,
        since_s: i64,
        until_s: i64,
    ) -> Result<Vec<(fnbridge_store::objects::ObjectRecord, i64, i64, String)>, CdnError> {
        let Some((_, cfg)) = self.inner.logs.get() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut after = String::new();
        let prefix = format!("{domain}/");
        // Bounded: 31 days of hourly files is 744; a few pages at most.
        for _ in 0..20 {
            let page = match self
                .inner
                .objects
                .list(&cfg.bucket, &prefix, "", &after, 1000)
                .await
            {
                Ok(p) => p,
                // Made with the first log file: none yet, so no files.
                Err(e) if e.code == fnbridge_objectstore::Code::NoSuchBucket => break,
                Err(e) => return Err(CdnError::internal(format!("log bucket: {e}"))),
            };
            for o in page.objects {
                let get = |k: &str| {
                    o.meta
                        .iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, v)| v.parse::<i64>().ok())
                };
                let (Some(start), Some(end)) = (get("cdn-start"), get("cdn-end")) else {
                    continue;
                };
                if end > since_s && start < until_s {
                    let url = cfg.presign(&o.key, now_s());
                    out.push((o, start, end, url));
                }
            }
            match page.next_marker {
                Some(m) if page.truncated => after = m,
                _ => break,
            }
        }
        out.sort_by_key(|(_, s, _, _)| *s);
        Ok(out)
    }

    /// Admits a DescribeCdnDomainLogs call within its per-second quota.
    pub fn admit_describe_logs(&self) -> Result<(), CdnError> {
        self.inner
            .describe_logs_calls
            .admit((self.inner.cfg.clock)())
    }

    pub fn config(&self) -> &CdnConfig {
        &self.inner.cfg
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Rebuilds the edge's snapshot from the store.
    async fn reload(&self) -> Result<(), CdnError> {
        let (domains, blocked) = self
            .inner
            .store
            .read(|tx| Ok((tx.list_cdn_domains()?, tx.list_cdn_blocks()?)))
            .await?;
        let mut snap = Snapshot::default();
        for d in domains {
            // A stored domain always parses (it was validated when written); one that does not
            // is skipped rather than taking the edge down.
            let Ok((_, origin)) = parse_sources(&d.sources) else {
                tracing::error!(domain = %d.name, "cdn: stored sources do not parse");
                continue;
            };
            snap.domains.insert(
                d.name.clone(),
                Arc::new(LiveDomain {
                    online: d.status == "online",
                    name: d.name,
                    origin,
                }),
            );
        }
        snap.blocked = blocked.into_iter().collect();
        self.inner.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// Runs a change with its events (each CDN event also as its `acs.cdn` CloudEvent) in one
    /// transaction, then refreshes the snapshot.
    async fn commit<T, F>(&self, f: F) -> Result<T, CdnError>
    where
        T: Send + 'static,
        F: FnOnce(
                &dyn fnbridge_store::Tx,
            )
                -> Result<(T, Vec<fnbridge_event::BusEvent>), fnbridge_store::StoreError>
            + Send
            + 'static,
    {
        let _g = self.inner.write_lock.lock().await;
        let id = self.inner.cfg.identity.clone();
        let f = move |tx: &dyn fnbridge_store::Tx| {
            f(tx).map(|(v, evs)| (v, events::with_cloud_events(&id, evs, now_ms())))
        };
        let v = fnbridge_objectstore::sink::commit(&*self.inner.sink, f).await?;
        self.reload().await?;
        Ok(v)
    }

    // ---- domains ----

    pub async fn add_domain(
        &self,
        name: &str,
        cdn_type: &str,
        sources: &str,
        scope: Option<&str>,
    ) -> Result<(), CdnError> {
        // Every call counts against the hourly quota, refused ones too.
        self.inner
            .add_domain_calls
            .admit((self.inner.cfg.clock)())?;
        let name = check_domain(name)?;
        if !matches!(cdn_type, "web" | "download" | "video") {
            return Err(CdnError::invalid(
                "CdnType",
                format!("'{cdn_type}' is not web, download or video"),
            ));
        }
        let scope = scope.unwrap_or("domestic");
        if !matches!(scope, "domestic" | "overseas" | "global") {
            return Err(CdnError::invalid(
                "Scope",
                format!("'{scope}' is not domestic, overseas or global"),
            ));
        }
        let (sources, origin) = parse_sources(sources)?;
        let now = now_ms();
        let d = CdnDomain {
            name: name.clone(),
            cdn_type: cdn_type.into(),
            sources,
            scope: scope.into(),
            status: "online".into(),
            created_ms: now,
            modified_ms: now,
        };
        let id = self.inner.cfg.identity.clone();
        let max = self.inner.cfg.max_domains;
        self.commit(move |tx| {
            if let Origin::Bucket(b) = &origin
                && tx.get_bucket(b)?.is_none()
            {
                return Ok((
                    Err(CdnError::new(
                        400,
                        "InvalidSources.BucketNotFound",
                        format!("the origin bucket '{b}' does not exist in the object store"),
                    )),
                    vec![],
                ));
            }
            if tx.list_cdn_domains()?.len() >= max {
                return Ok((
                    Err(CdnError::new(
                        400,
                        "DomainOverLimit",
                        format!("the account already has {max} domains"),
                    )),
                    vec![],
                ));
            }
            if !tx.insert_cdn_domain(&d)? {
                return Ok((
                    Err(CdnError::new(
                        409,
                        "DomainAlreadyExist",
                        format!("the domain '{}' already exists", d.name),
                    )),
                    vec![],
                ));
            }
            let e = events::domain_event(&id, "CdnDomainAdded", &d.name, now / 1000);
            Ok((Ok(()), vec![e]))
        })
        .await?
    }

    pub async fn set_online(&self, name: &str, online: bool) -> Result<(), CdnError> {
        let name = check_domain(name)?;
        let id = self.inner.cfg.identity.clone();
        let status = if online { "online" } else { "offline" };
        self.commit(move |tx| {
            if !tx.set_cdn_domain_status(&name, status, now_ms())? {
                return Ok((Err(CdnError::no_domain(&name)), vec![]));
            }
            let e = events::status_event(&id, online, &name, now_s());
            Ok((Ok(()), vec![e]))
        })
        .await?
    }

    pub async fn delete_domain(&self, name: &str) -> Result<(), CdnError> {
        let name = check_domain(name)?;
        let id = self.inner.cfg.identity.clone();
        let n = name.clone();
        self.commit(move |tx| {
            if !tx.delete_cdn_domain(&n)? {
                return Ok((Err(CdnError::no_domain(&n)), vec![]));
            }
            let e = events::domain_event(&id, "CdnDomainDeleted", &n, now_s());
            Ok((Ok(()), vec![e]))
        })
        .await??;
        // Nothing of a deleted domain stays servable.
        let prefix = format!("{name}/");
        self.inner
            .cache
            .remove_where(|k| k.starts_with(&prefix))
            .await;
        Ok(())
    }

    pub async fn domains(&self) -> Result<Vec<CdnDomain>, CdnError> {
        Ok(self.inner.store.read(|tx| tx.list_cdn_domains()).await?)
    }

    pub async fn domain(&self, name: &str) -> Result<CdnDomain, CdnError> {
        let n = check_domain(name)?;
        let k = n.clone();
        self.inner
            .store
            .read(move |tx| tx.get_cdn_domain(&k))
            .await?
            .ok_or_else(|| CdnError::no_domain(&n))
    }

    // ---- refresh, push, block ----

    /// Parses `\n`-separated URLs of existing domains, at most `max`, over at most
    /// `MAX_DOMAINS_PER_CALL` domains, grouped by domain in first-seen order.
    fn urls(&self, raw: &str, max: usize) -> Result<Vec<(String, Vec<Url>)>, CdnError> {
        let mut groups: Vec<(String, Vec<Url>)> = Vec::new();
        let mut n = 0;
        let snap = self.snapshot();
        for line in raw.split('\n').map(|l| l.trim_end_matches('\r').trim()) {
            if line.is_empty() {
                continue;
            }
            n += 1;
            if n > max {
                return Err(CdnError::new(
                    400,
                    "Quota.Exceeded",
                    format!("at most {max} entries per request"),
                ));
            }
            let u = Url::parse(line)?;
            if !snap.domains.contains_key(&u.domain) && snap.route(&u.domain).is_none() {
                return Err(CdnError::no_domain(&u.domain));
            }
            match groups.iter_mut().find(|(d, _)| *d == u.domain) {
                Some((_, v)) => {
                    if !v.contains(&u) {
                        v.push(u)
                    }
                }
                None => groups.push((u.domain.clone(), vec![u])),
            }
        }
        if n == 0 {
            return Err(CdnError::missing("ObjectPath"));
        }
        if groups.len() > MAX_DOMAINS_PER_CALL {
            return Err(CdnError::new(
                400,
                "Quota.Exceeded",
                format!("URLs of at most {MAX_DOMAINS_PER_CALL} domains per request"),
            ));
        }
        Ok(groups)
    }

    /// Refreshes what `object_path` names; returns the task ids, one per domain (cdn.md §3).
    /// A `File` is purged (its next request goes to the origin). For the other types `force`
    /// decides: `true` purges everything in range; `false` marks it expired, so each entry is
    /// revalidated with the origin on its next request (kept on 304, refetched if changed).
    pub async fn refresh(
        &self,
        object_path: &str,
        object_type: ObjectType,
        force: bool,
    ) -> Result<Vec<i64>, CdnError> {
        let max = match object_type {
            ObjectType::File | ObjectType::IgnoreParams => MAX_REFRESH_URLS,
            ObjectType::Directory => MAX_REFRESH_DIRS,
            ObjectType::Regex => MAX_REFRESH_REGEX,
        };
        let groups = self.urls(object_path, max)?;
        let mut regexes = Vec::new();
        for (_, urls) in &groups {
            for u in urls {
                match object_type {
                    ObjectType::Directory if !u.path.ends_with('/') => {
                        return Err(CdnError::invalid(
                            "ObjectPath",
                            format!("directory '{}' must end with '/'", u.display()),
                        ));
                    }
                    ObjectType::Regex => {
                        let re = regex_lite::Regex::new(&format!("^(?:{})$", u.path))
                            .map_err(|e| CdnError::invalid("ObjectPath", e))?;
                        regexes.push((u.domain.clone(), re));
                    }
                    _ => {}
                }
            }
        }
        // Daily quota checked inside the write, below; refreshing first is harmless if it is
        // then refused (a refresh only costs a later miss or revalidation).
        let purge = force || object_type == ObjectType::File;
        let cache = &self.inner.cache;
        for (domain, urls) in &groups {
            for u in urls {
                match object_type {
                    ObjectType::File => cache.remove(&u.key()).await,
                    ObjectType::Directory => {
                        let p = format!("{domain}{}", u.path);
                        cache.refresh_where(purge, |k| k.starts_with(&p)).await;
                    }
                    ObjectType::IgnoreParams => {
                        let p = format!("{domain}{}", u.path);
                        cache
                            .refresh_where(purge, |k| k.split('?').next() == Some(p.as_str()))
                            .await;
                    }
                    ObjectType::Regex => {}
                }
            }
        }
        for (domain, re) in &regexes {
            let p = format!("{domain}/");
            cache
                .refresh_where(purge, |k| {
                    k.strip_prefix(&p).is_some_and(|rest| {
                        re.is_match(&format!("/{}", rest.split('?').next().unwrap_or("")))
                    })
                })
                .await;
        }
        let (quota, qname) = match object_type {
            ObjectType::Directory | ObjectType::Regex => (self.inner.cfg.daily_dirs, "directories"),
            _ => (self.inner.cfg.daily_urls, "URLs"),
        };
        self.record(
            "refresh",
            "CachedObjectsRefreshed",
            object_type.as_str(),
            groups,
            quota,
            qname,
            None,
        )
        .await
    }

    /// Writes one task per domain (rows `Complete`) and its event, within the daily quota.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        kind: &'static str,
        event: &'static str,
        object_type: &'static str,
        groups: Vec<(String, Vec<Url>)>,
        quota: usize,
        quota_name: &'static str,
        failed: Option<HashSet<String>>,
    ) -> Result<Vec<i64>, CdnError> {
        let id = self.inner.cfg.identity.clone();
        let created = now_ms();
        self.commit(move |tx| {
            let n: usize = groups.iter().map(|(_, u)| u.len()).sum();
            let used = tx.count_cdn_tasks_since(kind, object_type, created - DAY_MS)?;
            if used + n > quota {
                return Ok((
                    Err(CdnError::new(
                        400,
                        "Quota.Exceeded",
                        format!("the daily quota of {quota} {quota_name} would be exceeded ({used} used)"),
                    )),
                    vec![],
                ));
            }
            let mut ids = Vec::new();
            let mut evs = Vec::new();
            for (domain, urls) in &groups {
                let task_id = tx.next_cdn_task_id()?;
                let mut paths = Vec::new();
                for u in urls {
                    let bad = failed.as_ref().is_some_and(|f| f.contains(&u.key()));
                    tx.insert_cdn_task(&CdnTask {
                        task_id,
                        kind: kind.into(),
                        object_type: object_type.into(),
                        object_path: u.display(),
                        domain: domain.clone(),
                        status: if bad { "Failed" } else { "Complete" }.into(),
                        created_ms: created,
                    })?;
                    match kind {
                        "block" => tx.set_cdn_block(&u.key(), domain, true, created)?,
                        "unblock" => tx.set_cdn_block(&u.key(), domain, false, created)?,
                        _ => {}
                    }
                    if !bad {
                        paths.push(u.path.clone());
                    }
                }
                ids.push(task_id);
                if kind != "unblock" && !paths.is_empty() {
                    evs.push(events::objects_event(
                        &id, event, domain, task_id, object_type, &paths, created / 1000, now_s(),
                    ));
                }
            }
            Ok((Ok(ids), evs))
        })
        .await?
    }

    /// Fetches each URL into the cache ahead of requests.
    pub async fn push(&self, object_path: &str) -> Result<Vec<i64>, CdnError> {
        let groups = self.urls(object_path, MAX_PUSH_URLS)?;
        let mut failed = HashSet::new();
        let snap = self.snapshot();
        for (_, urls) in &groups {
            for u in urls {
                let Some(d) = snap.route(&u.domain) else {
                    continue;
                };
                self.inner.cache.remove(&u.key()).await;
                match crate::edge::fill(self, d, u).await {
                    // Pushed ahead of requests: worth the disk tier if memory evicts it first.
                    Ok((e, _)) => e.hit.store(true, std::sync::atomic::Ordering::Relaxed),
                    // Too large to cache: the origin has it, and every request streams it.
                    Err(e) if matches!(*e, crate::edge::NotCached::Large) => {}
                    Err(e) => {
                        tracing::warn!(url = %u.display(), error = ?e, "cdn: push failed");
                        failed.insert(u.key());
                    }
                }
            }
        }
        self.record(
            "push",
            "CachedObjectsPushed",
            "File",
            groups,
            self.inner.cfg.daily_push,
            "pushed URLs",
            Some(failed),
        )
        .await
    }

    /// Blocks (or unblocks) URLs at the edge: 403 until unblocked.
    pub async fn block(&self, object_path: &str, unblock: bool) -> Result<Vec<i64>, CdnError> {
        let groups = self.urls(object_path, MAX_REFRESH_URLS)?;
        for (_, urls) in &groups {
            for u in urls {
                if u.query.is_some() {
                    return Err(CdnError::invalid(
                        "ObjectPath",
                        "a blocked URL names a path, without a query string",
                    ));
                }
            }
        }
        let keys: Vec<String> = groups
            .iter()
            .flat_map(|(_, u)| u.iter().map(Url::key))
            .collect();
        let (kind, quota) = if unblock {
            ("unblock", usize::MAX)
        } else {
            ("block", self.inner.cfg.daily_urls)
        };
        let ids = self
            .record(
                kind,
                "CachedObjectsBlocked",
                "File",
                groups,
                quota,
                "blocked URLs",
                None,
            )
            .await?;
        if !unblock {
            for k in keys {
                self.inner
                    .cache
                    .remove_where(|c| c.split('?').next() == Some(k.as_str()))
                    .await;
            }
        }
        Ok(ids)
    }

    pub async fn tasks(&self, f: CdnTaskFilter) -> Result<(Vec<CdnTask>, usize), CdnError> {
        Ok(self
            .inner
            .store
            .read(move |tx| tx.list_cdn_tasks(&f))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_exact_then_nearest_wildcard() {
        let mut snap = Snapshot::default();
        for name in ["a.example.com", ".example.com", ".b.example.com"] {
            snap.domains.insert(
                name.into(),
                Arc::new(LiveDomain {
                    name: name.into(),
                    origin: Origin::Bucket("x".into()),
                    online: true,
                }),
            );
        }
        let at = |h: &str| snap.route(h).map(|d| d.name.clone());
        assert_eq!(at("a.example.com").as_deref(), Some("a.example.com"));
        assert_eq!(at("c.b.example.com").as_deref(), Some(".b.example.com"));
        assert_eq!(at("z.example.com").as_deref(), Some(".example.com"));
        assert_eq!(at("example.org"), None);
        assert_eq!(at(""), None);
    }

    #[test]
    fn urls() {
        let u = Url::parse("https://Example.com/a/b.png?x=1").unwrap();
        assert_eq!(u.domain, "example.com");
        assert_eq!(u.path, "/a/b.png");
        assert_eq!(u.key(), "example.com/a/b.png?x=1");
        assert_eq!(Url::parse("example.com").unwrap().path, "/");
        assert!(Url::parse("not a url").is_err());
        assert!(Url::parse(&format!("example.com/{}", "a".repeat(2000))).is_err());
    }
}
