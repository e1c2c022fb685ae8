//! A fast non-cryptographic hasher for the index's maps (keys are pattern values, not attacker
//! controlled map sizes: a bad distribution costs speed, never correctness).

use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Folded-multiply hasher over 8-byte words.
#[derive(Clone, Copy)]
pub(crate) struct FastHasher {
    h: u64,
}

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher { h: SEED }
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.h;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h = mix(h ^ u64::from_le_bytes(c.try_into().unwrap()), K);
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rem.len()].copy_from_slice(rem);
            h = mix(h ^ u64::from_le_bytes(buf) ^ ((rem.len() as u64) << 59), K);
        }
        self.h = h;
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.h = mix(self.h ^ i as u64, K);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.h = mix(self.h ^ i as u64, K);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.h = mix(self.h ^ i, K);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.h = mix(self.h ^ i as u64, K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        mix(self.h, SEED)
    }
}

pub(crate) type BuildFast = BuildHasherDefault<FastHasher>;
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildFast>;
