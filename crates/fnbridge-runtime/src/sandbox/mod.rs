//! The sandbox every function instance runs in: bubblewrap for the namespaces and the
//! filesystem, `setpriv` for the unprivileged uid, a seccomp filter, a memory cgroup, and a
//! network namespace of fnbridge's own making.
//!
//! What an instance sees: `/usr` (and the `/bin`, `/lib` links), a few files of `/etc` (certificates,
//! time zones, the loader cache, and generated `passwd`, `group`, `hosts`, `resolv.conf`), its
//! interpreter's directory, its code at `/code` read-only, a private `/tmp` of bounded size,
//! its own `/proc` (its PID namespace: nothing of the server) and a minimal `/dev`. Nothing of the
//! data directory but its own code: not the token, the database, other functions' code.
//!
//! How it is started: fnbridge (root) runs `bwrap` with new mount, PID, IPC, UTS and cgroup
//! namespaces, `--die-with-parent`, `--new-session`, every capability dropped but the three
//! `setpriv` needs to change to the sandbox uid (after which it has none, and `no_new_privs`
//! keeps it so), and the seccomp filters (`seccomp`). Before `bwrap` is executed, the child
//! joins the instance's memory cgroup (`cgroup`) and its network namespace (`net`), so the
//! limits hold from the first instruction. bwrap's own reaper is PID 1 of the namespace: when
//! fnbridge kills bwrap (or dies, PR_SET_PDEATHSIG), PID 1 dies and the kernel kills every
//! process of the namespace, `setsid` grandchildren included. The network half of a jail
//! (namespace, proxies, name server, slirp4netns) does not depend on the function, so a few are
//! made ahead of time (`Nets`, `SandboxConfig::spares`) and a new instance takes one. Python workers
//! go one step further (`Zygotes`): bwrap itself is started ahead in a spare jail, already in
//! its cgroup (joining a v1 memory cgroup waits for an RCU grace period, ~10 ms) and network
//! namespace, blocked reading its options from `--args`; the instance sends them (its binds,
//! environment, and its command through `FNBRIDGE_EXEC` for a fixed `sh -c`, since bwrap reads
//! only options there) and sets the cgroup's limit.
//!
//! Why these tools: bubblewrap is the well-kept, small, setuid-free sandbox tool of Flatpak; it
//! does mounts and namespaces with years of review behind it, which hand-written `clone` and
//! `mount` calls would not have. It cannot switch to an unprivileged uid without a user
//! namespace that maps it onto root, so `setpriv` (util-linux, always installed) does that as
//! the first program in the sandbox. `seccompiler` (Firecracker's) builds the BPF in pure Rust,
//! with no libseccomp to link. The network namespace is the one thing made here, in a few lines,
//! because fnbridge must reach into it (see `net`).

mod cgroup;
mod dns;
mod net;
mod seccomp;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::process::Command;

pub(crate) use cgroup::Cgroup;
use cgroup::CgroupRoot;
pub(crate) use cgroup::counter as oom_counter;
use dns::DnsStub;
pub use dns::Public;
pub(crate) use net::NetNs;
use net::{ApiProxy, Slirp};

/// Where the code is inside a sandbox (`FC_FUNC_CODE_PATH`).
pub const CODE_DIR: &str = "/code";
/// Where the Python bootstrap is inside a sandbox.
pub(crate) const BOOTSTRAP_PATH: &str = "/var/fc/runtime/bootstrap.py";
/// Where the shared layer of FC's built-in Python modules is inside a sandbox.
pub(crate) const LAYER_PATH: &str = "/var/fc/lang/site-packages";
/// The uid and gid instances run as (`nobody` on Debian).
pub(crate) const SANDBOX_ID: u32 = 65534;

/// A name no other staging directory or cgroup of this process has.
pub(crate) fn unique_suffix() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// How instances are isolated; the binary decides, the runtime obeys.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// False only with `--insecure-no-sandbox`: instances then run as the server's user, on the
    /// host's filesystem and network, as before.
    pub enabled: bool,
    /// Whether instances reach the outside world (through slirp4netns). fnbridge's own API is
    /// reachable either way.
    pub outside_network: bool,
    /// Size of each instance's private `/tmp`.
    pub tmp_size_mb: u32,
    /// fnbridge's own services (the API, the object store): each is offered inside every
    /// sandbox at the same loopback address as outside, and named to the instance in its
    /// environment variable (`FNBRIDGE_API_ENDPOINT=http://127.0.0.1:9000`).
    pub services: Vec<Service>,
    /// The memory cgroup hierarchy (`/sys/fs/cgroup`).
    pub cgroup_mount: PathBuf,
    /// Host directories the operator shares with every instance (as FC mounts NAS), at the
    /// same path inside.
    pub mounts: Vec<SharedMount>,
    /// Jails made ahead of time, of each kind (networks; bwraps waiting for a Python worker):
    /// each holds a network namespace and an idle slirp4netns. 0 makes every jail on demand.
    pub spares: usize,
}

/// One of fnbridge's services, as instances reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The environment variable that tells instances where it is.
    pub env: String,
    /// Its listen address on the host.
    pub addr: SocketAddr,
    /// The Alibaba Cloud endpoint names it answers for inside sandboxes (`dns`), on port 80.
    pub public: Option<Public>,
}

impl Service {
    /// The address to connect to on the host: a wildcard listen address means loopback.
    pub fn target(&self) -> SocketAddr {
        match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        }
    }
}

/// A host directory mounted into every sandbox at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMount {
    pub path: PathBuf,
    pub writable: bool,
}

impl SandboxConfig {
    /// The services at their host addresses, for instances that run unsandboxed.
    pub(crate) fn services_on_host(&self) -> Vec<(String, SocketAddr)> {
        self.services
            .iter()
            .map(|s| (s.env.clone(), s.target()))
            .collect()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            enabled: true,
            outside_network: true,
            tmp_size_mb: 512,
            services: Vec::new(),
            cgroup_mount: PathBuf::from("/sys/fs/cgroup"),
            mounts: Vec::new(),
            spares: 2,
        }
    }
}

/// Host-wide sandbox state, made once by `Sandbox::new`.
#[derive(Debug)]
pub(crate) struct Sandbox {
    cfg: SandboxConfig,
    bwrap: PathBuf,
    setpriv: PathBuf,
    filters: seccomp::Filters,
    /// Makes network namespaces, and keeps a few spare ones ready.
    nets: Arc<Nets>,
    /// Bwraps waiting in spare jails for Python workers.
    zygotes: Arc<Zygotes>,
    /// Wakes the spares thread (made on first use); dropping it ends the thread.
    refills: std::sync::Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    cgroups: Option<Arc<CgroupRoot>>,
    /// Generated `/etc` files, bound read-only into every sandbox.
    etc: PathBuf,
    /// Parts of the host's root bound (or linked) into every sandbox.
    base: Vec<BaseEntry>,
}

#[derive(Debug, Clone)]
enum BaseEntry {
    Bind(PathBuf),
    Symlink { target: PathBuf, at: PathBuf },
}

/// One instance's share of the sandbox: its network namespace, cgroup, network stack and API
/// proxy. Dropped with the instance, after its processes are killed.
#[derive(Debug, Default)]
pub(crate) struct Jail {
    pub(crate) net: Option<Arc<NetNs>>,
    pub(crate) cgroup: Option<Cgroup>,
    slirp: Option<Slirp>,
    _proxies: Vec<ApiProxy>,
    _dns: Option<DnsStub>,
    /// Each service's environment variable and its address inside the sandbox.
    pub(crate) services_inside: Vec<(String, SocketAddr)>,
}

/// A directory or file of the host, bound read-only at `inside`.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    pub(crate) host: PathBuf,
    pub(crate) inside: PathBuf,
    pub(crate) writable: bool,
}

impl Bind {
    pub(crate) fn ro(host: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Bind {
        Bind {
            host: host.into(),
            inside: inside.into(),
            writable: false,
        }
    }
}

impl Sandbox {
    /// Finds the tools, compiles the filters, makes this server's cgroup directory, and runs a
    /// probe sandbox. An error says why the host cannot sandbox (serve then refuses to start
    /// without `--insecure-no-sandbox`).
    pub(crate) fn new(
        cfg: SandboxConfig,
        work_dir: &Path,
        path_var: Option<&str>,
    ) -> Result<Sandbox, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("the sandbox needs fnbridge to run as root (it makes namespaces and cgroups, and runs instances as uid 65534)".into());
        }
        let find = |name: &str| find_program(name, path_var);
        let bwrap = find("bwrap").ok_or("bwrap (bubblewrap) is not installed")?;
        let setpriv = find("setpriv").ok_or("setpriv (util-linux) is not installed")?;
        let slirp = if cfg.outside_network {
            Some(find("slirp4netns").ok_or(
                "slirp4netns is not installed (needed for outside network access; or pass --sandbox-network internal)",
            )?)
        } else {
            None
        };
        let filters = seccomp::compile()?;
        let host_net = Arc::new(
            net::host_netns()
                .map_err(|e| format!("cannot open the host network namespace: {e}"))?,
        );
        let cgroups = match CgroupRoot::create(
            &cfg.cgroup_mount,
            &format!("fnbridge-{}", unique_suffix()),
        ) {
            Ok(root) => Some(root),
            Err(why) => {
                tracing::warn!(%why, "no memory cgroup: memory limits fall back to RLIMIT_AS and sampling");
                None
            }
        };
        let etc = write_etc(&work_dir.join("sandbox-etc"))
            .map_err(|e| format!("cannot write the sandbox's /etc files: {e}"))?;
        let nets = Arc::new(Nets {
            host_net,
            services: cfg.services.clone(),
            slirp,
            spares: std::sync::Mutex::new(Vec::new()),
            target: cfg.spares,
        });
        let cgroups = cgroups.map(Arc::new);
        let zygotes = Arc::new(Zygotes {
            nets: Arc::clone(&nets),
            cgroups: cgroups.clone(),
            bwrap: bwrap.clone(),
            as_user: as_sandbox_user(&setpriv),
            filters: filters.clone(),
            pool: std::sync::Mutex::new(Vec::new()),
            target: cfg.spares,
        });
        let sandbox = Sandbox {
            cfg,
            bwrap,
            setpriv,
            filters,
            nets,
            zygotes,
            refills: std::sync::Mutex::new(None),
            cgroups,
            etc,
            base: base_entries(),
        };
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// Asks the spares thread to top both pools up. The thread is the sandbox's own and lives
    /// as long as it: the spare processes die with the thread that started them
    /// (PR_SET_PDEATHSIG), so neither the blocking pool (whose threads come and go) nor a
    /// runtime worker (which a spawn would hold up for the cgroup join) may start them.
    fn refill(&self) {
        if self.cfg.spares == 0 {
            return;
        }
        let mut tx = self.refills.lock().unwrap_or_else(|p| p.into_inner());
        if tx.is_none() {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let (send, recv) = std::sync::mpsc::sync_channel::<()>(1);
            let (nets, zygotes) = (Arc::clone(&self.nets), Arc::clone(&self.zygotes));
            let spawned = std::thread::Builder::new()
                .name("sandbox-spares".into())
                .spawn(move || {
                    // Proxies and name servers run as tasks of the server's runtime.
                    let _rt = rt.enter();
                    while recv.recv().is_ok() {
                        // The thread must outlive the processes it started: a panic in a
                        // refill is logged, not let through.
                        let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            zygotes.fill();
                            nets.fill();
                        }));
                        if filled.is_err() {
                            tracing::error!("a sandbox spares refill panicked");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the sandbox's spares thread");
                return;
            }
            *tx = Some(send);
        }
        if let Some(tx) = tx.as_ref() {
            // Full: a refill is already asked for.
            let _ = tx.try_send(());
        }
    }

    pub(crate) fn has_cgroups(&self) -> bool {
        self.cgroups.is_some()
    }

    /// Starts `true` in a full sandbox (network namespace included) and checks that it ran.
    fn probe(&self) -> Result<(), String> {
        // On a thread of its own: the caller may be inside a tokio runtime, which cannot block.
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.probe_here())
                .join()
                .unwrap_or_else(|_| Err("the sandbox probe panicked".to_owned()))
        })
    }

    fn probe_here(&self) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let jail = self
                .jail(&format!("probe-{}", unique_suffix()), 64, None, false)
                .await
                .map_err(|e| format!("cannot create the sandbox's namespaces: {e}"))?;
            let mut cmd = self
                .command(
                    &jail,
                    Path::new("/usr/bin/true"),
                    &[],
                    &BTreeMap::new(),
                    &[],
                )
                .map_err(|e| e.to_string())?;
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            let out = tokio::time::timeout(std::time::Duration::from_secs(10), cmd.output())
                .await
                .map_err(|_| "the probe sandbox did not finish within 10 s".to_owned())?
                .map_err(|e| format!("cannot run {}: {e}", self.bwrap.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "bwrap failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(())
        })
    }

    /// Prepares an instance's cgroup (limited to `memory_mb`, if cgroups are available) and
    /// network namespace (with the API proxies, the name server and, if allowed, the outside
    /// network). `reserved_port` is the port the instance itself will listen on, which the
    /// proxies must keep clear of. A networked jail comes from the spare pool when one fits
    /// (made ahead of time, its slirp4netns already up), which is then refilled in the
    /// background; else it is made here.
    pub(crate) async fn jail(
        &self,
        name: &str,
        memory_mb: u32,
        reserved_port: Option<u16>,
        with_network: bool,
    ) -> std::io::Result<Jail> {
        let cgroup = match &self.cgroups {
            Some(root) if memory_mb > 0 => {
                Some(root.instance(name, u64::from(memory_mb) * 1024 * 1024)?)
            }
            _ => None,
        };
        if !with_network {
            let ns = Arc::new(NetNs::create(&self.nets.host_net)?);
            return Ok(Jail {
                net: Some(ns),
                cgroup,
                ..Jail::default()
            });
        }
        let net = match self.nets.take_spare(reserved_port) {
            Some(net) => net,
            None => self.nets.make(reserved_port)?,
        };
        self.refill();
        Ok(Jail {
            net: Some(Arc::clone(&net.ns)),
            cgroup,
            slirp: net.slirp,
            _proxies: net.proxies,
            _dns: net.dns,
            services_inside: net.services_inside,
        })
    }

    /// The command that runs `program args` in the sandbox of `jail`, with exactly `env`, the
    /// base filesystem and `binds`. The caller adds stdio and spawns it.
    pub(crate) fn command(
        &self,
        jail: &Jail,
        program: &Path,
        args: &[String],
        env: &BTreeMap<String, String>,
        binds: &[Bind],
    ) -> std::io::Result<Command> {
        let eperm = memfd(&self.filters.eperm)?;
        let enosys = memfd(&self.filters.enosys)?;
        let mut a = self.options(binds, [eperm.as_raw_fd(), enosys.as_raw_fd()]);
        a.extend(as_sandbox_user(&self.setpriv));
        a.push(program.into());
        a.extend(args.iter().map(OsString::from));
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(&a).env_clear().envs(env);
        enter_jail(&mut cmd, jail, vec![eperm.as_raw_fd(), enosys.as_raw_fd()]);
        // The memfds must stay open until the spawn; the command owns them until it is dropped.
        cmd_keep(&mut cmd, vec![eperm, enosys]);
        Ok(cmd)
    }

    /// bwrap's options: the namespaces, the base filesystem, `binds` and the seccomp filters at
    /// fds `seccomp` (as the child has them).
    fn options(&self, binds: &[Bind], seccomp: [std::os::fd::RawFd; 2]) -> Vec<OsString> {
        let [eperm, enosys] = seccomp;
        let mut a: Vec<OsString> = Vec::with_capacity(96);
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&[
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "fc-instance",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            // Only for setpriv's switch to the sandbox uid, which drops them all.
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_SETPCAP",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]);
        for entry in &self.base {
            match entry {
                BaseEntry::Bind(p) => {
                    a.extend(["--ro-bind".into(), p.into(), p.into()]);
                }
                BaseEntry::Symlink { target, at } => {
                    a.extend(["--symlink".into(), target.into(), at.into()]);
                }
            }
        }
        // One bind for all of /etc (`write_etc`): each bind mount costs bwrap a few ms.
        a.extend(["--ro-bind".into(), (&self.etc).into(), "/etc".into()]);
        let tmp_bytes = u64::from(self.cfg.tmp_size_mb.max(1)) * 1024 * 1024;
        a.extend([
            "--perms".into(),
            "1777".into(),
            "--size".into(),
            tmp_bytes.to_string().into(),
            "--tmpfs".into(),
            "/tmp".into(),
        ]);
        let mut made: Vec<PathBuf> = Vec::new();
        let shared = self.cfg.mounts.iter().map(|m| Bind {
            host: m.path.clone(),
            inside: m.path.clone(),
            writable: m.writable,
        });
        let all: Vec<Bind> = binds.iter().cloned().chain(shared).collect();
        for bind in &all {
            // Parents that bwrap would otherwise create 0700 (root's), unreadable by the uid.
            for parent in bind
                .inside
                .ancestors()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                if parent == Path::new("/")
                    || parent.starts_with("/usr")
                    || made.iter().any(|m| m == parent)
                {
                    continue;
                }
                made.push(parent.to_path_buf());
                a.extend([
                    "--perms".into(),
                    "0755".into(),
                    "--dir".into(),
                    parent.into(),
                ]);
            }
            let flag = if bind.writable { "--bind" } else { "--ro-bind" };
            a.extend([flag.into(), (&bind.host).into(), (&bind.inside).into()]);
        }
        let has_code = binds.iter().any(|b| b.inside == Path::new(CODE_DIR));
        a.extend([
            "--chdir".into(),
            if has_code { CODE_DIR } else { "/tmp" }.into(),
            "--add-seccomp-fd".into(),
            eperm.to_string().into(),
            "--add-seccomp-fd".into(),
            enosys.to_string().into(),
        ]);
        a
    }
}

/// The command's start: `-- setpriv` to the sandbox uid, no capabilities, `--`.
fn as_sandbox_user(setpriv: &Path) -> Vec<OsString> {
    vec![
        "--".into(),
        setpriv.into(),
        format!("--reuid={SANDBOX_ID}").into(),
        format!("--regid={SANDBOX_ID}").into(),
        "--clear-groups".into(),
        "--inh-caps=-all".into(),
        "--bounding-set=-all".into(),
        "--".into(),
    ]
}

impl Sandbox {
    /// A bwrap already started in a spare jail (its cgroup joined, its namespace entered),
    /// waiting for its arguments, for a Python worker; `None` when none is ready (the caller
    /// then uses `jail` and `command`). The pool is refilled in the background. Joining a v1
    /// memory cgroup waits for an RCU grace period (about 10 ms on a loaded machine): that wait,
    /// the namespace and slirp4netns are paid ahead of time, not by the cold start.
    pub(crate) fn take_waiting(&self, memory_mb: u32) -> Option<Waiting> {
        // Unlimited memory: a waiting bwrap's cgroup already has a (placeholder) limit.
        if memory_mb == 0 && self.cgroups.is_some() {
            return None;
        }
        let w = {
            let mut pool = self.zygotes.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.pop()
        };
        self.refill();
        let w = w?;
        // A failed limit (a v1 cgroup refuses one below its usage; nothing runs yet) drops it.
        if let Some(cg) = &w.jail.cgroup
            && cg.set_limit(u64::from(memory_mb) * 1024 * 1024).is_err()
        {
            return None;
        }
        Some(w)
    }
}

/// A started bwrap blocked reading its arguments (`--args`): its jail, process, and the
/// Python worker's control socket and log pipe (stdin; stdout and stderr).
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) jail: Jail,
    child: tokio::process::Child,
    ctrl: std::os::unix::net::UnixStream,
    log: std::io::PipeReader,
    args: std::io::PipeWriter,
    seccomp: [std::os::fd::RawFd; 2],
}

impl Waiting {
    /// Sends the options (`env` as `--setenv`, the program and its arguments in `EXEC_VAR`, then
    /// what `command` would pass) and lets it run: its jail, process, control socket and log
    /// pipe.
    pub(crate) fn launch(
        self,
        sandbox: &Sandbox,
        program: &Path,
        args: &[String],
        env: &BTreeMap<String, String>,
        binds: &[Bind],
    ) -> std::io::Result<(
        Jail,
        tokio::process::Child,
        std::os::unix::net::UnixStream,
        std::io::PipeReader,
    )> {
        use std::os::unix::ffi::OsStrExt;
        let mut data: Vec<u8> = Vec::with_capacity(8192);
        let mut push = |arg: &[u8]| -> std::io::Result<()> {
            if arg.contains(&0) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an argument or environment variable holds a NUL byte",
                ));
            }
            data.extend_from_slice(arg);
            data.push(0);
            Ok(())
        };
        for (k, v) in env {
            push(b"--setenv")?;
            push(k.as_bytes())?;
            push(v.as_bytes())?;
        }
        let mut exec = shell_quote(program.as_os_str().as_bytes());
        for a in args {
            exec.push(b' ');
            exec.extend(shell_quote(a.as_bytes()));
        }
        push(b"--setenv")?;
        push(EXEC_VAR.as_bytes())?;
        push(&exec)?;
        for a in sandbox.options(binds, self.seccomp) {
            push(a.as_bytes())?;
        }
        let mut w = self.args;
        // bwrap reads it all before anything else; the pipe closes with `w`.
        w.write_all(&data)?;
        drop(w);
        Ok((self.jail, self.child, self.ctrl, self.log))
    }
}

/// bwrap takes only options from `--args`, so a waiting bwrap's command is fixed: a shell that
/// runs what this variable holds (set by `--setenv` in the options), without it in the
/// environment.
const EXEC_VAR: &str = "FNBRIDGE_EXEC";
const EXEC_SCRIPT: &str = r#"c=$FNBRIDGE_EXEC; unset FNBRIDGE_EXEC; eval "exec $c""#;

/// `s` as one word for `sh`: in single quotes, each `'` as `'\''`.
fn shell_quote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// Bwraps waiting in spare jails (`Sandbox::take_waiting`), at most `SandboxConfig::spares`.

#[derive(Debug)]
struct Zygotes {
    nets: Arc<Nets>,
    cgroups: Option<Arc<CgroupRoot>>,
    bwrap: PathBuf,
    /// `-- setpriv … --`, as `Sandbox::as_sandbox_user`.
    as_user: Vec<OsString>,
    filters: seccomp::Filters,
    pool: std::sync::Mutex<Vec<Waiting>>,
    target: usize,
}

/// Every memory limit a waiting bwrap gets before its instance sets the real one; nothing runs
/// in it meanwhile but bwrap blocked on a read.
const PLACEHOLDER_LIMIT: u64 = 256 * 1024 * 1024;

impl Zygotes {
    /// As `Nets::fill`, for waiting bwraps.
    fn fill(&self) {
        while self.pool.lock().unwrap_or_else(|p| p.into_inner()).len() < self.target {
            match self.make() {
                Ok(w) => self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a spare sandbox");
                    return;
                }
            }
        }
    }

    fn make(&self) -> std::io::Result<Waiting> {
        let net = self.nets.make(None)?;
        let cgroup = match &self.cgroups {
            Some(root) => {
                Some(root.instance(&format!("spare-{}", unique_suffix()), PLACEHOLDER_LIMIT)?)
            }
            None => None,
        };
        let jail = Jail {
            net: Some(Arc::clone(&net.ns)),
            cgroup,
            slirp: net.slirp,
            _proxies: net.proxies,
            _dns: net.dns,
            services_inside: net.services_inside,
        };
        let eperm = memfd(&self.filters.eperm)?;
        let enosys = memfd(&self.filters.enosys)?;
        let (args_r, args_w) = std::io::pipe()?;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let (log_r, log_w) = std::io::pipe()?;
        let seccomp = [eperm.as_raw_fd(), enosys.as_raw_fd()];
        let mut cmd = Command::new(&self.bwrap);
        cmd.arg("--args")
            .arg(args_r.as_raw_fd().to_string())
            .args(&self.as_user)
            .args(["/bin/sh", "-c", EXEC_SCRIPT])
            .env_clear()
            .stdin(std::process::Stdio::from(OwnedFd::from(theirs)))
            .stdout(std::process::Stdio::from(log_w.try_clone()?))
            .stderr(std::process::Stdio::from(log_w))
            .process_group(0)
            .kill_on_drop(true);
        enter_jail(
            &mut cmd,
            &jail,
            vec![eperm.as_raw_fd(), enosys.as_raw_fd(), args_r.as_raw_fd()],
        );
        let child = cmd.spawn()?;
        // Our copies close here (the child has its own): the memfds, the read end.
        drop(cmd);
        drop((eperm, enosys, args_r));
        Ok(Waiting {
            jail,
            child,
            ctrl: ours,
            log: log_r,
            args: args_w,
            seccomp,
        })
    }
}

/// Sets up the child of `cmd` (bwrap) for `jail`: between fork and exec it joins the jail's
/// cgroup and network namespace, keeps `inherit` open across the exec, dies with the server
/// (PR_SET_PDEATHSIG, and at once if the server is already gone).
fn enter_jail(cmd: &mut Command, jail: &Jail, inherit: Vec<std::os::fd::RawFd>) {
    let netns = jail.net.as_ref().map(|n| n.fd());
    let cgroup = jail.cgroup.as_ref().map(Cgroup::procs_path);
    // SAFETY: the closure makes only async-signal-safe calls (open, write, setns, fcntl,
    // prctl, getppid, _exit) and allocates nothing: the paths were prepared above.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &cgroup {
                cgroup::join(procs)?;
            }
            if let Some(fd) = netns
                && libc::setns(fd, libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for &fd in &inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The network half of a jail. `Nets` keeps some ready ahead of time: a new instance takes one
/// instead of waiting for a namespace, its proxies, its name server and a slirp4netns (a fork
/// and exec of the server) to be made. Bounded by `SandboxConfig::spares`; each spare's
/// processes die with it.
#[derive(Debug)]
struct NetParts {
    ns: Arc<NetNs>,
    slirp: Option<Slirp>,
    proxies: Vec<ApiProxy>,
    dns: Option<DnsStub>,
    services_inside: Vec<(String, SocketAddr)>,
    /// Every TCP port its proxies listen on (any address), which the instance cannot use.
    ports: Vec<u16>,
}

#[derive(Debug)]
struct Nets {
    host_net: Arc<OwnedFd>,
    services: Vec<Service>,
    slirp: Option<PathBuf>,
    spares: std::sync::Mutex<Vec<NetParts>>,
    target: usize,
}

impl Nets {
    /// A spare whose proxies leave `reserved_port` free.
    fn take_spare(&self, reserved_port: Option<u16>) -> Option<NetParts> {
        let mut spares = self.spares.lock().unwrap_or_else(|p| p.into_inner());
        let i = spares
            .iter()
            .position(|n| reserved_port.is_none_or(|p| !n.ports.contains(&p)))?;
        Some(spares.swap_remove(i))
    }

    /// Tops the spares up to `target`; a failure is logged and leaves the pool short.
    /// Runs on the sandbox's spares thread (`Sandbox::refill`).
    fn fill(&self) {
        while self.spares.lock().unwrap_or_else(|p| p.into_inner()).len() < self.target {
            match self.make(None) {
                Ok(n) => self
                    .spares
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(n),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a spare sandbox network");
                    return;
                }
            }
        }
    }

    /// A namespace with a proxy per service (at its own port, moved up past `reserved_port`
    /// and each other), the public-name proxies on port 80 and the name server, and
    /// slirp4netns where allowed.
    fn make(&self, reserved_port: Option<u16>) -> std::io::Result<NetParts> {
        let ns = Arc::new(NetNs::create(&self.host_net)?);
        let mut net = NetParts {
            ns: Arc::clone(&ns),
            slirp: None,
            proxies: Vec::new(),
            dns: None,
            services_inside: Vec::new(),
            ports: Vec::new(),
        };
        let mut taken: Vec<u16> = reserved_port.into_iter().collect();
        for service in &self.services {
            let mut port = service.addr.port();
            // The function's own port wins (FC's 9000 is also fnbridge's default port), and
            // two services never share one.
            while taken.contains(&port) {
                port = if port == u16::MAX { 1024 } else { port + 1 };
            }
            taken.push(port);
            net.ports.push(port);
            let inside = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let listener = ns.listen(inside)?;
            net.proxies
                .push(ApiProxy::start(listener, service.target()));
            net.services_inside.push((service.env.clone(), inside));
            // Its public endpoint names resolve here (`dns`): plain http on port 80, unless
            // the function itself listens on 80 (any address: it may bind 0.0.0.0).
            if let Some(public) = service.public
                && reserved_port != Some(80)
            {
                let listener = ns.listen(SocketAddr::from((public.addr(), 80)))?;
                net.proxies
                    .push(ApiProxy::start(listener, service.target()));
                net.ports.push(80);
            }
        }
        let public: Vec<Public> = self.services.iter().filter_map(|s| s.public).collect();
        net.dns = Some(DnsStub::start(&ns, &public, self.slirp.is_some())?);
        if let Some(slirp) = &self.slirp {
            net.slirp = Some(Slirp::start(slirp, &ns)?);
        }
        Ok(net)
    }
}

impl Jail {
    /// Waits until the instance's outside network is configured, if it has one.
    pub(crate) async fn network_ready(&mut self) -> std::io::Result<()> {
        match &mut self.slirp {
            Some(s) => s.ready().await,
            None => Ok(()),
        }
    }

    /// How many of its processes the kernel's OOM killer killed (0 without a cgroup).
    pub(crate) fn oom_kills(&self) -> u64 {
        self.cgroup.as_ref().map_or(0, Cgroup::oom_kills)
    }
}

/// Files of the host's `/etc` that programs need and that say nothing about the server.
const ETC_FROM_HOST: &[&str] = &[
    "debian_version",
    "os-release",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "mime.types",
    "protocols",
    "services",
    "gai.conf",
    "host.conf",
];

/// `/usr`, and `/bin`, `/lib`, `/lib64`, `/sbin` as links (merged /usr) or directories.
fn base_entries() -> Vec<BaseEntry> {
    let mut out = vec![BaseEntry::Bind(PathBuf::from("/usr"))];
    for name in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let p = Path::new(name);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    out.push(BaseEntry::Symlink {
                        target,
                        at: p.to_path_buf(),
                    });
                }
            }
            Ok(m) if m.is_dir() => out.push(BaseEntry::Bind(p.to_path_buf())),
            _ => {}
        }
    }
    out
}

/// Most entries copied from the host's `/etc` (a bound on an unusual host).
const MAX_ETC_ENTRIES: usize = 20_000;

/// Makes the sandbox's `/etc` under `dir` (`etc-<pid>`, a fresh one per server; those of
/// servers that are gone are removed): the generated files (the sandbox's users, a hosts file,
/// the DNS stub, the host name) and a copy of `ETC_FROM_HOST`, files and directories others may
/// read, symlinks as they are (they point into `/usr`, which is bound). Bound read-only as one
/// directory: a bind per file cost bwrap 40-70 ms in all on this machine. The copy is as of the
/// server's start.
fn write_etc(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("etc-")) else {
            continue;
        };
        if pid != std::process::id().to_string() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let root = dir.join(format!("etc-{}", std::process::id()));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir(&root)?;
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut budget = MAX_ETC_ENTRIES;
    for name in ETC_FROM_HOST {
        copy_readable(&Path::new("/etc").join(name), &root.join(name), &mut budget)?;
    }
    let dir = &root;
    let files: [(&'static str, String); 5] = [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:{SANDBOX_ID}:{SANDBOX_ID}:nobody:/tmp:/usr/sbin/nologin\n"
            ),
        ),
        ("group", format!("root:x:0:\nnogroup:x:{SANDBOX_ID}:\n")),
        (
            "hosts",
            "127.0.0.1 localhost fc-instance\n::1 localhost ip6-localhost ip6-loopback\n".into(),
        ),
        // The sandbox's own stub (`dns`), which forwards to slirp4netns' 10.0.2.3.
        ("resolv.conf", "nameserver 127.0.0.1\n".into()),
        ("hostname", "fc-instance\n".into()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    }
    Ok(root)
}

/// Copies `from` to `to` if others may read it (directories: and enter it), keeping its mode;
/// symlinks are made again as they are; anything else, or past the budget, is left out.
fn copy_readable(from: &Path, to: &Path, budget: &mut usize) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(from) else {
        return Ok(());
    };
    if *budget == 0 {
        return Ok(());
    }
    *budget -= 1;
    // No set-id bits: these are data files.
    let mode = meta.permissions().mode() & 0o777;
    let kind = meta.file_type();
    if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if kind.is_dir() && mode & 0o005 == 0o005 {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)?.flatten() {
            copy_readable(&entry.path(), &to.join(entry.file_name()), budget)?;
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    } else if kind.is_file() && mode & 0o004 == 0o004 {
        std::fs::copy(from, to)?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A sealed-in-spirit memfd holding `data`, read from its start (close-on-exec: the child
/// clears that flag on the copy it needs).
fn memfd(data: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags, returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"fnbridge-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(data)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    Ok(file.into())
}

/// Ties `fds` to the command's lifetime: they are closed when the command is dropped.
fn cmd_keep(cmd: &mut Command, fds: Vec<OwnedFd>) {
    // SAFETY: the closure does nothing in the child; it only owns the fds.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &fds;
            Ok(())
        });
    }
}

/// `name` in PATH, or in the usual system directories.
fn find_program(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    let dirs = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy of the host's `/etc` keeps what others may read (modes kept, symlinks as they
    /// are) and leaves out what they may not (a 0600 key, a 0700 directory), within its budget.
    #[test]
    fn etc_copy_keeps_only_what_others_may_read() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("ssl");
        std::fs::create_dir_all(src.join("certs")).unwrap();
        std::fs::create_dir_all(src.join("private")).unwrap();
        std::fs::write(src.join("certs/ca.pem"), "cert").unwrap();
        std::fs::write(src.join("private/key.pem"), "secret").unwrap();
        std::fs::write(src.join("openssl.cnf"), "conf").unwrap();
        std::fs::write(src.join("local.key"), "secret").unwrap();
        std::fs::set_permissions(src.join("certs/ca.pem"), PermissionsExt::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(src.join("openssl.cnf"), PermissionsExt::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(src.join("local.key"), PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::set_permissions(src.join("private"), PermissionsExt::from_mode(0o700)).unwrap();
        std::fs::set_permissions(src.join("certs"), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&src, PermissionsExt::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/usr/share/x", src.join("certs/link.pem")).unwrap();
        let dst = t.path().join("out");
        let mut budget = 100;
        copy_readable(&src, &dst, &mut budget).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("certs/ca.pem")).unwrap(),
            "cert"
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("openssl.cnf")).unwrap(),
            "conf"
        );
        assert_eq!(
            std::fs::read_link(dst.join("certs/link.pem")).unwrap(),
            Path::new("/usr/share/x")
        );
        assert!(!dst.join("local.key").exists());
        assert!(!dst.join("private").exists());
        let mode = |p: &str| std::fs::metadata(dst.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("certs"), 0o755);
        assert_eq!(mode("certs/ca.pem"), 0o644);
        // The budget stops the copy: one entry is the top directory alone.
        let mut small = 1;
        copy_readable(&src, &t.path().join("small"), &mut small).unwrap();
        assert_eq!(walk_count(&t.path().join("small")), 1);
        assert_eq!(small, 0);
        assert!(copy_readable(&t.path().join("missing"), &t.path().join("m"), &mut 5).is_ok());
    }

    fn walk_count(p: &Path) -> usize {
        let mut n = 1;
        if std::fs::symlink_metadata(p).unwrap().is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                n += walk_count(&e.path());
            }
        }
        n
    }

    #[test]
    fn shell_quote_makes_one_word_of_anything() {
        assert_eq!(shell_quote(b"plain"), b"'plain'".to_vec());
        assert_eq!(shell_quote(b"it's"), b"'it'\\''s'".to_vec());
        assert_eq!(shell_quote(b""), b"''".to_vec());
        // What sh makes of it is the original bytes, one argument.
        for s in ["{\"a\": \"b c\"}", "it's $HOME `x` \\n", "'", "a b\nc"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "printf '%s' {}",
                    String::from_utf8(shell_quote(s.as_bytes())).unwrap()
                ))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}
