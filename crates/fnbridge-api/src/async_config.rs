//! PutAsyncInvokeConfig, GetAsyncInvokeConfig, DeleteAsyncInvokeConfig, ListAsyncInvokeConfigs
//! (fc-api.md §10): per function and qualifier retry attempts, maximum event age and
//! destinations.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_dispatch::destination::function_of_arn;
use fnbridge_event::{AsyncConfig, Destination, DestinationConfig};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body;
use crate::error::ApiError;
use crate::functions::{QualifierQuery, check_qualifier, loaded, parse_limit};
use crate::router::AppState;
use crate::time::now_rfc3339;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    max_async_retry_attempts: Option<i64>,
    max_async_event_age_in_seconds: Option<i64>,
    async_task: Option<bool>,
    destination_config: Option<DestinationConfig>,
}

fn check_destination(state: &AppState, field: &str, d: &Option<Destination>) -> Result<(), String> {
    let Some(d) = d else { return Ok(()) };
    match function_of_arn(&d.destination) {
        Some(f) if state.dispatcher.function(f).is_some() => Ok(()),
        Some(f) => Err(format!(
            "destinationConfig.{field}.destination: function '{f}' does not exist"
        )),
        None => Err(format!(
            "destinationConfig.{field}.destination: '{}' is not a function ARN (acs:fc:{{region}}:{{uid}}:functions/{{name}}); other destination kinds are not supported yet",
            d.destination
        )),
    }
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let f = loaded(&state, &name)?;
    let qualifier = check_qualifier(&state, &name, q.qualifier.as_deref())?;
    let input: Input = body::json(&body)?;
    let mut errors = Vec::new();
    let retries = input.max_async_retry_attempts.unwrap_or(3);
    if !(0..=8).contains(&retries) {
        errors.push(format!(
            "maxAsyncRetryAttempts: {retries} must be between 0 and 8"
        ));
    }
    let age = input.max_async_event_age_in_seconds.unwrap_or(86_400);
    if !(1..=604_800).contains(&age) {
        errors.push(format!(
            "maxAsyncEventAgeInSeconds: {age} must be between 1 and 604800"
        ));
    }
    let mut dest = DestinationConfig::default();
    if let Some(dc) = &input.destination_config {
        for (field, d, slot) in [
            ("onSuccess", &dc.on_success, &mut dest.on_success),
            ("onFailure", &dc.on_failure, &mut dest.on_failure),
        ] {
            if let Err(e) = check_destination(&state, field, d) {
                errors.push(e);
            } else if let Some(d) = d {
                *slot = Some(d.clone());
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors.join("; ")));
    }
    let cfg = state.dispatcher.config();
    let arn = f.arn(&cfg.region, &cfg.account_id);
    let q = qualifier.clone();
    let async_task = input.async_task.unwrap_or(false);
    let v = state
        .dispatcher
        .put_async_config(&name, &qualifier, move |created| {
            let now = now_rfc3339();
            AsyncConfig {
                // Both checked to be in range above.
                max_async_retry_attempts: retries as u32,
                max_async_event_age_in_seconds: age as u64,
                async_task,
                destination_config: dest,
                function_arn: arn,
                qualifier: q,
                created_time: created.unwrap_or_else(|| now.clone()),
                last_modified_time: now,
            }
        })
        .await?;
    Ok(Json(json!(v)))
}

fn missing(name: &str, q: &str) -> ApiError {
    ApiError::not_found(
        "AsyncConfigNotExists",
        format!("AsyncConfig for {name}:{q} does not exist."),
    )
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &name)?;
    let qualifier = check_qualifier(&state, &name, q.qualifier.as_deref())?;
    let (f, qq) = (name.clone(), qualifier.clone());
    let v = state
        .dispatcher
        .store()
        .read(move |c| c.get_async_config(&f, &qq))
        .await?;
    v.map(|v| Json(json!(v)))
        .ok_or_else(|| missing(&name, &qualifier))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &name)?;
    let qualifier = check_qualifier(&state, &name, q.qualifier.as_deref())?;
    state
        .dispatcher
        .delete_async_config(&name, &qualifier)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
    let all = state
        .dispatcher
        .store()
        .read(|c| c.all_async_configs())
        .await?;
    let after = q.next_token.unwrap_or_default();
    let mut items: Vec<(String, AsyncConfig)> = all
        .into_iter()
        .filter(|(f, _, _)| q.function_name.as_deref().is_none_or(|n| n == f))
        .map(|(f, qq, v)| (format!("{f}:{qq}"), v))
        .filter(|(k, _)| *k > after)
        .collect();
    let next = crate::body::page(&mut items, limit, |(k, _)| k.clone());
    Ok(Json(
        json!({"configs": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "nextToken": next}),
    ))
}
