//! Object bytes in files under `<data-dir>/objects/`: written to a temporary file, fsynced and
//! renamed into place before any metadata names them, read back by id.
//!
//! File names come from random ids (`objects/ab/abcdef…`), never from bucket names or keys, so
//! no request can name a path outside the directory, and no key is too long or too odd for
//! the file system.

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

/// A stored file and what was computed while writing it.
#[derive(Debug, Clone)]
pub struct Written {
    pub data_id: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
    pub hashes: Hashers,
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

impl DataDir {
    /// Creates `<root>` and its `tmp/` if needed.
    pub fn open(root: &Path) -> io::Result<DataDir> {
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// The file of a data id; ids are hex, so the path stays under the root.
    pub fn path(&self, data_id: &str) -> PathBuf {
        let shard = data_id.get(..2).unwrap_or("00");
        self.root.join(shard).join(data_id)
    }

    /// Streams `body` into a new file: hashes on the way, refuses more than `limit` bytes, and
    /// returns only once the file is fsynced and renamed into place (with its directory
    /// fsynced), so metadata written after this names complete, durable bytes.
    pub async fn write<S, E>(
        &self,
        body: S,
        limit: u64,
        mut hashes: Hashers,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let tmp = self.root.join("tmp").join(fresh_id());
        let r = self.write_inner(&tmp, body, limit, &mut hashes).await;
        match r {
            Ok((size, md5, crc64)) => {
                let data_id = fresh_id();
                let dest = self.path(&data_id);
                let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
                let moved = async {
                    tokio::fs::create_dir_all(&dir).await?;
                    tokio::fs::rename(&tmp, &dest).await?;
                    sync_dir(dir).await
                }
                .await;
                if let Err(e) = moved {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e.into());
                }
                Ok(Written {
                    data_id,
                    size,
                    md5,
                    crc64,
                    hashes,
                })
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn write_inner<S, E>(
        &self,
        tmp: &Path,
        body: S,
        limit: u64,
        hashes: &mut Hashers,
    ) -> Result<(u64, [u8; 16], u64), WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut f = tokio::fs::File::create(tmp).await?;
        let mut md5 = Md5::new();
        let mut crc = crate::checksum::CRC64.digest();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        // Buffer small chunks into larger writes: each file write is a blocking-pool hop.
        let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
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
            if buf.len() >= 256 * 1024 {
                f.write_all(&buf).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            f.write_all(&buf).await?;
        }
        f.flush().await?;
        f.sync_all().await?;
        Ok((size, md5.finalize().into(), crc.finalize()))
    }

    /// Concatenates files (a completed multipart upload) into a new one, hashing it whole.
    pub async fn concat(&self, ids: &[String], limit: u64) -> Result<Written, WriteError> {
        let files: Vec<PathBuf> = ids.iter().map(|id| self.path(id)).collect();
        let stream = futures::stream::iter(files)
            .then(|p| async move { tokio::fs::File::open(p).await })
            .map(|f| match f {
                Ok(f) => tokio_util_like::reader_stream(f).boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        self.write(stream, limit, Hashers::default()).await
    }

    /// Opens a stored file.
    pub async fn open_file(&self, data_id: &str) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(data_id)).await
    }

    /// Removes a file no metadata names any more (after the commit that dropped it). A crash
    /// before this leaves the file for the start-up sweep.
    pub async fn remove(&self, data_id: &str) {
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
