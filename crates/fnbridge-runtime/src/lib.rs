//! Function instances: runs Python handlers in warm worker processes, with per-function pools,
//! timeouts, memory limits and per-invocation logs, behind one `Runtime::invoke`.
//!
//! A worker is a `python3` process running the embedded bootstrap (`src/python/bootstrap.py`),
//! which imports the handler once and then serves invocations over a Unix socket in
//! length-prefixed frames (small JSON header + raw event bytes). Its stdout and stderr share
//! one pipe that is drained all the time and cut into per-invocation logs at the
//! `FC Invoke Start/End RequestId` markers. Every worker leads its own process group and is
//! killed, group and all, when its owner drops it.
//!
//! Limits, and how each failure is reported (`FunctionError`):
//! - time: the invocation's `timeout` (the initializer's own) is enforced here; past it the
//!   process group is SIGKILLed (`Timeout`, or `InitFailed` for the initializer).
//! - memory: the bootstrap sets RLIMIT_AS to `memory_mb + memory_headroom_mb`. Address space
//!   is not resident memory, hence the headroom; in exchange the limit is exact and immediate,
//!   with no sampling. An allocation past it raises MemoryError (`OutOfMemory`); a worker
//!   killed by a SIGKILL we did not send, which is what the kernel's OOM killer does, is also
//!   `OutOfMemory`. Either way the instance is replaced.
//! - crashes: any other exit mid-invocation is `Crashed`, and the instance is replaced.
//! - output: at most `max_log_bytes` of log per invocation; the rest is dropped, never buffered.
//!
//! # Layout
//! - `config`: `RuntimeConfig`, the host-wide settings.
//! - `spec`: `FunctionSpec`, `Hook`, `Invocation`, `Credentials`: what runs and with what.
//! - `outcome`: `InvokeOutcome` and `FunctionError`, how an invocation ended.
//! - `error`: `RuntimeError`, platform failures.
//! - `runtime`: `Runtime`, the entry point: pools by function, reaping, retire, shutdown.
//! - `pool`: one function's warm instances, its instance cap and its FIFO queue.
//! - `instance`: `Backend` and `Instance`, the per-runtime-kind dispatch (Python today).
//! - `python`: the Python backend: spawning workers and talking to them.
//! - `python::frame`: the control-socket wire format.
//! - `python::env`: a worker's environment and bootstrap configuration.
//! - `python::interpreter`: resolving `python3` and installing the bootstrap.
//! - `python::check`: `check_python_handler`, the deploy-time handler check.
//! - `logs`: draining worker output and cutting out each invocation's log.
//! - `process`: process groups, killed on drop and at shutdown.

mod config;
mod error;
mod instance;
mod logs;
mod outcome;
mod pool;
mod process;
mod python;
mod runtime;
mod spec;

pub use config::{RuntimeConfig, host_base_env};
pub use error::RuntimeError;
pub use outcome::{FunctionError, InvokeOutcome};
pub use python::check_python_handler;
pub use runtime::Runtime;
pub use spec::{Credentials, FunctionSpec, Hook, Invocation};
