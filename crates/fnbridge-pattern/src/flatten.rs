//! The event walker: one pass over the event bytes that validates all of it and reports the leaf
//! values under the paths a [`Sink`] asks for.
//!
//! Subtrees no sink node asks for are still scanned (so an event is rejected or accepted the same
//! way whatever the patterns are) but nothing in them is decoded or recorded. Keys containing `.`
//! are split, so `{"a.b": 1}` and `{"a": {"b": 1}}` both reach path `a.b`.
//!
//! [`walk_trusted`] is the same walk for input known to be valid JSON (the platform matches
//! events serde_json serialized a moment earlier): strings are scanned for their closing quote
//! only, and subtrees nobody names are skipped by bracket counting over 32-byte blocks
//! ([`skip_trusted`]) instead of being parsed. On valid JSON both walks report the same leaves
//! and the same errors (the depth limit); on invalid input the trusted walk reports something
//! unspecified or an error, but stays in bounds and terminates.
//!
//! The trusted walk can also stop as soon as the sink has seen every path it names, for input
//! whose later keys cannot reach those paths again (see [`walk_trusted`]).
//!
//! A *probed* sink ([`Sink::PROBED`], behind [`crate::Probe`]) is told more during the validating
//! walk: every member of an object on a named path with its value's byte range, the nesting
//! depth, and which node array elements belong to; and, when it asks for [`Sink::strict`], the
//! walk also refuses what serde_json refuses in otherwise valid JSON. Other sinks compile to the
//! same walk as before: every extra is behind the constant.

use crate::error::EventError;
use crate::lex::{self, LexError, StrSpan};
use crate::limits::MAX_EVENT_DEPTH;

/// A leaf value as it appears in the input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawLeaf {
    Str(StrSpan),
    /// Byte range of the number's text.
    Num(usize, usize),
    Bool(bool),
    Null,
}

/// Receives the walk. `Node` is the sink's position in the path space; `None` means "nobody
/// cares below here".
pub(crate) trait Sink {
    type Node: Copy;
    fn root(&mut self) -> Self::Node;
    /// The node for one key segment (no `.` in it) below `node`.
    fn child(&mut self, node: Self::Node, segment: &[u8]) -> Option<Self::Node>;
    /// The node for a whole object key below `node`: a key `a.b` continues through segment
    /// `a` then `b`.
    #[inline]
    fn descend(&mut self, node: Self::Node, key: &[u8]) -> Option<Self::Node> {
        let mut n = node;
        for seg in key.split(|&c| c == b'.') {
            n = self.child(n, seg)?;
        }
        Some(n)
    }
    fn leaf(&mut self, node: Self::Node, input: &[u8], leaf: RawLeaf);
    /// Whether every path the sink names has had a value: the trusted walk may then stop (see
    /// [`walk_trusted`]).
    #[inline(always)]
    fn done(&self) -> bool {
        false
    }

    /// Whether the validating walk calls the hooks below (a constant, so that sinks without them
    /// pay nothing).
    const PROBED: bool = false;

    /// Probed sinks: refuse, besides invalid JSON, the two things serde_json refuses when it
    /// reads a `Value` (a lone surrogate escape, a number whose magnitude overflows an `f64`),
    /// so that accepted text always parses the same way downstream.
    #[inline(always)]
    fn strict(&self) -> bool {
        false
    }

    /// Probed sinks: the node the elements of an array found at `node` are reported at (by
    /// default the array's own, as patterns see them); `None` when nobody cares.
    #[inline(always)]
    fn element(&mut self, node: Self::Node) -> Option<Self::Node> {
        Some(node)
    }

    /// Whether the walk calls [`Sink::array_element`] for every element of an array on a named
    /// path (a constant, so that other sinks pay nothing).
    const ELEMENTS: bool = false;

    /// Element sinks: the node element `index` of the array whose elements are reported at
    /// `node` is reported at (its own node, so that a tree of the event keeps elements apart).
    #[inline(always)]
    fn array_element(&mut self, node: Self::Node, _index: usize) -> Option<Self::Node> {
        Some(node)
    }

    /// An array on a named path has a second element that is an object or an array: fields
    /// named inside the array may then come from different elements.
    #[inline(always)]
    fn multi_container(&mut self) {}

    /// Probed sinks: whether anything below `node` is named (else the walk skips the value with
    /// the validating skip and reports it only as a [`Sink::member`]).
    #[inline(always)]
    fn inside(&self, _node: Self::Node) -> bool {
        true
    }

    /// Probed sinks: a non-empty object on a named path opens; the mark returned is passed to
    /// [`Sink::member`] and [`Sink::leave_object`] for that object.
    #[inline(always)]
    fn enter_object(&mut self) -> usize {
        0
    }

    /// Probed sinks: a member of the object `mark` whose key led to `child` has its value at
    /// `input[start..end]` (already walked).
    #[inline(always)]
    fn member(
        &mut self,
        _mark: usize,
        _child: Self::Node,
        _input: &[u8],
        _start: usize,
        _end: usize,
    ) {
    }

    /// Probed sinks: the object `mark` closed.
    #[inline(always)]
    fn leave_object(&mut self, _mark: usize) {}

    /// Probed sinks: the deepest nesting of objects and arrays in the whole input (a flat object
    /// is 1), reported once the input has been read, also when its top level is not an object.
    #[inline(always)]
    fn nesting(&mut self, _depth: usize) {}
}

fn invalid(e: LexError) -> EventError {
    EventError::InvalidJson {
        offset: e.offset,
        reason: e.reason,
    }
}

fn lone_surrogate(offset: usize) -> EventError {
    EventError::InvalidJson {
        offset,
        reason: "lone surrogate in a \\u escape",
    }
}

/// Whether serde_json reads the number `text` (valid JSON grammar; `exp`: it has an exponent)
/// without overflowing: it refuses a number whose value rounds to infinity. Only a number with an
/// exponent or more than 20 characters can get near `f64::MAX` (about 1.8e308), so every other
/// one is in range without a look; the rare rest is asked of serde_json itself, whose rounding
/// decides the boundary.
#[inline(always)]
pub(crate) fn number_in_range(text: &[u8], exp: bool) -> bool {
    if text.len() <= 20 && !exp {
        return true;
    }
    serde_json::from_slice::<serde_json::Value>(text).is_ok()
}

fn out_of_range(offset: usize) -> EventError {
    EventError::InvalidJson {
        offset,
        reason: "number out of range",
    }
}

/// Walks a whole event, which must be a JSON object.
pub(crate) fn walk<S: Sink>(
    input: &[u8],
    sink: &mut S,
    key_buf: &mut Vec<u8>,
) -> Result<(), EventError> {
    walk_as::<S, false>(input, sink, key_buf, false, false).map(|_| ())
}

/// [`walk`] of the event at the start of `input` only: what follows it is not read. Returns the
/// index just past the event.
pub(crate) fn walk_leading<S: Sink>(
    input: &[u8],
    sink: &mut S,
    key_buf: &mut Vec<u8>,
) -> Result<usize, EventError> {
    walk_as::<S, false>(input, sink, key_buf, false, true)
}

/// [`walk`] for input trusted to be valid JSON (see the module docs).
///
/// With `may_stop`, the walk ends as soon as [`Sink::done`] says every named path has had a value
/// and no array has been entered on a named path (an array may hold more values for a path
/// already seen). The caller vouches that no later key can reach a named path again: no object
/// repeats a key, no key contains `.`, and the nesting is within [`MAX_EVENT_DEPTH`] (the rest is
/// not read, so a deeper subtree there would go unreported). [`crate::Serialized`] records those
/// facts while serializing.
pub(crate) fn walk_trusted<S: Sink>(
    input: &[u8],
    sink: &mut S,
    key_buf: &mut Vec<u8>,
    may_stop: bool,
) -> Result<(), EventError> {
    walk_as::<S, true>(input, sink, key_buf, may_stop, false).map(|_| ())
}

#[inline(always)]
fn walk_as<S: Sink, const TRUSTED: bool>(
    input: &[u8],
    sink: &mut S,
    key_buf: &mut Vec<u8>,
    may_stop: bool,
    leading: bool,
) -> Result<usize, EventError> {
    let i = lex::skip_ws(input, 0);
    match input.get(i) {
        Some(b'{') => {}
        Some(_) if S::PROBED && !TRUSTED => {
            // A probed caller ranks the depth above the shape (an event nested too deep is
            // refused for that first), so the value is read through for its depth; the answer
            // stays the one every walk gives, and the depth is what was read of it.
            let mut deepest = 0;
            let _ = skip_value(input, i, 0, sink.strict(), &mut deepest);
            sink.nesting(deepest);
            return Err(EventError::NotAnObject);
        }
        Some(_) => return Err(EventError::NotAnObject),
        None => {
            return Err(EventError::InvalidJson {
                offset: i,
                reason: "empty input",
            });
        }
    }
    let root = sink.root();
    let strict = !TRUSTED && sink.strict();
    let mut w = Walker::<S, TRUSTED> {
        b: input,
        sink,
        key_buf,
        may_stop: TRUSTED && may_stop,
        stopped: false,
        strict,
        deepest: 0,
    };
    let end = w.value(i, Some(root), 0)?;
    if w.stopped {
        return Ok(input.len());
    }
    if S::PROBED && !TRUSTED {
        let deepest = w.deepest;
        w.sink.nesting(deepest);
    }
    if leading {
        return Ok(end);
    }
    let end = lex::skip_ws(input, end);
    if end != input.len() {
        return Err(EventError::InvalidJson {
            offset: end,
            reason: "trailing characters",
        });
    }
    Ok(end)
}

struct Walker<'a, 's, S: Sink, const TRUSTED: bool> {
    b: &'a [u8],
    sink: &'s mut S,
    key_buf: &'s mut Vec<u8>,
    /// Whether the walk may still end early (see [`walk_trusted`]); cleared on entering an array
    /// on a named path.
    may_stop: bool,
    /// Set when the walk ended early: every enclosing call returns at once.
    stopped: bool,
    /// [`Sink::strict`], read once.
    strict: bool,
    /// Deepest nesting seen so far, kept for probed sinks only.
    deepest: usize,
}

impl<S: Sink, const TRUSTED: bool> Walker<'_, '_, S, TRUSTED> {
    #[inline(always)]
    fn string(&self, b: &[u8], i: usize) -> Result<(StrSpan, usize), EventError> {
        if TRUSTED {
            lex::scan_string_trusted(b, i).map_err(invalid)
        } else {
            let r = lex::scan_string(b, i).map_err(invalid)?;
            if self.strict && r.0.lone_surrogate() {
                return Err(lone_surrogate(i));
            }
            Ok(r)
        }
    }

    /// Records the nesting of a container opening at `depth`, for probed sinks.
    #[inline(always)]
    fn opened(&mut self, depth: usize) {
        if S::PROBED && !TRUSTED {
            self.deepest = self.deepest.max(depth + 1);
        }
    }

    /// The node for a (possibly dotted) key below `node`.
    #[inline]
    fn descend(&mut self, node: S::Node, span: StrSpan) -> Option<S::Node> {
        let key: &[u8] = if span.escaped() {
            self.key_buf.clear();
            lex::decode_escaped(self.b, span, self.key_buf);
            self.key_buf
        } else {
            &self.b[span.start..span.end]
        };
        // `key` may borrow key_buf, which the sink never touches.
        self.sink.descend(node, key)
    }

    fn value(
        &mut self,
        i: usize,
        node: Option<S::Node>,
        depth: usize,
    ) -> Result<usize, EventError> {
        let b = self.b;
        match b.get(i) {
            Some(b'"') => {
                let (span, next) = self.string(b, i)?;
                if let Some(n) = node {
                    self.sink.leaf(n, b, RawLeaf::Str(span));
                }
                Ok(next)
            }
            Some(b'{') => {
                if depth >= MAX_EVENT_DEPTH {
                    return Err(EventError::TooDeep {
                        limit: MAX_EVENT_DEPTH,
                    });
                }
                self.opened(depth);
                let mut j = lex::skip_ws(b, i + 1);
                if b.get(j) == Some(&b'}') {
                    return Ok(j + 1);
                }
                let probed = S::PROBED && !TRUSTED && node.is_some();
                let mark = if probed { self.sink.enter_object() } else { 0 };
                loop {
                    if b.get(j) != Some(&b'"') {
                        return Err(invalid(LexError {
                            offset: j,
                            reason: "expected a key",
                        }));
                    }
                    let (span, next) = self.string(b, j)?;
                    j = lex::skip_ws(b, next);
                    if b.get(j) != Some(&b':') {
                        return Err(invalid(LexError {
                            offset: j,
                            reason: "expected ':'",
                        }));
                    }
                    j = lex::skip_ws(b, j + 1);
                    let child = match node {
                        Some(n) => self.descend(n, span),
                        None => None,
                    };
                    let next = match (child, b.get(j)) {
                        (Some(c), _) if !probed || self.sink.inside(c) => {
                            self.value(j, child, depth + 1)?
                        }
                        // Nobody names anything below this key: validate it without recording.
                        // Strings are the common case and are scanned right here.
                        (_, Some(b'"')) => self.string(b, j)?.1,
                        (_, _) if TRUSTED => skip_trusted(b, j, depth + 1)?,
                        (_, _) => skip_value(b, j, depth + 1, self.strict, &mut self.deepest)?,
                    };
                    if probed && let Some(c) = child {
                        self.sink.member(mark, c, b, j, next);
                    }
                    if TRUSTED && self.may_stop && (self.stopped || self.sink.done()) {
                        self.stopped = true;
                        return Ok(b.len());
                    }
                    j = lex::skip_ws(b, next);
                    match b.get(j) {
                        Some(b',') => j = lex::skip_ws(b, j + 1),
                        Some(b'}') => {
                            if probed {
                                self.sink.leave_object(mark);
                            }
                            return Ok(j + 1);
                        }
                        _ => {
                            return Err(invalid(LexError {
                                offset: j,
                                reason: "expected ',' or '}'",
                            }));
                        }
                    }
                }
            }
            Some(b'[') => {
                if depth >= MAX_EVENT_DEPTH {
                    return Err(EventError::TooDeep {
                        limit: MAX_EVENT_DEPTH,
                    });
                }
                self.opened(depth);
                if node.is_some() {
                    // Later elements may add values to paths already seen.
                    self.may_stop = false;
                }
                // Array elements live at the array's own path (a probed sink may say otherwise).
                let elem = match node {
                    Some(n) if S::PROBED && !TRUSTED => self.sink.element(n),
                    _ => node,
                };
                let mut j = lex::skip_ws(b, i + 1);
                if b.get(j) == Some(&b']') {
                    return Ok(j + 1);
                }
                // Containers among this array's elements, counted so that the sink learns of a
                // second one: only then can fields named inside the array come from different
                // elements (array consistency, see `crate::consistent`).
                let mut containers = 0u32;
                let mut index = 0usize;
                loop {
                    let at = match elem {
                        Some(n) if S::ELEMENTS => self.sink.array_element(n, index),
                        _ => elem,
                    };
                    if node.is_some() && matches!(b.get(j), Some(b'{' | b'[')) {
                        containers += 1;
                        if containers == 2 {
                            self.sink.multi_container();
                        }
                    }
                    index += 1;
                    j = lex::skip_ws(b, self.value(j, at, depth + 1)?);
                    match b.get(j) {
                        Some(b',') => j = lex::skip_ws(b, j + 1),
                        Some(b']') => return Ok(j + 1),
                        _ => {
                            return Err(invalid(LexError {
                                offset: j,
                                reason: "expected ',' or ']'",
                            }));
                        }
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let (next, exp) = lex::scan_number_exp(b, i).map_err(invalid)?;
                if self.strict && !number_in_range(&b[i..next], exp) {
                    return Err(out_of_range(i));
                }
                if let Some(n) = node {
                    self.sink.leaf(n, b, RawLeaf::Num(i, next));
                }
                Ok(next)
            }
            Some(b't') => {
                let next = lex::scan_literal(b, i, b"true").map_err(invalid)?;
                if let Some(n) = node {
                    self.sink.leaf(n, b, RawLeaf::Bool(true));
                }
                Ok(next)
            }
            Some(b'f') => {
                let next = lex::scan_literal(b, i, b"false").map_err(invalid)?;
                if let Some(n) = node {
                    self.sink.leaf(n, b, RawLeaf::Bool(false));
                }
                Ok(next)
            }
            Some(b'n') => {
                let next = lex::scan_literal(b, i, b"null").map_err(invalid)?;
                if let Some(n) = node {
                    self.sink.leaf(n, b, RawLeaf::Null);
                }
                Ok(next)
            }
            Some(_) => Err(invalid(LexError {
                offset: i,
                reason: "unexpected character",
            })),
            None => Err(invalid(LexError {
                offset: i,
                reason: "unexpected end of input",
            })),
        }
    }
}

/// Skips one JSON value starting at `b[i]`, validating it exactly as [`Walker::value`] would
/// (same grammar, same depth limit, same errors, the same [`Sink::strict`] refusals when
/// `strict`) but iteratively and without reporting anything. `deepest` is raised to the deepest
/// nesting level reached (the value's own container at `depth` is level `depth + 1`).
pub(crate) fn skip_value(
    b: &[u8],
    mut i: usize,
    depth: usize,
    strict: bool,
    deepest: &mut usize,
) -> Result<usize, EventError> {
    // One bit per open container: 1 = object, 0 = array. MAX_EVENT_DEPTH <= 128 fits a u128.
    const _: () = assert!(MAX_EVENT_DEPTH <= 128);
    let mut stack: u128 = 0;
    let mut open = 0usize;
    'value: loop {
        // Here a value must start at b[i].
        match b.get(i) {
            Some(b'"') => i = scan_string_strict(b, i, strict)?,
            Some(&c @ (b'{' | b'[')) => {
                if depth + open >= MAX_EVENT_DEPTH {
                    return Err(EventError::TooDeep {
                        limit: MAX_EVENT_DEPTH,
                    });
                }
                let is_obj = c == b'{';
                stack = (stack << 1) | is_obj as u128;
                open += 1;
                *deepest = (*deepest).max(depth + open);
                i = lex::skip_ws(b, i + 1);
                let close = if is_obj { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    i += 1;
                    stack >>= 1;
                    open -= 1;
                } else {
                    if is_obj {
                        i = skip_key(b, i, strict)?;
                    }
                    continue 'value;
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let (next, exp) = lex::scan_number_exp(b, i).map_err(invalid)?;
                if strict && !number_in_range(&b[i..next], exp) {
                    return Err(out_of_range(i));
                }
                i = next;
            }
            Some(b't') => i = lex::scan_literal(b, i, b"true").map_err(invalid)?,
            Some(b'f') => i = lex::scan_literal(b, i, b"false").map_err(invalid)?,
            Some(b'n') => i = lex::scan_literal(b, i, b"null").map_err(invalid)?,
            Some(_) => {
                return Err(invalid(LexError {
                    offset: i,
                    reason: "unexpected character",
                }));
            }
            None => {
                return Err(invalid(LexError {
                    offset: i,
                    reason: "unexpected end of input",
                }));
            }
        }
        // A value ended: close containers or move to the next member.
        loop {
            if open == 0 {
                return Ok(i);
            }
            let in_obj = stack & 1 == 1;
            i = lex::skip_ws(b, i);
            match b.get(i) {
                Some(b',') => {
                    i = lex::skip_ws(b, i + 1);
                    if in_obj {
                        i = skip_key(b, i, strict)?;
                    }
                    continue 'value;
                }
                Some(b'}') if in_obj => {}
                Some(b']') if !in_obj => {}
                _ => {
                    let reason = if in_obj {
                        "expected ',' or '}'"
                    } else {
                        "expected ',' or ']'"
                    };
                    return Err(invalid(LexError { offset: i, reason }));
                }
            }
            i += 1;
            stack >>= 1;
            open -= 1;
        }
    }
}

/// Skips one value starting at `b[i]` of input trusted to be valid JSON: containers by counting
/// brackets outside strings, 32 bytes at a time, scalars by their first byte. Enforces the depth
/// limit as [`skip_value`] does, so valid input gets the same answer from both. On invalid input
/// it returns some index (possibly `b.len()`) or an error, in time linear in the input.
pub(crate) fn skip_trusted(b: &[u8], i: usize, depth: usize) -> Result<usize, EventError> {
    match b.get(i) {
        Some(b'{' | b'[') => skip_container_trusted(b, i, depth),
        Some(b'"') => Ok(lex::scan_string_trusted(b, i).map_err(invalid)?.1),
        // Only the end matters: the caller checks for the `,`, `}` or `]` that must follow.
        Some(b't' | b'n') => Ok((i + 4).min(b.len())),
        Some(b'f') => Ok((i + 5).min(b.len())),
        Some(_) => {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            Ok(j)
        }
        None => Err(invalid(LexError {
            offset: i,
            reason: "unexpected end of input",
        })),
    }
}

/// Parity prefix: bit k of the result is the xor of bits 0..=k of `x`. Over a quote mask, the
/// bits set are the bytes inside a string (opening quote included, closing quote excluded).
#[inline(always)]
fn prefix_xor(mut x: u32) -> u32 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x
}

/// [`skip_trusted`] for a container at `b[i]`. Per 32-byte block: string interiors from the
/// parity of the quotes (blocks holding a backslash, rare in events, go byte by byte so escaped
/// quotes are told apart), then the brackets outside strings are taken in order.
#[inline(never)]
fn skip_container_trusted(b: &[u8], i: usize, depth: usize) -> Result<usize, EventError> {
    let too_deep = || EventError::TooDeep {
        limit: MAX_EVENT_DEPTH,
    };
    // Containers open (this one included once its bracket is seen).
    let mut open = 0usize;
    // Whether the previous block ended inside a string, and right after an escaping backslash.
    let mut in_str = false;
    let mut escaped = false;
    let mut pos = i;
    let mut tail = [0u8; 32];
    while pos < b.len() {
        let block: &[u8; 32] = match b[pos..].first_chunk::<32>() {
            Some(s) => s,
            None => {
                // The last partial block, zero padded (a zero byte is never structural).
                let n = b.len() - pos;
                tail[..n].copy_from_slice(&b[pos..]);
                tail[n..].fill(0);
                &tail
            }
        };
        let (q, bs, o, c) = lex::structural_masks(block);
        if bs != 0 || escaped {
            // Byte by byte, tracking strings and escapes exactly.
            for (k, &x) in block.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_str {
                    match x {
                        b'"' => in_str = false,
                        b'\\' => escaped = true,
                        _ => {}
                    }
                } else {
                    match x {
                        b'"' => in_str = true,
                        b'{' | b'[' => {
                            if depth + open >= MAX_EVENT_DEPTH {
                                return Err(too_deep());
                            }
                            open += 1;
                        }
                        b'}' | b']' => {
                            open = open.saturating_sub(1);
                            if open == 0 {
                                return Ok(pos + k + 1);
                            }
                        }
                        _ => {}
                    }
                }
            }
        } else {
            let inside = prefix_xor(q) ^ if in_str { u32::MAX } else { 0 };
            let (o, c) = (o & !inside, c & !inside);
            // Brackets are rare next to quotes (most blocks have none), so they are taken one by
            // one rather than counted: counting needs popcount, a dozen instructions on the
            // x86_64 baseline.
            let mut m = o | c;
            while m != 0 {
                let k = m.trailing_zeros();
                m &= m - 1;
                if o >> k & 1 == 1 {
                    if depth + open >= MAX_EVENT_DEPTH {
                        return Err(too_deep());
                    }
                    open += 1;
                } else {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        return Ok(pos + k as usize + 1);
                    }
                }
            }
            in_str = inside >> 31 == 1;
        }
        pos += 32;
    }
    Err(invalid(LexError {
        offset: b.len(),
        reason: "unexpected end of input",
    }))
}

/// Scans the string at `b[i]` (validating); returns the index past it. With `strict`, a lone
/// surrogate escape is an error.
#[inline(always)]
fn scan_string_strict(b: &[u8], i: usize, strict: bool) -> Result<usize, EventError> {
    let (span, next) = lex::scan_string(b, i).map_err(invalid)?;
    if strict && span.lone_surrogate() {
        return Err(lone_surrogate(i));
    }
    Ok(next)
}

/// Skips `"key"` `:` at `b[i]` and the whitespace after, leaving `i` at the member's value.
#[inline]
fn skip_key(b: &[u8], i: usize, strict: bool) -> Result<usize, EventError> {
    if b.get(i) != Some(&b'"') {
        return Err(invalid(LexError {
            offset: i,
            reason: "expected a key",
        }));
    }
    let next = scan_string_strict(b, i, strict)?;
    let j = lex::skip_ws(b, next);
    if b.get(j) != Some(&b':') {
        return Err(invalid(LexError {
            offset: j,
            reason: "expected ':'",
        }));
    }
    Ok(lex::skip_ws(b, j + 1))
}

/// Scanner and matcher timings on one hot event; run with
/// `cargo test --release -p fnbridge-pattern --lib speed -- --ignored --nocapture`.
#[cfg(test)]
mod speed {
    use super::*;

    /// A native OSS event with user metadata (the bench's `oss` shape).
    const OSS_EVENT: &[u8] = br#"{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss","eventTime":"2022-08-13T06:45:43.000Z","eventVersion":"1.0","oss":{"bucket":{"arn":"acs:oss:cn-hangzhou:1234567890123456:bucket-3","name":"bucket-3","ownerIdentity":"1234567890123456","virtualBucket":""},"object":{"deltaSize":122539,"eTag":"688A7BF4F233DC9C88A80BF985AB7329","key":"dir12/sub3/file-12345.jpg","size":2345678,"objectMeta":{"mimeType":"application/octet-stream","userMeta":{"x-oss-meta-last-modified":"20250213","x-oss-meta-owner":"data-pipeline-team","x-oss-meta-source":"ingest-gateway-cn-hangzhou-03","x-oss-meta-checksum-sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}},"ossSchemaVersion":"1.0","ruleId":"9adac8e253828f4f7c0466d941fa3db81161e853"},"region":"cn-hangzhou","requestParameters":{"sourceIPAddress":"140.205.12.34"},"responseElements":{"requestId":"58F9FF2D3DF792092E0A1B2C"},"userIdentity":{"principalId":"1234567890123456"}}"#;

    /// Asks for every path and records nothing.
    struct NullSink;

    impl Sink for NullSink {
        type Node = ();
        fn root(&mut self) {}
        fn child(&mut self, _: (), _: &[u8]) -> Option<()> {
            Some(())
        }
        fn leaf(&mut self, _: (), _: &[u8], _: RawLeaf) {}
    }

    /// Minimum over rounds of the mean time of `f` (ns): robust to other processes.
    fn min_time(mut f: impl FnMut()) -> f64 {
        let mut best = f64::MAX;
        for _ in 0..15 {
            let t = std::time::Instant::now();
            for _ in 0..100_000 {
                f();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / 100_000.0);
        }
        best
    }

    #[test]
    #[ignore]
    fn scan_speed() {
        let ev = OSS_EVENT;
        let full = min_time(|| {
            std::hint::black_box(
                skip_value(std::hint::black_box(ev), 0, 0, false, &mut 0).unwrap(),
            );
        });
        let p = crate::Pattern::parse(r#"{"eventSource":["acs:oss"],"eventName":["ObjectCreated:PutObject"],"oss":{"bucket":{"name":["bucket-3"]},"object":{"key":[{"prefix":"dir12/"}]}}}"#).unwrap();
        let m = crate::Matcher::new();
        m.insert(1, &p);
        let mut out = Vec::new();
        let idx = min_time(|| m.matches_into(std::hint::black_box(ev), &mut out).unwrap());
        assert_eq!(out, vec![1]);
        let trusted_idx = min_time(|| {
            m.matches_trusted_into(std::hint::black_box(ev), &mut out)
                .unwrap()
        });
        assert_eq!(out, vec![1]);
        let skip_trusted = min_time(|| {
            std::hint::black_box(skip_trusted(std::hint::black_box(ev), 0, 0).unwrap());
        });
        let mut sink = NullSink;
        let mut kb = Vec::new();
        let walk_all = min_time(|| walk(std::hint::black_box(ev), &mut sink, &mut kb).unwrap());
        println!(
            "{} bytes: skip_value {full:.0} ns, skip_trusted {skip_trusted:.0} ns, matcher {idx:.0} ns, \
             trusted matcher {trusted_idx:.0} ns, walk everything {walk_all:.0} ns",
            ev.len()
        );
    }

    /// For `valgrind --tool=callgrind`: 10,000 trusted matches, or validating ones with
    /// `FNB_VALIDATING=1` (instruction counts per event, unaffected by other processes).
    #[test]
    #[ignore]
    fn matcher_profile() {
        let ev = OSS_EVENT;
        let p = crate::Pattern::parse(r#"{"eventSource":["acs:oss"],"eventName":["ObjectCreated:PutObject"],"oss":{"bucket":{"name":["bucket-3"]},"object":{"key":[{"prefix":"dir12/"}]}}}"#).unwrap();
        let m = crate::Matcher::new();
        m.insert(1, &p);
        let mut out = Vec::new();
        let validating = std::env::var_os("FNB_VALIDATING").is_some();
        for _ in 0..10_000 {
            if validating {
                m.matches_into(std::hint::black_box(ev), &mut out).unwrap();
            } else {
                m.matches_trusted_into(std::hint::black_box(ev), &mut out)
                    .unwrap();
            }
        }
        assert_eq!(out, vec![1]);
    }
}
