//! pip, run inside a sandbox: the shared layer of FC's built-in modules (`Layers`), and a code
//! package's `requirements.txt` (`install_requirements`).
//!
//! pip builds an sdist by running its `setup.py`, so installing is running code of whoever
//! published (or, for a local path, uploaded) the package. It therefore runs as the sandbox's
//! uid in a sandbox with outside network, writing into a staging directory of its own; the
//! result is moved into place and handed back to root by fnbridge. Local paths, editable installs
//! and extra index or link options in `requirements.txt` are refused before pip starts: FC
//! installs from the package index only.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::python::interpreter::Interpreter;
use crate::sandbox::{Bind, Sandbox};

/// How long an install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept for an error message: the end, where pip says what went wrong.
const KEEP_OUTPUT: usize = 2000;
/// Where the staging directory is inside the sandbox.
const TARGET: &str = "/target";

/// The layers of FC's built-in modules, one per interpreter version, installed in the background.
#[derive(Debug, Clone)]
pub(crate) struct Layers {
    root: PathBuf,
    packages: Vec<String>,
    /// Versions whose install this server started, each with a flag that turns true when the
    /// install has finished (well or not), so instance starts can wait for it.
    started: Arc<Mutex<BTreeMap<u32, tokio::sync::watch::Receiver<bool>>>>,
}

impl Layers {
    pub(crate) fn new(root: PathBuf, packages: Vec<String>) -> Layers {
        Layers {
            root,
            packages,
            started: Arc::default(),
        }
    }

    fn dir(&self, minor: u32) -> PathBuf {
        self.root.join(format!("layer-3.{minor}"))
    }

    /// The layer for Python 3.`minor`, if it is installed.
    pub(crate) fn ready(&self, minor: u32) -> Option<PathBuf> {
        if self.packages.is_empty() {
            return None;
        }
        let dir = self.dir(minor);
        dir.join(".complete").is_file().then_some(dir)
    }

    /// Starts installing the layer of `it` in the background unless it is there or started.
    pub(crate) fn ensure(&self, it: &Interpreter, sandbox: Option<Arc<Sandbox>>) {
        if self.packages.is_empty() || self.ready(it.minor).is_some() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (done, rx) = tokio::sync::watch::channel(false);
        {
            let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
            if started.contains_key(&it.minor) {
                return;
            }
            started.insert(it.minor, rx);
        }
        let (layers, it) = (self.clone(), it.clone());
        rt.spawn(async move {
            match layers.install(&it, sandbox.as_deref()).await {
                Ok(()) => tracing::info!(python = %it.version, packages = ?layers.packages, "installed the layer of FC's built-in Python modules"),
                Err(e) => tracing::warn!(python = %it.version, error = %e, "cannot install the layer of FC's built-in Python modules; functions importing them will fail"),
            }
            done.send_replace(true);
        });
    }

    /// The layer for Python 3.`minor`, waiting (at most `limit`) for an install this server
    /// started: an instance started meanwhile would not find `oss2` and fail where FC code
    /// expects it, as the first invocations after a fresh start otherwise would.
    pub(crate) async fn wait_ready(&self, minor: u32, limit: Duration) -> Option<PathBuf> {
        if let Some(dir) = self.ready(minor) {
            return Some(dir);
        }
        let pending = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&minor)
            .cloned();
        if let Some(mut rx) = pending {
            let _ = tokio::time::timeout(limit, rx.wait_for(|done| *done)).await;
        }
        self.ready(minor)
    }

    async fn install(&self, it: &Interpreter, sandbox: Option<&Sandbox>) -> Result<(), String> {
        let dir = self.dir(it.minor);
        std::fs::create_dir_all(&self.root).map_err(|e| e.to_string())?;
        // Another server sharing the directory may be installing the same layer: one at a time.
        let lock = std::fs::File::create(self.root.join(format!(".layer-3.{}.lock", it.minor)))
            .map_err(|e| e.to_string())?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if dir.join(".complete").is_file() {
            return Ok(());
        }
        let staging = self
            .root
            .join(format!(".layer-3.{}.{}", it.minor, std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        // Background work: at a low priority, so a fresh server's first requests are not
        // slowed by pip running for every interpreter at once.
        run_pip(
            it,
            sandbox,
            &staging,
            None,
            &self.packages,
            Priority::Background,
        )
        .await?;
        std::fs::write(staging.join(".complete"), "").map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&staging, &dir).map_err(|e| e.to_string())?;
        drop(lock);
        Ok(())
    }
}

/// Installs `code_dir/requirements.txt` into `code_dir`, if there is one. Returns whether it did.
pub(crate) async fn install_requirements(
    it: &Interpreter,
    sandbox: Option<&Sandbox>,
    code_dir: &Path,
) -> Result<bool, String> {
    let req = code_dir.join("requirements.txt");
    let Ok(text) = std::fs::read_to_string(&req) else {
        return Ok(false);
    };
    check_requirements(&text)?;
    let staging = code_dir
        .parent()
        .unwrap_or(code_dir)
        .join(format!(".pip-{}", crate::sandbox::unique_suffix()));
    let result = async {
        run_pip(
            it,
            sandbox,
            &staging,
            Some(code_dir),
            &[
                "-r".to_owned(),
                format!("{}/requirements.txt", crate::sandbox::CODE_DIR),
            ],
            Priority::Normal,
        )
        .await?;
        move_into(&staging, code_dir)
            .map_err(|e| format!("requirements.txt: cannot place the installed packages: {e}"))
    }
    .await;
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| true)
}

/// Refuses what would install something other than a package from the index.
fn check_requirements(text: &str) -> Result<(), String> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let local = line.starts_with('.')
            || line.starts_with('/')
            || line.starts_with('~')
            || line.starts_with("file:")
            || line.contains(" @ file:")
            || line.starts_with("-e")
            || line.starts_with("--editable")
            || line.starts_with("-r")
            || line.starts_with("-c")
            || line.starts_with("--requirement")
            || line.starts_with("--constraint")
            || line.starts_with("-f")
            || line.starts_with("--find-links")
            || line.starts_with("-i")
            || line.starts_with("--index-url")
            || line.starts_with("--extra-index-url")
            || line.starts_with("--trusted-host");
        if local {
            return Err(format!(
                "requirements.txt line {}: '{line}': only packages from the package index are installed (no local paths, editable installs, nested files or other indexes); vendor such a package into the code instead",
                n + 1
            ));
        }
    }
    Ok(())
}

/// How pip competes for the CPU: a deploy waits for its requirements (`Normal`); the layers
/// are installed in the background (`Background`: nice 10, inherited by everything pip runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Normal,
    Background,
}

/// The niceness of `Priority::Background`.
const BACKGROUND_NICE: libc::c_int = 10;

/// Runs `pip install --target <staging> args` in a sandbox (as the sandbox uid, with outside
/// network), `code` bound read-only at /code.
async fn run_pip(
    it: &Interpreter,
    sandbox: Option<&Sandbox>,
    staging: &Path,
    code: Option<&Path>,
    args: &[String],
    priority: Priority,
) -> Result<(), String> {
    std::fs::create_dir_all(staging).map_err(|e| e.to_string())?;
    let mut pip_args: Vec<String> = [
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--no-cache-dir",
        "--prefer-binary",
        "--upgrade",
        "--target",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut env = BTreeMap::from([
        ("PIP_NO_INPUT".to_owned(), "1".to_owned()),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ("HOME".to_owned(), "/tmp".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]);
    let mut cmd = match sandbox {
        Some(sb) => {
            // The sandbox uid writes the staging directory; root takes it back afterwards.
            std::os::unix::fs::chown(
                staging,
                Some(crate::sandbox::SANDBOX_ID),
                Some(crate::sandbox::SANDBOX_ID),
            )
            .map_err(|e| e.to_string())?;
            pip_args.push(TARGET.to_owned());
            pip_args.extend(args.iter().cloned());
            let jail = sb
                .jail("pip", 0, None, true)
                .await
                .map_err(|e| format!("cannot create a sandbox for pip: {e}"))?;
            let mut binds = vec![Bind {
                host: staging.to_owned(),
                inside: PathBuf::from(TARGET),
                writable: true,
            }];
            binds.extend(crate::python::interpreter_binds(it));
            if let Some(code) = code {
                binds.push(Bind::ro(code, crate::sandbox::CODE_DIR));
            }
            let mut jail = jail;
            jail.network_ready()
                .await
                .map_err(|e| format!("pip sandbox network: {e}"))?;
            let cmd = sb
                .command(&jail, &it.executable, &pip_args, &env, &binds)
                .map_err(|e| e.to_string())?;
            (cmd, Some(jail))
        }
        None => {
            pip_args.push(staging.to_string_lossy().into_owned());
            pip_args.extend(args.iter().map(|a| {
                match (a.strip_prefix(crate::sandbox::CODE_DIR), code) {
                    (Some(rest), Some(code)) => format!("{}{rest}", code.display()),
                    _ => a.clone(),
                }
            }));
            env.insert(
                "HOME".to_owned(),
                std::env::temp_dir().to_string_lossy().into_owned(),
            );
            let mut cmd = tokio::process::Command::new(&it.executable);
            cmd.args(&pip_args).env_clear().envs(&env);
            if let Some(code) = code {
                cmd.current_dir(code);
            }
            (cmd, None)
        }
    };
    let (ref mut command, _jail) = cmd;
    if priority == Priority::Background {
        // SAFETY: setpriority is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| {
                libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
                Ok(())
            });
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run pip with {}: {e}", it.executable.display()))?;
    let mut out = child.stdout.take().ok_or("no pip stdout")?;
    let mut err = child.stderr.take().ok_or("no pip stderr")?;
    let run = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
        (child.wait().await, o, e)
    };
    let (status, o, e) = tokio::time::timeout(INSTALL_TIMEOUT, run)
        .await
        .map_err(|_| format!("pip did not finish within {} s", INSTALL_TIMEOUT.as_secs()))?;
    let status = status.map_err(|e| format!("pip failed to run: {e}"))?;
    if sandbox.is_some() {
        chown_tree(staging, 0, 0);
    }
    if status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&e).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&o).into_owned();
    }
    Err(format!(
        "requirements.txt: pip install failed ({status}): {}",
        tail(text.trim(), KEEP_OUTPUT)
    ))
}

/// Moves every entry of `from` into `to` (replacing what is there), on the same filesystem.
fn move_into(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if dest.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&dest)?;
        } else if dest.symlink_metadata().is_ok() {
            std::fs::remove_file(&dest)?;
        }
        std::fs::rename(entry.path(), dest)?;
    }
    Ok(())
}

/// Hands a tree written by the sandbox uid back to root, without following links.
fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(dir, Some(uid), Some(gid));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.uid() != uid || meta.gid() != gid {
            let _ = std::os::unix::fs::lchown(&path, Some(uid), Some(gid));
        }
        if meta.is_dir() {
            chown_tree(&path, uid, gid);
        }
    }
}

/// The last `max` bytes of `text` or fewer, starting on a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_other_indexes_are_refused() {
        for bad in [
            "./pkg",
            "-e .",
            "/abs/pkg",
            "file:///x",
            "foo @ file:///x",
            "--index-url http://x",
            "-r other.txt",
        ] {
            assert!(check_requirements(bad).is_err(), "{bad}");
        }
        assert!(check_requirements("# c\nrequests==2.31\noss2>=2 # pin\n\n").is_ok());
    }
}
