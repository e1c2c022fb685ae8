//! Custom events in: `POST /openapi/putEvents` as the `alibabacloud-eventbridge` SDK sends it (a
//! CloudEvents batch, signed `acs:`), and the CloudEvents HTTP binding on
//! `POST /buses/{bus}/events` (structured, batch and binary modes) so that curl and CloudEvents
//! SDKs can post. Answers PutEvents' per-entry results once the accepted events are durable.
//! And the buses themselves: `POST /buses`, `GET /buses`, `GET|DELETE /buses/{bus}`; and
//! TestEventPattern (`POST /test-event-pattern`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fnbridge_dispatch::cloudevents::{DEFAULT_BUS, EntryResult};
use fnbridge_dispatch::ids;
use fnbridge_event::limits::MAX_INGEST_BODY;
use serde_json::{Map, Value, json};

use crate::body;
use crate::error::ApiError;
use crate::router::AppState;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// The media type of a `Content-Type` value (parameters and case dropped).
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_json(payload: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(payload).map_err(|e| ApiError::invalid(format!("invalid json: {e}")))
}

fn publish_time() -> String {
    let ms = fnbridge_store::now_ms();
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// PutEvents' answer as the SDK reads it: `FailedEntryCount` and one entry per event, in order.
fn answer(results: Vec<EntryResult>) -> Json<Value> {
    let failed = results.iter().filter(|r| r.error_code.is_some()).count();
    Json(json!({"RequestId": ids::request_id(), "FailedEntryCount": failed, "EntryList": results}))
}

/// `POST /openapi/putEvents`: a JSON array of CloudEvents, each naming its bus in
/// `aliyuneventbusname` (the `default` bus when none does).
pub(crate) async fn put_events(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    body::limit(&payload, MAX_INGEST_BODY)?;
    let events = match parse_json(&payload)? {
        Value::Array(a) => a,
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::invalid(
                "the body must be a json array of CloudEvents",
            ));
        }
    };
    let bus = events
        .iter()
        .find_map(|e| e.get("aliyuneventbusname").and_then(Value::as_str))
        .unwrap_or(DEFAULT_BUS)
        .to_string();
    let results = state
        .dispatcher
        .put_events(&bus, events, &publish_time())
        .await?;
    Ok(answer(results))
}

/// `POST /buses/{bus}/events`: the CloudEvents HTTP binding. A single event (structured or
/// binary mode) that is not valid is refused with `400` naming the attribute; a batch answers
/// per entry.
pub(crate) async fn post_binding(
    State(state): State<AppState>,
    Path(bus): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    body::limit(&payload, MAX_INGEST_BODY)?;
    let media = media_type(&headers);
    let (events, single) = match media.as_str() {
        BATCH => match parse_json(&payload)? {
            Value::Array(a) => (a, false),
            _ => {
                return Err(ApiError::invalid(
                    "a CloudEvents batch must be a json array",
                ));
            }
        },
        STRUCTURED => (vec![parse_json(&payload)?], true),
        _ => (vec![binary(&headers, &media, &payload)?], true),
    };
    let results = state
        .dispatcher
        .put_events(&bus, events, &publish_time())
        .await?;
    if single && let Some(msg) = results.first().and_then(|r| r.error_message.clone()) {
        return Err(ApiError::invalid(format!("invalid CloudEvent: {msg}")));
    }
    Ok(answer(results))
}

/// Binary mode: attributes in `ce-*` headers, the body is `data` (JSON when the content type
/// says so, text when it is UTF-8, else `data_base64`).
fn binary(headers: &HeaderMap, media: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for (name, value) in headers {
        if let Some(attr) = name.as_str().strip_prefix("ce-") {
            let v = value
                .to_str()
                .map_err(|_| ApiError::invalid(format!("{name}: not a valid header value")))?;
            m.insert(attr.to_string(), Value::String(v.to_string()));
        }
    }
    if m.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidArgument",
            format!(
                "not a CloudEvent: send Content-Type {STRUCTURED} or {BATCH}, or ce-id, ce-source, ce-specversion and ce-type headers"
            ),
        ));
    }
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        m.insert("datacontenttype".into(), Value::String(ct.to_string()));
    }
    if !payload.is_empty() {
        let json_body = media == "application/json" || media.ends_with("+json");
        if json_body {
            m.insert("data".into(), parse_json(payload)?);
        } else if let Ok(text) = std::str::from_utf8(payload) {
            m.insert("data".into(), Value::String(text.to_string()));
        } else {
            m.insert("data_base64".into(), Value::String(B64.encode(payload)));
        }
    }
    Ok(Value::Object(m))
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BusInput {
    event_bus_name: String,
    #[serde(default)]
    description: String,
}

fn bus_json(b: &fnbridge_store::buses::EventBus) -> Value {
    json!({"eventBusName": b.name, "description": b.description,
           "createdTimestamp": b.created_ms})
}

/// `POST /buses` `{"eventBusName","description"}`.
pub(crate) async fn create(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: BusInput = body::json(&payload)?;
    let b = state
        .dispatcher
        .create_bus(&input.event_bus_name, &input.description)
        .await?;
    Ok(Json(bus_json(&b)))
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.dispatcher.list_buses().await?;
    Ok(Json(
        json!({"eventBuses": all.iter().map(bus_json).collect::<Vec<_>>()}),
    ))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(bus): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(bus_json(&state.dispatcher.get_bus(&bus).await?)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(bus): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.dispatcher.delete_bus(&bus).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /test-event-pattern` `{"eventPattern", "event"}` (each JSON text or a JSON value):
/// EventBridge's TestEventPattern, `{"result": true|false}`; an invalid pattern or event is
/// `400` with the pattern engine's message.
pub(crate) async fn test_pattern(payload: Bytes) -> Result<Json<Value>, ApiError> {
    body::limit(&payload, MAX_INGEST_BODY)?;
    let v = parse_json(&payload)?;
    let text = |key: &str| -> Result<String, ApiError> {
        match v.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other @ Value::Object(_)) => Ok(other.to_string()),
            Some(_) => Err(ApiError::invalid(format!(
                "{key}: must be a json object or a string holding one"
            ))),
            None => Err(ApiError::invalid(format!(
                "{key}: required field is missing"
            ))),
        }
    };
    let (pattern, event) = (text("eventPattern")?, text("event")?);
    let pattern = fnbridge_pattern::Pattern::parse(&pattern)
        .map_err(|e| ApiError::invalid(format!("eventPattern: {e}")))?;
    let result = pattern
        .matches(event.as_bytes())
        .map_err(|e| ApiError::invalid(format!("event: {e}")))?;
    Ok(Json(json!({"result": result})))
}
