//! Saved test events per function (the console's "Configure Test Parameters", fnbridge
//! extension), the built-in templates, and the function log (`GET …/logs`, for `fnbridge logs`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_event::templates;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::functions::loaded;
use crate::router::AppState;
use crate::validate;

/// Test events per function.
const MAX_TEST_EVENTS: usize = 50;

pub(crate) async fn list_templates() -> Json<Value> {
    Json(json!({"templates": templates::names()}))
}

pub(crate) async fn get_template(Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let body = templates::get(&name).ok_or_else(|| {
        ApiError::not_found(
            "TemplateNotFound",
            format!("no test-event template '{name}' (see GET /templates)"),
        )
    })?;
    Ok(Json(json!({"name": name, "payload": body})))
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    validate::name("test event name", &name.replace(':', "_"), 128).map_err(ApiError::invalid)?;
    crate::body::limit(&body, fnbridge_event::limits::MAX_ASYNC_PAYLOAD)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("test event: body must be UTF-8 text"))?;
    // Test events stand for what a trigger delivers, which is always JSON: refuse a typo now
    // rather than at the test run.
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| ApiError::invalid(format!("test event '{name}': not valid JSON: {e}")))?;
    let (f, n, t) = (function.clone(), name.clone(), text.to_string());
    let count = state
        .dispatcher
        .store()
        .write(move |c| {
            let all = c.list_test_events(&f)?;
            if all.len() >= MAX_TEST_EVENTS && !all.iter().any(|(k, _)| *k == n) {
                return Ok(Err(all.len()));
            }
            c.put_test_event(&f, &n, &t)?;
            Ok(Ok(()))
        })
        .await?;
    if let Err(n) = count {
        return Err(ApiError::invalid(format!(
            "function '{function}' already has {n} test events, the most allowed"
        )));
    }
    Ok(Json(json!({"name": name, "payload": text})))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let f = function.clone();
    let all = state
        .dispatcher
        .store()
        .read(move |c| c.list_test_events(&f))
        .await?;
    let items: Vec<Value> = all
        .into_iter()
        .map(|(n, b)| json!({"name": n, "payload": b}))
        .collect();
    Ok(Json(json!({"testEvents": items})))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let (f, n) = (function.clone(), name.clone());
    let body = state
        .dispatcher
        .store()
        .read(move |c| c.get_test_event(&f, &n))
        .await?;
    match body {
        Some(b) => Ok(Json(json!({"name": name, "payload": b}))),
        None => Err(ApiError::not_found(
            "TestEventNotFound",
            format!("function '{function}' has no test event '{name}'"),
        )),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &function)?;
    let (f, n) = (function.clone(), name.clone());
    if state
        .dispatcher
        .store()
        .write(move |c| c.delete_test_event(&f, &n))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "TestEventNotFound",
            format!("function '{function}' has no test event '{name}'"),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogQuery {
    request_id: Option<String>,
    /// Return records after this id (the `nextToken` of the previous page).
    next_token: Option<String>,
    /// `tail`: start at the newest record (for `--follow`).
    from: Option<String>,
    limit: Option<String>,
}

pub(crate) async fn read_logs(
    State(state): State<AppState>,
    Path(function): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let limit = match q.limit.as_deref() {
        None | Some("") => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit: '{s}' must be an integer between 1 and 1000"
                ))
            })?,
    };
    let after: Option<i64> = match q.next_token.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::invalid(format!("nextToken: '{s}' is not valid")))?,
        ),
    };
    let tail = q.from.as_deref() == Some("tail");
    let (f, rid) = (function.clone(), q.request_id.filter(|s| !s.is_empty()));
    let (records, last) = state
        .dispatcher
        .store()
        .read(move |c| {
            let after = match after {
                Some(a) => a,
                None if tail => c.last_log_id(&f)?,
                None => 0,
            };
            Ok((c.read_logs(&f, rid.as_deref(), after, limit)?, after))
        })
        .await?;
    let next = records.last().map(|r| r.id).unwrap_or(last);
    Ok(Json(
        json!({"logs": records, "nextToken": next.to_string()}),
    ))
}
