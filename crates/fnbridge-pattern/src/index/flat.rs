//! The index's view of one event: the leaf values of named fields only, each with the comparison
//! forms its field needs computed once, grouped by field id.

use super::paths::{NEED_CANON, NEED_F64, NEED_FOLD, NEED_IP, NO_FIELD, PathTrie};
use crate::flatten::{RawLeaf, Sink};
use crate::lex;
use crate::pattern::{Leaf, View};
use crate::value;

/// Where a byte string lives: in the event input or in [`Flat::buf`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Loc {
    start: u32,
    len: u32,
    in_buf: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Num,
    True,
    False,
    Null,
}

#[derive(Clone, Copy)]
pub(crate) struct FVal {
    pub field: u32,
    pub kind: Kind,
    /// String bytes, or number text.
    pub text: Loc,
    pub fold: Option<Loc>,
    pub canon: Option<Loc>,
    pub num: f64,
    pub ip: Option<u128>,
}

/// Reusable per-thread storage for one event's values.
#[derive(Default)]
pub(crate) struct Flat {
    vals: Vec<FVal>,
    buf: Vec<u8>,
    /// An array on a named path had two or more object or array elements: the index's answer
    /// for array-sensitive patterns is checked element by element (see `crate::consistent`).
    pub multi: bool,
}

impl Flat {
    pub fn clear(&mut self) {
        self.vals.clear();
        self.buf.clear();
        self.multi = false;
    }

    /// Groups values by field once the walk is done.
    pub fn finish(&mut self) {
        if self.vals.len() > 1 {
            self.vals.sort_by_key(|v| v.field);
        }
    }

    #[inline]
    pub fn values(&self, field: u32) -> &[FVal] {
        let v = &self.vals;
        if v.len() <= 8 {
            // Few values: a scan beats two binary searches.
            let Some(a) = v.iter().position(|x| x.field == field) else {
                return &[];
            };
            let b = v[a..]
                .iter()
                .position(|x| x.field != field)
                .map_or(v.len(), |n| a + n);
            return &v[a..b];
        }
        let a = v.partition_point(|x| x.field < field);
        let b = a + v[a..].partition_point(|x| x.field == field);
        &v[a..b]
    }

    #[inline]
    pub fn bytes<'a>(&'a self, input: &'a [u8], loc: Loc) -> &'a [u8] {
        let (s, e) = (loc.start as usize, (loc.start + loc.len) as usize);
        if loc.in_buf {
            &self.buf[s..e]
        } else {
            &input[s..e]
        }
    }

    /// The value as the operators' common view.
    #[inline]
    pub fn view<'a>(&'a self, input: &'a [u8], v: &FVal) -> View<'a> {
        let leaf = match v.kind {
            Kind::Str => Leaf::Str(self.bytes(input, v.text)),
            Kind::Num => Leaf::Num(self.bytes(input, v.text)),
            Kind::True => Leaf::Bool(true),
            Kind::False => Leaf::Bool(false),
            Kind::Null => Leaf::Null,
        };
        View {
            leaf,
            fold: v.fold.map(|l| self.bytes(input, l)),
            canon: v.canon.map(|l| self.bytes(input, l)),
        }
    }

    fn push_buf(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> Loc {
        let start = self.buf.len();
        f(&mut self.buf);
        Loc {
            start: start as u32,
            len: (self.buf.len() - start) as u32,
            in_buf: true,
        }
    }
}

/// The flattener's sink: follows the path trie and records leaves of named fields.
pub(crate) struct IndexSink<'t, 'f> {
    pub trie: &'t PathTrie,
    pub flat: &'f mut Flat,
    /// Named paths that have not had a value yet, and one bit per named path (by
    /// [`super::paths::PNode::slot`]) for those that have; all zero at the start of an event.
    pub unseen: u32,
    pub seen: &'f mut Vec<u64>,
}

impl<'t, 'f> IndexSink<'t, 'f> {
    pub fn new(trie: &'t PathTrie, flat: &'f mut Flat, seen: &'f mut Vec<u64>) -> Self {
        seen.clear();
        seen.resize((trie.named as usize).div_ceil(64), 0);
        IndexSink {
            trie,
            flat,
            unseen: trie.named,
            seen,
        }
    }
}

impl Sink for IndexSink<'_, '_> {
    type Node = u32;

    #[inline]
    fn root(&mut self) -> u32 {
        0
    }

    #[inline]
    fn child(&mut self, node: u32, segment: &[u8]) -> Option<u32> {
        self.trie.child(node, segment)
    }

    // Always inlined: called for every key of every object on a named path, and as a call it
    // spent as many instructions saving and restoring registers as rejecting the key.
    #[inline(always)]
    fn descend(&mut self, node: u32, key: &[u8]) -> Option<u32> {
        self.trie.descend(node, key)
    }

    #[inline(always)]
    fn done(&self) -> bool {
        self.unseen == 0
    }

    #[inline(always)]
    fn multi_container(&mut self) {
        self.flat.multi = true;
    }

    fn leaf(&mut self, node: u32, input: &[u8], leaf: RawLeaf) {
        let pn = &self.trie.nodes[node as usize];
        if pn.field == NO_FIELD {
            return; // an interior path with a leaf value: no pattern names it
        }
        let (word, bit) = (pn.slot as usize / 64, 1u64 << (pn.slot % 64));
        if self.seen[word] & bit == 0 {
            self.seen[word] |= bit;
            self.unseen -= 1;
        }
        let flags = pn.flags;
        let flat = &mut *self.flat;
        let mut v = FVal {
            field: pn.field,
            kind: Kind::Null,
            text: Loc::default(),
            fold: None,
            canon: None,
            num: 0.0,
            ip: None,
        };
        match leaf {
            RawLeaf::Str(span) => {
                v.kind = Kind::Str;
                v.text = if span.escaped() {
                    flat.push_buf(|b| lex::decode_escaped(input, span, b))
                } else {
                    Loc {
                        start: span.start as u32,
                        len: (span.end - span.start) as u32,
                        in_buf: false,
                    }
                };
                if flags & NEED_FOLD != 0 {
                    let loc = v.text;
                    v.fold = Some(if loc.in_buf {
                        let text = flat.bytes(input, loc).to_vec();
                        flat.push_buf(|b| value::fold_into(&text, b))
                    } else {
                        let text = &input[loc.start as usize..(loc.start + loc.len) as usize];
                        flat.push_buf(|b| value::fold_into(text, b))
                    });
                }
                if flags & NEED_IP != 0 {
                    v.ip = value::parse_ip(flat.bytes(input, v.text));
                }
            }
            RawLeaf::Num(a, b) => {
                v.kind = Kind::Num;
                v.text = Loc {
                    start: a as u32,
                    len: (b - a) as u32,
                    in_buf: false,
                };
                let text = &input[a..b];
                if flags & NEED_CANON != 0 {
                    v.canon = Some(flat.push_buf(|out| value::canon_number(text, out)));
                }
                if flags & NEED_F64 != 0 {
                    v.num = value::number_f64(text);
                }
            }
            RawLeaf::Bool(true) => v.kind = Kind::True,
            RawLeaf::Bool(false) => v.kind = Kind::False,
            RawLeaf::Null => v.kind = Kind::Null,
        }
        flat.vals.push(v);
    }
}
