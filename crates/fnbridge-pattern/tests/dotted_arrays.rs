//! Array consistency where a dotted key and an array meet at one path, and where an array mixes
//! scalars with objects: the index and the naive evaluator must agree, as flattening decides
//! (a case the property test found in CI: `"c.d.f"` beside `"c":{"d":["foo",null]}`).

use fnbridge_pattern::{FullEvent, Matcher, Pattern};

fn both(pattern: &str, event: &str) -> (bool, bool) {
    let p = Pattern::parse(pattern).unwrap();
    let m = Matcher::new();
    m.insert(7, &p);
    let index = m.matches(event.as_bytes()).unwrap() == vec![7];
    let full = FullEvent::parse(event.as_bytes()).unwrap();
    (index, p.matches_event(&full))
}

#[test]
fn a_dotted_key_beside_an_array_is_decided_as_flattened() {
    let pattern = r#"{"c":{"d":{"f":[{"exists":false},{"wildcard":"*.*"}]}}}"#;
    // The property test's event: c.d.f has "ΣΑΣ" through the dotted key, so exists:false fails
    // even though the array's elements have no f.
    let event = r#"{"id":"1","c.d.f":["ΣΑΣ"],"c.e":1,"ip":1.0,"b":100.0,"x.y.z":[{"d":"foo"},{"e":1}],"c":{"d":["foo",null]},"a":[]}"#;
    assert_eq!(both(pattern, event), (false, false));
    // Without the dotted key, c.d.f is absent: both match.
    let event = r#"{"c":{"d":["foo",null]},"x.y.z":[{"d":"foo"},{"e":1}]}"#;
    assert_eq!(both(pattern, event), (true, true));
}

#[test]
fn scalar_elements_are_not_chosen_for_paths_below_an_array() {
    // The one object of the array has f: a scalar element beside it does not make f absent.
    let pattern = r#"{"c":{"d":{"f":[{"exists":false}]}}}"#;
    let event = r#"{"c":{"d":["foo",{"f":1}]}}"#;
    assert_eq!(both(pattern, event), (false, false));
    let event = r#"{"c":{"d":["foo",{"g":1}]}}"#;
    assert_eq!(both(pattern, event), (true, true));
}
