//! An immutable map from byte strings to edge lists: a short list compared word-first for a few
//! keys, an open-addressing table beyond.
//!
//! The table probes a dense array of hashes (eight bytes a slot, so it tends to stay in cache) and
//! only on a hash match reads the slot: one cache line holding the edges and, for keys up to
//! [`INLINE`] bytes (most values: names, domains, buckets), the key itself. A lookup of a value no
//! pattern names costs no miss beyond the hash array; a hit costs one, where a general-purpose
//! map of boxed keys costs three (control bytes, bucket, key).

use std::hash::Hasher;

use super::EdgeRange;
use super::hash::FastHasher;

/// Up to this many keys are compared linearly.
const SMALL: usize = 4;
/// Longest key stored inside its slot.
const INLINE: usize = 40;

#[inline(always)]
fn read64(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().unwrap())
}

#[inline(always)]
fn read32(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[i..i + 4].try_into().unwrap())
}

/// Equality of two slices known to have the same length, word by word (no libc call for the
/// short keys this index is made of).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if read64(a, i) != read64(b, i) {
                return false;
            }
            i += 8;
        }
        read64(a, n - 8) == read64(b, n - 8)
    } else if n >= 4 {
        read32(a, 0) == read32(b, 0) && read32(a, n - 4) == read32(b, n - 4)
    } else {
        a == b
    }
}

/// The first (up to) eight bytes of `s` as a little-endian word, zero padded. Short keys are
/// assembled from overlapping reads: copying them into a buffer and reading it back stalls
/// store-to-load forwarding, which made this the hottest line of the event walk.
#[inline(always)]
pub(crate) fn head_word(s: &[u8]) -> u64 {
    let n = s.len();
    if n >= 8 {
        read64(s, 0)
    } else if n >= 4 {
        read32(s, 0) as u64 | (read32(s, n - 4) as u64) << ((n - 4) * 8)
    } else if n > 0 {
        s[0] as u64 | (s[n / 2] as u64) << (n / 2 * 8) | (s[n - 1] as u64) << ((n - 1) * 8)
    } else {
        0
    }
}

#[inline(always)]
fn hash(s: &[u8]) -> u64 {
    let mut h = FastHasher::default();
    h.write(s);
    h.finish()
}

/// A stored key: length and head word for cheap rejection, bytes for confirmation.
pub(crate) struct Key {
    len: u32,
    head: u64,
    bytes: Box<[u8]>,
}

impl Key {
    pub fn new(bytes: Box<[u8]>) -> Key {
        Key {
            len: bytes.len() as u32,
            head: head_word(&bytes),
            bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether `key` is this key followed by `.` and more.
    #[inline(always)]
    pub fn continues(&self, key: &[u8]) -> bool {
        let n = self.len as usize;
        key.len() > n && key[n] == b'.' && same_bytes(&key[..n], &self.bytes)
    }

    /// `head` must be `head_word(probe)`.
    #[inline(always)]
    pub fn is(&self, probe: &[u8], head: u64) -> bool {
        self.len as usize == probe.len()
            && self.head == head
            && (probe.len() <= 8 || same_bytes(&self.bytes, probe))
    }
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    edges: EdgeRange,
    len: u32,
    /// Offset in `Table::keys` of a key longer than [`INLINE`].
    off: u32,
    inline: [u8; INLINE],
}

const EMPTY: Slot = Slot {
    edges: EdgeRange::EMPTY,
    len: 0,
    off: 0,
    inline: [0; INLINE],
};

pub(crate) struct Table {
    /// The hash of each slot's key with the low bit set; 0 marks an empty slot.
    hashes: Box<[u64]>,
    slots: Box<[Slot]>,
    mask: usize,
    keys: Box<[u8]>,
}

pub(crate) enum StrMap {
    Small(Vec<(Key, EdgeRange)>),
    Large(Table),
}

impl Default for StrMap {
    fn default() -> Self {
        StrMap::Small(Vec::new())
    }
}

impl StrMap {
    /// Builds from distinct keys.
    pub fn build(entries: Vec<(Box<[u8]>, EdgeRange)>) -> StrMap {
        if entries.len() <= SMALL {
            return StrMap::Small(entries.into_iter().map(|(k, r)| (Key::new(k), r)).collect());
        }
        // Load factor at most one half keeps probe sequences short.
        let cap = (entries.len() * 2).next_power_of_two();
        let mut hashes = vec![0u64; cap].into_boxed_slice();
        let mut slots = vec![EMPTY; cap].into_boxed_slice();
        let mut keys = Vec::new();
        for (k, edges) in entries {
            let h = hash(&k) | 1;
            let mut i = (h >> 1) as usize & (cap - 1);
            while hashes[i] != 0 {
                i = (i + 1) & (cap - 1);
            }
            let mut slot = Slot {
                edges,
                len: k.len() as u32,
                off: 0,
                inline: [0; INLINE],
            };
            if k.len() <= INLINE {
                slot.inline[..k.len()].copy_from_slice(&k);
            } else {
                slot.off = keys.len() as u32;
                keys.extend_from_slice(&k);
            }
            hashes[i] = h;
            slots[i] = slot;
        }
        StrMap::Large(Table {
            hashes,
            slots,
            mask: cap - 1,
            keys: keys.into_boxed_slice(),
        })
    }

    pub fn is_empty(&self) -> bool {
        match self {
            StrMap::Small(v) => v.is_empty(),
            StrMap::Large(t) => t.hashes.is_empty(),
        }
    }

    /// The edges stored under `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&EdgeRange> {
        match self {
            StrMap::Small(v) => {
                let head = head_word(key);
                v.iter().find(|(k, _)| k.is(key, head)).map(|(_, r)| r)
            }
            StrMap::Large(t) => {
                let h = hash(key) | 1;
                let mut i = (h >> 1) as usize & t.mask;
                loop {
                    let stored_hash = t.hashes[i];
                    if stored_hash == 0 {
                        return None;
                    }
                    if stored_hash == h {
                        let s = &t.slots[i];
                        if s.len as usize == key.len() {
                            let stored = if key.len() <= INLINE {
                                &s.inline[..key.len()]
                            } else {
                                &t.keys[s.off as usize..s.off as usize + key.len()]
                            };
                            if same_bytes(stored, key) {
                                return Some(&s.edges);
                            }
                        }
                    }
                    i = (i + 1) & t.mask;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_maps() {
        for n in [0usize, 1, 3, 4, 5, 100, 1000] {
            let keys: Vec<String> = (0..n)
                .map(|i| format!("key-{i}-{}", "x".repeat(i % 53)))
                .collect();
            let m = StrMap::build(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| {
                        (
                            k.as_bytes().into(),
                            EdgeRange {
                                start: i as u32,
                                len: 1,
                            },
                        )
                    })
                    .collect(),
            );
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(
                    m.get(k.as_bytes()),
                    Some(&EdgeRange {
                        start: i as u32,
                        len: 1
                    })
                );
            }
            assert_eq!(m.get(b"key-"), None);
            assert_eq!(m.get(b""), None);
            assert_eq!(m.get(b"key-1-xx"), None);
        }
        let m = StrMap::build(vec![(b"".to_vec().into(), EdgeRange { start: 9, len: 1 })]);
        assert_eq!(m.get(b""), Some(&EdgeRange { start: 9, len: 1 }));
    }

    #[test]
    fn head_words() {
        for n in 0..12usize {
            let s: Vec<u8> = (1..=n as u8).map(|x| x.wrapping_mul(37)).collect();
            let mut buf = [0u8; 8];
            let k = n.min(8);
            buf[..k].copy_from_slice(&s[..k]);
            assert_eq!(head_word(&s), u64::from_le_bytes(buf), "n {n}");
        }
    }

    #[test]
    fn word_equality() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!same_bytes(&a, &b), "n {n} i {i}");
            }
        }
    }
}
