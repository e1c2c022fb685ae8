//! The delivery engine: matches each accepted event against every trigger through the one
//! matcher index, turns every match into a durable task, and runs tasks on the runtime with
//! FC's async semantics (retries with backoff, maximum event age, dead-lettering, destinations).
//!
//! # Layout
//! - `engine`: the `Dispatcher`: registry caches, qualifier resolution, ingest and async
//!   invocations (durable, then admitted to the scheduler), each invocation's credentials (its
//!   role's, from `fnbridge_auth::Auth`), shutdown.
//! - `archive`: event archives (matching CloudEvents copied in the commit that publishes them)
//!   and replays (an archived time range published again, page by page, with its progress).
//! - `cloudevents`: custom CloudEvents put on a bus (`Dispatcher::put_events`), each checked,
//!   per-entry results.
//! - `fc_events`: the `acs.fc` CloudEvents of function lifecycle changes, committed by the
//!   registry service with the change.
//! - `scheduler`: the bounded window of open tasks: per-function queues, one timer structure,
//!   round-robin starts within running limits, spills and refills from the store.
//! - `delivery`: the scheduling loop, refills, one attempt and its record (retried until it
//!   commits), destinations, and the retention loop.
//! - `registry`: the registry service, the only writer of functions, versions, aliases,
//!   triggers and async configs: rules checked inside the write, caches updated in commit order.
//! - `policy`: the retry policy as data (`decide` → `RetryAction`) and the backoff schedule.
//! - `destination`: the payload sent to `onSuccess`/`onFailure` destinations.
//! - `ids`: request, task and function ids in FC's shapes.

pub mod archive;
pub mod cloudevents;
mod delivery;
pub mod destination;
mod engine;
pub mod fc_events;
pub mod ids;
pub mod policy;
pub mod registry;
mod scheduler;

pub use delivery::MAX_DESTINATION_HOPS;
pub use engine::{DispatchConfig, DispatchError, Dispatcher, Explained, IngestedEvent, Stats};
pub use policy::{AsyncPolicy, Backoff};
pub use registry::RegistryError;
pub use scheduler::Limits;
