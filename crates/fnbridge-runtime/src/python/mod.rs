//! The Python backend: one `python3` worker process per instance, running the embedded
//! bootstrap, which imports the handler once and serves invocations over a control socket.
//!
//! The worker's stdin is one end of a Unix socket pair (the bootstrap moves it off fd 0 at
//! once); stdout and stderr share one pipe that `logs` drains for the instance's whole life.
//! The worker leads its own process group, so a timeout kills whatever it started too.

mod check;
mod env;
mod frame;
mod interpreter;
mod pip;

pub use check::check_python_handler;
pub(crate) use interpreter::{Interpreter, Interpreters, install_bootstrap};
pub(crate) use pip::{Layers, install_requirements};

/// The minor versions of FC's `python3.X` runtimes, looked for on the host at start-up.
pub(crate) const FC_MINORS: &[u32] = &[9, 10, 12];

/// What a sandbox must bind for `it` to run: its installation, where it is not under `/usr`.
pub(crate) fn interpreter_binds(it: &Interpreter) -> Vec<crate::sandbox::Bind> {
    let mut binds = Vec::new();
    if !it.prefix.starts_with("/usr") && it.prefix.is_absolute() {
        binds.push(crate::sandbox::Bind::ro(&it.prefix, &it.prefix));
    }
    binds
}

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::instance::{Launch, Served, log_pre_stop, pre_stop_invocation};
use crate::logs::{LogCapture, Section, Wait, spawn_pump};
use crate::outcome::{FunctionError, platform_error_body, seconds};
use crate::process::{ProcessGroup, describe_exit};
use crate::sandbox::{BOOTSTRAP_PATH, Bind, CODE_DIR, Jail, LAYER_PATH};
use crate::spec::{FunctionSpec, Hook, Invocation};
use frame::{Reply, Request, Status, read_reply, request_head};

/// Exit code of a bootstrap that could not even report a MemoryError (see bootstrap.py).
const OOM_EXIT: i32 = 97;
/// Payloads up to this size are copied behind the header so a request is one write.
const INLINE_PAYLOAD: usize = 64 * 1024;
/// How long to wait for the End marker once the result is in. The bootstrap writes the marker
/// before the result, so this only runs out if the pipe is stuck.
const LOG_GRACE: Duration = Duration::from_secs(1);
/// How long a killed worker gets to close its end of the log pipe.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Longest an instance start waits for the layer of FC's built-in modules being installed.
const LAYER_WAIT: Duration = Duration::from_secs(180);

#[derive(Debug)]
pub(crate) struct PythonInstance {
    id: String,
    spec: Arc<FunctionSpec>,
    /// Declared before `child`: the group is killed before the child handle is dropped.
    group: ProcessGroup,
    child: Child,
    ctrl: UnixStream,
    /// Read buffer for responses, reused across calls.
    rbuf: BytesMut,
    logs: Arc<LogCapture>,
    pump: JoinHandle<()>,
    initialized: bool,
    /// The last invocation without its payload, kept only when there is a PreStop hook: its
    /// credentials and qualifier make the hook's context.
    last: Option<Invocation>,
    /// The sandbox's namespace, cgroup and network; dropped after the group is killed.
    jail: Jail,
    /// A line for the first invocation's log when another Python runs the function than the
    /// one its runtime names.
    notice: Option<String>,
}

/// How one request to the worker ended.
enum End {
    Reply(Reply),
    TimedOut,
    /// The worker went away (or broke the protocol, `protocol` is then set).
    Exited {
        status: Option<ExitStatus>,
        protocol: Option<String>,
    },
}

/// One request's result, with its log closed by the platform's End marker if the worker
/// could not write its own.
struct Step {
    verdict: Verdict,
    log: String,
    elapsed: Duration,
}

/// How a request ended, classified.
struct Verdict {
    error: Option<FunctionError>,
    body: Bytes,
    reusable: bool,
    /// For failures the worker could not report itself: the line that closes the log.
    failure: Option<String>,
}

impl PythonInstance {
    pub(crate) async fn start(launch: &Launch<'_>) -> Result<PythonInstance, RuntimeError> {
        let spec = launch.spec;
        let fail = |source: std::io::Error| RuntimeError::Spawn {
            function: spec.function_name.clone(),
            source,
        };
        let host = launch.host;
        let choice = host.pythons.choose(&spec.runtime)?;
        let it = choice.interpreter;
        let notice = choice.substitute_for.as_ref().map(|_| {
            format!(
                "fnbridge: runtime {} runs on {}\n",
                spec.runtime,
                choice.describe()
            )
        });
        host.layers.ensure(it, host.sandbox.clone());
        let layer = host.layers.wait_ready(it.minor, LAYER_WAIT).await;
        let code_dir = std::path::absolute(&spec.code_dir).map_err(fail)?;
        let mut jail = Jail::default();
        // What a sandboxed worker is given, for the jail it runs in.
        let sandboxed = |jail: &Jail| {
            let paths = env::Paths {
                code: Path::new(CODE_DIR),
                layer: layer.as_ref().map(|_| Path::new(LAYER_PATH)),
                // The cgroup limits resident memory exactly; RLIMIT_AS only without it.
                rlimit: jail.cgroup.is_none(),
            };
            let mut binds = vec![
                Bind::ro(&code_dir, CODE_DIR),
                Bind::ro(&host.bootstrap, BOOTSTRAP_PATH),
            ];
            binds.extend(interpreter_binds(it));
            if let Some(layer) = &layer {
                binds.push(Bind::ro(layer, LAYER_PATH));
            }
            let args = vec![
                "-u".to_owned(),
                BOOTSTRAP_PATH.to_owned(),
                env::bootstrap_config(launch, &paths),
            ];
            let environment = env::environment(launch, &paths, &jail.services_inside);
            (binds, args, environment)
        };
        let waiting = host
            .sandbox
            .as_ref()
            .and_then(|s| Some((s, s.take_waiting(spec.memory_mb)?)));
        let (child, ours, log_reader) = if let Some((sandbox, waiting)) = waiting {
            // A bwrap already waiting in its jail: only its arguments are left to send.
            let (binds, args, environment) = sandboxed(&waiting.jail);
            let (j, child, ours, log) = waiting
                .launch(sandbox, &it.executable, &args, &environment, &binds)
                .map_err(fail)?;
            jail = j;
            (child, ours, log)
        } else {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(fail)?;
            let (log_reader, log_writer) = std::io::pipe().map_err(fail)?;
            let mut cmd = match &host.sandbox {
                Some(sandbox) => {
                    jail = sandbox
                        .jail(&launch.instance_id, spec.memory_mb, None, true)
                        .await
                        .map_err(fail)?;
                    let (binds, args, environment) = sandboxed(&jail);
                    sandbox
                        .command(&jail, &it.executable, &args, &environment, &binds)
                        .map_err(fail)?
                }
                None => {
                    let paths = env::Paths {
                        code: &code_dir,
                        layer: layer.as_deref(),
                        rlimit: true,
                    };
                    let mut cmd = Command::new(&it.executable);
                    cmd.arg("-u")
                        .arg(&host.bootstrap)
                        .arg(env::bootstrap_config(launch, &paths))
                        .env_clear()
                        .envs(env::environment(
                            launch,
                            &paths,
                            &host.cfg.sandbox.services_on_host(),
                        ))
                        .current_dir(&code_dir);
                    cmd
                }
            };
            cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(log_writer.try_clone().map_err(fail)?))
                .stderr(Stdio::from(log_writer))
                .process_group(0)
                .kill_on_drop(true);
            let child = cmd.spawn().map_err(fail)?;
            // Closes our copies of the worker's ends, so end of stream on either means it is
            // gone.
            drop(cmd);
            (child, ours, log_reader)
        };
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let group = ProcessGroup::register(pid, &host.live);

        ours.set_nonblocking(true).map_err(fail)?;
        let ctrl = UnixStream::from_std(ours).map_err(fail)?;
        let pipe = pipe::Receiver::from_owned_fd(OwnedFd::from(log_reader)).map_err(fail)?;
        let logs = LogCapture::new(
            launch.instance_id.clone(),
            host.cfg.max_log_bytes,
            Some(pipe),
        );
        let pump = spawn_pump(Arc::clone(&logs));
        // The interpreter starts meanwhile; the handler may use the network from its import on.
        if let Err(e) = jail.network_ready().await {
            tracing::warn!(instance = %launch.instance_id, error = %e, "the instance has no outside network");
        }
        tracing::debug!(instance = %launch.instance_id, function = %spec.function_name, pid, python = %it.version, "started python instance");
        Ok(PythonInstance {
            id: launch.instance_id.clone(),
            spec: Arc::clone(spec),
            group,
            child,
            ctrl,
            rbuf: BytesMut::with_capacity(8 * 1024),
            logs,
            pump,
            initialized: false,
            last: None,
            jail,
            notice,
        })
    }

    pub(crate) async fn invoke(&mut self, inv: &Invocation) -> Served {
        if self.spec.pre_stop.is_some() {
            self.last = Some(Invocation {
                payload: Bytes::new(),
                ..inv.clone()
            });
        }
        let mut log = self.notice.take().unwrap_or_default();
        if !self.initialized {
            if let Some(timeout) = self.spec.initializer.as_ref().map(|h| h.timeout) {
                let init = self
                    .call(Request::Initialize, inv, &Bytes::new(), timeout)
                    .await;
                log = init.log;
                if init.verdict.error.is_some() {
                    let error = Some(FunctionError::InitFailed);
                    return self.served(error, init.verdict.body, log, Duration::ZERO, false);
                }
            }
            self.initialized = true;
        }
        if u32::try_from(inv.payload.len()).is_err() {
            let body = platform_error_body("PayloadTooLarge", "the event does not fit in a frame");
            let error = Some(FunctionError::Unhandled);
            return self.served(error, body, log, Duration::ZERO, true);
        }
        let run = self
            .call(Request::Invoke, inv, &inv.payload, self.spec.timeout)
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

    pub(crate) fn pgid(&self) -> i32 {
        self.group.pgid()
    }

    pub(crate) fn has_pre_stop(&self) -> bool {
        self.spec.pre_stop.is_some()
    }

    /// Runs the PreStop hook, if any, then kills the instance and waits (briefly) until it is
    /// gone.
    pub(crate) async fn stop(mut self) {
        if let Some(hook) = self.spec.pre_stop.clone() {
            self.pre_stop(&hook).await;
        }
        self.group.kill();
        let _ = tokio::time::timeout(EXIT_GRACE, self.child.wait()).await;
    }

    /// Calls `pre_stop(context)` within the hook's timeout. Nobody waits for its result, so its
    /// log and any failure go to `tracing`.
    async fn pre_stop(&mut self, hook: &Hook) {
        let inv = pre_stop_invocation(self.last.take(), &self.id);
        let step = self
            .call(Request::PreStop, &inv, &Bytes::new(), hook.timeout)
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

    /// Sends one request, waits for its response within `limit` and collects its log.
    async fn call(
        &mut self,
        kind: Request,
        inv: &Invocation,
        payload: &Bytes,
        limit: Duration,
    ) -> Step {
        let (section, what) = match kind {
            Request::Invoke => (Section::Invoke, "Function"),
            Request::Initialize => (Section::Initialize, "Initializer"),
            Request::PreStop => (Section::PreStop, "PreStop hook"),
        };
        let logged = self.logs.arm(section, &inv.request_id);
        let started = Instant::now();
        let with_credentials = self.spec.credentials_in_request;
        let ctrl = &mut self.ctrl;
        let rbuf = &mut self.rbuf;
        let exchange = async {
            let inline = payload.len() <= INLINE_PAYLOAD;
            let mut frame = request_head(
                kind,
                inv,
                with_credentials,
                payload.len() as u32,
                if inline { payload.len() } else { 0 },
            );
            if inline {
                frame.extend_from_slice(payload);
                ctrl.write_all(&frame).await?;
            } else {
                ctrl.write_all(&frame).await?;
                ctrl.write_all(payload).await?;
            }
            read_reply(ctrl, rbuf).await
        };
        let end = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(reply)) => End::Reply(reply),
            Ok(Err(e)) => {
                // Kill before reaping: the group id stays ours until the leader is reaped.
                self.group.kill();
                let status = tokio::time::timeout(EXIT_GRACE, self.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                let protocol = (e.kind() == std::io::ErrorKind::InvalidData).then(|| e.to_string());
                End::Exited { status, protocol }
            }
            Err(_) => {
                self.group.kill();
                End::TimedOut
            }
        };
        let elapsed = started.elapsed();
        let captured = self.logs.finish(logged, LOG_GRACE, Wait::ForEnd).await;
        let verdict = self.settle(end, what, limit);
        let mut log = captured.text;
        if !captured.complete {
            log.push_str(&section.failed_end(&inv.request_id, verdict.failure.as_deref()));
        }
        Step {
            verdict,
            log,
            elapsed,
        }
    }

    fn settle(&self, end: End, what: &str, limit: Duration) -> Verdict {
        match end {
            End::Reply(Reply {
                status: Status::Ok,
                body,
            }) => Verdict {
                error: None,
                body,
                reusable: true,
                failure: None,
            },
            End::Reply(Reply {
                status: Status::Error,
                body,
            }) => Verdict {
                error: Some(FunctionError::Unhandled),
                body,
                reusable: true,
                failure: None,
            },
            End::Reply(Reply {
                status: Status::OutOfMemory,
                body,
            }) => Verdict {
                error: Some(FunctionError::OutOfMemory),
                body,
                reusable: false,
                failure: Some(self.out_of_memory_message()),
            },
            End::TimedOut => {
                let message = format!("{what} timed out after {} seconds", seconds(limit));
                Verdict {
                    error: Some(FunctionError::Timeout),
                    body: platform_error_body("FunctionTimeout", &message),
                    reusable: false,
                    failure: Some(message),
                }
            }
            End::Exited {
                status,
                protocol: Some(detail),
            } => {
                tracing::warn!(instance = %self.id, ?status, %detail, "python instance broke the protocol");
                let message = "Process sent an invalid response".to_owned();
                Verdict {
                    error: Some(FunctionError::Crashed),
                    body: platform_error_body("FunctionCrashed", &message),
                    reusable: false,
                    failure: Some(message),
                }
            }
            End::Exited {
                status,
                protocol: None,
            } => {
                if status.is_some_and(killed_for_memory) || self.jail.oom_kills() > 0 {
                    let message = self.out_of_memory_message();
                    return Verdict {
                        error: Some(FunctionError::OutOfMemory),
                        body: platform_error_body("FunctionOutOfMemory", &message),
                        reusable: false,
                        failure: Some(message),
                    };
                }
                let how = match status {
                    Some(s) => describe_exit(s),
                    None => "still running".to_owned(),
                };
                let message = format!("Process exited unexpectedly ({how})");
                Verdict {
                    error: Some(FunctionError::Crashed),
                    body: platform_error_body("FunctionCrashed", &message),
                    reusable: false,
                    failure: Some(message),
                }
            }
        }
    }

    fn out_of_memory_message(&self) -> String {
        format!(
            "Function ran out of memory (limit {} MB)",
            self.spec.memory_mb
        )
    }
}

impl Drop for PythonInstance {
    fn drop(&mut self) {
        self.group.kill();
        // Output after death belongs to no invocation, and a grandchild that escaped the group
        // must not keep the task alive.
        self.pump.abort();
    }
}

/// The worker died on SIGKILL we did not send (the kernel's OOM killer: we only signal after
/// the socket closed, and a dying process keeps its first exit cause), or the bootstrap gave up
/// after a MemoryError.
fn killed_for_memory(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL) || status.code() == Some(OOM_EXIT)
}
