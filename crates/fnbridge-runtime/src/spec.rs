//! What an invocation runs (`FunctionSpec`) and what it carries (`Invocation`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

/// One immutable snapshot of a function's code and configuration. Instances are pooled per
/// `(function_name, revision)`, so a new revision never reuses an instance of the old one.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub function_name: String,
    /// Changes whenever code or configuration changes.
    pub revision: String,
    /// `python3`, `python3.9`, `python3.10`, `python3.12`.
    pub runtime: String,
    /// `module.function`, e.g. `index.handler`.
    pub handler: String,
    /// The unpacked code; on `sys.path` and the working directory of the instance.
    pub code_dir: PathBuf,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// User environment variables (validated upstream: no `FC_` prefix, 4 KB in total).
    pub env: BTreeMap<String, String>,
    pub initializer: Option<Hook>,
    /// Concurrent invocations per instance; Python instances always serve one at a time.
    pub instance_concurrency: u32,
}

/// A lifecycle hook (`instanceLifecycleConfig.initializer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `module.function`, called as `function(context)`.
    pub handler: String,
    pub timeout: Duration,
}

/// Temporary credentials handed to the function (`context.credentials`, `ALIBABA_CLOUD_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
}

/// One call of a function.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// The event, passed to the handler as `bytes` without re-encoding.
    pub payload: Bytes,
    /// Qualifier the caller used (`LATEST`, `3`, `prod`).
    pub qualifier: String,
    /// Version it resolved to; empty for `LATEST`.
    pub version_id: String,
    pub credentials: Credentials,
}
