//! The custom-runtime backend (`custom`, `custom.debian10/11/12`): the user's own HTTP server,
//! started from `customRuntimeConfig.command` + `args`, spoken to as runtime.md §7 describes.
//!
//! An instance is one process group: the command, started in the code directory with the
//! environment of runtime.md §3, stdin on /dev/null and stdout and stderr on one pipe that
//! `logs` drains for the instance's whole life. It is told to listen on a free loopback port of
//! its own (`FC_CUSTOM_LISTEN_PORT`, also `FC_SERVER_PORT`), not the configured one, because
//! instances share the host. It is ready once that port accepts connections (and the health
//! check, if configured, passes), within `RuntimeConfig::custom_start_timeout`.
//!
//! Requests: `POST /invoke` (body = event), `POST /initialize` once per instance before its
//! first invocation when an initializer is configured, `GET /pre-stop` before a graceful stop
//! when a PreStop hook is; each with the `x-fc-*` headers, on its own connection (`http`).
//! A 2xx answer without `x-fc-status`, or with a 2xx one, is a result; anything else is a
//! function error, its body passed through (this follows the issue, not runtime.md §7's
//! "non-2xx without x-fc-status = success": a server that answers 500 has failed).
//!
//! Failures, and what becomes of the instance:
//! - time: past the timeout the whole group is SIGKILLed (`Timeout`); with instance concurrency
//!   above 1 that fails the invocations sharing the instance too (`Crashed`, saying why).
//! - memory: the group's resident set is sampled (`memwatch`); past `memory_mb` the group is
//!   killed (`OutOfMemory`). A SIGKILL we did not send (the kernel's OOM killer) is also
//!   `OutOfMemory`.
//! - the connection breaks or the process exits mid-request: `Crashed`, replaced.
//! - start: a missing or non-executable command, a process that exits or never becomes ready
//!   fail the invocation with `StartFailed` and FC's code (`CAFileNotFound`,
//!   `CAFilePermission`, `CAExited`) as the `errorType`, the process's output in the log.
//!
//! Logs: a server that writes FC's `FC Invoke Start/End RequestId` markers gets its lines cut
//! at them, as Python's are. For one that writes none, the lines written while the request was
//! in flight are the invocation's (read up to the moment the response arrived, so nothing
//! written before answering is missed), and the platform writes the markers around them. With
//! several invocations in flight on one instance, lines are told apart only by the request id
//! they contain; see `logs`. Output before the first request (start-up) opens the first
//! invocation's log, as a Python worker's start-up complaints do.

mod command;
mod http;

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::env::{instance_environment, whole_seconds};
use crate::error::RuntimeError;
use crate::instance::{Launch, Served, StartFailure, log_pre_stop, pre_stop_invocation};
use crate::logs::{Captured, LogCapture, Section, Wait, spawn_pump};
use crate::memwatch::{Registration, Watch};
use crate::outcome::{FunctionError, InvokeOutcome, platform_error_body, seconds};
use crate::process::{ProcessGroup, describe_exit, leader_exited};
use crate::sandbox::{Bind, CODE_DIR, Jail};
use crate::spec::{CustomRuntime, FunctionSpec, HealthCheck, Hook, Invocation};
use command::Refusal;
use http::HttpError;

/// Where a sandboxed custom runtime's command is looked for (besides the code): directories the
/// sandbox shows as the host has them.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Largest result a function may return (runtime.md §8).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// A health-check answer is read only for its status.
const MAX_HEALTH_BODY: usize = 64 * 1024;
/// How long to wait for an End marker once the response is in, if the server wrote a Start
/// marker. Servers write it before answering, so this only runs out when one does not.
const LOG_GRACE: Duration = Duration::from_millis(250);
/// How long a dead or killed process gets to be reaped (and to close its end of the pipe).
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Readiness polling starts fast (most servers listen within milliseconds) and backs off.
const FIRST_POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct CustomInstance {
    id: String,
    spec: Arc<FunctionSpec>,
    port: u16,
    /// Where it listens: `port` in its own network namespace (sandboxed) or on the host.
    target: http::Target,
    core: Arc<Core>,
    /// The `x-fc-*` headers that are the same on every request.
    headers: HeaderMap,
    logs: Arc<LogCapture>,
    pump: JoinHandle<()>,
    /// Owns the child: notices its exit, kills the rest of its group and reaps it.
    watcher: JoinHandle<()>,
    life: watch::Receiver<Life>,
    /// Fast path once the initializer has run (or there is none).
    initialized: AtomicBool,
    /// Held while the initializer runs, so invocations sharing a new instance wait for it.
    init: tokio::sync::Mutex<Init>,
    /// Start-up output, for the first invocation's log.
    startup_log: Mutex<Option<String>>,
    /// The last invocation without its payload, kept only when there is a PreStop hook.
    last: Mutex<Option<Invocation>>,
    _memory: Option<Registration>,
    /// The sandbox's namespace, cgroup and network; dropped after the group is killed.
    jail: Jail,
}

/// What the instance's helpers (exit watcher, memory watcher) share with it.
#[derive(Debug)]
struct Core {
    group: Mutex<ProcessGroup>,
    /// Why we killed the instance, if we did; set before the kill, first reason wins.
    doom: Mutex<Option<Doom>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Doom {
    TimedOut {
        request_id: String,
    },
    OutOfMemory,
    /// It failed in a way that makes it unusable (initializer, a broken connection).
    Discarded,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    /// The leader exited; `None` if its status could not be collected.
    Exited(Option<ExitStatus>),
}

#[derive(Debug)]
enum Init {
    Pending,
    Done,
    /// The error body, for invocations that were waiting on the same instance.
    Failed(Bytes),
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Invoke,
    Initialize,
    PreStop,
}

/// How one request ended.
enum End {
    Reply(http::Reply),
    TooLarge(usize),
    TimedOut,
    Broken { life: Life, detail: String },
}

/// One request's classified result and its log.
struct Step {
    verdict: Verdict,
    log: String,
    elapsed: Duration,
}

struct Verdict {
    error: Option<FunctionError>,
    body: Bytes,
    reusable: bool,
    /// For the End marker the platform writes: what went wrong.
    failure: Option<String>,
}

impl Core {
    fn kill(&self, why: Doom) {
        {
            let mut doom = lock(&self.doom);
            if doom.is_none() {
                *doom = Some(why);
            }
        }
        lock(&self.group).kill();
    }

    fn doom(&self) -> Option<Doom> {
        lock(&self.doom).clone()
    }
}

impl CustomInstance {
    pub(crate) async fn start(launch: &Launch<'_>) -> Result<CustomInstance, StartFailure> {
        let spec = launch.spec;
        let platform = |source: std::io::Error| {
            StartFailure::Platform(RuntimeError::Spawn {
                function: spec.function_name.clone(),
                source,
            })
        };
        let cfg = spec.custom.clone().unwrap_or_default();
        let code_dir = std::path::absolute(&spec.code_dir).map_err(platform)?;
        let host = launch.host;
        let (log_reader, log_writer) = std::io::pipe().map_err(platform)?;
        let (mut cmd, program, port, mut jail) = match &host.sandbox {
            Some(sandbox) => {
                // Its own network namespace: it listens on the configured port, as on FC.
                let port = cfg.port;
                let mut jail = sandbox
                    .jail(&launch.instance_id, spec.memory_mb, Some(port), true)
                    .await
                    .map_err(platform)?;
                let mut env =
                    instance_environment(launch, Path::new(CODE_DIR), &jail.services_inside, &[]);
                env.insert("FC_CUSTOM_LISTEN_PORT".into(), port.to_string());
                env.insert("FC_SERVER_PORT".into(), port.to_string());
                // Resolved among what the sandbox sees: its system directories and the code.
                let program = command::resolve(&cfg, &code_dir, Some(SYSTEM_PATH))
                    .map_err(|r| refused(launch, &r, String::new()))?;
                let inside = match program.path.strip_prefix(&code_dir) {
                    Ok(rel) => Path::new(CODE_DIR).join(rel),
                    Err(_) => program.path.clone(),
                };
                let binds = [Bind::ro(&code_dir, CODE_DIR)];
                let cmd = sandbox
                    .command(&jail, &inside, &program.args, &env, &binds)
                    .map_err(platform)?;
                if let Err(e) = jail.network_ready().await {
                    tracing::warn!(instance = %launch.instance_id, error = %e, "the instance has no outside network");
                }
                (cmd, program, port, jail)
            }
            None => {
                let port = free_port().map_err(platform)?;
                let mut env = instance_environment(
                    launch,
                    &code_dir,
                    &host.cfg.sandbox.services_on_host(),
                    &[],
                );
                env.insert("FC_CUSTOM_LISTEN_PORT".into(), port.to_string());
                env.insert("FC_SERVER_PORT".into(), port.to_string());
                let program =
                    command::resolve(&cfg, &code_dir, env.get("PATH").map(String::as_str))
                        .map_err(|r| refused(launch, &r, String::new()))?;
                let mut cmd = Command::new(&program.path);
                cmd.args(&program.args)
                    .env_clear()
                    .envs(&env)
                    .current_dir(&code_dir);
                die_with_parent(&mut cmd);
                (cmd, program, port, Jail::default())
            }
        };
        let target = http::Target {
            port,
            net: jail.net.clone(),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log_writer.try_clone().map_err(platform)?))
            .stderr(Stdio::from(log_writer))
            .process_group(0)
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Err(refused(
                    launch,
                    &Refusal::from_spawn(&program, &e),
                    String::new(),
                ));
            }
        };
        // Closes our copies of the pipe's write end, so end of stream means the group is gone.
        drop(cmd);
        let started = Instant::now();
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let core = Arc::new(Core {
            group: Mutex::new(ProcessGroup::register(pid, &launch.host.live)),
            doom: Mutex::new(None),
        });
        let pipe = pipe::Receiver::from_owned_fd(log_reader.into()).map_err(platform)?;
        let logs = LogCapture::new(
            launch.instance_id.clone(),
            launch.host.cfg.max_log_bytes,
            Some(pipe),
        );
        let pump = spawn_pump(Arc::clone(&logs));
        let startup = logs.arm_plain();
        let (life_tx, life) = watch::channel(Life::Running);
        let watcher = tokio::spawn(watch_exit(pid, child, Arc::clone(&core), life_tx));
        let memory = (spec.memory_mb > 0).then(|| {
            let core = Arc::downgrade(&core);
            let id = launch.instance_id.clone();
            // With a cgroup the kernel enforces the limit and we watch its OOM kills (a killed
            // child leaves the server running, but the instance is over its memory all the
            // same); without one, the resident set of its processes is sampled.
            let what = match (&jail.cgroup, &jail.net) {
                (Some(cgroup), _) => Watch::OomKills(cgroup.oom_source()),
                (None, Some(net)) => Watch::NetNs(net.inode()),
                (None, None) => Watch::Group(pid),
            };
            launch.host.memory.watch(
                what,
                u64::from(spec.memory_mb) * 1024 * 1024,
                Box::new(move |rss| {
                    if let Some(core) = core.upgrade() {
                        tracing::info!(instance = %id, rss, "custom-runtime instance is over its memory size");
                        core.kill(Doom::OutOfMemory);
                    }
                }),
            )
        });
        tracing::debug!(instance = %launch.instance_id, function = %spec.function_name, pid, port, command = %program.path.display(), "started custom-runtime instance");
        let instance = CustomInstance {
            id: launch.instance_id.clone(),
            spec: Arc::clone(spec),
            port,
            target,
            core,
            headers: static_headers(launch),
            logs,
            pump,
            watcher,
            life,
            initialized: AtomicBool::new(spec.initializer.is_none()),
            init: tokio::sync::Mutex::new(Init::Pending),
            startup_log: Mutex::new(None),
            last: Mutex::new(None),
            _memory: memory,
            jail: std::mem::take(&mut jail),
        };
        let limit = launch.host.cfg.custom_start_timeout;
        match instance.wait_ready(&cfg, started, limit).await {
            Ok(()) => {
                // What it wrote before it listened is in the pipe by now, if not yet read.
                instance.logs.drain();
                let text = instance.logs.take(startup).text;
                if !text.is_empty() {
                    *lock(&instance.startup_log) = Some(text);
                }
                Ok(instance)
            }
            Err(message) => {
                // Its last words: kill the group, so the pipe closes, and collect all of it.
                instance.core.kill(Doom::Stopped);
                instance.exit_status(EXIT_GRACE).await;
                let captured = instance
                    .logs
                    .finish(startup, EXIT_GRACE, Wait::ForEof)
                    .await;
                let refusal = Refusal {
                    code: "CAExited",
                    message,
                };
                Err(refused(launch, &refusal, captured.text))
            }
        }
    }

    /// Up to `instanceConcurrency` invocations at once.
    pub(crate) fn capacity(&self) -> usize {
        self.spec.instance_concurrency.max(1) as usize
    }

    /// False once the process has exited or we killed it (e.g. over its memory while idle).
    pub(crate) fn is_usable(&self) -> bool {
        *self.life.borrow() == Life::Running && self.core.doom().is_none()
    }

    pub(crate) fn pgid(&self) -> i32 {
        lock(&self.core.group).pgid()
    }

    pub(crate) fn has_pre_stop(&self) -> bool {
        self.spec.pre_stop.is_some()
    }

    /// Kills it now, e.g. when it is discarded while other invocations still hold it.
    pub(crate) fn kill(&self) {
        self.core.kill(Doom::Discarded);
    }

    pub(crate) async fn invoke(&self, inv: &Invocation) -> Served {
        if self.spec.pre_stop.is_some() {
            *lock(&self.last) = Some(Invocation {
                payload: Bytes::new(),
                ..inv.clone()
            });
        }
        let mut log = lock(&self.startup_log).take().unwrap_or_default();
        if let Some(hook) = &self.spec.initializer
            && !self.initialized.load(Ordering::Acquire)
        {
            let mut init = self.init.lock().await;
            match &*init {
                Init::Done => {}
                Init::Failed(body) => {
                    let error = Some(FunctionError::InitFailed);
                    return self.served(error, body.clone(), log, Duration::ZERO, false);
                }
                Init::Pending => {
                    let step = self
                        .call(Call::Initialize, inv, Bytes::new(), hook.timeout)
                        .await;
                    log.push_str(&step.log);
                    if step.verdict.error.is_some() {
                        // The next invocation starts afresh and runs the initializer again.
                        self.core.kill(Doom::Discarded);
                        *init = Init::Failed(step.verdict.body.clone());
                        let error = Some(FunctionError::InitFailed);
                        return self.served(error, step.verdict.body, log, Duration::ZERO, false);
                    }
                    *init = Init::Done;
                    self.initialized.store(true, Ordering::Release);
                }
            }
        }
        let run = self
            .call(Call::Invoke, inv, inv.payload.clone(), self.spec.timeout)
            .await;
        log.push_str(&run.log);
        let Verdict {
            error,
            body,
            reusable,
            ..
        } = run.verdict;
        self.served(error, body, log, run.elapsed, reusable)
    }

    /// Runs the PreStop hook if there is one and the instance is still healthy, then kills it
    /// and waits (briefly) until it is gone.
    pub(crate) async fn stop(self) {
        if let Some(hook) = self.spec.pre_stop.clone()
            && self.is_usable()
        {
            self.pre_stop(&hook).await;
        }
        self.core.kill(Doom::Stopped);
        self.exit_status(EXIT_GRACE).await;
    }

    /// `GET /pre-stop` within the hook's timeout. Nobody waits for its result, so its log and
    /// any failure go to `tracing`.
    async fn pre_stop(&self, hook: &Hook) {
        let inv = pre_stop_invocation(lock(&self.last).take(), &self.id);
        let step = self
            .call(Call::PreStop, &inv, Bytes::new(), hook.timeout)
            .await;
        log_pre_stop(
            &self.id,
            &self.spec.function_name,
            step.verdict.error,
            &step.verdict.body,
            &step.log,
        );
    }

    fn served(
        &self,
        error: Option<FunctionError>,
        body: Bytes,
        log: String,
        duration: Duration,
        reusable: bool,
    ) -> Served {
        Served::new(&self.id, error, body, log, duration, reusable)
    }

    /// Waits until the port accepts connections and the health check (if any) passes; fails
    /// when the process exits first or `limit` runs out. The message is for the user.
    async fn wait_ready(
        &self,
        cfg: &CustomRuntime,
        started: Instant,
        limit: Duration,
    ) -> Result<(), String> {
        // What the probe saw last, for the message when time runs out.
        let last = Mutex::new(None::<String>);
        let mut life = self.life.clone();
        tokio::select! {
            ready = self.probe(cfg.health_check.as_ref(), started, &last) => ready,
            // The watch guard is dropped inside, as it must not be held across the select.
            _ = async { life.wait_for(|l| *l != Life::Running).await.map(|_| ()) } => {
                let how = match *self.life.borrow() {
                    Life::Exited(Some(status)) => describe_exit(status),
                    _ => "status unknown".to_owned(),
                };
                Err(format!("Process exited before it was ready on port {} ({how})", self.port))
            }
            _ = tokio::time::sleep(limit) => {
                let mut message = match lock(&last).take() {
                    Some(why) if cfg.health_check.is_some() => format!(
                        "Process did not pass its health check within {} seconds (last: {why})",
                        seconds(limit)
                    ),
                    _ => format!(
                        "Process did not listen on port {} (FC_CUSTOM_LISTEN_PORT) within {} seconds",
                        self.port,
                        seconds(limit)
                    ),
                };
                if cfg.port != self.port && self.target.net.is_none() && listens(cfg.port).await {
                    message.push_str(&format!(
                        "; something listens on the configured port {} instead: a custom runtime must listen on the port in FC_CUSTOM_LISTEN_PORT, since instances share the host",
                        cfg.port
                    ));
                }
                Err(message)
            }
        }
    }

    async fn probe(
        &self,
        health: Option<&HealthCheck>,
        started: Instant,
        last: &Mutex<Option<String>>,
    ) -> Result<(), String> {
        let mut delay = FIRST_POLL;
        while http::connect(&self.target).await.is_err() {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
        let Some(h) = health else { return Ok(()) };
        let path = health_path(&h.http_get_url);
        tokio::time::sleep_until((started + h.initial_delay).into()).await;
        let (mut passed, mut failed) = (0, 0);
        loop {
            let check = http::request(
                &self.target,
                Method::GET,
                &path,
                HeaderMap::new(),
                Bytes::new(),
                MAX_HEALTH_BODY,
            );
            let why = match tokio::time::timeout(h.timeout, check).await {
                Ok(Ok(reply)) if reply.status.is_success() => None,
                Ok(Ok(reply)) => Some(format!("GET {path}: HTTP {}", reply.status.as_u16())),
                Ok(Err(e)) => Some(format!("GET {path}: {e}")),
                Err(_) => Some(format!(
                    "GET {path}: no answer within {} seconds",
                    seconds(h.timeout)
                )),
            };
            match why {
                None => {
                    passed += 1;
                    failed = 0;
                    if passed >= h.success_threshold.max(1) {
                        return Ok(());
                    }
                }
                Some(why) => {
                    passed = 0;
                    failed += 1;
                    if failed >= h.failure_threshold.max(1) {
                        return Err(format!(
                            "Process failed its health check {failed} times in a row (last: {why})"
                        ));
                    }
                    *lock(last) = Some(why);
                }
            }
            tokio::time::sleep(h.period).await;
        }
    }

    /// Sends one request, waits for its response within `limit` and collects its log.
    async fn call(&self, kind: Call, inv: &Invocation, body: Bytes, limit: Duration) -> Step {
        let (section, what, method, path) = match kind {
            Call::Invoke => (Section::Invoke, "Function", Method::POST, "/invoke"),
            Call::Initialize => (
                Section::Initialize,
                "Initializer",
                Method::POST,
                "/initialize",
            ),
            Call::PreStop => (Section::PreStop, "PreStop hook", Method::GET, "/pre-stop"),
        };
        // Output written before this request is not its own.
        self.logs.drain();
        let logged = self.logs.arm(section, &inv.request_id);
        let headers = self.request_headers(inv, kind, path);
        let started = Instant::now();
        let exchange = http::request(
            &self.target,
            method,
            path,
            headers,
            body,
            MAX_RESPONSE_BYTES,
        );
        let end = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(reply)) => End::Reply(reply),
            Ok(Err(HttpError::TooLarge(max))) => End::TooLarge(max),
            Ok(Err(e)) => End::Broken {
                life: self.exit_status(EXIT_GRACE / 2).await,
                detail: e.to_string(),
            },
            Err(_) => {
                self.core.kill(Doom::TimedOut {
                    request_id: inv.request_id.clone(),
                });
                End::TimedOut
            }
        };
        let elapsed = started.elapsed();
        let captured = self.logs.finish(logged, LOG_GRACE, Wait::IfStarted).await;
        let verdict = self.settle(end, what, limit);
        let log = assemble(
            section,
            &inv.request_id,
            captured,
            verdict.failure.as_deref(),
        );
        Step {
            verdict,
            log,
            elapsed,
        }
    }

    fn settle(&self, end: End, what: &str, limit: Duration) -> Verdict {
        match end {
            End::Reply(reply) => {
                let signalled = reply
                    .headers
                    .get("x-fc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u16>().ok());
                let failed_by_header = signalled.filter(|s| !(200..300).contains(s));
                if reply.status.is_success() && failed_by_header.is_none() {
                    return Verdict {
                        error: None,
                        body: reply.body,
                        reusable: true,
                        failure: None,
                    };
                }
                let body = if reply.body.is_empty() {
                    let why = match failed_by_header {
                        Some(s) => format!("x-fc-status {s}"),
                        None => format!("HTTP {}", reply.status.as_u16()),
                    };
                    let message = format!("Unhandled function error: {why} with an empty body");
                    platform_error_body("FunctionError", &message)
                } else {
                    reply.body
                };
                Verdict {
                    error: Some(FunctionError::Unhandled),
                    body,
                    reusable: true,
                    failure: Some("Unhandled function error".to_owned()),
                }
            }
            End::TooLarge(max) => {
                let message = format!("{what} returned more than {max} bytes");
                Verdict {
                    error: Some(FunctionError::Unhandled),
                    body: platform_error_body("ResponseTooLarge", &message),
                    reusable: true,
                    failure: Some(message),
                }
            }
            End::TimedOut => {
                let message = format!("{what} timed out after {} seconds", seconds(limit));
                Verdict {
                    error: Some(FunctionError::Timeout),
                    body: platform_error_body("FunctionTimeout", &message),
                    reusable: false,
                    failure: Some(message),
                }
            }
            End::Broken { life, detail } => {
                let (error, message) = self.why_broken(life, &detail);
                let error_type = match error {
                    FunctionError::OutOfMemory => "FunctionOutOfMemory",
                    _ => "FunctionCrashed",
                };
                Verdict {
                    error: Some(error),
                    body: platform_error_body(error_type, &message),
                    reusable: false,
                    failure: Some(message),
                }
            }
        }
    }

    /// Why a request got no response: our own kill (and its reason), the process's exit, or a
    /// live server that dropped the connection (which makes the instance suspect: it goes).
    fn why_broken(&self, life: Life, detail: &str) -> (FunctionError, String) {
        match self.core.doom() {
            Some(Doom::OutOfMemory) => (FunctionError::OutOfMemory, self.out_of_memory_message()),
            Some(Doom::TimedOut { request_id }) => (
                FunctionError::Crashed,
                format!("Instance stopped: invocation {request_id} on it timed out"),
            ),
            Some(Doom::Discarded | Doom::Stopped) => {
                (FunctionError::Crashed, "Instance was stopped".to_owned())
            }
            None => match life {
                Life::Exited(Some(status))
                    if killed_for_memory(status) || self.jail.oom_kills() > 0 =>
                {
                    (FunctionError::OutOfMemory, self.out_of_memory_message())
                }
                Life::Exited(Some(status)) => (
                    FunctionError::Crashed,
                    format!("Process exited unexpectedly ({})", describe_exit(status)),
                ),
                Life::Exited(None) => (
                    FunctionError::Crashed,
                    "Process exited unexpectedly".to_owned(),
                ),
                Life::Running => {
                    self.core.kill(Doom::Discarded);
                    (
                        FunctionError::Crashed,
                        format!("The server failed to answer ({detail})"),
                    )
                }
            },
        }
    }

    fn out_of_memory_message(&self) -> String {
        format!(
            "Function ran out of memory (limit {} MB)",
            self.spec.memory_mb
        )
    }

    /// The process's state once it has exited, or `Running` if it has not within `grace`.
    async fn exit_status(&self, grace: Duration) -> Life {
        let mut life = self.life.clone();
        let exited = async { life.wait_for(|l| *l != Life::Running).await.map(|l| *l) };
        match tokio::time::timeout(grace, exited).await {
            Ok(Ok(state)) => state,
            _ => *self.life.borrow(),
        }
    }

    fn request_headers(&self, inv: &Invocation, kind: Call, path: &str) -> HeaderMap {
        let mut h = self.headers.clone();
        // `disableInjectCredentials` Request/All: the headers are sent, empty.
        let none = crate::spec::Credentials::default();
        let c = if self.spec.credentials_in_request {
            &inv.credentials
        } else {
            &none
        };
        for (name, value) in [
            ("x-fc-request-id", inv.request_id.as_str()),
            ("x-fc-access-key-id", c.access_key_id.as_str()),
            ("x-fc-access-key-secret", c.access_key_secret.as_str()),
            ("x-fc-security-token", c.security_token.as_str()),
            ("x-fc-qualifier", inv.qualifier.as_str()),
            ("x-fc-version-id", inv.version_id.as_str()),
            ("x-fc-control-path", path),
        ] {
            h.insert(HeaderName::from_static(name), header_value(value));
        }
        if !matches!(kind, Call::PreStop) {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
        }
        h
    }
}

impl Drop for CustomInstance {
    fn drop(&mut self) {
        lock(&self.core.group).kill();
        // Output after death belongs to no invocation, and a grandchild that escaped the group
        // must not keep the task alive.
        self.pump.abort();
        self.watcher.abort();
    }
}

/// Waits for the leader to exit, then kills the rest of its group (the instance is over) and
/// reaps it. Killing first keeps the invariant of `ProcessGroup`: the unreaped leader keeps
/// the group id ours until then.
async fn watch_exit(pid: i32, mut child: Child, core: Arc<Core>, life: watch::Sender<Life>) {
    leader_exited(pid).await;
    lock(&core.group).kill();
    let status = child.wait().await.ok();
    let _ = life.send(Life::Exited(status));
}

/// The headers that do not change between requests (runtime.md §7).
fn static_headers(launch: &Launch<'_>) -> HeaderMap {
    let Launch { host, spec, .. } = launch;
    let mut h = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        h.insert(HeaderName::from_static(name), header_value(value));
    };
    set("x-fc-function-name", &spec.function_name);
    set("x-fc-function-handler", &spec.handler);
    set("x-fc-function-memory", &spec.memory_mb.to_string());
    set(
        "x-fc-function-timeout",
        &whole_seconds(spec.timeout).to_string(),
    );
    if let Some(init) = &spec.initializer {
        set("x-fc-function-initializer", &init.handler);
        set(
            "x-fc-initialization-timeout",
            &whole_seconds(init.timeout).to_string(),
        );
    }
    if let Some(pre_stop) = &spec.pre_stop {
        set(
            "x-fc-instance-lifecycle-pre-stop-handler",
            &pre_stop.handler,
        );
    }
    set("x-fc-region", &host.cfg.region);
    set("x-fc-account-id", &host.cfg.account_id);
    // FC 2.0 service metadata, as in the Python `context.service`.
    set("x-fc-service-name", &spec.function_name);
    set("x-fc-service-logproject", "");
    set("x-fc-service-logstore", "");
    h
}

/// Header values come from validated configuration; anything unsendable (control characters)
/// is sent empty rather than failing the invocation.
fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The invocation's log: the server's own markers if it wrote them, ours around its lines if it
/// did not, and our End marker (with the error) if it could not finish.
fn assemble(
    section: Section,
    request_id: &str,
    captured: Captured,
    failure: Option<&str>,
) -> String {
    if captured.complete {
        return captured.text;
    }
    let mut log = String::new();
    if !captured.started {
        log.push_str(&section.start_line(request_id));
    }
    log.push_str(&captured.text);
    log.push_str(&section.failed_end(request_id, failure));
    log
}

/// The outcome of an instance that could not start.
fn refused(launch: &Launch<'_>, refusal: &Refusal, output: String) -> StartFailure {
    let mut log = output;
    log.push_str(&Section::Invoke.failed_end(&launch.first.request_id, Some(&refusal.message)));
    StartFailure::Function(Box::new(InvokeOutcome {
        error: Some(FunctionError::StartFailed),
        body: platform_error_body(refusal.code, &refusal.message),
        log,
        duration: Duration::ZERO,
        instance_id: launch.instance_id.clone(),
    }))
}

/// A Python worker exits when its control socket closes, so it cannot outlive the server; a
/// custom runtime's server has no such tie, and if fnbridge is SIGKILLed (no `kill_on_drop`
/// runs) it would live on, holding its port. So the kernel kills it when the thread that
/// started it exits (PR_SET_PDEATHSIG: tokio's worker threads live as long as their runtime).
/// Its own children are in its process group but get no such signal: what it forks must
/// watch for itself.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// A loopback port nobody uses right now. The server binds it moments later; the kernel hands
/// out ephemeral ports at random, so losing it to someone else in between is unlikely, and
/// would show as a start failure rather than a wrong answer only if that someone serves HTTP.
/// A loopback port free now, for an unsandboxed instance to listen on. Taken below the
/// kernel's ephemeral range (32768 and up on Linux): a port the kernel picked for `:0` is the
/// kind it hands to the next `:0` bind or outgoing connection too, and a stranger listening there
/// between our check and the instance's bind would pass for the instance being ready.
fn free_port() -> std::io::Result<u16> {
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Spread over the range so concurrent starts (here and in other processes) rarely probe
    // the same port first.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let n = NEXT.fetch_add(7919, std::sync::atomic::Ordering::Relaxed);
    let start = (u64::from(std::process::id()) * 131 + nanos + n) % u64::from(SPAN);
    for i in 0..u64::from(SPAN) {
        let port = LOW + ((start + i) % u64::from(SPAN)) as u16;
        if std::net::TcpListener::bind(http::addr(port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind(http::addr(0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether something accepts connections on `port` (for the start error's hint).
async fn listens(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(200),
            http::connect(&http::Target { port, net: None })
        )
        .await,
        Ok(Ok(_))
    )
}

/// `httpGetUrl` is a path; a full URL is reduced to its path (the host is always ours).
fn health_path(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|r| r.find('/').map_or("/", |i| &r[i..]));
    let path = rest.unwrap_or(url);
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// The leader died on a SIGKILL we did not send: the kernel's OOM killer.
fn killed_for_memory(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls_become_paths() {
        assert_eq!(health_path("/ready"), "/ready");
        assert_eq!(health_path("ready"), "/ready");
        assert_eq!(health_path("http://127.0.0.1:9000/ready?x=1"), "/ready?x=1");
        assert_eq!(health_path("http://localhost:9000"), "/");
    }

    #[test]
    fn logs_without_markers_get_ours() {
        let captured = Captured {
            text: "GET /invoke\n".to_owned(),
            started: false,
            complete: false,
        };
        assert_eq!(
            assemble(Section::Invoke, "r1", captured, None),
            "FC Invoke Start RequestId: r1\nGET /invoke\nFC Invoke End RequestId: r1\n"
        );
        let captured = Captured {
            text: "FC Invoke Start RequestId: r2\nworking\n".to_owned(),
            started: true,
            complete: false,
        };
        assert_eq!(
            assemble(
                Section::Invoke,
                "r2",
                captured,
                Some("Function timed out after 1 seconds")
            ),
            "FC Invoke Start RequestId: r2\nworking\nFC Invoke End RequestId: r2, Error: Function timed out after 1 seconds\n"
        );
    }
}
