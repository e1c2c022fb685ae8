//! `Matcher::matches_serialized` stops reading an event once every named path has had a value;
//! these are the cases where stopping would be wrong, each checked against the validating path.

use fnbridge_pattern::{EventError, Matcher, Pattern, Serialized};
use serde_json::{Value, json};

fn matcher(patterns: &[Value]) -> Matcher {
    let m = Matcher::new();
    for (i, p) in patterns.iter().enumerate() {
        m.insert(i as u64, &Pattern::parse(&p.to_string()).unwrap());
    }
    m
}

/// The serialized path's answer, checked equal to the validating path's.
fn both(m: &Matcher, event: &Value) -> Result<Vec<u64>, EventError> {
    let s = Serialized::from_value(event);
    let got = m.matches_serialized(&s);
    assert_eq!(got, m.matches(s.as_str().as_bytes()), "event {event}");
    got
}

#[test]
fn values_after_the_stop_point_are_not_needed_when_every_path_is_seen() {
    let m = matcher(&[
        json!({"source": ["acs.oss"], "data": {"key": [{"prefix": "dir1/"}]}}),
        json!({"source": ["acs.oss"], "data": {"key": [{"suffix": ".png"}]}}),
    ]);
    let ev = json!({"source": "acs.oss", "data": {"key": "dir1/x.png", "size": 5,
        "meta": {"big": "x".repeat(2000)}}, "tail": [1, 2, {"deep": {"er": true}}]});
    assert_eq!(both(&m, &ev).unwrap(), vec![0, 1]);
    let ev = json!({"source": "acs.cdn", "data": {"key": "dir1/x.png"}, "tail": 1});
    assert_eq!(both(&m, &ev).unwrap(), Vec::<u64>::new());
}

#[test]
fn a_later_dotted_key_still_adds_its_value() {
    // `a.b` is seen through `a` first; the later key `a.b` reaches the same path.
    let m = matcher(&[json!({"a": {"b": ["2"]}}), json!({"a": {"b": ["1"]}})]);
    let ev = json!({"a": {"b": "1"}, "a.b": "2"});
    assert!(Serialized::from_value(&ev).has_dotted_keys());
    assert_eq!(both(&m, &ev).unwrap(), vec![0, 1]);
}

#[test]
fn later_array_elements_still_add_their_values() {
    let m = matcher(&[json!({"a": {"b": ["2"]}, "c": ["y"]})]);
    for ev in [
        json!({"a": [{"b": "1"}, {"b": "2"}], "c": "y"}),
        json!({"c": ["x", "y"], "a": [{"b": "1"}, {"b": "2"}]}),
        json!({"a": {"b": ["1", "2"]}, "c": "y"}),
    ] {
        assert_eq!(both(&m, &ev).unwrap(), vec![0], "{ev}");
    }
}

#[test]
fn absent_fields_keep_the_walk_going() {
    let m = matcher(&[json!({"a": ["1"], "c": [{"exists": false}]})]);
    assert_eq!(both(&m, &json!({"a": "1", "b": "2"})).unwrap(), vec![0]);
    assert_eq!(
        both(&m, &json!({"a": "1", "b": "2", "c": 3})).unwrap(),
        Vec::<u64>::new()
    );
}

#[test]
fn nesting_beyond_the_limit_after_the_stop_point_is_still_an_error() {
    let m = matcher(&[json!({"a": ["1"]})]);
    let mut deep = json!(1);
    for _ in 0..fnbridge_pattern::limits::MAX_EVENT_DEPTH {
        deep = json!([deep]);
    }
    let ev = json!({"a": "1", "z": deep});
    assert!(matches!(both(&m, &ev), Err(EventError::TooDeep { .. })));
    // One level less is fine, stopping or not.
    let ev = json!({"a": "1", "z": deep[0].clone()});
    assert_eq!(both(&m, &ev).unwrap(), vec![0]);
}

#[test]
fn an_empty_matcher_and_non_objects() {
    let m = Matcher::new();
    assert_eq!(both(&m, &json!({"a": 1})).unwrap(), Vec::<u64>::new());
    let m = matcher(&[json!({"a": ["1"]})]);
    assert!(matches!(
        both(&m, &json!([1])),
        Err(EventError::NotAnObject)
    ));
    assert!(matches!(
        both(&m, &json!("s")),
        Err(EventError::NotAnObject)
    ));
}
