//! `RuntimeConfig`: the host-wide settings every function instance is started with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::sandbox::SandboxConfig;

/// Settings for the whole runtime; the binary builds this from its own configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Interpreter for the `python3` runtime, and for a `python3.X` whose interpreter the host
    /// lacks (unless `exact_python`). A bare name is resolved once to the real executable, see
    /// `Runtime::new`.
    pub python: PathBuf,
    /// Interpreters for `python3.X` runtimes, by `"3.X"`, given by the operator; the others
    /// are looked for on PATH (`python3.X`, and behind pyenv shims).
    pub python_map: BTreeMap<String, PathBuf>,
    /// Refuse deploys of a `python3.X` the host has no interpreter for, instead of running them
    /// on the nearest one.
    pub exact_python: bool,
    /// Packages of FC's Python runtimes installed once per interpreter into a shared read-only
    /// layer (`<work_dir>/layer-3.X`), so code that imports them runs without requirements.txt.
    pub layer_packages: Vec<String>,
    /// Where the layers live; `work_dir` if unset. Servers may share one.
    pub layer_dir: Option<PathBuf>,
    /// How instances are isolated (see `sandbox`).
    pub sandbox: SandboxConfig,
    /// Where the embedded bootstrap is written.
    pub work_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Warm instances one function may have across all its revisions; invocations beyond it queue.
    pub max_instances_per_function: usize,
    /// An instance idle this long is stopped.
    pub idle_timeout: Duration,
    /// Log kept per invocation; the rest is dropped with a note, so a flood of output costs nothing.
    pub max_log_bytes: usize,
    /// Address space granted on top of `memory_mb` (RLIMIT_AS). Python maps far more than it touches:
    /// the interpreter alone maps ~20 MB, each thread 8 MB of stack, each malloc arena 64 MB.
    pub memory_headroom_mb: u32,
    /// How long a custom-runtime instance may take to listen on its port (and pass its health
    /// check) before the invocation fails with `StartFailed` (`CAExited`).
    pub custom_start_timeout: Duration,
    /// Variables every instance starts with, below the user's and the system's (PATH, HOME, LANG).
    /// Nothing else from the server's environment reaches user code.
    pub base_env: BTreeMap<String, String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            python: PathBuf::from("python3"),
            python_map: BTreeMap::new(),
            exact_python: false,
            layer_packages: Vec::new(),
            layer_dir: None,
            sandbox: SandboxConfig::default(),
            work_dir: std::env::temp_dir().join("fnbridge-runtime"),
            region: "cn-hangzhou".to_owned(),
            account_id: "0".to_owned(),
            max_instances_per_function: 8,
            idle_timeout: Duration::from_secs(600),
            max_log_bytes: 1024 * 1024,
            memory_headroom_mb: 256,
            custom_start_timeout: Duration::from_secs(30),
            base_env: host_base_env(),
        }
    }
}

/// PATH, HOME and LANG of the current process: the part of the server's environment an instance
/// needs to find programs and decode text. Called by `Default`; the binary may pass its own.
pub fn host_base_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for key in ["PATH", "HOME", "LANG"] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_owned(), value);
        }
    }
    env.entry("PATH".to_owned())
        .or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    env.entry("LANG".to_owned())
        .or_insert_with(|| "C.UTF-8".to_owned());
    env
}
