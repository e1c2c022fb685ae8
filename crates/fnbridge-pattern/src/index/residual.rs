//! Residual groups: a small subtree of the condition trie (at most [`GROUP_MAX`] branches)
//! flattened into one contiguous block of code, evaluated branch by branch.
//!
//! Below a certain size a trie costs more than it saves: every node, field index and map is a
//! separate allocation, so a cold event pays a cache miss per level. A group holds each branch's
//! remaining conditions inline (operands in one byte arena, the pattern id in the entry), so
//! reaching a group costs about one miss and evaluating it is sequential reads of memory the
//! prefetcher already streams in.

use super::flat::{FVal, Flat, Kind};
use super::strmap::same_bytes;
use crate::pattern::{Condition, Literal, Op};
use crate::wildcard::glob;

/// Largest subtree (in branches) turned into a group by default.
pub(crate) const GROUP_MAX: usize = 32;

const EXACT_STR: u32 = 0;
const EXACT_NUM: u32 = 1;
const TRUE: u32 = 2;
const FALSE: u32 = 3;
const NULL: u32 = 4;
const PREFIX: u32 = 5;
const SUFFIX: u32 = 6;
const EQ_IC: u32 = 7;
const PREFIX_IC: u32 = 8;
const SUFFIX_IC: u32 = 9;
const EXISTS: u32 = 10;
const ABSENT: u32 = 11;
/// `[WILDCARD, segments, (n, operand)...]`.
const WILDCARD: u32 = 13;
/// `[NUMERIC, flags, lo (2 words), hi (2 words)]`, flags bit 0: lower bound open, bit 1: upper.
const NUMERIC: u32 = 14;
/// `[CIDR, 0, lo (4 words), hi (4 words)]`.
const CIDR: u32 = 15;
/// Any other operator (`anything-but`), by index into `Residual::complex`.
const COMPLEX: u32 = 12;

/// One branch of a group: its pattern and the conditions still to check.
pub(crate) struct Entry<'a> {
    pub slot: u32,
    pub id: u64,
    pub conds: Vec<(u32, &'a Condition)>,
}

/// The code of all groups of a segment, operands inline so a group is one contiguous run.
///
/// Group layout: `[conditions, entries, words]` (`words`: the group's length), the offset of
/// each distinct condition (from the group start), the entries `[slot, id_lo, id_hi, n, condition index...]`, then the conditions, each
/// `[field, words]` followed by `words` words of operators. An operator is `[kind, n,
/// operand...]` with `n` operand bytes packed into `ceil(n / 4)` words; the wildcard, numeric
/// and cidr kinds have the layouts given at their constants; `COMPLEX` carries an index into
/// `complex`.
#[derive(Default)]
pub(crate) struct Residual {
    code: Vec<u32>,
    complex: Vec<Op>,
}

/// Asks for every cache line of a group at once. A cold group is a run of lines read in order;
/// requested together their misses overlap instead of arriving one after another.
#[inline(always)]
fn prefetch(words: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // Beyond 2 KiB the hardware prefetcher has long caught on.
        let bytes = (words.len() * 4).min(2048);
        let p = words.as_ptr() as *const i8;
        let mut off = 64;
        while off < bytes {
            // SAFETY: a prefetch is a hint that never faults; the address is within `words`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = words;
}

/// The bytes packed in `words` (in native byte order, as `push_operand` wrote them).
#[inline(always)]
fn operand(words: &[u32], n: usize) -> &[u8] {
    // SAFETY: `u32` has no padding and every bit pattern is a valid `u8` sequence; `u8` has
    // alignment 1; the length stays within `words` (n <= 4 * words.len(), checked by slicing).
    let bytes = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 4) };
    &bytes[..n]
}

impl Residual {
    fn push_operand(&mut self, kind: u32, b: &[u8]) {
        self.code.push(kind);
        self.push_bytes(b);
    }

    /// `[n, operand...]`.
    fn push_bytes(&mut self, b: &[u8]) {
        self.code.push(b.len() as u32);
        for chunk in b.chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            // Native byte order: `operand` reads the words back in place.
            self.code.push(u32::from_ne_bytes(w));
        }
    }

    fn push_op(&mut self, op: &Op) {
        match op {
            Op::Exact(Literal::Str(s)) => self.push_operand(EXACT_STR, s.as_bytes()),
            Op::Exact(Literal::Num(c)) => self.push_operand(EXACT_NUM, c),
            Op::Exact(Literal::Bool(true)) => self.push_operand(TRUE, b""),
            Op::Exact(Literal::Bool(false)) => self.push_operand(FALSE, b""),
            Op::Exact(Literal::Null) => self.push_operand(NULL, b""),
            Op::Prefix(s) => self.push_operand(PREFIX, s.as_bytes()),
            Op::Suffix(s) => self.push_operand(SUFFIX, s.as_bytes()),
            Op::EqualsIc(s) => self.push_operand(EQ_IC, s.as_bytes()),
            Op::PrefixIc(s) => self.push_operand(PREFIX_IC, s.as_bytes()),
            Op::SuffixIc(s) => self.push_operand(SUFFIX_IC, s.as_bytes()),
            Op::Exists(true) => self.push_operand(EXISTS, b""),
            Op::Exists(false) => self.push_operand(ABSENT, b""),
            Op::Wildcard(w) => {
                self.code
                    .extend_from_slice(&[WILDCARD, w.segs.len() as u32]);
                for seg in &w.segs {
                    self.push_bytes(seg);
                }
            }
            Op::Numeric(r) => {
                let flags = r.lo_open as u32 | (r.hi_open as u32) << 1;
                let (lo, hi) = (r.lo.0.to_bits(), r.hi.0.to_bits());
                self.code.extend_from_slice(&[
                    NUMERIC,
                    flags,
                    lo as u32,
                    (lo >> 32) as u32,
                    hi as u32,
                    (hi >> 32) as u32,
                ]);
            }
            Op::Cidr(lo, hi) => {
                self.code.extend_from_slice(&[CIDR, 0]);
                for x in [*lo, *hi] {
                    self.code.extend_from_slice(&[
                        x as u32,
                        (x >> 32) as u32,
                        (x >> 64) as u32,
                        (x >> 96) as u32,
                    ]);
                }
            }
            other => {
                self.complex.push(other.clone());
                self.code
                    .extend_from_slice(&[COMPLEX, (self.complex.len() - 1) as u32]);
            }
        }
    }

    /// Appends a group; returns its offset in the code.
    pub fn add_group(&mut self, entries: &[Entry<'_>]) -> u32 {
        // Distinct conditions of the group, each compiled once (conditions are interned per
        // segment, so equal conditions are the same object).
        let mut table: Vec<(u32, &Condition)> = Vec::new();
        let mut lists: Vec<Vec<u32>> = Vec::with_capacity(entries.len());
        for e in entries {
            let mut list = Vec::with_capacity(e.conds.len());
            for &(field, c) in &e.conds {
                let i = match table.iter().position(|(_, t)| std::ptr::eq(*t, c)) {
                    Some(i) => i,
                    None => {
                        table.push((field, c));
                        table.len() - 1
                    }
                };
                list.push(i as u32);
            }
            lists.push(list);
        }
        let at = self.code.len();
        self.code
            .extend_from_slice(&[table.len() as u32, entries.len() as u32, 0]);
        let offsets_at = self.code.len();
        self.code.resize(offsets_at + table.len(), 0);
        for (e, list) in entries.iter().zip(&lists) {
            self.code.extend_from_slice(&[
                e.slot,
                e.id as u32,
                (e.id >> 32) as u32,
                list.len() as u32,
            ]);
            self.code.extend_from_slice(list);
        }
        for (i, (field, c)) in table.iter().enumerate() {
            self.code[offsets_at + i] = (self.code.len() - at) as u32;
            let head = self.code.len();
            self.code.extend_from_slice(&[*field, 0]);
            for op in &c.ops {
                self.push_op(op);
            }
            self.code[head + 1] = (self.code.len() - head - 2) as u32;
        }
        self.code[at + 2] = (self.code.len() - at) as u32;
        at as u32
    }

    /// Evaluates the group at `at`, calling `emit(slot, id)` for each satisfied branch. Each
    /// distinct condition is evaluated at most once (memoized for the first 64).
    #[inline]
    pub fn eval(&self, at: u32, flat: &Flat, input: &[u8], mut emit: impl FnMut(u32, u64)) {
        let code = &self.code;
        let base = at as usize;
        let (nconds, nentries, len) = (
            code[base] as usize,
            code[base + 1] as usize,
            code[base + 2] as usize,
        );
        prefetch(&code[base..base + len]);
        let offsets = &code[base + 3..base + 3 + nconds];
        let (mut known, mut truth) = (0u64, 0u64);
        let mut cond = |i: usize| -> bool {
            if i < 64 && known >> i & 1 == 1 {
                return truth >> i & 1 == 1;
            }
            let p = base + offsets[i] as usize;
            let (field, words) = (code[p], code[p + 1] as usize);
            let r = self.holds(&code[p + 2..p + 2 + words], flat.values(field), flat, input);
            if i < 64 {
                known |= 1 << i;
                truth |= (r as u64) << i;
            }
            r
        };
        let mut p = base + 3 + nconds;
        for _ in 0..nentries {
            let (slot, id) = (code[p], code[p + 1] as u64 | (code[p + 2] as u64) << 32);
            let n = code[p + 3] as usize;
            let list = &code[p + 4..p + 4 + n];
            p += 4 + n;
            if list.iter().all(|&i| cond(i as usize)) {
                emit(slot, id);
            }
        }
    }

    /// Whether any of the operators in `ops` holds for a field with values `vals`.
    #[inline]
    fn holds(&self, mut ops: &[u32], vals: &[FVal], flat: &Flat, input: &[u8]) -> bool {
        while let [kind, n, rest @ ..] = ops {
            let (kind, n) = (*kind, *n as usize);
            let hit = match kind {
                EXISTS => {
                    ops = rest;
                    !vals.is_empty()
                }
                ABSENT => {
                    ops = rest;
                    vals.is_empty()
                }
                WILDCARD => {
                    // n segments, each [len, words...]; at least two (one `*`).
                    const _: () = assert!(crate::limits::MAX_WILDCARD_STARS < 8);
                    let mut segs = [&[][..]; 8];
                    let mut r = rest;
                    for seg in segs.iter_mut().take(n) {
                        let len = r[0] as usize;
                        let words = len.div_ceil(4);
                        *seg = operand(&r[1..1 + words], len);
                        r = &r[1 + words..];
                    }
                    ops = r;
                    let (first, last) = (segs[0], segs[n - 1]);
                    vals.iter().any(|v| {
                        v.kind == Kind::Str
                            && glob(
                                first,
                                segs[1..n - 1].iter().copied(),
                                last,
                                flat.bytes(input, v.text),
                            )
                    })
                }
                NUMERIC => {
                    let word =
                        |i: usize| f64::from_bits(rest[i] as u64 | (rest[i + 1] as u64) << 32);
                    let (lo, hi) = (word(0), word(2));
                    ops = &rest[4..];
                    vals.iter().any(|v| {
                        v.kind == Kind::Num && {
                            let x = v.num;
                            (if n & 1 != 0 { x > lo } else { x >= lo })
                                && (if n & 2 != 0 { x < hi } else { x <= hi })
                        }
                    })
                }
                CIDR => {
                    let word = |i: usize| {
                        rest[i] as u128
                            | (rest[i + 1] as u128) << 32
                            | (rest[i + 2] as u128) << 64
                            | (rest[i + 3] as u128) << 96
                    };
                    let (lo, hi) = (word(0), word(4));
                    ops = &rest[8..];
                    vals.iter()
                        .any(|v| v.ip.is_some_and(|ip| lo <= ip && ip <= hi))
                }
                COMPLEX => {
                    ops = rest;
                    match &self.complex[n] {
                        Op::AnythingBut(ab) => {
                            vals.iter().any(|v| !ab.excludes(&flat.view(input, v)))
                        }
                        o => vals.iter().any(|v| o.test_value(&flat.view(input, v))),
                    }
                }
                _ => {
                    let words = n.div_ceil(4);
                    let arg = operand(&rest[..words], n);
                    ops = &rest[words..];
                    vals.iter().any(|v| value_op(kind, arg, v, flat, input))
                }
            };
            if hit {
                return true;
            }
        }
        false
    }
}

#[inline]
fn eq(x: &[u8], y: &[u8]) -> bool {
    x.len() == y.len() && same_bytes(x, y)
}

/// The inline operators against one value.
#[inline]
fn value_op(kind: u32, operand: &[u8], v: &FVal, flat: &Flat, input: &[u8]) -> bool {
    match (kind, v.kind) {
        (EXACT_STR, Kind::Str) => eq(flat.bytes(input, v.text), operand),
        (EXACT_NUM, Kind::Num) => match v.canon {
            Some(c) => eq(flat.bytes(input, c), operand),
            None => Op::Exact(Literal::Num(operand.into())).test_value(&flat.view(input, v)),
        },
        (TRUE, Kind::True) | (FALSE, Kind::False) | (NULL, Kind::Null) => true,
        (PREFIX, Kind::Str) => {
            let s = flat.bytes(input, v.text);
            s.len() >= operand.len() && same_bytes(&s[..operand.len()], operand)
        }
        (SUFFIX, Kind::Str) => {
            let s = flat.bytes(input, v.text);
            s.len() >= operand.len() && same_bytes(&s[s.len() - operand.len()..], operand)
        }
        (EQ_IC | PREFIX_IC | SUFFIX_IC, Kind::Str) => {
            let mut tmp = Vec::new();
            let f: &[u8] = match v.fold {
                Some(l) => flat.bytes(input, l),
                None => {
                    crate::value::fold_into(flat.bytes(input, v.text), &mut tmp);
                    &tmp
                }
            };
            match kind {
                EQ_IC => eq(f, operand),
                PREFIX_IC => f.starts_with(operand),
                _ => f.ends_with(operand),
            }
        }
        _ => false,
    }
}
