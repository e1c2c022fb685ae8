//! Output for people (aligned tables) and for scripts (`--json`).

use serde_json::Value;

/// Prints rows under headers with columns padded to the widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// A field as display text: strings bare, null as "-", everything else as JSON.
pub fn cell(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Table rows: the fields `keys` of each item, as [`cell`]s.
pub fn rows<'a>(items: impl IntoIterator<Item = &'a Value>, keys: &[&str]) -> Vec<Vec<String>> {
    items
        .into_iter()
        .map(|item| keys.iter().map(|k| cell(item, k)).collect())
        .collect()
}

pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Key/value listing of an object, for `get` commands.
pub fn record(v: &Value, keys: &[&str]) {
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    for k in keys {
        println!("{k:<w$}  {}", cell(v, k));
    }
}
