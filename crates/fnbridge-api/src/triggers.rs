//! CreateTrigger, GetTrigger, UpdateTrigger, DeleteTrigger, ListTriggers (fc-api.md §8).
//!
//! A trigger's config is compiled to its event pattern before anything is stored; the pattern
//! goes into the dispatcher's one matcher index. `status` is `OK`, or `Blocked` for an
//! `eventbridge` trigger held by an event that ran out of retries (`errorsTolerance: NONE`),
//! with `blockedBy` naming that event's task, its last error and since when.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_dispatch::ids;
use fnbridge_event::limits::{MAX_DESCRIPTION, MAX_TRIGGER_CONFIG};
use fnbridge_event::{TriggerConfig, TriggerType};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body;
use crate::error::ApiError;
use crate::functions::{ListQuery, check_qualifier, loaded, parse_limit};
use crate::router::AppState;
use crate::time::{now_rfc3339, rfc3339_ms};
use crate::validate;
use fnbridge_store::blocks::TriggerBlock;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateInput {
    trigger_name: Option<String>,
    trigger_type: Option<String>,
    trigger_config: Option<Value>,
    source_arn: Option<String>,
    invocation_role: Option<String>,
    qualifier: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateInput {
    trigger_config: Option<Value>,
    invocation_role: Option<String>,
    qualifier: Option<String>,
    description: Option<String>,
}

/// FC 3.0 sends `triggerConfig` as a JSON string, FC 2.0 clients as an object: take either.
fn config_value(v: Value) -> Result<Value, ApiError> {
    match v {
        Value::String(s) => {
            if s.len() > MAX_TRIGGER_CONFIG {
                return Err(ApiError::invalid(format!(
                    "triggerConfig: longer than {MAX_TRIGGER_CONFIG} bytes"
                )));
            }
            serde_json::from_str(&s)
                .map_err(|e| ApiError::invalid(format!("triggerConfig: not valid JSON: {e}")))
        }
        Value::Object(_) => {
            if v.to_string().len() > MAX_TRIGGER_CONFIG {
                return Err(ApiError::invalid(format!(
                    "triggerConfig: longer than {MAX_TRIGGER_CONFIG} bytes"
                )));
            }
            Ok(v)
        }
        _ => Err(ApiError::invalid(
            "triggerConfig: must be a JSON object or a string holding one",
        )),
    }
}

fn to_json(t: &TriggerConfig, region: &str, account: &str, block: Option<&TriggerBlock>) -> Value {
    let mut v = json!({
        "triggerId": t.trigger_id,
        "triggerName": t.trigger_name,
        "triggerType": t.trigger_type.as_str(),
        "triggerConfig": t.trigger_config.to_string(),
        "sourceArn": t.source_arn.clone().unwrap_or_default(),
        "invocationRole": t.invocation_role.clone().unwrap_or_default(),
        "qualifier": t.qualifier,
        "targetArn": format!("acs:fc:{region}:{account}:functions/{}", t.function_name),
        "status": "OK",
        "description": t.description,
        "createdTime": t.created_time,
        "lastModifiedTime": t.last_modified_time,
    });
    if let Some(b) = block {
        v["status"] = json!("Blocked");
        v["blockedBy"] = json!({
            "taskId": b.task_id,
            "error": b.error,
            "since": rfc3339_ms(b.since_ms),
        });
    }
    v
}

/// The block of each of `function`'s blocked triggers, read with the triggers.
fn block_of<'a>(blocks: &'a [TriggerBlock], t: &TriggerConfig) -> Option<&'a TriggerBlock> {
    blocks
        .iter()
        .find(|b| b.function_name == t.function_name && b.trigger_name == t.trigger_name)
}

fn compile(state: &AppState, t: &mut TriggerConfig) -> Result<fnbridge_pattern::Pattern, ApiError> {
    let compiled = fnbridge_pattern::compile::compile(
        t.trigger_type.as_str(),
        &t.trigger_config,
        t.source_arn.as_deref(),
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let _ = state;
    t.trigger_config = compiled.normalized_config;
    Ok(compiled.pattern)
}

fn description(d: Option<String>) -> Result<String, ApiError> {
    let d = d.unwrap_or_default();
    if d.len() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(format!(
            "description: longer than {MAX_DESCRIPTION} bytes"
        )));
    }
    Ok(d)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(function): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: CreateInput = body::json(&body)?;
    loaded(&state, &function)?;
    let mut missing = Vec::new();
    if input.trigger_name.is_none() {
        missing.push("triggerName");
    }
    if input.trigger_type.is_none() {
        missing.push("triggerType");
    }
    if input.trigger_config.is_none() {
        missing.push("triggerConfig");
    }
    if !missing.is_empty() {
        return Err(ApiError::invalid(format!(
            "missing required fields: {}",
            missing.join(", ")
        )));
    }
    let name = input.trigger_name.expect("checked");
    validate::trigger_name(&name).map_err(ApiError::invalid)?;
    let type_name = input.trigger_type.expect("checked");
    let Some(trigger_type) = TriggerType::parse(&type_name) else {
        return Err(ApiError::invalid(format!(
            "triggerType: '{type_name}' is not supported (supported: cdn_events, oss, cos, eventbridge)"
        )));
    };
    let qualifier = check_qualifier(&state, &function, input.qualifier.as_deref())?;
    let now = now_rfc3339();
    let mut t = TriggerConfig {
        trigger_id: ids::uuid_like(),
        trigger_name: name.clone(),
        function_name: function.clone(),
        trigger_type,
        trigger_config: config_value(input.trigger_config.expect("checked"))?,
        qualifier,
        source_arn: input.source_arn.filter(|s| !s.is_empty()),
        invocation_role: input.invocation_role.filter(|s| !s.is_empty()),
        description: description(input.description)?,
        created_time: now.clone(),
        last_modified_time: now,
    };
    let pattern = compile(&state, &mut t)?;
    state.dispatcher.create_trigger(t.clone(), pattern).await?;
    let cfg = state.dispatcher.config();
    Ok(Json(to_json(&t, &cfg.region, &cfg.account_id, None)))
}

fn not_found(function: &str, name: &str) -> ApiError {
    ApiError::not_found(
        "TriggerNotFound",
        format!("trigger '{name}' of function '{function}' does not exist"),
    )
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let (f, n) = (function.clone(), name.clone());
    let (t, blocks) = state
        .dispatcher
        .store()
        .read(move |c| Ok((c.get_trigger(&f, &n)?, c.all_blocks()?)))
        .await?;
    let t = t.ok_or_else(|| not_found(&function, &name))?;
    let cfg = state.dispatcher.config();
    let block = block_of(&blocks, &t.trigger);
    Ok(Json(to_json(
        &t.trigger,
        &cfg.region,
        &cfg.account_id,
        block,
    )))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: UpdateInput = body::json(&body)?;
    loaded(&state, &function)?;
    let (f, n) = (function.clone(), name.clone());
    let existing = state
        .dispatcher
        .store()
        .read(move |c| c.get_trigger(&f, &n))
        .await?;
    let existing = existing.ok_or_else(|| not_found(&function, &name))?;
    let mut t = existing.trigger.clone();
    if let Some(cfg) = input.trigger_config {
        let new = config_value(cfg)?;
        if t.trigger_type == TriggerType::CdnEvents {
            for key in ["eventName", "eventVersion"] {
                if new.get(key).is_some() && new.get(key) != t.trigger_config.get(key) {
                    return Err(ApiError::invalid(format!(
                        "triggerConfig.{key}: cannot be changed on update (delete and recreate the trigger)"
                    )));
                }
            }
        }
        t.trigger_config = new;
    }
    if let Some(q) = input.qualifier {
        t.qualifier = check_qualifier(&state, &function, Some(&q))?;
    }
    if let Some(r) = input.invocation_role {
        t.invocation_role = Some(r).filter(|s| !s.is_empty());
    }
    if input.description.is_some() {
        t.description = description(input.description)?;
    }
    t.last_modified_time = now_rfc3339();
    let pattern = compile(&state, &mut t)?;
    state.dispatcher.update_trigger(t.clone(), pattern).await?;
    // Still blocked until the failing event's retry, which the update started, succeeds.
    let blocks = state.dispatcher.store().read(|c| c.all_blocks()).await?;
    let cfg = state.dispatcher.config();
    let block = block_of(&blocks, &t);
    Ok(Json(to_json(&t, &cfg.region, &cfg.account_id, block)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &function)?;
    state.dispatcher.delete_trigger(&function, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(function): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let prefix = q.prefix.unwrap_or_default();
    let after = q.next_token.unwrap_or_default();
    let f = function.clone();
    let (mut ts, blocks) = state
        .dispatcher
        .store()
        .read(move |c| {
            Ok((
                c.list_triggers(&f, &prefix, &after, limit + 1)?,
                c.all_blocks()?,
            ))
        })
        .await?;
    let next = crate::body::page(&mut ts, limit, |t| t.trigger.trigger_name.clone());
    let cfg = state.dispatcher.config();
    let items: Vec<Value> = ts
        .iter()
        .map(|t| {
            let block = block_of(&blocks, &t.trigger);
            to_json(&t.trigger, &cfg.region, &cfg.account_id, block)
        })
        .collect();
    Ok(Json(json!({"triggers": items, "nextToken": next})))
}
