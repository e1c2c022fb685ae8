//! Start-up work for the Python backend: resolving the interpreter and installing the bootstrap.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;

/// The embedded bootstrap every instance runs.
const BOOTSTRAP: &str = include_str!("bootstrap.py");
const BOOTSTRAP_FILE: &str = "fnbridge_bootstrap.py";
/// Oldest Python the bootstrap supports.
const MIN_MINOR: u32 = 8;

/// Writes the bootstrap into `work_dir` (atomically: instances of another runtime may be
/// starting from the same file) and returns its absolute path.
pub(crate) fn install_bootstrap(work_dir: &Path) -> Result<PathBuf, RuntimeError> {
    let err = |source| RuntimeError::WorkDir {
        path: work_dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(work_dir).map_err(err)?;
    let dir = std::path::absolute(work_dir).map_err(err)?;
    let path = dir.join(BOOTSTRAP_FILE);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{BOOTSTRAP_FILE}.{}.{seq}", std::process::id()));
    std::fs::write(&tmp, BOOTSTRAP).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

/// Finds the executable behind `cfg.python` by asking it (`sys.executable`), and checks its
/// version. Runs once at start-up; version managers such as pyenv put a shell-script shim on
/// PATH that would otherwise add ~100 ms to every cold start.
pub(crate) fn resolve_interpreter(cfg: &RuntimeConfig) -> Result<PathBuf, RuntimeError> {
    let python = &cfg.python;
    let fail = |reason: String| RuntimeError::Interpreter {
        python: python.clone(),
        reason,
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.executable); print(sys.version_info[0], sys.version_info[1])",
        ])
        .env_clear()
        .envs(&cfg.base_env)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let executable = lines.next().unwrap_or_default().trim();
    let version: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match version[..] {
        [3, minor] if minor >= MIN_MINOR => {}
        _ => return Err(fail(format!("python 3.{MIN_MINOR} or newer is required"))),
    }
    Ok(if executable.is_empty() {
        python.clone()
    } else {
        PathBuf::from(executable)
    })
}
