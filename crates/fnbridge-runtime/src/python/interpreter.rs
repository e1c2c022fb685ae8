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

/// A resolved Python interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// The real executable (not a shim).
    pub(crate) executable: PathBuf,
    /// `sys.base_prefix`: the directory a sandbox must see for the interpreter to run.
    pub(crate) prefix: PathBuf,
    /// `(3, minor)`.
    pub(crate) minor: u32,
    /// `3.10.13`.
    pub(crate) version: String,
}

/// Every interpreter the host offers, by minor version, and the default one.
#[derive(Debug, Clone)]
pub(crate) struct Interpreters {
    pub(crate) default: Interpreter,
    pub(crate) by_minor: std::collections::BTreeMap<u32, Interpreter>,
    pub(crate) exact: bool,
}

/// Which interpreter runs a `python3.X` runtime, and whether it is the one asked for.
#[derive(Debug, Clone)]
pub(crate) struct Choice<'a> {
    pub(crate) interpreter: &'a Interpreter,
    /// `Some("3.9")` when the host lacks the asked-for version and another one runs it.
    pub(crate) substitute_for: Option<String>,
}

impl Interpreters {
    /// Resolves the default interpreter, the operator's mapping, and `python3.X` for each X in
    /// `minors` found on PATH or behind pyenv's shims.
    pub(crate) fn discover(
        cfg: &RuntimeConfig,
        minors: &[u32],
    ) -> Result<Interpreters, RuntimeError> {
        let default = resolve(&cfg.python, &cfg.base_env)?;
        let mut by_minor = std::collections::BTreeMap::new();
        by_minor.insert(default.minor, default.clone());
        for (version, path) in &cfg.python_map {
            let it = resolve(path, &cfg.base_env)?;
            let wanted = version.strip_prefix("python").unwrap_or(version);
            if wanted != format!("3.{}", it.minor) {
                return Err(RuntimeError::Interpreter {
                    python: path.clone(),
                    reason: format!("mapped to {version} but it is Python {}", it.version),
                });
            }
            by_minor.insert(it.minor, it);
        }
        let path_var = cfg.base_env.get("PATH").map(String::as_str);
        for &minor in minors {
            if by_minor.contains_key(&minor) {
                continue;
            }
            if let Some(it) = find_on_path(minor, path_var, &cfg.base_env) {
                by_minor.insert(minor, it);
            }
        }
        Ok(Interpreters {
            default,
            by_minor,
            exact: cfg.exact_python,
        })
    }

    /// The interpreter for `runtime` (`python3`, `python3.X`): that version if the host has it;
    /// else, unless `exact`, the nearest one (the newest older one, else the oldest newer one).
    pub(crate) fn choose(&self, runtime: &str) -> Result<Choice<'_>, RuntimeError> {
        let minor = match runtime.strip_prefix("python3.") {
            None => {
                return Ok(Choice {
                    interpreter: &self.default,
                    substitute_for: None,
                });
            }
            Some(m) => m
                .parse::<u32>()
                .map_err(|_| RuntimeError::UnsupportedRuntime(runtime.to_owned()))?,
        };
        if let Some(it) = self.by_minor.get(&minor) {
            return Ok(Choice {
                interpreter: it,
                substitute_for: None,
            });
        }
        if self.exact {
            return Err(RuntimeError::MissingInterpreter(format!(
                "runtime {runtime} needs Python 3.{minor}, which is not installed on this server; install python3.{minor} on its PATH (or under pyenv) and restart fnbridge serve, or map one with `fnbridge serve --python-map 3.{minor}=/path/to/python3.{minor}`"
            )));
        }
        let nearest = self
            .by_minor
            .range(..minor)
            .next_back()
            .or_else(|| self.by_minor.range(minor..).next())
            .map(|(_, it)| it)
            .unwrap_or(&self.default);
        Ok(Choice {
            interpreter: nearest,
            substitute_for: Some(format!("3.{minor}")),
        })
    }
}

impl Choice<'_> {
    /// What runs the function, for the deploy answer, GetFunction and the log.
    pub(crate) fn describe(&self) -> String {
        match &self.substitute_for {
            None => format!("Python {}", self.interpreter.version),
            Some(wanted) => format!(
                "Python {} (Python {wanted} is not installed on this server)",
                self.interpreter.version
            ),
        }
    }
}

/// `python3.X` in PATH; for a pyenv shim (which only runs versions pyenv has selected), the
/// newest `<pyenv root>/versions/3.X.*/bin/python3.X` instead.
fn find_on_path(
    minor: u32,
    path_var: Option<&str>,
    env: &std::collections::BTreeMap<String, String>,
) -> Option<Interpreter> {
    let name = format!("python3.{minor}");
    for dir in path_var.into_iter().flat_map(std::env::split_paths) {
        let candidate = dir.join(&name);
        if !candidate.is_file() {
            continue;
        }
        if dir.ends_with("shims")
            && let Some(root) = dir.parent()
        {
            let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("bin").join(&name))
                .filter(|p| p.is_file())
                .collect();
            versions.sort();
            if let Some(it) = versions.iter().rev().find_map(|p| resolve(p, env).ok()) {
                return Some(it);
            }
            continue;
        }
        if let Ok(it) = resolve(&candidate, env)
            && it.minor == minor
        {
            return Some(it);
        }
    }
    None
}

/// Finds the executable behind `python` by asking it (`sys.executable`), and checks its
/// version. Runs once at start-up; version managers such as pyenv put a shell-script shim on
/// PATH that would otherwise add ~100 ms to every cold start.
fn resolve(
    python: &Path,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Interpreter, RuntimeError> {
    let fail = |reason: String| RuntimeError::Interpreter {
        python: python.to_owned(),
        reason,
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, platform; print(sys.executable); print(sys.base_prefix); print(sys.version_info[0], sys.version_info[1]); print(platform.python_version())",
        ])
        .env_clear()
        .envs(env)
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
    let prefix = lines.next().unwrap_or_default().trim();
    let version: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let full = lines.next().unwrap_or_default().trim().to_owned();
    let minor = match version[..] {
        [3, minor] if minor >= MIN_MINOR => minor,
        _ => return Err(fail(format!("python 3.{MIN_MINOR} or newer is required"))),
    };
    let executable = if executable.is_empty() {
        python.to_owned()
    } else {
        PathBuf::from(executable)
    };
    Ok(Interpreter {
        executable,
        prefix: PathBuf::from(prefix),
        minor,
        version: full,
    })
}
