//! Process groups of instances: killing one with everything it started, and all of them at
//! shutdown; noticing that an instance's process exited without reaping it.

use std::collections::HashSet;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The process groups of every live instance, so shutdown can kill instances that are busy in
/// an invocation and therefore owned by someone else.
#[derive(Debug, Default)]
pub(crate) struct LiveGroups {
    groups: Mutex<HashSet<i32>>,
}

impl LiveGroups {
    pub(crate) fn kill_all(&self) {
        self.kill_all_but(&HashSet::new());
    }

    /// Kills every group except `spared` (idle instances about to run their PreStop hook).
    pub(crate) fn kill_all_but(&self, spared: &HashSet<i32>) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter().filter(|g| !spared.contains(g)) {
            kill_group(pgid);
        }
    }
}

/// Owns one instance's process group and SIGKILLs it when dropped.
///
/// The group id is the leader's pid, which the kernel may hand out again once the leader has
/// been reaped and the group is empty. So the owner calls `kill` before it waits for the leader,
/// and `kill` deregisters the group under the same lock `kill_all` holds: a group id is never
/// signalled after its leader may have been reaped.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: i32,
    live: Arc<LiveGroups>,
    killed: bool,
}

impl ProcessGroup {
    /// `pgid` must be a freshly started child that leads its own group (`process_group(0)`).
    pub(crate) fn register(pgid: i32, live: &Arc<LiveGroups>) -> ProcessGroup {
        live.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pgid);
        ProcessGroup {
            pgid,
            live: Arc::clone(live),
            killed: false,
        }
    }

    pub(crate) fn pgid(&self) -> i32 {
        self.pgid
    }

    /// SIGKILL the whole group: the worker and anything it spawned (timeouts must not leave
    /// grandchildren behind). Idempotent.
    pub(crate) fn kill(&mut self) {
        if self.killed {
            return;
        }
        let mut groups = self.live.groups.lock().unwrap_or_else(|e| e.into_inner());
        kill_group(self.pgid);
        groups.remove(&self.pgid);
        self.killed = true;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: killpg has no memory-safety preconditions; a stale group is excluded above.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Resolves once `pid`, an unreaped child of ours, has exited. It is not reaped, so its pid
/// (and process-group id) cannot be reused until its owner waits for it: kill the group first.
///
/// A pidfd becomes readable when the process exits; where pidfds are unavailable (Linux < 5.3,
/// some sandboxes) `/proc/<pid>/stat` is polled for the zombie state instead.
pub(crate) async fn leader_exited(pid: i32) {
    if let Some(fd) = pidfd(pid) {
        let _ = fd.readable().await;
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        match std::fs::read(format!("/proc/{pid}/stat")) {
            Ok(stat) if proc_state(&stat) != Some(b'Z') => {}
            _ => return,
        }
    }
}

fn pidfd(pid: i32) -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the fd for as long as it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .ok()
}

/// The state letter of a `/proc/<pid>/stat` line (after the parenthesised command name, which
/// may itself contain spaces and parentheses).
pub(crate) fn proc_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// `exit code 3`, `signal 9`: how a process ended, for error messages.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}
