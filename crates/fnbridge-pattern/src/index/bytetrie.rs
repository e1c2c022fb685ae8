//! A compressed (radix) byte trie answering "which stored keys are prefixes of this value",
//! walked forwards for `prefix` operators and backwards (over reversed keys) for `suffix`.
//!
//! A lookup costs O(value length) whatever the number of keys, which is what keeps thousands of
//! prefix or suffix conditions on one field from costing thousands of comparisons.

use super::EdgeRange;

struct TNode {
    /// Bytes on the edge into this node (empty for the root).
    label: (u32, u32),
    /// Edges of keys ending exactly here.
    edges: EdgeRange,
    /// Children as a range of `kids`, sorted by first label byte.
    kids: (u32, u32),
}

pub(crate) struct ByteTrie {
    nodes: Vec<TNode>,
    kids: Vec<(u8, u32)>,
    labels: Vec<u8>,
}

impl ByteTrie {
    /// Builds from keys (already reversed for suffix lookups) and their edge lists.
    pub fn build(mut keys: Vec<(Vec<u8>, EdgeRange)>) -> ByteTrie {
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        let mut t = ByteTrie {
            nodes: Vec::new(),
            kids: Vec::new(),
            labels: Vec::new(),
        };
        t.nodes.push(TNode {
            label: (0, 0),
            edges: EdgeRange::EMPTY,
            kids: (0, 0),
        });
        t.fill(0, &keys, 0);
        t
    }

    /// Fills node `n`, which holds the keys `keys` (all sharing their first `depth` bytes).
    fn fill(&mut self, n: usize, keys: &[(Vec<u8>, EdgeRange)], depth: usize) {
        let mut rest = keys;
        if let Some(first) = rest.first()
            && first.0.len() == depth
        {
            self.nodes[n].edges = first.1;
            rest = &rest[1..];
        }
        // Group the remaining keys by their byte at `depth`.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            let c = rest[i].0[depth];
            let mut j = i + 1;
            while j < rest.len() && rest[j].0[depth] == c {
                j += 1;
            }
            groups.push((i, j));
            i = j;
        }
        let mut children = Vec::with_capacity(groups.len());
        for &(a, b) in &groups {
            let group = &rest[a..b];
            // Longest common prefix of the group beyond `depth` (sorted: compare first and last).
            let (f, l) = (&group[0].0, &group[group.len() - 1].0);
            let mut end = depth + 1;
            while end < f.len() && end < l.len() && f[end] == l[end] {
                end += 1;
            }
            let label_start = self.labels.len() as u32;
            self.labels.extend_from_slice(&f[depth..end]);
            let id = self.nodes.len();
            self.nodes.push(TNode {
                label: (label_start, (end - depth) as u32),
                edges: EdgeRange::EMPTY,
                kids: (0, 0),
            });
            children.push((f[depth], id as u32));
            self.fill(id, group, end);
        }
        let start = self.kids.len() as u32;
        self.kids.extend_from_slice(&children);
        self.nodes[n].kids = (start, children.len() as u32);
    }

    #[inline]
    fn kid(&self, n: &TNode, c: u8) -> Option<&TNode> {
        let kids = &self.kids[n.kids.0 as usize..(n.kids.0 + n.kids.1) as usize];
        let pos = if kids.len() <= 8 {
            kids.iter().position(|k| k.0 == c)?
        } else {
            kids.binary_search_by_key(&c, |k| k.0).ok()?
        };
        Some(&self.nodes[kids[pos].1 as usize])
    }

    #[inline]
    fn label(&self, n: &TNode) -> &[u8] {
        &self.labels[n.label.0 as usize..(n.label.0 + n.label.1) as usize]
    }

    /// Calls `f` with the edges of every key that is a prefix of `v`.
    #[inline]
    pub fn prefixes_of(&self, v: &[u8], mut f: impl FnMut(EdgeRange)) {
        let mut n = &self.nodes[0];
        let mut i = 0;
        loop {
            if n.edges.len > 0 {
                f(n.edges);
            }
            let Some(&c) = v.get(i) else { return };
            let Some(k) = self.kid(n, c) else { return };
            let label = self.label(k);
            if v.len() - i < label.len() || v[i..i + label.len()] != *label {
                return;
            }
            i += label.len();
            n = k;
        }
    }

    /// Calls `f` with the edges of every stored (reversed) key whose reverse is a suffix of `v`.
    #[inline]
    pub fn suffixes_of(&self, v: &[u8], mut f: impl FnMut(EdgeRange)) {
        let mut n = &self.nodes[0];
        let mut i = 0; // bytes consumed from the end
        loop {
            if n.edges.len > 0 {
                f(n.edges);
            }
            if i >= v.len() {
                return;
            }
            let Some(k) = self.kid(n, v[v.len() - 1 - i]) else {
                return;
            };
            let label = self.label(k);
            if v.len() - i < label.len() {
                return;
            }
            let tail = &v[..v.len() - i];
            if !label.iter().zip(tail.iter().rev()).all(|(a, b)| a == b) {
                return;
            }
            i += label.len();
            n = k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn er(i: u32) -> EdgeRange {
        EdgeRange { start: i, len: 1 }
    }

    #[test]
    fn prefixes_and_suffixes() {
        let keys = ["", "a", "ab", "abc", "abd", "b", "xyz"];
        let t = ByteTrie::build(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (k.as_bytes().to_vec(), er(i as u32)))
                .collect(),
        );
        let mut got = Vec::new();
        t.prefixes_of(b"abcz", |r| got.push(r.start));
        assert_eq!(got, vec![0, 1, 2, 3]);
        got.clear();
        t.prefixes_of(b"xy", |r| got.push(r.start));
        assert_eq!(got, vec![0]);

        let rev = |s: &str| s.bytes().rev().collect::<Vec<u8>>();
        let sk = [".png", ".jpg", "g", "png"];
        let t = ByteTrie::build(
            sk.iter()
                .enumerate()
                .map(|(i, k)| (rev(k), er(i as u32)))
                .collect(),
        );
        got.clear();
        t.suffixes_of(b"image.png", |r| got.push(r.start));
        got.sort();
        assert_eq!(got, vec![0, 2, 3]);
        got.clear();
        t.suffixes_of(b"g", |r| got.push(r.start));
        assert_eq!(got, vec![2]);
    }
}
