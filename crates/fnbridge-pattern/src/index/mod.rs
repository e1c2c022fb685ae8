//! The matcher index: many named patterns, matched against one event at a time.
//!
//! # Structure
//!
//! Each pattern branch is a conjunction of conditions, put in a canonical order (exact before
//! prefix/suffix before the rest; among exact fields first those with a few mutually exclusive
//! values, such as `eventName`, then the most selective, such as a bucket or a domain). The
//! conditions of all branches form a trie in which identical condition prefixes share nodes
//! ([`segment::Segment`]); the conditions leaving a node are indexed per field by exact-value
//! hash tables, prefix and suffix radix tries, interval sets for `numeric` and `cidr`, and short
//! lists for the field-level operators ([`field::FieldIndex`]). Small subtrees (at most 32
//! branches, at most 8 outgoing conditions) are flattened into contiguous residual groups checked
//! branch by branch ([`residual`]): below that size a linear scan of one prefetched block beats a
//! chain of separately allocated nodes, each a cache miss when the index is cold.
//!
//! An event is flattened once, skipping (but still validating, except on the trusted path for
//! serializer output) every field no pattern names ([`flat`], [`paths`]); an event the platform
//! serialized itself ([`Serialized`]) is read only until every named path has had its value. The
//! trie is walked along satisfied conditions only, so the cost of
//! a match follows what the event satisfies rather than how many patterns exist. `anything-but`,
//! `exists` and wildcards of the form `*x*` are the exceptions: they are listed per node and
//! checked one by one, which the canonical order keeps away from the hot upper levels.
//!
//! # Concurrency and updates
//!
//! Readers load an immutable snapshot through [`arc_swap::ArcSwap`] and never wait: a writer
//! builds the next snapshot beside the current one and swaps it in; writers are serialized by a
//! mutex. To keep that copy-on-write cheap, the index is a short list of independently built
//! segments (the logarithmic method): an insert builds a one-pattern segment, and the newest
//! segments are merged while the older of the last two is at most [`MERGE_RATIO`] times the
//! newer (or there are more than [`MAX_SEGMENTS`]). Every pattern is therefore rebuilt
//! O(log n) times in total, so inserting 100,000 patterns one by one is n log n work, not n^2,
//! and there are at most about [`MAX_SEGMENTS`] segments to visit per match;
//! [`Matcher::insert_many`] builds one segment for a whole batch. A removal marks the pattern's
//! slot dead in a per-segment bitmap (copied on write) and rebuilds the segment once half of it
//! is dead. The path trie used for skipping is rebuilt when the set of named paths changes.

mod bytetrie;
mod field;
mod flat;
mod hash;
mod intervals;
mod paths;
mod residual;
mod segment;
// The probe reads its keys' head words as the path trie does.
pub(crate) mod strmap;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::error::EventError;
use crate::flatten;
use crate::limits::MAX_EVENT_DEPTH;
use crate::pattern::Pattern;
use crate::probe::{Capture, Probe, Probed};
use crate::serialized::Serialized;
use flat::{Flat, IndexSink};

use crate::consistent::{self, Sensitive};
use paths::{PathTrie, Registry};
use segment::Segment;

/// Merge the two newest segments while the older holds at most this many times the newer's
/// patterns.
pub const MERGE_RATIO: usize = 4;
/// Merge regardless once there are more segments than this.
pub const MAX_SEGMENTS: usize = 8;

/// A list of `u32`s (child node ids, wildcard ids or pattern slots): a range of a segment's
/// pool, or, for a single item, the item itself in `start` (no pool access, one cache miss
/// fewer on the common one-edge lookup).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct EdgeRange {
    pub start: u32,
    pub len: u32,
}

impl EdgeRange {
    pub const EMPTY: EdgeRange = EdgeRange { start: 0, len: 0 };

    /// Stores `items` (sorted, deduplicated), in the pool when more than one.
    pub fn store(pool: &mut Vec<u32>, mut items: Vec<u32>) -> EdgeRange {
        items.sort_unstable();
        items.dedup();
        match items.len() {
            0 => EdgeRange::EMPTY,
            1 => EdgeRange {
                start: items[0],
                len: 1,
            },
            n => {
                let start = pool.len() as u32;
                pool.extend_from_slice(&items);
                EdgeRange {
                    start,
                    len: n as u32,
                }
            }
        }
    }

    #[inline(always)]
    pub fn get<'a>(&'a self, pool: &'a [u32]) -> &'a [u32] {
        if self.len <= 1 {
            &std::slice::from_ref(&self.start)[..self.len as usize]
        } else {
            &pool[self.start as usize..(self.start + self.len) as usize]
        }
    }
}

#[derive(Clone)]
struct SegRef {
    seg: Arc<Segment>,
    dead: Option<Arc<Vec<u64>>>,
}

/// What readers see: immutable once published.
struct Snapshot {
    paths: Arc<PathTrie>,
    segs: Vec<SegRef>,
    len: usize,
    /// The patterns array consistency may decide otherwise than the index's flattened values.
    arrays: Arc<Sensitive>,
}

struct SegState {
    uid: u64,
    seg: Arc<Segment>,
    dead: Option<Arc<Vec<u64>>>,
    live: usize,
}

struct Entry {
    pattern: Pattern,
    seg: u64,
    slot: u32,
}

#[derive(Default)]
struct Writer {
    /// Subtrees of at most this many branches become residual groups.
    group_max: usize,
    entries: HashMap<u64, Entry>,
    segs: Vec<SegState>,
    registry: Registry,
    paths: Option<Arc<PathTrie>>,
    next_uid: u64,
    /// The array-sensitive patterns by id, and whether they changed since the last publish.
    sensitive: HashMap<u64, (Pattern, bool)>,
    sensitive_dirty: bool,
    arrays: Arc<Sensitive>,
}

/// A set of named patterns, matched against events. `Send + Sync`; share it with an `Arc`.
/// Matching never blocks on concurrent inserts or removals.
pub struct Matcher {
    snap: ArcSwap<Snapshot>,
    writer: Mutex<Writer>,
}

impl Default for Matcher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher").field("len", &self.len()).finish()
    }
}

/// Per-thread scratch space, so a match allocates only its result.
#[derive(Default)]
struct Scratch {
    flat: Flat,
    key_buf: Vec<u8>,
    stack: Vec<u32>,
    seen: Vec<u64>,
    /// The probed walk's record of read members (see [`Probed`]).
    reached: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Matcher {
    pub fn new() -> Matcher {
        Matcher::with_group_max(residual::GROUP_MAX)
    }

    /// A matcher whose trie turns subtrees of at most `group_max` branches into linear groups
    /// (0: never). The default suits all workloads; tests use this to exercise both halves of
    /// the index.
    #[doc(hidden)]
    pub fn with_group_max(group_max: usize) -> Matcher {
        let snap = Snapshot {
            paths: Arc::new(PathTrie::empty()),
            segs: Vec::new(),
            len: 0,
            arrays: Arc::new(Sensitive::default()),
        };
        let writer = Writer {
            group_max,
            ..Writer::default()
        };
        Matcher {
            snap: ArcSwap::from_pointee(snap),
            writer: Mutex::new(writer),
        }
    }

    /// Number of patterns held.
    pub fn len(&self) -> usize {
        self.snap.load().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of segments a match currently visits (see the module docs); for tests and metrics.
    pub fn segments(&self) -> usize {
        self.snap.load().segs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic mid-update leaves the writer state consistent up to the last publish: every
        // mutation is followed by a publish, so a poisoned lock is safe to reuse.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a pattern under `id`, replacing any pattern already there.
    pub fn insert(&self, id: u64, pattern: &Pattern) {
        self.insert_many(std::iter::once((id, pattern.clone())));
    }

    /// Adds many patterns with one rebuild; a repeated id keeps its last pattern.
    pub fn insert_many(&self, items: impl IntoIterator<Item = (u64, Pattern)>) {
        let mut batch: Vec<(u64, Pattern)> = Vec::new();
        let mut pos: HashMap<u64, usize> = HashMap::new();
        for (id, p) in items {
            match pos.get(&id) {
                Some(&i) => batch[i].1 = p,
                None => {
                    pos.insert(id, batch.len());
                    batch.push((id, p));
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        let mut w = self.lock();
        for (id, _) in &batch {
            w.kill(*id);
        }
        for (id, p) in &batch {
            w.registry.add(p);
            if consistent::pattern_sensitive(p) {
                w.sensitive
                    .insert(*id, (p.clone(), consistent::pattern_adds(p)));
                w.sensitive_dirty = true;
            }
        }
        w.push_segment(batch);
        w.merge();
        self.publish(&mut w);
    }

    /// Removes the pattern under `id`; false when there was none.
    pub fn remove(&self, id: u64) -> bool {
        let mut w = self.lock();
        if !w.kill(id) {
            return false;
        }
        self.publish(&mut w);
        true
    }

    fn publish(&self, w: &mut Writer) {
        if let Some(t) = w.registry.take_trie() {
            w.paths = Some(Arc::new(t));
        }
        let paths = w
            .paths
            .clone()
            .unwrap_or_else(|| Arc::new(PathTrie::empty()));
        if w.sensitive_dirty {
            let mut adds: Vec<u64> = w
                .sensitive
                .iter()
                .filter(|(_, (_, a))| *a)
                .map(|(id, _)| *id)
                .collect();
            adds.sort_unstable();
            w.arrays = Arc::new(Sensitive {
                check: w
                    .sensitive
                    .iter()
                    .map(|(id, (p, _))| (*id, p.clone()))
                    .collect(),
                adds,
            });
            w.sensitive_dirty = false;
        }
        let segs = w
            .segs
            .iter()
            .map(|s| SegRef {
                seg: s.seg.clone(),
                dead: s.dead.clone(),
            })
            .collect();
        self.snap.store(Arc::new(Snapshot {
            paths,
            segs,
            len: w.entries.len(),
            arrays: w.arrays.clone(),
        }));
    }

    /// The sorted, deduplicated ids of the patterns `event_json` matches.
    pub fn matches(&self, event_json: &[u8]) -> Result<Vec<u64>, EventError> {
        let mut out = Vec::new();
        self.matches_into(event_json, &mut out)?;
        Ok(out)
    }

    /// Like [`Matcher::matches`], reusing `out` (cleared first).
    pub fn matches_into(&self, event_json: &[u8], out: &mut Vec<u64>) -> Result<(), EventError> {
        self.match_with(event_json, out, Mode::Validate)
    }

    /// [`Matcher::matches`] for input the caller knows to be valid JSON, such as the output of a
    /// JSON serializer: the parts of the event no pattern names are skipped by bracket and quote
    /// counting instead of being validated, and the strings read are not checked for escapes,
    /// control characters or UTF-8. The values of named paths are decoded exactly as in
    /// [`Matcher::matches`].
    ///
    /// Contract: on valid JSON the answer, `Ok` or `Err`, is the same as [`Matcher::matches`]'
    /// (including [`EventError::NotAnObject`] and the depth limit). On anything else it may
    /// return any set of ids or any error, but it never panics, never reads out of bounds and
    /// runs in time linear in the input. Use [`Matcher::matches`] for untrusted input.
    pub fn matches_trusted(&self, event_json: &[u8]) -> Result<Vec<u64>, EventError> {
        let mut out = Vec::new();
        self.matches_trusted_into(event_json, &mut out)?;
        Ok(out)
    }

    /// Like [`Matcher::matches_trusted`], reusing `out` (cleared first).
    pub fn matches_trusted_into(
        &self,
        event_json: &[u8],
        out: &mut Vec<u64>,
    ) -> Result<(), EventError> {
        self.match_with(event_json, out, Mode::Trusted)
    }

    /// [`Matcher::matches`] for an event the platform has just serialized: the fastest path.
    /// Besides skipping what no pattern names as [`Matcher::matches_trusted`] does, it stops
    /// reading the event once every path the patterns name has had its value, when
    /// [`Serialized`] vouches that nothing later can add one (no key holds a `.`, the nesting is
    /// within the limit; keys are unique in a `serde_json` map, and an array on a named path makes
    /// the walk read on). The answer, ids or error, is always the same as
    /// [`Matcher::matches`]' on the same text.
    pub fn matches_serialized(&self, event: &Serialized) -> Result<Vec<u64>, EventError> {
        let mut out = Vec::new();
        self.matches_serialized_into(event, &mut out)?;
        Ok(out)
    }

    /// Like [`Matcher::matches_serialized`], reusing `out` (cleared first).
    pub fn matches_serialized_into(
        &self,
        event: &Serialized,
        out: &mut Vec<u64>,
    ) -> Result<(), EventError> {
        let may_stop = !event.has_dotted_keys() && event.depth() <= MAX_EVENT_DEPTH;
        let mode = if may_stop {
            Mode::TrustedMayStop
        } else {
            Mode::Trusted
        };
        self.match_with(event.as_str().as_bytes(), out, mode)
    }

    /// [`Matcher::matches_into`] that also fills `cap` with what `probe` asks for, in the same
    /// validating pass over `event_json`: the values at the probe's paths, the nesting depth,
    /// and whether a key on a read path repeats (see [`Capture`]). The probe's paths take no
    /// part in matching: the ids are those [`Matcher::matches`] gives on the same bytes, or the
    /// error is, except that a [`Probe::strict_json`] probe also refuses what serde_json refuses.
    pub fn matches_probed_into(
        &self,
        event_json: &[u8],
        probe: &Probe,
        cap: &mut Capture,
        out: &mut Vec<u64>,
    ) -> Result<(), EventError> {
        out.clear();
        let snap = self.snap.load();
        SCRATCH
            .with(|cell| match cell.try_borrow_mut() {
                Ok(mut s) => run_probed(&snap, event_json, &mut s, probe, cap, out, false),
                Err(_) => run_probed(
                    &snap,
                    event_json,
                    &mut Scratch::default(),
                    probe,
                    cap,
                    out,
                    false,
                ),
            })
            .map(|_| ())
    }

    /// [`Matcher::matches_probed_into`] of the JSON value at the start of `text` (after any
    /// whitespace), for reading values one after another out of a larger document without a
    /// pass to find where each ends: what follows the value is not read. Returns the value's
    /// text (from the start of `text`), validated; the captures' spans are offsets in it.
    pub fn match_leading<'t>(
        &self,
        text: &'t [u8],
        probe: &Probe,
        cap: &mut Capture,
        out: &mut Vec<u64>,
    ) -> Result<&'t str, EventError> {
        out.clear();
        let snap = self.snap.load();
        let end = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => run_probed(&snap, text, &mut s, probe, cap, out, true),
            Err(_) => run_probed(&snap, text, &mut Scratch::default(), probe, cap, out, true),
        })?;
        Ok(validated_str(&text[..end]))
    }

    /// A [`Session`] on the current patterns: for matching the values of one document one after
    /// another ([`Session::match_leading`]) against one set of patterns, with this thread's
    /// scratch space held throughout.
    pub fn session(&self) -> Session {
        // Taken rather than borrowed, so that the session can live across calls; a match on this
        // thread meanwhile (not something the crate does) gets fresh scratch.
        let scratch = SCRATCH
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .map(|mut s| std::mem::take(&mut *s))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Session {
            snap: self.snap.load_full(),
            scratch,
        }
    }

    #[inline]
    fn match_with(
        &self,
        event_json: &[u8],
        out: &mut Vec<u64>,
        mode: Mode,
    ) -> Result<(), EventError> {
        out.clear();
        let snap = self.snap.load();
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => run(&snap, event_json, &mut s, out, mode),
            // Re-entered from inside a match on this thread (not something the crate does):
            // use fresh scratch rather than fail.
            Err(_) => run(&snap, event_json, &mut Scratch::default(), out, mode),
        })
    }
}

/// The patterns of a [`Matcher`] as they were when [`Matcher::session`] was called, and the
/// calling thread's scratch space, held for a run of matches: each match then skips loading the
/// snapshot and borrowing the scratch (about a twentieth of a ~1 KB event's match), and every
/// value of one document is matched against the same patterns, whatever is inserted or removed
/// meanwhile. Gives the scratch back when dropped.
pub struct Session {
    snap: Arc<Snapshot>,
    scratch: Scratch,
}

impl Session {
    /// [`Matcher::match_leading`] against the session's patterns.
    pub fn match_leading<'t>(
        &mut self,
        text: &'t [u8],
        probe: &Probe,
        cap: &mut Capture,
        out: &mut Vec<u64>,
    ) -> Result<&'t str, EventError> {
        out.clear();
        let end = run_probed(&self.snap, text, &mut self.scratch, probe, cap, out, true)?;
        Ok(validated_str(&text[..end]))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let scratch = std::mem::take(&mut self.scratch);
        // Nothing to give back to on a thread that is exiting, or while the scratch is in use.
        let _ = SCRATCH.try_with(|cell| {
            if let Ok(mut s) = cell.try_borrow_mut() {
                *s = scratch;
            }
        });
    }
}

/// How an event's text is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Untrusted: everything validated.
    Validate,
    /// Valid JSON: unnamed parts skipped by bracket counting.
    Trusted,
    /// Serialized from a map whose keys hold no `.`: may also stop once all named paths are seen.
    TrustedMayStop,
}

fn run(
    snap: &Snapshot,
    input: &[u8],
    s: &mut Scratch,
    out: &mut Vec<u64>,
    mode: Mode,
) -> Result<(), EventError> {
    let Scratch {
        flat,
        key_buf,
        stack,
        seen,
        ..
    } = s;
    flat.clear();
    prefetch_input(input);
    let mut sink = IndexSink::new(&snap.paths, flat, seen);
    match mode {
        Mode::Validate => flatten::walk(input, &mut sink, key_buf)?,
        Mode::Trusted => flatten::walk_trusted(input, &mut sink, key_buf, false)?,
        Mode::TrustedMayStop => flatten::walk_trusted(input, &mut sink, key_buf, true)?,
    }
    collect(snap, input, flat, stack, out);
    if flat.multi && !snap.arrays.is_empty() {
        snap.arrays.recheck(input, out);
    }
    Ok(())
}

/// The index's answer for the values in `flat`.
#[inline]
fn collect(
    snap: &Snapshot,
    input: &[u8],
    flat: &mut Flat,
    stack: &mut Vec<u32>,
    out: &mut Vec<u64>,
) {
    flat.finish();
    for r in &snap.segs {
        r.seg.collect(
            flat,
            input,
            r.dead.as_ref().map(|d| d.as_slice()),
            stack,
            out,
        );
    }
    if out.len() > 1 {
        out.sort_unstable();
        out.dedup();
    }
}

/// Text the validating walk accepted, as `str`.
///
/// The walk validates the UTF-8 of every string as it scans it, and outside strings accepts
/// only ASCII (the JSON grammar's bytes and whitespace; any byte >= 0x80 there is an error), so
/// accepted text is UTF-8 and a second pass to check it would only repeat the walk's.
#[inline]
pub(crate) fn validated_str(text: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(text).is_ok());
    // SAFETY: `text` was accepted by the validating walk, which guarantees UTF-8 (above).
    unsafe { std::str::from_utf8_unchecked(text) }
}

/// How much of a leading value's text is prefetched (see [`prefetch_input`]). Its end is not
/// known, and the text after it is usually the next value, read by the next call.
const LEADING_PREFETCH: usize = 1024;

/// [`run`] with a probe: always the validating walk; of the leading value only when `leading`.
/// Returns the index past the value.
fn run_probed(
    snap: &Snapshot,
    input: &[u8],
    s: &mut Scratch,
    probe: &Probe,
    cap: &mut Capture,
    out: &mut Vec<u64>,
    leading: bool,
) -> Result<usize, EventError> {
    let Scratch {
        flat,
        key_buf,
        stack,
        seen,
        reached,
    } = s;
    flat.clear();
    if leading {
        prefetch_input(&input[..input.len().min(LEADING_PREFETCH)]);
    } else {
        prefetch_input(input);
    }
    let sink = IndexSink::new(&snap.paths, flat, seen);
    let mut sink = Probed::new(sink, probe, cap, reached);
    let end = if leading {
        flatten::walk_leading(input, &mut sink, key_buf)?
    } else {
        flatten::walk(input, &mut sink, key_buf)?;
        input.len()
    };
    collect(snap, input, flat, stack, out);
    if flat.multi && !snap.arrays.is_empty() {
        snap.arrays.recheck(&input[..end], out);
    }
    Ok(end)
}

/// [`Probe::scan`]: a probed walk that names no pattern path.
pub(crate) fn scan_probed(
    input: &[u8],
    probe: &Probe,
    cap: &mut Capture,
    leading: bool,
) -> Result<usize, EventError> {
    let empty = PathTrie::empty();
    let mut flat = Flat::default();
    let (mut seen, mut reached, mut key_buf) = (Vec::new(), Vec::new(), Vec::new());
    let sink = IndexSink::new(&empty, &mut flat, &mut seen);
    let mut sink = Probed::new(sink, probe, cap, &mut reached);
    if leading {
        flatten::walk_leading(input, &mut sink, &mut key_buf)
    } else {
        flatten::walk(input, &mut sink, &mut key_buf).map(|_| input.len())
    }
}

/// Asks for the first cache lines of the event at once. An event that is not in cache (a queue
/// of them, as in the benchmark) is otherwise fetched one line after another as the walk reaches
/// it, each a serialized miss; requested together the misses overlap. The hint is non-temporal:
/// an event is read once, so it should not push the index out of the outer caches (measured:
/// ~8% more OSS events/s at 10,000 patterns than the ordinary hint). An event serialized a
/// moment earlier is in cache already and this costs a few instructions.
#[inline(always)]
fn prefetch_input(input: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_NTA, _mm_prefetch};
        // Beyond 4 KiB the hardware prefetcher has caught on to the sequential walk.
        let bytes = input.len().min(4096);
        let p = input.as_ptr() as *const i8;
        let mut off = 64;
        while off < bytes {
            // SAFETY: a prefetch is a hint that never faults; the address is within `input`.
            unsafe { _mm_prefetch::<_MM_HINT_NTA>(p.add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = input;
}

impl Writer {
    fn new_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// Builds a segment from `batch` (already registered) and appends it.
    fn push_segment(&mut self, batch: Vec<(u64, Pattern)>) {
        let uid = self.new_uid();
        let seg = Arc::new(Segment::build(&batch, &self.registry, self.group_max));
        let live = batch.len();
        for (slot, (id, pattern)) in batch.into_iter().enumerate() {
            self.entries.insert(
                id,
                Entry {
                    pattern,
                    seg: uid,
                    slot: slot as u32,
                },
            );
        }
        self.segs.push(SegState {
            uid,
            seg,
            dead: None,
            live,
        });
    }

    /// Live patterns of segment `i`, in slot order.
    fn live_patterns(&self, i: usize) -> Vec<(u64, Pattern)> {
        let s = &self.segs[i];
        let mut out = Vec::with_capacity(s.live);
        for (slot, id) in s.seg.ids.iter().enumerate() {
            let dead = s
                .dead
                .as_ref()
                .is_some_and(|d| d[slot / 64] >> (slot % 64) & 1 == 1);
            if !dead && let Some(e) = self.entries.get(id) {
                out.push((*id, e.pattern.clone()));
            }
        }
        out
    }

    /// Merges the newest segments per the policy in the module docs.
    fn merge(&mut self) {
        while self.segs.len() >= 2 {
            let n = self.segs.len();
            let (older, newer) = (self.segs[n - 2].live, self.segs[n - 1].live);
            if older > MERGE_RATIO * newer && n <= MAX_SEGMENTS {
                break;
            }
            let mut all = self.live_patterns(n - 2);
            all.extend(self.live_patterns(n - 1));
            self.segs.truncate(n - 2);
            self.push_segment(all);
        }
    }

    /// Drops `id` from the writer state and marks it dead in its segment. False if absent.
    fn kill(&mut self, id: u64) -> bool {
        let Some(e) = self.entries.remove(&id) else {
            return false;
        };
        if self.sensitive.remove(&id).is_some() {
            self.sensitive_dirty = true;
        }
        self.registry.remove(&e.pattern);
        let Some(i) = self.segs.iter().position(|s| s.uid == e.seg) else {
            return true;
        };
        let s = &mut self.segs[i];
        s.live -= 1;
        if s.live == 0 {
            self.segs.remove(i);
            return true;
        }
        let words = s.seg.len().div_ceil(64);
        let dead = Arc::make_mut(s.dead.get_or_insert_with(|| Arc::new(vec![0u64; words])));
        dead[e.slot as usize / 64] |= 1 << (e.slot % 64);
        if s.live * 2 < s.seg.len() {
            // Mostly dead: rebuild in place so matching stops walking dead branches.
            let live = self.live_patterns(i);
            let uid = self.new_uid();
            let seg = Arc::new(Segment::build(&live, &self.registry, self.group_max));
            for (slot, (pid, _)) in live.iter().enumerate() {
                if let Some(en) = self.entries.get_mut(pid) {
                    en.seg = uid;
                    en.slot = slot as u32;
                }
            }
            self.segs[i] = SegState {
                uid,
                seg,
                dead: None,
                live: live.len(),
            };
        }
        true
    }
}
