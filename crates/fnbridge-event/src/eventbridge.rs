//! The run options of an `eventbridge` trigger that delivery acts on (fc-api.md §8.3,
//! delivery.md §3), read from a config the pattern compiler has already validated.

use serde_json::Value;

/// `eventSinkConfig.deliveryOption.eventSchema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSchema {
    /// The whole CloudEvent (the default).
    CloudEvents,
    /// Only the CloudEvent's `data`.
    RawData,
}

/// `runOptions.retryStrategy.PushRetryStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRetryStrategy {
    /// Up to 3 retries, each after a uniform random 10-20 s (the default).
    BackoffRetry,
    /// Up to 176 retries: 1, 2, 4, ... 256 s, then 512 s.
    ExponentialDecayRetry,
}

/// `runOptions.batchWindow` of an `event-streaming` trigger: a batch is cut at `count` events
/// or `time_s` seconds after its first event was ready, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchWindow {
    /// `CountBasedWindow`, 1-10000 (default 100).
    pub count: u32,
    /// `TimeBasedWindow`, 0-15 s (default 0: whatever is ready goes at once).
    pub time_s: u64,
}

/// `CountBasedWindow` when an `event-streaming` trigger gives none (a fnbridge choice).
pub const DEFAULT_BATCH_COUNT: u32 = 100;

/// What delivery needs from an `eventbridge` trigger's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// `triggerEnable` (default true): a disabled trigger matches nothing.
    pub enabled: bool,
    pub schema: EventSchema,
    pub strategy: PushRetryStrategy,
    /// `MaximumRetryAttempts`, when given.
    pub max_retries: Option<u32>,
    /// `MaximumEventAgeInSeconds`, when given.
    pub max_age_s: Option<u64>,
    /// `errorsTolerance` is `ALL` (else `NONE`, the default).
    pub tolerate_all: bool,
    /// The bus whose events the trigger matches: `eventBusName` (a fnbridge extension; FC's
    /// triggers are on `default`), else `default`.
    pub bus: String,
    /// `deadLetterQueue.Arn` when it names an EventBridge bus
    /// (`acs:eventbridge:{region}:{account}:eventbus/{name}`): the bus exhausted events are
    /// published to. Other queues (MNS, RocketMQ, Kafka) are fnbridge's own dead-letter queue.
    pub dead_letter_bus: Option<String>,
    /// `mode: event-streaming`: events are delivered in batches (a JSON array); `None` for
    /// `event-driven` (one event per invocation, `batchWindow` ignored).
    pub batch: Option<BatchWindow>,
    /// `asyncInvocationType: true`: the push is an asynchronous invocation, done once enqueued;
    /// the function's async config (retries, maximum age, destinations) then governs a failing
    /// event, not `retryStrategy`/`errorsTolerance`/`deadLetterQueue` (delivery.md §3).
    pub asynchronous: bool,
}

impl RunOptions {
    /// Reads the options of a validated config; anything absent takes FC's default.
    pub fn from_config(c: &Value) -> RunOptions {
        let run = &c["runOptions"];
        let retry = &run["retryStrategy"];
        RunOptions {
            enabled: c["triggerEnable"].as_bool().unwrap_or(true),
            schema: match c["eventSinkConfig"]["deliveryOption"]["eventSchema"].as_str() {
                Some("RawData") => EventSchema::RawData,
                _ => EventSchema::CloudEvents,
            },
            strategy: match retry["PushRetryStrategy"].as_str() {
                Some("EXPONENTIAL_DECAY_RETRY") => PushRetryStrategy::ExponentialDecayRetry,
                _ => PushRetryStrategy::BackoffRetry,
            },
            max_retries: retry["MaximumRetryAttempts"]
                .as_u64()
                .map(|n| n.min(u32::MAX as u64) as u32),
            max_age_s: retry["MaximumEventAgeInSeconds"].as_u64(),
            tolerate_all: run["errorsTolerance"].as_str() == Some("ALL"),
            bus: c["eventBusName"].as_str().unwrap_or("default").to_string(),
            dead_letter_bus: run["deadLetterQueue"]["Arn"]
                .as_str()
                .and_then(dead_letter_bus),
            batch: (run["mode"].as_str() == Some("event-streaming")).then(|| BatchWindow {
                count: run["batchWindow"]["CountBasedWindow"]
                    .as_u64()
                    .map_or(DEFAULT_BATCH_COUNT, |n| n.clamp(1, 10_000) as u32),
                time_s: run["batchWindow"]["TimeBasedWindow"]
                    .as_u64()
                    .map_or(0, |n| n.min(15)),
            }),
            asynchronous: c["asyncInvocationType"].as_bool().unwrap_or(false),
        }
    }
}

/// The bus an EventBridge bus ARN names: `acs:eventbridge:{region}:{account}:eventbus/{name}`
/// (`None` for any other ARN).
pub fn dead_letter_bus(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("acs:eventbridge:")?;
    let mut parts = rest.splitn(3, ':');
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("eventbus/")?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_values() {
        let d = RunOptions::from_config(&json!({"eventRuleFilterPattern": "{}"}));
        assert!(d.enabled);
        assert_eq!(d.schema, EventSchema::CloudEvents);
        assert_eq!(d.strategy, PushRetryStrategy::BackoffRetry);
        assert!(!d.tolerate_all);
        assert_eq!(d.batch, None);
        let o = RunOptions::from_config(&json!({"triggerEnable": false,
            "eventSinkConfig": {"deliveryOption": {"eventSchema": "RawData"}},
            "runOptions": {"errorsTolerance": "ALL", "retryStrategy": {
                "PushRetryStrategy": "EXPONENTIAL_DECAY_RETRY", "MaximumRetryAttempts": 5,
                "MaximumEventAgeInSeconds": 600}}}));
        assert!(!o.enabled);
        assert_eq!(o.schema, EventSchema::RawData);
        assert_eq!(o.strategy, PushRetryStrategy::ExponentialDecayRetry);
        assert_eq!((o.max_retries, o.max_age_s), (Some(5), Some(600)));
        assert!(o.tolerate_all);
        assert_eq!(o.batch, None, "batchWindow is ignored by event-driven");
        assert_eq!(o.dead_letter_bus, None);
        let dl = RunOptions::from_config(&json!({"runOptions": {"deadLetterQueue":
            {"Arn": "acs:eventbridge:cn-hangzhou:123:eventbus/dead"}}}));
        assert_eq!(dl.dead_letter_bus.as_deref(), Some("dead"));
        assert_eq!(dead_letter_bus("acs:mns:cn-hangzhou:123:/queues/dlq"), None);
        assert_eq!(
            dead_letter_bus("acs:eventbridge:cn-hangzhou:123:eventbus/"),
            None
        );
        assert_eq!(
            dead_letter_bus("acs:eventbridge:cn-hangzhou:123:rule/x"),
            None
        );
        let st = RunOptions::from_config(&json!({"runOptions": {"mode": "event-streaming",
            "batchWindow": {"CountBasedWindow": 50, "TimeBasedWindow": 3}}}));
        assert_eq!(
            st.batch,
            Some(BatchWindow {
                count: 50,
                time_s: 3
            })
        );
        let st = RunOptions::from_config(&json!({"runOptions": {"mode": "event-streaming"}}));
        assert_eq!(
            st.batch,
            Some(BatchWindow {
                count: DEFAULT_BATCH_COUNT,
                time_s: 0
            })
        );
    }
}
