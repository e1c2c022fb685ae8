//! Trigger configs to patterns: one compiler per trigger type, each producing an EventBridge
//! pattern over the exact event that trigger type delivers (shared/reference/events.md), so all
//! triggers go through the one [`crate::Matcher`].
//!
//! - `cdn`: `cdn_events` → one element of the CDN `events` array.
//! - `oss`: `oss` → one element of the OSS `events` array.
//! - `cos`: `cos` → one element of the COS `Records` array (see its module for the key encoding
//!   contract).
//! - `eventbridge`: `eventbridge` → the CloudEvent; the pattern is the user's own.
//! - `keyfilter`: object-key prefix AND suffix as one field's OR-list (shared by `oss` and `cos`).
//! - `config`: typed reads of config objects with path-naming errors.

mod cdn;
mod config;
mod cos;
mod eventbridge;
mod keyfilter;
mod oss;

use serde_json::Value;

use crate::error::ConfigError;
use crate::pattern::Pattern;

pub use cdn::{CDN_EVENT_NAMES, cdn_events};
pub use cos::{COS_EVENT_TYPES, cos, encode_cos_key};
pub use eventbridge::eventbridge;
pub use oss::{OSS_EVENT_TYPES, oss};

/// A compiled trigger config.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub pattern: Pattern,
    /// The compiled pattern as compact JSON, for display.
    pub pattern_json: String,
    /// The config as it should be stored and echoed back.
    pub normalized_config: Value,
}

/// The trigger types that compile to patterns; the dispatcher picks one by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    CdnEvents,
    Oss,
    Cos,
    EventBridge,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 4] = [
        TriggerKind::CdnEvents,
        TriggerKind::Oss,
        TriggerKind::Cos,
        TriggerKind::EventBridge,
    ];

    pub fn from_name(name: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::CdnEvents => "cdn_events",
            TriggerKind::Oss => "oss",
            TriggerKind::Cos => "cos",
            TriggerKind::EventBridge => "eventbridge",
        }
    }

    pub fn compile(
        self,
        config: &Value,
        source_arn: Option<&str>,
    ) -> Result<Compiled, ConfigError> {
        match self {
            TriggerKind::CdnEvents => cdn_events(config),
            TriggerKind::Oss => oss(config, source_arn),
            TriggerKind::Cos => cos(config, source_arn),
            TriggerKind::EventBridge => eventbridge(config),
        }
    }
}

/// Compiles a trigger config of the named type. `config` may also be a JSON string holding the
/// config (FC 3.0 sends `triggerConfig` as a string).
pub fn compile(
    trigger_type: &str,
    config: &Value,
    source_arn: Option<&str>,
) -> Result<Compiled, ConfigError> {
    let Some(kind) = TriggerKind::from_name(trigger_type) else {
        return Err(ConfigError::new(
            "triggerType",
            format!(
                "unsupported trigger type \"{trigger_type}\" (expected one of cdn_events, oss, cos, eventbridge)"
            ),
        ));
    };
    let parsed;
    let config = match config {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| ConfigError::new("triggerConfig", format!("not valid json: {e}")))?;
            &parsed
        }
        other => other,
    };
    kind.compile(config, source_arn)
}

/// Serializes a built pattern and parses it back through [`Pattern::parse`], so compiled
/// patterns take exactly the path user patterns take.
pub(crate) fn finish(
    pattern: Value,
    normalized_config: Value,
    path: &str,
) -> Result<Compiled, ConfigError> {
    let pattern_json = pattern.to_string();
    let pattern =
        Pattern::parse(&pattern_json).map_err(|e| ConfigError::new(path, e.to_string()))?;
    Ok(Compiled {
        pattern,
        pattern_json,
        normalized_config,
    })
}
