//! CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases (fc-api.md §7): names that point
//! at a version, optionally routing a fraction of invocations to other versions.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_store::registry::{self, Alias};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body;
use crate::error::ApiError;
use crate::functions::{ListQuery, loaded, parse_limit};
use crate::router::AppState;
use crate::time::now_rfc3339;
use crate::validate;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    alias_name: Option<String>,
    version_id: Option<String>,
    description: Option<String>,
    additional_version_weight: Option<BTreeMap<String, f64>>,
}

fn to_json(a: &Alias) -> Value {
    let weights: BTreeMap<String, f64> = a
        .additional_version_weight
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    json!({
        "aliasName": a.alias_name,
        "versionId": a.version_id.to_string(),
        "description": a.description,
        "additionalVersionWeight": weights,
        "createdTime": a.created_time,
        "lastModifiedTime": a.last_modified_time,
    })
}

fn version_of(state: &AppState, function: &str, field: &str, v: &str) -> Result<u64, ApiError> {
    let id: u64 = v
        .parse()
        .map_err(|_| ApiError::invalid(format!("{field}: '{v}' is not a version id")))?;
    if state.dispatcher.version(function, id).is_none() {
        return Err(ApiError::invalid(format!(
            "{field}: version '{v}' of function '{function}' does not exist"
        )));
    }
    Ok(id)
}

/// Validates the version and weights of an alias.
fn apply(state: &AppState, function: &str, a: &mut Alias, input: Input) -> Result<(), ApiError> {
    if let Some(v) = &input.version_id {
        a.version_id = version_of(state, function, "versionId", v)?;
    }
    if let Some(d) = input.description {
        a.description = d;
    }
    if let Some(w) = input.additional_version_weight {
        let mut weights = BTreeMap::new();
        let mut total = 0.0;
        for (k, v) in w {
            let id = version_of(state, function, &format!("additionalVersionWeight.{k}"), &k)?;
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                return Err(ApiError::invalid(format!(
                    "additionalVersionWeight.{k}: {v} must be between 0 and 1"
                )));
            }
            total += v;
            weights.insert(id, v);
        }
        if total > 1.0 + 1e-9 {
            return Err(ApiError::invalid(format!(
                "additionalVersionWeight: weights add up to {total}, more than 1"
            )));
        }
        a.additional_version_weight = weights;
    }
    if a.additional_version_weight.contains_key(&a.version_id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "AdditionalVersionContainsMajorVersion",
            format!(
                "additionalVersionWeight must not contain the alias's own version '{}'",
                a.version_id
            ),
        ));
    }
    Ok(())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(function): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let input: Input = body::json(&body)?;
    let name = input
        .alias_name
        .clone()
        .ok_or_else(|| ApiError::invalid("aliasName: required"))?;
    validate::name("aliasName", &name, 128).map_err(ApiError::invalid)?;
    if name == "LATEST" {
        return Err(ApiError::invalid("aliasName: 'LATEST' is reserved"));
    }
    if input.version_id.is_none() {
        return Err(ApiError::invalid("versionId: required"));
    }
    let now = now_rfc3339();
    let mut a = Alias {
        alias_name: name,
        version_id: 0,
        additional_version_weight: BTreeMap::new(),
        description: String::new(),
        created_time: now.clone(),
        last_modified_time: now,
    };
    apply(&state, &function, &mut a, input)?;
    let (f, stored) = (function.clone(), a.clone());
    state
        .dispatcher
        .store()
        .write(move |c| registry::put_alias(c, &f, &stored, true))
        .await
        .map_err(|e| match e {
            fnbridge_store::StoreError::Conflict(m) => ApiError::conflict("AliasAlreadyExists", m),
            other => other.into(),
        })?;
    state.dispatcher.put_alias(&function, a.clone());
    Ok(Json(to_json(&a)))
}

fn missing(function: &str, name: &str) -> ApiError {
    ApiError::not_found(
        "AliasNotFound",
        format!("alias '{name}' of function '{function}' does not exist"),
    )
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    state
        .dispatcher
        .alias(&function, &name)
        .map(|a| Json(to_json(&a)))
        .ok_or_else(|| missing(&function, &name))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    loaded(&state, &function)?;
    let input: Input = body::json(&body)?;
    if let Some(n) = &input.alias_name
        && *n != name
    {
        return Err(ApiError::invalid("aliasName: cannot be changed"));
    }
    let mut a = state
        .dispatcher
        .alias(&function, &name)
        .ok_or_else(|| missing(&function, &name))?;
    apply(&state, &function, &mut a, input)?;
    a.last_modified_time = now_rfc3339();
    let (f, stored) = (function.clone(), a.clone());
    state
        .dispatcher
        .store()
        .write(move |c| registry::put_alias(c, &f, &stored, false))
        .await
        .map_err(|e| match e {
            fnbridge_store::StoreError::Conflict(_) => missing(&function, &name),
            other => other.into(),
        })?;
    state.dispatcher.put_alias(&function, a.clone());
    Ok(Json(to_json(&a)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &function)?;
    state
        .dispatcher
        .alias(&function, &name)
        .ok_or_else(|| missing(&function, &name))?;
    let refs = state.dispatcher.references(&function, &name);
    if !refs.is_empty() {
        return Err(ApiError::conflict(
            "AliasInUse",
            format!(
                "alias '{name}' of function '{function}' is used by {}",
                refs.join(", ")
            ),
        ));
    }
    let (f, n) = (function.clone(), name.clone());
    state
        .dispatcher
        .store()
        .write(move |c| registry::delete_alias(c, &f, &n))
        .await?;
    state.dispatcher.remove_alias(&function, &name);
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
    let all = state.dispatcher.store().read(registry::all_aliases).await?;
    let mut items: Vec<Alias> = all
        .into_iter()
        .filter(|(f, a)| {
            *f == function && a.alias_name.starts_with(&prefix) && a.alias_name > after
        })
        .map(|(_, a)| a)
        .collect();
    let next = crate::body::page(&mut items, limit, |a| a.alias_name.clone());
    Ok(Json(
        json!({"aliases": items.iter().map(to_json).collect::<Vec<_>>(), "nextToken": next}),
    ))
}
