//! The event sources fnbridge accepts on its ingest API and the event names each may emit.

/// The eight CDN events of seed 000, all at version `1.0.0`.
pub const CDN_EVENT_NAMES: [&str; 8] = [
    "CachedObjectsRefreshed",
    "CachedObjectsBlocked",
    "CachedObjectsPushed",
    "LogFileCreated",
    "CdnDomainStarted",
    "CdnDomainStopped",
    "CdnDomainAdded",
    "CdnDomainDeleted",
];
pub const CDN_EVENT_VERSION: &str = "1.0.0";

/// OSS event names as delivered (no `oss:` prefix), events.md §3.
pub const OSS_EVENT_NAMES: [&str; 17] = [
    "ObjectCreated:PutObject",
    "ObjectCreated:PostObject",
    "ObjectCreated:CopyObject",
    "ObjectCreated:PutSymlink",
    "ObjectCreated:AppendObject",
    "ObjectCreated:InitiateMultipartUpload",
    "ObjectCreated:UploadPart",
    "ObjectCreated:UploadPartCopy",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:DeleteObject",
    "ObjectRemoved:DeleteObjects",
    "ObjectRemoved:AbortMultipartUpload",
    "ObjectModified:UpdateObjectMeta",
    "ObjectReplication:ObjectCreated",
    "ObjectReplication:ObjectModified",
    "ObjectReplication:ObjectRemoved",
    "ObjectRestore:FinishRestore",
];
pub const OSS_EVENT_VERSION: &str = "1.0";

/// Where an event came from, decided by its `eventSource` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    Cdn,
    Oss,
    /// Tencent COS `Records` messages, produced only by the embedded object store (ingest does
    /// not accept them: `from_wire` does not know the name).
    Cos,
    /// CloudEvents 1.0 on an EventBridge bus (events.md §6), for `eventbridge` triggers: the
    /// object store's `acs.oss` events. Not an ingest envelope source (`from_wire` does not
    /// know it).
    CloudEvent,
}

/// COS event names (events.md §4), as `event.eventName` carries them.
pub const COS_EVENT_NAMES: [&str; 4] = [
    "cos:ObjectCreated:Put",
    "cos:ObjectCreated:Copy",
    "cos:ObjectCreated:CompleteMultipartUpload",
    "cos:ObjectRemove:Delete",
];
pub const COS_EVENT_VERSION: &str = "1.0";

impl EventSource {
    /// The value of `eventSource` in the payload.
    pub fn wire_name(self) -> &'static str {
        match self {
            EventSource::Cdn => "cdn",
            EventSource::Oss => "acs:oss",
            EventSource::Cos => "qcs::cos",
            EventSource::CloudEvent => "cloudevents",
        }
    }

    /// The sources ingest accepts, by their `eventSource` value.
    pub fn from_wire(s: &str) -> Option<Self> {
        match s {
            "cdn" => Some(EventSource::Cdn),
            "acs:oss" => Some(EventSource::Oss),
            _ => None,
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            EventSource::Cdn => CDN_EVENT_VERSION,
            EventSource::Oss => OSS_EVENT_VERSION,
            EventSource::Cos => COS_EVENT_VERSION,
            EventSource::CloudEvent => "1.0",
        }
    }

    pub fn event_names(self) -> &'static [&'static str] {
        match self {
            EventSource::Cdn => &CDN_EVENT_NAMES,
            EventSource::Oss => &OSS_EVENT_NAMES,
            EventSource::Cos => &COS_EVENT_NAMES,
            // A CloudEvent's `type` is the source's to choose.
            EventSource::CloudEvent => &[],
        }
    }

    /// The field that identifies one event across redeliveries: the idempotency key users dedupe on.
    pub fn id_of(self, event: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
        match self {
            EventSource::Cdn => event.get("traceId").and_then(|v| v.as_str()),
            EventSource::Oss => event
                .get("responseElements")
                .and_then(|r| r.get("requestId"))
                .and_then(|v| v.as_str()),
            EventSource::Cos => event
                .get("cos")
                .and_then(|c| c.get("cosObject"))
                .and_then(|o| o.get("meta"))
                .and_then(|m| m.get("x-cos-request-id"))
                .and_then(|v| v.as_str()),
            EventSource::CloudEvent => event.get("id").and_then(|v| v.as_str()),
        }
    }
}
