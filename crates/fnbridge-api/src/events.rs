//! `POST /events`: the ingest API. Takes the envelope a CDN or OSS sends, `{"events":[...]}`,
//! validates every event, and answers only once each event and its deliveries are durable.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use fnbridge_event::limits::MAX_INGEST_BODY;
use serde_json::{Value, json};

use crate::body;
use crate::error::ApiError;
use crate::router::AppState;

pub(crate) async fn put(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    body::limit(&payload, MAX_INGEST_BODY)?;
    // Envelope errors come back as `DispatchError::Invalid`, an InvalidArgument like before.
    let receipts = state.dispatcher.ingest(&payload).await?;
    Ok(Json(json!({"events": receipts})))
}

/// `POST /events/explain`: one event; for every trigger, whether it matches and, if not, the
/// first field that failed (`fnbridge events explain`).
pub(crate) async fn explain(
    State(state): State<AppState>,
    payload: Bytes,
) -> Result<Json<Value>, ApiError> {
    body::limit(&payload, MAX_INGEST_BODY)?;
    let triggers = state.dispatcher.explain(&payload)?;
    Ok(Json(json!({"triggers": triggers})))
}
