//! `ApiError`: every failure of a request, mapped in this one place to an HTTP status and FC's
//! error body `{"Code","Message","RequestId"}` (fc-api.md §3). The request id is filled in by the
//! router's middleware, which is the only code that knows it. A full disk is the server's
//! trouble, not the caller's: 507 `InsufficientStorage` naming the disk, never a 400.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fnbridge_dispatch::{DispatchError, RegistryError};
use fnbridge_store::StoreError;

use crate::code::DeployError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (throttling).
    pub retry_after: Option<u64>,
}

/// Carried on an error response until the middleware renders it with the request id.
#[derive(Debug, Clone)]
pub(crate) struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            format!("payload size exceeds maximum allowed size ({limit} bytes)"),
        )
    }
    pub fn function_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "FunctionNotFound",
            format!("function '{name}' does not exist"),
        )
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// The server's disk is full: 507, with a message naming the disk, so the operator (not
    /// the caller) knows what to fix. Not FC's table; FC's own disks do not fill up.
    pub fn disk_full(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(error = %message, "disk full");
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "InsufficientStorage",
            message,
        )
    }
    /// The server's disk failed a read or write: 503, the request may succeed later.
    pub fn disk_io(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(error = %message, "disk I/O error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "an internal error has occurred. Please retry.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r.extensions_mut().insert(ErrorBody {
            code: self.code,
            message: self.message,
        });
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::conflict("ConcurrentUpdateError", m),
            e @ StoreError::DiskFull { .. } => ApiError::disk_full(e.to_string()),
            e @ StoreError::Io { .. } => ApiError::disk_io(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Invalid(m) => ApiError::invalid(m),
            DeployError::DiskFull(m) => ApiError::disk_full(m),
            DeployError::Io(m) => ApiError::internal(m),
        }
    }
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::FunctionNotFound(n) => ApiError::function_not_found(&n),
            DispatchError::Invalid(m) => ApiError::invalid(m),
            DispatchError::QualifierNotFound(m) => {
                let code = if m.starts_with("version") {
                    "VersionNotFound"
                } else {
                    "AliasNotFound"
                };
                ApiError::not_found(code, m)
            }
            DispatchError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ResourceThrottled",
                "the server is shutting down",
            ),
            DispatchError::Backlogged { .. } => ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ResourceThrottled",
                    e.to_string(),
                )
            },
            DispatchError::Store(s) => s.into(),
            DispatchError::Runtime(m) => ApiError::internal(m),
            DispatchError::BusNotFound(b) => ApiError::not_found(
                "EventBusNotExist",
                format!("event bus '{b}' does not exist"),
            ),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let m = e.to_string();
        match e {
            RegistryError::FunctionNotFound(_) => ApiError::not_found("FunctionNotFound", m),
            RegistryError::FunctionAlreadyExists(_) => {
                ApiError::conflict("FunctionAlreadyExists", m)
            }
            RegistryError::FunctionNotEmpty { .. } => ApiError::conflict("FunctionNotEmpty", m),
            RegistryError::VersionNotFound { .. } => ApiError::not_found("VersionNotFound", m),
            RegistryError::AliasNotFound { .. } => ApiError::not_found("AliasNotFound", m),
            RegistryError::AliasAlreadyExists { .. } => ApiError::conflict("AliasAlreadyExists", m),
            RegistryError::TriggerNotFound { .. } => ApiError::not_found("TriggerNotFound", m),
            RegistryError::TriggerAlreadyExists { .. } => {
                ApiError::conflict("TriggerAlreadyExists", m)
            }
            RegistryError::VersionInUse { .. } => ApiError::conflict("VersionInUse", m),
            RegistryError::AliasInUse { .. } => ApiError::conflict("AliasInUse", m),
            RegistryError::AsyncConfigNotFound { .. } => {
                ApiError::not_found("AsyncConfigNotExists", m)
            }
            RegistryError::Invalid(m) => ApiError::invalid(m),
            RegistryError::BusNotFound(_) => ApiError::not_found("EventBusNotExist", m),
            RegistryError::BusAlreadyExists(_) => ApiError::conflict("EventBusAlreadyExist", m),
            RegistryError::BusNotEmpty { .. } => ApiError::conflict("EventBusNotEmpty", m),
            RegistryError::BusHasArchives { .. } => ApiError::conflict("EventBusNotEmpty", m),
            RegistryError::ArchiveNotFound(_) => ApiError::not_found("ArchiveNotExist", m),
            RegistryError::ArchiveAlreadyExists(_) => ApiError::conflict("ArchiveAlreadyExist", m),
            RegistryError::ReplayNotFound(_) => ApiError::not_found("ReplayNotExist", m),
            RegistryError::ReplayAlreadyExists(_) => ApiError::conflict("ReplayAlreadyExist", m),
            RegistryError::Store(s) => s.into(),
        }
    }
}
