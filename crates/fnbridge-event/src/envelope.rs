//! Parses an ingest envelope `{"events":[...]}` into validated single events and builds the exact
//! payload a function receives for one of them.
//!
//! An envelope is accepted whole or not at all: one bad event rejects the request, so a client
//! never has to work out which half of its batch was taken.

use serde_json::{Map, Value};

use crate::limits::{MAX_EVENT_BYTES, MAX_EVENT_DEPTH, MAX_EVENTS_PER_ENVELOPE};
use crate::source::EventSource;

/// One validated event, ready to be stored and matched.
#[derive(Debug, Clone)]
pub struct SourceEvent {
    pub source: EventSource,
    pub name: String,
    /// The event object exactly as it will be delivered (key order kept, compact when serialized).
    pub body: Map<String, Value>,
}

impl SourceEvent {
    /// The idempotency key of the event (`traceId` for CDN, `responseElements.requestId` for OSS).
    pub fn id(&self) -> Option<&str> {
        self.source.id_of(&self.body)
    }

    /// Sets the id field when the sender left it out, so every stored event has one.
    pub fn ensure_id(&mut self, fresh: impl FnOnce() -> String) {
        if self.id().is_some() {
            return;
        }
        match self.source {
            EventSource::Cdn => {
                self.body.insert("traceId".into(), Value::String(fresh()));
            }
            EventSource::Oss => {
                let re = self
                    .body
                    .entry("responseElements")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = re {
                    m.insert("requestId".into(), Value::String(fresh()));
                }
            }
            // Built by the object store with its request id; never parsed from ingest.
            EventSource::Cos => {}
        }
    }

    /// The single event as compact JSON (what the matcher sees).
    pub fn event_json(&self) -> String {
        serde_json::to_string(&self.body).expect("a JSON map always serializes")
    }

    /// The function payload for this event: `{"events":[event]}`, compact, keys in sender order.
    pub fn payload(&self) -> String {
        delivery_payload(&self.event_json())
    }
}

/// Wraps one compact event object in the `{"events":[...]}` envelope functions receive.
pub fn delivery_payload(event_json: &str) -> String {
    let mut s = String::with_capacity(event_json.len() + 12);
    s.push_str("{\"events\":[");
    s.push_str(event_json);
    s.push_str("]}");
    s
}

/// A parsed envelope.
#[derive(Debug)]
pub struct Envelope {
    pub events: Vec<SourceEvent>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid(msg.into())
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl Envelope {
    /// Parses and validates `{"events":[...]}`. Every error names the offending field by path.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        // serde_json's own recursion limit (128) guards the stack; the depth rule below is ours.
        let v: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let mut top = match v {
            Value::Object(top) => top,
            Value::Array(_) => {
                return Err(invalid(
                    "body must be a JSON object {\"events\":[...]}: wrap the array as {\"events\":[...]}",
                ));
            }
            _ => return Err(invalid("body must be a JSON object {\"events\":[...]}")),
        };
        let events = match top.remove("events") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid("events: must be an array")),
            None if top.contains_key("eventSource") || top.contains_key("eventName") => {
                return Err(invalid(
                    "events: required field is missing; the body looks like a single event: wrap it as {\"events\":[EVENT]}",
                ));
            }
            None => return Err(invalid("events: required field is missing")),
        };
        if let Some(k) = top.keys().next() {
            return Err(invalid(format!(
                "{k}: unknown field (the envelope has only \"events\")"
            )));
        }
        if events.is_empty() {
            return Err(invalid("events: must hold at least one event"));
        }
        if events.len() > MAX_EVENTS_PER_ENVELOPE {
            return Err(invalid(format!(
                "events: holds {} events, at most {MAX_EVENTS_PER_ENVELOPE} are allowed per request",
                events.len()
            )));
        }
        let mut out = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            out.push(validate_event(i, e)?);
        }
        Ok(Envelope { events: out })
    }
}

fn str_field<'a>(
    m: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, EnvelopeError> {
    match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(format!("{path}.{key}: must not be empty"))),
        Some(_) => Err(invalid(format!("{path}.{key}: must be a string"))),
        None => Err(invalid(format!("{path}.{key}: required field is missing"))),
    }
}

fn validate_event(i: usize, e: Value) -> Result<SourceEvent, EnvelopeError> {
    let path = format!("events[{i}]");
    if depth(&e) > MAX_EVENT_DEPTH {
        return Err(invalid(format!(
            "{path}: nested deeper than {MAX_EVENT_DEPTH} levels"
        )));
    }
    let Value::Object(body) = e else {
        return Err(invalid(format!("{path}: must be a JSON object")));
    };
    let size = serde_json::to_vec(&body)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(invalid(format!(
            "{path}: is {size} bytes, larger than the {MAX_EVENT_BYTES}-byte limit for one event"
        )));
    }
    let source_name = str_field(&body, &path, "eventSource")?;
    let Some(source) = EventSource::from_wire(source_name) else {
        return Err(invalid(format!(
            "{path}.eventSource: unknown source \"{source_name}\" (expected \"cdn\" or \"acs:oss\")"
        )));
    };
    let name = str_field(&body, &path, "eventName")?.to_string();
    if !source.event_names().contains(&name.as_str()) {
        return Err(invalid(format!(
            "{path}.eventName: \"{name}\" is not a {} event (expected one of {})",
            source.wire_name(),
            source.event_names().join(", ")
        )));
    }
    let version = str_field(&body, &path, "eventVersion")?;
    if version != source.version() {
        return Err(invalid(format!(
            "{path}.eventVersion: must be \"{}\" for {} events, got \"{version}\"",
            source.version(),
            source.wire_name()
        )));
    }
    match source {
        EventSource::Cdn => {
            let resource = match body.get("resource") {
                Some(Value::Object(r)) => r,
                Some(_) => return Err(invalid(format!("{path}.resource: must be an object"))),
                None => {
                    return Err(invalid(format!(
                        "{path}.resource: required field is missing"
                    )));
                }
            };
            str_field(resource, &format!("{path}.resource"), "domain")?;
            // The idempotency key handlers rely on: refused when malformed rather than replaced.
            if body.contains_key("traceId") {
                str_field(&body, &path, "traceId")?;
            }
            match body.get("eventParameter") {
                Some(Value::Object(_)) | None => {}
                Some(_) => {
                    return Err(invalid(format!("{path}.eventParameter: must be an object")));
                }
            }
        }
        EventSource::Oss => {
            let oss = match body.get("oss") {
                Some(Value::Object(o)) => o,
                Some(_) => return Err(invalid(format!("{path}.oss: must be an object"))),
                None => return Err(invalid(format!("{path}.oss: required field is missing"))),
            };
            let bucket = match oss.get("bucket") {
                Some(Value::Object(b)) => b,
                _ => return Err(invalid(format!("{path}.oss.bucket: must be an object"))),
            };
            str_field(bucket, &format!("{path}.oss.bucket"), "name")?;
            let object = match oss.get("object") {
                Some(Value::Object(o)) => o,
                _ => return Err(invalid(format!("{path}.oss.object: must be an object"))),
            };
            str_field(object, &format!("{path}.oss.object"), "key")?;
        }
        // `from_wire` never yields it; refused rather than trusted.
        EventSource::Cos => {
            return Err(invalid(format!(
                "{path}.eventSource: cos events come only from the object store"
            )));
        }
    }
    Ok(SourceEvent { source, name, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"events":[{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2018-06-14T15:31:49+08:00","traceId":"c6459282","userIdentity":{"aliUid":"1"},"resource":{"domain":"example.com"},"eventParameter":{"domain":"example.com","filePath":"http://x"}}]}"#;

    #[test]
    fn parses_and_keeps_key_order() {
        let env = Envelope::parse(LOG.as_bytes()).unwrap();
        assert_eq!(env.events.len(), 1);
        let e = &env.events[0];
        assert_eq!(e.source, EventSource::Cdn);
        assert_eq!(e.name, "LogFileCreated");
        assert_eq!(e.id(), Some("c6459282"));
        assert_eq!(e.payload(), LOG);
    }

    fn err(body: &str) -> String {
        Envelope::parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn rejects_with_paths() {
        assert!(err("{").starts_with("body is not valid JSON"));
        assert_eq!(
            err("[]"),
            "body must be a JSON object {\"events\":[...]}: wrap the array as {\"events\":[...]}"
        );
        assert_eq!(err("3"), "body must be a JSON object {\"events\":[...]}");
        let single = &LOG[11..LOG.len() - 2];
        assert!(
            err(single).contains("looks like a single event: wrap it as {\"events\":[EVENT]}"),
            "{}",
            err(single)
        );
        for bad in ["12345", "null", "{\"id\":1}", "\"\""] {
            let e = err(&LOG.replace("\"c6459282\"", bad));
            assert!(e.starts_with("events[0].traceId: must"), "{bad}: {e}");
        }
        assert_eq!(err("{}"), "events: required field is missing");
        assert_eq!(
            err(r#"{"events":[]}"#),
            "events: must hold at least one event"
        );
        assert_eq!(
            err(r#"{"events":[],"x":1}"#),
            "x: unknown field (the envelope has only \"events\")"
        );
        let bad_version = LOG.replace("\"1.0.0\"", "\"2.0.0\"");
        assert_eq!(
            err(&bad_version),
            "events[0].eventVersion: must be \"1.0.0\" for cdn events, got \"2.0.0\""
        );
        let bad_name = LOG.replace("LogFileCreated", "LogFileMade");
        assert!(
            err(&bad_name).starts_with("events[0].eventName: \"LogFileMade\" is not a cdn event")
        );
        let no_domain = LOG.replace(r#""resource":{"domain":"example.com"},"#, "");
        assert_eq!(
            err(&no_domain),
            "events[0].resource: required field is missing"
        );
        let bad_source = LOG.replace(r#""eventSource":"cdn""#, r#""eventSource":"ftp""#);
        assert!(err(&bad_source).contains("unknown source \"ftp\""));
    }

    #[test]
    fn bounds_count_and_depth() {
        let one = &LOG[11..LOG.len() - 2];
        let many = format!("{{\"events\":[{}]}}", vec![one; 101].join(","));
        assert!(err(&many).contains("at most 100"));
        let deep = LOG.replace(
            r#""filePath":"http://x""#,
            &format!("\"x\":{}1{}", "[".repeat(40), "]".repeat(40)),
        );
        assert!(err(&deep).contains("nested deeper than 32"));
    }

    #[test]
    fn ensure_id_fills_missing_trace_id() {
        let no_id = LOG.replace(r#""traceId":"c6459282","#, "");
        let mut env = Envelope::parse(no_id.as_bytes()).unwrap();
        env.events[0].ensure_id(|| "fresh".into());
        assert_eq!(env.events[0].id(), Some("fresh"));
    }
}
