//! The stored configuration of a function: one immutable snapshot per code/config revision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An initializer or PreStop hook (`instanceLifecycleConfig.initializer` / `.preStop`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleHook {
    pub handler: String,
    pub timeout: u32,
}

/// A function as fnbridge keeps it. Field names follow FC so the API can echo them, but this is
/// the domain type; the wire DTOs live in `fnbridge-api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionConfig {
    pub function_id: String,
    pub function_name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_size: u32,
    pub timeout: u32,
    pub instance_concurrency: u32,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_access: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initializer: Option<LifecycleHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHook>,
    /// `customRuntimeConfig` as given (custom runtimes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_runtime_config: Option<serde_json::Value>,
    pub code_size: u64,
    pub code_checksum: String,
    /// Changes whenever code or configuration changes; names the unpacked code directory and
    /// the warm instance pool, so an update never serves a request with half-old state.
    pub revision: String,
    pub created_time: String,
    pub last_modified_time: String,
}

impl FunctionConfig {
    pub fn is_python(&self) -> bool {
        self.runtime.starts_with("python3")
    }

    pub fn is_custom(&self) -> bool {
        self.runtime == "custom" || self.runtime.starts_with("custom.")
    }

    pub fn arn(&self, region: &str, account_id: &str) -> String {
        format!(
            "acs:fc:{region}:{account_id}:functions/{}",
            self.function_name
        )
    }
}

/// Runtimes fnbridge runs today: Python on the host's python3, and custom runtimes (any
/// program speaking FC's HTTP protocol).
pub const SUPPORTED_RUNTIMES: [&str; 8] = [
    "python3",
    "python3.9",
    "python3.10",
    "python3.12",
    "custom",
    "custom.debian10",
    "custom.debian11",
    "custom.debian12",
];
