//! [`Probe`] and [`Capture`]: facts about an event gathered by the matcher's validating walk
//! itself, so a caller that must both check an event's shape and match it reads its bytes once.
//!
//! Ingest validates every event (its source, name, version, a few required fields, its depth)
//! and then matches it. Parsing the event for validation costs more than the matcher's whole walk,
//! so instead the walk, which validates the JSON anyway, also reports the values found at a small
//! fixed set of object-key paths and the nesting depth. Those paths do not take part in matching:
//! they follow JSON objects exactly as `serde_json` does (`a.b` is the member `b` of the object
//! under `a`; a key holding a `.` is one key; arrays are not entered), not the pattern semantics
//! in which `{"a.b": 1}` and `[{"b": 1}]` under `a` reach `a.b`.
//!
//! What the walk cannot settle by itself it reports rather than guesses: when an object repeats
//! a key on a path a pattern or the probe reads, the walk has seen every value while `serde_json`
//! (and every JSON reader a function runs) keeps only the last, so [`Capture::repeated_keys`] is
//! set and the caller decides (ingest reads such an event through `serde_json` instead).

use std::borrow::Cow;
use std::ops::Range;

use crate::index::strmap::head_word;
use crate::lex;

/// No node: the probe names nothing below here.
const NONE: u32 = u32::MAX;

/// Most members one object may have on read paths before the walk stops checking them for
/// repeats and reports [`Capture::repeated_keys`] instead (a repeat check is a scan of the
/// object's earlier read members, so an unbounded object would cost quadratic time).
pub const MAX_TRACKED_MEMBERS: usize = 32;

/// A fixed set of object-key paths whose values a probed walk reports
/// ([`crate::Matcher::matches_probed_into`], [`Probe::scan`]). Build one per program and share
/// it; it is immutable.
///
/// ```
/// use fnbridge_pattern::{Capture, JsonKind, Probe};
///
/// let probe = Probe::new(&[&["source"], &["detail", "size"]]);
/// let event = br#"{"source": "acs.oss", "detail": {"size": 512}}"#;
/// let mut cap = Capture::default();
/// probe.scan(event, &mut cap).unwrap();
/// assert_eq!(cap.get(0).unwrap().as_str(event).as_deref(), Some("acs.oss"));
/// assert_eq!(cap.get(1).unwrap().kind, JsonKind::Number);
/// assert_eq!(cap.depth(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Probe {
    /// Node 0 is the top-level object.
    nodes: Vec<ProbeNode>,
    slots: usize,
    strict: bool,
}

#[derive(Debug, Clone)]
struct ProbeNode {
    /// Ordered by length; see `at`.
    kids: Vec<ProbeKey>,
    /// Bit `min(len, 63)` set for the length of each key in `kids`: most keys an event has
    /// beside the probe's differ from all of them in length, and are turned away by one test.
    lens: u64,
    /// Where the keys of length `len` start in `kids` (at `min(len, 63)`): the walk asks for
    /// every key of every object on a probed path, and a key the probe names (most of those, on
    /// the objects it reads) is then confirmed by a compare or two, not a scan of its siblings.
    at: [u32; 64],
    /// Index into the capture of the path ending here, or [`NONE`].
    slot: u32,
}

/// One key of a probe node, with the words it is compared by.
#[derive(Debug, Clone)]
struct ProbeKey {
    bytes: Box<[u8]>,
    /// [`head_word`] of the key: all of a key of up to 8 bytes.
    head: u64,
    /// The key's last 8 bytes, for a key of at least 8.
    tail: u64,
    child: u32,
}

impl ProbeKey {
    fn new(bytes: &[u8], child: u32) -> ProbeKey {
        ProbeKey {
            bytes: bytes.into(),
            head: head_word(bytes),
            tail: bytes
                .last_chunk::<8>()
                .map_or(0, |t| u64::from_le_bytes(*t)),
            child,
        }
    }

    /// Whether `key`, of this key's length, is this key: two word compares up to 16 bytes.
    #[inline(always)]
    fn is(&self, key: &[u8]) -> bool {
        match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
            (Some(h), Some(t)) => {
                u64::from_le_bytes(*h) == self.head
                    && u64::from_le_bytes(*t) == self.tail
                    && (key.len() <= 16
                        || key.get(8..key.len() - 8) == self.bytes.get(8..key.len() - 8))
            }
            _ => head_word(key) == self.head,
        }
    }
}

#[inline(always)]
fn len_group(len: usize) -> usize {
    len.min(63)
}

impl ProbeNode {
    fn new() -> Self {
        ProbeNode {
            kids: Vec::new(),
            lens: 0,
            at: [0; 64],
            slot: NONE,
        }
    }
}

impl Probe {
    /// A probe for `paths`, each a list of object keys from the top level; the value of
    /// `paths[i]` is slot `i` of the [`Capture`]. A path may be a prefix of another (`resource`
    /// and `resource.domain`). A repeated path reports into its first slot only.
    pub fn new(paths: &[&[&str]]) -> Probe {
        let mut nodes = vec![ProbeNode::new()];
        for (slot, path) in paths.iter().enumerate() {
            let mut n = 0usize;
            for key in path.iter() {
                let key = key.as_bytes();
                n = match nodes[n].kids.iter().find(|k| *k.bytes == *key) {
                    Some(k) => k.child as usize,
                    None => {
                        let c = nodes.len();
                        nodes.push(ProbeNode::new());
                        nodes[n].kids.push(ProbeKey::new(key, c as u32));
                        nodes[n].lens |= 1 << len_group(key.len());
                        c
                    }
                };
            }
            if n != 0 && nodes[n].slot == NONE {
                nodes[n].slot = slot as u32;
            }
        }
        for node in &mut nodes {
            node.kids.sort_by_key(|k| k.bytes.len());
            for (i, k) in node.kids.iter().enumerate().rev() {
                node.at[len_group(k.bytes.len())] = i as u32;
            }
        }
        Probe {
            nodes,
            slots: paths.len(),
            strict: false,
        }
    }

    /// Also refuse what `serde_json` refuses when it reads a `Value` from otherwise valid JSON:
    /// a `\u` escape that is a lone surrogate, and a number whose magnitude overflows an `f64`.
    /// For callers that accept an event on this walk's word and hand its text on to readers that
    /// use `serde_json` (reported as [`crate::EventError::InvalidJson`]).
    pub fn strict_json(mut self) -> Probe {
        self.strict = true;
        self
    }

    /// Number of paths (slots of a [`Capture`]).
    pub fn len(&self) -> usize {
        self.slots
    }

    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Validates `event` exactly as [`crate::Matcher::matches`] does (plus the
    /// [`Probe::strict_json`] refusals) and fills `cap`, without matching anything.
    pub fn scan(&self, event: &[u8], cap: &mut Capture) -> Result<(), crate::EventError> {
        crate::index::scan_probed(event, self, cap, false).map(|_| ())
    }

    /// [`Probe::scan`] of the JSON value at the start of `text` (after any whitespace), not
    /// reading what follows it: see [`crate::Matcher::match_leading`].
    pub fn scan_leading<'t>(
        &self,
        text: &'t [u8],
        cap: &mut Capture,
    ) -> Result<&'t str, crate::EventError> {
        let end = crate::index::scan_probed(text, self, cap, true)?;
        Ok(crate::index::validated_str(&text[..end]))
    }

    #[inline]
    pub(crate) fn root(&self) -> u32 {
        if self.nodes[0].kids.is_empty() {
            NONE
        } else {
            0
        }
    }

    #[inline]
    pub(crate) fn strict(&self) -> bool {
        self.strict
    }

    /// The node for the exact key `key` below `n`, or [`NONE`]. Inlined into the walk: as a
    /// call, saving and restoring registers cost about as much as the lookup.
    #[inline(always)]
    pub(crate) fn child(&self, n: u32, key: &[u8]) -> u32 {
        let node = &self.nodes[n as usize];
        let group = len_group(key.len());
        if node.lens >> group & 1 == 0 {
            return NONE;
        }
        // `at` is set for every length in `lens`; `get` only keeps a broken probe from panicking.
        for k in node.kids.get(node.at[group] as usize..).unwrap_or(&[]) {
            if k.bytes.len() > key.len() {
                break;
            }
            if k.bytes.len() == key.len() && k.is(key) {
                return k.child;
            }
        }
        NONE
    }

    #[inline]
    pub(crate) fn has_kids(&self, n: u32) -> bool {
        !self.nodes[n as usize].kids.is_empty()
    }

    #[inline]
    pub(crate) fn slot(&self, n: u32) -> u32 {
        self.nodes[n as usize].slot
    }
}

/// The JSON type of a captured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonKind {
    String,
    Number,
    Bool,
    Null,
    Object,
    Array,
}

/// One captured value: its type and where its text is in the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub kind: JsonKind,
    /// The value's whole text (a string's quotes included, a container from its opening to its
    /// closing bracket).
    pub span: Range<usize>,
}

impl Captured {
    /// The value's text within `event` (the bytes the capture was taken from).
    pub fn text<'e>(&self, event: &'e [u8]) -> &'e [u8] {
        &event[self.span.clone()]
    }

    /// A string value, decoded (borrowed when it holds no escape); `None` for other types.
    /// `event` must be the bytes the capture was taken from.
    pub fn as_str<'e>(&self, event: &'e [u8]) -> Option<Cow<'e, str>> {
        if self.kind != JsonKind::String {
            return None;
        }
        let inner = &event[self.span.start + 1..self.span.end - 1];
        if !inner.contains(&b'\\') {
            // The walk validated the string's UTF-8.
            return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
        }
        let (span, _) = lex::scan_string(event, self.span.start).ok()?;
        let mut out = Vec::with_capacity(inner.len());
        lex::decode_escaped(event, span, &mut out);
        String::from_utf8(out).ok().map(Cow::Owned)
    }
}

/// What a probed walk found: the value at each [`Probe`] path (the last one when an object
/// repeats the key), the nesting depth, and whether some read key repeated. Reused across
/// events; every walk resets it first.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    vals: Vec<Option<Captured>>,
    depth: usize,
    repeated: bool,
}

impl Capture {
    /// The value at slot `slot` (the index of its path in [`Probe::new`]), if the event has one.
    pub fn get(&self, slot: usize) -> Option<&Captured> {
        self.vals.get(slot).and_then(Option::as_ref)
    }

    /// Deepest nesting of objects and arrays in the event (a flat object is 1), also set when
    /// the walk refused the event for not being an object.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether an object repeats a key on a path some pattern or the probe reads (or has more
    /// than [`MAX_TRACKED_MEMBERS`] members on such paths, which is not checked further). The
    /// match then saw every repeated value where a JSON reader keeps only the last, and the
    /// captures hold the last: a caller that needs the reader's view reads the event with one.
    pub fn repeated_keys(&self) -> bool {
        self.repeated
    }

    pub(crate) fn reset(&mut self, slots: usize) {
        if self.vals.len() == slots {
            // Reused for every event of a kind: clearing in place writes only the tags.
            self.vals.iter_mut().for_each(|v| *v = None);
        } else {
            self.vals.clear();
            self.vals.resize(slots, None);
        }
        self.depth = 0;
        self.repeated = false;
    }
}

fn kind_at(input: &[u8], start: usize) -> JsonKind {
    match input.get(start) {
        Some(b'"') => JsonKind::String,
        Some(b'{') => JsonKind::Object,
        Some(b'[') => JsonKind::Array,
        Some(b't' | b'f') => JsonKind::Bool,
        Some(b'n') => JsonKind::Null,
        _ => JsonKind::Number,
    }
}

/// Joins a sink with a probe: the walk's node is the pair (sink node, probe node), either part
/// [`NONE`] when it names nothing there.
pub(crate) struct Probed<'p, S> {
    pub inner: S,
    pub probe: &'p Probe,
    pub cap: &'p mut Capture,
    /// The read members of the objects open on the walk's current route, for the repeat check:
    /// each object's own after its mark.
    pub reached: &'p mut Vec<(u32, u32)>,
}

impl<'p, S: crate::flatten::Sink<Node = u32>> Probed<'p, S> {
    pub fn new(
        inner: S,
        probe: &'p Probe,
        cap: &'p mut Capture,
        reached: &'p mut Vec<(u32, u32)>,
    ) -> Self {
        cap.reset(probe.len());
        reached.clear();
        Probed {
            inner,
            probe,
            cap,
            reached,
        }
    }
}

/// The inner sink's "nothing here" is `None`; as half of a pair it is [`NONE`].
impl<S: crate::flatten::Sink<Node = u32>> crate::flatten::Sink for Probed<'_, S> {
    type Node = (u32, u32);
    const PROBED: bool = true;

    #[inline]
    fn root(&mut self) -> (u32, u32) {
        (self.inner.root(), self.probe.root())
    }

    #[inline]
    fn child(&mut self, node: (u32, u32), segment: &[u8]) -> Option<(u32, u32)> {
        self.descend(node, segment)
    }

    #[inline(always)]
    fn descend(&mut self, (n, p): (u32, u32), key: &[u8]) -> Option<(u32, u32)> {
        let n = if n == NONE {
            NONE
        } else {
            self.inner.descend(n, key).unwrap_or(NONE)
        };
        let p = if p == NONE {
            NONE
        } else {
            self.probe.child(p, key)
        };
        (n != NONE || p != NONE).then_some((n, p))
    }

    #[inline]
    fn leaf(&mut self, (n, _): (u32, u32), input: &[u8], leaf: crate::flatten::RawLeaf) {
        if n != NONE {
            self.inner.leaf(n, input, leaf);
        }
    }

    #[inline(always)]
    fn strict(&self) -> bool {
        self.probe.strict()
    }

    #[inline(always)]
    fn multi_container(&mut self) {
        self.inner.multi_container();
    }

    #[inline(always)]
    fn element(&mut self, (n, _): (u32, u32)) -> Option<(u32, u32)> {
        // Patterns see an array's elements at the array's path; a JSON reader's `a.b` never
        // looks inside an array.
        (n != NONE).then_some((n, NONE))
    }

    #[inline(always)]
    fn inside(&self, (n, p): (u32, u32)) -> bool {
        // A probe leaf is reported whole by `member`: its inside is only validated.
        n != NONE || (p != NONE && self.probe.has_kids(p))
    }

    #[inline(always)]
    fn enter_object(&mut self) -> usize {
        self.reached.len()
    }

    #[inline]
    fn member(&mut self, mark: usize, child: (u32, u32), input: &[u8], start: usize, end: usize) {
        let mine = &self.reached[mark..];
        // Past the tracking bound a repeat is assumed rather than searched for.
        if mine.len() >= MAX_TRACKED_MEMBERS || mine.contains(&child) {
            self.cap.repeated = true;
        } else {
            self.reached.push(child);
        }
        if child.1 != NONE {
            let slot = self.probe.slot(child.1);
            if slot != NONE {
                self.cap.vals[slot as usize] = Some(Captured {
                    kind: kind_at(input, start),
                    span: start..end,
                });
            }
        }
    }

    #[inline(always)]
    fn leave_object(&mut self, mark: usize) {
        self.reached.truncate(mark);
    }

    #[inline]
    fn nesting(&mut self, depth: usize) {
        self.cap.depth = depth;
    }
}
