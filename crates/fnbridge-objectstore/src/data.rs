//! Object bytes: small ones (up to the `inline` bound a write is given) handed back in memory
//! for the metadata transaction to store inline, larger ones in files under
//! `<data-dir>/objects/`, fdatasynced (with their directory) before any metadata names them,
//! read back by id. A file is written (and MD5-hashed) by a thread of the blocking pool while
//! the request's task reads the next pieces of the body.
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

/// A file's bytes go to its writer in pieces of at least this size (fewer hand-offs between
/// threads); it is above every inline bound, so an inline body never touches a file.
const PIECE: usize = 128 * 1024;

/// Pieces in flight to each consumer of a `FileWriter`: bounds the memory one upload holds (about
/// `PIECES_IN_FLIGHT + 1` pieces) while its file lags behind the network.
const PIECES_IN_FLIGHT: usize = 4;

/// Large bodies written at once; more wait for a turn. Each holds up to three threads of the
/// blocking pool (file, MD5, the directory's sync), so this keeps them well under the pool's
/// 512 even with every connection uploading, and none waits for a thread another one holds.
const MAX_FILE_WRITERS: usize = 64;

static FILE_WRITERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_FILE_WRITERS);

/// Write-back of the file is started every this many bytes (`sync_file_range`), so the final
/// fdatasync finds most of the data already on its way to the disk.
const WRITEBACK_EVERY: u64 = 256 * 1024;

/// A thread of the blocking pool fed a body's pieces in order over a bounded channel: `None`
/// ends the body, a channel closed before it is an abort.
struct Consumer<T> {
    tx: Option<tokio::sync::mpsc::Sender<Option<Bytes>>>,
    /// Taken by the first `join`.
    task: Option<tokio::task::JoinHandle<io::Result<T>>>,
}

/// What a consumer's thread reads: the next piece, `Ok(None)` at the end, or an error if the
/// producer went away first.
fn next_piece(rx: &mut tokio::sync::mpsc::Receiver<Option<Bytes>>) -> io::Result<Option<Bytes>> {
    match rx.blocking_recv() {
        Some(piece) => Ok(piece),
        None => Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the upload stopped before its end",
        )),
    }
}

impl<T: Send + 'static> Consumer<T> {
    fn start(
        f: impl FnOnce(tokio::sync::mpsc::Receiver<Option<Bytes>>) -> io::Result<T> + Send + 'static,
    ) -> Consumer<T> {
        let (tx, rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
        Consumer {
            tx: Some(tx),
            task: Some(tokio::task::spawn_blocking(move || f(rx))),
        }
    }

    /// Hands over a piece (`None`: the end); an error means the consumer stopped, with its own
    /// error when it has one.
    async fn send(&mut self, piece: Option<Bytes>) -> io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(piece).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.tx = None;
        match self.join().await {
            Err(e) => Err(e),
            Ok(_) => Err(stopped()),
        }
    }

    /// The consumer's outcome, once (closing its channel first); later calls tell it stopped.
    async fn join(&mut self) -> io::Result<T> {
        self.tx = None;
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => Err(stopped()),
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the data file writer stopped")
}

/// A new data file written on the blocking pool by two consumers of the body's pieces: one
/// writes the file (its directory entry synced beside the writing, the file itself once the
/// last piece is in), the other computes the MD5, while the request's task reads and checks
/// the next pieces.
///
/// Dropped unsettled (the request was cancelled: its client went away), it still removes its
/// file once the writer has stopped.
struct FileWriter {
    id: String,
    path: PathBuf,
    file: Consumer<()>,
    md5: Consumer<[u8; 16]>,
    /// This writer's turn (`MAX_FILE_WRITERS`), held until its consumers are done.
    turn: Option<tokio::sync::SemaphorePermit<'static>>,
    /// `finish` or `abort` ran to its end: nothing is left for `Drop` to do.
    settled: bool,
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.md5.tx = None;
        self.file.tx = None;
        let path = std::mem::take(&mut self.path);
        let task = self.file.task.take();
        let turn = self.turn.take();
        tokio::spawn(async move {
            if let Some(task) = task {
                let _ = task.await;
            }
            let _ = tokio::fs::remove_file(path).await;
            drop(turn);
        });
    }
}

impl FileWriter {
    async fn start(dir: &DataDir) -> FileWriter {
        // Never closed, so `acquire` only waits.
        let turn = FILE_WRITERS.acquire().await.ok();
        let id = fresh_id();
        let path = dir.path(&id);
        let root = dir.root.clone();
        let rt = tokio::runtime::Handle::current();
        let file = path.clone();
        FileWriter {
            id,
            path,
            file: Consumer::start(move |rx| write_file(&rt, &root, &file, rx)),
            md5: Consumer::start(|mut rx| {
                let mut md5 = Md5::new();
                while let Some(piece) = next_piece(&mut rx)? {
                    md5.update(&piece);
                }
                Ok(md5.finalize().into())
            }),
            turn,
            settled: false,
        }
    }

    /// Hands a piece to both consumers.
    async fn send(&mut self, piece: Bytes) -> io::Result<()> {
        self.md5.send(Some(piece.clone())).await?;
        self.file.send(Some(piece)).await
    }

    /// Ends the body with its `last` piece: waits for the file and its directory entry to be
    /// synced. Returns the id and the MD5 of the bytes; on failure the file is removed.
    async fn finish(mut self, dir: &DataDir, last: Bytes) -> io::Result<(String, [u8; 16])> {
        // Cancelled anywhere in here, `Drop` removes the file.
        let r = async {
            if !last.is_empty() {
                self.send(last).await?;
            }
            self.md5.send(None).await?;
            self.file.send(None).await?;
            let (md5, file) = tokio::join!(self.md5.join(), self.file.join());
            file.and(md5)
        }
        .await;
        self.settled = true;
        match r {
            Ok(md5) => Ok((std::mem::take(&mut self.id), md5)),
            Err(e) => {
                self.md5.tx = None;
                let _ = self.file.join().await;
                dir.remove(&self.id).await;
                Err(e)
            }
        }
    }

    /// Drops a body that failed: the consumers see their channels close without the end and
    /// stop (nothing synced), and the file goes.
    async fn abort(mut self, dir: &DataDir) {
        self.md5.tx = None;
        let _ = self.file.join().await;
        self.settled = true;
        dir.remove(&self.id).await;
    }
}

/// The file consumer of `FileWriter`: creates `path` (and its shard directory if it went
/// missing), syncs its directory on another blocking thread meanwhile, writes every piece,
/// starting write-back as it goes, and fdatasyncs the file after the end. On an abort its
/// caller removes the file.
fn write_file(
    rt: &tokio::runtime::Handle,
    root: &Path,
    path: &Path,
    mut rx: tokio::sync::mpsc::Receiver<Option<Bytes>>,
) -> io::Result<()> {
    use std::io::Write;
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut f = match std::fs::File::create_new(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&parent)?;
            std::fs::File::open(root)?.sync_all()?;
            std::fs::File::create_new(path)?
        }
        r => r?,
    };
    // The entry exists now: its sync runs while the data is written.
    let dir_synced = rt.spawn_blocking(move || std::fs::File::open(parent)?.sync_all());
    let (mut written, mut flushed) = (0u64, 0u64);
    while let Some(piece) = next_piece(&mut rx)? {
        f.write_all(&piece)?;
        written += piece.len() as u64;
        if written - flushed >= WRITEBACK_EVERY {
            start_writeback(&f, flushed, written - flushed);
            flushed = written;
        }
    }
    f.sync_data()?;
    rt.block_on(dir_synced).map_err(io::Error::other)??;
    Ok(())
}

/// Asks the kernel to start writing `len` bytes at `offset` of `f` to disk without waiting for
/// them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`); durability still comes from the
/// fdatasync that follows. A failure is ignored: that fdatasync reports any real one.
fn start_writeback(f: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is open for as long as `f` is borrowed; the call reads no
        // memory of ours.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, offset, len);
}

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
    ///
    /// A file is written by a `FileWriter` on the blocking pool, which also computes the MD5:
    /// the request's task reads, checks and CRCs the next pieces meanwhile, so a large PUT
    /// costs the longer of the two instead of their sum.
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
        let mut crc = crate::checksum::crc64();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let mut buf: Vec<u8> = Vec::with_capacity(inline.min(PIECE as u64) as usize + 1);
        let mut file: Option<FileWriter> = None;
        let r: Result<(), WriteError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(WriteError::TooLarge { limit });
                }
                crc.update(&chunk);
                hashes.update(&chunk);
                buf.extend_from_slice(&chunk);
                if file.is_none() && size > inline {
                    file = Some(FileWriter::start(self).await);
                }
                if let Some(w) = &mut file
                    && buf.len() >= PIECE
                {
                    let piece = std::mem::replace(&mut buf, Vec::with_capacity(PIECE * 2));
                    w.send(Bytes::from(piece)).await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = r {
            if let Some(w) = file {
                w.abort(self).await;
            }
            return Err(e);
        }
        let crc64 = crc.finalize();
        // `inline == 0` asks for a file whatever the size (parts, appendable objects), an
        // empty one included.
        let w = match file {
            None if inline > 0 => {
                return Ok(Written {
                    data_id: format!("{}{}", fnbridge_store::objects::INLINE_PREFIX, fresh_id()),
                    md5: Md5::digest(&buf).into(),
                    inline: Some(Bytes::from(buf)),
                    size,
                    crc64,
                    hashes,
                });
            }
            None => FileWriter::start(self).await,
            Some(w) => w,
        };
        let (data_id, md5) = w.finish(self, Bytes::from(buf)).await?;
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
            if buf.len() >= 2 * PIECE {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for shard in std::fs::read_dir(root).unwrap().flatten() {
            if shard.path().is_dir() {
                out.extend(
                    std::fs::read_dir(shard.path())
                        .unwrap()
                        .flatten()
                        .map(|e| e.path()),
                );
            }
        }
        out
    }

    fn body(bytes: &[u8], piece: usize) -> Vec<Result<Bytes, io::Error>> {
        bytes
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_body_is_written_whole_with_its_md5_and_crc() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let bytes: Vec<u8> = (0..3_000_001u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let w = dir
            .write(
                futures::stream::iter(body(&bytes, 10_007)),
                u64::MAX,
                Hashers::default(),
                64 * 1024,
            )
            .await
            .unwrap();
        assert!(w.inline.is_none());
        assert_eq!(w.size, bytes.len() as u64);
        assert_eq!(w.md5, <[u8; 16]>::from(Md5::digest(&bytes)));
        let mut crc = crate::checksum::crc64();
        crc.update(&bytes);
        assert_eq!(w.crc64, crc.finalize());
        assert_eq!(std::fs::read(dir.path(&w.data_id)).unwrap(), bytes);
        // A small body stays in memory, with the same hashes.
        let w = dir
            .write(
                futures::stream::iter(body(b"hello", 2)),
                u64::MAX,
                Hashers::default(),
                64 * 1024,
            )
            .await
            .unwrap();
        assert_eq!(w.inline.as_deref(), Some(&b"hello"[..]));
        assert_eq!(hex::encode(w.md5), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(files(tmp.path()).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_fails_or_is_too_large_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let mut parts = body(&vec![1u8; 600 * 1024], 50_000);
        parts.push(Err(io::Error::other("connection reset")));
        let r = dir
            .write(
                futures::stream::iter(parts),
                u64::MAX,
                Hashers::default(),
                1024,
            )
            .await;
        assert!(matches!(r, Err(WriteError::Body(m)) if m.contains("connection reset")));
        let r = dir
            .write(
                futures::stream::iter(body(&vec![1u8; 600 * 1024], 50_000)),
                500 * 1024,
                Hashers::default(),
                1024,
            )
            .await;
        assert!(matches!(r, Err(WriteError::TooLarge { limit }) if limit == 500 * 1024));
        assert_eq!(files(tmp.path()), Vec::<PathBuf>::new());
    }

    /// More concurrent large bodies than writers may run at once: the rest wait their turn,
    /// and every one completes (no writer waits for a thread another holds).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_large_bodies_than_writers_all_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let n = MAX_FILE_WRITERS * 2 + 5;
        let writes = (0..n).map(|i| {
            let dir = dir.clone();
            tokio::spawn(async move {
                let bytes = vec![i as u8; 300 * 1024];
                let w = dir
                    .write(
                        futures::stream::iter(body(&bytes, 64 * 1024)),
                        u64::MAX,
                        Hashers::default(),
                        1024,
                    )
                    .await
                    .unwrap();
                assert_eq!(w.md5, <[u8; 16]>::from(Md5::digest(&bytes)));
            })
        });
        let all = futures::future::join_all(writes);
        let done = tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("concurrent writes did not finish");
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(files(tmp.path()).len(), n);
    }

    /// A request dropped mid-body (its client went away) still has its file removed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_write_removes_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, io::Error>>(4);
        let first = Bytes::from(vec![9u8; 400 * 1024]);
        let writing = {
            let dir = dir.clone();
            tokio::spawn(async move { dir.write(rx, u64::MAX, Hashers::default(), 1024).await })
        };
        let mut tx = tx;
        futures::SinkExt::send(&mut tx, Ok(first)).await.unwrap();
        // The file appears once the writer has the first piece.
        let appears = async {
            while files(tmp.path()).is_empty() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), appears)
            .await
            .expect("the writer never created its file");
        writing.abort();
        assert!(writing.await.unwrap_err().is_cancelled());
        drop(tx);
        let removed = async {
            while !files(tmp.path()).is_empty() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), removed)
            .await
            .expect("the cancelled write left its file behind");
    }
}
