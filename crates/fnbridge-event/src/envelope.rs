//! Parses an ingest envelope `{"events":[...]}` into validated single events and builds the exact
//! payload a function receives for one of them.
//!
//! An envelope is accepted whole or not at all: one bad event rejects the request, so a client
//! never has to work out which half of its batch was taken.
//!
//! # One pass over each event
//!
//! Events are kept as the text they arrived in: what is matched, stored and delivered are the
//! bytes received. Each event is read once, where it starts in the body, by the matcher's
//! validating walk ([`Session::match_leading`], or [`Probe::scan_leading`] without a matcher),
//! which validates its JSON, matches it, captures the few fields validation looks at, and says
//! where the event ends. The envelope reader checks every byte between events, so an envelope is
//! accepted only if all of it is valid JSON.
//!
//! Two kinds of input leave that path, both rare:
//! - A refused envelope is read again by `serde_json`, so that invalid JSON anywhere is reported
//!   first and in serde_json's words, and the envelope's own shape errors in the same words as
//!   before (the reference reading, [`reference_events`]).
//! - Where a key repeats (in the envelope, or on a path of an event that matching or validation
//!   reads), the walk has seen every value but `serde_json` and a function's JSON reader keep the
//!   last. Such an event is read through `serde_json` and its compact text, in which every key is
//!   unique, is what is validated, matched, stored and delivered.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use fnbridge_pattern::{Capture, Captured, EventError, JsonKind, Matcher, Probe, Session};
use serde_json::Value;

use crate::limits::{MAX_EVENT_BYTES, MAX_EVENT_DEPTH, MAX_EVENTS_PER_ENVELOPE};
use crate::source::EventSource;

// The probe's slots: the fields validation reads, and where the id goes.
const SOURCE: usize = 0;
const NAME: usize = 1;
const VERSION: usize = 2;
const TRACE_ID: usize = 3;
const RESOURCE: usize = 4;
const DOMAIN: usize = 5;
const PARAMETER: usize = 6;
const OSS: usize = 7;
const BUCKET: usize = 8;
const BUCKET_NAME: usize = 9;
const OBJECT: usize = 10;
const OBJECT_KEY: usize = 11;
const RESPONSE: usize = 12;
const REQUEST_ID: usize = 13;

/// The paths of the slots above, in slot order.
const PROBE_PATHS: [&[&str]; 14] = [
    &["eventSource"],
    &["eventName"],
    &["eventVersion"],
    &["traceId"],
    &["resource"],
    &["resource", "domain"],
    &["eventParameter"],
    &["oss"],
    &["oss", "bucket"],
    &["oss", "bucket", "name"],
    &["oss", "object"],
    &["oss", "object", "key"],
    &["responseElements"],
    &["responseElements", "requestId"],
];

/// The probe every event is read with. Strict: an accepted event always reads back with
/// `serde_json`, as it did when events were parsed into maps.
fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| Probe::new(&PROBE_PATHS).strict_json())
}

/// How a missing id gets into the event's text (see [`SourceEvent::ensure_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdFix {
    /// The event has its id, or has no place for one (an OSS `responseElements` that is not an
    /// object, kept as it always was).
    None,
    /// Insert `"<key>":<value>,` right after the event's opening brace.
    Top,
    /// Insert `"requestId":"<id>"` right after the brace at this offset (of `responseElements`),
    /// with a comma when the object has members.
    Into { brace: usize, members: bool },
    /// Replace a `requestId` that is not a string.
    Replace(Range<usize>),
}

/// One validated event, ready to be stored and matched.
#[derive(Debug, Clone)]
pub struct SourceEvent<'a> {
    pub source: EventSource,
    /// The `eventName`, one of [`EventSource::event_names`].
    pub name: &'static str,
    /// The ids of the patterns the event matched, when it was parsed with
    /// [`Envelope::parse_matching`] (sorted, deduplicated); empty otherwise.
    pub matched: Vec<u64>,
    text: Cow<'a, str>,
    /// The id string's text (quotes included) within `text`.
    id: Option<Range<usize>>,
    fix: IdFix,
}

impl<'a> SourceEvent<'a> {
    /// The event's JSON text: the bytes received, or for an event whose keys repeat on a path
    /// matching or validation reads, serde_json's compact text of it (see the module docs).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, owned or borrowed from the request body.
    pub fn into_text(self) -> Cow<'a, str> {
        self.text
    }

    /// The idempotency key of the event (`traceId` for CDN, `responseElements.requestId` for OSS).
    pub fn id(&self) -> Option<Cow<'_, str>> {
        let r = self.id.clone()?;
        let c = Captured {
            kind: JsonKind::String,
            span: r,
        };
        c.as_str(self.text.as_bytes())
    }

    /// Sets the id field when the sender left it out, so every stored event has one: spliced
    /// into the text (`"traceId":"<id>",` right after the opening brace, for instance), every
    /// other byte unchanged. Returns whether the text changed: matches taken before then may no
    /// longer describe it (a pattern may name the id's path).
    pub fn ensure_id(&mut self, fresh: impl FnOnce() -> String) -> bool {
        if self.id.is_some() {
            return false;
        }
        let quoted = |s: String| serde_json::to_string(&s).expect("a string always serializes");
        let (at, remove, insert, id_at) = match (&self.fix, self.source) {
            (IdFix::None, _) => return false,
            // Built by the object store with its request id; never parsed from ingest.
            (IdFix::Top, EventSource::Cos | EventSource::CloudEvent) => return false,
            (IdFix::Top, EventSource::Cdn) => {
                let id = quoted(fresh());
                let head = "\"traceId\":";
                let n = head.len() + id.len();
                (1, 0..0, format!("{head}{id},"), 1 + head.len()..1 + n)
            }
            (IdFix::Top, EventSource::Oss) => {
                let id = quoted(fresh());
                let head = "\"responseElements\":{\"requestId\":";
                let n = head.len() + id.len();
                (1, 0..0, format!("{head}{id}}},"), 1 + head.len()..1 + n)
            }
            (IdFix::Into { brace, members }, _) => {
                let id = quoted(fresh());
                let head = "\"requestId\":";
                let at = brace + 1;
                let comma = if *members { "," } else { "" };
                let span = at + head.len()..at + head.len() + id.len();
                (at, 0..0, format!("{head}{id}{comma}"), span)
            }
            (IdFix::Replace(r), _) => {
                let id = quoted(fresh());
                let span = r.start..r.start + id.len();
                (r.start, r.clone(), id, span)
            }
        };
        // The event text starts with its brace: the split trims whitespace around events.
        let text = self.text.as_ref();
        let (head, tail) = if remove.is_empty() {
            (&text[..at], &text[at..])
        } else {
            (&text[..remove.start], &text[remove.end..])
        };
        let mut s = String::with_capacity(text.len() + insert.len());
        s.push_str(head);
        s.push_str(&insert);
        s.push_str(tail);
        self.text = Cow::Owned(s);
        self.id = Some(id_at);
        self.fix = IdFix::None;
        true
    }

    /// The function payload for this event: `{"events":[event]}`, the event's text as is.
    pub fn payload(&self) -> String {
        delivery_payload(&self.text)
    }
}

/// Wraps one event's text in the `{"events":[...]}` envelope functions receive.
pub fn delivery_payload(event_json: &str) -> String {
    // Sized exactly: one byte short, the tail's push would reallocate and copy the whole event.
    let mut s = String::with_capacity(DELIVERY_HEAD.len() + event_json.len() + DELIVERY_TAIL.len());
    s.push_str(DELIVERY_HEAD);
    s.push_str(event_json);
    s.push_str(DELIVERY_TAIL);
    s
}

/// The texts of `events` back to back in one string, and the range of each in it: what ingest
/// stores, with one allocation for a whole request where a string per event cost an allocation,
/// a free and a copy of its own.
pub fn joined_texts(events: &[SourceEvent<'_>]) -> (String, Vec<Range<usize>>) {
    let mut all = String::with_capacity(events.iter().map(|e| e.text.len()).sum());
    let spans = events
        .iter()
        .map(|e| {
            let start = all.len();
            all.push_str(&e.text);
            start..all.len()
        })
        .collect();
    (all, spans)
}

/// What [`delivery_payload`] puts before and after the event.
pub const DELIVERY_HEAD: &str = "{\"events\":[";
pub const DELIVERY_TAIL: &str = "]}";

/// A parsed envelope; its events borrow the request body where they can.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub events: Vec<SourceEvent<'a>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid(msg.into())
}

/// Why the fast path refused; [`refuse`] turns it into the error the envelope gets.
enum Refusal {
    /// Not valid JSON somewhere: serde_json words it.
    Json(String),
    Invalid(String),
}

impl From<EnvelopeError> for Refusal {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Json(m) => Refusal::Json(m),
            EnvelopeError::Invalid(m) => Refusal::Invalid(m),
        }
    }
}

impl<'a> Envelope<'a> {
    /// Parses and validates `{"events":[...]}`. Every error names the offending field by path.
    pub fn parse(body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        Self::read(body, None)
    }

    /// [`Envelope::parse`] that also matches every event against `matcher`, in the same pass
    /// over its bytes ([`SourceEvent::matched`]). All events of the envelope are matched against
    /// the patterns as they were when it started ([`Matcher::session`]).
    pub fn parse_matching(
        body: &'a [u8],
        matcher: &Matcher,
    ) -> Result<Envelope<'a>, EnvelopeError> {
        Self::read(body, Some(matcher))
    }

    fn read(body: &'a [u8], matcher: Option<&Matcher>) -> Result<Envelope<'a>, EnvelopeError> {
        let mut reader = Reader {
            // One snapshot of the patterns for the whole envelope.
            session: matcher.map(Matcher::session),
            cap: Capture::default(),
            out: Vec::new(),
        };
        match reader.read_fast(body) {
            Ok(Some(events)) => Ok(Envelope { events }),
            Ok(None) => reader.read_normalized(body),
            // Events are read as they come, so an event of an `events` array a later `events`
            // key replaces may have been refused: the reference reading decides then.
            Err(_) if !plain_top_level(body) => reader.read_normalized(body),
            Err(r) => Err(refuse(body, r)),
        }
    }
}

/// An event's bytes before the walk has validated them.
enum EventText<'a> {
    /// The body from where the event starts; the walk finds its end.
    Raw(&'a [u8]),
    /// serde_json's compact text of the event.
    Normalized(String),
}

struct Reader {
    session: Option<Session>,
    cap: Capture,
    out: Vec<u64>,
}

impl Reader {
    /// Reads event `i`: the walk, then the checks, in the order the first failure is reported.
    /// Also returns how many bytes of the input the event took.
    fn event<'a>(
        &mut self,
        i: usize,
        text: EventText<'a>,
    ) -> Result<(SourceEvent<'a>, usize), Refusal> {
        let (text, len) = match text {
            EventText::Raw(b) => {
                let read = self.walk(i, b)?;
                if self.cap.repeated_keys() {
                    // A JSON reader keeps the last of a repeated key: read the event as one, and
                    // go on with that reading's text.
                    let v: Value = serde_json::from_str(read)
                        .map_err(|e| Refusal::Json(format!("events[{i}]: {e}")))?;
                    let (ev, _) = self.event(i, EventText::Normalized(v.to_string()))?;
                    return Ok((ev, read.len()));
                }
                (Cow::Borrowed(read), read.len())
            }
            EventText::Normalized(s) => {
                let len = self.walk(i, s.as_bytes())?.len();
                if len != s.len() {
                    // serde_json's text is one value: cannot happen.
                    return Err(Refusal::Json(format!("events[{i}]: trailing characters")));
                }
                (Cow::Owned(s), len)
            }
        };
        let ev = validate(i, &text, &self.cap).map_err(Refusal::Invalid)?;
        Ok((
            SourceEvent {
                source: ev.source,
                name: ev.name,
                matched: std::mem::take(&mut self.out),
                text,
                id: ev.id,
                fix: ev.fix,
            },
            len,
        ))
    }

    /// The walk over the event at the start of `bytes`: its text, or why it is refused.
    fn walk<'t>(&mut self, i: usize, bytes: &'t [u8]) -> Result<&'t str, Refusal> {
        let walked = match &mut self.session {
            Some(m) => m.match_leading(bytes, probe(), &mut self.cap, &mut self.out),
            None => probe().scan_leading(bytes, &mut self.cap),
        };
        let too_deep = || {
            Refusal::Invalid(format!(
                "events[{i}]: nested deeper than {MAX_EVENT_DEPTH} levels"
            ))
        };
        match walked {
            Ok(read) => Ok(read),
            Err(EventError::TooDeep { .. }) => Err(too_deep()),
            Err(EventError::NotAnObject) if self.cap.depth() > MAX_EVENT_DEPTH => Err(too_deep()),
            Err(EventError::NotAnObject) => Err(Refusal::Invalid(format!(
                "events[{i}]: must be a JSON object"
            ))),
            Err(e @ EventError::InvalidJson { .. }) => {
                Err(Refusal::Json(format!("events[{i}]: {e}")))
            }
        }
    }

    /// Reads `{"events":[e1, e2, ...]}`, each event where it starts, checking every byte between
    /// them. `Ok(None)`: the envelope repeats a key or escapes one, and is read by the reference
    /// instead. A refusal's words are only a fallback: [`refuse`] words it.
    fn read_fast<'a>(&mut self, b: &'a [u8]) -> Result<Option<Vec<SourceEvent<'a>>>, Refusal> {
        let json = |what: &str| Refusal::Json(what.to_string());
        let mut i = skip_ws(b, 0);
        match b.get(i) {
            Some(b'{') => {}
            Some(b'[') => return Err(invalid(WRAP_ARRAY).into()),
            _ => return Err(invalid(NOT_AN_OBJECT).into()),
        }
        i = skip_ws(b, i + 1);
        let mut events: Option<Vec<SourceEvent<'a>>> = None;
        if b.get(i) == Some(&b'}') {
            return Err(invalid("events: required field is missing").into());
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(json("expected a key"));
            }
            let Some((key, next)) = plain_key(b, i) else {
                return Ok(None);
            };
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return Err(json("expected ':'"));
            }
            i = skip_ws(b, i + 1);
            if key != b"events" {
                let k = String::from_utf8_lossy(key);
                if k == "eventSource" || k == "eventName" {
                    return Err(invalid(LONE_EVENT).into());
                }
                return Err(unknown_field(&k).into());
            }
            if events.is_some() {
                return Ok(None);
            }
            if b.get(i) != Some(&b'[') {
                return Err(invalid("events: must be an array").into());
            }
            // Sized for a full envelope at once: growing it would copy the events read so far.
            let mut list = Vec::with_capacity(MAX_EVENTS_PER_ENVELOPE);
            i = skip_ws(b, i + 1);
            if b.get(i) != Some(&b']') {
                loop {
                    if list.len() == MAX_EVENTS_PER_ENVELOPE {
                        // Refused for the count however many follow; the reference counts them.
                        return Err(invalid(format!(
                            "events: holds more than {MAX_EVENTS_PER_ENVELOPE} events, at most {MAX_EVENTS_PER_ENVELOPE} are allowed per request"
                        ))
                        .into());
                    }
                    let (ev, len) = self.event(list.len(), EventText::Raw(&b[i..]))?;
                    list.push(ev);
                    i = skip_ws(b, i + len);
                    match b.get(i) {
                        Some(b',') => i = skip_ws(b, i + 1),
                        Some(b']') => break,
                        _ => return Err(json("expected ',' or ']'")),
                    }
                }
            }
            i = skip_ws(b, i + 1);
            events = Some(list);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => break,
                _ => return Err(json("expected ',' or '}'")),
            }
        }
        if skip_ws(b, i + 1) != b.len() {
            return Err(json("trailing characters"));
        }
        let events = events.unwrap_or_default();
        count_ok(events.len())?;
        Ok(Some(events))
    }

    /// The envelope read by serde_json (a repeated key in it), its events rewritten compact.
    fn read_normalized<'a>(&mut self, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let values = reference_events(body)?;
        let mut events = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match self.event(i, EventText::Normalized(v.to_string())) {
                Ok((e, _)) => events.push(e),
                Err(r) => return Err(refuse(body, r)),
            }
        }
        Ok(Envelope { events })
    }
}

/// Whether `body` is a JSON object with exactly one key, written without escapes: then the fast
/// reader's `events` are the reference reading's. (Checked on refusals only.)
fn plain_top_level(body: &[u8]) -> bool {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut n = 0;
            // A borrowed `&str` key fails for a key with an escape.
            while map.next_key::<&'de str>()?.is_some() {
                map.next_value::<IgnoredAny>()?;
                n += 1;
            }
            Ok(n == 1)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_map(Keys).is_ok_and(|plain| plain) && de.end().is_ok()
}

/// The refusal an envelope gets: invalid JSON anywhere comes first, in serde_json's words, then
/// the envelope's shape, worded by the reference reading; then the fast path's own reason.
fn refuse(body: &[u8], r: Refusal) -> EnvelopeError {
    if let Err(e) = reference_events(body) {
        return e;
    }
    match r {
        // The reference reading accepted what the walk did not: report the walk's reason.
        Refusal::Json(m) | Refusal::Invalid(m) => invalid(m),
    }
}

/// The reference reading of an envelope: serde_json parses the whole body, then the envelope's
/// shape is checked, with the words every refusal of the shape uses. Runs for refused envelopes
/// and envelopes that repeat a key, never on the common path.
fn reference_events(body: &[u8]) -> Result<Vec<Value>, EnvelopeError> {
    // serde_json's own recursion limit (128) guards the stack; the depth rule is ours.
    let v: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
    let mut top = match v {
        Value::Object(top) => top,
        Value::Array(_) => return Err(invalid(WRAP_ARRAY)),
        _ => return Err(invalid(NOT_AN_OBJECT)),
    };
    let events = match top.remove("events") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("events: must be an array")),
        None if top.contains_key("eventSource") || top.contains_key("eventName") => {
            return Err(invalid(LONE_EVENT));
        }
        None => return Err(invalid("events: required field is missing")),
    };
    if let Some(k) = top.keys().next() {
        return Err(unknown_field(k));
    }
    count_ok(events.len())?;
    Ok(events)
}

const WRAP_ARRAY: &str =
    "body must be a JSON object {\"events\":[...]}: wrap the array as {\"events\":[...]}";
const NOT_AN_OBJECT: &str = "body must be a JSON object {\"events\":[...]}";
const LONE_EVENT: &str = "events: required field is missing; the body looks like a single event: wrap it as {\"events\":[EVENT]}";

fn unknown_field(k: &str) -> EnvelopeError {
    invalid(format!(
        "{k}: unknown field (the envelope has only \"events\")"
    ))
}

fn count_ok(n: usize) -> Result<(), EnvelopeError> {
    if n == 0 {
        return Err(invalid("events: must hold at least one event"));
    }
    if n > MAX_EVENTS_PER_ENVELOPE {
        return Err(invalid(format!(
            "events: holds {n} events, at most {MAX_EVENTS_PER_ENVELOPE} are allowed per request"
        )));
    }
    Ok(())
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// A key at `b[i]` (its opening quote) without escapes: its text and the index past it. `None`
/// for a key with an escape (read by the reference instead) or no closing quote.
fn plain_key(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let start = i + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\')?;
    let end = start + len;
    (b[end] == b'"').then(|| (&b[start..end], end + 1))
}

/// What validation learned about an event.
struct Valid {
    source: EventSource,
    name: &'static str,
    id: Option<Range<usize>>,
    fix: IdFix,
}

/// Why a string field was refused, worded by [`Bad::at`] once its path is formatted: the checks
/// of an accepted event pass nothing but the capture and the slot around (an error path and a
/// closure per call cost more than the check, and stalled on the stack they were passed through).
#[derive(Debug, Clone, Copy)]
enum Bad {
    Missing,
    NotString,
    Empty,
}

impl Bad {
    /// The error for the field `key` of the object at `parent`.
    #[cold]
    fn at(self, parent: String, key: &str) -> String {
        match self {
            Bad::Missing => format!("{parent}.{key}: required field is missing"),
            Bad::NotString => format!("{parent}.{key}: must be a string"),
            Bad::Empty => format!("{parent}.{key}: must not be empty"),
        }
    }
}

/// A string field's text as written (between the quotes). Non-empty as written is non-empty
/// decoded: every escape stands for at least one character.
#[inline(always)]
fn str_field<'t>(cap: &Capture, text: &'t str, slot: usize) -> Result<&'t str, Bad> {
    match cap.get(slot) {
        Some(c) if c.kind == JsonKind::String && c.span.len() > 2 => {
            // The span starts and ends at quotes, which are ASCII: its inside is a `str` slice
            // (`get` never fails here, and says so rather than panicking if it did).
            text.get(c.span.start + 1..c.span.end - 1)
                .ok_or(Bad::NotString)
        }
        Some(c) if c.kind == JsonKind::String => Err(Bad::Empty),
        Some(_) => Err(Bad::NotString),
        None => Err(Bad::Missing),
    }
}

/// A string field's value looked up with `find`: first on the text as written, which is the value
/// itself unless it holds an escape, and only on a miss decoded and looked up again (an escape is
/// rare, and scanning for one costs more than the lookup). Every value the lookups know is free of
/// `\` (checked by a test), so a hit on the written text is a hit on the value. `Ok(Err(value))`:
/// no hit, with the decoded value for the error.
#[inline(always)]
fn str_find<'t, T>(
    cap: &Capture,
    text: &'t str,
    slot: usize,
    find: impl Fn(&str) -> Option<T>,
) -> Result<Result<T, Cow<'t, str>>, Bad> {
    let raw = str_field(cap, text, slot)?;
    if let Some(t) = find(raw) {
        return Ok(Ok(t));
    }
    let value = decoded(cap, text, slot, raw)?;
    Ok(find(&value).ok_or(value))
}

/// The value of the string field whose text as written is `raw`, for the rare path.
#[cold]
fn decoded<'t>(
    cap: &Capture,
    text: &'t str,
    slot: usize,
    raw: &'t str,
) -> Result<Cow<'t, str>, Bad> {
    if !raw.contains('\\') {
        return Ok(Cow::Borrowed(raw));
    }
    cap.get(slot)
        .and_then(|c| c.as_str(text.as_bytes()))
        .ok_or(Bad::NotString)
}

fn kind(cap: &Capture, slot: usize) -> Option<JsonKind> {
    cap.get(slot).map(|c| c.kind)
}

/// The checks of one event, from what the walk captured, in the order their failures are
/// reported. The walk has refused invalid JSON, non-objects and nesting beyond its own limit.
fn validate(i: usize, text: &str, cap: &Capture) -> Result<Valid, String> {
    // Paths are formatted for errors only: most events have none.
    let path = || format!("events[{i}]");
    if cap.depth() > MAX_EVENT_DEPTH {
        return Err(format!(
            "{}: nested deeper than {MAX_EVENT_DEPTH} levels",
            path()
        ));
    }
    if text.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "{}: is {} bytes, larger than the {MAX_EVENT_BYTES}-byte limit for one event",
            path(),
            text.len()
        ));
    }
    let t = text.as_bytes();
    let source = match str_find(cap, text, SOURCE, EventSource::from_wire)
        .map_err(|e| e.at(path(), "eventSource"))?
    {
        Ok(s) => s,
        Err(source_name) => {
            return Err(format!(
                "{}.eventSource: unknown source \"{source_name}\" (expected \"cdn\" or \"acs:oss\")",
                path()
            ));
        }
    };
    let names = source.event_names();
    let name = match str_find(cap, text, NAME, |v| {
        names.iter().find(|n| **n == v).copied()
    })
    .map_err(|e| e.at(path(), "eventName"))?
    {
        Ok(name) => name,
        Err(name) => {
            return Err(format!(
                "{}.eventName: \"{name}\" is not a {} event (expected one of {})",
                path(),
                source.wire_name(),
                names.join(", ")
            ));
        }
    };
    let want = source.version();
    if let Err(version) = str_find(cap, text, VERSION, |v| (v == want).then_some(()))
        .map_err(|e| e.at(path(), "eventVersion"))?
    {
        return Err(format!(
            "{}.eventVersion: must be \"{want}\" for {} events, got \"{version}\"",
            path(),
            source.wire_name()
        ));
    }
    let (id, fix) = match source {
        // `from_wire` never yields it; refused rather than trusted.
        EventSource::Cos | EventSource::CloudEvent => {
            return Err(format!(
                "{}.eventSource: {} events come only from the object store",
                path(),
                if source == EventSource::Cos {
                    "cos"
                } else {
                    "CloudEvents"
                }
            ));
        }
        EventSource::Cdn => {
            match kind(cap, RESOURCE) {
                Some(JsonKind::Object) => {}
                Some(_) => return Err(format!("{}.resource: must be an object", path())),
                None => return Err(format!("{}.resource: required field is missing", path())),
            }
            str_field(cap, text, DOMAIN).map_err(|e| e.at(path() + ".resource", "domain"))?;
            // The idempotency key handlers rely on: refused when malformed rather than replaced.
            let id = match cap.get(TRACE_ID) {
                Some(c) => {
                    str_field(cap, text, TRACE_ID).map_err(|e| e.at(path(), "traceId"))?;
                    (Some(c.span.clone()), IdFix::None)
                }
                None => (None, IdFix::Top),
            };
            match kind(cap, PARAMETER) {
                Some(JsonKind::Object) | None => {}
                Some(_) => return Err(format!("{}.eventParameter: must be an object", path())),
            }
            id
        }
        EventSource::Oss => {
            match kind(cap, OSS) {
                Some(JsonKind::Object) => {}
                Some(_) => return Err(format!("{}.oss: must be an object", path())),
                None => return Err(format!("{}.oss: required field is missing", path())),
            }
            if kind(cap, BUCKET) != Some(JsonKind::Object) {
                return Err(format!("{}.oss.bucket: must be an object", path()));
            }
            str_field(cap, text, BUCKET_NAME).map_err(|e| e.at(path() + ".oss.bucket", "name"))?;
            if kind(cap, OBJECT) != Some(JsonKind::Object) {
                return Err(format!("{}.oss.object: must be an object", path()));
            }
            str_field(cap, text, OBJECT_KEY).map_err(|e| e.at(path() + ".oss.object", "key"))?;
            match (cap.get(RESPONSE), cap.get(REQUEST_ID)) {
                (None, _) => (None, IdFix::Top),
                (Some(r), _) if r.kind != JsonKind::Object => (None, IdFix::None),
                (Some(_), Some(c)) if c.kind == JsonKind::String => {
                    (Some(c.span.clone()), IdFix::None)
                }
                (Some(_), Some(c)) => (None, IdFix::Replace(c.span.clone())),
                (Some(r), None) => {
                    let inner = skip_ws(t, r.span.start + 1);
                    let members = t.get(inner) != Some(&b'}');
                    (
                        None,
                        IdFix::Into {
                            brace: r.span.start,
                            members,
                        },
                    )
                }
            }
        }
    };
    Ok(Valid {
        source,
        name,
        id,
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"events":[{"eventName":"LogFileCreated","eventSource":"cdn","region":"cn-hangzhou","eventVersion":"1.0.0","eventTime":"2018-06-14T15:31:49+08:00","traceId":"c6459282","userIdentity":{"aliUid":"1"},"resource":{"domain":"example.com"},"eventParameter":{"domain":"example.com","filePath":"http://x"}}]}"#;

    #[test]
    fn parses_and_keeps_key_order() {
        let env = Envelope::parse(LOG.as_bytes()).unwrap();
        assert_eq!(env.events.len(), 1);
        let e = &env.events[0];
        assert_eq!(e.source, EventSource::Cdn);
        assert_eq!(e.name, "LogFileCreated");
        assert_eq!(e.id().as_deref(), Some("c6459282"));
        assert_eq!(e.payload(), LOG);
    }

    fn err(body: &str) -> String {
        Envelope::parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn rejects_with_paths() {
        assert!(err("{").starts_with("body is not valid JSON"));
        assert_eq!(
            err("[]"),
            "body must be a JSON object {\"events\":[...]}: wrap the array as {\"events\":[...]}"
        );
        assert_eq!(err("3"), "body must be a JSON object {\"events\":[...]}");
        let single = &LOG[11..LOG.len() - 2];
        assert!(
            err(single).contains("looks like a single event: wrap it as {\"events\":[EVENT]}"),
            "{}",
            err(single)
        );
        for bad in ["12345", "null", "{\"id\":1}", "\"\""] {
            let e = err(&LOG.replace("\"c6459282\"", bad));
            assert!(e.starts_with("events[0].traceId: must"), "{bad}: {e}");
        }
        assert_eq!(err("{}"), "events: required field is missing");
        assert_eq!(
            err(r#"{"events":[]}"#),
            "events: must hold at least one event"
        );
        assert_eq!(
            err(r#"{"events":[],"x":1}"#),
            "x: unknown field (the envelope has only \"events\")"
        );
        let bad_version = LOG.replace("\"1.0.0\"", "\"2.0.0\"");
        assert_eq!(
            err(&bad_version),
            "events[0].eventVersion: must be \"1.0.0\" for cdn events, got \"2.0.0\""
        );
        let bad_name = LOG.replace("LogFileCreated", "LogFileMade");
        assert!(
            err(&bad_name).starts_with("events[0].eventName: \"LogFileMade\" is not a cdn event")
        );
        let no_domain = LOG.replace(r#""resource":{"domain":"example.com"},"#, "");
        assert_eq!(
            err(&no_domain),
            "events[0].resource: required field is missing"
        );
        let bad_source = LOG.replace(r#""eventSource":"cdn""#, r#""eventSource":"ftp""#);
        assert!(err(&bad_source).contains("unknown source \"ftp\""));
    }

    #[test]
    fn bounds_count_and_depth() {
        let one = &LOG[11..LOG.len() - 2];
        let many = format!("{{\"events\":[{}]}}", vec![one; 101].join(","));
        assert!(err(&many).contains("at most 100"));
        let deep = LOG.replace(
            r#""filePath":"http://x""#,
            &format!("\"x\":{}1{}", "[".repeat(40), "]".repeat(40)),
        );
        assert!(err(&deep).contains("nested deeper than 32"));
    }

    /// `str_find` takes a hit on a field's text as written for a hit on its value: true only
    /// while no value it looks for holds a backslash.
    #[test]
    fn known_values_hold_no_backslash() {
        for source in [EventSource::Cdn, EventSource::Oss] {
            let mut known = vec![source.wire_name(), source.version()];
            known.extend(source.event_names());
            for v in known {
                assert!(!v.contains('\\'), "{v}");
            }
        }
    }

    #[test]
    fn escaped_fields_are_decoded_before_they_are_looked_up() {
        let escaped = LOG
            .replace(r#""cdn""#, r#""c\u0064n""#)
            .replace("LogFileCreated", r"LogFile\u0043reated")
            .replace(r#""1.0.0""#, r#""1.0\u002e0""#);
        let env = Envelope::parse(escaped.as_bytes()).unwrap();
        assert_eq!(env.events[0].source, EventSource::Cdn);
        assert_eq!(env.events[0].name, "LogFileCreated");
        let bad = LOG.replace("LogFileCreated", r"LogFile\u0043reatex");
        assert!(
            err(&bad).starts_with(r#"events[0].eventName: "LogFileCreatex" is not a cdn event"#),
            "{}",
            err(&bad)
        );
    }

    #[test]
    fn ensure_id_fills_missing_trace_id() {
        let no_id = LOG.replace(r#""traceId":"c6459282","#, "");
        let mut env = Envelope::parse(no_id.as_bytes()).unwrap();
        assert!(env.events[0].ensure_id(|| "fresh".into()));
        assert_eq!(env.events[0].id().as_deref(), Some("fresh"));
        let text = env.events[0].text().to_string();
        assert!(
            text.starts_with(r#"{"traceId":"fresh","eventName""#),
            "{text}"
        );
        assert_eq!(
            text.replace(r#""traceId":"fresh","#, ""),
            &no_id[11..no_id.len() - 2]
        );
    }
}
