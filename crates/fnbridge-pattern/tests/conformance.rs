//! Runs every case of the shared EventBridge conformance data through the naive evaluator and the
//! index, and cross-checks the index against naive evaluation on every (pattern, event) pair.

use std::path::PathBuf;

use fnbridge_pattern::{FullEvent, Matcher, Pattern};

struct Case {
    name: String,
    expect: String,
    pattern: String,
    event: String,
}

fn load() -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eventbridge-patterns/patterns.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("valid jsonl line");
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("field {k} in {l}"))
                    .to_string()
            };
            Case {
                name: s("name"),
                expect: s("expect"),
                pattern: s("pattern"),
                event: s("event"),
            }
        })
        .collect()
}

#[test]
fn every_case_through_naive_and_index() {
    let cases = load();
    assert_eq!(
        cases.len(),
        156,
        "the conformance file should hold 156 cases"
    );
    let mut failures = Vec::new();
    let mut valid = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let parsed = Pattern::parse(&c.pattern);
        match (c.expect.as_str(), parsed) {
            ("invalid", Err(_)) => {}
            ("invalid", Ok(_)) => {
                failures.push(format!("{}: expected invalid, parsed fine", c.name))
            }
            (_, Err(e)) => failures.push(format!("{}: rejected: {e}", c.name)),
            (expect, Ok(p)) => {
                let want = expect == "match";
                match p.matches(c.event.as_bytes()) {
                    Ok(got) if got == want => {}
                    Ok(got) => {
                        failures.push(format!("{}: naive said {got}, expected {want}", c.name))
                    }
                    Err(e) => failures.push(format!("{}: event rejected: {e}", c.name)),
                }
                for m in [Matcher::new(), Matcher::with_group_max(0)] {
                    m.insert(i as u64, &p);
                    match m.matches(c.event.as_bytes()) {
                        Ok(ids) if ids.contains(&(i as u64)) == want => {}
                        Ok(ids) => failures
                            .push(format!("{}: index said {ids:?}, expected {want}", c.name)),
                        Err(e) => failures.push(format!("{}: index rejected event: {e}", c.name)),
                    }
                    // Every case's event is valid JSON: the trusted path must agree exactly.
                    let (t, v) = (
                        m.matches_trusted(c.event.as_bytes()),
                        m.matches(c.event.as_bytes()),
                    );
                    if t != v {
                        failures.push(format!("{}: trusted said {t:?}, validating {v:?}", c.name));
                    }
                }
                valid.push((i as u64, p));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // All valid patterns in one index, built both ways, must answer every event exactly as naive
    // evaluation of each pattern does.
    let bulk = Matcher::new();
    bulk.insert_many(valid.iter().cloned());
    let bulk_trie_only = Matcher::with_group_max(0);
    bulk_trie_only.insert_many(valid.iter().cloned());
    let one_by_one = Matcher::new();
    for (id, p) in &valid {
        one_by_one.insert(*id, p);
    }
    assert!(
        one_by_one.segments() > 1,
        "one-by-one inserts should exercise several segments"
    );
    for c in &cases {
        let Ok(ev) = FullEvent::parse(c.event.as_bytes()) else {
            continue;
        };
        let want: Vec<u64> = valid
            .iter()
            .filter(|(_, p)| p.matches_event(&ev))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            bulk.matches(c.event.as_bytes()).unwrap(),
            want,
            "bulk index on event of {}",
            c.name
        );
        assert_eq!(
            bulk_trie_only.matches(c.event.as_bytes()).unwrap(),
            want,
            "trie-only index on event of {}",
            c.name
        );
        assert_eq!(
            one_by_one.matches(c.event.as_bytes()).unwrap(),
            want,
            "incremental index on event of {}",
            c.name
        );
        for m in [&bulk, &bulk_trie_only, &one_by_one] {
            assert_eq!(
                m.matches_trusted(c.event.as_bytes()).unwrap(),
                want,
                "trusted path on event of {}",
                c.name
            );
        }
    }
}

#[test]
fn invalid_cases_name_the_path() {
    for c in load().iter().filter(|c| c.expect == "invalid") {
        let e = Pattern::parse(&c.pattern).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("Event pattern is not valid. Reason: "),
            "{}: {msg}",
            c.name
        );
        if c.name != "content_wildcard_complex_EXC" {
            // Every conformance rejection is about one field.
            assert!(!e.path().is_empty(), "{}: no path in {msg}", c.name);
        }
        println!("{}: {msg}", c.name);
    }
}
