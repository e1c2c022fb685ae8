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
    /// `python3`, `python3.9`, `python3.10`, `python3.12`, or `custom`, `custom.debian10`,
    /// `custom.debian11`, `custom.debian12`.
    pub runtime: String,
    /// Python: `module.function`, e.g. `index.handler`. Custom runtimes: informational only
    /// (passed on as `FC_FUNCTION_HANDLER` and `x-fc-function-handler`).
    pub handler: String,
    /// The unpacked code; the working directory of the instance (and `sys.path[0]` for Python).
    pub code_dir: PathBuf,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// User environment variables (validated upstream: no `FC_` prefix, 4 KB in total).
    pub env: BTreeMap<String, String>,
    pub initializer: Option<Hook>,
    /// `instanceLifecycleConfig.preStop`: run before an instance is stopped by reaping, retiring,
    /// eviction or shutdown (not when it crashed or timed out), bounded by its timeout.
    pub pre_stop: Option<Hook>,
    /// Concurrent invocations per instance. Python instances always serve one at a time; a
    /// custom-runtime instance serves up to this many at once (0 counts as 1).
    pub instance_concurrency: u32,
    /// `customRuntimeConfig` for the `custom*` runtimes; `None` means all defaults (run
    /// `./bootstrap`, no health check). Ignored by Python runtimes.
    pub custom: Option<CustomRuntime>,
    /// Whether the invocation's credentials go into the `ALIBABA_CLOUD_*` variables
    /// (`disableInjectCredentials` not `Env`/`All`).
    pub credentials_in_env: bool,
    /// Whether they go into each request: `context.credentials`, the `x-fc-*` key headers
    /// (`disableInjectCredentials` not `Request`/`All`).
    pub credentials_in_request: bool,
}

impl Default for FunctionSpec {
    /// FC's defaults where it has them (128 MB, 3 s, concurrency 1), so callers can write
    /// `FunctionSpec { function_name, .., ..Default::default() }`.
    fn default() -> Self {
        FunctionSpec {
            function_name: String::new(),
            revision: String::new(),
            runtime: "python3".to_owned(),
            handler: "index.handler".to_owned(),
            code_dir: PathBuf::new(),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            env: BTreeMap::new(),
            initializer: None,
            pre_stop: None,
            instance_concurrency: 1,
            custom: None,
            credentials_in_env: true,
            credentials_in_request: true,
        }
    }
}

/// A lifecycle hook (`instanceLifecycleConfig.initializer` / `.preStop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Python: `module.function`, called as `function(context)`. Custom runtimes: informational
    /// (`x-fc-function-initializer`, `x-fc-instance-lifecycle-pre-stop-handler`); the hook is
    /// `POST /initialize` or `GET /pre-stop` whatever it says.
    pub handler: String,
    pub timeout: Duration,
}

/// `customRuntimeConfig`: how to start a custom-runtime instance and when it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRuntime {
    /// The program and its first arguments; empty means `./bootstrap` in the code directory.
    /// A name without `/` is looked up in the instance's PATH, then in the code directory and
    /// its `bin/`; a relative path is relative to the code directory.
    pub command: Vec<String>,
    /// Appended to `command`.
    pub args: Vec<String>,
    /// The configured port (FC default 9000). Informational: instances share one host, so each
    /// is told its own free loopback port in `FC_CUSTOM_LISTEN_PORT` (and `FC_SERVER_PORT`) and
    /// must listen there. A server found on this port instead is named in the start error.
    pub port: u16,
    pub health_check: Option<HealthCheck>,
}

impl Default for CustomRuntime {
    fn default() -> Self {
        CustomRuntime {
            command: Vec::new(),
            args: Vec::new(),
            port: 9000,
            health_check: None,
        }
    }
}

/// `customRuntimeConfig.healthCheckConfig`. Without it an instance is ready once its port
/// accepts connections; with it, once the port accepts connections and then
/// `success_threshold` consecutive `GET http_get_url` answer 2xx (`failure_threshold`
/// consecutive failures fail the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// A path (`/ready`); a full `http://host:port/path` URL is reduced to its path.
    pub http_get_url: String,
    /// From the process start to the first check (`initialDelaySeconds`).
    pub initial_delay: Duration,
    /// Between checks (`periodSeconds`).
    pub period: Duration,
    /// Per check (`timeoutSeconds`).
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

impl Default for HealthCheck {
    /// FC's defaults: no delay, every 3 s, 1 s per check, 3 failures, 1 success.
    fn default() -> Self {
        HealthCheck {
            http_get_url: "/".to_owned(),
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
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
    /// The event, passed to the handler as `bytes` (custom runtimes: the request body) without
    /// re-encoding.
    pub payload: Bytes,
    /// Qualifier the caller used (`LATEST`, `3`, `prod`).
    pub qualifier: String,
    /// Version it resolved to; empty for `LATEST`.
    pub version_id: String,
    pub credentials: Credentials,
}
