//! `fnbridge pattern test`: a pattern or a trigger config against events, offline.

use super::*;

/// `pattern test`: 0 when an event matches, 1 when none does, 2 on invalid input.
pub fn pattern(cmd: PatternCmd) -> i32 {
    let PatternCmd::Test(a) = cmd;
    match pattern_test(&a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

/// A JSON argument: inline JSON, `@FILE`, or the name of a file.
pub(super) fn load_json_arg(s: &str) -> Result<String, String> {
    if let Some(path) = s.strip_prefix('@') {
        return std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    }
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        Ok(s.to_string())
    } else {
        std::fs::read_to_string(s).map_err(|e| format!("cannot read {s}: {e}"))
    }
}

/// The events of an ingest envelope `{"events":[...]}`, or `None` for a single event.
pub(super) fn envelope_events(v: &Value) -> Option<&Vec<Value>> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get("events").and_then(Value::as_array),
        _ => None,
    }
}

pub(super) fn pattern_test(a: &PatternTestArgs) -> Result<i32, String> {
    let (pattern, text) = match (&a.pattern, &a.trigger_type, &a.config) {
        (Some(p), _, _) => {
            let t = load_json_arg(p)?;
            let pattern = fnbridge_pattern::Pattern::parse(&t).map_err(|e| e.to_string())?;
            let text = pattern.to_compact_json();
            (pattern, text)
        }
        (None, Some(tt), Some(cfg)) => {
            let cfg = load_json_arg(cfg)?;
            let cfg: Value =
                serde_json::from_str(&cfg).map_err(|e| format!("--config: not valid JSON: {e}"))?;
            let c = fnbridge_pattern::compile::compile(tt, &cfg, a.source_arn.as_deref())
                .map_err(|e| e.to_string())?;
            (c.pattern, c.pattern_json)
        }
        _ => return Err("give --pattern, or --trigger-type with --config".into()),
    };
    // (label, event JSON): one event, or each event of an envelope as ingest would match it.
    let mut events: Vec<(String, String)> = Vec::new();
    let mut envelope = false;
    if let Some(e) = &a.event {
        let t = load_json_arg(e)?;
        let v: Value =
            serde_json::from_str(&t).map_err(|e| format!("--event: not valid JSON: {e}"))?;
        match envelope_events(&v) {
            Some(list) => {
                envelope = true;
                if list.is_empty() {
                    return Err("--event: the envelope holds no events".into());
                }
                for (i, ev) in list.iter().enumerate() {
                    events.push((format!("events[{i}]"), ev.to_string()));
                }
            }
            None => events.push(("event".into(), t)),
        }
    }
    let mut results = Vec::with_capacity(events.len());
    for (label, ev) in &events {
        let m = pattern
            .matches(ev.as_bytes())
            .map_err(|e| format!("{label}: {e}"))?;
        results.push((label.as_str(), m));
    }
    let matched = results.iter().filter(|(_, m)| *m).count();
    if a.json {
        let mut v = json!({
            "results": results.iter().map(|(l, m)| json!({"event": l, "match": m})).collect::<Vec<_>>(),
            "matched": matched,
        });
        if a.show {
            v["pattern"] = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        }
        output::json(&v);
    } else {
        if a.show {
            outln!("{text}");
        }
        for (label, m) in &results {
            let word = if *m { "match" } else { "no match" };
            if envelope {
                outln!("{label}: {word}");
            } else {
                outln!("{word}");
            }
        }
    }
    Ok(if events.is_empty() || matched > 0 {
        0
    } else {
        1
    })
}
