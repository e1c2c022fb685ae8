//! Bounded request bodies: JSON bodies parsed with FC-shaped errors instead of axum's plain-text
//! rejections, and a size check that answers `EntityTooLarge`.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON request body into `T`, naming the problem (unknown field, wrong type, where).
pub fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "request body is empty; a JSON object is required",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

/// Rejects bodies over `limit` bytes.
pub fn limit(body: &Bytes, limit: usize) -> Result<(), ApiError> {
    if body.len() > limit {
        Err(ApiError::too_large(limit))
    } else {
        Ok(())
    }
}

/// Cuts a list fetched with `limit + 1` rows down to `limit` and returns the `nextToken` (the key
/// of the last item kept), or `""` on the last page.
pub fn page<T>(items: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> String {
    if items.len() <= limit {
        return String::new();
    }
    items.truncate(limit);
    items.last().map(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_cuts_and_names_the_last_kept_item() {
        let mut v = vec![1, 2, 3];
        assert_eq!(super::page(&mut v, 2, |x| x.to_string()), "2");
        assert_eq!(v, [1, 2]);
        let mut v = vec![1, 2];
        assert_eq!(super::page(&mut v, 2, |x| x.to_string()), "");
        assert_eq!(v, [1, 2]);
    }
}
