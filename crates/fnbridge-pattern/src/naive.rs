//! The naive evaluator: flatten the whole event into `path -> values`, then test each branch of
//! one pattern directly. It shares no structure with the index, which is what makes it a useful
//! reference in the differential tests and the benchmark.

use std::collections::HashMap;

use crate::consistent::{self, Tree};
use crate::error::EventError;
use crate::flatten::{self, RawLeaf, Sink};
use crate::lex;
use crate::pattern::{Branch, Leaf, View};

#[derive(Debug, Clone)]
enum Owned {
    Str(Vec<u8>),
    Num(Vec<u8>),
    Bool(bool),
    Null,
}

/// An event fully flattened to its dot-joined leaf paths. Parse once, then evaluate any number of
/// patterns with [`crate::Pattern::matches_event`].
#[derive(Debug, Clone, Default)]
pub struct FullEvent {
    fields: HashMap<String, Vec<Owned>>,
    /// The event's tree, when an array on it has two or more object or array elements: then a
    /// branch that could tell is decided with array consistency (see `crate::consistent`).
    tree: Option<Tree>,
}

struct FullSink {
    path: Vec<u8>,
    fields: HashMap<String, Vec<Owned>>,
    multi: bool,
}

impl Sink for FullSink {
    /// Length of the path prefix in `path`.
    type Node = usize;

    fn root(&mut self) -> usize {
        0
    }

    fn child(&mut self, node: usize, segment: &[u8]) -> Option<usize> {
        self.path.truncate(node);
        if node > 0 {
            self.path.push(b'.');
        }
        self.path.extend_from_slice(segment);
        Some(self.path.len())
    }

    fn multi_container(&mut self) {
        self.multi = true;
    }

    fn leaf(&mut self, node: usize, input: &[u8], leaf: RawLeaf) {
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
        let path = String::from_utf8_lossy(&self.path[..node]).into_owned();
        self.fields.entry(path).or_default().push(value);
    }
}

impl FullEvent {
    /// Parses and flattens an event (a JSON object).
    pub fn parse(event_json: &[u8]) -> Result<FullEvent, EventError> {
        let mut sink = FullSink {
            path: Vec::new(),
            fields: HashMap::new(),
            multi: false,
        };
        let mut key_buf = Vec::new();
        flatten::walk(event_json, &mut sink, &mut key_buf)?;
        let tree = if sink.multi {
            Tree::parse(event_json)
        } else {
            None
        };
        Ok(FullEvent {
            fields: sink.fields,
            tree,
        })
    }

    /// `None` when `branch` holds; else the path of its first condition (in path order) that
    /// fails on its own, or, when each holds alone but not together, the first path named
    /// inside an array of objects (array consistency failed).
    pub(crate) fn first_failure<'b>(&self, branch: &'b Branch) -> Option<&'b str> {
        if self.satisfies(branch) {
            return None;
        }
        for c in &branch.conds {
            let alone = Branch {
                conds: vec![c.clone()],
            };
            if !self.satisfies(&alone) {
                return Some(&c.path);
            }
        }
        branch.conds.first().map(|c| &*c.path)
    }

    pub(crate) fn satisfies(&self, branch: &Branch) -> bool {
        if let Some(tree) = &self.tree
            && consistent::sensitive(branch)
        {
            return tree.satisfies(branch);
        }
        branch.conds.iter().all(|c| {
            let owned: &[Owned] = self.fields.get(&*c.path).map(Vec::as_slice).unwrap_or(&[]);
            let views: Vec<View<'_>> = owned
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
        })
    }
}
