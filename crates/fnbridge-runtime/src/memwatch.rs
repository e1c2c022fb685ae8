//! Memory limits for custom-runtime instances: watching a memory cgroup's OOM kills, or, where
//! there is no cgroup, sampling the resident set.
//!
//! With a cgroup (the sandbox's normal case) the kernel enforces the limit; the watcher reads the
//! cgroup's `oom_kill` counter every `PERIOD`, and a kill of any of the instance's processes
//! (not only the server, which would show as its exit anyway) ends the instance as out of memory.
//! The rest of this comment is about the fallback.
//!
//! Python instances get RLIMIT_AS (see the crate docs). Custom runtimes do not: the JVM, V8 and
//! others reserve gigabytes of address space up front and fail to start under any limit close
//! to a function's memory size. So one thread per `Runtime` samples the resident set of every
//! watched process group every `PERIOD` and calls the group's handler once the sum passes its
//! limit; the handler kills the instance and records why, so its invocations fail with
//! `OutOfMemory`.
//!
//! Sampling scans `/proc/*/stat` once per period for all groups together (one read per process
//! on the host, about 0.3 ms for a hundred processes), since this kernel interface has no
//! cheaper way to find a group's members (`/proc/<pid>/task/*/children` needs
//! CONFIG_PROC_CHILDREN, which not every kernel has). A spike shorter than a period, or memory
//! shared between the group's processes, is not measured exactly; the kernel's OOM killer
//! remains the backstop, and its SIGKILL is reported as `OutOfMemory` too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Between two samples.
const PERIOD: Duration = Duration::from_millis(200);
/// How long the thread sleeps with nothing to watch before it checks whether the runtime is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Called (from the sampling thread) with the group's resident bytes when it is over its limit.
pub(crate) type OnExceed = Box<dyn Fn(u64) + Send + Sync>;

#[derive(Default)]
pub(crate) struct MemoryWatch {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryWatch").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    watched: HashMap<u64, Watched>,
    next_key: u64,
    thread: bool,
}

struct Watched {
    what: Watch,
    limit: u64,
    on_exceed: Arc<OnExceed>,
}

/// What makes up an instance, for the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    /// A memory cgroup: its OOM-kill counter (file, key) must stay 0.
    OomKills((PathBuf, &'static str)),
    /// The processes in a network namespace (by inode): a sandbox without a cgroup.
    NetNs(u64),
    /// A process group: an instance without a sandbox.
    Group(i32),
}

/// Stops watching when dropped.
pub(crate) struct Registration {
    shared: Weak<Shared>,
    key: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("key", &self.key)
            .finish()
    }
}

impl MemoryWatch {
    /// Watches `what` until the registration is dropped.
    pub(crate) fn watch(&self, what: Watch, limit_bytes: u64, on_exceed: OnExceed) -> Registration {
        let mut st = lock(&self.shared.state);
        let key = st.next_key;
        st.next_key += 1;
        st.watched.insert(
            key,
            Watched {
                what,
                limit: limit_bytes,
                on_exceed: Arc::new(on_exceed),
            },
        );
        if !st.thread {
            let weak = Arc::downgrade(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("fnbridge-memwatch".to_owned())
                .spawn(move || run(weak));
            match spawned {
                Ok(_) => st.thread = true,
                Err(e) => tracing::warn!(error = %e, "cannot start the memory watcher"),
            }
        }
        self.shared.wake.notify_one();
        Registration {
            shared: Arc::downgrade(&self.shared),
            key,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.state).watched.remove(&self.key);
        }
    }
}

fn run(shared: Weak<Shared>) {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let targets: Vec<(u64, Watch)> = {
            let st = lock(&strong.state);
            if st.watched.is_empty() {
                // Woken by the next registration, or after a while to notice the runtime is gone.
                let _ = strong.wake.wait_timeout(st, IDLE_CHECK);
                continue;
            }
            st.watched
                .iter()
                .map(|(&k, w)| (k, w.what.clone()))
                .collect()
        };
        drop(strong);
        let usage = measure(&targets, page);
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let exceeded: Vec<(Arc<OnExceed>, u64)> = {
            let st = lock(&strong.state);
            usage
                .into_iter()
                .filter_map(|(key, used)| {
                    let w = st.watched.get(&key)?;
                    let over = match w.what {
                        // Any OOM kill: the kernel already held the instance to its limit.
                        Watch::OomKills(_) => used > 0,
                        _ => used > w.limit,
                    };
                    over.then(|| (Arc::clone(&w.on_exceed), used))
                })
                .collect()
        };
        // Outside the lock: the handler kills, which may drop the instance and so deregister.
        for (on_exceed, rss) in exceeded {
            on_exceed(rss);
        }
        drop(strong);
        std::thread::sleep(PERIOD);
    }
}

/// For each target: OOM kills of a cgroup, or resident bytes of a group's or namespace's processes.
fn measure(targets: &[(u64, Watch)], page: u64) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    let mut groups = HashMap::new();
    let mut namespaces = HashMap::new();
    for (key, what) in targets {
        match what {
            Watch::OomKills((file, field)) => {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                out.insert(*key, crate::sandbox::oom_counter(&text, field));
            }
            Watch::Group(pgid) => {
                groups.insert(*pgid, *key);
            }
            Watch::NetNs(inode) => {
                namespaces.insert(*inode, *key);
            }
        }
    }
    if !groups.is_empty() {
        let usage = resident_by_group(&groups.keys().map(|&g| (g, 0)).collect(), page);
        for (g, rss) in usage {
            if let Some(&key) = groups.get(&g) {
                out.insert(key, rss);
            }
        }
    }
    if !namespaces.is_empty() {
        for (inode, rss) in resident_by_netns(&namespaces, page) {
            if let Some(&key) = namespaces.get(&inode) {
                out.insert(key, rss);
            }
        }
    }
    out
}

/// Sums the resident memory of the processes in each network namespace of `namespaces` (by
/// inode): a sandbox's processes cannot leave it (seccomp refuses `setns` and `unshare`).
fn resident_by_netns(namespaces: &HashMap<u64, u64>, page: u64) -> HashMap<u64, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut usage = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return usage;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(ns) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if !namespaces.contains_key(&ns.ino()) {
            continue;
        }
        if let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat"))
            && let Some((_, rss_pages)) = parse_stat(&stat)
        {
            *usage.entry(ns.ino()).or_insert(0) += rss_pages * page;
        }
    }
    usage
}

/// Sums the resident memory of the processes of each group in `groups`.
fn resident_by_group(groups: &HashMap<i32, u64>, page: u64) -> HashMap<i32, u64> {
    let mut usage = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return usage;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((pgrp, rss_pages)) = parse_stat(&stat)
            && groups.contains_key(&pgrp)
        {
            *usage.entry(pgrp).or_insert(0) += rss_pages * page;
        }
    }
    usage
}

/// `(pgrp, rss in pages)` from a `/proc/<pid>/stat` line: fields 5 and 24, counted after the
/// parenthesised command name, which may contain spaces.
fn parse_stat(stat: &[u8]) -> Option<(i32, u64)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 (state).
    let pgrp = fields.get(2)?.parse().ok()?;
    let rss = fields.get(21)?.parse().ok()?;
    Some((pgrp, rss))
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_and_resident_set() {
        let line = b"4242 (my (odd) server) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 123456789 2500 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(parse_stat(line), Some((4240, 2500)));
    }

    #[test]
    fn measures_this_process_group() {
        // SAFETY: getpgrp has no preconditions.
        let pgrp = unsafe { libc::getpgrp() };
        let usage = resident_by_group(&HashMap::from([(pgrp, 0)]), 4096);
        assert!(
            usage.get(&pgrp).copied().unwrap_or(0) > 1024 * 1024,
            "{usage:?}"
        );
    }
}
