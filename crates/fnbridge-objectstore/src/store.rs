//! `ObjectStore`: the operations every protocol shares (buckets, objects, listing, multipart,
//! append), on files (`data`) and metadata in the store, each change committed with its events
//! through the `EventSink`.
//!
//! A write goes: check the request, stream the bytes in (small ones kept in memory, larger ones
//! to a new file, synced), then one metadata transaction that re-checks what it depends on,
//! stores small bytes inline, writes the row and records the events. The files a commit made unreachable are removed after it; a crash in between leaves
//! them to the start-up sweep. A crash before the commit leaves a file and no row, no event.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use fnbridge_store::objects::{Bucket, ObjectKind, ObjectRecord, Part, Upload};
use fnbridge_store::{Store, StoreError, now_ms};
use futures::Stream;
use md5::{Digest, Md5};

use crate::checksum::Hashers;
use crate::data::{DataDir, ObjectData, WriteError, Written};
use crate::error::{Code, ObjError};
use crate::events::{Change, Identity, Op, bus_events};
use crate::limits::Limits;
use crate::sink::{EventSink, SinkError, commit};

/// Who made a request, for its events.
#[derive(Debug, Clone)]
pub struct ReqCtx {
    pub request_id: String,
    pub source_ip: String,
}

/// What a PUT-like write stores besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct PutMeta {
    pub content_type: Option<String>,
    /// User metadata, names lower-cased without their protocol prefix.
    pub meta: Vec<(String, String)>,
}

/// A listing page.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectRecord>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned, where the next page starts.
    pub next_marker: Option<String>,
}

/// The object store. Cheap to clone.
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    data: DataDir,
    sink: Arc<dyn EventSink>,
    identity: Identity,
    limits: Limits,
    /// Appends to one object run one at a time (they write into its file in place).
    append_locks: Vec<tokio::sync::Mutex<()>>,
}

impl From<SinkError> for ObjError {
    fn from(e: SinkError) -> ObjError {
        match e {
            SinkError::Unavailable(m) => ObjError::new(Code::SlowDown, m),
            SinkError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ObjError {
    fn from(e: StoreError) -> ObjError {
        match e {
            StoreError::DiskFull { .. } => ObjError::new(Code::InsufficientStorage, e.to_string()),
            StoreError::Conflict(m) => ObjError::new(Code::OperationAborted, m),
            other => ObjError::new(Code::InternalError, other.to_string()),
        }
    }
}

impl From<WriteError> for ObjError {
    fn from(e: WriteError) -> ObjError {
        match e {
            WriteError::TooLarge { limit } => ObjError::new(
                Code::EntityTooLarge,
                format!("the body is larger than the {limit}-byte limit"),
            ),
            WriteError::Body(m) => ObjError::new(Code::IncompleteBody, m),
            WriteError::Io(e) if e.raw_os_error() == Some(libc_enospc()) => {
                ObjError::new(Code::InsufficientStorage, format!("no space left: {e}"))
            }
            WriteError::Io(e) => ObjError::new(Code::InternalError, format!("object data: {e}")),
        }
    }
}

/// ENOSPC on Linux (the only platform fnbridge serves on).
fn libc_enospc() -> i32 {
    28
}

/// OSS bucket names: 3–63 characters of `[a-z0-9-]`, starting and ending with a letter or
/// digit (oss-protocol.md §1). S3 and COS names that pass this are valid there too.
pub fn check_bucket_name(name: &str) -> Result<(), ObjError> {
    let b = name.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(ObjError::new(
            Code::InvalidBucketName,
            format!(
                "the bucket name '{}' is not valid: 3-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit",
                name.escape_default()
            ),
        ))
    }
}

/// Object keys: UTF-8, 1–1023 bytes, not starting with `/` or `\`.
pub fn check_key(key: &str) -> Result<(), ObjError> {
    if key.is_empty() || key.len() > 1023 {
        return Err(ObjError::new(
            Code::KeyTooLong,
            format!(
                "object keys must be 1-1023 bytes, this one is {}",
                key.len()
            ),
        )
        .with_key(key.get(..64).unwrap_or("")));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(ObjError::new(
            Code::InvalidObjectName,
            "object keys must not start with '/' or '\\'",
        )
        .with_key(key));
    }
    Ok(())
}

impl ObjectStore {
    /// Opens the store over `data_root` (`<data-dir>/objects`) and sweeps files no metadata
    /// names (left by a crash between writing a file and committing, or between a commit and
    /// removing what it replaced). Call before serving requests.
    pub async fn open(
        store: Store,
        data_root: &std::path::Path,
        sink: Arc<dyn EventSink>,
        identity: Identity,
        limits: Limits,
    ) -> Result<ObjectStore, ObjError> {
        let data = DataDir::open(data_root).map_err(|e| {
            ObjError::new(Code::InternalError, format!("{}: {e}", data_root.display()))
        })?;
        let keep: HashSet<String> = store
            .read(|tx| tx.all_data_ids())
            .await?
            .into_iter()
            .collect();
        let d = data.clone();
        let removed = tokio::task::spawn_blocking(move || d.sweep(&keep))
            .await
            .map_err(|e| ObjError::new(Code::InternalError, e.to_string()))?
            .map_err(|e| {
                ObjError::new(Code::InternalError, format!("sweeping object data: {e}"))
            })?;
        if removed > 0 {
            tracing::info!(
                files = removed,
                "objectstore: removed data files no object names"
            );
        }
        Ok(ObjectStore {
            inner: Arc::new(Inner {
                store,
                data,
                sink,
                identity,
                limits,
                append_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            }),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub fn data(&self) -> &DataDir {
        &self.inner.data
    }

    async fn remove_files(&self, ids: Vec<String>) {
        for id in ids {
            self.inner.data.remove(&id).await;
        }
    }

    // ---- buckets ----

    pub async fn create_bucket(&self, name: &str) -> Result<(), ObjError> {
        check_bucket_name(name)?;
        let b = Bucket {
            name: name.to_string(),
            created_ms: now_ms(),
        };
        let n = self.inner.limits.max_buckets;
        let created = self
            .inner
            .store
            .write(move |tx| {
                if tx.list_buckets()?.len() >= n {
                    return Ok(None);
                }
                Ok(Some(tx.create_bucket(&b)?))
            })
            .await?;
        match created {
            None => Err(ObjError::new(
                Code::TooManyBuckets,
                format!("at most {n} buckets are allowed"),
            )),
            Some(false) => Err(ObjError::new(
                Code::BucketAlreadyExists,
                format!("the bucket '{name}' already exists"),
            )),
            Some(true) => Ok(()),
        }
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<(), ObjError> {
        let n = name.to_string();
        let r = self
            .inner
            .store
            .write(move |tx| {
                if tx.get_bucket(&n)?.is_none() {
                    return Ok(Some(false));
                }
                if !tx.bucket_is_empty(&n)? {
                    return Ok(None);
                }
                Ok(Some(tx.delete_bucket(&n)?))
            })
            .await?;
        match r {
            Some(true) => Ok(()),
            Some(false) => Err(no_bucket(name)),
            None => Err(ObjError::new(
                Code::BucketNotEmpty,
                format!("the bucket '{name}' is not empty: delete its objects and uploads first"),
            )),
        }
    }

    pub async fn bucket(&self, name: &str) -> Result<Bucket, ObjError> {
        let n = name.to_string();
        self.inner
            .store
            .read(move |tx| tx.get_bucket(&n))
            .await?
            .ok_or_else(|| no_bucket(name))
    }

    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ObjError> {
        Ok(self.inner.store.read(|tx| tx.list_buckets()).await?)
    }

    // ---- objects ----

    /// Streams a body in (not yet an object: `commit_put` makes it one); up to
    /// `Limits::inline_max_bytes` it stays in memory to be stored inline.
    pub async fn write_data<S, E>(
        &self,
        bucket: &str,
        key: &str,
        body: S,
        limit: u64,
        hashes: Hashers,
    ) -> Result<Written, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        self.write_data_inline(
            bucket,
            key,
            body,
            limit,
            hashes,
            self.inner.limits.inline_max_bytes,
        )
        .await
    }

    /// Streams a part's body into a new data file (parts are always files: completing an
    /// upload joins their files).
    pub async fn write_part_data<S, E>(
        &self,
        bucket: &str,
        key: &str,
        body: S,
        limit: u64,
        hashes: Hashers,
    ) -> Result<Written, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        self.write_data_inline(bucket, key, body, limit, hashes, 0)
            .await
    }

    async fn write_data_inline<S, E>(
        &self,
        bucket: &str,
        key: &str,
        body: S,
        limit: u64,
        hashes: Hashers,
        inline: u64,
    ) -> Result<Written, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        check_key(key)?;
        // Fail before reading the body when the bucket is missing.
        self.bucket(bucket).await?;
        Ok(self.inner.data.write(body, limit, hashes, inline).await?)
    }

    /// Drops a data file that will not be committed (a checksum mismatch, say).
    pub async fn discard(&self, w: Written) {
        self.inner.data.remove(&w.data_id).await;
    }

    /// Makes a written file the object `bucket/key`, with its event, in one commit.
    // The object (bytes, name, metadata) and how it came to be (op, kind, request).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_put(
        &self,
        bucket: &str,
        key: &str,
        w: Written,
        meta: PutMeta,
        op: Op,
        kind: ObjectKind,
        ctx: &ReqCtx,
    ) -> Result<ObjectRecord, ObjError> {
        self.commit_put_with_events(bucket, key, w, meta, op, kind, ctx, Vec::new())
            .await
    }

    /// `commit_put`, with `extra` events of the caller (a CDN's `LogFileCreated`) committed in
    /// the same transaction as the object row and its own events: both or neither.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_put_with_events(
        &self,
        bucket: &str,
        key: &str,
        w: Written,
        meta: PutMeta,
        op: Op,
        kind: ObjectKind,
        ctx: &ReqCtx,
        extra: Vec<fnbridge_event::BusEvent>,
    ) -> Result<ObjectRecord, ObjError> {
        let rec = ObjectRecord {
            bucket: bucket.to_string(),
            key: key.to_string(),
            data_id: w.data_id.clone(),
            size: w.size,
            etag: hex::encode(w.md5),
            crc64: w.crc64,
            content_type: meta
                .content_type
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "application/octet-stream".into()),
            meta: meta.meta,
            kind,
            modified_ms: now_ms(),
        };
        let r = self.put_record(rec, op, None, w.inline, ctx, extra).await;
        if r.is_err() {
            self.inner.data.remove(&w.data_id).await;
        }
        r
    }

    /// Commits an object row (and its `inline` bytes); with `expect_prev` the current object
    /// must still be the one with that data id and size (appends), else
    /// `PositionNotEqualToLength`.
    async fn put_record(
        &self,
        rec: ObjectRecord,
        op: Op,
        expect_prev: Option<Option<(String, u64)>>,
        inline: Option<Bytes>,
        ctx: &ReqCtx,
        extra: Vec<fnbridge_event::BusEvent>,
    ) -> Result<ObjectRecord, ObjError> {
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let r = rec.clone();
        let outcome = commit(&*self.inner.sink, move |tx| {
            if tx.get_bucket(&r.bucket)?.is_none() {
                return Ok((Err(Code::NoSuchBucket), vec![]));
            }
            if let Some(expected) = &expect_prev {
                let cur = tx
                    .get_object(&r.bucket, &r.key)?
                    .map(|o| (o.data_id, o.size));
                if &cur != expected {
                    return Ok((Err(Code::PositionNotEqualToLength), vec![]));
                }
            }
            if let Some(bytes) = &inline {
                tx.put_object_data(&r.data_id, bytes)?;
            }
            let old = tx.put_object(&r)?;
            let delta = r.size as i64 - old.as_ref().map(|o| o.size as i64).unwrap_or(0);
            let mut events = bus_events(
                &identity,
                &Change {
                    op,
                    bucket: &r.bucket,
                    key: &r.key,
                    size: r.size,
                    delta,
                    etag: &r.etag,
                    content_type: &r.content_type,
                    meta: &r.meta,
                    request_id: &ctx.request_id,
                    source_ip: &ctx.source_ip,
                    time_ms: r.modified_ms,
                },
            );
            events.extend(extra);
            Ok((Ok(old.map(|o| o.data_id)), events))
        })
        .await?;
        match outcome {
            Ok(old) => {
                if let Some(old) = old.filter(|o| *o != rec.data_id) {
                    self.remove_files(vec![old]).await;
                }
                Ok(rec)
            }
            Err(Code::NoSuchBucket) => Err(no_bucket(&rec.bucket)),
            Err(code) => Err(ObjError::new(
                code,
                "the object changed while appending: position is not its length",
            )),
        }
    }

    pub async fn head(&self, bucket: &str, key: &str) -> Result<ObjectRecord, ObjError> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let (has_bucket, obj) = self
            .inner
            .store
            .read(move |tx| Ok((tx.get_bucket(&b)?.is_some(), tx.get_object(&b, &k)?)))
            .await?;
        if !has_bucket {
            return Err(no_bucket(bucket));
        }
        obj.ok_or_else(|| no_key(key))
    }

    /// An object and its bytes, open for reading: its inline bytes (read with the row), or
    /// its open data file. A concurrent overwrite may remove the file between reading the row
    /// and opening it; then the row is read again (once open, the bytes stay readable whatever
    /// happens to the name).
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectRecord, ObjectData), ObjError> {
        for _ in 0..3 {
            let (b, k) = (bucket.to_string(), key.to_string());
            let (has_bucket, obj) = self
                .inner
                .store
                .read(move |tx| {
                    let Some(rec) = tx.get_object(&b, &k)? else {
                        return Ok((tx.get_bucket(&b)?.is_some(), None));
                    };
                    let inline = if fnbridge_store::objects::is_inline(&rec.data_id) {
                        Some(tx.get_object_data(&rec.data_id)?.ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "the inline bytes of {b}/{k} ({}) are missing",
                                rec.data_id
                            ))
                        })?)
                    } else {
                        None
                    };
                    Ok((true, Some((rec, inline))))
                })
                .await?;
            if !has_bucket {
                return Err(no_bucket(bucket));
            }
            let Some((rec, inline)) = obj else {
                return Err(no_key(key));
            };
            if let Some(bytes) = inline {
                return Ok((rec, ObjectData::inline(bytes.into())));
            }
            match self.inner.data.open_file(&rec.data_id).await {
                Ok(f) => {
                    let len = rec.size;
                    return Ok((rec, ObjectData::file(f, len)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ObjError::new(
                        Code::InternalError,
                        format!("object data: {e}"),
                    ));
                }
            }
        }
        Err(ObjError::new(
            Code::SlowDown,
            "the object is being rewritten; retry",
        ))
    }

    /// Deletes objects (one event each), in one commit. Returns the keys that existed.
    pub async fn delete(
        &self,
        bucket: &str,
        keys: Vec<String>,
        op: Op,
        ctx: &ReqCtx,
    ) -> Result<Vec<String>, ObjError> {
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let b = bucket.to_string();
        let r = commit(&*self.inner.sink, move |tx| {
            if tx.get_bucket(&b)?.is_none() {
                return Ok((None, vec![]));
            }
            let now = now_ms();
            let mut removed = Vec::new();
            let mut events = Vec::new();
            for k in keys {
                if let Some(old) = tx.delete_object(&b, &k)? {
                    events.extend(bus_events(
                        &identity,
                        &Change {
                            op,
                            bucket: &b,
                            key: &k,
                            size: 0,
                            delta: -(old.size as i64),
                            etag: &old.etag,
                            content_type: &old.content_type,
                            meta: &old.meta,
                            request_id: &ctx.request_id,
                            source_ip: &ctx.source_ip,
                            time_ms: now,
                        },
                    ));
                    removed.push((k, old.data_id));
                }
            }
            Ok((Some(removed), events))
        })
        .await?;
        let Some(removed) = r else {
            return Err(no_bucket(bucket));
        };
        let (keys, files): (Vec<String>, Vec<String>) = removed.into_iter().unzip();
        self.remove_files(files).await;
        Ok(keys)
    }

    /// Copies an object's bytes (the source may be overwritten or deleted meanwhile; the copy
    /// is of the bytes opened): into a new file for a part, else inline when small enough.
    pub async fn copy_data(
        &self,
        src_bucket: &str,
        src_key: &str,
        range: Option<std::ops::Range<u64>>,
        for_part: bool,
    ) -> Result<(ObjectRecord, Written), ObjError> {
        let (rec, file) = self.open_object(src_bucket, src_key).await?;
        let inline = if for_part {
            0
        } else {
            self.inner.limits.inline_max_bytes
        };
        let w = self
            .write_file_range(file, range.unwrap_or(0..rec.size), inline)
            .await?;
        Ok((rec, w))
    }

    async fn write_file_range(
        &self,
        mut file: ObjectData,
        range: std::ops::Range<u64>,
        inline: u64,
    ) -> Result<Written, ObjError> {
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(WriteError::from)?;
        let stream = crate::data::tokio_util_like::limited(file, range.end - range.start);
        Ok(self
            .inner
            .data
            .write(stream, u64::MAX, Hashers::default(), inline)
            .await?)
    }

    /// OSS AppendObject: `position` must be the object's length (0 creates it). The first
    /// append writes a new file; later ones write only their bytes at the end of it (after
    /// cutting whatever a failed append left past the object), sync it, and commit the new
    /// length, CRC-64 (combined from the old one and the new bytes') and ETag, only if no
    /// other write replaced the object meanwhile. Appends to one object run one at a time.
    pub async fn append<S, E>(
        &self,
        bucket: &str,
        key: &str,
        position: u64,
        body: S,
        meta: PutMeta,
        ctx: &ReqCtx,
    ) -> Result<ObjectRecord, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display + Send,
    {
        let one_at_a_time = self.append_lock(bucket, key).lock().await;
        let current = match self.append_check(bucket, key, position).await {
            Ok(c) => c,
            Err(e) => {
                drop(one_at_a_time);
                // A small refused body is read and dropped, so the client keeps its keep-alive
                // connection (an unread body makes the server close it).
                drain(body, 64 << 10).await;
                return Err(e);
            }
        };
        let len = current.as_ref().map(|c| c.size).unwrap_or(0);
        // The appended part alone is bounded by what is left of the object limit.
        let limit = self.inner.limits.max_object_bytes.saturating_sub(len);
        let Some(c) = current else {
            let w = self
                .inner
                .data
                .write(body, limit, Hashers::default(), 0)
                .await?;
            let rec = ObjectRecord {
                bucket: bucket.to_string(),
                key: key.to_string(),
                data_id: w.data_id.clone(),
                size: w.size,
                etag: hex::encode(w.md5),
                crc64: w.crc64,
                content_type: meta
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                meta: meta.meta,
                kind: ObjectKind::Appendable,
                modified_ms: now_ms(),
            };
            let r = self
                .put_record(rec, Op::Append, Some(None), None, ctx, Vec::new())
                .await;
            if r.is_err() {
                self.inner.data.remove(&w.data_id).await;
            }
            return r;
        };
        let added = match self.inner.data.append(&c.data_id, len, body, limit).await {
            Ok(a) => a,
            // Replaced or deleted since it was read, and its file removed.
            Err(WriteError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ObjError::new(
                    Code::PositionNotEqualToLength,
                    "the object changed while appending: position is not its length",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        // Not the MD5 of the whole object (OSS's ETag of an appendable object is not either):
        // the MD5 of the previous ETag's bytes and the appended bytes' MD5.
        let mut md5 = Md5::new();
        md5.update(hex::decode(&c.etag).unwrap_or_else(|_| c.etag.clone().into_bytes()));
        md5.update(added.md5);
        let rec = ObjectRecord {
            size: len + added.size,
            etag: hex::encode(md5.finalize()),
            crc64: crate::checksum::crc64_combine(c.crc64, added.crc64, added.size),
            modified_ms: now_ms(),
            ..c.clone()
        };
        // A failed commit leaves the new bytes past the recorded length: unread, and cut by
        // the next append.
        self.put_record(
            rec,
            Op::Append,
            Some(Some((c.data_id, len))),
            None,
            ctx,
            Vec::new(),
        )
        .await
    }

    /// The object an append at `position` extends (`None`: it creates it), or why it cannot.
    async fn append_check(
        &self,
        bucket: &str,
        key: &str,
        position: u64,
    ) -> Result<Option<ObjectRecord>, ObjError> {
        check_key(key)?;
        self.bucket(bucket).await?;
        let current = match self.head(bucket, key).await {
            Ok(r) => Some(r),
            Err(e) if e.code == Code::NoSuchKey => None,
            Err(e) => return Err(e),
        };
        let len = current.as_ref().map(|c| c.size).unwrap_or(0);
        if let Some(c) = &current
            && (c.kind != ObjectKind::Appendable || fnbridge_store::objects::is_inline(&c.data_id))
        {
            return Err(ObjError::new(
                Code::ObjectNotAppendable,
                "the object was not created by AppendObject",
            ));
        }
        if position != len {
            return Err(ObjError::new(
                Code::PositionNotEqualToLength,
                format!("position {position} is not the object's length {len}"),
            )
            .with_header("x-oss-next-append-position", len.to_string()));
        }
        Ok(current)
    }

    /// The lock appends to `bucket/key` take (one of a fixed set, by hash).
    fn append_lock(&self, bucket: &str, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut h);
        let locks = &self.inner.append_locks;
        &locks[(h.finish() % locks.len() as u64) as usize]
    }

    /// One page of a listing: keys starting with `prefix` after `after`; with a delimiter,
    /// keys sharing the part up to the next delimiter are rolled up into one common prefix.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        after: &str,
        max: usize,
    ) -> Result<Listing, ObjError> {
        self.bucket(bucket).await?;
        let max = max.min(1000);
        let mut out = Listing::default();
        if max == 0 {
            return Ok(out);
        }
        let mut cursor = after.to_string();
        let mut count = 0;
        loop {
            let (b, p, c) = (bucket.to_string(), prefix.to_string(), cursor.clone());
            let batch = self
                .inner
                .store
                .read(move |tx| tx.list_objects(&b, &p, &c, max + 1))
                .await?;
            if batch.is_empty() {
                return Ok(out);
            }
            let full = batch.len() == max + 1;
            let mut restart = None;
            for o in batch {
                let rest = &o.key[prefix.len()..];
                let cp = (!delimiter.is_empty())
                    .then(|| rest.find(delimiter))
                    .flatten()
                    .map(|i| o.key[..prefix.len() + i + delimiter.len()].to_string());
                if count == max {
                    out.truncated = true;
                    return Ok(out);
                }
                match cp {
                    Some(cp) => {
                        if cp.as_str() <= after {
                            // The marker is inside this prefix: skip past it.
                            restart = Some(skip_past(&cp));
                            break;
                        }
                        out.common_prefixes.push(cp.clone());
                        out.next_marker = Some(cp.clone());
                        count += 1;
                        // Every other key under the prefix rolls up into it: read on past it.
                        restart = Some(skip_past(&cp));
                        break;
                    }
                    None => {
                        out.next_marker = Some(o.key.clone());
                        cursor = o.key.clone();
                        out.objects.push(o);
                        count += 1;
                    }
                }
            }
            match restart {
                Some(r) => cursor = r,
                None if !full => return Ok(out),
                None => {}
            }
        }
    }

    // ---- multipart ----

    pub async fn initiate(
        &self,
        bucket: &str,
        key: &str,
        meta: PutMeta,
        ctx: &ReqCtx,
    ) -> Result<String, ObjError> {
        check_key(key)?;
        let upload_id = format!("{:032X}", rand::random::<u128>());
        let u = Upload {
            upload_id: upload_id.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            content_type: meta
                .content_type
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "application/octet-stream".into()),
            meta: meta.meta,
            initiated_ms: now_ms(),
        };
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let ok = commit(&*self.inner.sink, move |tx| {
            if tx.get_bucket(&u.bucket)?.is_none() {
                return Ok((false, vec![]));
            }
            tx.create_upload(&u)?;
            let events = bus_events(
                &identity,
                &Change {
                    op: Op::InitiateMultipartUpload,
                    bucket: &u.bucket,
                    key: &u.key,
                    size: 0,
                    delta: 0,
                    etag: "",
                    content_type: &u.content_type,
                    meta: &u.meta,
                    request_id: &ctx.request_id,
                    source_ip: &ctx.source_ip,
                    time_ms: u.initiated_ms,
                },
            );
            Ok((true, events))
        })
        .await?;
        if !ok {
            return Err(no_bucket(bucket));
        }
        Ok(upload_id)
    }

    pub async fn upload(&self, bucket: &str, upload_id: &str) -> Result<Upload, ObjError> {
        let id = upload_id.to_string();
        match self.inner.store.read(move |tx| tx.get_upload(&id)).await? {
            Some(u) if u.bucket == bucket => Ok(u),
            _ => {
                self.bucket(bucket).await?;
                Err(no_upload(upload_id))
            }
        }
    }

    /// Stores a written file as part `n` of an upload, with its event.
    pub async fn commit_part(
        &self,
        upload: &Upload,
        n: u32,
        w: Written,
        op: Op,
        ctx: &ReqCtx,
    ) -> Result<Part, ObjError> {
        let part = Part {
            upload_id: upload.upload_id.clone(),
            part_number: n,
            data_id: w.data_id.clone(),
            size: w.size,
            etag: hex::encode(w.md5),
            crc64: w.crc64,
            modified_ms: now_ms(),
        };
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let p = part.clone();
        let (bucket, key) = (upload.bucket.clone(), upload.key.clone());
        let r = commit(&*self.inner.sink, move |tx| {
            if tx.get_upload(&p.upload_id)?.is_none() {
                return Ok((None, vec![]));
            }
            let old = tx.put_part(&p)?;
            let events = bus_events(
                &identity,
                &Change {
                    op,
                    bucket: &bucket,
                    key: &key,
                    size: p.size,
                    delta: 0,
                    etag: &p.etag,
                    content_type: "",
                    meta: &[],
                    request_id: &ctx.request_id,
                    source_ip: &ctx.source_ip,
                    time_ms: p.modified_ms,
                },
            );
            Ok((Some(old.map(|o| o.data_id)), events))
        })
        .await;
        match r {
            Ok(Some(old)) => {
                if let Some(old) = old {
                    self.remove_files(vec![old]).await;
                }
                Ok(part)
            }
            Ok(None) => {
                self.inner.data.remove(&w.data_id).await;
                Err(no_upload(&upload.upload_id))
            }
            Err(e) => {
                self.inner.data.remove(&w.data_id).await;
                Err(e.into())
            }
        }
    }

    /// Parts of an upload after part `after`.
    pub async fn parts(
        &self,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<Vec<Part>, ObjError> {
        let id = upload_id.to_string();
        Ok(self
            .inner
            .store
            .read(move |tx| tx.list_parts(&id, after, max))
            .await?)
    }

    pub async fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_id_marker: &str,
        max: usize,
    ) -> Result<Vec<Upload>, ObjError> {
        self.bucket(bucket).await?;
        let (b, p, k, u) = (
            bucket.to_string(),
            prefix.to_string(),
            key_marker.to_string(),
            upload_id_marker.to_string(),
        );
        Ok(self
            .inner
            .store
            .read(move |tx| tx.list_uploads(&b, &p, &k, &u, max))
            .await?)
    }

    /// Completes an upload from the listed parts (ascending numbers, ETags as uploaded): their
    /// bytes are joined into one new file, which becomes the object in the commit that removes
    /// the upload.
    pub async fn complete(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: Vec<(u32, String)>,
        ctx: &ReqCtx,
    ) -> Result<ObjectRecord, ObjError> {
        let upload = self.upload(bucket, upload_id).await?;
        if upload.key != key {
            return Err(no_upload(upload_id));
        }
        if listed.is_empty() {
            return Err(ObjError::new(
                Code::MalformedXML,
                "the part list of a complete request must not be empty",
            ));
        }
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ObjError::new(
                Code::InvalidPartOrder,
                "the list of parts was not in ascending order",
            ));
        }
        let stored = self.parts(upload_id, 0, 10_001).await?;
        let mut chosen = Vec::with_capacity(listed.len());
        for (i, (n, etag)) in listed.iter().enumerate() {
            let want = etag.trim_matches('"').to_ascii_lowercase();
            let Some(p) = stored.iter().find(|p| p.part_number == *n) else {
                return Err(ObjError::new(
                    Code::InvalidPart,
                    format!("part {n} was not uploaded"),
                ));
            };
            if p.etag != want {
                return Err(ObjError::new(
                    Code::InvalidPart,
                    format!("part {n}'s ETag does not match the uploaded part"),
                ));
            }
            if i + 1 < listed.len() && p.size < self.inner.limits.min_part_bytes {
                return Err(ObjError::new(
                    Code::EntityTooSmall,
                    format!(
                        "part {n} is {} bytes; every part but the last must be at least {}",
                        p.size, self.inner.limits.min_part_bytes
                    ),
                ));
            }
            chosen.push(p.clone());
        }
        let ids: Vec<String> = chosen.iter().map(|p| p.data_id.clone()).collect();
        let w = self
            .inner
            .data
            .concat(&ids, self.inner.limits.max_object_bytes)
            .await?;
        let mut md5 = Md5::new();
        for p in &chosen {
            md5.update(hex::decode(&p.etag).unwrap_or_default());
        }
        let etag = format!("{}-{}", hex::encode(md5.finalize()), chosen.len());
        let rec = ObjectRecord {
            bucket: bucket.to_string(),
            key: key.to_string(),
            data_id: w.data_id.clone(),
            size: w.size,
            etag,
            crc64: w.crc64,
            content_type: upload.content_type.clone(),
            meta: upload.meta.clone(),
            kind: ObjectKind::Multipart,
            modified_ms: now_ms(),
        };
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let r = rec.clone();
        let uid = upload_id.to_string();
        let outcome = commit(&*self.inner.sink, move |tx| {
            if tx.get_upload(&uid)?.is_none() {
                return Ok((None, vec![]));
            }
            let parts = tx.delete_upload(&uid)?;
            let old = tx.put_object(&r)?;
            let delta = r.size as i64 - old.as_ref().map(|o| o.size as i64).unwrap_or(0);
            let mut garbage: Vec<String> = parts.into_iter().map(|p| p.data_id).collect();
            garbage.extend(old.map(|o| o.data_id));
            let events = bus_events(
                &identity,
                &Change {
                    op: Op::CompleteMultipartUpload,
                    bucket: &r.bucket,
                    key: &r.key,
                    size: r.size,
                    delta,
                    etag: &r.etag,
                    content_type: &r.content_type,
                    meta: &r.meta,
                    request_id: &ctx.request_id,
                    source_ip: &ctx.source_ip,
                    time_ms: r.modified_ms,
                },
            );
            Ok((Some(garbage), events))
        })
        .await;
        match outcome {
            Ok(Some(garbage)) => {
                self.remove_files(garbage).await;
                Ok(rec)
            }
            Ok(None) => {
                self.inner.data.remove(&w.data_id).await;
                Err(no_upload(upload_id))
            }
            Err(e) => {
                self.inner.data.remove(&w.data_id).await;
                Err(e.into())
            }
        }
    }

    pub async fn abort(&self, bucket: &str, upload_id: &str, ctx: &ReqCtx) -> Result<(), ObjError> {
        let upload = self.upload(bucket, upload_id).await?;
        let identity = self.inner.identity.clone();
        let ctx = ctx.clone();
        let r = commit(&*self.inner.sink, move |tx| {
            if tx.get_upload(&upload.upload_id)?.is_none() {
                return Ok((None, vec![]));
            }
            let parts = tx.delete_upload(&upload.upload_id)?;
            let events = bus_events(
                &identity,
                &Change {
                    op: Op::AbortMultipartUpload,
                    bucket: &upload.bucket,
                    key: &upload.key,
                    size: 0,
                    delta: 0,
                    etag: "",
                    content_type: &upload.content_type,
                    meta: &upload.meta,
                    request_id: &ctx.request_id,
                    source_ip: &ctx.source_ip,
                    time_ms: now_ms(),
                },
            );
            Ok((
                Some(parts.into_iter().map(|p| p.data_id).collect::<Vec<_>>()),
                events,
            ))
        })
        .await?;
        match r {
            Some(files) => {
                self.remove_files(files).await;
                Ok(())
            }
            None => Err(no_upload(upload_id)),
        }
    }
}

/// Reads and drops a body, up to a little past `max` bytes.
async fn drain<S, E>(body: S, max: u64)
where
    S: Stream<Item = Result<Bytes, E>>,
{
    use futures::StreamExt;
    let mut body = std::pin::pin!(body);
    let mut n = 0u64;
    while n <= max {
        match body.next().await {
            Some(Ok(b)) => n += b.len() as u64,
            _ => break,
        }
    }
}

/// The smallest string above every key that starts with `p` (`p` + the highest character).
fn skip_past(p: &str) -> String {
    let mut s = p.to_string();
    s.push(char::MAX);
    s
}

pub(crate) fn no_bucket(name: &str) -> ObjError {
    ObjError::new(Code::NoSuchBucket, "the specified bucket does not exist").with_bucket(name)
}

pub(crate) fn no_key(key: &str) -> ObjError {
    ObjError::new(Code::NoSuchKey, "the specified key does not exist").with_key(key)
}

pub(crate) fn no_upload(id: &str) -> ObjError {
    ObjError::new(
        Code::NoSuchUpload,
        format!(
            "the multipart upload '{id}' does not exist: it may have been aborted or completed"
        ),
    )
}
