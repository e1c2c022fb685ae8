//! The stored configuration of a trigger: which function it invokes and the config its matcher
//! pattern is compiled from.

use serde::{Deserialize, Serialize};

/// Trigger types fnbridge implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TriggerType {
    #[serde(rename = "cdn_events")]
    CdnEvents,
    #[serde(rename = "oss")]
    Oss,
    #[serde(rename = "cos")]
    Cos,
    #[serde(rename = "eventbridge")]
    EventBridge,
}

impl TriggerType {
    pub const ALL: [TriggerType; 4] = [
        TriggerType::CdnEvents,
        TriggerType::Oss,
        TriggerType::Cos,
        TriggerType::EventBridge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::CdnEvents => "cdn_events",
            TriggerType::Oss => "oss",
            TriggerType::Cos => "cos",
            TriggerType::EventBridge => "eventbridge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A trigger as fnbridge keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerConfig {
    pub trigger_id: String,
    pub trigger_name: String,
    pub function_name: String,
    pub trigger_type: TriggerType,
    /// The normalized config, as the compiler accepted it.
    pub trigger_config: serde_json::Value,
    pub qualifier: String,
    #[serde(default)]
    pub source_arn: Option<String>,
    #[serde(default)]
    pub invocation_role: Option<String>,
    #[serde(default)]
    pub description: String,
    pub created_time: String,
    pub last_modified_time: String,
}
