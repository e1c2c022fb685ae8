//! A request body with a deadline: reading it fails once `limit` has passed since the reader
//! first had to wait for it, however the bytes trickle in, so a client sending a body slowly cannot hold a connection (and
//! a handler) forever. The router answers such a request `408 RequestTimeout`.
//!
//! tower-http's `RequestBodyTimeoutLayer` restarts its timer on every frame, which a client
//! sending one byte at a time defeats; this one bounds the whole read.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

pub(crate) struct DeadlineBody {
    inner: Body,
    limit: Duration,
    /// Started at the first read that has to wait, not when the request arrived: time spent
    /// before the handler reads (authentication, a queue) is not the client's.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    /// Wraps `inner`; `expired` is set if the deadline ends the read.
    pub(crate) fn new(inner: Body, limit: Duration, expired: Arc<AtomicBool>) -> DeadlineBody {
        DeadlineBody {
            inner,
            limit,
            sleep: None,
            expired,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        // What has arrived is delivered even past the deadline.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let limit = this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(format!(
                "the request body was not received within {} s",
                limit.as_secs_f64()
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
