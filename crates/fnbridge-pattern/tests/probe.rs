//! `Probe` and `Matcher::matches_probed_into`: the captured values are serde_json's view of the
//! same text, the depth is the text's nesting, a repeated key on a read path is always reported,
//! a strict probe accepts exactly what serde_json reads into a `Value`, and probing never changes
//! which patterns match.

use std::collections::BTreeSet;

use fnbridge_pattern::{Capture, EventError, JsonKind, Matcher, Pattern, Probe};
use proptest::prelude::*;
use serde_json::{Value, json};

const PATHS: &[&[&str]] = &[
    &["a"],
    &["a", "b"],
    &["a", "b", "c"],
    &["c"],
    &["d.e"],
    &["x"],
];

fn probe() -> Probe {
    Probe::new(PATHS)
}

fn strict() -> Probe {
    Probe::new(PATHS).strict_json()
}

/// serde_json's value at `path` (object members only, as a JSON reader sees them).
fn serde_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(*k)?;
    }
    Some(cur)
}

fn kind_of(v: &Value) -> JsonKind {
    match v {
        Value::String(_) => JsonKind::String,
        Value::Number(_) => JsonKind::Number,
        Value::Bool(_) => JsonKind::Bool,
        Value::Null => JsonKind::Null,
        Value::Object(_) => JsonKind::Object,
        Value::Array(_) => JsonKind::Array,
    }
}

/// Whether every capture equals serde_json's view of `text`.
fn agrees(cap: &Capture, text: &[u8], v: &Value) -> bool {
    PATHS
        .iter()
        .enumerate()
        .all(|(slot, path)| match (cap.get(slot), serde_at(v, path)) {
            (None, None) => true,
            (Some(c), Some(want)) => {
                let parsed: Value = serde_json::from_slice(c.text(text)).unwrap();
                c.kind == kind_of(want)
                    && &parsed == want
                    && c.as_str(text).as_deref() == want.as_str()
            }
            _ => false,
        })
}

/// Nesting of the raw text (brackets outside strings), serde's depth rule: a flat object is 1.
fn raw_depth(text: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in text {
        if esc {
            esc = false;
        } else if in_str {
            match c {
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    d += 1;
                    max = max.max(d);
                }
                b'}' | b']' => d = d.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

fn scan(p: &Probe, text: &str) -> (Result<(), EventError>, Capture) {
    let mut cap = Capture::default();
    let r = p.scan(text.as_bytes(), &mut cap);
    (r, cap)
}

#[test]
fn captures_follow_object_members_exactly() {
    let text = r#"{ "a" : {"b": {"c": "deep"}, "z": 1}, "c": [1, {"x": 2}], "d.e": "dotted",
        "d": {"e": "not dotted"}, "x": null }"#;
    let (r, cap) = scan(&probe(), text);
    r.unwrap();
    let b = text.as_bytes();
    assert_eq!(cap.get(0).unwrap().kind, JsonKind::Object);
    assert_eq!(cap.get(1).unwrap().text(b), br#"{"c": "deep"}"#);
    assert_eq!(cap.get(2).unwrap().as_str(b).as_deref(), Some("deep"));
    assert_eq!(cap.get(3).unwrap().kind, JsonKind::Array);
    assert_eq!(cap.get(4).unwrap().as_str(b).as_deref(), Some("dotted"));
    assert_eq!(cap.get(5).unwrap().kind, JsonKind::Null);
    assert_eq!(cap.depth(), 3);
    assert!(!cap.repeated_keys());
    assert!(agrees(&cap, b, &serde_json::from_str(text).unwrap()));
}

/// Keys are looked up by length first: siblings of one length, of lengths past the 63 the
/// lookup tells apart, and keys that share a length and a head with a probed one.
#[test]
fn keys_of_every_length_are_found() {
    let long = |c: char, n: usize| c.to_string().repeat(n);
    let keys = [
        "ab".to_string(),
        "cd".to_string(),
        "abcdefgh1".to_string(),
        "abcdefgh2".to_string(),
        long('k', 63),
        long('k', 64),
        long('k', 100),
        String::new(),
    ];
    let paths: Vec<Vec<&str>> = keys.iter().map(|k| vec![k.as_str()]).collect();
    let paths: Vec<&[&str]> = paths.iter().map(Vec::as_slice).collect();
    let probe = Probe::new(&paths);
    let mut members: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{}:{i}", serde_json::to_string(k).unwrap()))
        .collect();
    // Near misses: same length and head, or a length the probe has under another key.
    for miss in ["ax", "abcdefgh3", &long('k', 65), &long('j', 64)] {
        members.push(format!("\"{miss}\":-1"));
    }
    let text = format!("{{{}}}", members.join(","));
    let (r, cap) = scan(&probe, &text);
    r.unwrap();
    for slot in 0..keys.len() {
        let c = cap.get(slot).unwrap_or_else(|| panic!("slot {slot}"));
        assert_eq!(c.text(text.as_bytes()), slot.to_string().as_bytes());
    }
}

#[test]
fn arrays_are_not_entered_and_dotted_keys_are_not_split() {
    let (r, cap) = scan(&probe(), r#"{"a": [{"b": 1}], "a.b": 2, "d": {"e": 3}}"#);
    r.unwrap();
    assert_eq!(cap.get(0).unwrap().kind, JsonKind::Array);
    assert!(cap.get(1).is_none());
    assert!(cap.get(4).is_none());
}

#[test]
fn escaped_keys_and_values_are_decoded() {
    let text = r#"{"\u0061": {"\u0062": "caf\u00e9 \ud83d\ude00"}}"#;
    let (r, cap) = scan(&probe(), text);
    r.unwrap();
    assert_eq!(
        cap.get(1).unwrap().as_str(text.as_bytes()).as_deref(),
        Some("café 😀")
    );
}

#[test]
fn repeated_keys_on_read_paths_are_reported() {
    for text in [
        r#"{"a": 1, "a": 2}"#,
        r#"{"a": {"b": 1, "b": 2}}"#,
        r#"{"\u0061": 1, "a": 2}"#,
        r#"{"d.e": 1, "d.e": 2}"#,
    ] {
        let (r, cap) = scan(&probe(), text);
        r.unwrap();
        assert!(cap.repeated_keys(), "{text}");
        // The capture holds the last value, as serde_json does.
        assert!(agrees(
            &cap,
            text.as_bytes(),
            &serde_json::from_str(text).unwrap()
        ));
    }
    // Repeats nobody reads do not count; nor do the same keys in different objects.
    for text in [
        r#"{"q": 1, "q": 2, "a": {"z": 1, "z": 2}}"#,
        r#"{"a": {"b": 1}, "c": {"b": 2}, "x": [{"a": 1}, {"a": 2}]}"#,
    ] {
        let (r, cap) = scan(&probe(), text);
        r.unwrap();
        assert!(!cap.repeated_keys(), "{text}");
    }
    // A key a pattern names counts as read too.
    let m = Matcher::new();
    m.insert(1, &Pattern::parse(r#"{"q": {"r": ["1"]}}"#).unwrap());
    let mut cap = Capture::default();
    let mut out = Vec::new();
    m.matches_probed_into(
        br#"{"q": {"r": "1", "r": "2"}}"#,
        &probe(),
        &mut cap,
        &mut out,
    )
    .unwrap();
    assert!(cap.repeated_keys());
    assert_eq!(out, vec![1]);
}

#[test]
fn depth_is_reported_even_for_a_non_object() {
    let (r, cap) = scan(&probe(), "[[[1]]]");
    assert_eq!(r, Err(EventError::NotAnObject));
    assert_eq!(cap.depth(), 3);
    let (r, cap) = scan(&probe(), r#"{"q": [[{"r": [1]}]]}"#);
    r.unwrap();
    assert_eq!(cap.depth(), 5);
}

#[test]
fn strict_probes_refuse_what_serde_json_refuses() {
    for (text, serde_ok) in [
        (r#"{"s": "\ud800"}"#, false),
        (r#"{"s": "\udc00"}"#, false),
        (r#"{"s": "\ud800\u0041"}"#, false),
        (r#"{"s": "\ud800\ud800\udc00"}"#, false),
        (r#"{"\ud800": 1}"#, false),
        (r#"{"s": "\ud83d\ude00\ud83d\ude00"}"#, true),
        (r#"{"n": 1e400}"#, false),
        (r#"{"n": -1e400}"#, false),
        (r#"{"n": [1.8e308]}"#, false),
        (r#"{"n": 1e308}"#, true),
        (r#"{"n": 1e-400}"#, true),
        (r#"{"n": 123456789012345678901234567890}"#, true),
    ] {
        assert_eq!(
            serde_json::from_str::<Value>(text).is_ok(),
            serde_ok,
            "{text}"
        );
        let (r, _) = scan(&strict(), text);
        assert_eq!(r.is_ok(), serde_ok, "{text}: {r:?}");
        // Without strictness the walk accepts them, as Matcher::matches does.
        assert!(scan(&probe(), text).0.is_ok(), "{text}");
        assert!(Matcher::new().matches(text.as_bytes()).is_ok(), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Random texts: unusual whitespace, escapes, repeated and dotted keys, serde-refused leaves.

#[derive(Debug, Clone)]
enum J {
    /// Raw JSON text of a leaf.
    Leaf(&'static str),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

const KEYS: &[&str] = &["a", "b", "c", "d", "e", "d.e", "x", "q", "é"];
const LEAVES: &[&str] = &[
    r#""foo""#,
    r#""""#,
    r#""a.b""#,
    r#""caf\u00e9""#,
    r#""\ud83d\ude00""#,
    r#""\ud800""#,
    r#""tab\tquote\"""#,
    "0",
    "-1",
    "1.5",
    "1e2",
    "1E400",
    "2e-400",
    "12345678901234567890123",
    "true",
    "false",
    "null",
];

fn tree() -> impl Strategy<Value = J> {
    let leaf = prop::sample::select(LEAVES).prop_map(J::Leaf);
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

fn top() -> impl Strategy<Value = J> {
    prop::collection::vec((prop::sample::select(KEYS), tree()), 0..7).prop_map(J::Obj)
}

/// Renders `j`, choosing whitespace and key escapes from `style` bits.
fn render(j: &J, style: &mut u64, out: &mut String) {
    fn bit(style: &mut u64) -> bool {
        *style = style.rotate_left(7) ^ 0x9E37_79B9;
        *style & 3 == 0
    }
    let ws = |b: bool, out: &mut String| {
        if b {
            out.push_str(" \n\t");
        }
    };
    match j {
        J::Leaf(t) => out.push_str(t),
        J::Arr(xs) => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(bit(style), out);
                render(x, style, out);
            }
            out.push(']');
        }
        J::Obj(ms) => {
            out.push('{');
            for (i, (k, v)) in ms.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let (sp, esc) = (bit(style), bit(style));
                ws(sp, out);
                out.push('"');
                for c in k.chars() {
                    if esc {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        out.push(c);
                    }
                }
                out.push('"');
                ws(sp, out);
                out.push(':');
                render(v, style, out);
            }
            ws(bit(style), out);
            out.push('}');
        }
    }
}

fn patterns() -> Vec<Pattern> {
    [
        json!({"a": {"b": ["foo"]}}),
        json!({"a": [{"exists": true}], "c": [{"prefix": "f"}]}),
        json!({"d.e": [1.5, "foo"]}),
        json!({"d": {"e": [{"anything-but": "foo"}]}}),
        json!({"x": [null, true]}),
        json!({"q": [{"numeric": [">", 0]}]}),
        json!({"é": [{"exists": false}]}),
    ]
    .iter()
    .map(|p| Pattern::parse(&p.to_string()).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn captures_are_serde_json_s_view(j in top(), style in any::<u64>(), cuts in
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2))
    {
        let mut text = String::new();
        render(&j, &mut style.clone(), &mut text);
        let mut bytes = text.into_bytes();
        for (at, b) in cuts {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let m = Matcher::new();
        m.insert_many(patterns().into_iter().enumerate().map(|(i, p)| (i as u64, p)));
        let plain = m.matches(&bytes);
        let serde: Result<Value, _> = serde_json::from_slice(&bytes);
        for (p, is_strict) in [(probe(), false), (strict(), true)] {
            let mut cap = Capture::default();
            let mut out = vec![99];
            let r = m.matches_probed_into(&bytes, &p, &mut cap, &mut out);
            // Probing never changes the answer, except the strict refusals, which are exactly
            // serde_json's.
            match (&r, &plain) {
                (Ok(()), Ok(ids)) => prop_assert_eq!(&out, ids),
                // A strict refusal may come first.
                (Err(e), Err(f)) => prop_assert!(is_strict || e == f, "{:?} {:?}", e, f),
                (Err(_), Ok(_)) => prop_assert!(is_strict && serde.is_err()),
                (Ok(()), Err(e)) => prop_assert!(false, "probed accepted what matches refused: {}", e),
            }
            let Ok(()) = r else { continue };
            prop_assert_eq!(cap.depth(), raw_depth(&bytes));
            if let Ok(v) = &serde {
                // A capture differs from the reader's view only where a key repeats.
                prop_assert!(agrees(&cap, &bytes, v) || cap.repeated_keys(),
                    "text {}", String::from_utf8_lossy(&bytes));
            }
        }
        // A strict probe accepts exactly the objects serde_json reads.
        let mut cap = Capture::default();
        let strict_ok = strict().scan(&bytes, &mut cap).is_ok();
        prop_assert_eq!(strict_ok, serde.as_ref().is_ok_and(Value::is_object),
            "text {}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn repeats_on_read_paths_are_always_reported(j in top(), style in any::<u64>()) {
        let mut text = String::new();
        render(&j, &mut style.clone(), &mut text);
        let mut cap = Capture::default();
        if probe().scan(text.as_bytes(), &mut cap).is_err() {
            return Ok(());
        }
        prop_assert_eq!(cap.repeated_keys(), repeats(&j, Some(0)), "text {}", text);
    }
}

/// Whether an object reached through probe paths (node `n` of the PATHS trie below) repeats a
/// key that continues a probe path.
fn repeats(j: &J, n: Option<usize>) -> bool {
    // The probe trie of PATHS: node 0 root; a, a.b, a.b.c, c, d.e, x.
    let kids = |n: usize| -> &'static [(&'static str, usize)] {
        match n {
            0 => &[("a", 1), ("c", 3), ("d.e", 4), ("x", 5)],
            1 => &[("b", 2)],
            2 => &[("c", 6)],
            _ => &[],
        }
    };
    let (J::Obj(ms), Some(n)) = (j, n) else {
        return false;
    };
    let mut seen = BTreeSet::new();
    let mut rep = false;
    for (k, v) in ms {
        let child = kids(n).iter().find(|(c, _)| c == k).map(|&(_, c)| c);
        if child.is_some() && !seen.insert(*k) {
            rep = true;
        }
        rep |= repeats(v, child);
    }
    rep
}
