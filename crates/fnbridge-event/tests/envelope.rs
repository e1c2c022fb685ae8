//! The envelope read from the original text agrees with the reading it replaced (parse into
//! serde_json maps, validate, serialize, match the serialized text): same acceptance, same error
//! messages, the same events and ids, and the same matches; and an accepted event is delivered
//! byte for byte as it was received.

use fnbridge_event::envelope::delivery_payload;
use fnbridge_event::{Envelope, EventSource};
use fnbridge_pattern::{Matcher, Pattern, Serialized};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The previous `Envelope::parse`, kept as the reference the new one is held to. Its size rule
/// (the compact re-serialization) is the one difference; the events generated here stay far
/// below the limit.
mod old {
    use serde_json::{Map, Value};

    const MAX_EVENTS_PER_ENVELOPE: usize = 100;
    const MAX_EVENT_DEPTH: usize = 32;

    pub struct Event {
        pub source: &'static str,
        pub name: String,
        pub body: Map<String, Value>,
    }

    fn invalid(m: impl Into<String>) -> String {
        m.into()
    }

    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
        let mut top = match v {
            Value::Object(top) => top,
            Value::Array(_) => {
                return Err(invalid(
                    "body must be a JSON object {\"events\":[...]}: wrap the array as {\"events\":[...]}",
                ));
            }
            _ => return Err(invalid("body must be a JSON object {\"events\":[...]}")),
        };
        let events = match top.remove("events") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid("events: must be an array")),
            None if top.contains_key("eventSource") || top.contains_key("eventName") => {
                return Err(invalid(
                    "events: required field is missing; the body looks like a single event: wrap it as {\"events\":[EVENT]}",
                ));
            }
            None => return Err(invalid("events: required field is missing")),
        };
        if let Some(k) = top.keys().next() {
            return Err(format!(
                "{k}: unknown field (the envelope has only \"events\")"
            ));
        }
        if events.is_empty() {
            return Err(invalid("events: must hold at least one event"));
        }
        if events.len() > MAX_EVENTS_PER_ENVELOPE {
            return Err(format!(
                "events: holds {} events, at most {MAX_EVENTS_PER_ENVELOPE} are allowed per request",
                events.len()
            ));
        }
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| validate_event(i, e))
            .collect()
    }

    fn str_field<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str, String> {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(format!("{path}.{key}: must not be empty")),
            Some(_) => Err(format!("{path}.{key}: must be a string")),
            None => Err(format!("{path}.{key}: required field is missing")),
        }
    }

    fn validate_event(i: usize, e: Value) -> Result<Event, String> {
        let path = format!("events[{i}]");
        if depth(&e) > MAX_EVENT_DEPTH {
            return Err(format!(
                "{path}: nested deeper than {MAX_EVENT_DEPTH} levels"
            ));
        }
        let Value::Object(body) = e else {
            return Err(format!("{path}: must be a JSON object"));
        };
        let source_name = str_field(&body, &path, "eventSource")?;
        let (source, names, version): (&str, &[&str], &str) = match source_name {
            "cdn" => ("cdn", &fnbridge_event::source::CDN_EVENT_NAMES, "1.0.0"),
            "acs:oss" => ("acs:oss", &fnbridge_event::source::OSS_EVENT_NAMES, "1.0"),
            _ => {
                return Err(format!(
                    "{path}.eventSource: unknown source \"{source_name}\" (expected \"cdn\" or \"acs:oss\")"
                ));
            }
        };
        let name = str_field(&body, &path, "eventName")?.to_string();
        if !names.contains(&name.as_str()) {
            return Err(format!(
                "{path}.eventName: \"{name}\" is not a {source} event (expected one of {})",
                names.join(", ")
            ));
        }
        let v = str_field(&body, &path, "eventVersion")?;
        if v != version {
            return Err(format!(
                "{path}.eventVersion: must be \"{version}\" for {source} events, got \"{v}\""
            ));
        }
        if source == "cdn" {
            let resource = match body.get("resource") {
                Some(Value::Object(r)) => r,
                Some(_) => return Err(format!("{path}.resource: must be an object")),
                None => return Err(format!("{path}.resource: required field is missing")),
            };
            str_field(resource, &format!("{path}.resource"), "domain")?;
            if body.contains_key("traceId") {
                str_field(&body, &path, "traceId")?;
            }
            match body.get("eventParameter") {
                Some(Value::Object(_)) | None => {}
                Some(_) => return Err(format!("{path}.eventParameter: must be an object")),
            }
        } else {
            let oss = match body.get("oss") {
                Some(Value::Object(o)) => o,
                Some(_) => return Err(format!("{path}.oss: must be an object")),
                None => return Err(format!("{path}.oss: required field is missing")),
            };
            let bucket = match oss.get("bucket") {
                Some(Value::Object(b)) => b,
                _ => return Err(format!("{path}.oss.bucket: must be an object")),
            };
            str_field(bucket, &format!("{path}.oss.bucket"), "name")?;
            let object = match oss.get("object") {
                Some(Value::Object(o)) => o,
                _ => return Err(format!("{path}.oss.object: must be an object")),
            };
            str_field(object, &format!("{path}.oss.object"), "key")?;
        }
        Ok(Event { source, name, body })
    }

    pub fn id(e: &Event) -> Option<&str> {
        if e.source == "cdn" {
            e.body.get("traceId").and_then(|v| v.as_str())
        } else {
            e.body
                .get("responseElements")
                .and_then(|r| r.get("requestId"))
                .and_then(|v| v.as_str())
        }
    }

    pub fn ensure_id(e: &mut Event, fresh: &str) {
        if id(e).is_some() {
            return;
        }
        if e.source == "cdn" {
            e.body.insert("traceId".into(), Value::String(fresh.into()));
        } else {
            let re = e
                .body
                .entry("responseElements")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = re {
                m.insert("requestId".into(), Value::String(fresh.into()));
            }
        }
    }
}

fn matcher() -> Matcher {
    let m = Matcher::new();
    let patterns = [
        json!({"eventSource": ["cdn"], "resource": {"domain": ["example.com"]}}),
        json!({"eventName": ["LogFileCreated"], "eventParameter": {"domain": [{"prefix": "ex"}]}}),
        json!({"oss": {"bucket": {"name": ["b1"]}, "object": {"key": [{"suffix": ".png"}]}}}),
        json!({"traceId": [{"exists": true}], "eventVersion": ["1.0.0"]}),
        json!({"responseElements": {"requestId": [{"exists": false}]}}),
        json!({"resource.domain": [{"anything-but": "example.com"}]}),
        json!({"eventParameter": {"n": [{"numeric": [">", 1]}]}}),
    ];
    for (i, p) in patterns.iter().enumerate() {
        m.insert(i as u64, &Pattern::parse(&p.to_string()).unwrap());
    }
    m
}

const FRESH: &str = "fresh-id";

/// What the old path produced for a body: per event (source, name, value, id, matches), or the
/// error message.
#[allow(clippy::type_complexity)]
fn old_path(
    m: &Matcher,
    body: &[u8],
) -> Result<Vec<(&'static str, String, Value, String, Vec<u64>)>, String> {
    let events = old::parse(body)?;
    Ok(events
        .into_iter()
        .map(|mut e| {
            old::ensure_id(&mut e, FRESH);
            let s = Serialized::from_map(&e.body);
            let ids = m.matches_serialized(&s).unwrap();
            let id = old::id(&e).unwrap_or_default().to_string();
            (e.source, e.name, Value::Object(e.body), id, ids)
        })
        .collect())
}

#[allow(clippy::type_complexity)]
fn new_path(
    m: &Matcher,
    body: &[u8],
) -> Result<Vec<(&'static str, String, Value, String, Vec<u64>)>, String> {
    let env = Envelope::parse_matching(body, m).map_err(|e| e.to_string())?;
    Ok(env
        .events
        .into_iter()
        .map(|mut e| {
            if e.ensure_id(|| FRESH.to_string()) {
                e.matched = m.matches(e.text().as_bytes()).unwrap();
            }
            let v: Value = serde_json::from_str(e.text()).unwrap();
            let id = e.id().unwrap_or_default().to_string();
            (e.source.wire_name(), e.name.to_string(), v, id, e.matched)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Generated envelopes: valid events of both sources, edited the ways senders get them wrong.

fn cdn_event() -> Value {
    json!({"eventName": "LogFileCreated", "eventSource": "cdn", "region": "cn-hangzhou",
        "eventVersion": "1.0.0", "eventTime": "2018-06-14T15:31:49+08:00", "traceId": "c6459282",
        "userIdentity": {"aliUid": "1"}, "resource": {"domain": "example.com"},
        "eventParameter": {"domain": "example.com", "filePath": "http://x", "n": 2}})
}

fn oss_event() -> Value {
    json!({"eventName": "ObjectCreated:PutObject", "eventSource": "acs:oss", "eventVersion": "1.0",
        "oss": {"bucket": {"name": "b1", "arn": "acs:oss:cn-hangzhou:1:b1"},
                "object": {"key": "a/b.png", "size": 5}},
        "responseElements": {"requestId": "58F9FF2D"}, "region": "cn-hangzhou"})
}

/// Paths (object keys) edits aim at.
const TARGETS: &[&[&str]] = &[
    &["eventSource"],
    &["eventName"],
    &["eventVersion"],
    &["traceId"],
    &["resource"],
    &["resource", "domain"],
    &["eventParameter"],
    &["eventParameter", "n"],
    &["oss"],
    &["oss", "bucket"],
    &["oss", "bucket", "name"],
    &["oss", "object"],
    &["oss", "object", "key"],
    &["responseElements"],
    &["responseElements", "requestId"],
];

const REPLACEMENTS: &[&str] = &[
    "null",
    "\"\"",
    "\"ftp\"",
    "\"LogFileMade\"",
    "\"2.0\"",
    "\"1.0\"",
    "\"acs:oss\"",
    "12",
    "1e2",
    "[\"example.com\"]",
    "{}",
    "{\"domain\":\"x.com\"}",
    "\"caf\\u00e9.com\"",
    "\"ex\\u0061mple.com\"",
    "DEEP",
];

/// A replacement's text: `DEEP` nests 33 arrays, one past the limit at the top level.
fn replacement(r: usize) -> String {
    match REPLACEMENTS[r] {
        "DEEP" => format!("{}1{}", "[".repeat(33), "]".repeat(33)),
        t => t.to_string(),
    }
}

#[derive(Debug, Clone)]
enum Edit {
    /// Drop the member at a target path.
    Remove(usize),
    /// Replace its value (text).
    Set(usize, usize),
    /// Repeat a top-level member: a new value before the original (the original wins) or after
    /// it (the new one wins).
    Repeat(usize, usize, bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..TARGETS.len()).prop_map(Edit::Remove),
        (0..TARGETS.len(), 0..REPLACEMENTS.len()).prop_map(|(t, r)| Edit::Set(t, r)),
        (0..4usize, 0..REPLACEMENTS.len(), any::<bool>())
            .prop_map(|(t, r, a)| Edit::Repeat(t, r, a)),
    ]
}

fn apply(ev: &mut Value, e: &Edit, repeats: &mut Vec<(String, String, bool)>) {
    let at = |ev: &mut Value, path: &[&str]| -> Option<(*mut Map<String, Value>, String)> {
        let mut cur = ev;
        for k in &path[..path.len() - 1] {
            cur = cur.as_object_mut()?.get_mut(*k)?;
        }
        Some((
            cur.as_object_mut()? as *mut _,
            path[path.len() - 1].to_string(),
        ))
    };
    match *e {
        Edit::Remove(t) => {
            if let Some((m, k)) = at(ev, TARGETS[t]) {
                // SAFETY: `m` points into `ev`, which is not otherwise borrowed here.
                unsafe { (*m).shift_remove(&k) };
            }
        }
        Edit::Set(t, r) => {
            if let Some((m, k)) = at(ev, TARGETS[t]) {
                let v: Value = serde_json::from_str(&replacement(r)).unwrap();
                // SAFETY: as above.
                unsafe { (*m).insert(k, v) };
            }
        }
        Edit::Repeat(t, r, after) => {
            repeats.push((TARGETS[t][0].to_string(), replacement(r), after));
        }
    }
}

/// The event's text: compact or pretty, with its repeated members spliced in, and sometimes a
/// key written with a `\u` escape.
fn render(
    ev: &Value,
    pretty: bool,
    escape_key: bool,
    repeats: &[(String, String, bool)],
) -> String {
    let mut s = if pretty {
        serde_json::to_string_pretty(ev).unwrap()
    } else {
        ev.to_string()
    };
    for (k, v, after) in repeats {
        if !s.starts_with('{') || s.len() < 2 {
            continue;
        }
        let member = format!("\"{k}\": {v}");
        if *after {
            let close = s.rfind('}').unwrap();
            let sep = if s[..close].trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            s.insert_str(close, &format!("{sep}{member}"));
        } else {
            let sep = if s[1..].trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            s.insert_str(1, &format!("{member}{sep}"));
        }
    }
    if escape_key {
        s = s.replacen("\"eventName\"", "\"\\u0065ventName\"", 1);
    }
    s
}

fn envelope() -> impl Strategy<Value = String> {
    let event = (
        any::<bool>(),
        prop::collection::vec(edit(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(oss, edits, pretty, esc)| {
            let mut ev = if oss { oss_event() } else { cdn_event() };
            let mut repeats = Vec::new();
            for e in &edits {
                apply(&mut ev, e, &mut repeats);
            }
            render(&ev, pretty, esc, &repeats)
        });
    (
        prop::collection::vec(event, 1..4),
        0..8u8,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2),
        0..12u8,
    )
        .prop_map(|(events, ws, cuts, shape)| {
            let sp = " \n\t ".repeat(ws as usize % 3);
            let list = events.join(&format!(",{sp}"));
            let mut body = match shape {
                0 => format!("{{\"events\":[{list}],\"x\":1}}"),
                1 => format!("{{\"events\":[{list}],\"events\":[{}]}}", events[0]),
                2 => format!("[{list}]"),
                3 => events[0].clone(),
                4 => format!("{{\"events\":{}}}", events[0]),
                _ => format!("{sp}{{{sp}\"events\"{sp}:{sp}[{sp}{list}{sp}]{sp}}}{sp}"),
            }
            .into_bytes();
            for (at, b) in cuts {
                let i = at.index(body.len());
                body[i] = b;
            }
            String::from_utf8_lossy(&body).into_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_the_serde_reading(body in envelope()) {
        let m = matcher();
        let old = old_path(&m, body.as_bytes());
        let new = new_path(&m, body.as_bytes());
        match (&old, &new) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    prop_assert_eq!(x, y, "body {}", body);
                }
            }
            _ => prop_assert_eq!(old.as_ref().err(), new.as_ref().err(), "body {}", body),
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn events_are_delivered_byte_for_byte() {
    // Unusual whitespace, key order, escapes (a \u escape, an escaped slash), a number form
    // serde_json would rewrite, and a big integer it would round.
    let event = "{ \"eventSource\" :\"cdn\",\n\t\"eventVersion\":\"1.0.0\", \"eventName\": \"CachedObjectsRefreshed\",\r\n \"resource\": {\"domain\": \"ex\\u0061mple.com\"},\"traceId\":\"t\\/1\",\"eventParameter\":{\"objectPath\":[\"/a\"], \"n\": 1E2, \"big\": 123456789012345678901234567890, \"s\": \"caf\\u00e9 \\ud83d\\ude00\"} }";
    let body = format!("{{\"events\" : [ {event} ,{event}]}}");
    let m = matcher();
    let env = Envelope::parse_matching(body.as_bytes(), &m).unwrap();
    assert_eq!(env.events.len(), 2);
    for e in &env.events {
        assert_eq!(e.text(), event);
        assert_eq!(e.payload(), delivery_payload(event));
        assert_eq!(e.id().as_deref(), Some("t/1"));
        assert_eq!(e.source, EventSource::Cdn);
        // The escaped domain is example.com to the matcher, and 1E2 is 100.
        assert_eq!(e.matched, vec![0, 3, 4, 6]);
    }
}

#[test]
fn a_missing_id_is_spliced_in_and_the_rest_is_untouched() {
    let cdn = r#"{ "eventSource":"cdn","eventName":"CdnDomainAdded","eventVersion":"1.0.0","resource":{"domain":"a.com"}}"#;
    let body = format!(r#"{{"events":[{cdn}]}}"#);
    let mut env = Envelope::parse(body.as_bytes()).unwrap();
    assert!(env.events[0].ensure_id(|| "id-1".into()));
    assert_eq!(
        env.events[0].text(),
        r#"{"traceId":"id-1", "eventSource":"cdn","eventName":"CdnDomainAdded","eventVersion":"1.0.0","resource":{"domain":"a.com"}}"#
    );
    assert_eq!(env.events[0].id().as_deref(), Some("id-1"));
    assert!(!env.events[0].ensure_id(|| "again".into()));

    let oss = |re: &str| {
        format!(
            r#"{{"events":[{{"eventSource":"acs:oss","eventName":"ObjectCreated:PutObject","eventVersion":"1.0","oss":{{"bucket":{{"name":"b"}},"object":{{"key":"k"}}}}{re}}}]}}"#
        )
    };
    for (re, want, id) in [
        (
            "",
            r#"{"responseElements":{"requestId":"r-1"},"eventSource""#,
            Some("r-1"),
        ),
        (
            r#","responseElements":{ }"#,
            r#""responseElements":{"requestId":"r-1" }"#,
            Some("r-1"),
        ),
        (
            r#","responseElements":{"x":1}"#,
            r#""responseElements":{"requestId":"r-1","x":1}"#,
            Some("r-1"),
        ),
        (
            r#","responseElements":{"requestId":7}"#,
            r#""responseElements":{"requestId":"r-1"}"#,
            Some("r-1"),
        ),
        // Not an object: left as it was, as before.
        (
            r#","responseElements":"x""#,
            r#""responseElements":"x""#,
            None,
        ),
    ] {
        let body = oss(re);
        let mut env = Envelope::parse(body.as_bytes()).unwrap();
        env.events[0].ensure_id(|| "r-1".into());
        assert!(
            env.events[0].text().contains(want),
            "{re}: {}",
            env.events[0].text()
        );
        assert_eq!(env.events[0].id().as_deref(), id, "{re}");
        serde_json::from_str::<Value>(env.events[0].text()).unwrap();
    }
}

#[test]
fn repeated_keys_read_as_a_json_reader_reads_them() {
    // The later eventSource wins, as serde_json and Python's json module decide.
    let event = r#"{"eventSource":"acs:oss","eventName":"LogFileCreated","eventVersion":"1.0.0","resource":{"domain":"example.com"},"traceId":"t","eventSource":"cdn"}"#;
    let body = format!(r#"{{"events":[{event}]}}"#);
    let m = matcher();
    let env = Envelope::parse_matching(body.as_bytes(), &m).unwrap();
    let e = &env.events[0];
    assert_eq!(e.source, EventSource::Cdn);
    assert_eq!(
        e.text(),
        r#"{"eventSource":"cdn","eventName":"LogFileCreated","eventVersion":"1.0.0","resource":{"domain":"example.com"},"traceId":"t"}"#
    );
    assert_eq!(e.matched, vec![0, 3, 4]);
}

#[test]
fn json_errors_come_first_and_in_serde_json_s_words() {
    let good = r#"{"eventSource":"cdn","eventName":"LogFileCreated","eventVersion":"1.0.0","resource":{"domain":"a.com"}}"#;
    let bad_first = r#"{"eventSource":"ftp"}"#;
    for body in [
        format!(r#"{{"events":[{bad_first},{good}"#),
        format!(r#"{{"events":[{bad_first},{{"a":1e400}}]}}"#),
        format!(r#"{{"events":[{bad_first},{{"a":"\ud800"}}]}}"#),
        format!(r#"{{"events":[{good}],"x":[}}"#),
    ] {
        let want = old::parse(body.as_bytes()).err().unwrap();
        assert!(want.starts_with("body is not valid JSON: "), "{want}");
        assert_eq!(
            Envelope::parse(body.as_bytes()).unwrap_err().to_string(),
            want
        );
    }
}
