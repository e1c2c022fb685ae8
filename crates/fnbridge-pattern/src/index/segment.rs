//! One immutable slice of the index: a trie over patterns' conditions in which patterns sharing
//! a prefix of identical conditions share nodes, and each node's outgoing conditions are indexed
//! per field ([`FieldIndex`]).
//!
//! Matching walks from the root following only satisfied conditions, so its cost follows the
//! number of conditions the event satisfies, not the number of patterns: ten thousand CDN
//! patterns with eight distinct event names fan out on one exact lookup of `eventName`, then one
//! lookup of the domain. Child references are tagged: a node, a leaf (one pattern, reported
//! directly) or a residual group ([`super::residual`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::EdgeRange;
use super::field::FieldIndex;
use super::flat::Flat;
use super::hash::FastMap;
use super::paths::Registry;
use super::residual::{Entry, Residual};
use crate::pattern::{Condition, Op, Pattern};

/// A subtree becomes a residual group only when its root has at most this many outgoing
/// conditions: a wide fan-out (a hundred CDN domains under one event name) is cheaper as one
/// hash lookup than as a linear scan.
const GROUP_FANOUT: usize = 8;

/// Fields with at most this many distinct exclusive values go first in a branch (see `build`).
const HOT_FANOUT: usize = 64;

/// Child references are tagged `u32`s: a node id, a pattern slot (a leaf ending exactly one
/// pattern, reported without loading anything), or the code offset of a residual group.
const TAG: u32 = 3 << 30;
const NODE: u32 = 0;
const LEAF: u32 = 2 << 30;
const GROUP: u32 = 3 << 30;

struct Node {
    /// Slots of the patterns whose branch ends here.
    term: EdgeRange,
    /// Range of `Segment::fields`.
    fields: (u32, u32),
}

pub(crate) struct Segment {
    root: u32,
    nodes: Vec<Node>,
    fields: Vec<FieldIndex>,
    /// Child references (and wildcard ids) referenced by [`EdgeRange`]s.
    pool: Vec<u32>,
    /// Pattern slots referenced by `Node::term`.
    terms: Vec<u32>,
    residual: Residual,
    /// Pattern id of each slot.
    pub ids: Vec<u64>,
}

#[derive(Default)]
struct BNode {
    term: Vec<u32>,
    /// Children keyed by interned condition id, and the same in insertion order.
    kids: FastMap<u32, u32>,
    order: Vec<(u32, u32)>,
}

impl Segment {
    /// Builds a segment holding `patterns` (slot = position).
    pub fn build(patterns: &[(u64, Pattern)], reg: &Registry, group_max: usize) -> Segment {
        assert!(patterns.len() < (1 << 30), "segment too large");
        // Intern conditions and count the distinct conditions of each field.
        let mut interned: FastMap<Arc<Condition>, u32> = FastMap::default();
        let mut conds: Vec<(u32, Arc<Condition>)> = Vec::new(); // (field, condition) by id
        // Per field: distinct conditions, and whether every one is a single exact value (then an
        // event value satisfies at most one of them).
        let mut distinct: FastMap<u32, (u32, bool)> = FastMap::default();
        let mut branch_conds: Vec<Vec<u32>> = Vec::new();
        let mut branch_slot: Vec<u32> = Vec::new();
        for (slot, (_, p)) in patterns.iter().enumerate() {
            for branch in &p.inner.branches {
                let ids: Vec<u32> = branch
                    .conds
                    .iter()
                    .map(|c| match interned.get(c) {
                        Some(&id) => id,
                        None => {
                            let id = conds.len() as u32;
                            let field = reg.field(&c.path);
                            conds.push((field, c.clone()));
                            interned.insert(c.clone(), id);
                            let single = matches!(c.ops.as_slice(), [Op::Exact(_)]);
                            let d = distinct.entry(field).or_insert((0, true));
                            d.0 += 1;
                            d.1 &= single;
                            id
                        }
                    })
                    .collect();
                branch_conds.push(ids);
                branch_slot.push(slot as u32);
            }
        }

        // The canonical order of a branch's conditions, chosen so that an event reaches a small
        // subtree after touching few cold nodes:
        // - exact before prefix/suffix before the rest (rank);
        // - first the fields with few distinct, mutually exclusive values (an event satisfies at
        //   most one of them, and the few nodes they make stay in cache: `eventName` among
        //   eight CDN event names), fewest first;
        // - then the field with the most distinct conditions, so that the first cold lookup
        //   narrows the event down to a handful of patterns (a bucket name among thousands).
        let mut bnodes: Vec<BNode> = vec![BNode::default()];
        let mut keyed: Vec<(u8, u8, i64, u32, u32)> = Vec::new();
        for (ids, &slot) in branch_conds.iter().zip(&branch_slot) {
            keyed.clear();
            keyed.extend(ids.iter().map(|&id| {
                let (field, c) = &conds[id as usize];
                let (n, exclusive) = distinct[field];
                let (class, card) = if exclusive && n as usize <= HOT_FANOUT {
                    (0, n as i64)
                } else {
                    (1, -(n as i64))
                };
                (c.rank(), class, card, *field, id)
            }));
            keyed.sort_unstable();
            let mut n = 0usize;
            for &(_, _, _, _, cid) in &keyed {
                n = match bnodes[n].kids.get(&cid) {
                    Some(&c) => c as usize,
                    None => {
                        let c = bnodes.len();
                        bnodes.push(BNode::default());
                        bnodes[n].kids.insert(cid, c as u32);
                        bnodes[n].order.push((cid, c as u32));
                        c
                    }
                };
            }
            let term = &mut bnodes[n].term;
            if term.last() != Some(&slot) {
                term.push(slot);
            }
        }

        // Branches below each node (children always come after their parent).
        let mut count = vec![0usize; bnodes.len()];
        for n in (0..bnodes.len()).rev() {
            count[n] += bnodes[n].term.len();
            for &(_, c) in &bnodes[n].order {
                count[n] += count[c as usize];
            }
        }

        // Assign each reachable node its reference: small subtrees become leaves or groups.
        let mut residual = Residual::default();
        let mut code_of = vec![u32::MAX; bnodes.len()];
        let mut normal: Vec<usize> = Vec::new();
        let mut todo = vec![0usize];
        while let Some(n) = todo.pop() {
            let b = &bnodes[n];
            code_of[n] = if n != 0 && b.order.is_empty() && b.term.len() == 1 {
                // A leaf ending exactly one pattern: reported without loading anything.
                LEAF | b.term[0]
            } else if count[n] <= group_max && b.order.len() <= GROUP_FANOUT {
                let mut entries = Vec::new();
                let mut path = Vec::new();
                collect_entries(&bnodes, &conds, patterns, n, &mut path, &mut entries);
                let at = residual.add_group(&entries);
                assert!(at < (1 << 30), "segment too large");
                GROUP | at
            } else {
                normal.push(n);
                todo.extend(b.order.iter().map(|&(_, c)| c as usize));
                NODE | (normal.len() - 1) as u32
            };
        }

        let mut pool = Vec::new();
        let mut terms = Vec::new();
        let mut fields = Vec::new();
        let mut nodes = Vec::with_capacity(normal.len());
        for &n in &normal {
            let b = &bnodes[n];
            let term = EdgeRange::store(&mut terms, b.term.clone());
            let mut by_field: BTreeMap<u32, Vec<(&Condition, u32)>> = BTreeMap::new();
            for &(cid, child) in &b.order {
                let (field, cond) = &conds[cid as usize];
                by_field
                    .entry(*field)
                    .or_default()
                    .push((cond, code_of[child as usize]));
            }
            let start = fields.len() as u32;
            for (field, edges) in by_field {
                fields.push(FieldIndex::build(field, &edges, &mut pool));
            }
            nodes.push(Node {
                term,
                fields: (start, fields.len() as u32 - start),
            });
        }
        Segment {
            root: code_of[0],
            nodes,
            fields,
            pool,
            terms,
            residual,
            ids: patterns.iter().map(|(id, _)| *id).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Appends the ids of live patterns matching the flattened event to `out`.
    #[inline]
    pub fn collect(
        &self,
        flat: &Flat,
        input: &[u8],
        dead: Option<&[u64]>,
        stack: &mut Vec<u32>,
        out: &mut Vec<u64>,
    ) {
        let is_dead =
            |slot: u32| dead.is_some_and(|d| d[slot as usize / 64] >> (slot % 64) & 1 == 1);
        stack.clear();
        stack.push(self.root);
        while let Some(c) = stack.pop() {
            match c & TAG {
                LEAF => {
                    let slot = c & !TAG;
                    if !is_dead(slot) {
                        out.push(self.ids[slot as usize]);
                    }
                }
                GROUP => self.residual.eval(c & !TAG, flat, input, |slot, id| {
                    if !is_dead(slot) {
                        out.push(id);
                    }
                }),
                _ => {
                    let node = &self.nodes[c as usize];
                    for &slot in node.term.get(&self.terms) {
                        if !is_dead(slot) {
                            out.push(self.ids[slot as usize]);
                        }
                    }
                    let (start, len) = node.fields;
                    for fi in &self.fields[start as usize..(start + len) as usize] {
                        fi.eval(flat.values(fi.field), flat, input, &self.pool, stack);
                    }
                }
            }
        }
    }
}

/// The branches below builder node `n`, each with the conditions from `n` down to its end.
fn collect_entries<'a>(
    bnodes: &[BNode],
    conds: &'a [(u32, Arc<Condition>)],
    patterns: &[(u64, Pattern)],
    n: usize,
    path: &mut Vec<u32>,
    out: &mut Vec<Entry<'a>>,
) {
    for &slot in &bnodes[n].term {
        out.push(Entry {
            slot,
            id: patterns[slot as usize].0,
            conds: path
                .iter()
                .map(|&cid| (conds[cid as usize].0, &*conds[cid as usize].1))
                .collect(),
        });
    }
    for &(cid, c) in &bnodes[n].order {
        path.push(cid);
        collect_entries(bnodes, conds, patterns, c as usize, path, out);
        path.pop();
    }
}
