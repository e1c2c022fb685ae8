//! The group-commit writer: one thread owns the write connection, takes every queued job, runs
//! them in one transaction (each inside its own savepoint, so one failing job does not undo the
//! others), commits once, and only then answers each caller.
//!
//! Checkpoints are not run by commits: see `checkpoint`.
//!
//! Cancellation contract: a job that was taken off the queue always runs to the end of its
//! batch; a caller that stops waiting does not undo a committed write.
//!
//! Failure contract: every job is answered exactly once. A job that panics is rolled back to its
//! savepoint and answered with an error; the others in its batch commit. A panic anywhere else
//! rolls back the batch, answers its jobs with an error, and the thread goes on. If a job is
//! dropped unanswered (the thread died after all), its reply guard answers it with an error, so
//! no caller waits forever.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::StoreError;
use crate::checkpoint::Waker;

/// Runs inside the batch transaction (or is told the transaction could not begin); returns the
/// callback that reports the outcome after the commit.
pub(crate) type Job = Box<dyn FnOnce(Result<&Connection, &BatchError>) -> Option<Done> + Send>;

/// Reports a job's outcome once the batch's commit returned.
pub(crate) type Done = Box<dyn FnOnce(Result<(), &BatchError>) + Send>;

/// Why a whole batch failed (its `BEGIN` or `COMMIT`), told to every job in it.
pub(crate) struct BatchError {
    error: rusqlite::Error,
    db: String,
    context: &'static str,
}

impl BatchError {
    fn to_store_error(&self) -> StoreError {
        StoreError::from_sqlite_ref(&self.error, &self.db, self.context)
    }
}

/// Most jobs in one transaction; bounds latency of the first caller in a long queue.
const MAX_BATCH: usize = 2048;

pub(crate) fn run(conn: Connection, rx: mpsc::Receiver<Job>, checkpoints: Waker) {
    let db = conn.path().unwrap_or("the database").to_owned();
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| serve(&conn, &db, &rx, &checkpoints))) {
            // Every sender is gone: the store was closed.
            Ok(()) => return,
            Err(p) => {
                // The batch's jobs were dropped while unwinding, so their guards answered them.
                tracing::error!(
                    panic = panic_message(&*p),
                    "store writer: a batch panicked; it is rolled back and the writer goes on"
                );
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
            }
        }
    }
}

fn serve(conn: &Connection, db: &str, rx: &mpsc::Receiver<Job>, checkpoints: &Waker) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Only disk or corruption errors get here (this thread is the only writer). Every
            // caller is told why; nothing is acknowledged that was not committed.
            tracing::error!(error = %error, jobs = batch.len(), "store: cannot begin transaction");
            let failed = BatchError {
                error,
                db: db.to_owned(),
                context: "cannot begin a transaction",
            };
            for job in batch {
                job(Err(&failed));
            }
            continue;
        }
        let done: Vec<Done> = batch.into_iter().filter_map(|job| job(Ok(conn))).collect();
        let outcome = conn.execute_batch("COMMIT").map_err(|error| BatchError {
            error,
            db: db.to_owned(),
            context: "commit failed",
        });
        if outcome.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for d in done {
            d(outcome.as_ref().map(|_| ()));
        }
        // After the answers: a checkpoint (inline only past its bound) never delays them.
        checkpoints.after_commit(conn);
    }
}

/// The text of a panic payload (`panic!` with a literal or with format arguments).
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

type ReplyFn<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;

/// Answers its caller exactly once: with the outcome, or, if dropped unanswered (the job was
/// never run, or the writer unwound past it), with an error.
struct Reply<T>(Option<ReplyFn<T>>);

impl<T> Reply<T> {
    fn send(mut self, r: Result<T, StoreError>) {
        if let Some(f) = self.0.take() {
            f(r);
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(StoreError::Writer(
                "the writer stopped before this write was committed".into(),
            )));
        }
    }
}

/// Wraps a typed closure as a `Job` whose result goes to `reply` after the commit.
pub(crate) fn job<T, F>(f: F, reply: impl FnOnce(Result<T, StoreError>) + Send + 'static) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let reply = Reply::<T>(Some(Box::new(reply)));
    Box::new(move |conn: Result<&Connection, &BatchError>| {
        let conn = match conn {
            Ok(c) => c,
            Err(failed) => {
                reply.send(Err(failed.to_store_error()));
                return None;
            }
        };
        let result = in_savepoint(conn, f).map_err(|e| e.at(conn.path().unwrap_or_default()));
        Some(Box::new(
            move |commit: Result<(), &BatchError>| match (result, commit) {
                (Ok(v), Ok(())) => reply.send(Ok(v)),
                (Err(e), _) => reply.send(Err(e)),
                (Ok(_), Err(failed)) => reply.send(Err(failed.to_store_error())),
            },
        ) as Done)
    })
}

/// Runs `f` inside a savepoint: its changes stay if it succeeds, and are undone if it fails or
/// panics (a panic becomes an error for this job only).
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    match panic::catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(Ok(v)) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Ok(Err(e)) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
        Err(p) => {
            let message = panic_message(&*p).to_owned();
            tracing::error!(panic = %message, "store: a write panicked; its changes are rolled back");
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(StoreError::Writer(format!("the write panicked: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        (dir, store)
    }

    async fn count(store: &Store) -> i64 {
        store
            .read_sql(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_panicking_write_is_answered_and_the_writer_goes_on() {
        let (_d, store) = open();
        store
            .write_sql(|c| Ok(c.execute_batch("CREATE TABLE t(x)")?))
            .await
            .unwrap();
        // Both in one batch when the writer is quick enough to take them together; either way
        // the panicking one is answered with an error and the other commits.
        let (bad, good) = tokio::join!(
            store.write_sql(|c| -> Result<(), StoreError> {
                c.execute_batch("INSERT INTO t VALUES (1)")?;
                panic!("boom in a job")
            }),
            store.write_sql(|c| Ok(c.execute_batch("INSERT INTO t VALUES (2)")?)),
        );
        match bad {
            Err(StoreError::Writer(m)) => assert!(m.contains("boom in a job"), "{m}"),
            other => panic!("expected a writer error, got {other:?}"),
        }
        good.unwrap();
        assert_eq!(
            count(&store).await,
            1,
            "the panicking job's insert is rolled back"
        );
        store
            .write_sql(|c| Ok(c.execute_batch("INSERT INTO t VALUES (3)")?))
            .await
            .unwrap();
        assert_eq!(count(&store).await, 2);
    }

    #[test]
    fn a_panic_outside_a_job_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        let checkpoints = crate::checkpoint::start(&conn, &path).unwrap();
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = std::thread::spawn(move || run(conn, rx, checkpoints));
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        let first = reply_tx.clone();
        // A reply that panics unwinds through the writer's loop, after the commit.
        tx.send(job(
            |c| Ok(c.execute_batch("INSERT INTO t VALUES (1)")?),
            move |r: Result<(), StoreError>| {
                let _ = first.send(r.is_ok());
                panic!("boom in a reply");
            },
        ))
        .unwrap();
        assert!(reply_rx.recv().unwrap());
        tx.send(job(
            |c| Ok(c.execute_batch("INSERT INTO t VALUES (2)")?),
            move |r: Result<(), StoreError>| {
                let _ = reply_tx.send(r.is_ok());
            },
        ))
        .unwrap();
        assert!(reply_rx.recv().unwrap(), "the writer still commits");
        drop(tx);
        writer
            .join()
            .expect("the writer thread ends normally once the store closes");
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_job_dropped_unanswered_answers_with_an_error() {
        // As if the writer thread died with the job still queued.
        let (tx, rx) = mpsc::channel::<Job>();
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        tx.send(job(
            |_| Ok(1),
            move |r: Result<i32, StoreError>| {
                let _ = reply_tx.send(r);
            },
        ))
        .unwrap();
        drop(rx);
        match reply_rx.recv().unwrap() {
            Err(StoreError::Writer(m)) => assert!(m.contains("stopped"), "{m}"),
            other => panic!("expected a writer error, got {other:?}"),
        }
    }
}
