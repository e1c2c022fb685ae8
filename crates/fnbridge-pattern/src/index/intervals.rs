//! Stabbing queries over intervals ("which ranges contain x"), for `numeric` and `cidr`.
//!
//! Intervals are sorted by lower bound with a max-of-upper-bound tree over them: a query visits
//! only subtrees that can still contain `x`, O((k + 1) log n) for k answers.

/// A bound type: ordered, with a least value for padding.
pub(crate) trait Key: Copy + PartialOrd {
    const LEAST: Self;
}

impl Key for f64 {
    const LEAST: f64 = f64::NEG_INFINITY;
}

impl Key for u128 {
    const LEAST: u128 = 0;
}

#[derive(Clone, Copy)]
pub(crate) struct Interval<T> {
    pub lo: T,
    pub lo_open: bool,
    pub hi: T,
    pub hi_open: bool,
    pub payload: u32,
}

impl<T: Key> Interval<T> {
    #[inline]
    fn contains(&self, x: T) -> bool {
        (if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        }) && (if self.hi_open {
            x < self.hi
        } else {
            x <= self.hi
        })
    }
}

pub(crate) struct IntervalSet<T> {
    items: Vec<Interval<T>>,
    /// Implicit binary tree of max upper bounds; leaves at `width..width + items.len()`.
    max_hi: Vec<T>,
    width: usize,
}

const LINEAR: usize = 8;

impl<T: Key> IntervalSet<T> {
    pub fn build(mut items: Vec<Interval<T>>) -> Self {
        items.sort_by(|a, b| a.lo.partial_cmp(&b.lo).unwrap_or(std::cmp::Ordering::Equal));
        if items.len() <= LINEAR {
            return IntervalSet {
                items,
                max_hi: Vec::new(),
                width: 0,
            };
        }
        let width = items.len().next_power_of_two();
        let mut max_hi = vec![T::LEAST; 2 * width];
        for (i, it) in items.iter().enumerate() {
            max_hi[width + i] = it.hi;
        }
        for i in (1..width).rev() {
            let (a, b) = (max_hi[2 * i], max_hi[2 * i + 1]);
            max_hi[i] = if a >= b { a } else { b };
        }
        IntervalSet {
            items,
            max_hi,
            width,
        }
    }

    /// Calls `f` with the payload of every interval containing `x`.
    #[inline]
    pub fn stab(&self, x: T, mut f: impl FnMut(u32)) {
        if self.width == 0 {
            for it in &self.items {
                if it.contains(x) {
                    f(it.payload);
                }
            }
            return;
        }
        // Only intervals starting at or below x can contain it.
        let end = self.items.partition_point(|it| it.lo <= x);
        if end > 0 {
            self.visit(1, 0, self.width, end, x, &mut f);
        }
    }

    fn visit(
        &self,
        node: usize,
        from: usize,
        to: usize,
        end: usize,
        x: T,
        f: &mut impl FnMut(u32),
    ) {
        if from >= end || self.max_hi[node] < x {
            return;
        }
        if to - from == 1 {
            let it = &self.items[from];
            if it.contains(x) {
                f(it.payload);
            }
            return;
        }
        let mid = (from + to) / 2;
        self.visit(2 * node, from, mid, end, x, f);
        self.visit(2 * node + 1, mid, to, end, x, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stabbing_matches_linear_scan() {
        let mut items = Vec::new();
        for i in 0..100u32 {
            let lo = (i * 7 % 50) as f64;
            items.push(Interval {
                lo,
                lo_open: i % 2 == 0,
                hi: lo + (i % 13) as f64,
                hi_open: i % 3 == 0,
                payload: i,
            });
        }
        items.push(Interval {
            lo: f64::NEG_INFINITY,
            lo_open: false,
            hi: 3.0,
            hi_open: true,
            payload: 1000,
        });
        items.push(Interval {
            lo: 40.0,
            lo_open: false,
            hi: f64::INFINITY,
            hi_open: false,
            payload: 1001,
        });
        let set = IntervalSet::build(items.clone());
        for x10 in -20..700 {
            let x = x10 as f64 / 10.0;
            let mut got = Vec::new();
            set.stab(x, |p| got.push(p));
            got.sort();
            let mut want: Vec<u32> = items
                .iter()
                .filter(|it| it.contains(x))
                .map(|it| it.payload)
                .collect();
            want.sort();
            assert_eq!(got, want, "x = {x}");
        }
    }
}
