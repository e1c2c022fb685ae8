//! Process groups of instances: killing one with everything it started, and all of them at shutdown.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The process groups of every live instance, so shutdown can kill instances that are busy in
/// an invocation and therefore owned by someone else.
#[derive(Debug, Default)]
pub(crate) struct LiveGroups {
    groups: Mutex<HashSet<i32>>,
}

impl LiveGroups {
    pub(crate) fn kill_all(&self) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
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
