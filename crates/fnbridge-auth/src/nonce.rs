//! Replay protection: every `x-acs-signature-nonce` of an accepted signed request is remembered
//! for as long as a request carrying it could still pass the clock-skew check, and refused if
//! seen again. Memory is bounded: past `capacity` live nonces new signed requests are refused
//! (the server cannot vouch for them), never older nonces forgotten early.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// What `NonceCache::check` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use; now remembered.
    New,
    /// Used before within the window.
    Replayed,
    /// The cache holds `capacity` live nonces.
    Full,
}

/// Nonces are kept as 128-bit digests of (access key id, nonce), so an entry costs the same
/// however long the client's nonce is.
pub struct NonceCache {
    seen: HashSet<u128>,
    /// Insertion order; every entry lives `ttl` from insertion, so the oldest expires first.
    order: VecDeque<(Instant, u128)>,
    ttl: Duration,
    capacity: usize,
}

impl NonceCache {
    /// `ttl` must cover a request's whole acceptable life: twice the allowed clock skew (a
    /// request dated `skew` ahead is acceptable until `skew` past its date).
    pub fn new(ttl: Duration, capacity: usize) -> NonceCache {
        NonceCache {
            seen: HashSet::new(),
            order: VecDeque::new(),
            ttl,
            capacity,
        }
    }

    pub fn check(&mut self, digest: u128, now: Instant) -> Seen {
        while let Some(&(expires, d)) = self.order.front() {
            if expires > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&d);
        }
        if self.seen.contains(&digest) {
            return Seen::Replayed;
        }
        if self.seen.len() >= self.capacity {
            return Seen::Full;
        }
        self.seen.insert(digest);
        self.order.push_back((now + self.ttl, digest));
        Seen::New
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_within_its_window_and_forgotten_after_it() {
        let t0 = Instant::now();
        let mut c = NonceCache::new(Duration::from_secs(60), 2);
        assert_eq!(c.check(1, t0), Seen::New);
        assert_eq!(c.check(1, t0 + Duration::from_secs(59)), Seen::Replayed);
        assert_eq!(c.check(2, t0 + Duration::from_secs(1)), Seen::New);
        // Full: a third live nonce is refused, the first two are still remembered.
        assert_eq!(c.check(3, t0 + Duration::from_secs(2)), Seen::Full);
        assert_eq!(c.check(2, t0 + Duration::from_secs(2)), Seen::Replayed);
        // After the window the first is forgotten and there is room again.
        assert_eq!(c.check(3, t0 + Duration::from_secs(60)), Seen::New);
        assert_eq!(c.check(1, t0 + Duration::from_secs(61)), Seen::New);
        assert_eq!(c.len(), 2);
    }
}
