//! InvokeFunction (fc-api.md §9): synchronous calls answer with the handler's result (function
//! errors stay HTTP 200, flagged by `x-fc-error-type`); asynchronous calls are made durable and
//! answered 202 with the task id.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use fnbridge_event::limits::{MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD};

use crate::body;
use crate::error::ApiError;
use crate::functions::{QualifierQuery, check_qualifier, loaded};
use crate::router::AppState;

/// `x-fc-log-result` carries at most the last 4 KB of the invocation's log.
const TAIL_BYTES: usize = 4096;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("header {name}: not valid ASCII"))),
    }
}

/// The tail of a log, cut on a UTF-8 boundary.
fn tail(log: &str) -> &str {
    if log.len() <= TAIL_BYTES {
        return log;
    }
    let mut start = log.len() - TAIL_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

fn valid_task_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

pub(crate) async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<Response, ApiError> {
    loaded(&state, &name)?;
    let qualifier = check_qualifier(&state, &name, q.qualifier.as_deref())?;
    let kind = header(&headers, "x-fc-invocation-type")?.unwrap_or("Sync");
    let log_type = header(&headers, "x-fc-log-type")?.unwrap_or("None");
    if !matches!(log_type, "None" | "Tail") {
        return Err(ApiError::invalid(format!(
            "header x-fc-log-type: '{log_type}' must be None or Tail"
        )));
    }
    match kind {
        "Sync" => {
            body::limit(&payload, MAX_SYNC_PAYLOAD)?;
            let (request_id, out) = state
                .dispatcher
                .invoke_sync(&name, &qualifier, payload)
                .await?;
            if out.error == Some(fnbridge_runtime::FunctionError::StartFailed) {
                // FC answers a custom runtime that cannot start with 412 and the CA* code.
                let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap_or_default();
                let code = match v["errorType"].as_str() {
                    Some("CAFileNotFound") => "CAFileNotFound",
                    Some("CAFilePermission") => "CAFilePermission",
                    _ => "CAExited",
                };
                let msg = v["errorMessage"]
                    .as_str()
                    .unwrap_or("the custom runtime did not start")
                    .to_string();
                return Err(ApiError::new(StatusCode::PRECONDITION_FAILED, code, msg));
            }
            let mut resp = (StatusCode::OK, out.body.clone()).into_response();
            let h = resp.headers_mut();
            h.insert(
                "x-fc-request-id",
                HeaderValue::from_str(&request_id).map_err(ApiError::internal)?,
            );
            if let Some(err) = &out.error {
                h.insert(
                    "x-fc-error-type",
                    HeaderValue::from_static(err.error_type()),
                );
            }
            if log_type == "Tail" {
                let b64 = base64::engine::general_purpose::STANDARD.encode(tail(&out.log));
                h.insert(
                    "x-fc-log-result",
                    HeaderValue::from_str(&b64).map_err(ApiError::internal)?,
                );
            }
            h.insert(
                "x-fc-instance-id",
                HeaderValue::from_str(&out.instance_id).map_err(ApiError::internal)?,
            );
            h.insert(
                "x-fc-invocation-duration",
                HeaderValue::from(out.duration.as_millis() as u64),
            );
            Ok(resp)
        }
        "Async" => {
            body::limit(&payload, MAX_ASYNC_PAYLOAD)?;
            let task_id = match header(&headers, "x-fc-async-task-id")? {
                Some(id) if !valid_task_id(id) => {
                    return Err(ApiError::invalid(format!(
                        "header x-fc-async-task-id: '{id}' must match ^[A-Za-z_][A-Za-z0-9_-]{{0,127}}$"
                    )));
                }
                Some(id) => Some(id.to_string()),
                None => None,
            };
            let id = state
                .dispatcher
                .enqueue(&name, &qualifier, payload, task_id)
                .await
                .map_err(|e| match e {
                    fnbridge_dispatch::DispatchError::Store(
                        fnbridge_store::StoreError::Conflict(m),
                    ) => ApiError::conflict("AsyncTaskAlreadyExists", m),
                    other => other.into(),
                })?;
            let mut resp = StatusCode::ACCEPTED.into_response();
            let v = HeaderValue::from_str(&id).map_err(ApiError::internal)?;
            resp.headers_mut().insert("x-fc-request-id", v.clone());
            resp.headers_mut().insert("x-fc-async-task-id", v);
            Ok(resp)
        }
        other => Err(ApiError::invalid(format!(
            "header x-fc-invocation-type: '{other}' must be Sync or Async"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_cuts_on_char_boundary() {
        let s = "é".repeat(3000);
        let t = super::tail(&s);
        assert!(t.len() <= super::TAIL_BYTES);
        assert!(t.starts_with('é'));
    }

    #[test]
    fn task_ids() {
        assert!(super::valid_task_id("_a-1"));
        assert!(!super::valid_task_id("1a"));
        assert!(!super::valid_task_id("a b"));
        assert!(!super::valid_task_id(&"a".repeat(129)));
    }
}
