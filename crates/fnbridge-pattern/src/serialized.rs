//! [`Serialized`]: an event serialized from a `serde_json` value together with the facts about
//! its text that let the matcher stop reading it early.
//!
//! The matcher can stop walking an event once every path its patterns name has a value, but only
//! when nothing later in the text can add a value to one of those paths. Three things could:
//! a repeated key (impossible here: a `serde_json` map holds each key once), an array on a named
//! path (seen by the walk itself, which then reads on), and a later key containing `.` that
//! reaches a named path by the dot-joined route (`{"a": {"b": 1}, "a.b": 2}`). The last one cannot
//! be seen without reading on, so it is recorded while serializing: the formatter below notes
//! whether any key holds a `.`, and the nesting depth, so the depth limit is enforced exactly as
//! the full walk would.

use std::io;

use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Value};

/// Compact JSON text of a `serde_json` map or value, with what the trusted match path needs to
/// know about it (see [`crate::Matcher::matches_serialized`]). Build one with
/// [`Serialized::from_map`] or [`Serialized::from_value`]; [`Serialized::as_str`] is the text,
/// byte for byte what `serde_json::to_string` produces.
#[derive(Debug, Clone)]
pub struct Serialized {
    text: String,
    dotted_keys: bool,
    depth: usize,
}

impl Serialized {
    /// Serializes an event object.
    pub fn from_map(map: &Map<String, Value>) -> Serialized {
        Self::build(map)
    }

    /// Serializes any JSON value (matching needs an object; anything else gets
    /// [`crate::EventError::NotAnObject`] as usual).
    pub fn from_value(value: &Value) -> Serialized {
        Self::build(value)
    }

    fn build(v: &impl serde::Serialize) -> Serialized {
        let mut f = Facts::default();
        let mut out = Vec::with_capacity(256);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, &mut f);
        // A `serde_json` value always serializes: its keys are strings and its numbers finite.
        v.serialize(&mut ser)
            .expect("a serde_json value always serializes");
        Serialized {
            // SAFETY-free: serde_json writes UTF-8 only.
            text: String::from_utf8(out).expect("serde_json writes UTF-8"),
            dotted_keys: f.dotted,
            depth: f.max_depth,
        }
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Whether some object key anywhere in the value contains a `.`.
    pub fn has_dotted_keys(&self) -> bool {
        self.dotted_keys
    }

    /// Deepest nesting of objects and arrays (a flat object is 1).
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// A compact formatter that watches keys and nesting.
#[derive(Default)]
struct Facts {
    in_key: bool,
    dotted: bool,
    depth: usize,
    max_depth: usize,
}

impl Facts {
    fn open(&mut self) {
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
    }
}

impl Formatter for &mut Facts {
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open();
        CompactFormatter.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        CompactFormatter.end_object(w)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open();
        CompactFormatter.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        CompactFormatter.end_array(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_key = true;
        CompactFormatter.begin_object_key(w, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.in_key = false;
        CompactFormatter.end_object_key(w)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // `.` is never escaped, so every dot of a key arrives in a fragment.
        if self.in_key && !self.dotted && fragment.as_bytes().contains(&b'.') {
            self.dotted = true;
        }
        CompactFormatter.write_string_fragment(w, fragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_serde_json_compact_output() {
        let v = json!({"a": [1, {"b": "x\"y\u{1}"}], "c": null, "d": 1.5e300});
        let s = Serialized::from_value(&v);
        assert_eq!(s.as_str(), serde_json::to_string(&v).unwrap());
        assert!(!s.has_dotted_keys());
        assert_eq!(s.depth(), 3);
    }

    #[test]
    fn dots_in_keys_are_noticed_and_dots_in_values_are_not() {
        assert!(!Serialized::from_value(&json!({"a": "x.y", "b": ["1.2"]})).has_dotted_keys());
        assert!(Serialized::from_value(&json!({"a": {"b.c": 1}})).has_dotted_keys());
        assert!(Serialized::from_value(&json!([{"x": {"\n.": 1}}])).has_dotted_keys());
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(Serialized::from_value(&json!(1)).depth(), 0);
        assert_eq!(Serialized::from_value(&json!({})).depth(), 1);
        assert_eq!(Serialized::from_value(&json!({"a": [[{}]]})).depth(), 4);
    }
}
