//! The edge's cache: a memory tier of entries weighed by their bytes in a size-bounded moka
//! cache (TinyLFU admission, LRU eviction), an optional disk tier bounded the same way that
//! takes what the memory tier evicts after it was hit at least once (an entry only ever missed
//! is dropped: a stream of one-off misses costs no file each), and request coalescing: concurrent misses for one key
//! share one origin fetch (`Entry::or_try_insert_with` runs a single initializer per key; the
//! others wait for it).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;

/// A cached response.
#[derive(Debug)]
pub struct Cached {
    pub status: u16,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub cache_control: Option<String>,
    pub body: Bytes,
    /// Unix ms after which the entry must be revalidated; atomically lowered by a refresh.
    pub expires_ms: AtomicI64,
    /// The response headers above as `HeaderValue`s, built by the first response that needs
    /// them and cloned (reference counts, no copies) by every later one.
    pub header_values: std::sync::OnceLock<HeaderValues>,
    /// Set when a request other than the one that fetched it found the entry, or a push filled
    /// it: only such entries are worth a file in the disk tier when the memory tier evicts them.
    pub hit: AtomicBool,
}

/// `Content-Type`, `ETag`, `Last-Modified`, `Cache-Control` of an entry, ready to send.
#[derive(Debug, Default)]
pub struct HeaderValues {
    pub content_type: Option<http::HeaderValue>,
    pub etag: Option<http::HeaderValue>,
    pub last_modified: Option<http::HeaderValue>,
    pub cache_control: Option<http::HeaderValue>,
}

impl Cached {
    /// The entry's headers, built once.
    pub fn header_values(&self) -> &HeaderValues {
        self.header_values.get_or_init(|| {
            let v = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|s| http::HeaderValue::from_str(s).ok())
            };
            HeaderValues {
                content_type: v(&self.content_type),
                etag: v(&self.etag),
                last_modified: v(&self.last_modified),
                cache_control: v(&self.cache_control),
            }
        })
    }

    pub fn fresh(&self, now_ms: i64) -> bool {
        self.expires_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// Keys are `host/path?query`; values shared with the responses that are reading them.
#[derive(Clone)]
pub struct Cache {
    inner: moka::future::Cache<String, Arc<Cached>, Hasher>,
    disk: Option<Arc<Disk>>,
}

/// The caches' key hasher: foldhash, several times cheaper than SipHash on these short keys;
/// its per-process random seed keeps keys chosen by clients from colliding on purpose.
type Hasher = foldhash::fast::RandomState;

/// Fixed per-entry overhead counted besides the body and key (headers, bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;

/// The disk tier: bodies in files named by a counter under `dir` (wiped at start: it is a
/// cache), their metadata in a moka index bounded by the files' bytes; an entry leaving the
/// index removes its file.
struct Disk {
    dir: PathBuf,
    index: moka::future::Cache<String, Arc<OnDisk>, Hasher>,
    next: AtomicU64,
    /// Bumped by every purge; a memory eviction that started before a purge is not written
    /// (it could bring back what the purge removed).
    generation: AtomicU64,
    /// Held while an evicted entry is checked against `generation` and indexed, and while a
    /// purge removes from the index, so the two cannot interleave.
    lock: tokio::sync::Mutex<()>,
}

/// An entry of the disk tier: its file and everything but the body.
struct OnDisk {
    file: PathBuf,
    len: u64,
    status: u16,
    content_type: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    cache_control: Option<String>,
    /// Lowered by an expiring refresh, like `Cached::expires_ms`.
    expires_ms: AtomicI64,
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        // The last holder of an entry removes its file: after eviction or purge, and after any
        // read that was still using it.
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Cache {
    /// A cache holding at most `max_bytes` in memory and, with `disk`, at most `disk.1` bytes
    /// of evicted entries in files under `disk.0`.
    pub fn with_disk(max_bytes: u64, disk: Option<(PathBuf, u64)>) -> std::io::Result<Cache> {
        let disk = match disk {
            Some((dir, max)) if max > 0 => {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                let index = moka::future::Cache::builder()
                    .max_capacity(max)
                    .weigher(|k: &String, v: &Arc<OnDisk>| {
                        u32::try_from(v.len + k.len() as u64 + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                    })
                    .build_with_hasher(Hasher::default());
                Some(Arc::new(Disk {
                    dir,
                    index,
                    next: AtomicU64::new(0),
                    generation: AtomicU64::new(0),
                    lock: tokio::sync::Mutex::new(()),
                }))
            }
            _ => None,
        };
        let mut b = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Arc<Cached>| {
                let w = v.body.len() as u64 + k.len() as u64 + ENTRY_OVERHEAD;
                u32::try_from(w).unwrap_or(u32::MAX)
            });
        if let Some(d) = &disk {
            let d = d.clone();
            b = b.async_eviction_listener(move |k: Arc<String>, v: Arc<Cached>, cause| {
                let d = d.clone();
                let generation = d.generation.load(Ordering::SeqCst);
                Box::pin(async move {
                    if cause == moka::notification::RemovalCause::Size
                        && v.hit.load(Ordering::Relaxed)
                    {
                        d.spill(&k, &v, generation).await;
                    }
                })
            });
        }
        Ok(Cache {
            inner: b.build_with_hasher(Hasher::default()),
            disk,
        })
    }

    /// A memory-only cache holding at most `max_bytes` of entries.
    pub fn new(max_bytes: u64) -> Cache {
        Cache::with_disk(max_bytes, None).unwrap_or_else(|_| unreachable!("no disk tier to open"))
    }

    /// The entry for `key` from memory, else from the disk tier (moved back into memory); either
    /// way it is marked hit.
    pub async fn get(&self, key: &str) -> Option<Arc<Cached>> {
        if let Some(v) = self.inner.get(key).await {
            v.hit.store(true, Ordering::Relaxed);
            return Some(v);
        }
        let d = self.disk.as_ref()?;
        let on = d.index.get(key).await?;
        let body = tokio::fs::read(&on.file).await.ok()?;
        let v = Arc::new(Cached {
            status: on.status,
            content_type: on.content_type.clone(),
            etag: on.etag.clone(),
            last_modified: on.last_modified.clone(),
            cache_control: on.cache_control.clone(),
            body: Bytes::from(body),
            expires_ms: AtomicI64::new(on.expires_ms.load(Ordering::Relaxed)),
            header_values: Default::default(),
            hit: AtomicBool::new(true),
        });
        d.index.invalidate(key).await;
        self.inner.insert(key.to_string(), v.clone()).await;
        Some(v)
    }

    /// The entry for `key`, running `fetch` only if none is cached and no other caller is
    /// already fetching it. Returns the entry and whether this call fetched it.
    pub async fn get_or_fetch<F, E>(
        &self,
        key: &str,
        fetch: F,
    ) -> Result<(Arc<Cached>, bool), Arc<E>>
    where
        F: std::future::Future<Output = Result<Arc<Cached>, E>>,
        E: Send + Sync + 'static,
    {
        let e = self
            .inner
            .entry_by_ref(key)
            .or_try_insert_with(fetch)
            .await?;
        let fresh = e.is_fresh();
        let v = e.into_value();
        if !fresh {
            // Another request's fetch, shared: a hit of that entry.
            v.hit.store(true, Ordering::Relaxed);
        }
        Ok((v, fresh))
    }

    pub async fn insert(&self, key: String, v: Arc<Cached>) {
        self.inner.insert(key, v).await;
    }

    pub async fn remove(&self, key: &str) {
        self.remove_where(|k| k == key).await;
    }

    /// Removes every entry whose key satisfies `pred`, from both tiers; returns how many.
    pub async fn remove_where(&self, pred: impl Fn(&str) -> bool) -> usize {
        if let Some(d) = &self.disk {
            d.generation.fetch_add(1, Ordering::SeqCst);
        }
        let keys: Vec<Arc<String>> = self
            .inner
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            self.inner.invalidate(k.as_str()).await;
        }
        let mut n = keys.len();
        if let Some(d) = &self.disk {
            let _g = d.lock.lock().await;
            let on_disk: Vec<Arc<String>> = d
                .index
                .iter()
                .filter(|(k, _)| pred(k))
                .map(|(k, _)| k)
                .collect();
            for k in &on_disk {
                d.index.invalidate(k.as_str()).await;
            }
            n += on_disk.len();
        }
        n
    }

    /// Marks every entry whose key satisfies `pred` expired, in both tiers, so its next
    /// request revalidates it with the origin (kept when the origin answers 304, replaced
    /// otherwise); returns how many. Like a purge it bumps the disk tier's generation, so an
    /// entry on its way from memory to disk meanwhile is dropped rather than kept fresh.
    pub async fn expire_where(&self, pred: impl Fn(&str) -> bool) -> usize {
        if let Some(d) = &self.disk {
            d.generation.fetch_add(1, Ordering::SeqCst);
        }
        let mut n = 0;
        for (k, v) in self.inner.iter() {
            if pred(&k) {
                v.expires_ms.store(i64::MIN, Ordering::SeqCst);
                n += 1;
            }
        }
        if let Some(d) = &self.disk {
            let _g = d.lock.lock().await;
            for (k, v) in d.index.iter() {
                if pred(&k) {
                    v.expires_ms.store(i64::MIN, Ordering::SeqCst);
                    n += 1;
                }
            }
        }
        n
    }

    /// `remove_where` when `purge`, else `expire_where`.
    pub async fn refresh_where(&self, purge: bool, pred: impl Fn(&str) -> bool) -> usize {
        if purge {
            self.remove_where(pred).await
        } else {
            self.expire_where(pred).await
        }
    }

    /// Bytes held on disk now (after pending evictions run); 0 without a disk tier.
    pub async fn disk_size(&self) -> u64 {
        match &self.disk {
            Some(d) => {
                d.index.run_pending_tasks().await;
                d.index.weighted_size()
            }
            None => 0,
        }
    }

    /// Bytes held now (after pending evictions run).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

impl Disk {
    /// Writes an entry the memory tier evicted, unless a purge came after its eviction.
    async fn spill(&self, key: &str, v: &Cached, generation: u64) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.join(format!("{n:016x}"));
        // A plain write into the page cache (no fsync: it is a cache), on the task that evicted
        // the entry: a few microseconds, cheaper than a hand-off to the blocking pool for every
        // eviction under a stream of misses.
        if let Err(e) = std::fs::write(&file, &v.body) {
            tracing::warn!(error = %e, "cdn: cannot write to the disk cache");
            let _ = std::fs::remove_file(&file);
            return;
        }
        let on = Arc::new(OnDisk {
            file,
            len: v.body.len() as u64,
            status: v.status,
            content_type: v.content_type.clone(),
            etag: v.etag.clone(),
            last_modified: v.last_modified.clone(),
            cache_control: v.cache_control.clone(),
            expires_ms: AtomicI64::new(v.expires_ms.load(Ordering::Relaxed)),
        });
        let _g = self.lock.lock().await;
        if self.generation.load(Ordering::SeqCst) == generation {
            self.index.insert(key.to_string(), on).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Arc<Cached> {
        Arc::new(Cached {
            status: 200,
            content_type: None,
            etag: None,
            last_modified: None,
            cache_control: None,
            body: Bytes::from(vec![0u8; n]),
            expires_ms: AtomicI64::new(i64::MAX),
            header_values: Default::default(),
            hit: AtomicBool::new(false),
        })
    }

    #[tokio::test]
    async fn bounded_and_coalesced() {
        let c = Cache::new(100_000);
        for i in 0..200 {
            c.insert(format!("h/{i}"), entry(10_000)).await;
        }
        assert!(c.weighted_size().await <= 100_000);
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut hs = Vec::new();
        for _ in 0..20 {
            let (c, calls) = (c.clone(), calls.clone());
            hs.push(tokio::spawn(async move {
                c.get_or_fetch::<_, ()>("h/x", async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok(entry(10))
                })
                .await
                .unwrap()
            }));
        }
        let mut fetched = 0;
        for h in hs {
            if h.await.unwrap().1 {
                fetched += 1;
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(fetched, 1);
        assert_eq!(c.remove_where(|k| k.starts_with("h/x")).await, 1);
    }

    #[tokio::test]
    async fn the_disk_tier_takes_evictions_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::with_disk(50_000, Some((dir.path().join("c"), 200_000))).unwrap();
        for i in 0..100u8 {
            let mut e = entry(10_000);
            Arc::get_mut(&mut e).unwrap().body = Bytes::from(vec![i; 10_000]);
            c.insert(format!("h/{i}"), e).await;
            // Hit once: worth a file when evicted.
            assert!(c.get(&format!("h/{i}")).await.is_some());
            c.inner.run_pending_tasks().await;
        }
        c.inner.run_pending_tasks().await;
        // Listeners run in the background: give them a moment.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(c.weighted_size().await <= 50_000);
        assert!(c.disk_size().await <= 200_000);
        assert!(c.disk_size().await > 0, "evictions went to disk");
        let files: u64 = std::fs::read_dir(dir.path().join("c"))
            .unwrap()
            .map(|f| f.unwrap().metadata().unwrap().len())
            .sum();
        assert!(files <= 200_000, "files on disk: {files}");
        // Some early key is now found on disk, with its bytes.
        let mut found = 0;
        for i in 0..100u8 {
            if c.inner.get(&format!("h/{i}")).await.is_none()
                && let Some(v) = c.get(&format!("h/{i}")).await
            {
                assert!(v.body.iter().all(|b| *b == i));
                found += 1;
            }
        }
        assert!(found > 0);
        // A purge removes from both tiers.
        c.remove_where(|_| true).await;
        assert_eq!(c.disk_size().await, 0);
    }

    #[tokio::test]
    async fn entries_never_hit_are_not_written_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::with_disk(50_000, Some((dir.path().join("c"), 200_000))).unwrap();
        for i in 0..100u8 {
            c.insert(format!("h/{i}"), entry(10_000)).await;
            c.inner.run_pending_tasks().await;
        }
        c.inner.run_pending_tasks().await;
        assert!(c.weighted_size().await <= 50_000);
        assert!(c.inner.entry_count() < 100, "the memory tier evicted");
        // Listeners run in the background: give them a moment (they would write, not skip).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(c.disk_size().await, 0);
        assert_eq!(std::fs::read_dir(dir.path().join("c")).unwrap().count(), 0);
        // A coalesced waiter's share counts as a hit too.
        let (v, fetched) = c
            .get_or_fetch::<_, ()>("h/shared", async { Ok(entry(10)) })
            .await
            .unwrap();
        assert!(fetched && !v.hit.load(Ordering::Relaxed));
        assert!(c.get("h/shared").await.unwrap().hit.load(Ordering::Relaxed));
    }
}
