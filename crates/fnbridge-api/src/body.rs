//! Bounded request bodies: JSON bodies parsed with FC-shaped errors instead of axum's plain-text
//! rejections, and a size check that answers `EntityTooLarge`.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON request body into `T`, naming the problem (unknown field, wrong type, where).
pub fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

/// Rejects bodies over `limit` bytes.
pub fn limit(body: &Bytes, limit: usize) -> Result<(), ApiError> {
    if body.len() > limit { Err(ApiError::too_large(limit)) } else { Ok(()) }
}
