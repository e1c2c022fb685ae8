//! The embedded object store: one listener speaking S3, OSS and COS, objects in files under
//! `<data-dir>/objects/`, metadata in the store, and every change committed together with the
//! events it produces (native OSS, COS `Records`, S3 `Records`) through an `EventSink`.
//!
//! # Layout
//! - `store`: `ObjectStore`, the operations every protocol shares (buckets, objects, listing,
//!   multipart, append), each write durable before its metadata commit.
//! - `data`: object bytes in files (temp file, fsync, rename), named by random ids.
//! - `checksum`: CRC-64/XZ and the S3 `x-amz-checksum-*` algorithms.
//! - `events`: the OSS, COS and S3 event shapes of a change.
//! - `sink`: `EventSink`, through which a change commits with its events.
//! - `secrets`: `SecretLookup`, how signatures find their secret.
//! - `sig`: the OSS V1, OSS V4 and COS signature verifiers.
//! - `ram`: the OSS RAM action and resource of each operation, for role policies.
//! - `s3`: the s3s `S3` implementation over `ObjectStore`.
//! - `front`: the listener: dialect by signature, OSS/COS verification and translation, the
//!   bounded accept loop.
//! - `error`: `ObjError` and its codes. `limits`: every bound.

pub mod checksum;
pub mod data;
pub mod error;
pub mod events;
pub mod front;
pub mod limits;
pub mod ram;
pub mod s3;
pub mod secrets;
pub mod sig;
pub mod sink;
pub mod store;

pub use error::{Code, ObjError};
pub use events::Identity;
pub use front::{Endpoint, FrontConfig, serve};
pub use limits::Limits;
pub use secrets::{Secret, SecretLookup, StaticSecrets};
pub use sink::{Change, EventSink, LogOnlySink, SinkError};
pub use store::ObjectStore;
