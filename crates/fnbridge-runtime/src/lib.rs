//! Function instances: runs Python handlers in warm worker processes and custom runtimes (the
//! user's own HTTP server), with per-function pools, timeouts, memory limits, lifecycle hooks and
//! per-invocation logs, behind one `Runtime::invoke`.
//!
//! A Python worker is a `python3` process running the embedded bootstrap
//! (`src/python/bootstrap.py`), which imports the handler once and then serves invocations over a
//! Unix socket in length-prefixed frames (small JSON header + raw event bytes). A custom-runtime
//! instance is the configured command, listening on a loopback port of its own, spoken to over
//! HTTP as FC's custom runtimes are (runtime.md §7), up to `instanceConcurrency` requests at once.
//! Either way stdout and stderr share one pipe that is drained all the time and cut into
//! per-invocation logs at the `FC Invoke Start/End RequestId` markers (for a server that writes
//! none, by time, with the markers added). Every instance leads its own process group and is
//! killed, group and all, when its owner drops it.
//!
//! Limits, and how each failure is reported (`FunctionError`):
//! - time: the invocation's `timeout` (the initializer's own) is enforced here; past it the
//!   process group is SIGKILLed (`Timeout`, or `InitFailed` for the initializer).
//! - memory, Python: the bootstrap sets RLIMIT_AS to `memory_mb + memory_headroom_mb`. Address
//!   space is not resident memory, hence the headroom; in exchange the limit is exact and
//!   immediate, with no sampling. An allocation past it raises MemoryError (`OutOfMemory`).
//! - memory, custom runtimes: the resident set of the process group is sampled and the group
//!   killed past `memory_mb` (`OutOfMemory`); RLIMIT_AS would stop the JVM or V8 from starting.
//! - either way a worker killed by a SIGKILL we did not send, which is what the kernel's OOM
//!   killer does, is also `OutOfMemory`, and the instance is replaced.
//! - crashes: any other exit mid-invocation is `Crashed`, and the instance is replaced.
//! - start (custom runtimes): a missing command, or a server that exits or never listens, is
//!   `StartFailed`, with FC's `CAFileNotFound` / `CAFilePermission` / `CAExited` as `errorType`.
//! - output: at most `max_log_bytes` of log per invocation; the rest is dropped, never buffered.
//!
//! Hooks: the initializer runs once per instance before its first invocation; PreStop runs
//! before an instance that leaves service for good is killed (idle timeout, retire, eviction,
//! shutdown), within its timeout, in the background; never on one that crashed or timed out.
//!
//! # Layout
//! - `config`: `RuntimeConfig`, the host-wide settings.
//! - `spec`: `FunctionSpec`, `Hook`, `CustomRuntime`, `HealthCheck`, `Invocation`,
//!   `Credentials`: what runs and with what.
//! - `outcome`: `InvokeOutcome` and `FunctionError`, how an invocation ended.
//! - `error`: `RuntimeError`, platform failures.
//! - `runtime`: `Runtime`, the entry point: pools by function, reaping, retire, shutdown.
//! - `pool`: one function's instances, their concurrency, its instance cap and its FIFO queue.
//! - `instance`: `Backend` and `Instance`, the per-runtime-kind dispatch (Python, custom).
//! - `env`: the environment every instance starts with (runtime.md §3).
//! - `python`: the Python backend: spawning workers and talking to them.
//! - `python::frame`: the control-socket wire format.
//! - `python::env`: a worker's environment and bootstrap configuration.
//! - `python::interpreter`: resolving `python3` and installing the bootstrap.
//! - `python::check`: `check_python_handler`, the deploy-time handler check.
//! - `custom`: the custom-runtime backend: start, readiness, the HTTP requests, hooks, verdicts.
//! - `custom::command`: resolving and checking `command` + `args`.
//! - `custom::http`: the HTTP/1.1 client (one loopback connection per request).
//! - `logs`: draining instance output and cutting out each invocation's log.
//! - `memwatch`: sampling custom-runtime instances' resident memory against their limit.
//! - `process`: process groups, killed on drop and at shutdown; noticing a leader's exit.
//! - `sandbox`: bubblewrap, setpriv and seccomp for every instance; `sandbox::net` its network
//!   namespace, API proxy and slirp4netns; `sandbox::dns` its name server, which points Alibaba
//!   Cloud's endpoint names at fnbridge's services; `sandbox::cgroup` its memory cgroup.

mod config;
mod custom;
mod env;
mod error;
mod instance;
mod logs;
mod memwatch;
mod outcome;
mod pool;
mod process;
mod python;
mod runtime;
mod sandbox;
mod spec;

pub use config::{RuntimeConfig, host_base_env};
pub use error::RuntimeError;
pub use outcome::{FunctionError, InvokeOutcome};
pub use python::check_python_handler;
pub use runtime::Runtime;
pub use sandbox::{CODE_DIR, Public, SandboxConfig, Service, SharedMount};
pub use spec::{Credentials, CustomRuntime, FunctionSpec, HealthCheck, Hook, Invocation};
