//! Object bytes: small ones (up to the `inline` bound a write is given) handed back in memory
//! for the metadata transaction to store inline, larger ones in files under
//! `<data-dir>/objects/`, fdatasynced (with their directory) before any metadata names them,
//! read back by id.
//!
//! A file is written straight under its final name: until a committed row names its id no
//! reader can reach it, and the start-up sweep removes files no row names, so a crash mid-write
//! leaves only garbage. File names come from random ids (`objects/ab/abcdef…`), never from
//! bucket names or keys, so no request can name a path outside the directory, and no key is too
//! long or too odd for the file system. The 256 shard directories are made (and the root
//! synced) once at open.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use crate::checksum::Hashers;

/// The data directory of the object store.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Stored bytes and what was computed while writing them.
#[derive(Debug, Clone)]
pub struct Written {
    /// A file id, or an inline id (`objects::INLINE_PREFIX`) when `inline` holds the bytes.
    pub data_id: String,
    /// The bytes, when they are small enough to be stored in the metadata transaction.
    pub inline: Option<Bytes>,
    pub size: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
    pub hashes: Hashers,
}

/// What an append added to a file.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub size: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
}

/// An object's bytes open for reading: its file, or the inline bytes read with its row. A file
/// reads as at most the object's size: an append in progress (or one a crash cut short before
/// its commit) may have written past it.
#[derive(Debug)]
pub enum ObjectData {
    File(BoundedFile),
    Inline(std::io::Cursor<Bytes>),
}

/// A data file read up to a length.
#[derive(Debug)]
pub struct BoundedFile {
    file: tokio::fs::File,
    pos: u64,
    len: u64,
}

impl ObjectData {
    pub fn inline(bytes: Bytes) -> ObjectData {
        ObjectData::Inline(std::io::Cursor::new(bytes))
    }

    /// A file whose first `len` bytes are the object.
    pub fn file(file: tokio::fs::File, len: u64) -> ObjectData {
        ObjectData::File(BoundedFile { file, pos: 0, len })
    }
}

impl tokio::io::AsyncRead for ObjectData {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ObjectData::File(b) => {
                let left = b.len.saturating_sub(b.pos);
                let room = (buf.remaining() as u64).min(left) as usize;
                if room == 0 {
                    return std::task::Poll::Ready(Ok(()));
                }
                let mut sub = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(room));
                let r = std::pin::Pin::new(&mut b.file).poll_read(cx, &mut sub);
                let n = sub.filled().len();
                if let std::task::Poll::Ready(Ok(())) = &r {
                    buf.advance(n);
                    b.pos += n as u64;
                }
                r
            }
            ObjectData::Inline(c) => std::pin::Pin::new(c).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncSeek for ObjectData {
    fn start_seek(self: std::pin::Pin<&mut Self>, pos: io::SeekFrom) -> io::Result<()> {
        match self.get_mut() {
            ObjectData::File(b) => std::pin::Pin::new(&mut b.file).start_seek(pos),
            ObjectData::Inline(c) => std::pin::Pin::new(c).start_seek(pos),
        }
    }

    fn poll_complete(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<u64>> {
        match self.get_mut() {
            ObjectData::File(b) => {
                let r = std::pin::Pin::new(&mut b.file).poll_complete(cx);
                if let std::task::Poll::Ready(Ok(p)) = &r {
                    b.pos = *p;
                }
                r
            }
            ObjectData::Inline(c) => std::pin::Pin::new(c).poll_complete(cx),
        }
    }
}

/// Why a write did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn fresh_id() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

/// Buffered bytes are written to the file in pieces of this size (each write is a hop to the
/// blocking pool); it is above every inline bound, so an inline body never touches a file.
const WRITE_CHUNK: usize = 256 * 1024;

impl DataDir {
    /// Creates `<root>`, its `tmp/` (left from older versions; swept) and the 256 shard
    /// directories if needed, and syncs the root so they survive a crash.
    pub fn open(root: &Path) -> io::Result<DataDir> {
        std::fs::create_dir_all(root.join("tmp"))?;
        for shard in 0..=255u8 {
            let dir = root.join(format!("{shard:02x}"));
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir)?;
            }
        }
        std::fs::File::open(root)?.sync_all()?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// The file of a data id; ids are hex, so the path stays under the root.
    pub fn path(&self, data_id: &str) -> PathBuf {
        let shard = data_id.get(..2).unwrap_or("00");
        self.root.join(shard).join(data_id)
    }

    /// Streams `body` in: hashes on the way and refuses more than `limit` bytes. A body of at
    /// most `inline` bytes is returned in memory under an inline id, for the caller to store in
    /// its metadata transaction; a larger one goes to a new file and this returns only once
    /// the file and its directory entry are synced, so metadata written after this names
    /// complete, durable bytes.
    pub async fn write<S, E>(
        &self,
        body: S,
        limit: u64,
        mut hashes: Hashers,
        inline: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut md5 = Md5::new();
        let mut crc = crate::checksum::crc64();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut buf: Vec<u8> = Vec::with_capacity(inline.min(WRITE_CHUNK as u64) as usize + 1);
        let mut file: Option<(String, tokio::fs::File)> = None;
        let r: Result<(), WriteError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(WriteError::TooLarge { limit });
                }
                md5.update(&chunk);
                crc.update(&chunk);
                hashes.update(&chunk);
                buf.extend_from_slice(&chunk);
                if buf.len() >= WRITE_CHUNK {
                    if file.is_none() {
                        file = Some(self.create().await?);
                    }
                    if let Some((_, f)) = &mut file {
                        f.write_all(&buf).await?;
                    }
                    buf.clear();
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = r {
            if let Some((id, _)) = file {
                self.remove(&id).await;
            }
            return Err(e);
        }
        let (md5, crc64): ([u8; 16], u64) = (md5.finalize().into(), crc.finalize());
        // `inline == 0` asks for a file whatever the size (parts, appendable objects), an
        // empty one included.
        if file.is_none() && inline > 0 && size <= inline {
            return Ok(Written {
                data_id: format!("{}{}", fnbridge_store::objects::INLINE_PREFIX, fresh_id()),
                inline: Some(Bytes::from(buf)),
                size,
                md5,
                crc64,
                hashes,
            });
        }
        let (data_id, mut f) = match file {
            Some(x) => x,
            None => self.create().await?,
        };
        let synced = async {
            if !buf.is_empty() {
                f.write_all(&buf).await?;
            }
            f.flush().await?;
            // The data and the directory entry, synced side by side (two journal commits
            // that the file system may merge).
            let dir = self
                .path(&data_id)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let (a, b) = tokio::join!(f.sync_data(), sync_dir(dir));
            a.and(b)
        }
        .await;
        if let Err(e) = synced {
            self.remove(&data_id).await;
            return Err(e.into());
        }
        Ok(Written {
            data_id,
            inline: None,
            size,
            md5,
            crc64,
            hashes,
        })
    }

    /// Writes `body` at offset `at` of an existing file (an append), after cutting the file to
    /// `at` (bytes a failed append left), and syncs it. Returns the new bytes' size, MD5 and
    /// CRC-64; the caller commits the new length.
    pub async fn append<S, E>(
        &self,
        data_id: &str,
        at: u64,
        body: S,
        limit: u64,
    ) -> Result<Appended, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        use tokio::io::AsyncSeekExt;
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.path(data_id))
            .await?;
        f.set_len(at).await?;
        f.seek(io::SeekFrom::Start(at)).await?;
        let mut md5 = Md5::new();
        let mut crc = crate::checksum::crc64();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(WriteError::TooLarge { limit });
            }
            md5.update(&chunk);
            crc.update(&chunk);
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_CHUNK {
                f.write_all(&buf).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            f.write_all(&buf).await?;
        }
        f.flush().await?;
        f.sync_data().await?;
        Ok(Appended {
            size,
            md5: md5.finalize().into(),
            crc64: crc.finalize(),
        })
    }

    /// Creates the file of a new data id (its shard directory is made if it went missing).
    async fn create(&self) -> io::Result<(String, tokio::fs::File)> {
        let id = fresh_id();
        let path = self.path(&id);
        let f = match tokio::fs::File::create_new(&path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                tokio::fs::create_dir_all(&dir).await?;
                sync_dir(self.root.clone()).await?;
                tokio::fs::File::create_new(&path).await?
            }
            r => r?,
        };
        Ok((id, f))
    }

    /// Concatenates files (a completed multipart upload) into a new one, hashing it whole.
    pub async fn concat(&self, ids: &[String], limit: u64) -> Result<Written, WriteError> {
        // Parts are always files (`ObjectStore::write_part_data`), so the ids name files.
        let files: Vec<PathBuf> = ids.iter().map(|id| self.path(id)).collect();
        let stream = futures::stream::iter(files)
            .then(|p| async move { tokio::fs::File::open(p).await })
            .map(|f| match f {
                Ok(f) => tokio_util_like::reader_stream(f).boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        self.write(stream, limit, Hashers::default(), 0).await
    }

    /// Opens a stored file.
    pub async fn open_file(&self, data_id: &str) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(data_id)).await
    }

    /// Removes a file no metadata names any more (after the commit that dropped it). A crash
    /// before this leaves the file for the start-up sweep.
    pub async fn remove(&self, data_id: &str) {
        if fnbridge_store::objects::is_inline(data_id) {
            // Inline bytes go with the transaction that drops their row.
            return;
        }
        if let Err(e) = tokio::fs::remove_file(self.path(data_id)).await
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "objectstore: cannot remove an unused data file");
        }
    }

    /// Removes temporary files and data files whose id is not in `keep`. Run at start, before
    /// the listener accepts writes, so no file in flight can be taken for garbage.
    pub fn sweep(&self, keep: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        for e in std::fs::read_dir(self.root.join("tmp"))?.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        for shard in std::fs::read_dir(&self.root)?.flatten() {
            if shard.file_name() == "tmp" || !shard.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(shard.path())?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) && std::fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// fsyncs a directory so a rename into it survives a crash.
async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

/// A file as a stream of chunks (what tokio-util's `ReaderStream` does, without the crate).
pub(crate) mod tokio_util_like {
    use bytes::{Bytes, BytesMut};
    use futures::Stream;
    use tokio::io::{AsyncRead, AsyncReadExt};

    pub fn reader_stream<R: AsyncRead + Unpin + Send + 'static>(
        r: R,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        futures::stream::unfold(Some(r), |r| async move {
            let mut r = r?;
            let mut buf = BytesMut::with_capacity(64 * 1024);
            match r.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), Some(r))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// At most `len` bytes of `r` as a stream.
    pub fn limited<R: AsyncRead + Unpin + Send + 'static>(
        r: R,
        len: u64,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        reader_stream(r.take(len))
    }
}
