//! `CdnError`: a refused or failed CDN action with its Alibaba RPC error code and HTTP status;
//! the API renders it as `{"RequestId","HostId","Code","Message"}`.

use fnbridge_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CdnError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl CdnError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> CdnError {
        CdnError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn missing(name: &str) -> CdnError {
        Self::new(
            400,
            "MissingParameter",
            format!(
                "the input parameter \"{name}\" that is mandatory for processing this request is not supplied"
            ),
        )
    }
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> CdnError {
        Self::new(400, "InvalidParameter", format!("{name}: {why}"))
    }
    pub fn no_domain(name: &str) -> CdnError {
        Self::new(
            404,
            "InvalidDomain.NotFound",
            format!("the domain '{name}' does not exist"),
        )
    }
    pub fn internal(m: impl std::fmt::Display) -> CdnError {
        Self::new(500, "InternalError", m.to_string())
    }
}

impl From<StoreError> for CdnError {
    fn from(e: StoreError) -> CdnError {
        match e {
            StoreError::DiskFull { .. } => CdnError::new(507, "InsufficientStorage", e.to_string()),
            other => CdnError::internal(other),
        }
    }
}

impl From<fnbridge_objectstore::SinkError> for CdnError {
    fn from(e: fnbridge_objectstore::SinkError) -> CdnError {
        match e {
            fnbridge_objectstore::SinkError::Store(s) => s.into(),
            fnbridge_objectstore::SinkError::Unavailable(m) => {
                CdnError::new(503, "ServiceUnavailable", m)
            }
        }
    }
}
