//! Resident-memory limits for custom-runtime instances, by sampling.
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
    groups: HashMap<i32, Watched>,
    next_key: u64,
    thread: bool,
}

struct Watched {
    key: u64,
    limit: u64,
    on_exceed: Arc<OnExceed>,
}

/// Stops watching its group when dropped.
pub(crate) struct Registration {
    shared: Weak<Shared>,
    pgid: i32,
    key: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("pgid", &self.pgid)
            .finish()
    }
}

impl MemoryWatch {
    /// Watches process group `pgid` until the registration is dropped.
    pub(crate) fn watch(&self, pgid: i32, limit_bytes: u64, on_exceed: OnExceed) -> Registration {
        let mut st = lock(&self.shared.state);
        let key = st.next_key;
        st.next_key += 1;
        st.groups.insert(
            pgid,
            Watched {
                key,
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
            pgid,
            key,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let mut st = lock(&shared.state);
            // A recycled group id may have been registered again by a newer instance.
            if st.groups.get(&self.pgid).is_some_and(|w| w.key == self.key) {
                st.groups.remove(&self.pgid);
            }
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
        let limits: HashMap<i32, u64> = {
            let st = lock(&strong.state);
            if st.groups.is_empty() {
                // Woken by the next registration, or after a while to notice the runtime is gone.
                let _ = strong.wake.wait_timeout(st, IDLE_CHECK);
                continue;
            }
            st.groups.iter().map(|(&g, w)| (g, w.limit)).collect()
        };
        drop(strong);
        let usage = resident_by_group(&limits, page);
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let exceeded: Vec<(Arc<OnExceed>, u64)> = {
            let st = lock(&strong.state);
            usage
                .into_iter()
                .filter_map(|(g, rss)| {
                    let w = st.groups.get(&g)?;
                    (rss > w.limit).then(|| (Arc::clone(&w.on_exceed), rss))
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
