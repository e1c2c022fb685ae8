//! The built-in CDN: accelerated domains whose origins are buckets of the embedded object store
//! (read directly, no HTTP hop) or HTTP servers, a control plane in Alibaba CDN's RPC style
//! (`2018-05-10`), and a caching edge routing by `Host`. Every change commits with its CDN event
//! through the object store's `EventSink` (sources append to the bus; they never call dispatch).
//!
//! # Layout
//! - `error`: `CdnError`, each failure with its CDN error code and HTTP status.
//! - `domain`: domain names and origins (`Sources`) parsed and validated once.
//! - `events`: the eight CDN events (events.md §2) as `BusEvent`s.
//! - `service`: `Cdn`, the one owner of CDN state: domains, tasks, blocks, the edge's snapshot.
//! - `rpc`: the actions: parameters parsed into an `Action`, then handled into a JSON answer.
//! - `quota`: call-rate quotas (AddCdnDomain per hour, DescribeCdnDomainLogs per second).
//! - `cache`: the bounded memory cache with request coalescing.
//! - `logs`: offline logs: 13-field lines, durable per batch, gzip files per domain and period
//!   in the log bucket, `LogFileCreated`.
//! - `edge`: the listener: routing by `Host`, HTTP caching, Range and HEAD, `X-Cache`.

pub mod cache;
pub mod domain;
pub mod edge;
pub mod error;
pub mod events;
pub mod logs;
pub mod quota;
pub mod rpc;
pub mod service;

pub use error::CdnError;
pub use service::{Cdn, CdnConfig};
