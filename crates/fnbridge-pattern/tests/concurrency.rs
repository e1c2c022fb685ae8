//! Readers keep matching while a writer inserts and removes: every answer a reader sees is one
//! of the published states, never a torn one, and readers never wait for the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fnbridge_pattern::{Matcher, Pattern};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn matcher_is_send_and_sync() {
    assert_send_sync::<Matcher>();
    assert_send_sync::<Pattern>();
}

#[test]
fn readers_see_consistent_snapshots_while_a_writer_works() {
    const N: u64 = 3000;
    let m = Arc::new(Matcher::new());
    // Pattern i matches events whose `n` array contains i; the event holds them all.
    let patterns: Vec<Pattern> = (0..N)
        .map(|i| {
            Pattern::parse(&format!(r#"{{"n": [{i}], "kind": [{{"prefix": "ev"}}]}}"#)).unwrap()
        })
        .collect();
    let event = format!(
        r#"{{"kind": "event", "n": [{}]}}"#,
        (0..N).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (m, done, event) = (m.clone(), done.clone(), event.clone());
            std::thread::spawn(move || {
                let mut last = 0usize;
                let mut checks = 0u64;
                let mut slowest = Duration::ZERO;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ids = m.matches(event.as_bytes()).unwrap();
                    slowest = slowest.max(t.elapsed());
                    // Inserts happen in id order, so a snapshot holds exactly a prefix 0..k.
                    assert!(
                        ids.iter().enumerate().all(|(i, id)| *id == i as u64),
                        "torn snapshot"
                    );
                    assert!(ids.len() >= last, "snapshots went backwards");
                    last = ids.len();
                    checks += 1;
                }
                (checks, slowest)
            })
        })
        .collect();

    let t = Instant::now();
    for (i, p) in patterns.iter().enumerate() {
        m.insert(i as u64, p);
    }
    let insert_time = t.elapsed();
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let (checks, slowest) = r.join().unwrap();
        assert!(checks > 0);
        println!("reader: {checks} matches, slowest {slowest:?}; {N} inserts took {insert_time:?}");
    }
    assert_eq!(m.matches(event.as_bytes()).unwrap().len(), N as usize);
    assert!(m.segments() <= fnbridge_pattern::MAX_SEGMENTS);

    // Removals published while reading.
    for i in (0..N).step_by(2) {
        assert!(m.remove(i));
    }
    assert!(!m.remove(0));
    let ids = m.matches(event.as_bytes()).unwrap();
    assert_eq!(ids, (1..N).step_by(2).collect::<Vec<_>>());
    assert_eq!(m.len(), (N / 2) as usize);
}

#[test]
fn replacing_an_id_replaces_its_pattern() {
    let m = Matcher::new();
    let a = Pattern::parse(r#"{"x": ["a"]}"#).unwrap();
    let b = Pattern::parse(r#"{"x": ["b"]}"#).unwrap();
    m.insert(1, &a);
    m.insert(1, &b);
    assert_eq!(m.len(), 1);
    assert!(m.matches(br#"{"x": "a"}"#).unwrap().is_empty());
    assert_eq!(m.matches(br#"{"x": "b"}"#).unwrap(), vec![1]);
    m.insert_many(vec![(2, a.clone()), (2, b.clone()), (3, a.clone())]);
    assert_eq!(m.matches(br#"{"x": "b"}"#).unwrap(), vec![1, 2]);
    assert_eq!(m.matches(br#"{"x": "a"}"#).unwrap(), vec![3]);
    assert!(m.remove(1) && m.remove(2) && m.remove(3));
    assert!(m.is_empty());
    assert!(m.matches(br#"{"x": "a"}"#).unwrap().is_empty());
    assert!(m.matches(b"not json").is_err());
}

/// A session matches as `Matcher::match_leading` does, against the patterns of when it started
/// whatever is inserted meanwhile, and leaves the matcher working when dropped.
#[test]
fn a_session_keeps_the_patterns_it_started_with() {
    use fnbridge_pattern::{Capture, Probe};
    let m = Matcher::new();
    let p = |v: &str| Pattern::parse(&format!(r#"{{"a": ["{v}"]}}"#)).unwrap();
    m.insert(1, &p("x"));
    let probe = Probe::new(&[&["a"]]);
    let text = br#"{"a": "x"} {"a": "y"}"#;
    let (mut cap, mut out) = (Capture::default(), Vec::new());
    let mut s = m.session();
    let first = s.match_leading(text, &probe, &mut cap, &mut out).unwrap();
    assert_eq!((first, out.as_slice()), (r#"{"a": "x"}"#, &[1][..]));
    assert_eq!(cap.get(0).unwrap().text(text), b"\"x\"");
    m.insert(2, &p("x"));
    let rest = &text[first.len()..];
    let second = s.match_leading(rest, &probe, &mut cap, &mut out).unwrap();
    assert_eq!((second, out.as_slice()), (r#" {"a": "y"}"#, &[][..]));
    s.match_leading(text, &probe, &mut cap, &mut out).unwrap();
    assert_eq!(out, [1], "pattern 2 came after the session started");
    drop(s);
    let mut fresh = Vec::new();
    m.match_leading(text, &probe, &mut cap, &mut fresh).unwrap();
    assert_eq!(fresh, [1, 2]);
    assert_eq!(m.matches(br#"{"a": "x"}"#).unwrap(), [1, 2]);
}
