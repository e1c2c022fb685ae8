//! "Object key starts with P and ends with S" as one field's list of pattern values.
//!
//! EventBridge lists are OR, so the AND of a prefix and a suffix is written as the wildcard
//! `P*S` (literal parts escaped), which requires the key to be at least `|P| + |S|` long, plus
//! the keys shorter than that which start with P and end with S where the two overlap (for
//! `logs/` and `/` that is the key `logs/` itself). Those overlap keys are few and fully
//! determined, so they are listed as exact values: the list is exactly equivalent to the AND.

use serde_json::{Value, json};

use crate::error::ConfigError;
use crate::wildcard::escape;

/// Longest prefix or suffix accepted in a key filter, in bytes.
pub const MAX_KEY_AFFIX_BYTES: usize = 1024;

/// Most overlap keys listed; more needs a prefix and suffix that overlap with themselves in
/// many ways (`aaaa...`), which no real filter does.
const MAX_OVERLAP_KEYS: usize = 64;

/// Raw keys shorter than `|p| + |s|` that start with `p` and end with `s`.
fn overlap_keys(p: &str, s: &str) -> Vec<String> {
    let (pb, sb) = (p.as_bytes(), s.as_bytes());
    let mut out = Vec::new();
    for len in pb.len().max(sb.len())..pb.len() + sb.len() {
        // The key is p followed by the last len - |p| bytes of s; p's tail and s's head overlap.
        let overlap = pb.len() + sb.len() - len;
        if pb[pb.len() - overlap..] == sb[..overlap] {
            let mut k = pb.to_vec();
            k.extend_from_slice(&sb[overlap..]);
            if let Ok(k) = String::from_utf8(k) {
                out.push(k);
            }
        }
    }
    out
}

/// Checks one affix's size.
pub(crate) fn check_affix(path: &str, v: &str) -> Result<(), ConfigError> {
    if v.len() > MAX_KEY_AFFIX_BYTES {
        return Err(ConfigError::new(
            path,
            format!("longer than {MAX_KEY_AFFIX_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Pattern values for a key filter, or `None` when it filters nothing.
///
/// Event keys are `base + enc(raw key)`. With `anchor_suffix` a suffix-only filter is still a
/// wildcard `base*S`, so that the suffix can never reach into `base` (needed when `base` is not
/// matched elsewhere as the key's own start, as for COS keys).
pub(crate) fn key_values(
    path: &str,
    base: &str,
    prefix: &str,
    suffix: &str,
    enc: &dyn Fn(&str) -> String,
    anchor_suffix: bool,
) -> Result<Option<Vec<Value>>, ConfigError> {
    let head = format!("{base}{}", enc(prefix));
    if suffix.is_empty() {
        return Ok(if prefix.is_empty() {
            None
        } else {
            Some(vec![json!({ "prefix": head })])
        });
    }
    let tail = enc(suffix);
    if prefix.is_empty() && !anchor_suffix {
        return Ok(Some(vec![json!({ "suffix": tail })]));
    }
    let mut values = vec![json!({ "wildcard": format!("{}*{}", escape(&head), escape(&tail)) })];
    if !prefix.is_empty() {
        let keys = overlap_keys(prefix, suffix);
        if keys.len() > MAX_OVERLAP_KEYS {
            return Err(ConfigError::new(
                path,
                format!(
                    "prefix and suffix overlap in more than {MAX_OVERLAP_KEYS} ways; shorten one of them"
                ),
            ));
        }
        values.extend(
            keys.iter()
                .map(|k| Value::String(format!("{base}{}", enc(k)))),
        );
    }
    Ok(Some(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps() {
        assert_eq!(overlap_keys("logs/", "/"), vec!["logs/"]);
        assert_eq!(overlap_keys("a.zip", ".zip"), vec!["a.zip"]);
        assert!(overlap_keys("source/", ".zip").is_empty());
        assert_eq!(overlap_keys("ab", "ba"), vec!["aba"]);
        assert_eq!(overlap_keys("aa", "aa"), vec!["aa", "aaa"]);
        assert!(overlap_keys("é", "\u{301}").is_empty());
    }

    #[test]
    fn values_are_equivalent_to_and() {
        let id = |s: &str| s.to_string();
        let vals = key_values("k", "", "ab", "ba", &id, false)
            .unwrap()
            .unwrap();
        let pat = crate::Pattern::parse(&json!({ "key": vals }).to_string()).unwrap();
        for key in [
            "ab", "aba", "abba", "abxba", "ba", "abab", "bab", "a", "abb",
        ] {
            let want = key.starts_with("ab") && key.ends_with("ba");
            let ev = json!({ "key": key }).to_string();
            assert_eq!(pat.matches(ev.as_bytes()).unwrap(), want, "{key}");
        }
    }
}
