//! EventBridge-style event patterns for fnbridge: parsing and validation, a matcher index for many
//! patterns, and the compilers that turn each trigger type's config into a pattern. No I/O.
//!
//! Every trigger type compiles to one pattern over the exact event it delivers, and one
//! [`Matcher`] holds the patterns of all triggers: adding a trigger type means writing a compiler,
//! not a new matching path.
//!
//! ```
//! use fnbridge_pattern::{Matcher, Pattern};
//!
//! let p = Pattern::parse(r#"{"source": ["acs.oss"], "data": {"size": [{"numeric": [">", 100]}]}}"#).unwrap();
//! let event = br#"{"source": "acs.oss", "data": {"size": 512}}"#;
//! assert!(p.matches(event).unwrap());
//!
//! let m = Matcher::new();
//! m.insert(7, &p);
//! assert_eq!(m.matches(event).unwrap(), vec![7]);
//! ```
//!
//! # Layout
//! - `limits`: every size, depth and count bound.
//! - `error`: [`PatternError`], [`EventError`], [`ConfigError`] and the umbrella [`Error`].
//! - `lex`: byte-level JSON lexing (strings, numbers, literals) shared by both parsers, plus the
//!   quote/bracket scanning of the trusted path.
//! - `json`: the pattern JSON tree parser that keeps duplicate keys in order.
//! - `value`: comparable forms of values: canonical decimals, doubles, case folding, IP addresses.
//! - `wildcard`: wildcard parsing and matching.
//! - `pattern`: [`Pattern`] and its compiled model (branches, conditions, operators, semantics).
//! - `parse`: pattern text to branches, with AWS's validation rules and wording.
//! - `flatten`: the single-pass event walker that reports leaf values under requested paths,
//!   validating (`walk`) or trusting serializer output and skipping unnamed subtrees by bracket
//!   counting (`walk_trusted`, behind [`Matcher::matches_trusted`]), and stopping early once all
//!   named paths are seen (behind [`Matcher::matches_serialized`]).
//! - `serialized`: [`Serialized`], event text plus the facts (no dotted keys, depth) recorded
//!   while serializing that make stopping early exact.
//! - `probe`: [`Probe`] and [`Capture`], the values at a few fixed object paths, the depth and
//!   repeated keys, reported by the validating walk of [`Matcher::matches_probed_into`] so that a
//!   caller validating an event's shape reads its bytes once.
//! - `consistent`: array consistency (fields named inside an array of objects come from one
//!   element), decided over a tree of the event when the walk saw such an array.
//! - `naive`: one-pattern-at-a-time evaluation over a fully flattened event ([`FullEvent`]).
//! - `index`: the [`Matcher`] index (segments, condition tries, per-field value indexes).
//! - `compile`: trigger config to pattern compilers (`cdn_events`, `oss`, `cos`, `eventbridge`).

pub mod compile;
mod consistent;
mod error;
mod flatten;
mod index;
mod json;
mod lex;
pub mod limits;
mod naive;
mod parse;
mod pattern;
mod probe;
mod serialized;
mod value;
mod wildcard;

pub use error::{ConfigError, Error, EventError, PatternError};
pub use index::{MAX_SEGMENTS, MERGE_RATIO, Matcher, Session};
pub use naive::FullEvent;
pub use pattern::Pattern;
pub use probe::{Capture, Captured, JsonKind, MAX_TRACKED_MEMBERS, Probe};
pub use serialized::Serialized;
pub use wildcard::escape as escape_wildcard;

/// Tests one pattern against one event (the `fnbridge pattern test` command): `Ok(true)` for a
/// match, `Ok(false)` for none, `Err` when either input is invalid.
pub fn test_pattern(pattern_text: &str, event_text: &str) -> Result<bool, Error> {
    let pattern = Pattern::parse(pattern_text)?;
    Ok(pattern.matches(event_text.as_bytes())?)
}
