//! The group-commit writer: one thread owns the write connection, takes every queued job, runs
//! them in one transaction (each inside its own savepoint, so one failing job does not undo the
//! others), commits once, and only then answers each caller.
//!
//! Cancellation contract: a job that was taken off the queue always runs to the end of its
//! batch; a caller that stops waiting does not undo a committed write.

use std::sync::mpsc;

use rusqlite::Connection;

use crate::StoreError;

/// Runs inside the batch transaction; returns the callback that reports the outcome after the
/// commit (with `Err` if the commit itself failed).
pub(crate) type Job =
    Box<dyn FnOnce(&Connection) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

/// Most jobs in one transaction; bounds latency of the first caller in a long queue.
const MAX_BATCH: usize = 2048;

pub(crate) fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut done = Vec::with_capacity(batch.len());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Only disk or corruption errors get here (this thread is the only writer). Dropping
            // the jobs drops their reply channels, so every caller sees the write fail; nothing
            // is acknowledged that was not committed.
            tracing::error!(error = %e, jobs = batch.len(), "store: cannot begin transaction");
            continue;
        }
        for job in batch {
            done.push(job(&conn));
        }
        let outcome = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if outcome.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for d in done {
            d(outcome.clone());
        }
    }
}

/// Wraps a typed closure as a `Job` whose result goes to `reply` after the commit.
pub(crate) fn job<T, F>(f: F, reply: impl FnOnce(Result<T, StoreError>) + Send + 'static) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(move |conn: &Connection| {
        let result = (|| {
            conn.execute_batch("SAVEPOINT job")?;
            match f(conn) {
                Ok(v) => {
                    conn.execute_batch("RELEASE job")?;
                    Ok(v)
                }
                Err(e) => {
                    conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                    Err(e)
                }
            }
        })();
        Box::new(move |commit: Result<(), String>| match (result, commit) {
            (Ok(v), Ok(())) => reply(Ok(v)),
            (Err(e), _) => reply(Err(e)),
            (Ok(_), Err(e)) => reply(Err(StoreError::Corrupt(format!("commit failed: {e}")))),
        })
    })
}
