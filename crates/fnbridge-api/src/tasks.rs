//! ListAsyncTasks and GetAsyncTask (delivery.md §1): the record of every delivery and each of
//! its attempts, plus a fnbridge listing across all functions (`GET /tasks`).

use axum::Json;
use axum::extract::{Path, Query, State};
use fnbridge_store::{Attempt, Task, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::functions::{loaded, parse_limit};
use crate::router::AppState;

fn to_json(state: &AppState, t: &Task, attempts: Option<&[Attempt]>, full: bool) -> Value {
    let cfg = state.dispatcher.config();
    let running = state.dispatcher.running_since(&t.task_id);
    let status = if running.is_some() && !t.status.is_final() {
        TaskStatus::Running
    } else {
        t.status
    };
    let mut v = json!({
        "taskId": t.task_id,
        "requestId": t.task_id,
        "functionArn": format!("acs:fc:{}:{}:functions/{}", cfg.region, cfg.account_id, t.function_name),
        "functionName": t.function_name,
        "qualifier": t.qualifier,
        "triggerName": t.trigger_name,
        "eventSequence": t.event_seq,
        "status": status.as_str(),
        "attempts": t.attempts,
        "alreadyRetriedTimes": t.attempts.saturating_sub(1),
        "startedTime": t.created_ms,
        "endTime": t.ended_ms,
        "durationMs": t.ended_ms.map(|e| e - t.created_ms),
        "nextAttemptTime": if t.status == TaskStatus::Retrying { Some(t.next_ms) } else { None },
        "taskErrorMessage": t.last_error,
    });
    if full {
        v["taskPayload"] = json!(String::from_utf8_lossy(&t.payload));
        v["returnPayload"] = json!(
            t.return_payload
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        );
        v["log"] = json!(t.log);
    }
    if let Some(attempts) = attempts {
        let mut events = vec![
            json!({"eventId": 0, "status": "Enqueued", "timestamp": t.created_ms, "eventDetail": ""}),
        ];
        for a in attempts {
            events.push(json!({
                "eventId": a.n,
                "status": a.status,
                "timestamp": a.ended_ms,
                "eventDetail": a.error_message.clone().unwrap_or_default(),
            }));
        }
        v["events"] = json!(events);
        v["attemptRecords"] = json!(
            attempts
                .iter()
                .map(|a| json!({
                    "attempt": a.n,
                    "startedTime": a.started_ms,
                    "endTime": a.ended_ms,
                    "durationMs": a.ended_ms - a.started_ms,
                    "status": a.status,
                    "errorType": a.error_type,
                    "errorMessage": a.error_message,
                    "instanceId": a.instance_id,
                }))
                .collect::<Vec<_>>()
        );
    }
    v
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((function, task)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    // An unknown function is named as such, not hidden behind AsyncTaskNotFound.
    loaded(&state, &function)?;
    let t = task.clone();
    let found = state
        .dispatcher
        .store()
        .read(move |c| c.get_task(&t))
        .await?;
    match found {
        Some((t, attempts)) if t.function_name == function => {
            Ok(Json(to_json(&state, &t, Some(&attempts), true)))
        }
        _ => Err(ApiError::not_found(
            "AsyncTaskNotFound",
            format!("async task '{task}' of function '{function}' does not exist"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    function_name: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    next_token: Option<String>,
    /// Python SDKs send booleans as `True`/`False`.
    include_payload: Option<String>,
}

/// A boolean query value as clients spell it: `true`/`false` in any case (Python's `True`),
/// or `1`/`0`.
fn query_bool(field: &str, v: Option<&str>) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
        Some(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Some(false)),
        Some(s) => Err(ApiError::invalid(format!(
            "{field}: '{s}' is not a boolean (true or false)"
        ))),
    }
}

/// Lists tasks under `key`: `tasks` on FC's ListAsyncTasks (what the SDK's model reads),
/// `asyncTasks` on fnbridge's own `GET /tasks`.
async fn list(
    state: AppState,
    function: Option<String>,
    q: ListQuery,
    key: &str,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_limit(q.limit.as_deref())?;
    let full = query_bool("includePayload", q.include_payload.as_deref())?.unwrap_or(false);
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "status: '{s}' must be one of Enqueued, Running, Succeeded, Retrying, Failed, Expired, Stopped"
            ))
        })?),
    };
    let before = match q.next_token.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("nextToken: '{s}' is not valid")))?,
        ),
    };
    let mut ts = state
        .dispatcher
        .store()
        .read(move |c| c.list_tasks(function.as_deref(), status, before, limit + 1))
        .await?;
    let next = crate::body::page(&mut ts, limit, |t| t.id.to_string());
    let items: Vec<Value> = ts.iter().map(|t| to_json(&state, t, None, full)).collect();
    Ok(Json(json!({key: items, "nextToken": next})))
}

pub(crate) async fn list_for_function(
    State(state): State<AppState>,
    Path(function): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    list(state, Some(function), q, "tasks").await
}

pub(crate) async fn list_all(
    State(state): State<AppState>,
    Query(mut q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = q.function_name.take().filter(|s| !s.is_empty());
    list(state, f, q, "asyncTasks").await
}
