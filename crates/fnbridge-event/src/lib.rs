//! Event envelopes and the domain types every other crate shares; no I/O.
//!
//! # Layout
//! - `source`: the event sources fnbridge knows (CDN, OSS, COS, CloudEvents) and the names each may emit.
//! - `bus`: `BusEvent`, an event a built-in source commits together with its state change.
//! - `envelope`: parsing and validating an ingest envelope `{"events":[...]}` into single events
//!   kept as the text received, in one pass over each event's bytes (the matcher's validating
//!   walk, which can match the event at the same time), and building the exact
//!   `{"events":[event]}` payload a function receives.
//! - `eventbridge`: the run options of an `eventbridge` trigger delivery acts on.
//! - `function`: the stored configuration of a function (runtime, handler, limits, environment).
//! - `trigger`: the stored configuration of a trigger and its type.
//! - `limits`: every size and count bound, in one place so the API and the docs agree.
//! - `templates`: test-event templates for every CDN event and the object-storage events.

pub mod bus;
pub mod envelope;
pub mod eventbridge;
pub mod function;
pub mod limits;
pub mod source;
pub mod templates;
pub mod trigger;

pub use bus::BusEvent;
pub use envelope::{Envelope, EnvelopeError, SourceEvent};
pub use function::{
    AsyncConfig, CustomRuntimeConfig, Destination, DestinationConfig, DisableInjectCredentials,
    FunctionConfig, HealthCheckConfig, LifecycleHook, Runtime,
};
pub use source::EventSource;
pub use trigger::{TriggerConfig, TriggerType};
