//! The compiled form of a pattern: `$or`-expanded branches of field conditions, and the
//! semantics of each operator against one event leaf value.
//!
//! A pattern is a disjunction of branches; a branch is a conjunction of conditions, one per
//! dot-joined field path; a condition is a disjunction of operators. Event values are the leaf
//! values (string, number, boolean, null) found at a path, arrays flattened at any depth, so a
//! condition holds when any operator holds for the field (`exists` and `anything-but` look at the
//! field's values as a whole, see [`Op::test_field`]).

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::{EventError, PatternError};
use crate::value;
use crate::wildcard::Wildcard;

/// A parsed, validated event pattern. Cheap to clone (shared).
#[derive(Clone)]
pub struct Pattern {
    pub(crate) inner: Arc<PatternInner>,
}

pub(crate) struct PatternInner {
    pub text: Box<str>,
    pub branches: Vec<Branch>,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pattern").field(&self.inner.text).finish()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.inner.text == other.inner.text
    }
}

impl Pattern {
    /// Parses and validates EventBridge pattern text.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let branches = crate::parse::compile(text)?;
        Ok(Pattern {
            inner: Arc::new(PatternInner {
                text: text.into(),
                branches,
            }),
        })
    }

    /// The pattern text as given to [`Pattern::parse`].
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    /// The pattern as compact JSON (insignificant whitespace removed; key order and duplicate keys
    /// kept, since both carry meaning).
    pub fn to_compact_json(&self) -> String {
        // The text parsed once already, so this cannot fail; fall back to the text regardless.
        crate::json::parse(self.inner.text.as_bytes(), crate::limits::MAX_PATTERN_DEPTH)
            .map(|v| crate::json::to_compact(&v))
            .unwrap_or_else(|_| self.inner.text.to_string())
    }

    /// Naive single-pattern evaluation: parses the whole event and checks each branch directly.
    /// [`crate::Matcher`] gives the same answers for many patterns at once.
    pub fn matches(&self, event_json: &[u8]) -> Result<bool, EventError> {
        let ev = crate::naive::FullEvent::parse(event_json)?;
        Ok(self.matches_event(&ev))
    }

    /// Why `event_json` does not match: `Ok(None)` when it matches, else the field path of the
    /// first condition that failed, in the branch that got furthest (the most conditions
    /// holding on their own); `""` for a pattern with no branches.
    pub fn explain(&self, event_json: &[u8]) -> Result<Option<String>, EventError> {
        let ev = crate::naive::FullEvent::parse(event_json)?;
        let mut best: Option<(usize, &str)> = None;
        for b in &self.inner.branches {
            let Some(path) = ev.first_failure(b) else {
                return Ok(None);
            };
            let held = b.conds.iter().take_while(|c| *c.path != *path).count();
            if best.is_none_or(|(n, _)| held > n) {
                best = Some((held, path));
            }
        }
        Ok(Some(best.map(|(_, p)| p.to_string()).unwrap_or_default()))
    }

    /// Evaluates against an event already parsed with [`crate::naive::FullEvent::parse`], so a
    /// loop over many patterns parses the event once.
    pub fn matches_event(&self, ev: &crate::naive::FullEvent) -> bool {
        self.inner.branches.iter().any(|b| ev.satisfies(b))
    }
}

/// One conjunction of conditions, sorted by path, at most one condition per path.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub conds: Vec<Arc<Condition>>,
}

/// The operators one field must satisfy (any of them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Condition {
    pub path: Arc<str>,
    /// Sorted and deduplicated, so equal conditions compare equal.
    pub ops: Vec<Op>,
}

impl Condition {
    /// Ordering class used to sort a branch's conditions for the index: selective conditions
    /// first, so the index's shared prefixes fan out on exact values rather than on conditions
    /// most events satisfy.
    pub fn rank(&self) -> u8 {
        self.ops.iter().map(Op::rank).max().unwrap_or(0)
    }
}

/// A double with total equality and ordering (`-0` equals `0`), for hashing ranges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct F64(pub f64);

impl F64 {
    fn key(self) -> u64 {
        if self.0 == 0.0 { 0 } else { self.0.to_bits() }
    }
}
impl PartialEq for F64 {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for F64 {}
impl Hash for F64 {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}
impl PartialOrd for F64 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for F64 {
    fn cmp(&self, o: &Self) -> Ordering {
        let a = if self.0 == 0.0 { 0.0 } else { self.0 };
        let b = if o.0 == 0.0 { 0.0 } else { o.0 };
        a.total_cmp(&b)
    }
}

/// A numeric interval; unbounded sides use infinities (closed), which every event number,
/// including overflowed ones, compares against correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Range {
    pub lo: F64,
    pub lo_open: bool,
    pub hi: F64,
    pub hi_open: bool,
}

impl Range {
    #[inline]
    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_open {
            x > self.lo.0
        } else {
            x >= self.lo.0
        };
        let below = if self.hi_open {
            x < self.hi.0
        } else {
            x <= self.hi.0
        };
        above && below
    }
}

/// An exact value. Numbers hold their canonical decimal form (see [`value::canon_number`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Literal {
    Str(Box<str>),
    Num(Box<[u8]>),
    Bool(bool),
    Null,
}

/// One operator of a condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Op {
    Exact(Literal),
    /// Case-folded operand.
    EqualsIc(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    PrefixIc(Box<str>),
    SuffixIc(Box<str>),
    Wildcard(Wildcard),
    Numeric(Range),
    /// Inclusive range of addresses (see [`value::ip_to_u128`]).
    Cidr(u128, u128),
    Exists(bool),
    AnythingBut(Arc<AnythingBut>),
}

/// What `anything-but` excludes; it holds for any value that is not excluded. Only strings can
/// be excluded by string forms and only numbers by numbers, so `{"anything-but": "x"}` holds for
/// `null`, booleans and numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AnythingBut {
    Strings(Vec<Box<str>>),
    /// Canonical decimal forms.
    Numbers(Vec<Box<[u8]>>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    /// Case-folded.
    IgnoreCase(Vec<Box<str>>),
    Wildcards(Vec<Wildcard>),
}

/// One event leaf value, with lazily or eagerly derived comparison forms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Str(&'a [u8]),
    /// Number source text.
    Num(&'a [u8]),
    Bool(bool),
    Null,
}

/// A leaf plus the derived forms the index precomputed (None = compute on demand).
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub leaf: Leaf<'a>,
    pub fold: Option<&'a [u8]>,
    pub canon: Option<&'a [u8]>,
}

impl<'a> View<'a> {
    pub fn plain(leaf: Leaf<'a>) -> Self {
        View {
            leaf,
            fold: None,
            canon: None,
        }
    }

    fn with_fold<R>(&self, s: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
        match self.fold {
            Some(x) => f(x),
            None => {
                let mut buf = Vec::with_capacity(s.len());
                value::fold_into(s, &mut buf);
                f(&buf)
            }
        }
    }

    fn with_canon<R>(&self, text: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
        match self.canon {
            Some(x) => f(x),
            None => {
                let mut buf = Vec::with_capacity(text.len() + 4);
                value::canon_number(text, &mut buf);
                f(&buf)
            }
        }
    }
}

impl Op {
    pub fn rank(&self) -> u8 {
        match self {
            Op::Exact(_) | Op::EqualsIc(_) => 0,
            Op::Prefix(_) | Op::Suffix(_) | Op::PrefixIc(_) | Op::SuffixIc(_) => 1,
            Op::Wildcard(_) | Op::Numeric(_) | Op::Cidr(..) => 2,
            Op::Exists(true) | Op::AnythingBut(_) => 3,
            Op::Exists(false) => 4,
        }
    }

    /// Whether the operator holds for a field whose leaf values are `vals`.
    pub fn test_field(&self, vals: &[View<'_>]) -> bool {
        match self {
            Op::Exists(want) => vals.is_empty() != *want,
            Op::AnythingBut(ab) => vals.iter().any(|v| !ab.excludes(v)),
            _ => vals.iter().any(|v| self.test_value(v)),
        }
    }

    /// Whether a value operator holds for one leaf. Field-level operators (`exists`,
    /// `anything-but`) answer false here.
    pub fn test_value(&self, v: &View<'_>) -> bool {
        match (self, v.leaf) {
            (Op::Exact(Literal::Str(s)), Leaf::Str(x)) => s.as_bytes() == x,
            (Op::Exact(Literal::Num(c)), Leaf::Num(t)) => v.with_canon(t, |x| **c == *x),
            (Op::Exact(Literal::Bool(b)), Leaf::Bool(x)) => *b == x,
            (Op::Exact(Literal::Null), Leaf::Null) => true,
            (Op::EqualsIc(s), Leaf::Str(x)) => v.with_fold(x, |f| s.as_bytes() == f),
            (Op::Prefix(s), Leaf::Str(x)) => x.starts_with(s.as_bytes()),
            (Op::Suffix(s), Leaf::Str(x)) => x.ends_with(s.as_bytes()),
            (Op::PrefixIc(s), Leaf::Str(x)) => v.with_fold(x, |f| f.starts_with(s.as_bytes())),
            (Op::SuffixIc(s), Leaf::Str(x)) => v.with_fold(x, |f| f.ends_with(s.as_bytes())),
            (Op::Wildcard(w), Leaf::Str(x)) => w.matches(x),
            (Op::Numeric(r), Leaf::Num(t)) => r.contains(value::number_f64(t)),
            (Op::Cidr(lo, hi), Leaf::Str(x)) => {
                value::parse_ip(x).is_some_and(|ip| *lo <= ip && ip <= *hi)
            }
            _ => false,
        }
    }
}

impl AnythingBut {
    /// Whether `v` is one of the excluded values.
    pub fn excludes(&self, v: &View<'_>) -> bool {
        match (self, v.leaf) {
            (AnythingBut::Strings(set), Leaf::Str(x)) => {
                set.binary_search_by(|s| s.as_bytes().cmp(x)).is_ok()
            }
            (AnythingBut::Numbers(set), Leaf::Num(t)) => {
                v.with_canon(t, |c| set.binary_search_by(|s| (**s).cmp(c)).is_ok())
            }
            (AnythingBut::Prefixes(ps), Leaf::Str(x)) => {
                ps.iter().any(|p| x.starts_with(p.as_bytes()))
            }
            (AnythingBut::Suffixes(ss), Leaf::Str(x)) => {
                ss.iter().any(|s| x.ends_with(s.as_bytes()))
            }
            (AnythingBut::IgnoreCase(set), Leaf::Str(x)) => {
                v.with_fold(x, |f| set.binary_search_by(|s| s.as_bytes().cmp(f)).is_ok())
            }
            (AnythingBut::Wildcards(ws), Leaf::Str(x)) => ws.iter().any(|w| w.matches(x)),
            _ => false,
        }
    }
}
