//! The crate's error types: invalid patterns, unparseable events, rejected trigger configs.

use std::fmt;

/// A pattern was rejected. Displays as `Event pattern is not valid. Reason: <path>: <reason>`,
/// keeping AWS's `InvalidEventPatternException` wording for the reason where AWS has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    path: String,
    reason: String,
}

impl PatternError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        PatternError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The dot-joined pattern path of the offending field (`detail.state`, `$or[1].x`); empty
    /// when the problem is the pattern as a whole.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The reason alone, without the path or the `Event pattern is not valid` preamble.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl std::error::Error for PatternError {}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "Event pattern is not valid. Reason: {}", self.reason)
        } else {
            write!(
                f,
                "Event pattern is not valid. Reason: {}: {}",
                self.path, self.reason
            )
        }
    }
}

/// An event could not be matched because it is not an acceptable JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The bytes are not valid JSON (or not UTF-8); `offset` is the byte where parsing failed.
    #[error("event is not valid json at byte {offset}: {reason}")]
    InvalidJson { offset: usize, reason: &'static str },
    /// The event nests objects and arrays deeper than [`crate::limits::MAX_EVENT_DEPTH`].
    #[error("event nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// The event is valid JSON but its top level is not an object.
    #[error("event must be a json object")]
    NotAnObject,
}

/// A trigger config was rejected. Displays as `<path>: <message>`, for example
/// `triggerConfig.eventVersion: must be "1.0.0", got "2.0"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Dot-joined path of the offending field, rooted at `triggerConfig` or `sourceArn`.
    pub path: String,
    /// Lowercase description of the problem.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Either side of [`crate::test_pattern`] failing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Event(#[from] EventError),
}
