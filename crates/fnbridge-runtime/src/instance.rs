//! Runtime kinds: `Backend` picks the implementation for a `runtime` string and `Instance`
//! dispatches to it. Python is the only kind today; a custom-runtime (HTTP) backend is one more
//! variant in each enum.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::outcome::InvokeOutcome;
use crate::process::LiveGroups;
use crate::python::PythonInstance;
use crate::spec::{FunctionSpec, Invocation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `python3`, `python3.9`, `python3.10`, `python3.12`: all run on the configured interpreter.
    Python,
}

impl Backend {
    pub(crate) fn for_runtime(runtime: &str) -> Result<Backend, RuntimeError> {
        let python = runtime == "python3"
            || runtime.strip_prefix("python3.").is_some_and(|minor| {
                !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if python {
            Ok(Backend::Python)
        } else {
            Err(RuntimeError::UnsupportedRuntime(runtime.to_owned()))
        }
    }
}

/// What every instance needs from the runtime, resolved once at start-up.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) cfg: RuntimeConfig,
    /// The interpreter's real path (a pyenv shim costs ~100 ms on every start).
    pub(crate) python: PathBuf,
    /// The bootstrap written into the work directory.
    pub(crate) bootstrap: PathBuf,
    pub(crate) live: Arc<LiveGroups>,
}

/// Everything needed to start one instance.
pub(crate) struct Launch<'a> {
    pub(crate) host: &'a Host,
    pub(crate) spec: &'a Arc<FunctionSpec>,
    pub(crate) instance_id: String,
    /// The invocation that caused the start; its credentials go into the environment.
    pub(crate) first: &'a Invocation,
}

/// An invocation's outcome and whether the instance may serve another one.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) outcome: InvokeOutcome,
    pub(crate) reusable: bool,
}

/// One running function instance. Dropping it kills its process group.
#[derive(Debug)]
pub(crate) enum Instance {
    Python(PythonInstance),
}

impl Instance {
    pub(crate) async fn start(
        backend: Backend,
        launch: &Launch<'_>,
    ) -> Result<Instance, RuntimeError> {
        match backend {
            Backend::Python => PythonInstance::start(launch).await.map(Instance::Python),
        }
    }

    /// Runs one invocation (and the initializer first, on a fresh instance). Cancelling the
    /// future leaves the instance mid-request: drop it then.
    pub(crate) async fn invoke(&mut self, inv: &Invocation) -> Served {
        match self {
            Instance::Python(p) => p.invoke(inv).await,
        }
    }

    /// Kills the instance and waits (briefly) until it is gone.
    pub(crate) async fn stop(self) {
        match self {
            Instance::Python(p) => p.stop().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_runtimes_map_to_the_python_backend() {
        for rt in ["python3", "python3.9", "python3.10", "python3.12"] {
            assert_eq!(Backend::for_runtime(rt).unwrap(), Backend::Python);
        }
        for rt in [
            "python2.7",
            "python3.",
            "python3.x",
            "custom",
            "nodejs18",
            "",
        ] {
            assert!(Backend::for_runtime(rt).is_err(), "{rt}");
        }
    }
}
