//! The delivery engine: matches each accepted event against every trigger through the one
//! matcher index, turns every match into a durable task, and runs tasks on the runtime with
//! FC's async semantics (retries with backoff, maximum event age, dead-lettering, destinations).
//!
//! # Layout
//! - `engine`: the `Dispatcher`: registry caches, ingest, the task scheduler and workers.
//! - `registry`: the registry service, the only writer of functions, versions, aliases,
//!   triggers and async configs: rules checked inside the write, caches updated in commit order.
//! - `policy`: the retry policy as data (`decide` → `RetryAction`) and the backoff schedule.
//! - `destination`: the payload sent to `onSuccess`/`onFailure` destinations.
//! - `ids`: request, task and credential ids in FC's shapes.

pub mod destination;
mod engine;
pub mod ids;
pub mod policy;
pub mod registry;

pub use engine::{DispatchConfig, DispatchError, Dispatcher, IngestedEvent, Stats};
pub use policy::{AsyncPolicy, Backoff};
pub use registry::RegistryError;
