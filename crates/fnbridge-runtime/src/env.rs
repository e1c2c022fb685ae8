//! The environment every instance starts with (runtime.md §3), whatever its runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::instance::Launch;

/// The environment of a new instance: the host's PATH/HOME/LANG, then `runtime_defaults`
/// (which users may override), then the user's variables, then the system variables, which
/// users cannot override. Nothing else of the server's environment is passed on.
pub(crate) fn instance_environment(
    launch: &Launch<'_>,
    code_dir: &Path,
    services: &[(String, SocketAddr)],
    runtime_defaults: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let Launch {
        host,
        spec,
        instance_id,
        first,
    } = launch;
    let mut env = host.cfg.base_env.clone();
    if host.sandbox.is_some() {
        // The host's PATH names directories the sandbox does not have (pyenv, cargo, home).
        env.insert("PATH".into(), SANDBOX_PATH.into());
        env.insert("HOME".into(), "/tmp".into());
    }
    env.extend(
        runtime_defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));

    let version = if first.version_id.is_empty() {
        "LATEST"
    } else {
        first.version_id.as_str()
    };
    let code = code_dir.to_string_lossy().into_owned();
    // `disableInjectCredentials` Env/All: the variables exist, empty.
    let none = crate::spec::Credentials::default();
    let creds = if spec.credentials_in_env {
        &first.credentials
    } else {
        &none
    };
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
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", creds.access_key_id.clone()),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            creds.access_key_secret.clone(),
        ),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", creds.security_token.clone()),
    ];
    env.extend(system.into_iter().map(|(k, v)| (k.to_owned(), v)));
    for (name, addr) in services {
        // fnbridge's own services, at addresses that work from where the instance runs (inside
        // a sandbox: the proxies on the namespace's loopback).
        env.insert(name.clone(), format!("http://{addr}"));
    }
    if let Some(init) = &spec.initializer {
        env.insert("FC_INITIALIZER".into(), init.handler.clone());
    }
    env
}

/// PATH inside a sandbox: FC puts the code directory and its `bin` on it for custom runtimes.
pub(crate) const SANDBOX_PATH: &str = "/code:/code/bin:/usr/local/bin:/usr/bin:/bin";

/// `context.function.timeout` and `x-fc-function-timeout` are whole seconds; a partial second
/// counts as one.
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
