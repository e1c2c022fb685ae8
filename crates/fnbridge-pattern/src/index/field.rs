//! One field's slice of one index node: every operator on that field of every edge leaving the
//! node, arranged so that an event value finds the edges it satisfies without visiting the others.

use std::collections::HashMap;
use std::sync::Arc;

use super::EdgeRange;
use super::bytetrie::ByteTrie;
use super::flat::{FVal, Flat, Kind};
use super::intervals::{Interval, IntervalSet};
use super::strmap::StrMap;
use crate::pattern::{AnythingBut, Condition, Literal, Op};
use crate::wildcard::Wildcard;

pub(crate) struct FieldIndex {
    pub field: u32,
    /// Edges satisfied when the field has no value (`exists: false`).
    absent: EdgeRange,
    /// Edges satisfied by any value (`exists: true`).
    exists: EdgeRange,
    exact: StrMap,
    /// Everything but exact strings and `exists`, boxed: most nodes never need it.
    rare: Option<Box<Rare>>,
}

#[derive(Default)]
struct Rare {
    num_exact: StrMap,
    t: EdgeRange,
    f: EdgeRange,
    null: EdgeRange,
    prefix: Option<ByteTrie>,
    suffix: Option<ByteTrie>,
    ic_exact: StrMap,
    ic_prefix: Option<ByteTrie>,
    ic_suffix: Option<ByteTrie>,
    /// Wildcards keyed by their literal head (or, for those starting with `*`, their literal
    /// tail); the tries yield wildcard ids to verify.
    wc_head: Option<ByteTrie>,
    wc_tail: Option<ByteTrie>,
    /// Wildcards with neither a literal head nor tail (`*x*`): verified one by one.
    wc_rest: Vec<u32>,
    wildcards: Vec<(Wildcard, u32)>,
    numeric: Option<IntervalSet<f64>>,
    cidr: Option<IntervalSet<u128>>,
    anything_but: Vec<(u32, Arc<AnythingBut>)>,
}

/// Collects `key -> edges` while building.
#[derive(Default)]
struct Bucket(HashMap<Vec<u8>, Vec<u32>>);

impl Bucket {
    fn add(&mut self, key: &[u8], child: u32) {
        self.0.entry(key.to_vec()).or_default().push(child);
    }

    fn into_entries(self, pool: &mut Vec<u32>) -> Vec<(Vec<u8>, EdgeRange)> {
        let mut v: Vec<_> = self.0.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter()
            .map(|(k, kids)| (k, EdgeRange::store(pool, kids)))
            .collect()
    }

    fn into_map(self, pool: &mut Vec<u32>) -> StrMap {
        StrMap::build(
            self.into_entries(pool)
                .into_iter()
                .map(|(k, r)| (k.into_boxed_slice(), r))
                .collect(),
        )
    }

    fn into_trie(self, pool: &mut Vec<u32>, reverse: bool) -> Option<ByteTrie> {
        if self.0.is_empty() {
            return None;
        }
        let mut entries = self.into_entries(pool);
        if reverse {
            for e in &mut entries {
                e.0.reverse();
            }
        }
        Some(ByteTrie::build(entries))
    }
}

impl FieldIndex {
    /// Builds the index of `field` over edges `(condition, child node)`.
    pub fn build(field: u32, edges: &[(&Condition, u32)], pool: &mut Vec<u32>) -> FieldIndex {
        let (mut absent, mut exists) = (Vec::new(), Vec::new());
        let (mut t, mut f, mut null) = (Vec::new(), Vec::new(), Vec::new());
        let mut exact = Bucket::default();
        let mut num_exact = Bucket::default();
        let (mut prefix, mut suffix) = (Bucket::default(), Bucket::default());
        let (mut ic_exact, mut ic_prefix, mut ic_suffix) =
            (Bucket::default(), Bucket::default(), Bucket::default());
        let (mut wc_head, mut wc_tail) = (Bucket::default(), Bucket::default());
        let mut wc_rest = Vec::new();
        let mut wildcards: Vec<(Wildcard, u32)> = Vec::new();
        let mut numeric = Vec::new();
        let mut cidr = Vec::new();
        let mut anything_but = Vec::new();

        for &(cond, child) in edges {
            for op in &cond.ops {
                match op {
                    Op::Exact(Literal::Str(s)) => exact.add(s.as_bytes(), child),
                    Op::Exact(Literal::Num(c)) => num_exact.add(c, child),
                    Op::Exact(Literal::Bool(true)) => t.push(child),
                    Op::Exact(Literal::Bool(false)) => f.push(child),
                    Op::Exact(Literal::Null) => null.push(child),
                    Op::EqualsIc(s) => ic_exact.add(s.as_bytes(), child),
                    Op::Prefix(s) => prefix.add(s.as_bytes(), child),
                    Op::Suffix(s) => suffix.add(s.as_bytes(), child),
                    Op::PrefixIc(s) => ic_prefix.add(s.as_bytes(), child),
                    Op::SuffixIc(s) => ic_suffix.add(s.as_bytes(), child),
                    Op::Wildcard(w) => {
                        let id = wildcards.len() as u32;
                        let (head, tail) = (&w.segs[0], &w.segs[w.segs.len() - 1]);
                        if !head.is_empty() {
                            wc_head.add(head, id);
                        } else if !tail.is_empty() {
                            wc_tail.add(tail, id);
                        } else {
                            wc_rest.push(id);
                        }
                        wildcards.push((w.clone(), child));
                    }
                    Op::Numeric(r) => numeric.push(Interval {
                        lo: r.lo.0,
                        lo_open: r.lo_open,
                        hi: r.hi.0,
                        hi_open: r.hi_open,
                        payload: child,
                    }),
                    Op::Cidr(lo, hi) => cidr.push(Interval {
                        lo: *lo,
                        lo_open: false,
                        hi: *hi,
                        hi_open: false,
                        payload: child,
                    }),
                    Op::Exists(true) => exists.push(child),
                    Op::Exists(false) => absent.push(child),
                    Op::AnythingBut(ab) => anything_but.push((child, ab.clone())),
                }
            }
        }

        let has_rare = !(num_exact.0.is_empty()
            && t.is_empty()
            && f.is_empty()
            && null.is_empty()
            && prefix.0.is_empty()
            && suffix.0.is_empty()
            && ic_exact.0.is_empty()
            && ic_prefix.0.is_empty()
            && ic_suffix.0.is_empty()
            && wildcards.is_empty()
            && numeric.is_empty()
            && cidr.is_empty()
            && anything_but.is_empty());
        let rare = has_rare.then(|| {
            anything_but.sort_by_key(|e: &(u32, Arc<AnythingBut>)| e.0);
            Box::new(Rare {
                num_exact: num_exact.into_map(pool),
                t: EdgeRange::store(pool, t),
                f: EdgeRange::store(pool, f),
                null: EdgeRange::store(pool, null),
                prefix: prefix.into_trie(pool, false),
                suffix: suffix.into_trie(pool, true),
                ic_exact: ic_exact.into_map(pool),
                ic_prefix: ic_prefix.into_trie(pool, false),
                ic_suffix: ic_suffix.into_trie(pool, true),
                wc_head: wc_head.into_trie(pool, false),
                wc_tail: wc_tail.into_trie(pool, true),
                wc_rest,
                wildcards,
                numeric: (!numeric.is_empty()).then(|| IntervalSet::build(numeric)),
                cidr: (!cidr.is_empty()).then(|| IntervalSet::build(cidr)),
                anything_but,
            })
        });
        FieldIndex {
            field,
            absent: EdgeRange::store(pool, absent),
            exists: EdgeRange::store(pool, exists),
            exact: exact.into_map(pool),
            rare,
        }
    }

    /// Appends to `out` the child nodes of every edge this field's values satisfy (deduplicated
    /// among themselves).
    #[inline]
    pub fn eval(&self, vals: &[FVal], flat: &Flat, input: &[u8], pool: &[u32], out: &mut Vec<u32>) {
        let start = out.len();
        if vals.is_empty() {
            out.extend_from_slice(self.absent.get(pool));
            return;
        }
        out.extend_from_slice(self.exists.get(pool));
        for v in vals {
            if v.kind == Kind::Str
                && !self.exact.is_empty()
                && let Some(r) = self.exact.get(flat.bytes(input, v.text))
            {
                out.extend_from_slice(r.get(pool));
            }
            if let Some(rare) = &self.rare {
                rare.eval_value(v, flat, input, pool, out);
            }
        }
        if let Some(rare) = &self.rare {
            for (child, ab) in &rare.anything_but {
                if vals.iter().any(|v| !ab.excludes(&flat.view(input, v))) {
                    out.push(*child);
                }
            }
        }
        if out.len() - start > 1 {
            let tail = &mut out[start..];
            tail.sort_unstable();
            let mut w = start + 1;
            for r in start + 1..out.len() {
                if out[r] != out[w - 1] {
                    out[w] = out[r];
                    w += 1;
                }
            }
            out.truncate(w);
        }
    }
}

impl Rare {
    #[inline]
    fn eval_value(&self, v: &FVal, flat: &Flat, input: &[u8], pool: &[u32], out: &mut Vec<u32>) {
        match v.kind {
            Kind::Str => {
                let s = flat.bytes(input, v.text);
                if let Some(t) = &self.prefix {
                    t.prefixes_of(s, |r| out.extend_from_slice(r.get(pool)));
                }
                if let Some(t) = &self.suffix {
                    t.suffixes_of(s, |r| out.extend_from_slice(r.get(pool)));
                }
                if let Some(fl) = v.fold {
                    let folded = flat.bytes(input, fl);
                    if let Some(r) = self.ic_exact.get(folded) {
                        out.extend_from_slice(r.get(pool));
                    }
                    if let Some(t) = &self.ic_prefix {
                        t.prefixes_of(folded, |r| out.extend_from_slice(r.get(pool)));
                    }
                    if let Some(t) = &self.ic_suffix {
                        t.suffixes_of(folded, |r| out.extend_from_slice(r.get(pool)));
                    }
                }
                if !self.wildcards.is_empty() {
                    let wildcards = &self.wildcards;
                    let mut check = |r: EdgeRange| {
                        for &id in r.get(pool) {
                            let (w, child) = &wildcards[id as usize];
                            if w.matches(s) {
                                out.push(*child);
                            }
                        }
                    };
                    if let Some(t) = &self.wc_head {
                        t.prefixes_of(s, &mut check);
                    }
                    if let Some(t) = &self.wc_tail {
                        t.suffixes_of(s, &mut check);
                    }
                    for &id in &self.wc_rest {
                        let (w, child) = &self.wildcards[id as usize];
                        if w.matches(s) {
                            out.push(*child);
                        }
                    }
                }
                if let (Some(set), Some(ip)) = (&self.cidr, v.ip) {
                    set.stab(ip, |c| out.push(c));
                }
            }
            Kind::Num => {
                if let Some(c) = v.canon
                    && let Some(r) = self.num_exact.get(flat.bytes(input, c))
                {
                    out.extend_from_slice(r.get(pool));
                }
                if let Some(set) = &self.numeric {
                    set.stab(v.num, |c| out.push(c));
                }
            }
            Kind::True => out.extend_from_slice(self.t.get(pool)),
            Kind::False => out.extend_from_slice(self.f.get(pool)),
            Kind::Null => out.extend_from_slice(self.null.get(pool)),
        }
    }
}
