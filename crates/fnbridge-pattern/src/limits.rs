//! Every size, depth and count bound of the crate, in one place so the docs and the checks agree.
//!
//! The bounds keep a hostile pattern or event from costing unbounded memory, stack or time: every
//! recursive walk is depth-limited, every list is length-limited, and `$or` expansion is capped
//! before it can multiply.

/// Largest pattern text accepted by [`crate::Pattern::parse`], in bytes.
pub const MAX_PATTERN_BYTES: usize = 64 * 1024;

/// Deepest nesting of objects and arrays in a pattern (the pattern's own JSON, not event paths).
pub const MAX_PATTERN_DEPTH: usize = 32;

/// Most values in one field's list (`"f": [v1, v2, ...]`) and in one `anything-but` list.
pub const MAX_VALUES_PER_LIST: usize = 1024;

/// Most branches one pattern may expand to after `$or` is multiplied out (each branch is one
/// conjunction of field conditions). AWS bounds the same product; the exact AWS figure is not
/// published, this one is ours.
pub const MAX_OR_BRANCHES: usize = 256;

/// Most `*` characters in one `wildcard` value (also inside `anything-but`).
///
/// This is fnbridge's documented wildcard complexity limit. AWS rejects some wildcard-heavy
/// patterns (for example `*:*:*:*:*:event-bus/*`) as "too complex" after analysing its automaton;
/// fnbridge uses this plain count instead, which bounds the work of matching one value against one
/// wildcard to O(value length x stars).
pub const MAX_WILDCARD_STARS: usize = 5;

/// Deepest nesting of objects and arrays accepted in an event; deeper events are rejected with
/// [`crate::EventError::TooDeep`] rather than risking the stack.
pub const MAX_EVENT_DEPTH: usize = 128;
