//! Output for people (aligned tables) and for scripts (`--json`), written through [`outln!`] and
//! [`write_bytes`], which end the process quietly with status 0 when the reader has gone away
//! (`fnbridge function list | head -1`) instead of panicking like `println!` does on EPIPE.

use std::io::Write;

use serde_json::Value;

/// `println!` to standard output that treats a closed pipe as a clean exit.
macro_rules! outln {
    () => {
        $crate::output::write_fmt(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::output::write_fmt(format_args!("{}\n", format_args!($($t)*)))
    };
}
pub(crate) use outln;

/// `print!` to standard output that treats a closed pipe as a clean exit.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::write_fmt(format_args!($($t)*))
    };
}
pub(crate) use out;

/// Ends the process after a failed write: quietly with 0 when the reader is gone.
fn write_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(std::io::stderr(), "fnbridge: cannot write output: {e}");
    std::process::exit(2);
}

pub fn write_fmt(args: std::fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args) {
        write_failed(e);
    }
}

pub fn write_bytes(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(b) {
        write_failed(e);
    }
}

pub fn flush() {
    if let Err(e) = std::io::stdout().lock().flush() {
        write_failed(e);
    }
}

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
        outln!("{}", s.trim_end());
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

/// Pretty JSON, for `--json`.
pub fn json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// One compact JSON value per line, for streams (`logs --json`).
pub fn json_line(v: &Value) {
    outln!("{v}");
}

/// Key/value listing of an object, for `get` commands.
pub fn record(v: &Value, keys: &[&str]) {
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    for k in keys {
        outln!("{k:<w$}  {}", cell(v, k));
    }
}
