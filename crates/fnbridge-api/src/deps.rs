//! Installs a code package's `requirements.txt` into its code directory at deploy time
//! (`pip install --target`), so `import requests` works in the function as it does in FC's
//! builds. A failed install fails the deployment and keeps the previous one.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::code::{DeployError, no_space};

/// How long an install may take before the deployment is failed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept for the error message: the end, where pip says what went wrong.
const KEEP_OUTPUT: usize = 2000;

/// Runs pip when `code_dir` has a `requirements.txt`. Returns whether it did. A failure is the
/// package's, unless pip ran out of disk space.
pub async fn install_requirements(python: &Path, code_dir: &Path) -> Result<bool, DeployError> {
    install(python, code_dir).await.map_err(|m| {
        // pip reports a full disk as an OSError: "[Errno 28] No space left on device".
        let full = ["[Errno 28]", "[Errno 122]", "No space left on device"];
        if full.iter().any(|s| m.contains(s)) {
            DeployError::DiskFull(no_space(code_dir, m))
        } else {
            DeployError::Invalid(m)
        }
    })
}

async fn install(python: &Path, code_dir: &Path) -> Result<bool, String> {
    let req = code_dir.join("requirements.txt");
    if !req.is_file() {
        return Ok(false);
    }
    let mut child = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
        ])
        .args(["--upgrade", "--target"])
        .arg(code_dir)
        .arg("-r")
        .arg(&req)
        .current_dir(code_dir)
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "requirements.txt: cannot run pip with {}: {e}",
                python.display()
            )
        })?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let run = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
        (child.wait().await, o, e)
    };
    let (status, o, e) = tokio::time::timeout(INSTALL_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "requirements.txt: pip did not finish within {} s",
                INSTALL_TIMEOUT.as_secs()
            )
        })?;
    let status = status.map_err(|e| format!("requirements.txt: pip failed to run: {e}"))?;
    if status.success() {
        return Ok(true);
    }
    let mut text = String::from_utf8_lossy(&e).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&o).into_owned();
    }
    let text = text.trim();
    let tail = tail(text, KEEP_OUTPUT);
    Err(format!(
        "requirements.txt: pip install failed ({status}): {tail}"
    ))
}

/// The last `max` bytes of `text` or fewer, starting on a character boundary (pip's output may
/// hold any UTF-8, and a byte index can fall inside a character).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_cuts_on_a_character_boundary() {
        // 3001 bytes; the last 1999 start in the middle of an 'é'.
        let text = format!("a{}", "é".repeat(1500));
        let t = super::tail(&text, 1999);
        assert_eq!(t, "é".repeat(999));
        assert_eq!(super::tail("short", 2000), "short");
    }
}
