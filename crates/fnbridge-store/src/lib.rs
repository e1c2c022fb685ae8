//! Durable state in SQLite: the registry (functions, triggers, async configs), the event log,
//! delivery tasks with every attempt, and the dead-letter queue.
//!
//! All writes go through one writer thread that batches concurrent requests into one
//! transaction (group commit): many ingests share one fsync, so durability does not cost
//! throughput. Reads use a small pool of separate connections (WAL lets them run beside the
//! writer).
//!
//! # Layout
//! - `db`: opening the database, the schema, and the `Store` handle with `write`/`read`.
//! - `tx`: `Tx`, every store operation as a trait; the only view callers get of a transaction.
//! - `writer`: the group-commit writer thread.
//! - `registry`: functions, triggers and async-invoke configs.
//! - `tasks`: the event log, delivery tasks, attempts and the dead-letter queue.
//! - `retention`: pruning of finished tasks, unneeded events and old logs.
//! - `identity`: access keys (never their secrets) and roles with their policies.
//! - `logs`: function logs per invocation, and saved test events.
//! - `objects`: object-store metadata: buckets, objects, multipart uploads and parts.
//! - `buses`: custom event buses.
//! - `blocks`: `eventbridge` triggers held by an event that ran out of retries.
//! - `archives`: event archives (copies of a bus's matching events) and replays with their progress.
//! - `cdn`: CDN domains, refresh/push/block tasks and blocked URLs.
//! - `error`: `StoreError`.

pub mod archives;
pub mod blocks;
pub mod buses;
pub mod cdn;
mod checkpoint;
mod db;
mod error;
pub mod identity;
pub mod logs;
pub mod objects;
pub mod registry;
pub mod retention;
pub mod tasks;
mod tx;
mod writer;

pub use db::{SCHEMA_VERSION, Store};
pub use error::StoreError;
pub use tasks::{Attempt, DlqEntry, NewTask, Task, TaskStatus};
pub use tx::Tx;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
