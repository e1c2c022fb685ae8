//! What a Python instance starts with: its environment (runtime.md §3) and the bootstrap's
//! JSON configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::instance::Launch;
use crate::python::frame::MAX_RESPONSE_BYTES;

/// The environment of a new instance: the host's PATH/HOME/LANG, then the user's variables,
/// then the system variables, which users cannot override. Nothing else of the server's
/// environment is passed on.
pub(crate) fn environment(launch: &Launch<'_>, code_dir: &Path) -> BTreeMap<String, String> {
    let Launch {
        host,
        spec,
        instance_id,
        first,
    } = launch;
    let mut env = host.cfg.base_env.clone();
    // Unbuffered streams keep user output in order with the markers; no .pyc files in the code
    // directory; two malloc arenas at most, since each one reserves 64 MB of the address space
    // that RLIMIT_AS caps.
    env.insert("PYTHONUNBUFFERED".into(), "1".into());
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.insert("MALLOC_ARENA_MAX".into(), "2".into());
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));

    let version = if first.version_id.is_empty() {
        "LATEST"
    } else {
        first.version_id.as_str()
    };
    let code = code_dir.to_string_lossy().into_owned();
    let system = [
        ("FC_FUNC_CODE_PATH", code),
        ("FC_ACCOUNT_ID", host.cfg.account_id.clone()),
        ("FC_REGION", host.cfg.region.clone()),
        ("FC_FUNCTION_NAME", spec.function_name.clone()),
        ("FC_FUNCTION_HANDLER", spec.handler.clone()),
        ("FC_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("FC_INSTANCE_ID", instance_id.clone()),
        ("FC_FUNCTION_VERSION", version.to_owned()),
        ("FC_VER_ID", version.to_owned()),
        // The names the fc-docker emulator uses; harmless, and some code reads them.
        ("FC_SERVICE_NAME", spec.function_name.clone()),
        ("FC_HANDLER", spec.handler.clone()),
        ("FC_MEMORY_SIZE", spec.memory_mb.to_string()),
        ("FC_TIMEOUT", whole_seconds(spec.timeout).to_string()),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            first.credentials.access_key_id.clone(),
        ),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            first.credentials.access_key_secret.clone(),
        ),
        (
            "ALIBABA_CLOUD_SECURITY_TOKEN",
            first.credentials.security_token.clone(),
        ),
    ];
    env.extend(system.into_iter().map(|(k, v)| (k.to_owned(), v)));
    if let Some(init) = &spec.initializer {
        env.insert("FC_INITIALIZER".into(), init.handler.clone());
    }
    env
}

#[derive(Serialize)]
struct BootstrapConfig<'a> {
    handler: &'a str,
    initializer: Option<&'a str>,
    initializer_timeout: u64,
    function_name: &'a str,
    memory: u32,
    timeout: u64,
    region: &'a str,
    account_id: &'a str,
    instance_id: &'a str,
    code_dir: &'a str,
    memory_limit_bytes: u64,
    max_response_bytes: usize,
}

/// The bootstrap's command-line argument: what it needs that is not per invocation.
pub(crate) fn bootstrap_config(launch: &Launch<'_>, code_dir: &Path) -> String {
    let Launch {
        host,
        spec,
        instance_id,
        ..
    } = launch;
    let code_dir = code_dir.to_string_lossy();
    let memory_limit_bytes = if spec.memory_mb == 0 {
        0
    } else {
        (u64::from(spec.memory_mb) + u64::from(host.cfg.memory_headroom_mb)) * 1024 * 1024
    };
    let cfg = BootstrapConfig {
        handler: &spec.handler,
        initializer: spec.initializer.as_ref().map(|h| h.handler.as_str()),
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
        memory_limit_bytes,
        max_response_bytes: MAX_RESPONSE_BYTES,
    };
    serde_json::to_string(&cfg).expect("serializing the bootstrap config cannot fail")
}

/// `context.function.timeout` is an int of seconds; a partial second counts as one.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
