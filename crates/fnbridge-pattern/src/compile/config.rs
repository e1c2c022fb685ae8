//! Typed reads of trigger config objects, with errors naming the field path.

use serde_json::{Map, Value};

use crate::error::ConfigError;

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read, with its path for messages.
pub(crate) struct Obj<'a> {
    pub path: String,
    pub map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    pub fn new(v: &'a Value, path: &str) -> Result<Obj<'a>, ConfigError> {
        match v {
            Value::Object(map) => Ok(Obj {
                path: path.to_string(),
                map,
            }),
            other => Err(ConfigError::new(
                path,
                format!("must be a json object, got {}", type_name(other)),
            )),
        }
    }

    pub fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// Rejects keys outside `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        for k in self.map.keys() {
            if !allowed.contains(&k.as_str()) {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ConfigError::new(
                    self.at(k),
                    format!("unknown field (expected {list})"),
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn required(&self, key: &str) -> Result<&'a Value, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError::new(self.at(key), "required"))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ConfigError::new(
                self.at(key),
                format!("must be a string, got {}", type_name(other)),
            )),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.required(key)?;
        Ok(self.opt_str(key)?.unwrap_or_default())
    }

    pub fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, ConfigError> {
        self.get(key)
            .map(|v| Obj::new(v, &self.at(key)))
            .transpose()
    }
}

/// `"text"` quoted for messages, clipped so a huge value cannot flood a log line.
pub(crate) fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return format!("\"{s}\"");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}...\"", &s[..end])
}
