//! Size and count bounds for every input, named once so the API, the store and the docs agree.

/// Largest `POST /events` body accepted (the envelope and all its events).
pub const MAX_INGEST_BODY: usize = 1024 * 1024;
/// Most events in one ingest envelope.
pub const MAX_EVENTS_PER_ENVELOPE: usize = 100;
/// Largest single event, serialized; equal to FC's async payload limit since each event becomes
/// one asynchronous invocation.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;
/// Deepest JSON nesting accepted in an event.
pub const MAX_EVENT_DEPTH: usize = 32;
/// FC limits on invocation bodies.
pub const MAX_SYNC_PAYLOAD: usize = 32 * 1024 * 1024;
pub const MAX_ASYNC_PAYLOAD: usize = 128 * 1024;
/// Largest management request (CreateFunction carries a base64 zip).
pub const MAX_API_BODY: usize = 80 * 1024 * 1024;
/// Largest code package once decoded, and its unpacked size and entry count.
pub const MAX_CODE_ZIP: usize = 50 * 1024 * 1024;
pub const MAX_CODE_UNZIPPED: u64 = 500 * 1024 * 1024;
pub const MAX_CODE_ENTRIES: usize = 10_000;
/// Environment variables: total bytes of keys and values (FC: 4 KB).
pub const MAX_ENV_BYTES: usize = 4 * 1024;
/// Trigger config text.
pub const MAX_TRIGGER_CONFIG: usize = 64 * 1024;
/// Free-text description fields.
pub const MAX_DESCRIPTION: usize = 256;
/// Triggers per function.
pub const MAX_TRIGGERS_PER_FUNCTION: usize = 100;
