//! The edge's memory cache: entries weighed by their bytes in a size-bounded moka cache (LRU-ish
//! TinyLFU eviction), and request coalescing: concurrent misses for one key share one origin
//! fetch (`Entry::or_try_insert_with` runs a single initializer per key; the others wait for it).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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
}

impl Cached {
    pub fn fresh(&self, now_ms: i64) -> bool {
        self.expires_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// Keys are `host/path?query`; values shared with the responses that are reading them.
#[derive(Clone)]
pub struct Cache {
    inner: moka::future::Cache<String, Arc<Cached>>,
}

/// Fixed per-entry overhead counted besides the body and key (headers, bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;

impl Cache {
    /// A cache holding at most `max_bytes` of entries.
    pub fn new(max_bytes: u64) -> Cache {
        let inner = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Arc<Cached>| {
                let w = v.body.len() as u64 + k.len() as u64 + ENTRY_OVERHEAD;
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .build();
        Cache { inner }
    }

    pub async fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.inner.get(key).await
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
        Ok((e.into_value(), fresh))
    }

    pub async fn insert(&self, key: String, v: Arc<Cached>) {
        self.inner.insert(key, v).await;
    }

    pub async fn remove(&self, key: &str) {
        self.inner.invalidate(key).await;
    }

    /// Removes every entry whose key satisfies `pred`; returns how many.
    pub async fn remove_where(&self, pred: impl Fn(&str) -> bool) -> usize {
        let keys: Vec<Arc<String>> = self
            .inner
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            self.inner.invalidate(k.as_str()).await;
        }
        keys.len()
    }

    /// Bytes held now (after pending evictions run).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
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
}
