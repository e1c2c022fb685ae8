//! `Runtime`: the entry point. Finds or starts an instance for each invocation, returns it to
//! its pool afterwards, and stops idle, retired and (at shutdown) all instances.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::AbortHandle;

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::instance::{Backend, Host, Instance, Launch, StartFailure, dispose};
use crate::outcome::InvokeOutcome;
use crate::pool::{FunctionPool, Lease};
use crate::python::{self, Interpreters, Layers};
use crate::sandbox::Sandbox;
use crate::spec::{FunctionSpec, Invocation};

/// Function instances for every function of this server. `Send + Sync`; share it as `Arc`.
#[derive(Debug)]
pub struct Runtime {
    host: Host,
    /// One pool per function name. A std mutex: it is held for a map lookup only, never
    /// across an await.
    pools: Mutex<HashMap<String, Arc<FunctionPool>>>,
    /// Distinguishes instance ids of this server run from those of earlier runs.
    boot: u64,
    next_instance: AtomicU64,
    shutting_down: AtomicBool,
    reaper: OnceLock<AbortHandle>,
    this: Weak<Runtime>,
}

impl Runtime {
    /// Installs the bootstrap into `cfg.work_dir` and resolves the Python interpreter (it runs
    /// `python -c` once, so call it at start-up rather than on a hot path).
    pub fn new(cfg: RuntimeConfig) -> Result<Arc<Runtime>, RuntimeError> {
        let bootstrap = python::install_bootstrap(&cfg.work_dir)?;
        let pythons = Interpreters::discover(&cfg, python::FC_MINORS)?;
        let python = pythons.default.executable.clone();
        let sandbox = if cfg.sandbox.enabled {
            let path_var = cfg.base_env.get("PATH").map(String::as_str);
            let sandbox = Sandbox::new(cfg.sandbox.clone(), &cfg.work_dir, path_var)
                .map_err(RuntimeError::Sandbox)?;
            Some(Arc::new(sandbox))
        } else {
            None
        };
        let layers = Layers::new(
            cfg.layer_dir
                .clone()
                .unwrap_or_else(|| cfg.work_dir.clone()),
            cfg.layer_packages.clone(),
        );
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Arc::new_cyclic(|this| Runtime {
            host: Host {
                cfg,
                python,
                pythons,
                sandbox,
                layers,
                bootstrap,
                live: Arc::default(),
                memory: Default::default(),
            },
            pools: Mutex::default(),
            boot,
            next_instance: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            reaper: OnceLock::new(),
            this: this.clone(),
        }))
    }

    /// The default interpreter, after resolution (for `check_python_handler`).
    pub fn python(&self) -> &Path {
        &self.host.python
    }

    /// Whether instances run sandboxed (false only with `--insecure-no-sandbox`).
    pub fn sandboxed(&self) -> bool {
        self.host.sandbox.is_some()
    }

    /// Whether instance memory is limited by a cgroup (else by RLIMIT_AS and sampling).
    pub fn memory_cgroups(&self) -> bool {
        self.host.sandbox.as_ref().is_some_and(|s| s.has_cgroups())
    }

    /// What runs a function of `runtime`: `Python 3.10.13`, or for a version the host lacks
    /// `Python 3.11.7 (Python 3.9 is not installed on this server)`; `None` for custom runtimes.
    /// Errs for a missing version when the operator asked for exact versions, with a message
    /// saying how to add the interpreter. Also starts installing that interpreter's layer.
    pub fn interpreter_for(&self, runtime: &str) -> Result<Option<String>, RuntimeError> {
        if Backend::for_runtime(runtime)? != Backend::Python {
            return Ok(None);
        }
        let choice = self.host.pythons.choose(runtime)?;
        self.host
            .layers
            .ensure(choice.interpreter, self.host.sandbox.clone());
        Ok(Some(choice.describe()))
    }

    /// Starts installing the layer of FC's built-in modules for every interpreter, in the
    /// background (call it once the server is up).
    pub fn prepare_layers(&self) {
        let all =
            std::iter::once(&self.host.pythons.default).chain(self.host.pythons.by_minor.values());
        for it in all {
            self.host.layers.ensure(it, self.host.sandbox.clone());
        }
    }

    /// Installs `code_dir/requirements.txt` (if present) into `code_dir` with the interpreter of
    /// `runtime`, pip running in a sandbox. Returns whether there was one.
    pub async fn install_requirements(
        &self,
        runtime: &str,
        code_dir: &Path,
    ) -> Result<bool, String> {
        let choice = self
            .host
            .pythons
            .choose(runtime)
            .map_err(|e| e.to_string())?;
        python::install_requirements(choice.interpreter, self.host.sandbox.as_deref(), code_dir)
            .await
    }

    /// Runs one invocation on a warm instance of `spec`'s revision, or on a new one. Waits in
    /// line when the function is at `max_instances_per_function`. A function failing is an
    /// `Ok` outcome with `error` set; `Err` means the platform could not run it at all.
    ///
    /// Cancel-safe in the sense that matters: dropping the future kills the instance it was
    /// using, since that instance is left in the middle of a request.
    pub async fn invoke(
        &self,
        spec: &Arc<FunctionSpec>,
        inv: Invocation,
    ) -> Result<InvokeOutcome, RuntimeError> {
        let backend = Backend::for_runtime(&spec.runtime)?;
        self.start_reaper();
        let mut lease = self.lease(spec).await?;
        let mut instance = match lease.take_warm() {
            Some(instance) if instance.is_usable() => instance,
            warm => {
                if let Some(dead) = warm {
                    // Died while idle (a custom runtime's server exited, or went over its
                    // memory): nothing of this invocation ran on it, so start afresh.
                    lease.discard_warm(dead);
                }
                let launch = Launch {
                    host: &self.host,
                    spec,
                    instance_id: self.next_instance_id(),
                    first: &inv,
                };
                match Instance::start(backend, &launch).await {
                    Ok(instance) => {
                        lease.attach(&instance);
                        instance
                    }
                    Err(StartFailure::Platform(e)) => return Err(e),
                    Err(StartFailure::Function(outcome)) => {
                        if self.is_shutting_down() {
                            return Err(RuntimeError::ShuttingDown);
                        }
                        return Ok(*outcome);
                    }
                }
            }
        };
        // An instance started while shutdown ran may have missed its kill.
        if self.is_shutting_down() {
            return Err(RuntimeError::ShuttingDown);
        }
        let served = instance.invoke(&inv).await;
        if !served.reusable && self.is_shutting_down() {
            return Err(RuntimeError::ShuttingDown);
        }
        lease.give_back(instance, served.reusable);
        Ok(served.outcome)
    }

    /// Stops every instance of a function (it was updated or deleted). Busy instances finish
    /// their invocation and are then stopped; later invocations start afresh. Instances with a
    /// PreStop hook run it first, in the background.
    pub fn retire(&self, function_name: &str) {
        let pool = self.lock_pools().remove(function_name);
        if let Some(pool) = pool {
            dispose(pool.close());
        }
    }

    /// Stops idle instances past `idle_timeout` now (the background reaper calls this
    /// periodically), after their PreStop hook if they have one. Returns how many were stopped.
    pub fn reap_idle(&self) -> usize {
        let cutoff = Instant::now().checked_sub(self.host.cfg.idle_timeout);
        let Some(cutoff) = cutoff else { return 0 };
        let mut expired = Vec::new();
        self.lock_pools().retain(|_, pool| {
            let (instances, unused) = pool.reap(cutoff);
            expired.extend(instances);
            !unused
        });
        // Killed outside the lock.
        let n = expired.len();
        dispose(expired);
        n
    }

    /// Instances (idle, busy or starting) a function has right now.
    pub fn instance_count(&self, function_name: &str) -> usize {
        let pool = self.lock_pools().get(function_name).cloned();
        pool.map_or(0, |p| p.instance_count())
    }

    /// Kills every instance, busy or idle, and refuses further invocations. Idle instances with
    /// a PreStop hook run it first (all at once, each within its timeout); busy ones are killed
    /// at once, as are those still running a PreStop hook they started earlier.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(reaper) = self.reaper.get() {
            reaper.abort();
        }
        let pools: Vec<_> = self.lock_pools().drain().map(|(_, p)| p).collect();
        let idle: Vec<Instance> = pools.iter().flat_map(|p| p.close()).collect();
        // Busy instances belong to their invocations; kill them by process group. Idle ones
        // with a PreStop hook are spared until it has run.
        let spared: HashSet<i32> = idle
            .iter()
            .filter(|i| i.has_pre_stop())
            .map(Instance::pgid)
            .collect();
        self.host.live.kill_all_but(&spared);
        let mut stopping = tokio::task::JoinSet::new();
        for instance in idle {
            stopping.spawn(instance.stop());
        }
        while stopping.join_next().await.is_some() {}
        // Whatever started meanwhile.
        self.host.live.kill_all();
    }

    async fn lease(&self, spec: &FunctionSpec) -> Result<Lease, RuntimeError> {
        loop {
            if self.is_shutting_down() {
                return Err(RuntimeError::ShuttingDown);
            }
            let pool = {
                let mut pools = self.lock_pools();
                match pools.get(&spec.function_name) {
                    Some(pool) => Arc::clone(pool),
                    None => {
                        let pool = FunctionPool::new(self.host.cfg.max_instances_per_function);
                        pools.insert(spec.function_name.clone(), Arc::clone(&pool));
                        pool
                    }
                }
            };
            // `None`: retired or reaped while we waited; the next lookup finds the new pool.
            if let Some(lease) = pool.lease(&spec.revision).await {
                return Ok(lease);
            }
        }
    }

    fn start_reaper(&self) {
        self.reaper.get_or_init(|| {
            let this = self.this.clone();
            let every = (self.host.cfg.idle_timeout / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(30));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(runtime) = this.upgrade() else { break };
                    let reaped = runtime.reap_idle();
                    if reaped > 0 {
                        tracing::debug!(reaped, "stopped idle instances");
                    }
                }
            })
            .abort_handle()
        });
    }

    fn next_instance_id(&self) -> String {
        let n = self.next_instance.fetch_add(1, Ordering::Relaxed);
        format!("c-{:08x}-{n:06}", self.boot)
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    fn lock_pools(&self) -> MutexGuard<'_, HashMap<String, Arc<FunctionPool>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(reaper) = self.reaper.get() {
            reaper.abort();
        }
    }
}
