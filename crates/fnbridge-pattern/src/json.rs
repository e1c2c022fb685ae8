//! A small strict JSON tree parser for pattern text that keeps duplicate keys and their order.
//!
//! A map-building parser would silently keep one of two duplicate keys; EventBridge patterns are
//! read as a stream where a later occurrence of a field overrides an earlier one, so the compiler
//! needs every occurrence in order. Numbers keep their source text so that exact numeric values
//! can be compared as decimals rather than as rounded doubles.

use crate::lex::{self, LexError, LexResult};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JValue {
    Null,
    Bool(bool),
    /// The number's source text (valid JSON number grammar).
    Num(String),
    Str(String),
    Arr(Vec<JValue>),
    /// Members in source order, duplicates kept.
    Obj(Vec<(String, JValue)>),
}

impl JValue {
    /// Short token name used in error messages (`[`, `{`, `true`, the number text...).
    pub(crate) fn token(&self) -> String {
        match self {
            JValue::Null => "null".into(),
            JValue::Bool(b) => b.to_string(),
            JValue::Num(n) => n.clone(),
            JValue::Str(s) => s.clone(),
            JValue::Arr(_) => "[".into(),
            JValue::Obj(_) => "{".into(),
        }
    }
}

/// Parses `text` as one JSON value with at most `max_depth` nested containers.
pub(crate) fn parse(text: &[u8], max_depth: usize) -> Result<JValue, JsonError> {
    let mut p = Parser { b: text, max_depth };
    let i = lex::skip_ws(text, 0);
    let (v, i) = p.value(i, 0)?;
    let i = lex::skip_ws(text, i);
    if i != text.len() {
        return Err(JsonError::Syntax(LexError {
            offset: i,
            reason: "trailing characters",
        }));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    Syntax(LexError),
    TooDeep,
}

impl From<LexError> for JsonError {
    fn from(e: LexError) -> Self {
        JsonError::Syntax(e)
    }
}

struct Parser<'a> {
    b: &'a [u8],
    max_depth: usize,
}

impl Parser<'_> {
    fn string(&self, i: usize) -> LexResult<(String, usize)> {
        let (span, next) = lex::scan_string(self.b, i)?;
        let s = if span.escaped() {
            let mut out = Vec::with_capacity(span.end - span.start);
            lex::decode_escaped(self.b, span, &mut out);
            out
        } else {
            self.b[span.start..span.end].to_vec()
        };
        // Both paths produce valid UTF-8: scan_string validated the raw bytes and decoding only
        // emits encoded chars.
        Ok((String::from_utf8(s).unwrap_or_default(), next))
    }

    fn value(&mut self, i: usize, depth: usize) -> Result<(JValue, usize), JsonError> {
        let b = self.b;
        match b.get(i) {
            None => Err(LexError {
                offset: i,
                reason: "unexpected end of input",
            }
            .into()),
            Some(b'{') => {
                if depth >= self.max_depth {
                    return Err(JsonError::TooDeep);
                }
                let mut members = Vec::new();
                let mut j = lex::skip_ws(b, i + 1);
                if b.get(j) == Some(&b'}') {
                    return Ok((JValue::Obj(members), j + 1));
                }
                loop {
                    if b.get(j) != Some(&b'"') {
                        return Err(LexError {
                            offset: j,
                            reason: "expected a key",
                        }
                        .into());
                    }
                    let (k, n) = self.string(j)?;
                    j = lex::skip_ws(b, n);
                    if b.get(j) != Some(&b':') {
                        return Err(LexError {
                            offset: j,
                            reason: "expected ':'",
                        }
                        .into());
                    }
                    j = lex::skip_ws(b, j + 1);
                    let (v, n) = self.value(j, depth + 1)?;
                    members.push((k, v));
                    j = lex::skip_ws(b, n);
                    match b.get(j) {
                        Some(b',') => j = lex::skip_ws(b, j + 1),
                        Some(b'}') => return Ok((JValue::Obj(members), j + 1)),
                        _ => {
                            return Err(LexError {
                                offset: j,
                                reason: "expected ',' or '}'",
                            }
                            .into());
                        }
                    }
                }
            }
            Some(b'[') => {
                if depth >= self.max_depth {
                    return Err(JsonError::TooDeep);
                }
                let mut items = Vec::new();
                let mut j = lex::skip_ws(b, i + 1);
                if b.get(j) == Some(&b']') {
                    return Ok((JValue::Arr(items), j + 1));
                }
                loop {
                    let (v, n) = self.value(j, depth + 1)?;
                    items.push(v);
                    j = lex::skip_ws(b, n);
                    match b.get(j) {
                        Some(b',') => j = lex::skip_ws(b, j + 1),
                        Some(b']') => return Ok((JValue::Arr(items), j + 1)),
                        _ => {
                            return Err(LexError {
                                offset: j,
                                reason: "expected ',' or ']'",
                            }
                            .into());
                        }
                    }
                }
            }
            Some(b'"') => {
                let (s, n) = self.string(i)?;
                Ok((JValue::Str(s), n))
            }
            Some(b't') => Ok((JValue::Bool(true), lex::scan_literal(b, i, b"true")?)),
            Some(b'f') => Ok((JValue::Bool(false), lex::scan_literal(b, i, b"false")?)),
            Some(b'n') => Ok((JValue::Null, lex::scan_literal(b, i, b"null")?)),
            Some(b'-' | b'0'..=b'9') => {
                let n = lex::scan_number(b, i)?;
                // The grammar check guarantees ASCII.
                let text = String::from_utf8(b[i..n].to_vec()).unwrap_or_default();
                Ok((JValue::Num(text), n))
            }
            Some(_) => Err(LexError {
                offset: i,
                reason: "unexpected character",
            }
            .into()),
        }
    }
}

/// Compact JSON text of a value, duplicates and order kept (the canonical display form).
pub(crate) fn to_compact(v: &JValue) -> String {
    let mut out = String::new();
    write_compact(v, &mut out);
    out
}

fn write_compact(v: &JValue, out: &mut String) {
    match v {
        JValue::Null => out.push_str("null"),
        JValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JValue::Num(n) => out.push_str(n),
        JValue::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        JValue::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(item, out);
            }
            out.push(']');
        }
        JValue::Obj(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(k.as_str()).to_string());
                out.push(':');
                write_compact(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicates_in_order() {
        let v = parse(br#"{"a": [1], "a": {"b": true}, "c": null}"#, 8).unwrap();
        let JValue::Obj(m) = v else { panic!() };
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].0, "a");
        assert_eq!(m[1].0, "a");
        assert_eq!(m[0].1, JValue::Arr(vec![JValue::Num("1".into())]));
    }

    #[test]
    fn rejects_bad_json_and_depth() {
        assert!(parse(b"{", 8).is_err());
        assert!(parse(b"{} x", 8).is_err());
        assert!(parse(b"[1,]", 8).is_err());
        assert!(parse(b"{'a':1}", 8).is_err());
        assert_eq!(parse(b"[[[[1]]]]", 3), Err(JsonError::TooDeep));
        assert!(parse(b"[[[1]]]", 3).is_ok());
    }
}
