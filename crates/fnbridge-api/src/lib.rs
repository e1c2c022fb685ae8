//! The HTTP API: Function Compute 2023-03-30 paths for functions, triggers, invocations, async
//! configs and async tasks, plus fnbridge's own event ingest (`POST /events`) and dead-letter
//! queue (`/dlq`). The only crate that knows the public JSON shapes: requests are parsed into
//! DTOs here, validated, and turned into domain calls on the dispatcher and store.
//!
//! # Layout
//! - `router`: the route table, request-id (with its tracing span) and panic middleware,
//!   shared `AppState`.
//! - `identity`: authentication (Bearer token, ACS3 signatures with access keys or STS
//!   credentials), each route's RAM action, and the `/keys` and `/roles` endpoints.
//! - `cdn`: the CDN control plane at `/` (RPC style, Alibaba RPC error bodies).
//! - `error`: `ApiError`, the one place errors become FC's `{"Code","Message","RequestId"}`.
//! - `body`: bounded JSON/bytes extraction with FC-shaped errors.
//! - `deadline`: a request body whose reading is bounded in time (`408` beyond it).
//! - `validate`: name, runtime, handler, limits and environment rules.
//! - `code`: code packages: base64 zip decoding, CRC-64 checksums, safe unpacking.
//! - `testing`: saved test events, templates, and the function log.
//! - `deps`: `requirements.txt` installed into the code directory with pip at deploy time.
//! - `archives`: event archives and replays (`/archives`, `/replays`).
//! - `functions`, `versions`, `aliases`, `triggers`, `invoke`, `async_config`, `tasks`, `events`,
//!   `dlq`: one module per
//!   resource, each a set of handlers.

mod aliases;
mod archives;
mod async_config;
mod body;
mod bus;
mod cdn;
pub mod code;
mod deadline;
mod deps;
mod dlq;
mod error;
mod events;
mod functions;
mod identity;
mod invoke;
mod router;
mod tasks;
mod testing;
mod time;
mod triggers;
mod validate;
mod versions;

pub use error::ApiError;
pub use router::{AppState, router};
