//! The `Dispatcher`: registry caches (functions, triggers, async policies), event ingest with
//! matching and durable fan-out, and the scheduler that runs tasks with retries.
//!
//! Cancellation contract: a task taken off the ready queue runs its attempt to the end and
//! queues the record of it; `shutdown` stops taking new tasks, waits (bounded) for running ones,
//! and leaves everything else `Enqueued`/`Retrying` in the store, where the next start finds it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fnbridge_event::envelope::delivery_payload;
use fnbridge_event::{Envelope, EventSource, FunctionConfig, TriggerConfig, TriggerType};
use fnbridge_pattern::{Matcher, Pattern, Serialized};
use fnbridge_runtime::{
    Credentials, CustomRuntime, FunctionSpec, HealthCheck, Hook, Invocation, InvokeOutcome, Runtime,
};
use fnbridge_store::registry::{Alias, Version};
use fnbridge_store::tasks::{self, AttemptOutcome};
use fnbridge_store::{Attempt, NewTask, Store, StoreError, Task, TaskStatus, now_ms, registry};
use rand::Rng;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use crate::destination::{DestinationRecord, function_of_arn};
use crate::ids;
use crate::policy::{AsyncPolicy, AttemptResult, Backoff, RetryAction, decide};

/// Settings the binary passes in.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub region: String,
    pub account_id: String,
    pub backoff: Backoff,
    /// Most tasks running at once across all functions.
    pub max_in_flight: usize,
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
    #[error("runtime error: {0}")]
    Runtime(String),
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

/// Counters, for tests and the benchmark.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stats {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
}

struct FunctionEntry {
    config: FunctionConfig,
    spec: Arc<FunctionSpec>,
}

#[derive(Default)]
struct Registry {
    functions: HashMap<String, Arc<FunctionEntry>>,
    versions: HashMap<(String, u64), Arc<FunctionEntry>>,
    aliases: HashMap<(String, String), Alias>,
    triggers: HashMap<u64, Arc<TriggerConfig>>,
    policies: HashMap<(String, String), AsyncPolicy>,
}

/// A task in memory: what the worker needs to run one attempt.
#[derive(Clone)]
struct Job {
    row: i64,
    task_id: String,
    function: String,
    qualifier: String,
    trigger: Option<String>,
    event_seq: Option<i64>,
    payload: Bytes,
    created_ms: i64,
    function_errors: u32,
    platform_errors: u32,
    attempts: u32,
}

impl Job {
    fn new(row: i64, t: NewTask) -> Job {
        Job {
            row,
            task_id: t.task_id,
            function: t.function_name,
            qualifier: t.qualifier,
            trigger: t.trigger_name,
            event_seq: t.event_seq,
            payload: Bytes::from(t.payload),
            created_ms: t.created_ms,
            function_errors: 0,
            platform_errors: 0,
            attempts: 0,
        }
    }

    fn from_task(t: Task) -> Job {
        Job {
            row: t.id,
            task_id: t.task_id,
            function: t.function_name,
            qualifier: t.qualifier,
            trigger: t.trigger_name,
            event_seq: t.event_seq,
            payload: Bytes::from(t.payload),
            created_ms: t.created_ms,
            function_errors: t.attempts,
            platform_errors: 0,
            attempts: t.attempts,
        }
    }

    fn as_task(&self) -> Task {
        Task {
            id: self.row,
            task_id: self.task_id.clone(),
            function_name: self.function.clone(),
            qualifier: self.qualifier.clone(),
            trigger_name: self.trigger.clone(),
            event_seq: self.event_seq,
            payload: self.payload.to_vec(),
            status: TaskStatus::Running,
            attempts: self.attempts,
            created_ms: self.created_ms,
            next_ms: 0,
            ended_ms: None,
            last_error: None,
            return_payload: None,
            log: None,
        }
    }
}

struct Inner {
    cfg: DispatchConfig,
    store: Store,
    runtime: Arc<Runtime>,
    matcher: Matcher,
    registry: RwLock<Registry>,
    ready: mpsc::UnboundedSender<Job>,
    running: Mutex<HashMap<String, i64>>,
    /// Held by the registry service from before a write until the caches show it.
    registry_order: tokio::sync::Mutex<()>,
    in_flight: Arc<Semaphore>,
    stopping: AtomicBool,
    credentials: Credentials,
    attempts: AtomicU64,
    succeeded: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
}

/// The delivery engine. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

fn is_trigger_for(t: TriggerType, source: EventSource) -> bool {
    matches!(
        (t, source),
        (TriggerType::CdnEvents, EventSource::Cdn) | (TriggerType::Oss, EventSource::Oss)
    )
}

/// Reads `maxAsyncRetryAttempts` etc. from a stored async-invoke config.
pub fn policy_from_config(v: &serde_json::Value) -> AsyncPolicy {
    let d = AsyncPolicy::default();
    let dest = |k: &str| {
        v.get("destinationConfig")
            .and_then(|c| c.get(k))
            .and_then(|c| c.get("destination"))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    };
    AsyncPolicy {
        max_retries: v
            .get("maxAsyncRetryAttempts")
            .and_then(|x| x.as_u64())
            .map(|x| x as u32)
            .unwrap_or(d.max_retries),
        max_age: v
            .get("maxAsyncEventAgeInSeconds")
            .and_then(|x| x.as_u64())
            .map(Duration::from_secs)
            .unwrap_or(d.max_age),
        on_success: dest("onSuccess"),
        on_failure: dest("onFailure"),
    }
}

impl Dispatcher {
    /// Builds the dispatcher from the store's registry and resumes every open task.
    pub async fn start(
        cfg: DispatchConfig,
        store: Store,
        runtime: Arc<Runtime>,
    ) -> Result<Dispatcher, DispatchError> {
        let (ready, rx) = mpsc::unbounded_channel();
        let credentials = Credentials {
            access_key_id: format!("STS.{}", ids::hex_token(12)),
            access_key_secret: ids::hex_token(20),
            security_token: ids::hex_token(32),
        };
        let inner = Arc::new(Inner {
            in_flight: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            cfg,
            store: store.clone(),
            runtime,
            matcher: Matcher::new(),
            registry: RwLock::new(Registry::default()),
            ready,
            running: Mutex::new(HashMap::new()),
            registry_order: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            credentials,
            attempts: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
        });
        let d = Dispatcher { inner };
        let (functions, versions, aliases, triggers, configs, open) = store
            .read(|c| {
                Ok((
                    registry::list_functions(c, "", "", usize::MAX >> 1)?,
                    registry::all_versions(c)?,
                    registry::all_aliases(c)?,
                    registry::all_triggers(c)?,
                    registry::all_async_configs(c)?,
                    tasks::open_tasks(c)?,
                ))
            })
            .await?;
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
        d.inner
            .matcher
            .insert_many(compiled.into_iter().map(|(id, p, _)| (id, p)));
        for (f, q, v) in configs {
            d.cache_async_config(&f, &q, &v);
        }
        let resumed = open.len();
        let now = now_ms();
        for t in open {
            let due = t.next_ms;
            d.schedule(
                Job::from_task(t),
                Duration::from_millis((due - now).max(0) as u64),
            );
        }
        if resumed > 0 {
            tracing::info!(tasks = resumed, "resumed pending deliveries");
        }
        tokio::spawn(run_loop(d.inner.clone(), rx));
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

    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        Stats {
            attempts: i.attempts.load(Ordering::Relaxed),
            succeeded: i.succeeded.load(Ordering::Relaxed),
            failed_attempts: i.failed_attempts.load(Ordering::Relaxed),
            dead_lettered: i.dead_lettered.load(Ordering::Relaxed),
        }
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
            runtime: config.runtime.clone(),
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

    fn resolve_entry(
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

    pub(crate) fn cache_trigger(&self, id: u64, trigger: TriggerConfig, pattern: &Pattern) {
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
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .triggers
            .remove(&id);
    }

    pub(crate) fn cache_async_config(
        &self,
        function: &str,
        qualifier: &str,
        v: &serde_json::Value,
    ) {
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

    fn policy(&self, function: &str, qualifier: &str) -> AsyncPolicy {
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

    /// Stores every event of the envelope and one task per matched trigger in one durable
    /// commit, then queues the tasks. Returns only after the commit is on disk.
    pub async fn ingest(&self, env: Envelope) -> Result<Vec<IngestedEvent>, DispatchError> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(DispatchError::ShuttingDown);
        }
        let now = now_ms();
        struct Planned {
            event_id: String,
            source: &'static str,
            name: String,
            body: String,
            tasks: Vec<NewTask>,
        }
        let mut planned = Vec::with_capacity(env.events.len());
        {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for mut ev in env.events {
                ev.ensure_id(ids::uuid_like);
                // Serialized once: the text is what is stored and delivered, and what it was
                // built from lets the matcher stop reading once every named path is seen.
                let text = Serialized::from_map(&ev.body);
                let matched =
                    self.inner.matcher.matches_serialized(&text).map_err(|e| {
                        DispatchError::Invalid(format!("event cannot be matched: {e}"))
                    })?;
                let body = text.into_string();
                let mut tasks = Vec::new();
                for id in matched {
                    let Some(t) = reg.triggers.get(&id) else {
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
                        payload: delivery_payload(&body).into_bytes(),
                        created_ms: now,
                    });
                }
                planned.push(Planned {
                    event_id: ev.id().unwrap_or_default().to_string(),
                    source: ev.source.wire_name(),
                    name: ev.name.clone(),
                    body,
                    tasks,
                });
            }
        }
        let (receipts, jobs) = self
            .inner
            .store
            .write(move |c| {
                let mut receipts = Vec::with_capacity(planned.len());
                let mut jobs = Vec::new();
                for p in planned {
                    let seq = tasks::append_event(c, &p.event_id, p.source, &p.name, now, &p.body)?;
                    let mut task_ids = Vec::with_capacity(p.tasks.len());
                    for mut t in p.tasks {
                        t.event_seq = Some(seq);
                        let row = tasks::insert_task(c, &t)?;
                        task_ids.push(t.task_id.clone());
                        jobs.push(Job::new(row, t));
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
        for j in jobs {
            let _ = self.inner.ready.send(j);
        }
        Ok(receipts)
    }

    /// Accepts an asynchronous invocation: durable when this returns.
    pub async fn enqueue(
        &self,
        function: &str,
        qualifier: &str,
        payload: Bytes,
        task_id: Option<String>,
    ) -> Result<String, DispatchError> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(DispatchError::ShuttingDown);
        }
        let task = NewTask {
            task_id: task_id.unwrap_or_else(ids::request_id),
            function_name: function.to_string(),
            qualifier: qualifier.to_string(),
            trigger_name: None,
            event_seq: None,
            payload: payload.to_vec(),
            created_ms: now_ms(),
        };
        let t = task.clone();
        let row = self
            .inner
            .store
            .write(move |c| tasks::insert_task(c, &t))
            .await?;
        let id = task.task_id.clone();
        let _ = self.inner.ready.send(Job::new(row, task));
        Ok(id)
    }

    /// Re-delivers a dead-lettered entry as a new task and removes it from the queue, in one
    /// commit. Returns the new task id.
    pub async fn redrive(&self, dlq_id: i64) -> Result<Option<String>, DispatchError> {
        let now = now_ms();
        let new_id = ids::request_id();
        let nid = new_id.clone();
        let job = self
            .inner
            .store
            .write(move |c| {
                let Some(e) = tasks::get_dlq(c, dlq_id)? else {
                    return Ok(None);
                };
                let t = NewTask {
                    task_id: nid,
                    function_name: e.function_name,
                    qualifier: e.qualifier,
                    trigger_name: e.trigger_name,
                    event_seq: e.event_seq,
                    payload: e.payload,
                    created_ms: now,
                };
                let row = tasks::insert_task(c, &t)?;
                tasks::delete_dlq(c, dlq_id)?;
                Ok(Some(Job::new(row, t)))
            })
            .await?;
        Ok(job.map(|j| {
            let _ = self.inner.ready.send(j);
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
        let inv = self.invocation(&request_id, qualifier, &version_id, payload);
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
        self.inner.store.write_detached(move |c| {
            fnbridge_store::logs::append_log(c, &f, &rid, &q, now_ms(), &log)
        });
        Ok((request_id, out))
    }

    fn invocation(
        &self,
        request_id: &str,
        qualifier: &str,
        version_id: &str,
        payload: Bytes,
    ) -> Invocation {
        Invocation {
            request_id: request_id.to_string(),
            payload,
            qualifier: qualifier.to_string(),
            version_id: version_id.to_string(),
            credentials: self.inner.credentials.clone(),
        }
    }

    fn schedule(&self, job: Job, after: Duration) {
        schedule(&self.inner, job, after);
    }

    /// Stops taking new work, waits up to `grace` for running attempts, flushes their records,
    /// and stops every function instance. Unfinished tasks stay queued in the store.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::Release);
        let permits = self.inner.cfg.max_in_flight.max(1) as u32;
        let _ = tokio::time::timeout(grace, self.inner.in_flight.acquire_many(permits)).await;
        // A write after the attempt records commits only once they have: a flush barrier.
        let _ = self.inner.store.write(|_| Ok(())).await;
        self.inner.runtime.shutdown().await;
    }
}

/// Reads a stored (API-validated) `customRuntimeConfig` into the runtime's settings; absent
/// fields take FC's defaults.
fn custom_runtime(v: &serde_json::Value) -> CustomRuntime {
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let d = CustomRuntime::default();
    let health_check = v
        .get("healthCheckConfig")
        .filter(|h| h.is_object())
        .map(|h| {
            let hd = HealthCheck::default();
            let secs = |k: &str, d: Duration| {
                h.get(k)
                    .and_then(|x| x.as_u64())
                    .map(Duration::from_secs)
                    .unwrap_or(d)
            };
            let num = |k: &str, d: u32| {
                h.get(k)
                    .and_then(|x| x.as_u64())
                    .map(|x| x as u32)
                    .unwrap_or(d)
            };
            HealthCheck {
                http_get_url: h
                    .get("httpGetUrl")
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
                    .unwrap_or(hd.http_get_url),
                initial_delay: secs("initialDelaySeconds", hd.initial_delay),
                period: secs("periodSeconds", hd.period),
                timeout: secs("timeoutSeconds", hd.timeout),
                failure_threshold: num("failureThreshold", hd.failure_threshold),
                success_threshold: num("successThreshold", hd.success_threshold),
            }
        });
    CustomRuntime {
        command: strings("command"),
        args: strings("args"),
        port: v
            .get("port")
            .and_then(|p| p.as_u64())
            .map(|p| p as u16)
            .unwrap_or(d.port),
        health_check,
    }
}

fn schedule(inner: &Arc<Inner>, job: Job, after: Duration) {
    if after.is_zero() {
        let _ = inner.ready.send(job);
        return;
    }
    let tx = inner.ready.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tx.send(job);
    });
}

async fn run_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        if inner.stopping.load(Ordering::Acquire) {
            // Left in the store as Enqueued/Retrying: the next start runs it.
            continue;
        }
        let Ok(permit) = inner.in_flight.clone().acquire_owned().await else {
            break;
        };
        if inner.stopping.load(Ordering::Acquire) {
            continue;
        }
        let inner = inner.clone();
        tokio::spawn(async move {
            run_job(&inner, job).await;
            drop(permit);
        });
    }
}

/// One attempt of one task, and everything its outcome implies.
async fn run_job(inner: &Arc<Inner>, mut job: Job) {
    let d = Dispatcher {
        inner: inner.clone(),
    };
    let policy = d.policy(&job.function, &job.qualifier);
    let started = now_ms();
    let age = Duration::from_millis((started - job.created_ms).max(0) as u64);
    if age > policy.max_age {
        let task = job.as_task();
        let attempts = job.attempts;
        let msg = format!(
            "event expired after {} s without a successful attempt",
            age.as_secs()
        );
        inner.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let dest = destination(&d, &job, &policy, "EventAgeExceeded", None, b"");
        let ready = inner.ready.clone();
        inner.store.write_detached(move |c| {
            tasks::finish_task(c, task.id, TaskStatus::Expired, started, Some(&msg))?;
            tasks::dead_letter(c, &task, attempts, "EventAgeExceeded", Some(&msg), started)?;
            queue_destination(c, &ready, dest)
        });
        return;
    }
    let entry = d.resolve_entry(&job.function, &job.qualifier);
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(job.task_id.clone(), started);
    inner.attempts.fetch_add(1, Ordering::Relaxed);
    let outcome = match &entry {
        Ok((e, version_id)) => {
            let inv = d.invocation(
                &job.task_id,
                &job.qualifier,
                version_id,
                job.payload.clone(),
            );
            inner
                .runtime
                .invoke(&e.spec, inv)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job.task_id);
    let ended = now_ms();
    job.attempts += 1;
    let (result, error_type, error_message, body, log, instance) = match &outcome {
        Ok(o) => match &o.error {
            None => (
                AttemptResult::Success,
                None,
                None,
                o.body.clone(),
                o.log.clone(),
                Some(o.instance_id.clone()),
            ),
            Some(err) => (
                AttemptResult::FunctionError,
                Some(err.error_type().to_string()),
                Some(summarize_error(err.kind(), &o.body)),
                o.body.clone(),
                o.log.clone(),
                Some(o.instance_id.clone()),
            ),
        },
        Err(msg) => (
            AttemptResult::PlatformError,
            Some("InternalError".to_string()),
            Some(msg.clone()),
            Bytes::new(),
            String::new(),
            None,
        ),
    };
    match result {
        AttemptResult::Success => {
            inner.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        AttemptResult::FunctionError => {
            job.function_errors += 1;
            inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        AttemptResult::PlatformError => {
            job.platform_errors += 1;
            inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
    }
    let jitter: f64 = rand::rng().random();
    let now_age = Duration::from_millis((ended - job.created_ms).max(0) as u64);
    let action = decide(
        &policy,
        &inner.cfg.backoff,
        result,
        job.function_errors,
        job.platform_errors,
        now_age,
        jitter,
    );
    let attempt = Attempt {
        n: job.attempts,
        started_ms: started,
        ended_ms: ended,
        status: if result == AttemptResult::Success {
            "Succeeded"
        } else {
            "Failed"
        }
        .to_string(),
        error_type: error_type.clone(),
        error_message: error_message.clone(),
        instance_id: instance,
    };
    let (status, next_ms) = match action {
        RetryAction::Succeeded => (TaskStatus::Succeeded, ended),
        RetryAction::Retry { after } => (TaskStatus::Retrying, ended + after.as_millis() as i64),
        RetryAction::DeadLetter { reason } => (
            if reason.as_str() == "EventAgeExceeded" {
                TaskStatus::Expired
            } else {
                TaskStatus::Failed
            },
            ended,
        ),
    };
    let record = AttemptOutcome {
        attempt,
        status,
        next_ms,
        last_error: error_message.clone(),
        return_payload: Some(body.to_vec()),
        log: Some(log),
    };
    let dest = match action {
        RetryAction::Succeeded => destination(&d, &job, &policy, "Success", None, &body),
        RetryAction::DeadLetter { reason } => {
            let cond = if reason.as_str() == "EventAgeExceeded" {
                "EventAgeExceeded".to_string()
            } else {
                error_type
                    .clone()
                    .unwrap_or_else(|| "UnhandledInvocationError".into())
            };
            destination(&d, &job, &policy, &cond, error_type.as_deref(), &body)
        }
        RetryAction::Retry { .. } => None,
    };
    let dead = match action {
        RetryAction::DeadLetter { reason } => Some((job.as_task(), reason.as_str())),
        _ => None,
    };
    if dead.is_some() {
        inner.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }
    let row = job.row;
    let attempts = job.attempts;
    let ready = inner.ready.clone();
    let (log_fn, log_rid, log_q) = (
        job.function.clone(),
        job.task_id.clone(),
        job.qualifier.clone(),
    );
    inner.store.write_detached(move |c| {
        tasks::record_attempt(c, row, &record)?;
        if let Some(log) = record.log.as_deref().filter(|l| !l.is_empty()) {
            fnbridge_store::logs::append_log(c, &log_fn, &log_rid, &log_q, ended, log)?;
        }
        if let Some((task, reason)) = dead {
            tasks::dead_letter(
                c,
                &task,
                attempts,
                reason,
                record.last_error.as_deref(),
                ended,
            )?;
        }
        queue_destination(c, &ready, dest)
    });
    if let RetryAction::Retry { after } = action {
        schedule(inner, job, after);
    }
}

/// Inserts a destination task inside the caller's transaction and queues it. Queued before the
/// commit: if the commit failed the destination would run without a record, which is harmless
/// (at-least-once), whereas queueing after would need a second round trip to the writer.
fn queue_destination(
    c: &rusqlite::Connection,
    ready: &mpsc::UnboundedSender<Job>,
    dest: Option<NewTask>,
) -> Result<(), StoreError> {
    if let Some(t) = dest {
        let row = tasks::insert_task(c, &t)?;
        let _ = ready.send(Job::new(row, t));
    }
    Ok(())
}

fn summarize_error(kind: &str, body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| {
            let t = v.get("errorType").and_then(|x| x.as_str()).unwrap_or("");
            let m = v.get("errorMessage").and_then(|x| x.as_str())?;
            Some(if t.is_empty() {
                m.to_string()
            } else {
                format!("{t}: {m}")
            })
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    format!("{kind}: {msg}")
}

fn destination_task(d: &Dispatcher, arn: &str, record: DestinationRecord<'_>) -> Option<NewTask> {
    let Some(target) = function_of_arn(arn) else {
        tracing::warn!(destination = %arn, "unsupported destination ARN; skipped");
        return None;
    };
    Some(NewTask {
        task_id: ids::request_id(),
        function_name: target.to_string(),
        qualifier: "LATEST".into(),
        trigger_name: None,
        event_seq: None,
        payload: record.to_json().into_bytes(),
        created_ms: now_ms(),
    })
    .filter(|_| {
        d.function(target).is_some() || {
            tracing::warn!(destination = %arn, "destination function does not exist; skipped");
            false
        }
    })
}

fn function_arn(d: &Dispatcher, name: &str) -> String {
    format!(
        "acs:fc:{}:{}:functions/{name}",
        d.inner.cfg.region, d.inner.cfg.account_id
    )
}

/// The destination task for a finished job: `onSuccess` when `function_error` is `None` and the
/// condition is `Success`, else `onFailure`.
fn destination(
    d: &Dispatcher,
    job: &Job,
    p: &AsyncPolicy,
    condition: &str,
    function_error: Option<&str>,
    body: &[u8],
) -> Option<NewTask> {
    let arn = if condition == "Success" {
        p.on_success.as_ref()?
    } else {
        p.on_failure.as_ref()?
    };
    let fa = function_arn(d, &job.function);
    destination_task(
        d,
        arn,
        DestinationRecord {
            timestamp_ms: now_ms(),
            request_id: &job.task_id,
            function_arn: &fa,
            qualifier: &job.qualifier,
            condition,
            approximate_invoke_count: job.attempts,
            request_payload: &job.payload,
            function_error,
            response_payload: body,
        },
    )
}
