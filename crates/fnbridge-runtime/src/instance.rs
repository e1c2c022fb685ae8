//! Runtime kinds: `Backend` picks the implementation for a `runtime` string and `Instance`
//! dispatches to it: Python workers (one invocation at a time, owned by the invocation using
//! them) and custom-runtime servers (shared by up to `instanceConcurrency` invocations).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::RuntimeConfig;
use crate::custom::CustomInstance;
use crate::error::RuntimeError;
use crate::memwatch::MemoryWatch;
use crate::outcome::{FunctionError, InvokeOutcome};
use crate::process::LiveGroups;
use crate::python::{Interpreters, Layers, PythonInstance};
use crate::sandbox::Sandbox;
use crate::spec::{FunctionSpec, Invocation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `python3`, `python3.9`, `python3.10`, `python3.12`: all run on the configured interpreter.
    Python,
    /// `custom`, `custom.debian10`, `custom.debian11`, `custom.debian12`: the user's own HTTP
    /// server, on the host's system (the Debian release is not emulated).
    Custom,
}

impl Backend {
    pub(crate) fn for_runtime(runtime: &str) -> Result<Backend, RuntimeError> {
        let python = runtime == "python3"
            || runtime.strip_prefix("python3.").is_some_and(|minor| {
                !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if python {
            return Ok(Backend::Python);
        }
        match runtime {
            "custom" | "custom.debian10" | "custom.debian11" | "custom.debian12" => {
                Ok(Backend::Custom)
            }
            _ => Err(RuntimeError::UnsupportedRuntime(runtime.to_owned())),
        }
    }
}

/// What every instance needs from the runtime, resolved once at start-up.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) cfg: RuntimeConfig,
    /// The default interpreter's real path (a pyenv shim costs ~100 ms on every start).
    pub(crate) python: PathBuf,
    /// Every interpreter, by version.
    pub(crate) pythons: Interpreters,
    /// `None` only with `--insecure-no-sandbox`.
    pub(crate) sandbox: Option<Arc<Sandbox>>,
    /// The shared layers of FC's built-in Python modules.
    pub(crate) layers: Layers,
    /// The bootstrap written into the work directory.
    pub(crate) bootstrap: PathBuf,
    pub(crate) live: Arc<LiveGroups>,
    /// Resident-memory limits of custom-runtime instances.
    pub(crate) memory: MemoryWatch,
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

impl Served {
    pub(crate) fn new(
        instance_id: &str,
        error: Option<FunctionError>,
        body: Bytes,
        log: String,
        duration: Duration,
        reusable: bool,
    ) -> Served {
        let outcome = InvokeOutcome {
            error,
            body,
            log,
            duration,
            instance_id: instance_id.to_owned(),
        };
        Served { outcome, reusable }
    }
}

/// The invocation a PreStop hook runs as: the instance's last one (its credentials and
/// qualifier), or an empty `LATEST` one, under the request id `{instance}-prestop`.
pub(crate) fn pre_stop_invocation(last: Option<Invocation>, instance_id: &str) -> Invocation {
    let mut inv = last.unwrap_or_else(|| Invocation {
        request_id: String::new(),
        payload: Bytes::new(),
        qualifier: "LATEST".to_owned(),
        version_id: String::new(),
        credentials: Default::default(),
    });
    inv.request_id = format!("{instance_id}-prestop");
    inv
}

/// Reports a PreStop hook's result: nobody waits for it, so its log and any failure go to
/// `tracing`.
pub(crate) fn log_pre_stop(
    instance_id: &str,
    function: &str,
    error: Option<FunctionError>,
    body: &[u8],
    log: &str,
) {
    match error {
        None => {
            tracing::info!(instance = %instance_id, %function, %log, "pre-stop hook ran");
        }
        Some(error) => {
            let body = String::from_utf8_lossy(body);
            tracing::warn!(instance = %instance_id, %function, %error, %body, %log, "pre-stop hook failed");
        }
    }
}

/// Why no instance could be started.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The platform could not run anything (`Runtime::invoke` returns it as `Err`).
    Platform(RuntimeError),
    /// The function's own start failed (custom runtimes: missing command, a server that exits
    /// or never listens); this is the invocation's outcome.
    Function(Box<InvokeOutcome>),
}

/// One running function instance, or a handle to a shared one. The instance's process group
/// is killed when the last handle is dropped.
#[derive(Debug)]
pub(crate) enum Instance {
    /// Boxed: it moves in and out of the pool on every invocation.
    Python(Box<PythonInstance>),
    Custom(Arc<CustomInstance>),
}

impl Instance {
    pub(crate) async fn start(
        backend: Backend,
        launch: &Launch<'_>,
    ) -> Result<Instance, StartFailure> {
        match backend {
            Backend::Python => PythonInstance::start(launch)
                .await
                .map(|p| Instance::Python(Box::new(p)))
                .map_err(StartFailure::Platform),
            Backend::Custom => CustomInstance::start(launch)
                .await
                .map(|c| Instance::Custom(Arc::new(c))),
        }
    }

    /// Invocations it may serve at once.
    pub(crate) fn capacity(&self) -> usize {
        match self {
            Instance::Python(_) => 1,
            Instance::Custom(c) => c.capacity(),
        }
    }

    /// Another handle to the same instance, for a concurrent invocation; `None` for instances
    /// that serve one invocation at a time and so are owned by it.
    pub(crate) fn share(&self) -> Option<Instance> {
        match self {
            Instance::Python(_) => None,
            Instance::Custom(c) => Some(Instance::Custom(Arc::clone(c))),
        }
    }

    /// False for an instance known to be dead (it exited or was killed while idle). A Python
    /// worker's death shows in its next invocation instead.
    pub(crate) fn is_usable(&self) -> bool {
        match self {
            Instance::Python(_) => true,
            Instance::Custom(c) => c.is_usable(),
        }
    }

    pub(crate) fn pgid(&self) -> i32 {
        match self {
            Instance::Python(p) => p.pgid(),
            Instance::Custom(c) => c.pgid(),
        }
    }

    pub(crate) fn has_pre_stop(&self) -> bool {
        match self {
            Instance::Python(p) => p.has_pre_stop(),
            Instance::Custom(c) => c.has_pre_stop(),
        }
    }

    /// Runs one invocation (and the initializer first, on a fresh instance). Cancelling the
    /// future leaves the instance mid-request: drop it then.
    pub(crate) async fn invoke(&mut self, inv: &Invocation) -> Served {
        match self {
            Instance::Python(p) => p.invoke(inv).await,
            Instance::Custom(c) => c.invoke(inv).await,
        }
    }

    /// Kills the instance now, even while other invocations hold handles to it (they fail):
    /// for instances that are broken.
    pub(crate) fn discard(self) {
        match self {
            Instance::Python(p) => drop(p),
            Instance::Custom(c) => c.kill(),
        }
    }

    /// Runs the PreStop hook (if configured), then kills the instance and waits (briefly)
    /// until it is gone. A handle to a shared instance that others still hold is just dropped;
    /// the last one does the stopping.
    pub(crate) async fn stop(self) {
        match self {
            Instance::Python(p) => p.stop().await,
            Instance::Custom(c) => {
                if let Some(c) = Arc::into_inner(c) {
                    c.stop().await;
                }
            }
        }
    }
}

/// Stops instances that leave service for good (idle too long, retired, evicted, returned to a
/// closed pool). Those with a PreStop hook are stopped in the background, since the callers are
/// synchronous and the hook may take its whole timeout; the rest are killed right away.
pub(crate) fn dispose(instances: impl IntoIterator<Item = Instance>) {
    for instance in instances {
        if instance.has_pre_stop()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(instance.stop());
        } else {
            drop(instance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_map_to_their_backends() {
        for rt in ["python3", "python3.9", "python3.10", "python3.12"] {
            assert_eq!(Backend::for_runtime(rt).unwrap(), Backend::Python);
        }
        for rt in [
            "custom",
            "custom.debian10",
            "custom.debian11",
            "custom.debian12",
        ] {
            assert_eq!(Backend::for_runtime(rt).unwrap(), Backend::Custom);
        }
        for rt in [
            "python2.7",
            "python3.",
            "python3.x",
            "custom.debian9",
            "custom-container",
            "nodejs18",
            "",
        ] {
            assert!(Backend::for_runtime(rt).is_err(), "{rt}");
        }
    }
}
