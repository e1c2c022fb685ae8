//! Installs a code package's `requirements.txt` into its code directory at deploy time
//! (`pip install --target`, run by the runtime inside a sandbox), so `import requests` works in
//! the function as it does in FC's builds. A failed install fails the deployment and keeps the
//! previous one.

use std::path::Path;
use std::time::Duration;

use fnbridge_runtime::Runtime;

use crate::code::{DeployError, no_space};

/// How long an install may take before the deployment is failed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept for the error message: the end, where pip says what went wrong.
const KEEP_OUTPUT: usize = 2000;

/// Runs pip when `code_dir` has a `requirements.txt` (in a sandbox, as the runtime's
/// unprivileged uid: an sdist's `setup.py` is code too). Returns whether it did. A failure is
/// the package's, unless pip ran out of disk space.
pub async fn install_requirements(
    runtime: &Runtime,
    runtime_name: &str,
    code_dir: &Path,
) -> Result<bool, DeployError> {
    let installed = tokio::time::timeout(
        INSTALL_TIMEOUT,
        runtime.install_requirements(runtime_name, code_dir),
    )
    .await
    .map_err(|_| {
        DeployError::Invalid(format!(
            "requirements.txt: pip did not finish within {} s",
            INSTALL_TIMEOUT.as_secs()
        ))
    })?;
    installed.map_err(|m| {
        // pip reports a full disk as an OSError: "[Errno 28] No space left on device".
        let full = ["[Errno 28]", "[Errno 122]", "No space left on device"];
        let m = tail(&m, KEEP_OUTPUT).to_owned();
        if full.iter().any(|s| m.contains(s)) {
            DeployError::DiskFull(no_space(code_dir, m))
        } else {
            DeployError::Invalid(m)
        }
    })
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
