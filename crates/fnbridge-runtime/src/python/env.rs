//! What a Python instance starts with: its environment (runtime.md §3) and the bootstrap's
//! JSON configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;

use crate::env::{instance_environment, whole_seconds};
use crate::instance::Launch;
use crate::python::frame::MAX_RESPONSE_BYTES;

/// The environment of a Python instance: the common one (`crate::env`) with defaults that
/// keep user output in order with the markers (unbuffered streams), keep `.pyc` files out of
/// the code directory, and cap malloc at two arenas, since each one reserves 64 MB of the
/// address space that RLIMIT_AS caps.
pub(crate) fn environment(
    launch: &Launch<'_>,
    paths: &Paths<'_>,
    services: &[(String, SocketAddr)],
) -> BTreeMap<String, String> {
    instance_environment(
        launch,
        paths.code,
        services,
        &[
            ("PYTHONUNBUFFERED", "1"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("MALLOC_ARENA_MAX", "2"),
        ],
    )
}

/// Where the worker finds things, as it sees them (inside the sandbox, or on the host).
pub(crate) struct Paths<'a> {
    pub(crate) code: &'a Path,
    /// The layer of FC's built-in modules, if installed.
    pub(crate) layer: Option<&'a Path>,
    /// Whether the worker limits its address space itself (no memory cgroup).
    pub(crate) rlimit: bool,
}

#[derive(Serialize)]
struct BootstrapConfig<'a> {
    handler: &'a str,
    initializer: Option<&'a str>,
    pre_stop: Option<&'a str>,
    initializer_timeout: u64,
    function_name: &'a str,
    memory: u32,
    timeout: u64,
    region: &'a str,
    account_id: &'a str,
    instance_id: &'a str,
    code_dir: &'a str,
    layer_dir: Option<String>,
    memory_limit_bytes: u64,
    max_response_bytes: usize,
}

/// The bootstrap's command-line argument: what it needs that is not per invocation.
pub(crate) fn bootstrap_config(launch: &Launch<'_>, paths: &Paths<'_>) -> String {
    let Launch {
        host,
        spec,
        instance_id,
        ..
    } = launch;
    let code_dir = paths.code.to_string_lossy();
    let memory_limit_bytes = if spec.memory_mb == 0 || !paths.rlimit {
        0
    } else {
        (u64::from(spec.memory_mb) + u64::from(host.cfg.memory_headroom_mb)) * 1024 * 1024
    };
    let cfg = BootstrapConfig {
        handler: &spec.handler,
        initializer: spec.initializer.as_ref().map(|h| h.handler.as_str()),
        pre_stop: spec.pre_stop.as_ref().map(|h| h.handler.as_str()),
        initializer_timeout: spec
            .initializer
            .as_ref()
            .map_or(0, |h| whole_seconds(h.timeout)),
        function_name: &spec.function_name,
        memory: spec.memory_mb,
        timeout: whole_seconds(spec.timeout),
        region: &host.cfg.region,
        account_id: &host.cfg.account_id,
        instance_id,
        code_dir: &code_dir,
        layer_dir: paths.layer.map(|p| p.to_string_lossy().into_owned()),
        memory_limit_bytes,
        max_response_bytes: MAX_RESPONSE_BYTES,
    };
    serde_json::to_string(&cfg).expect("serializing the bootstrap config cannot fail")
}
