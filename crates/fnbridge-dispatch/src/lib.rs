//! The delivery engine: matches each accepted event against every trigger through the one
//! matcher index, turns every match into a durable task, and runs tasks on the runtime with
//! FC's async semantics (retries with backoff, maximum event age, dead-lettering, destinations).
//!
//! # Layout
//! - `engine`: the `Dispatcher`: registry caches, ingest, the task scheduler and workers.
//! - `policy`: the retry policy as data (`decide` → `RetryAction`) and the backoff schedule.
//! - `destination`: the payload sent to `onSuccess`/`onFailure` destinations.
//! - `ids`: request, task and credential ids in FC's shapes.

pub mod destination;
mod engine;
pub mod ids;
pub mod policy;

pub use engine::{DispatchConfig, DispatchError, Dispatcher, IngestedEvent, Stats};
pub use policy::{AsyncPolicy, Backoff};
