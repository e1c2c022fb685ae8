//! Test helpers: a runtime in a temp work dir, functions whose code is written to temp dirs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fnbridge_runtime::{Credentials, FunctionSpec, Invocation, Runtime, RuntimeConfig};
use tempfile::TempDir;

pub struct Fixture {
    pub runtime: Arc<Runtime>,
    pub dir: TempDir,
}

pub fn runtime() -> Fixture {
    runtime_with(|_| {})
}

/// A runtime without the sandbox: these tests are about the runtime's own logic, and talk to
/// instances through files and sockets of the host. `tests/sandbox.rs` runs sandboxed ones.
pub fn runtime_with(tweak: impl FnOnce(&mut RuntimeConfig)) -> Fixture {
    runtime_sandboxed(false, tweak)
}

pub fn runtime_sandboxed(sandbox: bool, tweak: impl FnOnce(&mut RuntimeConfig)) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = RuntimeConfig {
        work_dir: dir.path().join("work"),
        region: "cn-hangzhou".to_owned(),
        account_id: "1234567890123456".to_owned(),
        ..RuntimeConfig::default()
    };
    cfg.sandbox.enabled = sandbox;
    tweak(&mut cfg);
    let runtime = Runtime::new(cfg).expect("runtime starts");
    Fixture { runtime, dir }
}

impl Fixture {
    /// A function named `name` whose `index.py` is `code`, at revision `r1`.
    pub fn function(&self, name: &str, code: &str) -> Arc<FunctionSpec> {
        self.function_files(name, "r1", &[("index.py", code)], |_| {})
    }

    pub fn function_files(
        &self,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
        tweak: impl FnOnce(&mut FunctionSpec),
    ) -> Arc<FunctionSpec> {
        let code_dir = self.dir.path().join("code").join(name).join(revision);
        for (path, text) in files {
            write(&code_dir.join(path), text);
        }
        let mut spec = FunctionSpec {
            function_name: name.to_owned(),
            revision: revision.to_owned(),
            runtime: "python3.10".to_owned(),
            handler: "index.handler".to_owned(),
            code_dir,
            memory_mb: 128,
            timeout: Duration::from_secs(10),
            env: BTreeMap::new(),
            initializer: None,
            pre_stop: None,
            instance_concurrency: 1,
            custom: None,
            credentials_in_env: true,
            credentials_in_request: true,
        };
        tweak(&mut spec);
        Arc::new(spec)
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

pub fn invocation(request_id: &str, payload: impl Into<Bytes>) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        payload: payload.into(),
        qualifier: "LATEST".to_owned(),
        version_id: String::new(),
        credentials: Credentials {
            access_key_id: "STS.test-ak".to_owned(),
            access_key_secret: "test-sk".to_owned(),
            security_token: "test-token".to_owned(),
        },
    }
}

pub fn text(body: &Bytes) -> &str {
    std::str::from_utf8(body).expect("utf-8 body")
}

pub fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Waits (up to 5 s) for a process that is not our child to terminate, through a pidfd, which
/// becomes readable when the process exits. SIGKILL is delivered asynchronously, so the group
/// may still be dying when the invocation returns.
pub async fn exits_soon(pid: u32) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the fd for as long as it is registered.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), fd.readable())
        .await
        .is_ok()
}
