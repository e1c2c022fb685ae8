//! CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases (fc-api.md §7): names that point
//! at a version, optionally routing a fraction of invocations to other versions.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fnbridge_dispatch::RegistryError;
use fnbridge_store::registry::Alias;
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

fn version_of(field: &str, v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("{field}: '{v}' is not a version id"))
}

/// Parses the alias input; whether the versions exist is checked by the registry service
/// inside its write.
struct Edit {
    version_id: Option<u64>,
    description: Option<String>,
    weights: Option<BTreeMap<u64, f64>>,
}

fn parse(input: Input) -> Result<Edit, ApiError> {
    let version_id = match &input.version_id {
        Some(v) => Some(version_of("versionId", v).map_err(ApiError::invalid)?),
        None => None,
    };
    let weights = match input.additional_version_weight {
        None => None,
        Some(w) => {
            let mut weights = BTreeMap::new();
            let mut total = 0.0;
            for (k, v) in w {
                let id = version_of(&format!("additionalVersionWeight.{k}"), &k)
                    .map_err(ApiError::invalid)?;
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
            Some(weights)
        }
    };
    Ok(Edit {
        version_id,
        description: input.description,
        weights,
    })
}

impl Edit {
    fn apply(self, a: &mut Alias) -> Result<(), RegistryError> {
        if let Some(v) = self.version_id {
            a.version_id = v;
        }
        if let Some(d) = self.description {
            a.description = d;
        }
        if let Some(w) = self.weights {
            a.additional_version_weight = w;
        }
        if a.additional_version_weight.contains_key(&a.version_id) {
            return Err(RegistryError::Invalid(format!(
                "additionalVersionWeight must not contain the alias's own version '{}'",
                a.version_id
            )));
        }
        Ok(())
    }
}

fn own_version_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid(m) if m.starts_with("additionalVersionWeight must not") => {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "AdditionalVersionContainsMajorVersion",
                m,
            )
        }
        other => other.into(),
    }
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
    let edit = parse(input)?;
    let now = now_rfc3339();
    let base = Alias {
        alias_name: name.clone(),
        version_id: 0,
        additional_version_weight: BTreeMap::new(),
        description: String::new(),
        created_time: now.clone(),
        last_modified_time: now,
    };
    let a = state
        .dispatcher
        .put_alias(&function, &name, Some(base), move |a| edit.apply(a))
        .await
        .map_err(own_version_error)?;
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
    let edit = parse(input)?;
    let now = now_rfc3339();
    let a = state
        .dispatcher
        .put_alias(&function, &name, None, move |a| {
            a.last_modified_time = now;
            edit.apply(a)
        })
        .await
        .map_err(own_version_error)?;
    Ok(Json(to_json(&a)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((function, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    loaded(&state, &function)?;
    state.dispatcher.delete_alias(&function, &name).await?;
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
    let all = state.dispatcher.store().read(|c| c.all_aliases()).await?;
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
