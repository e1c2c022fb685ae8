//! Per-invocation logs: drains an instance's output pipe and cuts out the lines between the
//! `FC ... Start/End RequestId` markers of the invocation in progress.
//!
//! The pump reads the pipe for the instance's whole life, also between invocations, so output
//! never blocks the worker. A capture runs from `arm` (just before the request is sent) to the
//! End marker; output between captures goes to `tracing` at debug level. A capture keeps at
//! most `limit` bytes and counts the rest.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A line longer than this is passed on in pieces, keeping `MARKER_TAIL` bytes back so a marker
/// that follows output without a newline is still recognised at the end of the line.
const MAX_LINE: usize = 64 * 1024;
const MARKER_TAIL: usize = 1024;

/// Which marker pair delimits a capture.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Section {
    Initialize,
    Invoke,
}

impl Section {
    fn markers(self, request_id: &str) -> (String, String) {
        let name = match self {
            Section::Initialize => "Initialize",
            Section::Invoke => "Invoke",
        };
        (
            format!("FC {name} Start RequestId: {request_id}"),
            format!("FC {name} End RequestId: {request_id}"),
        )
    }

    /// The End marker the platform writes itself when the worker could not (timeout, crash),
    /// in the form FC's own sample servers use.
    pub(crate) fn failed_end(self, request_id: &str, error: Option<&str>) -> String {
        let (_, end) = self.markers(request_id);
        match error {
            Some(message) => format!("{end}, Error: {message}\n"),
            None => format!("{end}\n"),
        }
    }
}

/// What one capture collected.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) text: String,
    /// Whether the End marker was seen (and is the last line of `text`).
    pub(crate) complete: bool,
}

#[derive(Debug)]
pub(crate) struct LogCapture {
    instance_id: String,
    limit: usize,
    /// The instance's output. Read by the pump whenever it is readable, and by the invocation
    /// itself right after the response (`finish`), which usually finds the End marker there
    /// and so need not wait for the pump to be scheduled. Reads happen under `state`'s lock so
    /// chunks are fed in order.
    pipe: Option<pipe::Receiver>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes after the last newline.
    pending: Vec<u8>,
    phase: Phase,
    text: String,
    dropped: usize,
    complete: bool,
    eof: bool,
    /// Fired when the End marker arrives; dropped at end of stream.
    waiter: Option<oneshot::Sender<()>>,
    /// Read buffer, kept between reads.
    buf: Vec<u8>,
}

/// Whether the pipe is still open after a drain.
#[derive(Debug, PartialEq, Eq)]
enum Drain {
    Open,
    Closed,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Idle,
    /// Waiting for the Start marker.
    Armed {
        start: String,
        end: String,
    },
    Capturing {
        end: String,
    },
}

impl LogCapture {
    /// Captures from `pipe` (`None` in unit tests, which feed bytes by hand).
    pub(crate) fn new(
        instance_id: String,
        limit: usize,
        pipe: Option<pipe::Receiver>,
    ) -> Arc<LogCapture> {
        Arc::new(LogCapture {
            instance_id,
            limit,
            pipe,
            state: Mutex::new(State::default()),
        })
    }

    /// Starts capturing the next `section` of `request_id`. The receiver completes when its End
    /// marker has been read, or fails at end of stream.
    pub(crate) fn arm(&self, section: Section, request_id: &str) -> oneshot::Receiver<()> {
        let (start, end) = section.markers(request_id);
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        st.phase = Phase::Armed { start, end };
        st.text.clear();
        st.dropped = 0;
        st.complete = false;
        if !st.eof {
            st.waiter = Some(tx);
        }
        rx
    }

    /// Ends the capture and returns what it holds.
    pub(crate) fn take(&self) -> Captured {
        let mut st = self.lock();
        st.phase = Phase::Idle;
        st.waiter = None;
        if !st.complete {
            let dropped = st.dropped;
            st.push_truncation_note(dropped);
        }
        st.dropped = 0;
        Captured {
            text: std::mem::take(&mut st.text),
            complete: std::mem::replace(&mut st.complete, false),
        }
    }

    /// Ends the capture once the End marker is in (or the pipe closed, or `grace` ran out).
    pub(crate) async fn finish(&self, logged: oneshot::Receiver<()>, grace: Duration) -> Captured {
        self.drain();
        // Already resolved if the drain found the marker.
        let _ = tokio::time::timeout(grace, logged).await;
        self.take()
    }

    /// Reads what the pipe holds now, without waiting. Bounded, so a flood cannot hold the lock
    /// (or a runtime thread) for long.
    fn drain(&self) -> Drain {
        const MAX_READS: usize = 16;
        let Some(pipe) = &self.pipe else {
            return Drain::Open;
        };
        let mut st = self.lock();
        let mut buf = std::mem::take(&mut st.buf);
        buf.resize(64 * 1024, 0);
        let mut state = Drain::Open;
        for _ in 0..MAX_READS {
            match pipe.try_read(&mut buf) {
                Ok(0) => state = Drain::Closed,
                Ok(n) => {
                    self.feed_locked(&mut st, &buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(instance = %self.instance_id, error = %e, "reading instance output failed");
                    state = Drain::Closed;
                }
            }
            break;
        }
        st.buf = buf;
        if state == Drain::Closed {
            self.close_locked(&mut st);
        }
        state
    }

    #[cfg(test)]
    fn feed(&self, chunk: &[u8]) {
        let mut st = self.lock();
        self.feed_locked(&mut st, chunk);
    }

    fn feed_locked(&self, st: &mut State, mut chunk: &[u8]) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (line, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            if st.pending.is_empty() {
                self.line(st, line);
            } else {
                let mut joined = std::mem::take(&mut st.pending);
                joined.extend_from_slice(line);
                self.line(st, &joined);
                joined.clear();
                st.pending = joined;
            }
            chunk = rest;
        }
        st.pending.extend_from_slice(chunk);
        if st.pending.len() > MAX_LINE {
            let cut = st.pending.len() - MARKER_TAIL;
            let head: Vec<u8> = st.pending.drain(..cut).collect();
            self.fragment(st, &head);
        }
    }

    #[cfg(test)]
    fn close(&self) {
        let mut st = self.lock();
        self.close_locked(&mut st);
    }

    fn close_locked(&self, st: &mut State) {
        if !st.pending.is_empty() {
            let rest = std::mem::take(&mut st.pending);
            self.line(st, &rest);
        }
        st.eof = true;
        st.waiter = None;
    }

    fn line(&self, st: &mut State, line: &[u8]) {
        match std::mem::take(&mut st.phase) {
            Phase::Idle => self.stray(line),
            Phase::Armed { start, end } => {
                if line.ends_with(start.as_bytes()) {
                    st.push_line(start.as_bytes(), usize::MAX);
                    st.phase = Phase::Capturing { end };
                } else {
                    // Before the Start marker comes only what the interpreter printed while
                    // starting (a broken environment, a failing bootstrap): worth keeping.
                    st.push_line(line, self.limit);
                    st.phase = Phase::Armed { start, end };
                }
            }
            Phase::Capturing { end } => {
                if line.ends_with(end.as_bytes()) {
                    let before = &line[..line.len() - end.len()];
                    if !before.is_empty() {
                        st.push_line(before, self.limit);
                    }
                    let dropped = std::mem::take(&mut st.dropped);
                    st.push_truncation_note(dropped);
                    // Markers are always kept, whatever the limit, so the log can be cut again downstream.
                    st.push_line(end.as_bytes(), usize::MAX);
                    st.complete = true;
                    if let Some(waiter) = st.waiter.take() {
                        let _ = waiter.send(());
                    }
                } else {
                    st.push_line(line, self.limit);
                    st.phase = Phase::Capturing { end };
                }
            }
        }
    }

    /// Part of an overlong line: kept (within the limit) but never a marker.
    fn fragment(&self, st: &mut State, bytes: &[u8]) {
        match st.phase {
            Phase::Idle => self.stray(bytes),
            _ => st.push(bytes, false, self.limit),
        }
    }

    fn stray(&self, line: &[u8]) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let shown = &line[..line.len().min(1024)];
            tracing::debug!(instance = %self.instance_id, "{}", String::from_utf8_lossy(shown));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn push_line(&mut self, line: &[u8], limit: usize) {
        self.push(line, true, limit);
    }

    fn push(&mut self, bytes: &[u8], newline: bool, limit: usize) {
        let len = bytes.len() + usize::from(newline);
        if self.text.len().saturating_add(len) > limit {
            self.dropped += len;
            return;
        }
        self.text.push_str(&String::from_utf8_lossy(bytes));
        if newline {
            self.text.push('\n');
        }
    }

    fn push_truncation_note(&mut self, dropped: usize) {
        if dropped > 0 {
            let note = format!("fnbridge: log truncated, {dropped} bytes dropped\n");
            self.text.push_str(&note);
        }
    }
}

/// Drains the capture's pipe whenever it is readable, until every writer has gone.
pub(crate) fn spawn_pump(capture: Arc<LogCapture>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(pipe) = &capture.pipe else { return };
        loop {
            if pipe.readable().await.is_err() {
                capture.close_locked(&mut capture.lock());
                break;
            }
            if capture.drain() == Drain::Closed {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(limit: usize) -> Arc<LogCapture> {
        LogCapture::new("c-test".to_owned(), limit, None)
    }

    #[test]
    fn cuts_out_the_armed_invocation() {
        let cap = capture(1 << 20);
        cap.feed(b"stray before\n");
        let mut rx = cap.arm(Section::Invoke, "r1");
        cap.feed(b"starting up\nFC Invoke Start RequestId: r1\nhello\nwor");
        assert!(rx.try_recv().is_err());
        cap.feed(b"ld\nFC Invoke End RequestId: r1\nafter\n");
        assert!(rx.try_recv().is_ok());
        let got = cap.take();
        assert!(got.complete);
        assert_eq!(
            got.text,
            "starting up\nFC Invoke Start RequestId: r1\nhello\nworld\nFC Invoke End RequestId: r1\n"
        );
    }

    #[test]
    fn end_marker_after_output_without_newline() {
        let cap = capture(1 << 20);
        let _rx = cap.arm(Section::Invoke, "r2");
        cap.feed(b"FC Invoke Start RequestId: r2\nno newlineFC Invoke End RequestId: r2\n");
        let got = cap.take();
        assert!(got.complete);
        assert_eq!(
            got.text,
            "FC Invoke Start RequestId: r2\nno newline\nFC Invoke End RequestId: r2\n"
        );
    }

    #[test]
    fn other_request_ids_do_not_end_the_capture() {
        let cap = capture(1 << 20);
        let _rx = cap.arm(Section::Invoke, "r3");
        cap.feed(b"FC Invoke Start RequestId: r3\nFC Invoke End RequestId: r30 \n");
        assert!(!cap.take().complete);
    }

    #[test]
    fn a_flood_is_truncated_with_a_note() {
        let cap = capture(100);
        let _rx = cap.arm(Section::Invoke, "r4");
        cap.feed(b"FC Invoke Start RequestId: r4\n");
        for _ in 0..1000 {
            cap.feed(b"0123456789\n");
        }
        let long = vec![b'x'; 3 * MAX_LINE];
        cap.feed(&long);
        cap.feed(b"FC Invoke End RequestId: r4\n");
        let got = cap.take();
        assert!(got.complete);
        assert!(got.text.len() < 300, "{}", got.text.len());
        assert!(got.text.contains("log truncated"));
        assert!(got.text.ends_with("FC Invoke End RequestId: r4\n"));
    }

    #[test]
    fn end_of_stream_releases_the_waiter() {
        let cap = capture(1 << 20);
        let mut rx = cap.arm(Section::Initialize, "r5");
        cap.feed(b"FC Initialize Start RequestId: r5\npartial");
        cap.close();
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        let got = cap.take();
        assert!(!got.complete);
        assert_eq!(got.text, "FC Initialize Start RequestId: r5\npartial\n");
        let mut rx = cap.arm(Section::Invoke, "r6");
        assert!(rx.try_recv().is_err());
    }
}
