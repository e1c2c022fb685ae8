//! `BusEvent`: an event a built-in source (the object store) hands to dispatch together with the
//! state change that caused it, so both commit in one transaction.

use serde_json::{Map, Value};

use crate::source::EventSource;

/// One event, in the shape a trigger kind matches and receives.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// Which trigger kind it is for: `Oss` events fire `oss` triggers, `Cos` events `cos` ones.
    pub source: EventSource,
    /// The idempotency key handlers dedupe on (the request id of the change).
    pub id: String,
    /// The event name as delivered (`ObjectCreated:PutObject`, `cos:ObjectCreated:Put`).
    pub name: String,
    /// The event object: what patterns match and what is stored in the event log.
    pub body: Map<String, Value>,
    /// The S3 `Records` 2.1 form of the same change (fc-api.md §8.5), for triggers that ask for
    /// it with `"payloadFormat": "s3"`.
    pub s3: Option<Map<String, Value>>,
}

impl BusEvent {
    /// The payload a function receives for this event: `{"events":[..]}` for OSS (as ingest
    /// delivers it), `{"Records":[..]}` for COS, the CloudEvent itself for a bus event (an
    /// `eventbridge` trigger that asks for `RawData` gets [`BusEvent::raw_data`] instead).
    pub fn payload(&self, body_json: &str) -> String {
        match self.source {
            EventSource::Cos => records_payload(body_json),
            EventSource::CloudEvent => body_json.to_string(),
            _ => crate::envelope::delivery_payload(body_json),
        }
    }
}

impl BusEvent {
    /// The `RawData` delivery form of a CloudEvent (events.md §6.1): the value of its `data`,
    /// compact (`null` when there is none).
    pub fn raw_data(&self) -> String {
        self.body
            .get("data")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".to_string())
    }
}

/// Wraps one compact record in `{"Records":[...]}` (COS and S3 notifications).
pub fn records_payload(record_json: &str) -> String {
    let mut s = String::with_capacity(record_json.len() + 13);
    s.push_str("{\"Records\":[");
    s.push_str(record_json);
    s.push_str("]}");
    s
}
