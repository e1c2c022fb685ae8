//! Memory cgroups for instances: one per instance under a directory of this server's own, with
//! the limit set to `memorySize`, and its OOM-kill counter read to tell an out-of-memory death
//! from a crash.
//!
//! v1 (a `memory` hierarchy, as on these machines) and v2 (the unified hierarchy) are both
//! handled. The server's directory is made inside the cgroup the server itself is in (from
//! `/proc/self/cgroup`), since that is the part of the tree a container or a systemd unit
//! delegates. On v2 the memory controller must be enabled for it from above; where it cannot be,
//! there is no cgroup and the caller falls back to RLIMIT_AS and sampling.
//!
//! A child joins its cgroup itself, between fork and exec, by writing `0` to `cgroup.procs`:
//! so not one page of the instance is allocated outside it.
//!
//! The file handling of both versions is tested against a temporary directory standing in for
//! `/sys/fs/cgroup` (the kernel's files are plain files there).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// This server's directory in the memory hierarchy; removed when dropped.
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    dir: PathBuf,
    version: Version,
}

/// One instance's cgroup; removed when dropped (once its processes are gone).
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
    version: Version,
    /// `<dir>/cgroup.procs`, prepared for the child, which may not allocate between fork and exec.
    procs: CString,
}

impl CgroupRoot {
    /// Finds the memory hierarchy under `mount` (normally `/sys/fs/cgroup`) and makes this
    /// server's directory in it. `None`, with the reason, where there is none to use.
    pub(crate) fn create(mount: &Path, name: &str) -> Result<CgroupRoot, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        Self::create_in(mount, &own, name)
    }

    /// `create`, given the text of `/proc/self/cgroup` (tests use a temporary directory for
    /// the mount).
    fn create_in(mount: &Path, own: &str, name: &str) -> Result<CgroupRoot, String> {
        let (version, base) = if mount.join("memory/memory.limit_in_bytes").is_file() {
            let rel = own_path(own, |controllers| {
                controllers.split(',').any(|c| c == "memory")
            })
            .ok_or("no memory controller in /proc/self/cgroup")?;
            (Version::V1, mount.join("memory").join(rel))
        } else if mount.join("cgroup.controllers").is_file() {
            let rel = own_path(own, str::is_empty).ok_or("no unified hierarchy entry")?;
            (Version::V2, mount.join(rel))
        } else {
            return Err(format!(
                "no memory cgroup hierarchy under {}",
                mount.display()
            ));
        };
        let dir = base.join(name);
        // A server killed with SIGKILL leaves its directory behind (`fnbridge-<pid>-<n>`); its
        // instances died with it, so the directory can go once that pid is gone.
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("fnbridge-"))
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                remove_tree(&entry.path());
            }
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if version == Version::V2 {
            // Children get the memory controller only if every ancestor hands it down; the
            // kernel refuses that for a cgroup with processes of its own (our own cgroup, if
            // it is not the root), so this may fail: then there is no cgroup to use.
            let enable = |d: &Path| std::fs::write(d.join("cgroup.subtree_control"), "+memory");
            let ok = enable(&base).is_ok() && enable(&dir).is_ok();
            if !ok || !base.join("cgroup.subtree_control").is_file() {
                let _ = std::fs::remove_dir(&dir);
                return Err(
                    "cannot enable the memory controller for child cgroups (cgroup v2)".into(),
                );
            }
        }
        Ok(CgroupRoot { dir, version })
    }

    /// A cgroup for one instance, limited to `limit_bytes` of memory (and no swap).
    pub(crate) fn instance(&self, name: &str, limit_bytes: u64) -> io::Result<Cgroup> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        let limit = limit_bytes.to_string();
        let result = match self.version {
            Version::V1 => {
                std::fs::write(dir.join("memory.limit_in_bytes"), &limit).map(|()| {
                    // Absent without swap accounting; the limit above then holds alone.
                    let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit);
                })
            }
            Version::V2 => std::fs::write(dir.join("memory.max"), &limit).map(|()| {
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            }),
        };
        if let Err(e) = result {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul in cgroup path"))?;
        Ok(Cgroup {
            dir,
            version: self.version,
            procs,
        })
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        remove_tree(&self.dir);
    }
}

impl Cgroup {
    /// Sets the memory limit (and no swap), as `CgroupRoot::instance` does; for a cgroup made
    /// ahead of its instance. v1 wants `memsw` at least the limit at every step, so when it is
    /// below the new limit it is raised first.
    pub(crate) fn set_limit(&self, limit_bytes: u64) -> io::Result<()> {
        let limit = limit_bytes.to_string();
        match self.version {
            Version::V1 => {
                let memsw = self.dir.join("memory.memsw.limit_in_bytes");
                if std::fs::write(self.dir.join("memory.limit_in_bytes"), &limit).is_err() {
                    std::fs::write(&memsw, &limit)?;
                    std::fs::write(self.dir.join("memory.limit_in_bytes"), &limit)?;
                }
                // Absent without swap accounting; the limit above then holds alone.
                let _ = std::fs::write(&memsw, &limit);
                Ok(())
            }
            Version::V2 => {
                std::fs::write(self.dir.join("memory.max"), &limit)?;
                let _ = std::fs::write(self.dir.join("memory.swap.max"), "0");
                Ok(())
            }
        }
    }

    /// How many processes the kernel's OOM killer has killed in it.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        counter(&text, "oom_kill")
    }

    /// The file the memory watcher reads the OOM-kill counter from, and the key in it.
    pub(crate) fn oom_source(&self) -> (PathBuf, &'static str) {
        match self.version {
            Version::V1 => (self.dir.join("memory.oom_control"), "oom_kill"),
            Version::V2 => (self.dir.join("memory.events"), "oom_kill"),
        }
    }

    /// `<dir>/cgroup.procs`, for `join` in a child.
    pub(crate) fn procs_path(&self) -> CString {
        self.procs.clone()
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`. Called in the
/// child between fork and exec: it only makes syscalls, and allocates nothing.
pub(crate) fn join(procs: &CString) -> io::Result<()> {
    // SAFETY: `procs` is a valid NUL-terminated path; the buffer is a static byte string.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != 1 {
            return Err(err);
        }
    }
    Ok(())
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Fails while a process of it is still exiting; the server's directory is removed at
        // shutdown, and at the next start after a crash.
        if std::fs::remove_dir(&self.dir).is_err() {
            let dir = self.dir.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                        return;
                    }
                }
            });
        }
    }
}

/// `key N` from a flat-keyed cgroup file.
pub(crate) fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Our path in the hierarchy whose controller list satisfies `is_it`, relative (no leading `/`).
fn own_path(proc_cgroup: &str, is_it: impl Fn(&str) -> bool) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        is_it(controllers).then(|| path.trim_start_matches('/').to_owned())
    })
}

/// Removes a cgroup directory and its children (cgroup directories are removed with rmdir,
/// bottom up; their files go with them).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_place_in_each_hierarchy() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/user.slice\n";
        assert_eq!(
            own_path(text, |c| c.split(',').any(|c| c == "memory")).as_deref(),
            Some("process_api/abc")
        );
        assert_eq!(own_path(text, str::is_empty).as_deref(), Some("user.slice"));
    }

    /// A temporary directory standing in for a cgroup v2 mount (`cgroup.controllers` at the
    /// top, `cgroup.subtree_control` in our cgroup): the server's directory is made in our
    /// cgroup with the memory controller handed down, an instance gets `memory.max` and no
    /// swap, and its OOM kills are read from `memory.events`.
    #[test]
    fn v2_files_are_written_and_read_where_the_kernel_has_them() {
        let mount = tempfile::tempdir().unwrap();
        let m = mount.path();
        std::fs::write(
            m.join("cgroup.controllers"),
            "cpu io memory pids
",
        )
        .unwrap();
        std::fs::create_dir_all(m.join("system.slice/fnbridge.service")).unwrap();
        let own_dir = m.join("system.slice/fnbridge.service");
        std::fs::write(own_dir.join("cgroup.subtree_control"), "").unwrap();
        let own = "0::/system.slice/fnbridge.service
";
        let root = CgroupRoot::create_in(m, own, "fnbridge-test").unwrap();
        assert_eq!(root.version, Version::V2);
        assert_eq!(root.dir, own_dir.join("fnbridge-test"));
        assert_eq!(
            std::fs::read_to_string(own_dir.join("cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        assert_eq!(
            std::fs::read_to_string(root.dir.join("cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        let cg = root.instance("i1", 128 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(cg.dir.join("memory.max")).unwrap(),
            (128u64 << 20).to_string()
        );
        assert_eq!(
            std::fs::read_to_string(cg.dir.join("memory.swap.max")).unwrap(),
            "0"
        );
        assert_eq!(cg.oom_kills(), 0, "no memory.events yet");
        std::fs::write(
            cg.dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 1);
        assert_eq!(cg.oom_source(), (cg.dir.join("memory.events"), "oom_kill"));
        assert!(cg.procs_path().to_bytes().ends_with(b"/i1/cgroup.procs"));
        assert!(root.instance("i1", 1).is_err(), "a name in use is refused");
        cg.set_limit(256 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(cg.dir.join("memory.max")).unwrap(),
            (256u64 << 20).to_string()
        );
    }

    /// A v2 mount where our cgroup cannot hand the memory controller down: no cgroup, with
    /// the reason.
    #[test]
    fn v2_without_delegation_is_refused_with_the_reason() {
        let mount = tempfile::tempdir().unwrap();
        let m = mount.path();
        std::fs::write(
            m.join("cgroup.controllers"),
            "memory
",
        )
        .unwrap();
        // The kernel refuses the write (here: it is a directory, so the write fails).
        std::fs::create_dir_all(m.join("user.slice/cgroup.subtree_control")).unwrap();
        let e = CgroupRoot::create_in(
            m,
            "0::/user.slice
",
            "fnbridge-x",
        )
        .unwrap_err();
        assert!(e.contains("memory controller"), "{e}");
        let none = tempfile::tempdir().unwrap();
        let e = CgroupRoot::create_in(
            none.path(),
            "0::/
",
            "fnbridge-x",
        )
        .unwrap_err();
        assert!(e.contains("no memory cgroup hierarchy"), "{e}");
    }

    /// v1: `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`) and `memory.oom_control`.
    #[test]
    fn v1_files_are_written_and_read_where_the_kernel_has_them() {
        let mount = tempfile::tempdir().unwrap();
        let m = mount.path();
        std::fs::create_dir_all(m.join("memory/docker/abc")).unwrap();
        std::fs::write(
            m.join("memory/memory.limit_in_bytes"),
            "9223372036854771712",
        )
        .unwrap();
        let root = CgroupRoot::create_in(
            m,
            "4:memory:/docker/abc
0::/
",
            "fnbridge-v1",
        )
        .unwrap();
        assert_eq!(root.version, Version::V1);
        let cg = root.instance("i", 64 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(cg.dir.join("memory.limit_in_bytes")).unwrap(),
            (64u64 << 20).to_string()
        );
        std::fs::write(
            cg.dir.join("memory.oom_control"),
            "oom_kill_disable 0\noom_kill 4\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 4);
        cg.set_limit(32 << 20).unwrap();
        for f in ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"] {
            assert_eq!(
                std::fs::read_to_string(cg.dir.join(f)).unwrap(),
                (32u64 << 20).to_string(),
                "{f}"
            );
        }
    }

    #[test]
    fn reads_the_oom_kill_counter() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), 2);
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(v2, "oom_kill"), 1);
        assert_eq!(counter("", "oom_kill"), 0);
    }
}
