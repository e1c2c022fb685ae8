//! PublishFunctionVersion, ListFunctionVersions, DeleteFunctionVersion (fc-api.md §6): immutable
//! snapshots of LATEST's code and configuration, with ids that are never reused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_store::registry::Version;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body;
use crate::error::ApiError;
use crate::functions::{loaded, parse_limit};
use crate::router::AppState;
use crate::time::now_rfc3339;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublishInput {
    description: Option<String>,
}

fn to_json(v: &Version) -> Value {
    json!({
        "versionId": v.version_id.to_string(),
        "description": v.description,
        "createdTime": v.created_time,
        "lastModifiedTime": v.created_time,
    })
}

pub(crate) async fn publish(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: PublishInput = if body.is_empty() {
        PublishInput::default()
    } else {
        body::json(&body)?
    };
    let description = input.description.unwrap_or_default();
    if description.len() > fnbridge_event::limits::MAX_DESCRIPTION {
        return Err(ApiError::invalid("description: longer than 256 bytes"));
    }
    loaded(&state, &name)?;
    let v = state
        .dispatcher
        .publish_version(&name, description, now_rfc3339())
        .await?;
    Ok(Json(to_json(&v)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    limit: Option<String>,
    next_token: Option<String>,
    direction: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &name)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let direction = q.direction.unwrap_or_else(|| "BACKWARD".into());
    let forward = match direction.as_str() {
        "FORWARD" => true,
        "BACKWARD" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "direction: '{other}' must be FORWARD or BACKWARD"
            )));
        }
    };
    let start: Option<u64> = match q.next_token.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::invalid(format!("nextToken: '{s}' is not valid")))?,
        ),
    };
    let f = name.clone();
    let mut vs = state
        .dispatcher
        .store()
        .read(move |c| c.list_versions(&f))
        .await?;
    if !forward {
        vs.reverse();
    }
    let vs: Vec<Version> = vs
        .into_iter()
        .filter(|v| match start {
            None => true,
            Some(s) if forward => v.version_id >= s,
            Some(s) => v.version_id <= s,
        })
        .collect();
    let next = vs
        .get(limit)
        .map(|v| v.version_id.to_string())
        .unwrap_or_default();
    let items: Vec<Value> = vs.iter().take(limit).map(to_json).collect();
    Ok(Json(
        json!({"versions": items, "direction": direction, "nextToken": next}),
    ))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &name)?;
    let missing = || {
        ApiError::not_found(
            "VersionNotFound",
            format!("version '{version}' of function '{name}' does not exist"),
        )
    };
    let v: u64 = version.parse().map_err(|_| missing())?;
    state.dispatcher.delete_version(&name, v).await?;
    Ok(StatusCode::NO_CONTENT)
}
