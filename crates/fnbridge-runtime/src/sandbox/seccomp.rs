//! The seccomp filters every sandboxed process runs under, compiled once with `seccompiler` and
//! handed to bwrap as raw BPF (`--add-seccomp-fd`).
//!
//! A denylist in the spirit of Docker's and Podman's default profiles: what a function may do
//! stays open (files, sockets, threads, subprocesses, memory), what only a container runtime or
//! an administrator needs is refused with `EPERM`: mounting, new namespaces, kernel modules,
//! BPF, perf, keyrings, ptrace of others, clocks, reboot, and `TIOCSTI` terminal injection.
//! `clone3` answers `ENOSYS`, as in Docker: its flags sit behind a pointer a filter cannot read,
//! and libc falls back to `clone`, whose namespace flags the filter does see.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Syscalls refused outright. Names that do not exist on the build architecture are skipped.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "adjtimex",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "_sysctl",
];

/// `clone` flags that would make a namespace.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The two programs, as the raw `struct sock_filter` arrays bwrap reads.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    pub(crate) eperm: Vec<u8>,
    pub(crate) enosys: Vec<u8>,
}

/// Compiles the filters for the architecture we run on.
pub(crate) fn compile() -> Result<Filters, String> {
    let arch = target_arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for name in DENIED {
        if let Some(nr) = syscall_number(name) {
            // An empty rule list matches every call of the syscall.
            rules.insert(nr, Vec::new());
        }
    }
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
    };
    if let Some(nr) = syscall_number("clone") {
        // The flags are clone's first argument on x86_64 and aarch64 alike.
        let mut clone = Vec::new();
        for &flag in NAMESPACE_FLAGS {
            let c = cond(0, SeccompCmpOp::MaskedEq(flag), flag)?;
            clone.push(SeccompRule::new(vec![c]).map_err(|e| e.to_string())?);
        }
        rules.insert(nr, clone);
    }
    if let Some(nr) = syscall_number("ioctl") {
        // Only the low 32 bits hold the request; a sign-extended value must match too.
        let c = cond(1, SeccompCmpOp::MaskedEq(0xffff_ffff), libc::TIOCSTI)?;
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![c]).map_err(|e| e.to_string())?],
        );
    }
    let eperm = build(rules, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    let mut clone3 = BTreeMap::new();
    if let Some(nr) = syscall_number("clone3") {
        clone3.insert(nr, Vec::new());
    }
    let enosys = build(clone3, SeccompAction::Errno(libc::ENOSYS as u32), arch)?;
    Ok(Filters { eperm, enosys })
}

fn build(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    on_match: SeccompAction,
    arch: TargetArch,
) -> Result<Vec<u8>, String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, on_match, arch)
        .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    Ok(bytes)
}

fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())
}

/// The syscall number of `name` on this architecture, from libc's constants.
fn syscall_number(name: &str) -> Option<i64> {
    SYSCALLS.iter().find(|(n, _)| *n == name).map(|&(_, nr)| nr)
}

/// The syscalls the filters name, with their numbers on the build architecture.
/// (seccompiler targets are all 64-bit, where `c_long` is `i64`.)
const SYSCALLS: &[(&str, i64)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("finit_module", libc::SYS_finit_module),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fsopen", libc::SYS_fsopen),
    ("fspick", libc::SYS_fspick),
    ("init_module", libc::SYS_init_module),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mount", libc::SYS_mount),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("move_mount", libc::SYS_move_mount),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("open_tree", libc::SYS_open_tree),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("ptrace", libc::SYS_ptrace),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("adjtimex", libc::SYS_adjtimex),
    ("swapoff", libc::SYS_swapoff),
    ("swapon", libc::SYS_swapon),
    ("syslog", libc::SYS_syslog),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("vhangup", libc::SYS_vhangup),
    ("clone", libc::SYS_clone),
    ("clone3", libc::SYS_clone3),
    ("ioctl", libc::SYS_ioctl),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    ("ustat", libc::SYS_ustat),
    #[cfg(target_arch = "x86_64")]
    ("_sysctl", libc::SYS__sysctl),
];
