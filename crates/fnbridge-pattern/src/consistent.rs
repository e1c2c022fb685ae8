//! Array consistency, as event-ruler (the engine EventBridge is built on) defines it: for an array
//! of objects, every field a branch names inside the array must come from the same element, and
//! `{"exists":false}` inside such an array is decided element by element.
//!
//! Flattening an event to `path -> values` (what the index and the naive evaluator match on)
//! mixes elements, and can only differ from the consistent answer when an array on a named path
//! has two or more object (or array) elements: the walk reports that ([`Sink::multi_container`]),
//! and only then is a branch that could tell the difference ([`sensitive`]) decided here, over a
//! tree of the event that keeps elements apart. So the common event (no such array) costs nothing
//! more, and the index and the naive evaluator call the same code for the rest, which keeps them
//! equal by construction.
//!
//! The rule, over the tree: at an array, the conditions whose paths continue below its elements
//! must all hold within one element (one of them is chosen); conditions on the array's own path
//! see the scalar elements of the array, flattened, as before. Below an object, different keys
//! are independent, as event-ruler has them.

use std::collections::HashMap;

use crate::flatten::{self, RawLeaf, Sink};
use crate::lex;
use crate::pattern::{Branch, Condition, Leaf, Op, Pattern, View};

/// Whether flattening can give `branch` a different answer than array consistency: two of its
/// conditions share a first path segment (so may sit in one array of objects), or an
/// `exists:false` condition's path goes below a first segment (so may be inside one).
pub(crate) fn sensitive(branch: &Branch) -> bool {
    adds(branch)
        || branch.conds.iter().enumerate().any(|(i, a)| {
            let head = first(&a.path);
            branch.conds[i + 1..].iter().any(|b| first(&b.path) == head)
        })
}

/// Whether array consistency can make `branch` match where flattening does not: only an
/// `exists:false` decided per element can (every other operator sees fewer values, so holds
/// less often).
pub(crate) fn adds(branch: &Branch) -> bool {
    branch
        .conds
        .iter()
        .any(|c| c.path.contains('.') && c.ops.contains(&Op::Exists(false)))
}

/// Whether any branch of `pattern` is [`sensitive`].
pub(crate) fn pattern_sensitive(pattern: &Pattern) -> bool {
    pattern.inner.branches.iter().any(sensitive)
}

/// Whether any branch of `pattern` [`adds`] matches.
pub(crate) fn pattern_adds(pattern: &Pattern) -> bool {
    pattern.inner.branches.iter().any(adds)
}

fn first(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

#[derive(Debug, Clone)]
enum Owned {
    Str(Vec<u8>),
    Num(Vec<u8>),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Default)]
struct TNode {
    /// Scalar values at this node's path (for an element node: the element, if scalar).
    leaves: Vec<Owned>,
    /// One node per element of the arrays found at this path, in order.
    elems: Vec<u32>,
    /// Whether an object was found at this path (its members are in `Tree::kids`).
    object: bool,
}

/// An event as a tree whose array elements stay apart. Built only for events the walk flagged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    nodes: Vec<TNode>,
    /// Children by (parent, key segment): a map, so that a wide object is not quadratic.
    kids: HashMap<(u32, Box<[u8]>), u32>,
}

struct TreeSink {
    tree: Tree,
}

impl TreeSink {
    fn node(&mut self) -> u32 {
        self.tree.nodes.push(TNode::default());
        (self.tree.nodes.len() - 1) as u32
    }
}

impl Sink for TreeSink {
    type Node = u32;
    const ELEMENTS: bool = true;

    fn root(&mut self) -> u32 {
        self.node()
    }

    fn child(&mut self, node: u32, segment: &[u8]) -> Option<u32> {
        self.tree.nodes[node as usize].object = true;
        let key = (node, Box::<[u8]>::from(segment));
        if let Some(&n) = self.tree.kids.get(&key) {
            return Some(n);
        }
        let n = self.node();
        self.tree.kids.insert(key, n);
        Some(n)
    }

    fn array_element(&mut self, node: u32, _index: usize) -> Option<u32> {
        let n = self.node();
        self.tree.nodes[node as usize].elems.push(n);
        Some(n)
    }

    fn leaf(&mut self, node: u32, input: &[u8], leaf: RawLeaf) {
        let value = match leaf {
            RawLeaf::Str(span) => {
                let mut s = Vec::new();
                if span.escaped() {
                    lex::decode_escaped(input, span, &mut s);
                } else {
                    s.extend_from_slice(&input[span.start..span.end]);
                }
                Owned::Str(s)
            }
            RawLeaf::Num(a, b) => Owned::Num(input[a..b].to_vec()),
            RawLeaf::Bool(b) => Owned::Bool(b),
            RawLeaf::Null => Owned::Null,
        };
        self.tree.nodes[node as usize].leaves.push(value);
    }
}

/// A condition with its path split into segments, the ones still to descend first.
type Cond<'a> = (&'a [&'a [u8]], &'a Condition);

impl Tree {
    /// Builds the tree of a (valid) event; `None` when the text does not walk, which a caller
    /// that has already walked it never sees.
    pub fn parse(event_json: &[u8]) -> Option<Tree> {
        let mut sink = TreeSink {
            tree: Tree::default(),
        };
        let mut key_buf = Vec::new();
        flatten::walk(event_json, &mut sink, &mut key_buf).ok()?;
        Some(sink.tree)
    }

    /// Whether `branch` holds with array consistency.
    pub fn satisfies(&self, branch: &Branch) -> bool {
        let segs: Vec<Vec<&[u8]>> = branch
            .conds
            .iter()
            .map(|c| c.path.as_bytes().split(|&b| b == b'.').collect())
            .collect();
        let conds: Vec<Cond<'_>> = segs
            .iter()
            .zip(&branch.conds)
            .map(|(s, c)| (s.as_slice(), &**c))
            .collect();
        !self.nodes.is_empty() && self.sat(Some(0), &conds)
    }

    /// Whether any branch of `pattern` holds with array consistency.
    pub fn matches(&self, pattern: &Pattern) -> bool {
        pattern.inner.branches.iter().any(|b| self.satisfies(b))
    }

    fn sat(&self, node: Option<u32>, conds: &[Cond<'_>]) -> bool {
        let Some(n) = node else {
            return conds.iter().all(|(_, c)| test(c, &[]));
        };
        // Conditions on this very path see its scalars, array elements flattened.
        let mut here = Vec::new();
        let mut flat_done = false;
        for (segs, c) in conds {
            if segs.is_empty() {
                if !flat_done {
                    self.flat_values(n, &mut here);
                    flat_done = true;
                }
                if !test(c, &here) {
                    return false;
                }
            }
        }
        let rest: Vec<Cond<'_>> = conds
            .iter()
            .filter(|(s, _)| !s.is_empty())
            .copied()
            .collect();
        if rest.is_empty() {
            return true;
        }
        let nd = &self.nodes[n as usize];
        if nd.elems.is_empty() {
            return self.object_view(n, &rest);
        }
        if nd.object {
            // Members beside an array at one path (a dotted key such as `"c.d.f"` next to an
            // array `"c":{"d":[..]}`): there is no element those members belong to, so the
            // conditions below are decided as flattening decides them.
            return rest.iter().all(|(segs, c)| {
                let mut vals = Vec::new();
                self.flat_below(n, segs, &mut vals);
                test(c, &vals)
            });
        }
        // The element the conditions below this array are decided in: one for all of them.
        // Scalar elements have no members, so only objects and arrays are candidates; with
        // none, every path below is absent.
        let mut containers = nd
            .elems
            .iter()
            .copied()
            .filter(|&e| {
                let en = &self.nodes[e as usize];
                en.object || !en.elems.is_empty()
            })
            .peekable();
        if containers.peek().is_none() {
            return self.sat(None, &rest);
        }
        containers.any(|e| self.sat(Some(e), &rest))
    }

    /// Every value at `segs` below `n`, arrays flattened on the way: what flattening sees.
    fn flat_below<'a>(&'a self, n: u32, segs: &[&[u8]], out: &mut Vec<&'a Owned>) {
        let Some((head, tail)) = segs.split_first() else {
            self.flat_values(n, out);
            return;
        };
        if let Some(&child) = self.kids.get(&(n, Box::<[u8]>::from(*head))) {
            self.flat_below(child, tail, out);
        }
        for &e in &self.nodes[n as usize].elems {
            self.flat_below(e, segs, out);
        }
    }

    /// The conditions below `n` taken as an object's members: keys are independent.
    fn object_view(&self, n: u32, rest: &[Cond<'_>]) -> bool {
        let mut done = vec![false; rest.len()];
        for i in 0..rest.len() {
            if done[i] {
                continue;
            }
            let head = rest[i].0[0];
            let mut group = Vec::new();
            for j in i..rest.len() {
                if !done[j] && rest[j].0[0] == head {
                    done[j] = true;
                    group.push((&rest[j].0[1..], rest[j].1));
                }
            }
            let child = self.kids.get(&(n, Box::<[u8]>::from(head))).copied();
            if !self.sat(child, &group) {
                return false;
            }
        }
        true
    }

    fn flat_values<'a>(&'a self, n: u32, out: &mut Vec<&'a Owned>) {
        let nd = &self.nodes[n as usize];
        out.extend(nd.leaves.iter());
        for &e in &nd.elems {
            self.flat_values(e, out);
        }
    }
}

fn test(c: &Condition, vals: &[&Owned]) -> bool {
    let views: Vec<View<'_>> = vals
        .iter()
        .map(|o| {
            View::plain(match o {
                Owned::Str(s) => Leaf::Str(s),
                Owned::Num(t) => Leaf::Num(t),
                Owned::Bool(b) => Leaf::Bool(*b),
                Owned::Null => Leaf::Null,
            })
        })
        .collect();
    c.ops.iter().any(|op| op.test_field(&views))
}

/// The patterns whose index answer array consistency may change, as the index holds them.
#[derive(Default)]
pub(crate) struct Sensitive {
    /// Every [`pattern_sensitive`] pattern by id: a candidate among them is decided again.
    pub check: HashMap<u64, Pattern>,
    /// Those that [`pattern_adds`]: decided even when the index did not name them.
    pub adds: Vec<u64>,
}

impl Sensitive {
    pub fn is_empty(&self) -> bool {
        self.check.is_empty()
    }

    /// Corrects the index's sorted answer `out` for `event_json` (an event whose walk reported
    /// [`Sink::multi_container`]).
    pub fn recheck(&self, event_json: &[u8], out: &mut Vec<u64>) {
        if !out.iter().any(|id| self.check.contains_key(id)) && self.adds.is_empty() {
            return;
        }
        let Some(tree) = Tree::parse(event_json) else {
            return;
        };
        out.retain(|id| self.check.get(id).is_none_or(|p| tree.matches(p)));
        let added: Vec<u64> = self
            .adds
            .iter()
            .filter(|id| out.binary_search(id).is_err())
            .filter(|id| self.check.get(id).is_some_and(|p| tree.matches(p)))
            .copied()
            .collect();
        if !added.is_empty() {
            out.extend(added);
            out.sort_unstable();
        }
    }
}
