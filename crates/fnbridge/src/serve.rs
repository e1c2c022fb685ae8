//! `fnbridge serve`: locks and prepares the data directory and admin token, wires store,
//! runtime, dispatcher and API together, and shuts down gracefully on SIGINT/SIGTERM.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fnbridge_api::{AppState, router};
use fnbridge_auth::{Auth, AuthConfig, MasterKey};
use fnbridge_dispatch::{Backoff, DispatchConfig, Dispatcher, Limits, ids};
use fnbridge_runtime::{Public, Runtime, RuntimeConfig, SandboxConfig, Service};
use fnbridge_store::Store;
use fnbridge_store::retention::Retention;

use crate::cli::{SandboxNetwork, ServeArgs};

mod cdn;
mod listener;
mod objectstore;

/// Reads the admin token, creating it (mode 0600) on first start.
fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 16 {
            return Ok(t);
        }
    }
    let token = ids::hex_token(32);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    Ok(token)
}

/// Takes `<data-dir>/fnbridge.lock` for the life of the process and writes our pid in it. A
/// second server on the same data dir would run every delivery twice and race the first one's
/// code directories; it is refused, naming the pid holding the lock. The kernel drops the lock
/// when the process ends, however it ends.
/// How long a start waits for a lock left by a server that is gone, polling every `LOCK_POLL`.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(50);

fn lock_data_dir(data: &Path) -> anyhow::Result<std::fs::File> {
    let path = data.join("fnbridge.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // Not truncated before it is ours: the holder's pid is in it.
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // A server that was just killed may leave the lock to a child for a moment (one forked but
    // not yet exec'd, dying with its parent): if the pid in the file is gone, wait briefly
    // for the lock instead of refusing at once.
    let mut waited = std::time::Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = (&file).read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                let alive = !holder.is_empty() && Path::new(&format!("/proc/{holder}")).exists();
                if alive || waited >= LOCK_WAIT {
                    let holder = if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder
                    };
                    anyhow::bail!(
                        "data dir {} is in use by another fnbridge serve (pid {holder}, lock file {}); \
                         stop it or use another --data-dir",
                        data.display(),
                        path.display()
                    );
                }
                std::thread::sleep(LOCK_POLL);
                waited += LOCK_POLL;
                use std::io::Seek;
                let _ = (&file).seek(std::io::SeekFrom::Start(0));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(file)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FNBRIDGE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files, journals or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data = &args.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data dir {}", data.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700));
    }
    let data = data.canonicalize()?;
    // Held until the process exits; taken before anything in the data dir is touched.
    let _lock = lock_data_dir(&data)?;
    let token = admin_token(&data)?;
    // Beside admin.token and never in the database: access key secrets and STS credentials are
    // derived from it, so a copy of fnbridge.db alone gives none of them away.
    let key_path = data.join("auth.key");
    let master = MasterKey::load_or_create(&key_path)
        .with_context(|| format!("cannot read or create {}", key_path.display()))?;
    let store = Store::open(&data.join("fnbridge.db")).context("cannot open the database")?;
    // Bound before the runtime starts: sandboxes offer the API at this address inside.
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let auth = Auth::new(
        AuthConfig::new(&args.region, &args.account_id),
        store.clone(),
        master,
        token,
    );
    let oss_listener = objectstore::bind(&args).await?;
    let mut services = vec![Service {
        env: "FNBRIDGE_API_ENDPOINT".into(),
        addr,
        public: Some(Public::Api),
    }];
    if let Some(l) = &oss_listener {
        services.push(Service {
            env: "FNBRIDGE_OSS_ENDPOINT".into(),
            addr: l.local_addr()?,
            public: Some(Public::ObjectStore),
        });
    }
    let runtime = start_runtime(&args, &data, services)?;
    let dispatcher = Dispatcher::start(
        DispatchConfig {
            region: args.region.clone(),
            account_id: args.account_id.clone(),
            backoff: Backoff {
                base: Duration::from_millis(args.retry_base_ms.max(1)),
                max: Duration::from_secs(args.retry_max_s.max(1)),
            },
            limits: Limits {
                window_per_function: args.window_per_function.max(1),
                window: args.window.max(1),
                window_bytes: 64 << 20,
                in_flight: args.max_in_flight.max(1),
                in_flight_per_function: args.max_in_flight_per_function.max(1),
            },
            max_backlog: args.max_backlog,
            retention: Retention {
                max_age_ms: (args.retention_days.saturating_mul(86_400_000)).min(i64::MAX as u64)
                    as i64,
                max_finished_tasks: args.max_finished_tasks.min(i64::MAX as u64) as i64,
            },
            prune_every: Duration::from_secs(args.prune_interval_s.max(1)),
            code_root: data.join("code"),
        },
        store.clone(),
        runtime,
        auth,
    )
    .await
    .context("cannot start the dispatcher")?;
    let objects = objectstore::start(&args, &data, &dispatcher, oss_listener).await?;
    let cdn = cdn::start(
        &args,
        &dispatcher,
        objects.as_ref().map(|(a, _, s)| (s, *a)),
        &data,
    )
    .await?;
    let app = router(AppState {
        dispatcher: dispatcher.clone(),
        // The resolved interpreter: a bare `python3` may be a shim that costs 100+ ms per start.
        python: Arc::from(dispatcher.runtime().python()),
        body_timeout: Some(Duration::from_secs(args.body_timeout_s.max(1))),
        cdn: cdn.as_ref().map(|(c, _, _)| c.clone()),
    });
    // Installed before anyone is told we are up, so an early SIGTERM still shuts down cleanly.
    let shutdown = shutdown_signal().context("cannot install signal handlers")?;
    // One line on stdout each, so scripts and tests can find a port chosen with :0 (the API's
    // first: existing scripts read only that one).
    // Written, not println!-ed: whoever started the server may read the first line and close
    // the pipe, and a closed stdout must not take the server down.
    announce(&format!("fnbridge listening on http://{addr}"));
    if let Some((oss_addr, _, _)) = &objects {
        announce(&format!(
            "fnbridge object store (S3, OSS, COS) on http://{oss_addr}"
        ));
    }
    if let Some((_, cdn_addr, _)) = &cdn {
        announce(&format!("fnbridge CDN edge on http://{cdn_addr}"));
    }
    let _ = writeln!(
        std::io::stderr(),
        "admin token: {}",
        data.join("admin.token").display()
    );
    let limits = listener::Limits {
        max_connections: args.max_connections.max(1),
        header_timeout: Duration::from_secs(args.header_timeout_s.max(1)),
        idle_timeout: Duration::from_secs(args.idle_conn_timeout_s.max(1)),
    };
    let drain = Duration::from_secs(args.shutdown_grace_s);
    listener::serve(listener, app, limits, shutdown, drain).await;
    if let Some((_, _, stop)) = &cdn {
        stop.send_replace(true);
    }
    if let Some((_, stop, _)) = &objects {
        stop.send_replace(true);
    }
    tracing::info!("shutting down: finishing running deliveries");
    dispatcher
        .shutdown(Duration::from_secs(args.shutdown_grace_s))
        .await;
    store.close();
    Ok(())
}

/// The function runtime, sandboxed unless `--insecure-no-sandbox`. A host that cannot sandbox
/// is refused with the reason and the way out.
fn start_runtime(
    args: &ServeArgs,
    data: &Path,
    services: Vec<Service>,
) -> anyhow::Result<Arc<Runtime>> {
    let sandbox = SandboxConfig {
        enabled: !args.insecure_no_sandbox,
        outside_network: args.sandbox_network == SandboxNetwork::Outside,
        tmp_size_mb: args.sandbox_tmp_mb.max(1),
        services,
        mounts: args.sandbox_mounts.clone(),
        ..SandboxConfig::default()
    };
    if args.insecure_no_sandbox {
        tracing::warn!(
            "--insecure-no-sandbox: function instances run as this server's user and can read its data dir, admin token and processes"
        );
    }
    let runtime = Runtime::new(RuntimeConfig {
        python: args.python.clone(),
        python_map: args.python_map.iter().cloned().collect(),
        exact_python: args.exact_python,
        layer_packages: args
            .python_layer_packages
            .iter()
            .filter(|p| !p.trim().is_empty())
            .cloned()
            .collect(),
        layer_dir: args.python_layer_dir.clone(),
        sandbox,
        work_dir: data.join("runtime"),
        region: args.region.clone(),
        account_id: args.account_id.clone(),
        max_instances_per_function: args.max_instances,
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        base_env: fnbridge_runtime::host_base_env(),
        ..RuntimeConfig::default()
    });
    match runtime {
        Ok(runtime) => {
            if runtime.sandboxed() && !runtime.memory_cgroups() {
                tracing::warn!(
                    "no memory cgroup available: memory limits use RLIMIT_AS and sampling"
                );
            }
            runtime.prepare_layers();
            Ok(runtime)
        }
        Err(fnbridge_runtime::RuntimeError::Sandbox(why)) => anyhow::bail!(
            "cannot sandbox function instances on this host: {why}. Install bubblewrap and slirp4netns \
             (apt-get install bubblewrap slirp4netns) and run fnbridge as root, or start with \
             --insecure-no-sandbox to run functions unsandboxed"
        ),
        Err(e) => Err(e).context("cannot start the function runtime"),
    }
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are installed now, not on first poll.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// One line on stdout, flushed; a closed or full pipe is ignored.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
