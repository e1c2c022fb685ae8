//! Wildcard values: parsing (`*`, with `\*` and `\\` escapes, `**` rejected) and matching.

use crate::limits::MAX_WILDCARD_STARS;

/// A parsed wildcard: the literal segments between the `*`s (`stars + 1` of them, possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Wildcard {
    pub segs: Vec<Box<[u8]>>,
}

/// Parses a wildcard value, returning the AWS-style reason on failure.
pub(crate) fn parse(value: &str) -> Result<Wildcard, String> {
    let b = value.as_bytes();
    let mut segs = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' => {
                if b.get(i + 1) == Some(&b'*') {
                    return Err(format!("Consecutive wildcard characters at pos {i}"));
                }
                segs.push(std::mem::take(&mut cur).into_boxed_slice());
                i += 1;
            }
            b'\\' => match b.get(i + 1) {
                Some(&c @ (b'*' | b'\\')) => {
                    cur.push(c);
                    i += 2;
                }
                _ => return Err(format!("Invalid escape character at pos {i}")),
            },
            c => {
                cur.push(c);
                i += 1;
            }
        }
    }
    segs.push(cur.into_boxed_slice());
    if segs.len() - 1 > MAX_WILDCARD_STARS {
        return Err(format!(
            "Rule is too complex - try using fewer wildcard characters (at most {MAX_WILDCARD_STARS} '*' per wildcard value)"
        ));
    }
    Ok(Wildcard { segs })
}

/// Escapes a literal so that it matches itself inside a wildcard value.
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if c == '*' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Wildcard {
    #[cfg(test)]
    pub(crate) fn stars(&self) -> usize {
        self.segs.len() - 1
    }

    /// True when `v` matches: the first segment is a prefix, the last a suffix (not overlapping),
    /// and the middle segments occur in order between them. Taking the leftmost occurrence of
    /// each middle segment is optimal for `*`-only globs, so this is linear-ish and never
    /// backtracks.
    pub(crate) fn matches(&self, v: &[u8]) -> bool {
        let n = self.segs.len();
        if n == 1 {
            return *v == *self.segs[0];
        }
        glob(
            &self.segs[0],
            self.segs[1..n - 1].iter().map(|s| &s[..]),
            &self.segs[n - 1],
            v,
        )
    }
}

/// Whether `v` is `first`, then the `mids` in order with anything between, then `last` (the
/// segments of a wildcard with at least one `*`).
#[inline]
pub(crate) fn glob<'a>(
    first: &[u8],
    mids: impl Iterator<Item = &'a [u8]>,
    last: &[u8],
    v: &[u8],
) -> bool {
    if v.len() < first.len() + last.len() || !v.starts_with(first) || !v.ends_with(last) {
        return false;
    }
    let mut pos = first.len();
    let end = v.len() - last.len();
    for mid in mids {
        match find(&v[pos..end], mid) {
            Some(at) => pos += at + mid.len(),
            None => return false,
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)
        {
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
            None => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        parse(p).unwrap().matches(v.as_bytes())
    }

    #[test]
    fn matching() {
        assert!(m("/Users/*/doc.txt", "/Users/ls_user/dir/dir/doc.txt"));
        assert!(!m(
            "/Users/*/doc.txt",
            "/Users/ls_user/dir/notmatchingdoc.txt"
        ));
        assert!(m(
            "arn:aws:events:us-east-1:*:event-bus/*",
            "arn:aws:events:us-east-1:123:event-bus/x"
        ));
        assert!(m("*/dir/*", "a/dir/b"));
        assert!(!m("*/dir/*", "dir/init/file"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("*", ""));
        assert!(m("a*a", "aa"));
        assert!(!m("ab*ba", "aba"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*b*c", "abbc"));
        assert!(!m("a*b*b*c", "abc"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"a\\*", r"a\xyz"));
    }

    #[test]
    fn parsing() {
        assert!(parse("a**b").unwrap_err().contains("Consecutive"));
        assert!(parse(r"a\b").unwrap_err().contains("Invalid escape"));
        assert!(parse("a\\").unwrap_err().contains("Invalid escape"));
        assert!(
            parse("*:*:*:*:*:event-bus/*")
                .unwrap_err()
                .contains("too complex")
        );
        assert_eq!(parse("*:*:*:*:*").unwrap().stars(), 5);
        assert_eq!(escape(r"a*b\c"), r"a\*b\\c");
        assert!(m(&escape(r"a*b\c"), r"a*b\c"));
    }
}
