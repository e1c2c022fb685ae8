//! What a custom-runtime instance runs: `customRuntimeConfig.command` + `args` resolved to an
//! executable, checked before the start so a mistake gets FC's error code and a message that
//! names the file rather than a bare `ENOENT`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spec::CustomRuntime;

/// What FC runs when `command` is empty.
const DEFAULT_COMMAND: &str = "./bootstrap";

/// A resolved command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    pub(crate) path: PathBuf,
    pub(crate) args: Vec<String>,
    /// The command as configured, for messages.
    pub(crate) shown: String,
}

/// Why an instance cannot even be started, in FC's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// `CAFileNotFound`, `CAFilePermission` or `CAExited`.
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    fn not_found(message: String) -> Refusal {
        Refusal {
            code: "CAFileNotFound",
            message,
        }
    }

    fn permission(message: String) -> Refusal {
        Refusal {
            code: "CAFilePermission",
            message,
        }
    }

    /// Maps an error from spawning `program` (after `resolve` accepted it).
    pub(crate) fn from_spawn(program: &Program, e: &std::io::Error) -> Refusal {
        let shown = &program.shown;
        match e.raw_os_error() {
            // The file exists (resolve checked), so the kernel could not find its interpreter.
            Some(libc::ENOENT) => Refusal::not_found(format!(
                "cannot run command {shown:?}: its interpreter (the #! line) or a library it needs was not found"
            )),
            Some(libc::EACCES) | Some(libc::EPERM) => Refusal::permission(format!(
                "cannot run command {shown:?}: permission denied ({})",
                program.path.display()
            )),
            Some(libc::ENOEXEC) => Refusal {
                code: "CAExited",
                message: format!(
                    "cannot run command {shown:?}: not an executable format (a script needs a #! line)"
                ),
            },
            _ => Refusal {
                code: "CAExited",
                message: format!("cannot run command {shown:?}: {e}"),
            },
        }
    }
}

/// Resolves the command against the code directory and `path_var` (the instance's PATH). A name
/// without `/` is searched in PATH, then in the code directory and its `bin/` (FC puts `/code`
/// and `/code/bin` on a custom runtime's PATH); a relative path is relative to the code
/// directory, which is also the working directory.
pub(crate) fn resolve(
    cfg: &CustomRuntime,
    code_dir: &Path,
    path_var: Option<&str>,
) -> Result<Program, Refusal> {
    let (command, first_args) = match cfg.command.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => (DEFAULT_COMMAND, &[][..]),
    };
    let args: Vec<String> = first_args.iter().chain(&cfg.args).cloned().collect();
    let shown = command.to_owned();
    if command.is_empty() {
        return Err(Refusal::not_found(
            "the command is an empty string".to_owned(),
        ));
    }
    let path = if command.contains('/') {
        let path = code_dir.join(command);
        check_executable(&path, &shown)?;
        path
    } else {
        let code_dirs = [code_dir.to_path_buf(), code_dir.join("bin")];
        let dirs = path_var
            .into_iter()
            .flat_map(std::env::split_paths)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| if d.is_absolute() { d } else { code_dir.join(d) })
            .chain(code_dirs);
        let mut found_but_not_executable = None;
        let mut found = None;
        for dir in dirs {
            let candidate = dir.join(OsStr::new(command));
            match check_executable(&candidate, &shown) {
                Ok(()) => {
                    found = Some(candidate);
                    break;
                }
                Err(r) if r.code == "CAFilePermission" => {
                    found_but_not_executable.get_or_insert(r);
                }
                Err(_) => {}
            }
        }
        match (found, found_but_not_executable) {
            (Some(path), _) => path,
            (None, Some(refusal)) => return Err(refusal),
            (None, None) => {
                return Err(Refusal::not_found(format!(
                    "command {shown:?} not found in PATH or the code directory"
                )));
            }
        }
    };
    Ok(Program { path, args, shown })
}

fn check_executable(path: &Path, shown: &str) -> Result<(), Refusal> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Refusal::permission(format!(
                "command {shown:?}: cannot access {}",
                path.display()
            )));
        }
        Err(_) => {
            return Err(Refusal::not_found(format!(
                "command {shown:?} not found (looked for {})",
                path.display()
            )));
        }
    };
    if meta.is_dir() {
        return Err(Refusal::permission(format!(
            "command {shown:?} is a directory ({})",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(Refusal::permission(format!(
            "command {shown:?} is not executable ({}, mode {:o}); chmod +x it before packaging",
            path.display(),
            mode & 0o7777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(command: &[&str], args: &[&str]) -> CustomRuntime {
        CustomRuntime {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..CustomRuntime::default()
        }
    }

    fn file(path: &Path, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn empty_command_runs_the_bootstrap_in_the_code_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = resolve(&cfg(&[], &["--x"]), dir.path(), None).unwrap_err();
        assert_eq!(missing.code, "CAFileNotFound");
        assert!(
            missing.message.contains("\"./bootstrap\""),
            "{}",
            missing.message
        );
        file(&dir.path().join("bootstrap"), 0o644);
        let denied = resolve(&cfg(&[], &[]), dir.path(), None).unwrap_err();
        assert_eq!(denied.code, "CAFilePermission");
        file(&dir.path().join("bootstrap"), 0o755);
        let p = resolve(&cfg(&[], &["--x"]), dir.path(), None).unwrap();
        assert_eq!(p.path, dir.path().join("./bootstrap"));
        assert_eq!(p.args, ["--x"]);
    }

    #[test]
    fn names_are_searched_in_path_then_the_code_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let code = dir.path().join("code");
        file(&sys.join("tool"), 0o755);
        file(&code.join("bin/mine"), 0o755);
        let path = sys.to_str().unwrap();
        let p = resolve(&cfg(&["tool", "-a"], &["b"]), &code, Some(path)).unwrap();
        assert_eq!(
            (p.path, p.args),
            (sys.join("tool"), vec!["-a".into(), "b".into()])
        );
        let p = resolve(&cfg(&["mine"], &[]), &code, Some(path)).unwrap();
        assert_eq!(p.path, code.join("bin").join("mine"));
        let e = resolve(&cfg(&["nope"], &[]), &code, Some(path)).unwrap_err();
        assert_eq!(e.code, "CAFileNotFound");
        assert!(e.message.contains("\"nope\""), "{}", e.message);
    }
}
