//! Per-invocation logs: drains an instance's output pipe and cuts out the lines of each
//! invocation in progress, between its `FC ... Start/End RequestId` markers.
//!
//! The pump reads the pipe for the instance's whole life, also between invocations, so output
//! never blocks the instance. A capture runs from `arm` (just before the request is sent) to its
//! End marker or to `take`; output while no capture is open goes to `tracing` at debug level.
//! Each capture keeps at most `limit` bytes and counts the rest.
//!
//! Python workers always write both markers (the bootstrap does), and serve one invocation at a
//! time. Custom-runtime servers may write them or not, and may serve several invocations at
//! once, hence the rules for lines that are not markers:
//! - a capture is open from `arm` until its End marker; a capture whose Start marker has not
//!   been seen also keeps what comes before it (a starting interpreter's complaints, or all of
//!   the output of a server that writes no markers: `Wait::IfStarted` then ends the capture
//!   right after the response, and the caller writes the markers itself);
//! - with one capture open, every line is its own;
//! - with several open, a line that contains one of their request ids goes to those only (FC's
//!   recommended log format starts with the request id); any other line goes to all of them, as
//!   it cannot be told apart.

use std::sync::{Arc, Mutex, Weak};
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
    PreStop,
}

impl Section {
    fn markers(self, request_id: &str) -> (String, String) {
        let name = match self {
            Section::Initialize => "Initialize",
            Section::Invoke => "Invoke",
            Section::PreStop => "PreStop",
        };
        (
            format!("FC {name} Start RequestId: {request_id}"),
            format!("FC {name} End RequestId: {request_id}"),
        )
    }

    /// The Start marker the platform writes itself for a server that writes none.
    pub(crate) fn start_line(self, request_id: &str) -> String {
        let (start, _) = self.markers(request_id);
        format!("{start}\n")
    }

    /// The End marker the platform writes itself when the instance could not (timeout, crash),
    /// in the form FC's own sample servers use.
    pub(crate) fn failed_end(self, request_id: &str, error: Option<&str>) -> String {
        let (_, end) = self.markers(request_id);
        match error {
            Some(message) => format!("{end}, Error: {message}\n"),
            None => format!("{end}\n"),
        }
    }
}

/// How long `finish` waits after draining what is already in the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// For the End marker (up to the grace period): the instance always writes one.
    ForEnd,
    /// For the End marker only if the Start marker was seen: a server that wrote no Start
    /// marker writes no End marker either, and its output so far is all there is.
    IfStarted,
    /// For the end of the stream (the process is gone; collect its last words).
    ForEof,
}

/// What one capture collected.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) text: String,
    /// Whether the Start marker was seen.
    pub(crate) started: bool,
    /// Whether the End marker was seen (and is the last line of `text`).
    pub(crate) complete: bool,
}

/// One armed capture; hand it back to `finish` or `take`. Dropped unused (its invocation was
/// cancelled), it closes the capture, which would otherwise take lines forever.
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    done: oneshot::Receiver<()>,
    owner: Weak<LogCapture>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.lock().captures.retain(|c| c.id != self.id);
        }
    }
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
    captures: Vec<Capture>,
    next_id: u64,
    eof: bool,
    /// Read buffer, kept between reads.
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Capture {
    id: u64,
    /// `None` for a plain capture (everything until taken, e.g. a server's start-up output).
    markers: Option<Markers>,
    phase: Phase,
    text: String,
    dropped: usize,
    /// Fired when the End marker arrives; dropped at end of stream.
    waiter: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
struct Markers {
    request_id: String,
    start: String,
    end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the Start marker (keeping what comes before it).
    Armed,
    Capturing,
    /// The End marker was seen; nothing more goes in.
    Done,
}

/// Whether the pipe is still open after a drain.
#[derive(Debug, PartialEq, Eq)]
enum Drain {
    Open,
    Closed,
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

    /// Starts capturing the next `section` of `request_id`. The ticket's receiver completes
    /// when its End marker has been read, or fails at end of stream.
    pub(crate) fn arm(self: &Arc<Self>, section: Section, request_id: &str) -> Ticket {
        let (start, end) = section.markers(request_id);
        let markers = Markers {
            request_id: request_id.to_owned(),
            start,
            end,
        };
        self.open(Some(markers))
    }

    /// Starts capturing everything, markers or not, until `take` (or end of stream).
    pub(crate) fn arm_plain(self: &Arc<Self>) -> Ticket {
        self.open(None)
    }

    fn open(self: &Arc<Self>, markers: Option<Markers>) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        let waiter = (!st.eof).then_some(tx);
        st.captures.push(Capture {
            id,
            markers,
            phase: Phase::Armed,
            text: String::new(),
            dropped: 0,
            waiter,
        });
        Ticket {
            id,
            done: rx,
            owner: Arc::downgrade(self),
        }
    }

    /// Ends a capture and returns what it holds.
    pub(crate) fn take(&self, ticket: Ticket) -> Captured {
        // Taken here; the ticket's drop then finds nothing left to close.
        self.take_id(ticket.id)
    }

    fn take_id(&self, id: u64) -> Captured {
        let mut st = self.lock();
        let Some(pos) = st.captures.iter().position(|c| c.id == id) else {
            return Captured {
                text: String::new(),
                started: false,
                complete: false,
            };
        };
        let mut cap = st.captures.swap_remove(pos);
        let complete = cap.phase == Phase::Done;
        if !complete {
            push_truncation_note(&mut cap.text, cap.dropped);
        }
        Captured {
            text: cap.text,
            started: cap.phase != Phase::Armed,
            complete,
        }
    }

    /// Ends a capture once its End marker is in (or the pipe closed, or `grace` ran out), after
    /// reading whatever the pipe already holds; see `Wait`.
    pub(crate) async fn finish(&self, ticket: Ticket, grace: Duration, wait: Wait) -> Captured {
        self.drain();
        let id = ticket.id;
        let wait = match wait {
            Wait::ForEnd | Wait::ForEof => true,
            Wait::IfStarted => self
                .lock()
                .captures
                .iter()
                .any(|c| c.id == id && c.phase != Phase::Armed),
        };
        let mut ticket = ticket;
        // Already resolved if the drain found the marker.
        if wait {
            let _ = tokio::time::timeout(grace, &mut ticket.done).await;
        }
        self.take(ticket)
    }

    /// Reads what the pipe holds now, without waiting, so output written before this point is
    /// not mistaken for what comes next. Bounded, so a flood cannot hold the lock (or a runtime
    /// thread) for long.
    pub(crate) fn drain(&self) {
        self.drain_inner();
    }

    fn drain_inner(&self) -> Drain {
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
        for cap in &mut st.captures {
            cap.waiter = None;
        }
    }

    fn line(&self, st: &mut State, line: &[u8]) {
        let limit = self.limit;
        // Markers first: a marker line belongs to its own capture only.
        for cap in &mut st.captures {
            let Some(m) = &cap.markers else { continue };
            match cap.phase {
                Phase::Armed => {
                    if let Some(at) = find_marker(line, m.start.as_bytes()) {
                        if at > 0 {
                            push(&mut cap.text, &mut cap.dropped, &line[..at], true, limit);
                        }
                        // Markers are always kept, whatever the limit, so the log can be cut
                        // again downstream.
                        push(
                            &mut cap.text,
                            &mut cap.dropped,
                            &line[at..],
                            true,
                            usize::MAX,
                        );
                        cap.phase = Phase::Capturing;
                        return;
                    }
                }
                Phase::Capturing => {
                    if let Some(at) = find_marker(line, m.end.as_bytes()) {
                        if at > 0 {
                            push(&mut cap.text, &mut cap.dropped, &line[..at], true, limit);
                        }
                        let dropped = std::mem::take(&mut cap.dropped);
                        push_truncation_note(&mut cap.text, dropped);
                        push(
                            &mut cap.text,
                            &mut cap.dropped,
                            &line[at..],
                            true,
                            usize::MAX,
                        );
                        cap.phase = Phase::Done;
                        if let Some(waiter) = cap.waiter.take() {
                            let _ = waiter.send(());
                        }
                        return;
                    }
                }
                Phase::Done => {}
            }
        }
        self.ordinary(st, line, true);
    }

    /// Part of an overlong line: kept (within the limit) but never a marker.
    fn fragment(&self, st: &mut State, bytes: &[u8]) {
        self.ordinary(st, bytes, false);
    }

    /// A line that is no marker: to the open captures it belongs to (see the module docs).
    fn ordinary(&self, st: &mut State, line: &[u8], newline: bool) {
        let limit = self.limit;
        let open = st
            .captures
            .iter()
            .filter(|c| c.phase != Phase::Done)
            .count();
        if open == 0 {
            self.stray(line);
            return;
        }
        let mentions = |c: &Capture| {
            c.markers
                .as_ref()
                .is_some_and(|m| contains(line, m.request_id.as_bytes()))
        };
        let targeted = open > 1
            && st
                .captures
                .iter()
                .any(|c| c.phase != Phase::Done && mentions(c));
        for cap in &mut st.captures {
            if cap.phase == Phase::Done || (targeted && !mentions(cap)) {
                continue;
            }
            push(&mut cap.text, &mut cap.dropped, line, newline, limit);
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

/// Where `marker` starts in `line`, if it is followed by nothing or by `,` (FC's sample servers
/// write `FC Invoke End RequestId: <id>, Error: Unhandled function error`). The last occurrence
/// counts, so output without a newline may precede it.
fn find_marker(line: &[u8], marker: &[u8]) -> Option<usize> {
    if line.len() < marker.len() {
        return None;
    }
    (0..=line.len() - marker.len()).rev().find(|&at| {
        line[at..].starts_with(marker) && {
            let rest = &line[at + marker.len()..];
            rest.is_empty() || rest[0] == b','
        }
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn push(text: &mut String, dropped: &mut usize, bytes: &[u8], newline: bool, limit: usize) {
    let len = bytes.len() + usize::from(newline);
    if text.len().saturating_add(len) > limit {
        *dropped += len;
        return;
    }
    text.push_str(&String::from_utf8_lossy(bytes));
    if newline {
        text.push('\n');
    }
}

fn push_truncation_note(text: &mut String, dropped: usize) {
    if dropped > 0 {
        let note = format!("fnbridge: log truncated, {dropped} bytes dropped\n");
        text.push_str(&note);
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
            if capture.drain_inner() == Drain::Closed {
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
        let mut t = cap.arm(Section::Invoke, "r1");
        cap.feed(b"starting up\nFC Invoke Start RequestId: r1\nhello\nwor");
        assert!(t.done.try_recv().is_err());
        cap.feed(b"ld\nFC Invoke End RequestId: r1\nafter\n");
        assert!(t.done.try_recv().is_ok());
        let got = cap.take(t);
        assert!(got.complete && got.started);
        assert_eq!(
            got.text,
            "starting up\nFC Invoke Start RequestId: r1\nhello\nworld\nFC Invoke End RequestId: r1\n"
        );
    }

    #[test]
    fn end_marker_after_output_without_newline() {
        let cap = capture(1 << 20);
        let t = cap.arm(Section::Invoke, "r2");
        cap.feed(b"FC Invoke Start RequestId: r2\nno newlineFC Invoke End RequestId: r2\n");
        let got = cap.take(t);
        assert!(got.complete);
        assert_eq!(
            got.text,
            "FC Invoke Start RequestId: r2\nno newline\nFC Invoke End RequestId: r2\n"
        );
    }

    #[test]
    fn other_request_ids_do_not_end_the_capture() {
        let cap = capture(1 << 20);
        let t = cap.arm(Section::Invoke, "r3");
        cap.feed(b"FC Invoke Start RequestId: r3\nFC Invoke End RequestId: r30 \n");
        assert!(!cap.take(t).complete);
    }

    #[test]
    fn end_marker_with_an_error_suffix_counts() {
        let cap = capture(1 << 20);
        let t = cap.arm(Section::Invoke, "r7");
        cap.feed(b"FC Invoke Start RequestId: r7\nboom\nFC Invoke End RequestId: r7, Error: Unhandled function error\n");
        let got = cap.take(t);
        assert!(got.complete);
        assert!(
            got.text
                .ends_with("boom\nFC Invoke End RequestId: r7, Error: Unhandled function error\n")
        );
    }

    #[test]
    fn a_flood_is_truncated_with_a_note() {
        let cap = capture(100);
        let t = cap.arm(Section::Invoke, "r4");
        cap.feed(b"FC Invoke Start RequestId: r4\n");
        for _ in 0..1000 {
            cap.feed(b"0123456789\n");
        }
        let long = vec![b'x'; 3 * MAX_LINE];
        cap.feed(&long);
        cap.feed(b"FC Invoke End RequestId: r4\n");
        let got = cap.take(t);
        assert!(got.complete);
        assert!(got.text.len() < 300, "{}", got.text.len());
        assert!(got.text.contains("log truncated"));
        assert!(got.text.ends_with("FC Invoke End RequestId: r4\n"));
    }

    #[test]
    fn end_of_stream_releases_the_waiter() {
        let cap = capture(1 << 20);
        let mut t = cap.arm(Section::Initialize, "r5");
        cap.feed(b"FC Initialize Start RequestId: r5\npartial");
        cap.close();
        assert!(matches!(
            t.done.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        let got = cap.take(t);
        assert!(!got.complete);
        assert_eq!(got.text, "FC Initialize Start RequestId: r5\npartial\n");
        let mut t = cap.arm(Section::Invoke, "r6");
        assert!(t.done.try_recv().is_err());
    }

    #[test]
    fn concurrent_captures_split_by_markers_and_request_ids() {
        let cap = capture(1 << 20);
        let a = cap.arm(Section::Invoke, "ra");
        let b = cap.arm(Section::Invoke, "rb");
        cap.feed(b"FC Invoke Start RequestId: ra\nFC Invoke Start RequestId: rb\n");
        cap.feed(b"2024 ra [INFO] for a\n2024 rb [INFO] for b\nshared\n");
        cap.feed(b"FC Invoke End RequestId: ra\nonly b is open\nFC Invoke End RequestId: rb\n");
        let a = cap.take(a);
        let b = cap.take(b);
        assert_eq!(
            a.text,
            "FC Invoke Start RequestId: ra\n2024 ra [INFO] for a\nshared\nFC Invoke End RequestId: ra\n"
        );
        assert_eq!(
            b.text,
            "FC Invoke Start RequestId: rb\n2024 rb [INFO] for b\nshared\nonly b is open\nFC Invoke End RequestId: rb\n"
        );
    }

    #[test]
    fn without_markers_a_capture_keeps_what_came_while_it_was_open() {
        let cap = capture(1 << 20);
        cap.feed(b"before\n");
        let t = cap.arm(Section::Invoke, "r8");
        cap.feed(b"GET /invoke\n");
        let got = cap.take(t);
        assert!(!got.started && !got.complete);
        assert_eq!(got.text, "GET /invoke\n");
        cap.feed(b"after\n");
        let plain = cap.arm_plain();
        cap.feed(b"FC Invoke Start RequestId: r9\nlistening\n");
        assert_eq!(
            cap.take(plain).text,
            "FC Invoke Start RequestId: r9\nlistening\n"
        );
    }

    #[test]
    fn a_dropped_ticket_closes_its_capture() {
        let cap = capture(1 << 20);
        let kept = cap.arm(Section::Invoke, "r10");
        drop(cap.arm(Section::Invoke, "r11"));
        assert_eq!(cap.lock().captures.len(), 1);
        cap.feed(b"mine\n");
        assert_eq!(cap.take(kept).text, "mine\n");
        assert!(cap.lock().captures.is_empty());
    }
}
