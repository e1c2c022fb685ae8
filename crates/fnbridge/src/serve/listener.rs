//! The API's HTTP/1 listener: an accept loop over hyper's connection builder that keeps slow,
//! idle or too many clients from taking the API down.
//!
//! - At most `max_connections` connections are open at once; beyond that a new connection is
//!   closed at once (a warning is logged at most once per [`WARN_EVERY`]).
//! - A connection must deliver a complete request head within `header_timeout`, counted from
//!   the accept for its first request and from the first byte for later ones.
//! - A keep-alive connection waiting for its next request is closed after `idle_timeout`.
//! - A request being handled, or its response being written, is never cut by these timers (a
//!   synchronous invocation may take long); reading its body is bounded by the API's own body
//!   deadline.
//! - Accept errors (out of file descriptors) are logged and retried with backoff, not spun on.
//! - On shutdown no new connection is accepted, idle ones are closed, and requests in flight get
//!   `drain` to finish.
//!
//! hyper's own `header_read_timeout` starts again whenever a connection waits for a request
//! head, idle keep-alive time included, so it cannot express an idle timeout longer than the
//! header timeout; both are kept here, per connection, from what the connection reads and
//! whether a request is in flight.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// The most often a repeated condition (connections refused, accept failing) is logged.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Longest pause between accept attempts while accepting fails.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let trim = Arc::new(Notify::new());
    let trimmer = tokio::spawn(give_back_memory(trim.clone()));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // The head and idle timers are this module's (see the module doc).
    builder.keep_alive(true).header_read_timeout(None);
    let mut refused = Throttle::default();
    let mut accept_failed = Throttle::default();
    let mut backoff = Duration::ZERO;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            // The client gave up before we took the connection: nothing wrong here.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: accepting again at once would fail again
                // and spin. Wait, and let connections close.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                if let Some(failed) = accept_failed.due() {
                    tracing::error!(
                        error = %e,
                        failed,
                        open = limits.max_connections - slots.available_permits(),
                        "cannot accept API connections (out of file descriptors? raise `ulimit -n` or lower --max-connections); retrying"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(n) = refused.due() {
                tracing::warn!(
                    limit = limits.max_connections,
                    refused = n,
                    "refusing API connections: --max-connections are open"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(Conn::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            conn: conn.clone(),
        });
        let service = {
            let (app, conn) = (app.clone(), conn.clone());
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let busy = conn.busy();
                let call = app.clone().oneshot(req.map(Body::new));
                async move {
                    let resp = call.await?;
                    // The guard travels with the response body: the request ends when hyper
                    // has written the body and drops it.
                    Ok::<_, Infallible>(resp.map(move |body| {
                        body.map_frame(move |frame: Frame<Bytes>| {
                            let _held = &busy;
                            frame
                        })
                    }))
                }
            })
        };
        let serving = graceful.watch(builder.serve_connection(io, service));
        let trim = trim.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = serving => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "API connection ended with an error");
                    }
                }
                why = conn.expired(limits) => {
                    tracing::debug!(%peer, why, "closing API connection");
                }
            }
            drop(slot);
            trim.notify_one();
        });
    }
    drop(listener);
    trimmer.abort();
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_s = drain.as_secs_f64(),
            "API requests still running at shutdown; they are cut off"
        );
    }
}

/// Errors that concern one connection, not the listener.
/// How often at most freed connection memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Hands memory freed by closed connections back to the system, at most every `TRIM_EVERY`
/// while connections close. glibc's allocator keeps freed blocks of its per-thread arenas
/// mapped: after a burst of connections (buffers of a few KB each, freed on many threads) the
/// process would otherwise stay at its peak size for good. `malloc_trim` returns the unused
/// pages of every arena.
async fn give_back_memory(closed: Arc<Notify>) {
    loop {
        closed.notified().await;
        tokio::time::sleep(TRIM_EVERY).await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let _ = tokio::task::spawn_blocking(|| {
            // SAFETY: malloc_trim only releases free memory; it is thread-safe in glibc.
            unsafe { libc::malloc_trim(0) }
        })
        .await;
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Lets a repeated event through at most once per [`WARN_EVERY`], counting the ones held back.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    /// `Some(events since the last one let through)` when this one may be logged.
    fn due(&mut self) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.count))
    }
}

/// Where a connection is in its request cycle; each phase but `Busy` has a deadline.
#[derive(Clone, Copy)]
enum Phase {
    /// Accepted at this instant, nothing read yet.
    Fresh(Instant),
    /// Between requests since this instant.
    Idle(Instant),
    /// Reading a request head whose time started at this instant.
    Head(Instant),
    /// A request is being handled or its response written.
    Busy,
}

struct Conn {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            phase: Mutex::new(Phase::Fresh(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *p = f(*p);
        drop(p);
        self.changed.notify_one();
    }

    /// Bytes arrived: a request head has begun (unless one is in flight).
    fn read_some(&self) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *p = match *p {
            // The first request's head time counts from the accept.
            Phase::Fresh(t) => Phase::Head(t),
            Phase::Idle(_) => Phase::Head(Instant::now()),
            Phase::Head(_) | Phase::Busy => return,
        };
        drop(p);
        self.changed.notify_one();
    }

    /// A request's head is complete; the connection is busy until the guard is dropped.
    fn busy(self: &Arc<Self>) -> BusyGuard {
        self.set(|_| Phase::Busy);
        BusyGuard(self.clone())
    }

    /// Resolves, with the reason, once the connection has overrun its current deadline.
    async fn expired(&self, limits: Limits) -> &'static str {
        loop {
            // Created before the phase is read, so a change in between is not missed.
            let changed = self.changed.notified();
            let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
            let (deadline, why) = match phase {
                Phase::Fresh(t) => (
                    t + limits.header_timeout,
                    "no request within the header timeout",
                ),
                Phase::Head(t) => (
                    t + limits.header_timeout,
                    "request head not complete within the header timeout",
                ),
                Phase::Idle(t) => (
                    t + limits.idle_timeout,
                    "idle longer than the idle connection timeout",
                ),
                Phase::Busy => {
                    changed.await;
                    continue;
                }
            };
            if deadline <= Instant::now() {
                return why;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// Marks the end of a request when dropped: hyper drops the response body once it is written.
struct BusyGuard(Arc<Conn>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(|_| Phase::Idle(Instant::now()));
    }
}

/// The TCP stream, telling its connection when request bytes arrive.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
