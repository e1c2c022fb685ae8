//! The field registry: every path some live pattern names, its field id, and which comparison
//! forms its values need; and the trie over `.`-separated path segments the flattener walks so
//! that fields no pattern names are skipped.

use std::collections::HashMap;
use std::sync::Arc;

use super::hash::FastMap;
use super::strmap::{Key, head_word};
use crate::pattern::{AnythingBut, Literal, Op, Pattern};

/// Values at this path need their case-folded form.
pub(crate) const NEED_FOLD: u8 = 1;
/// ... their canonical decimal form (numbers).
pub(crate) const NEED_CANON: u8 = 2;
/// ... their double value (numbers).
pub(crate) const NEED_F64: u8 = 4;
/// ... their IP address value (strings).
pub(crate) const NEED_IP: u8 = 8;

pub(crate) const NO_FIELD: u32 = u32::MAX;

pub(crate) fn op_flags(op: &Op) -> u8 {
    match op {
        Op::EqualsIc(_) | Op::PrefixIc(_) | Op::SuffixIc(_) => NEED_FOLD,
        Op::AnythingBut(ab) => match **ab {
            AnythingBut::IgnoreCase(_) => NEED_FOLD,
            AnythingBut::Numbers(_) => NEED_CANON,
            _ => 0,
        },
        Op::Exact(Literal::Num(_)) => NEED_CANON,
        Op::Numeric(_) => NEED_F64,
        Op::Cidr(..) => NEED_IP,
        _ => 0,
    }
}

struct PathInfo {
    field: u32,
    refs: usize,
    flags: u8,
}

/// Writer-side bookkeeping of the paths live patterns name.
#[derive(Default)]
pub(crate) struct Registry {
    paths: HashMap<Arc<str>, PathInfo>,
    /// Field ids are never reused, so a dead pattern still sitting in a segment can never see a
    /// later path's values under its old field id.
    next_field: u32,
    dirty: bool,
}

impl Registry {
    pub fn add(&mut self, p: &Pattern) {
        for b in &p.inner.branches {
            for c in &b.conds {
                let flags = c.ops.iter().map(op_flags).fold(0, |a, f| a | f);
                match self.paths.get_mut(&*c.path) {
                    Some(info) => {
                        info.refs += 1;
                        if info.flags | flags != info.flags {
                            info.flags |= flags;
                            self.dirty = true;
                        }
                    }
                    None => {
                        let field = self.next_field;
                        self.next_field += 1;
                        self.paths.insert(
                            c.path.clone(),
                            PathInfo {
                                field,
                                refs: 1,
                                flags,
                            },
                        );
                        self.dirty = true;
                    }
                }
            }
        }
    }

    pub fn remove(&mut self, p: &Pattern) {
        for b in &p.inner.branches {
            for c in &b.conds {
                if let Some(info) = self.paths.get_mut(&*c.path) {
                    info.refs -= 1;
                    if info.refs == 0 {
                        self.paths.remove(&*c.path);
                        self.dirty = true;
                    }
                }
            }
        }
    }

    /// The field id of a path a live pattern names.
    pub fn field(&self, path: &str) -> u32 {
        self.paths.get(path).map_or(NO_FIELD, |i| i.field)
    }

    /// A new trie when paths or flags changed since the last call.
    pub fn take_trie(&mut self) -> Option<PathTrie> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let mut t = PathTrie {
            nodes: vec![PNode::building()],
            named: self.paths.len() as u32,
        };
        for (path, info) in &self.paths {
            let mut n = 0usize;
            for seg in path.as_bytes().split(|&c| c == b'.') {
                n = t.child_or_insert(n, seg);
            }
            t.nodes[n].field = info.field;
            t.nodes[n].flags = info.flags;
        }
        let mut slot = 0;
        for node in &mut t.nodes {
            if node.field != NO_FIELD {
                node.slot = slot;
                slot += 1;
            }
        }
        for node in &mut t.nodes {
            node.kids.seal();
        }
        Some(t)
    }
}

/// Children of a path node, hashed once there are many.
enum Kids {
    Small(Vec<(Key, u32)>),
    Large(FastMap<Box<[u8]>, u32>),
}

impl Default for Kids {
    fn default() -> Self {
        Kids::Small(Vec::new())
    }
}

impl Kids {
    /// Nodes are built hashed (so building is linear) and shrunk to a list when small.
    fn seal(&mut self) {
        if let Kids::Large(m) = self
            && m.len() <= 8
        {
            let v = std::mem::take(m)
                .into_iter()
                .map(|(k, c)| (Key::new(k), c))
                .collect();
            *self = Kids::Small(v);
        }
    }
}

pub(crate) struct PNode {
    pub field: u32,
    /// Dense number of a node with a field (0..[`PathTrie::named`]), for the per-event record of
    /// which named paths have had a value.
    pub slot: u32,
    pub flags: u8,
    /// Bit `c` set when some child segment starts with byte `c` (all set when a child segment is
    /// empty): most keys of an event are rejected by this one test.
    first: [u64; 4],
    kids: Kids,
}

impl Default for PNode {
    fn default() -> Self {
        PNode {
            field: NO_FIELD,
            slot: 0,
            flags: 0,
            first: [0; 4],
            kids: Kids::default(),
        }
    }
}

impl PNode {
    fn building() -> Self {
        PNode {
            field: NO_FIELD,
            slot: 0,
            flags: 0,
            first: [0; 4],
            kids: Kids::Large(FastMap::default()),
        }
    }
}

/// Immutable trie over path segments, shared by all readers of a snapshot.
pub(crate) struct PathTrie {
    pub nodes: Vec<PNode>,
    /// Number of nodes with a field: the paths patterns name.
    pub named: u32,
}

impl PathTrie {
    pub fn empty() -> PathTrie {
        PathTrie {
            nodes: vec![PNode::default()],
            named: 0,
        }
    }

    fn child_or_insert(&mut self, n: usize, seg: &[u8]) -> usize {
        if let Some(c) = self.child(n as u32, seg) {
            return c as usize;
        }
        let id = self.nodes.len();
        self.nodes.push(PNode::building());
        let first = &mut self.nodes[n].first;
        match seg.first() {
            Some(&c) => first[c as usize / 64] |= 1 << (c % 64),
            None => *first = [u64::MAX; 4],
        }
        match &mut self.nodes[n].kids {
            Kids::Small(v) => v.push((Key::new(seg.into()), id as u32)),
            Kids::Large(m) => {
                m.insert(seg.into(), id as u32);
            }
        }
        id
    }

    /// The node for a whole event key below `n`, following `.` inside the key into deeper
    /// segments. Path segments never contain `.`, so a key that is itself a child segment needs
    /// no scan for dots, and a dotted key can only continue through the child equal to its first
    /// segment: the common case (a key no pattern names) costs a few word compares.
    #[inline(always)]
    pub fn descend(&self, mut n: u32, mut key: &[u8]) -> Option<u32> {
        loop {
            let node = &self.nodes[n as usize];
            // A key, or its first segment, can only match a child starting with the same byte.
            if let Some(&c) = key.first()
                && node.first[c as usize / 64] >> (c % 64) & 1 == 0
            {
                return None;
            }
            let (next, rest) = match &node.kids {
                Kids::Small(v) => {
                    // One pass: the key is a child segment, or continues through one.
                    let head = head_word(key);
                    let mut hit = None;
                    for (k, c) in v {
                        if k.is(key, head) {
                            return Some(*c);
                        }
                        if k.continues(key) {
                            hit = Some((*c, &key[k.len() + 1..]));
                        }
                    }
                    hit?
                }
                Kids::Large(m) => {
                    if let Some(&c) = m.get(key) {
                        return Some(c);
                    }
                    let dot = key.iter().position(|&c| c == b'.')?;
                    (*m.get(&key[..dot])?, &key[dot + 1..])
                }
            };
            n = next;
            key = rest;
        }
    }

    #[inline(always)]
    pub fn child(&self, n: u32, seg: &[u8]) -> Option<u32> {
        match &self.nodes[n as usize].kids {
            Kids::Small(v) => {
                let head = head_word(seg);
                v.iter().find(|(k, _)| k.is(seg, head)).map(|(_, c)| *c)
            }
            Kids::Large(m) => m.get(seg).copied(),
        }
    }
}
