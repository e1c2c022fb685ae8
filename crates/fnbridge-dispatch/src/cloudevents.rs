//! Custom events in: CloudEvents 1.0 put on a bus (PutEvents, the CloudEvents HTTP binding),
//! each checked on its own, the valid ones matched and committed together with their tasks
//! before the answer, per-entry results naming the failed ones.

use fnbridge_event::{BusEvent, EventSource};
use fnbridge_pattern::Serialized;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{DispatchError, Dispatcher, MatchedEvent};
use crate::ids;

/// The bus built-in sources publish to; it always exists.
pub const DEFAULT_BUS: &str = "default";
/// Events in one request (PutEvents' own bound).
pub const MAX_ENTRIES: usize = 100;
/// Bytes of one event, as compact JSON.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The outcome of one entry, in PutEvents' response shape (PascalCase, as the SDK reads it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntryResult {
    pub event_id: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Checks one CloudEvent for `bus`: the four required attributes as non-empty strings
/// (`specversion` "1.0"), the optional ones strings, `data` and `data_base64` not both, the
/// bus extension (when given) naming `bus`, the size bound. Returns the event with the bus and
/// publish extensions set, and its compact text (what is matched, stored and delivered), built
/// once.
pub fn check(
    event: Value,
    bus: &str,
    now_iso: &str,
) -> Result<(Map<String, Value>, Serialized), String> {
    let Value::Object(mut m) = event else {
        return Err("a CloudEvent must be a json object".into());
    };
    for key in ["id", "source", "specversion", "type"] {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => return Err(format!("{key}: must not be empty")),
            Some(_) => return Err(format!("{key}: must be a string")),
            None => return Err(format!("{key}: required attribute is missing")),
        }
    }
    if m["specversion"] != "1.0" {
        return Err(format!(
            "specversion: must be \"1.0\", got {}",
            m["specversion"]
        ));
    }
    for key in [
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "data_base64",
    ] {
        if let Some(v) = m.get(key)
            && !v.is_string()
        {
            return Err(format!("{key}: must be a string"));
        }
    }
    if m.contains_key("data") && m.contains_key("data_base64") {
        return Err("data and data_base64: give one, not both".into());
    }
    if let Some(v) = m.get("aliyuneventbusname")
        && v != bus
    {
        return Err(format!(
            "aliyuneventbusname: {v} is not the bus the event was put on (\"{bus}\")"
        ));
    }
    m.insert("aliyuneventbusname".into(), Value::String(bus.into()));
    m.entry("aliyunpublishtime")
        .or_insert_with(|| Value::String(now_iso.into()));
    let text = Serialized::from_map(&m);
    let size = text.as_str().len();
    if size > MAX_EVENT_BYTES {
        return Err(format!(
            "the event is {size} bytes, more than {MAX_EVENT_BYTES}"
        ));
    }
    Ok((m, text))
}

impl Dispatcher {
    /// Puts CloudEvents on `bus`: each entry checked on its own; the valid ones matched against
    /// the `eventbridge` triggers and committed with their tasks in one transaction before this
    /// returns. An unknown bus or too many entries refuses the whole request.
    pub async fn put_events(
        &self,
        bus: &str,
        events: Vec<Value>,
        now_iso: &str,
    ) -> Result<Vec<EntryResult>, DispatchError> {
        if bus != DEFAULT_BUS {
            let b = bus.to_string();
            if self.store().read(move |c| c.get_bus(&b)).await?.is_none() {
                return Err(DispatchError::BusNotFound(bus.to_string()));
            }
        }
        if events.is_empty() || events.len() > MAX_ENTRIES {
            return Err(DispatchError::Invalid(format!(
                "a request holds 1 to {MAX_ENTRIES} events, got {}",
                events.len()
            )));
        }
        let mut results = Vec::with_capacity(events.len());
        let mut accepted = Vec::new();
        for ev in events {
            let event_id = ev
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let trace_id = ids::request_id();
            match check(ev, bus, now_iso) {
                Ok((body, text)) => {
                    // Serialized from a map, so it always reads; were it not to, the event is
                    // still stored and archived, and matches no trigger (as a source's events).
                    let matched =
                        self.inner
                            .matcher
                            .matches_serialized(&text)
                            .unwrap_or_else(|e| {
                                tracing::error!(error = %e, "CloudEvent cannot be matched");
                                Vec::new()
                            });
                    let name = body
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    accepted.push(MatchedEvent {
                        ev: BusEvent {
                            source: EventSource::CloudEvent,
                            id: event_id.clone(),
                            name,
                            body,
                            s3: None,
                        },
                        body: text.into_string(),
                        matched,
                    });
                    results.push(EntryResult {
                        event_id,
                        trace_id,
                        error_code: None,
                        error_message: None,
                    });
                }
                Err(msg) => results.push(EntryResult {
                    event_id,
                    trace_id,
                    error_code: Some("InvalidArgument".into()),
                    error_message: Some(msg),
                }),
            }
        }
        if !accepted.is_empty() {
            self.commit_matched(accepted).await?;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_attributes_and_bus() {
        let ok = json!({"id": "1", "source": "app", "specversion": "1.0", "type": "t", "data": {"a": 1}});
        let (m, _) = check(ok.clone(), "default", "2026-11-26T00:00:00.000Z").unwrap();
        assert_eq!(m["aliyuneventbusname"], "default");
        assert_eq!(m["aliyunpublishtime"], "2026-11-26T00:00:00.000Z");
        for key in ["id", "source", "specversion", "type"] {
            let mut e = ok.clone();
            e.as_object_mut().unwrap().remove(key);
            assert_eq!(
                check(e, "default", "").unwrap_err(),
                format!("{key}: required attribute is missing")
            );
        }
        let mut e = ok.clone();
        e["specversion"] = json!("0.3");
        assert!(
            check(e, "default", "")
                .unwrap_err()
                .starts_with("specversion")
        );
        let mut e = ok.clone();
        e["aliyuneventbusname"] = json!("other");
        assert!(check(e, "default", "").is_err());
        let mut e = ok.clone();
        e["data_base64"] = json!("eA==");
        assert!(check(e, "default", "").is_err());
        assert!(check(json!([1]), "default", "").is_err());
        // The size bound counts the event as stored, extensions included.
        let big = json!({"id": "1", "source": "s", "specversion": "1.0", "type": "t",
                         "data": "x".repeat(MAX_EVENT_BYTES)});
        assert!(check(big, "default", "").unwrap_err().contains("more than"));
        let (m, text) = check(ok, "default", "").unwrap();
        assert_eq!(text.as_str(), serde_json::to_string(&m).unwrap());
    }
}
