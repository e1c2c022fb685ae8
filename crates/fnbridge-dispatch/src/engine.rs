//! The `Dispatcher`: registry caches (functions, triggers, async policies), event ingest with
//! matching and durable fan-out, and the scheduler that runs tasks with retries.
//!
//! Cancellation contract: a task taken off the ready queue runs its attempt to the end and
//! queues the record of it; `shutdown` stops taking new tasks, waits (bounded) for running ones,
//! and leaves everything else `Enqueued`/`Retrying` in the store, where the next start finds it.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fnbridge_auth::Auth;
use fnbridge_event::envelope::joined_texts;
use fnbridge_event::{
    AsyncConfig, BusEvent, CustomRuntimeConfig, Envelope, EventSource, FunctionConfig,
    TriggerConfig, TriggerType,
};
use fnbridge_pattern::{Matcher, Pattern, Serialized};
use fnbridge_runtime::{
    Credentials, CustomRuntime, FunctionSpec, HealthCheck, Hook, Invocation, InvokeOutcome, Runtime,
};
use fnbridge_store::registry::{Alias, Version};
use fnbridge_store::retention::Retention;
use fnbridge_store::{NewTask, Store, StoreError, Tx, now_ms};
use rand::Rng;
use serde::Serialize;
use tokio::sync::Notify;

use crate::ids;
use crate::policy::{AsyncPolicy, Backoff, PushPolicy};
use crate::scheduler::{Job, Limits, Scheduler, Window};
use fnbridge_event::eventbridge::{EventSchema, RunOptions};

/// Settings the binary passes in.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub region: String,
    pub account_id: String,
    pub backoff: Backoff,
    /// The scheduler's window and running limits.
    pub limits: Limits,
    /// Most open tasks (queued or waiting to retry) before ingest and async invocations are
    /// refused with `Backlogged`.
    pub max_backlog: u64,
    /// What finished work to keep, and how often to prune the rest.
    pub retention: Retention,
    pub prune_every: Duration,
    /// Where function code is unpacked: `{code_root}/{function}/{revision}`.
    pub code_root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("function '{0}' does not exist")]
    FunctionNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    QualifierNotFound(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(
        "{open} deliveries are waiting, the most this server queues (--max-backlog); retry later"
    )]
    Backlogged { open: u64 },
    #[error("runtime error: {0}")]
    Runtime(String),
    #[error("event bus '{0}' does not exist")]
    BusNotFound(String),
}

/// One trigger's answer for `Dispatcher::explain`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explained {
    pub function_name: String,
    pub trigger_name: String,
    pub trigger_type: &'static str,
    pub matched: bool,
    /// The first field that failed, when it did not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failed_field: Option<String>,
}

/// What ingest reports for one accepted event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestedEvent {
    pub event_id: String,
    pub sequence: i64,
    /// One task per matched trigger.
    pub task_ids: Vec<String>,
}

/// Counters, for monitoring, tests and the benchmarks.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    /// Open tasks in the store.
    pub open: u64,
    /// Attempts running now.
    pub running: u64,
    /// Tasks in the scheduler's window, and their payload bytes.
    pub resident: u64,
    pub resident_bytes: u64,
}

pub(crate) struct FunctionEntry {
    pub(crate) config: FunctionConfig,
    pub(crate) spec: Arc<FunctionSpec>,
}

#[derive(Default)]
struct Registry {
    functions: HashMap<String, Arc<FunctionEntry>>,
    versions: HashMap<(String, u64), Arc<FunctionEntry>>,
    aliases: HashMap<(String, String), Alias>,
    triggers: HashMap<u64, Arc<TriggerConfig>>,
    policies: HashMap<(String, String), AsyncPolicy>,
}

pub(crate) struct Inner {
    pub(crate) cfg: DispatchConfig,
    pub(crate) store: Store,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) matcher: Matcher,
    registry: RwLock<Registry>,
    /// The window onto the store's open tasks (see `scheduler.rs`).
    pub(crate) sched: Scheduler,
    /// Wakes the scheduling loop: new work, a free slot, a refill to plan.
    pub(crate) wake: Notify,
    /// Open tasks in the store, for the backlog limit.
    pub(crate) open: AtomicU64,
    pub(crate) running: Mutex<HashMap<String, i64>>,
    /// Held by the registry service from before a write until the caches show it.
    registry_order: tokio::sync::Mutex<()>,
    pub(crate) stopping: AtomicBool,
    /// Ends the background loops (scheduling, retention) at shutdown.
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    /// Issues the STS credentials of a function's role.
    auth: Auth,
    pub(crate) attempts: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// The archives (bus and pattern) every committed CloudEvent is checked against.
    pub(crate) archives: crate::archive::Archives,
}

/// The delivery engine. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) inner: Arc<Inner>,
}

/// Which trigger types an event source may fire: CDN events fire `cdn_events` triggers, OSS
/// events (ingested or from the object store) `oss` triggers, COS records `cos` triggers. The
/// patterns alone would not keep them apart: a pattern names fields, not the source kind.
fn is_trigger_for(t: TriggerType, source: EventSource) -> bool {
    matches!(
        (t, source),
        (TriggerType::CdnEvents, EventSource::Cdn)
            | (TriggerType::Oss, EventSource::Oss)
            | (TriggerType::Cos, EventSource::Cos)
            | (TriggerType::EventBridge, EventSource::CloudEvent)
    )
}

/// What a task of a built-in source's event delivers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The source's own payload ([`BusEvent::payload`]).
    Native,
    /// The S3 `Records` 2.1 form (`"payloadFormat": "s3"`).
    S3,
    /// A CloudEvent's `data` only (`eventSchema: RawData`).
    RawData,
}

/// The retry policy an async config sets.
pub fn policy_from_config(c: &AsyncConfig) -> AsyncPolicy {
    AsyncPolicy {
        max_retries: c.max_async_retry_attempts,
        max_age: Duration::from_secs(c.max_async_event_age_in_seconds),
        on_success: c
            .destination_config
            .on_success
            .as_ref()
            .map(|d| d.destination.clone()),
        on_failure: c
            .destination_config
            .on_failure
            .as_ref()
            .map(|d| d.destination.clone()),
    }
}

impl Dispatcher {
    /// Builds the dispatcher from the store's registry and resumes every open task. `auth`
    /// issues the credentials of functions with a role.
    pub async fn start(
        cfg: DispatchConfig,
        store: Store,
        runtime: Arc<Runtime>,
        auth: Auth,
    ) -> Result<Dispatcher, DispatchError> {
        let inner = Arc::new(Inner {
            sched: Scheduler::new(cfg.limits),
            wake: Notify::new(),
            open: AtomicU64::new(0),
            stop: tokio::sync::watch::Sender::new(false),
            cfg,
            store: store.clone(),
            runtime,
            matcher: Matcher::new(),
            registry: RwLock::new(Registry::default()),
            running: Mutex::new(HashMap::new()),
            registry_order: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            auth,
            attempts: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            archives: RwLock::new(Vec::new()),
        });
        let d = Dispatcher { inner };
        // The registry is loaded whole; open tasks are not: the scheduler learns which functions
        // have some and refills its window from the store, so start-up does not grow with the
        // backlog.
        let (functions, versions, aliases, triggers, configs, open, backlogged, blocks, archives) =
            store
                .read(|c| {
                    Ok((
                        c.list_functions("", "", usize::MAX >> 1)?,
                        c.all_versions()?,
                        c.all_aliases()?,
                        c.all_triggers()?,
                        c.all_async_configs()?,
                        c.count_open()?,
                        c.functions_with_open_tasks()?,
                        c.all_blocks()?,
                        c.list_archives()?,
                    ))
                })
                .await?;
        // Blocked triggers stay blocked across a restart: their holders are open tasks.
        for b in blocks {
            d.inner
                .sched
                .block(&Arc::from(b.function_name), &b.trigger_name, b.task_row);
        }
        *d.inner.archives.write().unwrap_or_else(|p| p.into_inner()) = archives
            .iter()
            .filter_map(crate::archive::ArchiveRule::new)
            .collect();
        for f in functions {
            d.cache_function(f);
        }
        for v in &versions {
            d.cache_version(v);
        }
        for (f, a) in aliases {
            d.cache_alias(&f, a);
        }
        let mut compiled = Vec::with_capacity(triggers.len());
        for st in triggers {
            match d.compile(&st.trigger) {
                Ok(p) => compiled.push((st.id, p, st.trigger)),
                Err(e) => {
                    tracing::error!(trigger = %st.trigger.trigger_name, error = %e, "stored trigger no longer compiles; skipped")
                }
            }
        }
        {
            let mut reg = d.inner.registry.write().unwrap_or_else(|p| p.into_inner());
            for (id, _, t) in &compiled {
                reg.triggers.insert(*id, Arc::new(t.clone()));
            }
        }
        for (_, _, t) in &compiled {
            d.set_window(t, true);
        }
        d.inner
            .matcher
            .insert_many(compiled.into_iter().map(|(id, p, _)| (id, p)));
        for (f, q, v) in configs {
            d.cache_async_config(&f, &q, &v);
        }
        d.inner.open.store(open, Ordering::Relaxed);
        for f in &backlogged {
            d.inner.sched.mark_spilled(f);
        }
        if open > 0 {
            tracing::info!(
                tasks = open,
                functions = backlogged.len(),
                "resuming pending deliveries"
            );
        }
        d.remove_orphaned_code().await;
        tokio::spawn(crate::delivery::run_loop(d.inner.clone()));
        tokio::spawn(crate::delivery::retention_loop(d.inner.clone()));
        d.resume_replays().await?;
        Ok(d)
    }

    /// Serializes registry mutations so caches change in commit order (see `registry.rs`).
    pub(crate) async fn registry_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.registry_order.lock().await
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.inner.cfg
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        let (resident, resident_bytes) = i.sched.resident();
        Stats {
            attempts: i.attempts.load(Ordering::Relaxed),
            succeeded: i.succeeded.load(Ordering::Relaxed),
            failed_attempts: i.failed_attempts.load(Ordering::Relaxed),
            dead_lettered: i.dead_lettered.load(Ordering::Relaxed),
            open: i.open.load(Ordering::Relaxed),
            running: i.sched.running() as u64,
            resident: resident as u64,
            resident_bytes: resident_bytes as u64,
        }
    }

    /// Removes code directories no function or version uses: left by a deploy that was
    /// interrupted between unpacking and storing, or by a crash during a delete.
    async fn remove_orphaned_code(&self) {
        let used: std::collections::HashSet<PathBuf> = {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|p| p.into_inner());
            reg.functions
                .values()
                .chain(reg.versions.values())
                .map(|e| self.code_dir(&e.config.function_name, &e.config.revision))
                .collect()
        };
        let root = self.inner.cfg.code_root.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let Ok(functions) = std::fs::read_dir(&root) else {
                return 0;
            };
            for f in functions.flatten() {
                let Ok(revisions) = std::fs::read_dir(f.path()) else {
                    continue;
                };
                for r in revisions.flatten() {
                    if !used.contains(&r.path()) && std::fs::remove_dir_all(r.path()).is_ok() {
                        removed += 1;
                    }
                }
                let _ = std::fs::remove_dir(f.path()); // only if now empty
            }
            removed
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(
                directories = removed,
                "removed code no function or version uses"
            );
        }
    }

    /// Refuses new work when the backlog is at its limit: an honest 503, never an
    /// acknowledgement the server cannot keep.
    pub(crate) fn check_backlog(&self, adding: u64) -> Result<(), DispatchError> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(DispatchError::ShuttingDown);
        }
        let open = self.inner.open.load(Ordering::Relaxed);
        if adding > 0 && open + adding > self.inner.cfg.max_backlog {
            return Err(DispatchError::Backlogged { open });
        }
        Ok(())
    }

    /// Puts just-committed tasks into the scheduler's window (or leaves them in the store).
    pub(crate) fn admit(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let now = now_ms();
        self.inner
            .open
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        for j in jobs {
            self.inner.sched.admit(j, now);
        }
        self.inner.wake.notify_one();
    }

    /// Compiles a trigger's config to its pattern (the one matching path for every type).
    pub fn compile(&self, t: &TriggerConfig) -> Result<Pattern, DispatchError> {
        fnbridge_pattern::compile::compile(
            t.trigger_type.as_str(),
            &t.trigger_config,
            t.source_arn.as_deref(),
        )
        .map(|c| c.pattern)
        .map_err(|e| DispatchError::Invalid(e.to_string()))
    }

    /// For every trigger, whether `event` (one event as a trigger type receives it, e.g. a
    /// CloudEvent or a native OSS event) matches its pattern and, if not, the first field that
    /// failed (`Pattern::explain`). Sorted by function and trigger name.
    pub fn explain(&self, event: &[u8]) -> Result<Vec<Explained>, DispatchError> {
        let triggers: Vec<Arc<TriggerConfig>> = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .triggers
            .values()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(triggers.len());
        for t in triggers {
            let pattern = self.compile(&t)?;
            let failed = pattern
                .explain(event)
                .map_err(|e| DispatchError::Invalid(format!("event: {e}")))?;
            out.push(Explained {
                function_name: t.function_name.clone(),
                trigger_name: t.trigger_name.clone(),
                trigger_type: t.trigger_type.as_str(),
                matched: failed.is_none(),
                first_failed_field: failed,
            });
        }
        out.sort_by(|a, b| {
            (&a.function_name, &a.trigger_name).cmp(&(&b.function_name, &b.trigger_name))
        });
        Ok(out)
    }

    // ---- registry caches: written only by the registry service (`registry.rs`), in commit order ----

    /// The code directory of a function revision.
    pub fn code_dir(&self, function: &str, revision: &str) -> PathBuf {
        self.inner.cfg.code_root.join(function).join(revision)
    }

    /// Builds the runtime spec of a function snapshot. The pool key (`revision`) covers code
    /// and configuration, so a version published from an unchanged LATEST shares its warm
    /// instances, and any change gets fresh ones.
    fn entry(&self, config: FunctionConfig) -> Arc<FunctionEntry> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&config)
            .unwrap_or_default()
            .hash(&mut h);
        let spec = Arc::new(FunctionSpec {
            function_name: config.function_name.clone(),
            revision: format!("{}-{:016x}", config.revision, h.finish()),
            runtime: config.runtime.as_str().to_owned(),
            handler: config.handler.clone(),
            code_dir: self.code_dir(&config.function_name, &config.revision),
            memory_mb: config.memory_size,
            timeout: Duration::from_secs(config.timeout as u64),
            env: config.environment_variables.clone(),
            initializer: config.initializer.as_ref().map(|h| Hook {
                handler: h.handler.clone(),
                timeout: Duration::from_secs(h.timeout as u64),
            }),
            instance_concurrency: config.instance_concurrency,
            pre_stop: config.pre_stop.as_ref().map(|h| Hook {
                handler: h.handler.clone(),
                timeout: Duration::from_secs(h.timeout as u64),
            }),
            custom: config.custom_runtime_config.as_ref().map(custom_runtime),
            credentials_in_env: config.credentials_in_env(),
            credentials_in_request: config.credentials_in_request(),
        });
        Arc::new(FunctionEntry { config, spec })
    }

    /// Installs LATEST of a function. Instances of the previous configuration are not reused
    /// (their pool key differs) and are reaped when idle.
    pub(crate) fn cache_function(&self, config: FunctionConfig) {
        let name = config.function_name.clone();
        let e = self.entry(config);
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .functions
            .insert(name, e);
    }

    pub(crate) fn cache_version(&self, v: &Version) {
        let e = self.entry(v.config.clone());
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .versions
            .insert((v.config.function_name.clone(), v.version_id), e);
    }

    pub(crate) fn uncache_version(&self, function: &str, version: u64) {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .versions
            .remove(&(function.to_string(), version));
    }

    /// The configuration of one version.
    pub fn version(&self, function: &str, version: u64) -> Option<FunctionConfig> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .versions
            .get(&(function.to_string(), version))
            .map(|e| e.config.clone())
    }

    /// The configuration of LATEST or of a published version of `function` whose code is
    /// `revision`, if one still is.
    pub fn has_revision(&self, function: &str, revision: &str) -> Option<FunctionConfig> {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner());
        reg.functions
            .get(function)
            .into_iter()
            .chain(
                reg.versions
                    .iter()
                    .filter(|((f, _), _)| f == function)
                    .map(|(_, e)| e),
            )
            .find(|e| e.config.revision == revision)
            .map(|e| e.config.clone())
    }

    pub(crate) fn cache_alias(&self, function: &str, a: Alias) {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .aliases
            .insert((function.to_string(), a.alias_name.clone()), a);
    }

    pub(crate) fn uncache_alias(&self, function: &str, name: &str) {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .aliases
            .remove(&(function.to_string(), name.to_string()));
    }

    pub fn alias(&self, function: &str, name: &str) -> Option<Alias> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .aliases
            .get(&(function.to_string(), name.to_string()))
            .cloned()
    }

    /// Resolves a qualifier (`LATEST`, a version id, an alias) to the function snapshot to run
    /// and the version id reported to it (`""` for LATEST). Alias weights are applied here, at
    /// invocation time.
    pub fn resolve(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(FunctionConfig, String), DispatchError> {
        self.resolve_entry(function, qualifier)
            .map(|(e, v)| (e.config.clone(), v))
    }

    pub(crate) fn resolve_entry(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(Arc<FunctionEntry>, String), DispatchError> {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner());
        if !reg.functions.contains_key(function) {
            return Err(DispatchError::FunctionNotFound(function.to_string()));
        }
        let version = |v: u64| {
            reg.versions
                .get(&(function.to_string(), v))
                .cloned()
                .map(|e| (e, v.to_string()))
                .ok_or_else(|| {
                    DispatchError::QualifierNotFound(format!(
                        "version '{v}' of function '{function}' does not exist"
                    ))
                })
        };
        if qualifier.is_empty() || qualifier == "LATEST" {
            return Ok((reg.functions[function].clone(), String::new()));
        }
        if let Ok(v) = qualifier.parse::<u64>() {
            return version(v);
        }
        let Some(alias) = reg
            .aliases
            .get(&(function.to_string(), qualifier.to_string()))
        else {
            return Err(DispatchError::QualifierNotFound(format!(
                "alias '{qualifier}' of function '{function}' does not exist"
            )));
        };
        let mut pick = alias.version_id;
        if !alias.additional_version_weight.is_empty() {
            let r: f64 = rand::rng().random();
            let mut acc = 0.0;
            for (v, w) in &alias.additional_version_weight {
                acc += w;
                if r < acc {
                    pick = *v;
                    break;
                }
            }
        }
        version(pick)
    }

    pub(crate) fn uncache_function(&self, name: &str) {
        let mut reg = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner());
        reg.functions.remove(name);
        reg.versions.retain(|(f, _), _| f != name);
        reg.aliases.retain(|(f, _), _| f != name);
        reg.policies.retain(|(f, _), _| f != name);
        drop(reg);
        self.inner.runtime.retire(name);
    }

    pub fn function(&self, name: &str) -> Option<FunctionConfig> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .functions
            .get(name)
            .map(|e| e.config.clone())
    }

    /// Tells the scheduler a trigger's batch window (`event-streaming`), or that it has none.
    fn set_window(&self, t: &TriggerConfig, present: bool) {
        let window = (present && t.trigger_type == TriggerType::EventBridge)
            .then(|| RunOptions::from_config(&t.trigger_config).batch)
            .flatten()
            .map(|b| Window {
                count: b.count as usize,
                wait_ms: (b.time_s * 1000) as i64,
            });
        self.inner
            .sched
            .set_window(&t.function_name, &t.trigger_name, window);
    }

    pub(crate) fn cache_trigger(&self, id: u64, trigger: TriggerConfig, pattern: &Pattern) {
        self.set_window(&trigger, true);
        // Registry first, then the index: a match can only name a trigger the registry knows.
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .triggers
            .insert(id, Arc::new(trigger));
        self.inner.matcher.insert(id, pattern);
    }

    pub(crate) fn uncache_trigger(&self, id: u64) {
        self.inner.matcher.remove(id);
        let gone = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .triggers
            .remove(&id);
        if let Some(t) = gone {
            self.set_window(&t, false);
        }
    }

    pub(crate) fn cache_async_config(&self, function: &str, qualifier: &str, v: &AsyncConfig) {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .policies
            .insert(
                (function.to_string(), qualifier.to_string()),
                policy_from_config(v),
            );
    }

    pub(crate) fn uncache_async_config(&self, function: &str, qualifier: &str) {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .policies
            .remove(&(function.to_string(), qualifier.to_string()));
    }

    /// The run options of the `eventbridge` trigger `trigger` of `function` whose pushes are
    /// synchronous (`asyncInvocationType` false, the default); `None` for any other task. An
    /// asynchronous push is done once enqueued, so the function's async config governs it.
    /// Scans the triggers: asked only after a failed attempt.
    fn push_options(&self, function: &str, trigger: Option<&str>) -> Option<RunOptions> {
        let trigger = trigger?;
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner());
        reg.triggers
            .values()
            .find(|t| {
                t.trigger_type == TriggerType::EventBridge
                    && t.function_name == function
                    && t.trigger_name == trigger
            })
            .map(|t| RunOptions::from_config(&t.trigger_config))
            .filter(|o| !o.asynchronous)
    }

    /// The push retry policy of the `eventbridge` trigger `trigger` of `function`, if it is one
    /// with synchronous pushes (else the function's async config decides).
    pub(crate) fn push_policy(&self, function: &str, trigger: Option<&str>) -> Option<PushPolicy> {
        self.push_options(function, trigger)
            .map(|o| PushPolicy::from_options(&o))
    }

    /// The bus the `eventbridge` trigger `trigger` of `function` dead-letters to, if any.
    pub(crate) fn dead_letter_bus(&self, function: &str, trigger: Option<&str>) -> Option<String> {
        self.push_options(function, trigger)
            .and_then(|o| o.dead_letter_bus)
    }

    pub(crate) fn policy(&self, function: &str, qualifier: &str) -> AsyncPolicy {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .policies
            .get(&(function.to_string(), qualifier.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// When a task is running right now, the time its current attempt started.
    pub fn running_since(&self, task_id: &str) -> Option<i64> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(task_id)
            .copied()
    }

    // ---- ingest ----

    /// Reads the envelope `body` and stores every event and one task per matched trigger in one
    /// durable commit, then queues the tasks. Returns only after the commit is on disk.
    ///
    /// Each event is validated, matched and kept from its original text in one pass over its
    /// bytes (`Envelope::parse_matching`): the text stored and delivered is the text received,
    /// plus an id spliced in when the sender left it out.
    pub async fn ingest(&self, body: &[u8]) -> Result<Vec<IngestedEvent>, DispatchError> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(DispatchError::ShuttingDown);
        }
        let mut env = Envelope::parse_matching(body, &self.inner.matcher)
            .map_err(|e| DispatchError::Invalid(e.to_string()))?;
        let now = now_ms();
        struct Planned {
            event_id: String,
            source: &'static str,
            name: &'static str,
            /// Where the event's text is in the request's joined texts (stored from there).
            text: Range<usize>,
            /// `{"events":[event]}`, which every task of the event shares; built only for an
            /// event that has tasks (most match no trigger).
            payload: Option<Bytes>,
            tasks: Vec<NewTask>,
        }
        let mut planned = Vec::with_capacity(env.events.len());
        for ev in &mut env.events {
            if ev.ensure_id(ids::uuid_like) {
                // The id is part of the text now, and a pattern may name its path.
                ev.matched = self
                    .inner
                    .matcher
                    .matches(ev.text().as_bytes())
                    .map_err(|e| DispatchError::Invalid(format!("event cannot be matched: {e}")))?;
            }
        }
        // Every event's text as stored (with any id spliced in), in one string for the request.
        let (texts, spans) = joined_texts(&env.events);
        {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for (ev, text) in env.events.into_iter().zip(spans) {
                let mut tasks = Vec::new();
                for id in &ev.matched {
                    let Some(t) = reg.triggers.get(id) else {
                        continue;
                    };
                    if !is_trigger_for(t.trigger_type, ev.source) {
                        continue;
                    }
                    tasks.push(NewTask {
                        task_id: ids::request_id(),
                        function_name: t.function_name.clone(),
                        qualifier: t.qualifier.clone(),
                        trigger_name: Some(t.trigger_name.clone()),
                        event_seq: None,
                        // Stored once, with the event: every task refers to it.
                        payload: None,
                        created_ms: now,
                        hops: 0,
                    });
                }
                planned.push(Planned {
                    event_id: ev.id().map(|c| c.into_owned()).unwrap_or_default(),
                    source: ev.source.wire_name(),
                    name: ev.name,
                    text,
                    payload: (!tasks.is_empty()).then(|| Bytes::from(ev.payload())),
                    tasks,
                });
            }
        }
        self.check_backlog(planned.iter().map(|p| p.tasks.len() as u64).sum())?;
        let (receipts, jobs) = self
            .inner
            .store
            .write(move |c| {
                let mut receipts = Vec::with_capacity(planned.len());
                let mut jobs = Vec::new();
                for p in planned {
                    // The ranges are where `joined_texts` put each text: always `str` bounds.
                    let text = &texts[p.text];
                    let seq = c.append_event(&p.event_id, p.source, p.name, now, text)?;
                    let payload = p.payload.unwrap_or_default();
                    let mut task_ids = Vec::with_capacity(p.tasks.len());
                    for mut t in p.tasks {
                        t.event_seq = Some(seq);
                        let row = c.insert_task(&t)?;
                        task_ids.push(t.task_id.clone());
                        jobs.push(Job::new(row, t, payload.clone()));
                    }
                    receipts.push(IngestedEvent {
                        event_id: p.event_id,
                        sequence: seq,
                        task_ids,
                    });
                }
                Ok((receipts, jobs))
            })
            .await?;
        self.admit(jobs);
        Ok(receipts)
    }

    /// Runs a source's state change `f` and records the events it returns in the same store
    /// transaction: each event is matched against the triggers its source may fire, and the
    /// event and one task per match are written beside `f`'s own changes, so a change commits
    /// with its events or not at all (the object store's write path). Returns `f`'s value once
    /// the commit is durable; the tasks are then queued.
    ///
    /// Matching runs inside the write, against the triggers known at that moment: a trigger
    /// created concurrently fires for the changes committed after it.
    pub async fn commit_with_events<T, F>(&self, f: F) -> Result<T, DispatchError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<(T, Vec<BusEvent>), StoreError> + Send + 'static,
    {
        // At the backlog limit nothing is accepted, so no change is left without its deliveries.
        self.check_backlog(1)?;
        let inner = self.inner.clone();
        let (value, jobs) = self
            .inner
            .store
            .write(move |c| {
                let (value, events) = f(c)?;
                let jobs = plan_bus_events(&inner, c, events)?;
                Ok((value, jobs))
            })
            .await?;
        self.admit(jobs);
        Ok(value)
    }

    /// Records bus events that were serialized and matched before the write (PutEvents: the
    /// CPU work stays off the store's writer), each with its tasks and archive copies, in one
    /// durable commit; the tasks are then queued. A trigger created after the match fires for
    /// later events, as with ingest.
    pub(crate) async fn commit_matched(
        &self,
        events: Vec<MatchedEvent>,
    ) -> Result<(), DispatchError> {
        self.check_backlog(1)?;
        let inner = self.inner.clone();
        let jobs = self
            .inner
            .store
            .write(move |c| {
                let now = now_ms();
                let mut jobs = Vec::new();
                for m in events {
                    plan_matched(&inner, c, m, &[], now, &mut jobs)?;
                }
                Ok(jobs)
            })
            .await?;
        self.admit(jobs);
        Ok(())
    }

    /// Accepts an asynchronous invocation: durable when this returns.
    pub async fn enqueue(
        &self,
        function: &str,
        qualifier: &str,
        payload: Bytes,
        task_id: Option<String>,
    ) -> Result<String, DispatchError> {
        self.check_backlog(1)?;
        let task = NewTask {
            task_id: task_id.unwrap_or_else(ids::request_id),
            function_name: function.to_string(),
            qualifier: qualifier.to_string(),
            trigger_name: None,
            event_seq: None,
            payload: Some(payload.to_vec()),
            created_ms: now_ms(),
            hops: 0,
        };
        let t = task.clone();
        let row = self.inner.store.write(move |c| c.insert_task(&t)).await?;
        let id = task.task_id.clone();
        self.admit(vec![Job::new(row, task, payload)]);
        Ok(id)
    }

    /// Re-delivers a dead-lettered entry as a new task and removes it from the queue, in one
    /// commit. Returns the new task id.
    pub async fn redrive(&self, dlq_id: i64) -> Result<Option<String>, DispatchError> {
        self.check_backlog(1)?;
        let now = now_ms();
        let new_id = ids::request_id();
        let nid = new_id.clone();
        let job = self
            .inner
            .store
            .write(move |c| {
                let Some(e) = c.get_dlq(dlq_id)? else {
                    return Ok(None);
                };
                let t = NewTask {
                    task_id: nid,
                    function_name: e.function_name,
                    qualifier: e.qualifier,
                    trigger_name: e.trigger_name,
                    event_seq: e.event_seq,
                    // Inline: the redriven task must not depend on the event being kept.
                    payload: Some(e.payload.clone()),
                    created_ms: now,
                    hops: 0,
                };
                let row = c.insert_task(&t)?;
                c.delete_dlq(dlq_id)?;
                Ok(Some(Job::new(row, t, Bytes::from(e.payload))))
            })
            .await?;
        Ok(job.map(|j| {
            self.admit(vec![j]);
            new_id
        }))
    }

    /// Runs a function synchronously (no task record; FC keeps none for sync calls).
    pub async fn invoke_sync(
        &self,
        function: &str,
        qualifier: &str,
        payload: Bytes,
    ) -> Result<(String, InvokeOutcome), DispatchError> {
        let (entry, version_id) = self.resolve_entry(function, qualifier)?;
        let request_id = ids::request_id();
        let inv = self
            .invocation(&entry, &request_id, qualifier, &version_id, payload)
            .await;
        let out = self
            .inner
            .runtime
            .invoke(&entry.spec, inv)
            .await
            .map_err(|e| DispatchError::Runtime(e.to_string()))?;
        let (f, rid, q, log) = (
            function.to_string(),
            request_id.clone(),
            qualifier.to_string(),
            out.log.clone(),
        );
        self.inner
            .store
            .write_detached(move |c| c.append_log(&f, &rid, &q, now_ms(), &log));
        Ok((request_id, out))
    }

    /// One call of a function snapshot, with the STS credentials of its role: a function
    /// without a role (or whose role names no role of this account) gets none, as on FC.
    pub(crate) async fn invocation(
        &self,
        entry: &FunctionEntry,
        request_id: &str,
        qualifier: &str,
        version_id: &str,
        payload: Bytes,
    ) -> Invocation {
        let credentials = match entry.config.role.as_deref() {
            Some(arn) if !arn.is_empty() => self
                .inner
                .auth
                .credentials_for(arn)
                .await
                .map(|c| Credentials {
                    access_key_id: c.access_key_id,
                    access_key_secret: c.access_key_secret,
                    security_token: c.security_token,
                })
                .unwrap_or_default(),
            _ => Credentials::default(),
        };
        Invocation {
            request_id: request_id.to_string(),
            payload,
            qualifier: qualifier.to_string(),
            version_id: version_id.to_string(),
            credentials,
        }
    }

    /// Stops taking new work and ends the background loops, waits up to `grace` for running
    /// attempts, flushes their records, and stops every function instance. Unfinished tasks
    /// stay open in the store.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.sched.stop();
        self.inner.stop.send_replace(true);
        self.inner.wake.notify_one();
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.sched.running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A write after the attempt records commits only once they have: a flush barrier.
        let _ = self.inner.store.write(|_| Ok(())).await;
        self.inner.runtime.shutdown().await;
    }
}

/// The runtime's settings from a function's `customRuntimeConfig`; absent fields take FC's
/// defaults.
fn custom_runtime(c: &CustomRuntimeConfig) -> CustomRuntime {
    let d = CustomRuntime::default();
    let health_check = c.health_check_config.as_ref().map(|h| {
        let hd = HealthCheck::default();
        let secs =
            |v: Option<u32>, d: Duration| v.map(|s| Duration::from_secs(s.into())).unwrap_or(d);
        HealthCheck {
            http_get_url: h.http_get_url.clone().unwrap_or(hd.http_get_url),
            initial_delay: secs(h.initial_delay_seconds, hd.initial_delay),
            period: secs(h.period_seconds, hd.period),
            timeout: secs(h.timeout_seconds, hd.timeout),
            failure_threshold: h.failure_threshold.unwrap_or(hd.failure_threshold),
            success_threshold: h.success_threshold.unwrap_or(hd.success_threshold),
        }
    });
    CustomRuntime {
        command: c.command.clone(),
        args: c.args.clone(),
        port: c.port.unwrap_or(d.port),
        health_check,
    }
}

/// Inside a write transaction: matches each bus event, appends it to the event log (an OSS event
/// always, another only when a trigger wants it) and inserts its tasks. Returns the jobs to admit
/// once the transaction has committed.
pub(crate) fn plan_bus_events(
    inner: &Inner,
    c: &dyn Tx,
    events: Vec<BusEvent>,
) -> Result<Vec<Job>, StoreError> {
    plan_bus_events_for(inner, c, events, &[])
}

/// [`plan_bus_events`] for the `eventbridge` triggers named in `rules` (`function/trigger`)
/// only, or every trigger when `rules` is empty (a replay into chosen rules). A CloudEvent that
/// is not a replay is also copied into each archive of its bus whose pattern it matches.
pub(crate) fn plan_bus_events_for(
    inner: &Inner,
    c: &dyn Tx,
    events: Vec<BusEvent>,
    rules: &[String],
) -> Result<Vec<Job>, StoreError> {
    let now = now_ms();
    let mut jobs = Vec::new();
    for ev in events {
        let text = Serialized::from_map(&ev.body);
        // An object-store event always parses; a failure would be a bug, and
        // skipping its deliveries is better than refusing the change.
        let matched = inner.matcher.matches_serialized(&text).unwrap_or_else(|e| {
            tracing::error!(error = %e, "object event cannot be matched");
            Vec::new()
        });
        let body = text.into_string();
        plan_matched(
            inner,
            c,
            MatchedEvent { ev, body, matched },
            rules,
            now,
            &mut jobs,
        )?;
    }
    Ok(jobs)
}

/// A bus event already serialized (its stored text) and matched against the triggers'
/// patterns: PutEvents does both before its write, outside the store's writer.
pub(crate) struct MatchedEvent {
    pub ev: BusEvent,
    pub body: String,
    pub matched: Vec<u64>,
}

/// Inside a write transaction: one matched event's archive copies, its event-log entry and its
/// tasks (see [`plan_bus_events_for`]); the tasks' jobs are pushed on `jobs`.
pub(crate) fn plan_matched(
    inner: &Inner,
    c: &dyn Tx,
    m: MatchedEvent,
    rules: &[String],
    now: i64,
    jobs: &mut Vec<Job>,
) -> Result<(), StoreError> {
    let MatchedEvent { ev, body, matched } = m;
    if ev.source == EventSource::CloudEvent && !ev.body.contains_key("aliyunreplayname") {
        archive_copy(inner, c, &ev, &body, now)?;
    }
    let mut tasks = Vec::new();
    {
        let reg = inner.registry.read().unwrap_or_else(|p| p.into_inner());
        for id in matched {
            let Some(t) = reg.triggers.get(&id) else {
                continue;
            };
            if !is_trigger_for(t.trigger_type, ev.source) {
                continue;
            }
            if !rules.is_empty()
                && !rules
                    .iter()
                    .any(|r| *r == format!("{}/{}", t.function_name, t.trigger_name))
            {
                continue;
            }
            let shape = if t.trigger_type == TriggerType::EventBridge {
                let o = RunOptions::from_config(&t.trigger_config);
                // A trigger sees the events of its own bus only.
                let bus = ev
                    .body
                    .get("aliyuneventbusname")
                    .and_then(|v| v.as_str())
                    .unwrap_or("default");
                if !o.enabled || o.bus != bus {
                    continue;
                }
                match o.schema {
                    EventSchema::RawData => Shape::RawData,
                    EventSchema::CloudEvents => Shape::Native,
                }
            } else if t
                .trigger_config
                .get("payloadFormat")
                .and_then(|v| v.as_str())
                == Some("s3")
            {
                Shape::S3
            } else {
                Shape::Native
            };
            tasks.push((
                t.function_name.clone(),
                t.qualifier.clone(),
                t.trigger_name.clone(),
                shape,
            ));
        }
    }
    // OSS events are the bus's record of every change; a COS record is only
    // stored when a trigger wants it.
    if tasks.is_empty() && ev.source != EventSource::Oss {
        return Ok(());
    }
    let seq = c.append_event(&ev.id, ev.source.wire_name(), &ev.name, now, &body)?;
    let native = Bytes::from(ev.payload(&body));
    for (function_name, qualifier, trigger_name, shape) in tasks {
        // OSS and CloudEvents payloads (the native shape) are rebuilt from the event log
        // (the store's `TASK_COLS`); other shapes are kept with the task.
        let (stored, payload) = match (&ev.s3, shape) {
            (_, Shape::RawData) => {
                let p = ev.raw_data();
                (Some(p.clone().into_bytes()), Bytes::from(p))
            }
            (Some(rec), Shape::S3) => {
                let p = fnbridge_event::bus::records_payload(
                    &serde_json::to_string(rec).unwrap_or_default(),
                );
                (Some(p.clone().into_bytes()), Bytes::from(p))
            }
            _ if matches!(ev.source, EventSource::Oss | EventSource::CloudEvent) => {
                (None, native.clone())
            }
            _ => (Some(native.to_vec()), native.clone()),
        };
        let t = NewTask {
            task_id: ids::request_id(),
            function_name,
            qualifier,
            trigger_name: Some(trigger_name),
            event_seq: Some(seq),
            payload: stored,
            created_ms: now,
            hops: 0,
        };
        let row = c.insert_task(&t)?;
        jobs.push(Job::new(row, t, payload));
    }
    Ok(())
}

/// Copies a committed CloudEvent into every archive of its bus whose pattern it matches.
fn archive_copy(
    inner: &Inner,
    c: &dyn Tx,
    ev: &BusEvent,
    body: &str,
    now: i64,
) -> Result<(), StoreError> {
    let archives = inner.archives.read().unwrap_or_else(|p| p.into_inner());
    if archives.is_empty() {
        return Ok(());
    }
    let bus = ev
        .body
        .get("aliyuneventbusname")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let time_ms = crate::archive::event_time_ms(&ev.body, now);
    for a in archives.iter().filter(|a| a.bus == bus) {
        if a.pattern.matches(body.as_bytes()).unwrap_or(false) {
            c.append_archive_event(&a.name, time_ms, now, body)?;
        }
    }
    Ok(())
}
