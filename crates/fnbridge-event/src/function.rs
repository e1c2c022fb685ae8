//! The stored configuration of a function: one immutable snapshot per code/config revision, with
//! its typed parts parsed once at the edge: the runtime (`Runtime`), the custom-runtime settings
//! (`CustomRuntimeConfig`) and the async-invoke configuration (`AsyncConfig`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A runtime fnbridge runs: Python on a host interpreter, or a custom runtime (any program
/// speaking FC's HTTP protocol). Stored and shown as FC's name (`python3.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Python3,
    Python3_9,
    Python3_10,
    Python3_12,
    Custom,
    CustomDebian10,
    CustomDebian11,
    CustomDebian12,
}

impl Runtime {
    pub const ALL: [Runtime; 8] = [
        Runtime::Python3,
        Runtime::Python3_9,
        Runtime::Python3_10,
        Runtime::Python3_12,
        Runtime::Custom,
        Runtime::CustomDebian10,
        Runtime::CustomDebian11,
        Runtime::CustomDebian12,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python3 => "python3",
            Runtime::Python3_9 => "python3.9",
            Runtime::Python3_10 => "python3.10",
            Runtime::Python3_12 => "python3.12",
            Runtime::Custom => "custom",
            Runtime::CustomDebian10 => "custom.debian10",
            Runtime::CustomDebian11 => "custom.debian11",
            Runtime::CustomDebian12 => "custom.debian12",
        }
    }

    pub fn parse(s: &str) -> Option<Runtime> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_python(self) -> bool {
        matches!(
            self,
            Runtime::Python3 | Runtime::Python3_9 | Runtime::Python3_10 | Runtime::Python3_12
        )
    }

    pub fn is_custom(self) -> bool {
        !self.is_python()
    }

    /// The names, for messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|r| r.as_str()).collect()
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Runtime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Runtime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Runtime::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown runtime '{s}'")))
    }
}

/// `customRuntimeConfig` (fc-api.md §5), checked once when a function is created or updated.
/// Absent fields take FC's defaults where the runtime starts the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomRuntimeConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfig>,
}

/// `customRuntimeConfig.healthCheckConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
}

impl CustomRuntimeConfig {
    /// Parses and checks the JSON a client sent; the message names the field at fault.
    pub fn parse(v: &serde_json::Value) -> Result<CustomRuntimeConfig, String> {
        let f = "customRuntimeConfig";
        let Some(o) = v.as_object() else {
            return Err(format!("{f}: must be an object"));
        };
        for (k, val) in o {
            match k.as_str() {
                "command" | "args" => {
                    let ok = val.as_array().is_some_and(|a| {
                        a.len() <= 64
                            && a.iter()
                                .all(|s| s.as_str().is_some_and(|s| s.len() <= 4096))
                    });
                    if !ok {
                        return Err(format!("{f}.{k}: must be a list of at most 64 strings"));
                    }
                }
                "port" => {
                    if !val.as_u64().is_some_and(|p| (1..=65535).contains(&p)) {
                        return Err(format!(
                            "{f}.port: {val} must be a port number between 1 and 65535"
                        ));
                    }
                }
                "healthCheckConfig" => {
                    let Some(h) = val.as_object() else {
                        return Err(format!("{f}.healthCheckConfig: must be an object"));
                    };
                    for (hk, hv) in h {
                        let range = match hk.as_str() {
                            "httpGetUrl" => {
                                if !hv
                                    .as_str()
                                    .is_some_and(|s| s.starts_with('/') || s.starts_with("http://"))
                                {
                                    return Err(format!(
                                        "{f}.healthCheckConfig.httpGetUrl: must be a path such as /ready"
                                    ));
                                }
                                continue;
                            }
                            "initialDelaySeconds" => 0..=120,
                            "periodSeconds" => 1..=120,
                            "timeoutSeconds" => 1..=3,
                            "failureThreshold" | "successThreshold" => 1..=120,
                            other => {
                                return Err(format!(
                                    "{f}.healthCheckConfig: unknown field '{other}'"
                                ));
                            }
                        };
                        if !hv.as_u64().is_some_and(|n| range.contains(&n)) {
                            return Err(format!(
                                "{f}.healthCheckConfig.{hk}: {hv} must be between {} and {}",
                                range.start(),
                                range.end()
                            ));
                        }
                    }
                }
                other => return Err(format!("{f}: unknown field '{other}'")),
            }
        }
        serde_json::from_value(v.clone()).map_err(|e| format!("{f}: {e}"))
    }
}

/// A function destination of an async config (`{"destination": "acs:fc:...:functions/x"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub destination: String,
}

/// `destinationConfig` of an async config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Destination>,
}

impl DestinationConfig {
    /// Every destination named, success first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.on_success
            .iter()
            .chain(self.on_failure.iter())
            .map(|d| d.destination.as_str())
    }
}

/// The async-invoke configuration of a function and qualifier (fc-api.md §10), as stored and
/// shown (`PutAsyncInvokeConfig`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncConfig {
    pub max_async_retry_attempts: u32,
    pub max_async_event_age_in_seconds: u64,
    #[serde(default)]
    pub async_task: bool,
    #[serde(default)]
    pub destination_config: DestinationConfig,
    pub function_arn: String,
    pub qualifier: String,
    pub created_time: String,
    pub last_modified_time: String,
}

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
    pub runtime: Runtime,
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
    /// `customRuntimeConfig` (custom runtimes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_runtime_config: Option<CustomRuntimeConfig>,
    /// `disableInjectCredentials`: where the role's credentials are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_inject_credentials: Option<DisableInjectCredentials>,
    /// FC settings fnbridge accepts, keeps and echoes but does not act on (`vpcConfig`,
    /// `logConfig`, `tags`, ...), by their FC name, so code written for FC deploys unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fc_settings: BTreeMap<String, serde_json::Value>,
    pub code_size: u64,
    pub code_checksum: String,
    /// Changes whenever code or configuration changes; names the unpacked code directory and
    /// the warm instance pool, so an update never serves a request with half-old state.
    pub revision: String,
    pub created_time: String,
    pub last_modified_time: String,
}

/// FC's `disableInjectCredentials`: `Env` leaves the role's credentials out of the
/// `ALIBABA_CLOUD_*` variables, `Request` out of `context.credentials` and the `x-fc-*` key
/// headers, `All` out of both; `None` (the default) injects them everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisableInjectCredentials {
    None,
    Env,
    Request,
    All,
}

impl DisableInjectCredentials {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "None" => Self::None,
            "Env" => Self::Env,
            "Request" => Self::Request,
            "All" => Self::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Env => "Env",
            Self::Request => "Request",
            Self::All => "All",
        }
    }

    /// Whether the credentials go into the environment.
    pub fn env(self) -> bool {
        matches!(self, Self::None | Self::Request)
    }

    /// Whether the credentials go into each request (context, headers).
    pub fn request(self) -> bool {
        matches!(self, Self::None | Self::Env)
    }
}

impl FunctionConfig {
    /// Whether the role's credentials go into the environment.
    pub fn credentials_in_env(&self) -> bool {
        self.disable_inject_credentials.is_none_or(|d| d.env())
    }

    /// Whether the role's credentials go into each request.
    pub fn credentials_in_request(&self) -> bool {
        self.disable_inject_credentials.is_none_or(|d| d.request())
    }

    pub fn is_python(&self) -> bool {
        self.runtime.is_python()
    }

    pub fn is_custom(&self) -> bool {
        self.runtime.is_custom()
    }

    pub fn arn(&self, region: &str, account_id: &str) -> String {
        format!(
            "acs:fc:{region}:{account_id}:functions/{}",
            self.function_name
        )
    }
}
