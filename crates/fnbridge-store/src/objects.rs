//! Object-store metadata: buckets, objects, multipart uploads and their parts. The bytes live in
//! files named by `data_id` (the object store crate owns them), or, for small objects, inline
//! in `object_data` under a data id starting with `INLINE_PREFIX`, written in the same
//! transaction as the object's row. A row here is what makes an object exist, so a file without
//! a row is garbage and a row always names complete bytes; an inline blob is deleted in the
//! transaction that drops the last row naming it.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub name: String,
    pub created_ms: i64,
}

/// What kind of write made an object (OSS's `x-oss-object-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    Normal,
    Appendable,
    Multipart,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Normal => "Normal",
            ObjectKind::Appendable => "Appendable",
            ObjectKind::Multipart => "Multipart",
        }
    }

    fn parse(s: &str) -> ObjectKind {
        match s {
            "Appendable" => ObjectKind::Appendable,
            "Multipart" => ObjectKind::Multipart,
            _ => ObjectKind::Normal,
        }
    }
}

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    /// Names the data file.
    pub data_id: String,
    pub size: u64,
    /// Lower-case hex MD5 of the bytes, or `{hex}-{parts}` for a multipart object.
    pub etag: String,
    /// CRC-64/XZ of the bytes (OSS's `x-oss-hash-crc64ecma`).
    pub crc64: u64,
    pub content_type: String,
    /// User metadata, names lower-cased without their protocol prefix, in name order.
    pub meta: Vec<(String, String)>,
    pub kind: ObjectKind,
    pub modified_ms: i64,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub meta: Vec<(String, String)>,
    pub initiated_ms: i64,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub upload_id: String,
    pub part_number: u32,
    pub data_id: String,
    pub size: u64,
    /// Lower-case hex MD5.
    pub etag: String,
    pub crc64: u64,
    pub modified_ms: i64,
}

/// Data ids of bytes stored inline in `object_data` start with this (file ids are hex).
pub const INLINE_PREFIX: &str = "inline-";

/// True when a data id names inline bytes rather than a file.
pub fn is_inline(data_id: &str) -> bool {
    data_id.starts_with(INLINE_PREFIX)
}

/// Small objects' bytes, kept in the database so a small PUT is one commit (schema 6).
pub(crate) const DATA_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS object_data(
    data_id TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);
"#;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS buckets(
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS objects(
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    data_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    crc64 INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    meta TEXT NOT NULL,
    kind TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY(bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads(
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    meta TEXT NOT NULL,
    initiated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts(
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    data_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    crc64 INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY(upload_id, part_number)
) WITHOUT ROWID;
"#;

fn meta_json(meta: &[(String, String)]) -> Result<String, StoreError> {
    Ok(serde_json::to_string(meta)?)
}

fn meta_parse(s: &str) -> Vec<(String, String)> {
    serde_json::from_str(s).unwrap_or_default()
}

pub(crate) fn create_bucket(c: &Connection, b: &Bucket) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO buckets(name, created_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![b.name, b.created_ms],
    )?;
    Ok(n == 1)
}

pub(crate) fn get_bucket(c: &Connection, name: &str) -> Result<Option<Bucket>, StoreError> {
    Ok(c.query_row(
        "SELECT name, created_ms FROM buckets WHERE name = ?1",
        [name],
        |r| {
            Ok(Bucket {
                name: r.get(0)?,
                created_ms: r.get(1)?,
            })
        },
    )
    .optional()?)
}

pub(crate) fn list_buckets(c: &Connection) -> Result<Vec<Bucket>, StoreError> {
    let mut st = c.prepare_cached("SELECT name, created_ms FROM buckets ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(Bucket {
            name: r.get(0)?,
            created_ms: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// True when the bucket holds no object and no multipart upload.
pub(crate) fn bucket_is_empty(c: &Connection, name: &str) -> Result<bool, StoreError> {
    let objects: Option<i64> = c
        .query_row(
            "SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    let uploads: Option<i64> = c
        .query_row(
            "SELECT 1 FROM uploads WHERE bucket = ?1 LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(objects.is_none() && uploads.is_none())
}

pub(crate) fn delete_bucket(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM buckets WHERE name = ?1", [name])? == 1)
}

const OBJECT_COLS: &str =
    "bucket, key, data_id, size, etag, crc64, content_type, meta, kind, modified_ms";

fn object_row(r: &Row<'_>) -> rusqlite::Result<ObjectRecord> {
    let meta: String = r.get(7)?;
    let kind: String = r.get(8)?;
    Ok(ObjectRecord {
        bucket: r.get(0)?,
        key: r.get(1)?,
        data_id: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        etag: r.get(4)?,
        // Stored as the same 64 bits in a signed column.
        crc64: r.get::<_, i64>(5)? as u64,
        content_type: r.get(6)?,
        meta: meta_parse(&meta),
        kind: ObjectKind::parse(&kind),
        modified_ms: r.get(9)?,
    })
}

pub(crate) fn get_object(
    c: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {OBJECT_COLS} FROM objects WHERE bucket = ?1 AND key = ?2"
    ))?;
    Ok(st.query_row(params![bucket, key], object_row).optional()?)
}

/// Inserts or replaces an object, returning the one it replaced.
pub(crate) fn put_object(
    c: &Connection,
    o: &ObjectRecord,
) -> Result<Option<ObjectRecord>, StoreError> {
    let old = get_object(c, &o.bucket, &o.key)?;
    c.prepare_cached(&format!(
        "INSERT OR REPLACE INTO objects({OBJECT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
    ))?
    .execute(params![
        o.bucket,
        o.key,
        o.data_id,
        o.size as i64,
        o.etag,
        o.crc64 as i64,
        o.content_type,
        meta_json(&o.meta)?,
        o.kind.as_str(),
        o.modified_ms
    ])?;
    if let Some(old) = &old
        && old.data_id != o.data_id
    {
        drop_inline(c, &old.data_id)?;
    }
    Ok(old)
}

/// Deletes the inline bytes of a row that was replaced or deleted. Every write of bytes gets a
/// fresh data id (a copy too), so no other row names them, and no scan of `objects` (which
/// has no index on `data_id`) is needed to know.
fn drop_inline(c: &Connection, data_id: &str) -> Result<(), StoreError> {
    if is_inline(data_id) {
        c.prepare_cached("DELETE FROM object_data WHERE data_id = ?1")?
            .execute([data_id])?;
    }
    Ok(())
}

/// Stores an object's bytes inline under `data_id` (which must start with `INLINE_PREFIX`).
pub(crate) fn put_object_data(
    c: &Connection,
    data_id: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    if !is_inline(data_id) {
        return Err(StoreError::Writer(format!(
            "inline object data ids start with '{INLINE_PREFIX}', not '{data_id}'"
        )));
    }
    c.prepare_cached("INSERT OR REPLACE INTO object_data(data_id, bytes) VALUES (?1, ?2)")?
        .execute(params![data_id, bytes])?;
    Ok(())
}

/// The inline bytes of a data id.
pub(crate) fn get_object_data(
    c: &Connection,
    data_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(
        c.prepare_cached("SELECT bytes FROM object_data WHERE data_id = ?1")?
            .query_row([data_id], |r| r.get(0))
            .optional()?,
    )
}

pub(crate) fn delete_object(
    c: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>, StoreError> {
    let old = get_object(c, bucket, key)?;
    if let Some(o) = &old {
        c.execute(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key],
        )?;
        drop_inline(c, &o.data_id)?;
    }
    Ok(old)
}

/// Objects of a bucket in key order (bytes of UTF-8, as S3 and OSS list), with keys starting
/// with `prefix` and greater than `after`.
pub(crate) fn list_objects(
    c: &Connection,
    bucket: &str,
    prefix: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<ObjectRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {OBJECT_COLS} FROM objects WHERE bucket = ?1 AND key > ?2 AND key >= ?3
         AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT ?4"
    ))?;
    let rows = st.query_map(
        params![bucket, after, prefix, limit.min(i64::MAX as usize) as i64],
        object_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every data file an object or part names, for the start-up sweep of unreferenced files.
pub(crate) fn all_data_ids(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare("SELECT data_id FROM objects UNION ALL SELECT data_id FROM parts")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn upload_row(r: &Row<'_>) -> rusqlite::Result<Upload> {
    let meta: String = r.get(4)?;
    Ok(Upload {
        upload_id: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        content_type: r.get(3)?,
        meta: meta_parse(&meta),
        initiated_ms: r.get(5)?,
    })
}

const UPLOAD_COLS: &str = "upload_id, bucket, key, content_type, meta, initiated_ms";

pub(crate) fn create_upload(c: &Connection, u: &Upload) -> Result<(), StoreError> {
    c.execute(
        &format!("INSERT INTO uploads({UPLOAD_COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
        params![
            u.upload_id,
            u.bucket,
            u.key,
            u.content_type,
            meta_json(&u.meta)?,
            u.initiated_ms
        ],
    )?;
    Ok(())
}

pub(crate) fn get_upload(c: &Connection, upload_id: &str) -> Result<Option<Upload>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {UPLOAD_COLS} FROM uploads WHERE upload_id = ?1"),
        [upload_id],
        upload_row,
    )
    .optional()?)
}

/// Removes an upload and its parts, returning the parts (whose files are then garbage).
pub(crate) fn delete_upload(c: &Connection, upload_id: &str) -> Result<Vec<Part>, StoreError> {
    let parts = list_parts(c, upload_id, 0, usize::MAX >> 1)?;
    c.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
    c.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id])?;
    Ok(parts)
}

/// Uploads of a bucket in (key, upload id) order after the markers.
pub(crate) fn list_uploads(
    c: &Connection,
    bucket: &str,
    prefix: &str,
    key_marker: &str,
    upload_id_marker: &str,
    limit: usize,
) -> Result<Vec<Upload>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {UPLOAD_COLS} FROM uploads WHERE bucket = ?1
         AND (key > ?2 OR (key = ?2 AND upload_id > ?3))
         AND substr(key, 1, length(?4)) = ?4 ORDER BY key, upload_id LIMIT ?5"
    ))?;
    let rows = st.query_map(
        params![
            bucket,
            key_marker,
            upload_id_marker,
            prefix,
            limit.min(i64::MAX as usize) as i64
        ],
        upload_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn part_row(r: &Row<'_>) -> rusqlite::Result<Part> {
    Ok(Part {
        upload_id: r.get(0)?,
        part_number: r.get(1)?,
        data_id: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        etag: r.get(4)?,
        crc64: r.get::<_, i64>(5)? as u64,
        modified_ms: r.get(6)?,
    })
}

const PART_COLS: &str = "upload_id, part_number, data_id, size, etag, crc64, modified_ms";

/// Stores a part, returning the one with the same number it replaced.
pub(crate) fn put_part(c: &Connection, p: &Part) -> Result<Option<Part>, StoreError> {
    let old = c
        .query_row(
            &format!("SELECT {PART_COLS} FROM parts WHERE upload_id = ?1 AND part_number = ?2"),
            params![p.upload_id, p.part_number],
            part_row,
        )
        .optional()?;
    c.execute(
        &format!("INSERT OR REPLACE INTO parts({PART_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
        params![
            p.upload_id,
            p.part_number,
            p.data_id,
            p.size as i64,
            p.etag,
            p.crc64 as i64,
            p.modified_ms
        ],
    )?;
    Ok(old)
}

/// Parts of an upload in number order, after part `after`.
pub(crate) fn list_parts(
    c: &Connection,
    upload_id: &str,
    after: u32,
    limit: usize,
) -> Result<Vec<Part>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {PART_COLS} FROM parts WHERE upload_id = ?1 AND part_number > ?2
         ORDER BY part_number LIMIT ?3"
    ))?;
    let rows = st.query_map(
        params![upload_id, after, limit.min(i64::MAX as usize) as i64],
        part_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
