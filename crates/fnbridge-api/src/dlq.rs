//! The dead-letter queue (fnbridge extension): list, get, redrive and delete deliveries that ran
//! out of retries or time, each with the error that ended it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_store::DlqEntry;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::functions::parse_limit;
use crate::router::AppState;
use crate::time::rfc3339_ms;

fn to_json(e: &DlqEntry) -> Value {
    json!({
        "id": e.id,
        "taskId": e.task_id,
        "functionName": e.function_name,
        "qualifier": e.qualifier,
        "triggerName": e.trigger_name,
        "eventSequence": e.event_seq,
        "attempts": e.attempts,
        "reason": e.reason,
        "lastError": e.last_error,
        "createdTime": rfc3339_ms(e.created_ms),
        "payload": String::from_utf8_lossy(&e.payload),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    function_name: Option<String>,
    limit: Option<String>,
    next_token: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(q.limit.as_deref())?;
    let after = match q.next_token.as_deref() {
        None | Some("") => 0,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::invalid(format!("nextToken: '{s}' is not valid")))?,
    };
    let f = q.function_name.filter(|s| !s.is_empty());
    let mut es = state
        .dispatcher
        .store()
        .read(move |c| c.list_dlq(f.as_deref(), after, limit + 1))
        .await?;
    let next = crate::body::page(&mut es, limit, |e| e.id.to_string());
    Ok(Json(
        json!({"entries": es.iter().map(to_json).collect::<Vec<_>>(), "nextToken": next}),
    ))
}

fn id_of(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::invalid(format!("dead-letter id '{s}' must be a number")))
}

fn missing(id: i64) -> ApiError {
    ApiError::not_found(
        "DeadLetterNotFound",
        format!("dead-letter entry {id} does not exist"),
    )
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    let e = state
        .dispatcher
        .store()
        .read(move |c| c.get_dlq(id))
        .await?;
    e.map(|e| Json(to_json(&e))).ok_or_else(|| missing(id))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id_of(&id)?;
    let deleted = state
        .dispatcher
        .store()
        .write(move |c| c.delete_dlq(id))
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(id))
    }
}

pub(crate) async fn redrive(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    let task = state.dispatcher.redrive(id).await?;
    task.map(|t| Json(json!({"taskId": t})))
        .ok_or_else(|| missing(id))
}
