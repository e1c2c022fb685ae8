//! Event archives and replays (modelled on EventBridge's CreateArchive/StartReplay):
//! `POST /archives`, `GET /archives`, `GET|DELETE /archives/{name}`; `POST /replays`,
//! `GET /replays`, `GET /replays/{name}`, `POST /replays/{name}/cancel`. Times are RFC 3339
//! (or Unix milliseconds); a replay's range is `[eventStartTime, eventEndTime)` over each
//! event's `time`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fnbridge_dispatch::archive::ReplayRequest;
use fnbridge_dispatch::cloudevents::DEFAULT_BUS;
use fnbridge_store::archives::{Archive, Replay};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::body;
use crate::error::ApiError;
use crate::router::AppState;

/// `2026-11-26T10:00:00.000Z`.
fn iso_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// A time given as RFC 3339 text or Unix milliseconds.
fn parse_time(field: &str, v: &Value) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}: {n} is not a whole number of milliseconds"
            ))
        }),
        Value::String(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| {
                ApiError::invalid(format!(
                    "{field}: '{s}' is not an RFC 3339 time (2026-11-26T10:00:00Z): {e}"
                ))
            }),
        _ => Err(ApiError::invalid(format!(
            "{field}: an RFC 3339 time or Unix milliseconds"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ArchiveInput {
    archive_name: String,
    #[serde(default)]
    event_bus_name: Option<String>,
    /// JSON text or a JSON object.
    event_pattern: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    retention_days: u32,
}

fn archive_json(a: &Archive, stats: Option<(u64, u64)>) -> Value {
    let mut v = json!({"archiveName": a.name, "eventBusName": a.bus, "eventPattern": a.pattern,
        "description": a.description, "retentionDays": a.retention_days,
        "createdTime": iso_ms(a.created_ms)});
    if let Some((events, bytes)) = stats {
        v["eventCount"] = json!(events);
        v["sizeBytes"] = json!(bytes);
    }
    v
}

/// `POST /archives` `{"archiveName","eventBusName","eventPattern","description","retentionDays"}`.
pub(crate) async fn create(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: ArchiveInput = body::json(&payload)?;
    let pattern = match &input.event_pattern {
        Value::String(s) => s.clone(),
        v @ Value::Object(_) => v.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "eventPattern: a json object or a string holding one",
            ));
        }
    };
    let bus = input.event_bus_name.as_deref().unwrap_or(DEFAULT_BUS);
    let a = state
        .dispatcher
        .create_archive(
            &input.archive_name,
            bus,
            &pattern,
            &input.description,
            input.retention_days,
        )
        .await?;
    Ok(Json(archive_json(&a, Some((0, 0)))))
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.dispatcher.list_archives().await?;
    Ok(Json(json!({"archives": all
        .iter()
        .map(|a| archive_json(a, None))
        .collect::<Vec<_>>()})))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (a, events, bytes) = state.dispatcher.get_archive(&name).await?;
    Ok(Json(archive_json(&a, Some((events, bytes)))))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.dispatcher.delete_archive(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Destination {
    /// Must be the archive's bus when given (events replay on the bus they were archived from).
    #[serde(default)]
    event_bus_name: Option<String>,
    /// `function/trigger` names of `eventbridge` triggers; absent: every rule of the bus.
    #[serde(default)]
    rules: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReplayInput {
    replay_name: String,
    archive_name: String,
    event_start_time: Value,
    event_end_time: Value,
    #[serde(default)]
    destination: Option<Destination>,
}

fn replay_json(r: &Replay) -> Value {
    let mut v = json!({"replayName": r.name, "archiveName": r.archive, "eventBusName": r.bus,
        "rules": r.rules, "eventStartTime": iso_ms(r.start_ms), "eventEndTime": iso_ms(r.end_ms),
        "state": r.state, "stateReason": r.reason, "eventsTotal": r.total, "eventsDone": r.done,
        "replayStartTime": iso_ms(r.created_ms)});
    if r.done > 0 {
        v["eventLastReplayedTime"] = json!(iso_ms(r.cursor_time));
    }
    if let Some(e) = r.ended_ms {
        v["replayEndTime"] = json!(iso_ms(e));
    }
    v
}

/// `POST /replays` `{"replayName","archiveName","eventStartTime","eventEndTime",
/// "destination":{"eventBusName","rules":["function/trigger"]}}`.
pub(crate) async fn start(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: ReplayInput = body::json(&payload)?;
    let start_ms = parse_time("eventStartTime", &input.event_start_time)?;
    let end_ms = parse_time("eventEndTime", &input.event_end_time)?;
    let dest = input.destination.unwrap_or_default();
    if let Some(bus) = &dest.event_bus_name {
        let (a, _, _) = state.dispatcher.get_archive(&input.archive_name).await?;
        if *bus != a.bus {
            return Err(ApiError::invalid(format!(
                "destination.eventBusName: events of archive '{}' replay on its bus '{}', not '{bus}'",
                a.name, a.bus
            )));
        }
    }
    let r = state
        .dispatcher
        .start_replay(ReplayRequest {
            name: input.replay_name,
            archive: input.archive_name,
            start_ms,
            end_ms,
            rules: dest.rules,
        })
        .await?;
    Ok(Json(replay_json(&r)))
}

pub(crate) async fn list_replays(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.dispatcher.list_replays().await?;
    Ok(Json(
        json!({"replays": all.iter().map(replay_json).collect::<Vec<_>>()}),
    ))
}

pub(crate) async fn get_replay(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(replay_json(
        &state.dispatcher.get_replay(&name).await?,
    )))
}

pub(crate) async fn cancel_replay(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(replay_json(
        &state.dispatcher.cancel_replay(&name).await?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("t", &json!("2026-11-26T10:00:00Z")).unwrap(),
            1_795_687_200_000
        );
        assert_eq!(parse_time("t", &json!(5)).unwrap(), 5);
        let e = parse_time("eventStartTime", &json!("yesterday")).unwrap_err();
        assert!(
            e.message.starts_with("eventStartTime: 'yesterday'"),
            "{}",
            e.message
        );
        assert!(parse_time("t", &json!(true)).is_err());
        assert_eq!(iso_ms(1_795_687_200_123), "2026-11-26T10:00:00.123Z");
    }
}
