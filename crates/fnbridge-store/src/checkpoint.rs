//! The WAL checkpointer: copies committed pages from the write-ahead log into the database file
//! on its own thread and connection, so no commit waits for a checkpoint.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that caller
//! (and every caller grouped with it) waits for the pages to be written and the database file to
//! be fsynced, several milliseconds that showed up as the p99 of small PUTs. Here the writer
//! turns automatic checkpoints off, counts the WAL's pages after each commit (the WAL hook), and
//! past `WAKE_PAGES` wakes this thread, which runs a PASSIVE checkpoint: it never takes the
//! writer's lock, so commits go on meanwhile. Past `INLINE_PAGES` (the checkpointer cannot keep
//! up, or a reader pins an old snapshot) the writer checkpoints itself, so the WAL stays bounded.

use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;

/// WAL pages after which the checkpointer is woken (SQLite's own default threshold).
pub(crate) const WAKE_PAGES: i32 = 1000;
/// WAL pages after which the writer checkpoints inline (~256 MiB of 4 KiB pages).
pub(crate) const INLINE_PAGES: i32 = 65_536;
/// The WAL file is truncated back to this size once it restarts.
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

thread_local! {
    /// Pages in the WAL after the last commit on this thread's connection (the writer's).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

fn wal_hook(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The writer's side: turns automatic checkpoints off on `conn` and hands back what it uses to
/// wake the checkpointer (whose thread is started here, on a connection of its own).
pub(crate) fn start(conn: &Connection, path: &Path) -> Result<Waker, rusqlite::Error> {
    // The pragma installs SQLite's own WAL hook, so it goes first and ours replaces it.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.wal_hook(Some(wal_hook));
    let ckpt = Connection::open(path)?;
    ckpt.busy_timeout(std::time::Duration::from_secs(5))?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("fnbridge-store-checkpoint".into())
        .spawn(move || {
            // Ends when the writer (the only sender) is gone.
            while rx.recv().is_ok() {
                if let Err(e) = passive(&ckpt) {
                    tracing::warn!(error = %e, "store: background checkpoint failed; retried at the next wake");
                }
            }
        });
    Ok(Waker {
        tx: spawned.ok().map(|_| tx),
    })
}

fn passive(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Held by the writer thread.
pub(crate) struct Waker {
    /// None when the thread could not be started: the writer then checkpoints inline.
    tx: Option<mpsc::SyncSender<()>>,
}

impl Waker {
    /// Called by the writer after each commit, on its own thread.
    pub(crate) fn after_commit(&self, conn: &Connection) {
        let pages = WAL_PAGES.with(Cell::get);
        if pages < WAKE_PAGES {
            return;
        }
        let woken = match &self.tx {
            // Full means a wake is already pending: nothing to add.
            Some(tx) => !matches!(tx.try_send(()), Err(mpsc::TrySendError::Disconnected(_))),
            None => false,
        };
        if !woken || pages >= INLINE_PAGES {
            if let Err(e) = passive(conn) {
                tracing::warn!(error = %e, pages, "store: inline checkpoint failed");
            }
            WAL_PAGES.with(|p| p.set(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits no longer checkpoint (SQLite's automatic checkpoint would have run at 1,000
    /// pages), and once woken the checkpointer thread copies the WAL into the database file.
    #[test]
    fn checkpoints_off_the_commit_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t(x BLOB)").unwrap();
        let waker = start(&conn, &path).unwrap();
        let db_len = || std::fs::metadata(&path).unwrap().len();
        // ~1,200 one-page rows, past SQLite's default threshold, without waking anybody.
        let blob = vec![7u8; 4000];
        for _ in 0..1200 {
            conn.execute("INSERT INTO t VALUES (?1)", [&blob]).unwrap();
        }
        assert!(WAL_PAGES.with(Cell::get) >= WAKE_PAGES);
        assert!(
            db_len() < 1 << 20,
            "a commit checkpointed: {} bytes",
            db_len()
        );
        // One wake; the writer does not checkpoint itself below the inline bound.
        waker.after_commit(&conn);
        assert!(WAL_PAGES.with(Cell::get) >= WAKE_PAGES);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while db_len() < 1200 * 4000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpointer never copied the WAL: {} bytes",
                db_len()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1200);
    }
}
