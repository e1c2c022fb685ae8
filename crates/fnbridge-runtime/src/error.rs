//! `RuntimeError`: platform failures, as opposed to a function failing (`FunctionError`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime {0:?} is not supported")]
    UnsupportedRuntime(String),
    #[error("cannot prepare work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("python interpreter {python} is unusable: {reason}")]
    Interpreter { python: PathBuf, reason: String },
    #[error("cannot start an instance of function {function}: {source}")]
    Spawn {
        function: String,
        source: std::io::Error,
    },
    #[error("cannot sandbox function instances on this host: {0}")]
    Sandbox(String),
    #[error("{0}")]
    MissingInterpreter(String),
    #[error("the runtime is shutting down")]
    ShuttingDown,
}
