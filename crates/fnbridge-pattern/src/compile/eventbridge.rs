//! `eventbridge` triggers: the pattern is the user's own `eventRuleFilterPattern` (a JSON string
//! holding an EventBridge pattern over the CloudEvent); the run options fnbridge acts on
//! (`triggerEnable`, `eventSchema`, `mode`, `errorsTolerance`, `retryStrategy`, `batchWindow`)
//! are checked here too, so a trigger never stores a value delivery would have to guess at.

use serde_json::Value;

use super::Compiled;
use super::config::{Obj, type_name};
use crate::error::ConfigError;
use crate::pattern::Pattern;

const ROOT: &str = "triggerConfig";

/// Extracts and validates `eventRuleFilterPattern` from a whole `eventbridge` trigger config. The
/// pattern may be given as a string (the FC form) or as an object, which is stored as a string.
pub fn eventbridge(config: &Value) -> Result<Compiled, ConfigError> {
    let c = Obj::new(config, ROOT)?;
    let path = c.at("eventRuleFilterPattern");
    let text = match c.required("eventRuleFilterPattern")? {
        Value::String(s) => s.clone(),
        v @ Value::Object(_) => v.to_string(),
        other => {
            return Err(ConfigError::new(
                &path,
                format!(
                    "must be a string holding a json pattern, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    let pattern = Pattern::parse(&text).map_err(|e| ConfigError::new(&path, e.to_string()))?;
    run_options(&c)?;
    let mut normalized = config.clone();
    normalized["eventRuleFilterPattern"] = Value::String(text);
    Ok(Compiled {
        pattern_json: pattern.to_compact_json(),
        pattern,
        normalized_config: normalized,
    })
}

/// Checks the options delivery reads (fc-api.md §8.3, delivery.md §3); the rest is stored and
/// echoed as given.
fn run_options(c: &Obj<'_>) -> Result<(), ConfigError> {
    if let Some(v) = c.get("eventBusName")
        && !v.is_string()
    {
        return Err(ConfigError::new(
            c.at("eventBusName"),
            format!("must be a string, got {}", type_name(v)),
        ));
    }
    for key in ["triggerEnable", "asyncInvocationType"] {
        if let Some(v) = c.get(key)
            && !v.is_boolean()
        {
            return Err(ConfigError::new(
                c.at(key),
                format!("must be a boolean, got {}", type_name(v)),
            ));
        }
    }
    if let Some(sink) = c.opt_obj("eventSinkConfig")?
        && let Some(opt) = sink.opt_obj("deliveryOption")?
    {
        one_of(&opt, "eventSchema", &["CloudEvents", "RawData"])?;
    }
    let Some(run) = c.opt_obj("runOptions")? else {
        return Ok(());
    };
    one_of(&run, "mode", &["event-driven", "event-streaming"])?;
    one_of(&run, "errorsTolerance", &["NONE", "ALL"])?;
    if let Some(retry) = run.opt_obj("retryStrategy")? {
        one_of(
            &retry,
            "PushRetryStrategy",
            &["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"],
        )?;
        int_in(&retry, "MaximumRetryAttempts", 0, 176)?;
        int_in(&retry, "MaximumEventAgeInSeconds", 1, 86_400)?;
    }
    if let Some(dlq) = run.opt_obj("deadLetterQueue")? {
        let arn = match dlq.required("Arn")? {
            Value::String(s) if !s.is_empty() => s,
            other => {
                return Err(ConfigError::new(
                    dlq.at("Arn"),
                    format!("must be a non-empty string, got {}", type_name(other)),
                ));
            }
        };
        if arn.starts_with("acs:eventbridge:") && !is_bus_arn(arn) {
            return Err(ConfigError::new(
                dlq.at("Arn"),
                format!(
                    "an EventBridge dead-letter target is a bus: acs:eventbridge:{{region}}:{{accountId}}:eventbus/{{name}}, got {}",
                    super::config::quoted(arn)
                ),
            ));
        }
    }
    if let Some(w) = run.opt_obj("batchWindow")? {
        int_in(&w, "CountBasedWindow", 1, 10_000)?;
        int_in(&w, "TimeBasedWindow", 0, 15)?;
    }
    Ok(())
}

/// `acs:eventbridge:{region}:{account}:eventbus/{name}`, name 1-127 of `[A-Za-z0-9_.-]`.
fn is_bus_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(5, ':');
    let (Some(_), Some(_), Some(_), Some(_), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    resource.strip_prefix("eventbus/").is_some_and(|n| {
        (1..=127).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    })
}

fn one_of(o: &Obj<'_>, key: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    match o.opt_str(key)? {
        Some(v) if !allowed.contains(&v) => Err(ConfigError::new(
            o.at(key),
            format!(
                "must be one of {}, got {}",
                allowed.join(", "),
                super::config::quoted(v)
            ),
        )),
        _ => Ok(()),
    }
}

fn int_in(o: &Obj<'_>, key: &str, lo: u64, hi: u64) -> Result<(), ConfigError> {
    match o.get(key) {
        None => Ok(()),
        Some(v) => match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(()),
            _ => Err(ConfigError::new(
                o.at(key),
                format!("must be an integer from {lo} to {hi}, got {v}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(pattern: Value) -> Value {
        json!({"triggerEnable": true, "asyncInvocationType": false, "eventRuleFilterPattern": pattern,
            "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
            "eventSinkConfig": {"deliveryOption": {"eventSchema": "CloudEvents", "concurrency": 1}},
            "runOptions": {"mode": "event-driven", "errorsTolerance": "ALL"}})
    }

    #[test]
    fn takes_the_pattern_as_is() {
        let text = "{\"source\":[\"acs.oss\"],\n \"type\":[\"oss:ObjectCreated:PutObject\"],\"subject\":[{\"prefix\":\"acs:oss:cn-hangzhou:1234567890123456:my-bucket/src/\"}]}";
        let c = eventbridge(&config(json!(text))).unwrap();
        assert_eq!(c.pattern.as_str(), text);
        assert_eq!(
            c.pattern_json,
            r#"{"source":["acs.oss"],"type":["oss:ObjectCreated:PutObject"],"subject":[{"prefix":"acs:oss:cn-hangzhou:1234567890123456:my-bucket/src/"}]}"#
        );
        assert_eq!(c.normalized_config, config(json!(text)));
        let ev = json!({"id": "a1", "source": "acs.oss", "specversion": "1.0", "type": "oss:ObjectCreated:PutObject",
            "subject": "acs:oss:cn-hangzhou:1234567890123456:my-bucket/src/a.txt", "data": {"eventName": "ObjectCreated:PutObject"}});
        assert!(c.pattern.matches(ev.to_string().as_bytes()).unwrap());

        // An object pattern is accepted and stored as a string.
        let c = eventbridge(&config(json!({"source": ["acs.oss"]}))).unwrap();
        assert_eq!(
            c.normalized_config["eventRuleFilterPattern"],
            json!(r#"{"source":["acs.oss"]}"#)
        );
    }

    #[test]
    fn rejections() {
        let e = eventbridge(&config(json!("{\"source\": \"acs.oss\"}")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "triggerConfig.eventRuleFilterPattern: Event pattern is not valid. Reason: source: \"source\" must be an object or an array"
        );
        let e = eventbridge(&config(json!("not json")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("triggerConfig.eventRuleFilterPattern: Event pattern is not valid. Reason: invalid json"), "{e}");
        let e = eventbridge(&config(json!(5))).unwrap_err().to_string();
        assert_eq!(
            e,
            "triggerConfig.eventRuleFilterPattern: must be a string holding a json pattern, got a number"
        );
        let e = eventbridge(&json!({"triggerEnable": true}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "triggerConfig.eventRuleFilterPattern: required");
        assert_eq!(
            eventbridge(&json!("x")).unwrap_err().to_string(),
            "triggerConfig: must be a json object, got a string"
        );
        let p = json!("{\"source\":[\"acs.oss\"]}");
        let with = |k: &str, v: Value| {
            let mut c = config(p.clone());
            c["runOptions"][k] = v;
            eventbridge(&c).unwrap_err().to_string()
        };
        assert_eq!(
            with("errorsTolerance", json!("SOME")),
            "triggerConfig.runOptions.errorsTolerance: must be one of NONE, ALL, got \"SOME\""
        );
        assert_eq!(
            with("retryStrategy", json!({"PushRetryStrategy": "FAST"})),
            "triggerConfig.runOptions.retryStrategy.PushRetryStrategy: must be one of BACKOFF_RETRY, EXPONENTIAL_DECAY_RETRY, got \"FAST\""
        );
        assert_eq!(
            with(
                "deadLetterQueue",
                json!({"Arn": "acs:eventbridge:cn-hangzhou:1:eventbus/"})
            ),
            "triggerConfig.runOptions.deadLetterQueue.Arn: an EventBridge dead-letter target is a bus: acs:eventbridge:{region}:{accountId}:eventbus/{name}, got \"acs:eventbridge:cn-hangzhou:1:eventbus/\""
        );
        assert_eq!(
            with("deadLetterQueue", json!({"Arn": 5})),
            "triggerConfig.runOptions.deadLetterQueue.Arn: must be a non-empty string, got a number"
        );
        assert_eq!(
            with("deadLetterQueue", json!({})),
            "triggerConfig.runOptions.deadLetterQueue.Arn: required"
        );
        let mut dlq = config(p.clone());
        dlq["runOptions"]["deadLetterQueue"] =
            json!({"Arn": "acs:eventbridge:cn-hangzhou:1234567890123456:eventbus/dead"});
        assert!(eventbridge(&dlq).is_ok());
        dlq["runOptions"]["deadLetterQueue"] =
            json!({"Arn": "acs:mns:cn-hangzhou:1234567890123456:/queues/dlq"});
        assert!(eventbridge(&dlq).is_ok(), "other queues are kept as given");
        let mut streaming = config(p.clone());
        streaming["runOptions"]["mode"] = json!("event-streaming");
        streaming["runOptions"]["batchWindow"] =
            json!({"CountBasedWindow": 10_000, "TimeBasedWindow": 15});
        assert!(
            eventbridge(&streaming).is_ok(),
            "event-streaming is accepted"
        );
        assert_eq!(
            with("mode", json!("batch")),
            "triggerConfig.runOptions.mode: must be one of event-driven, event-streaming, got \"batch\""
        );
        assert_eq!(
            with("batchWindow", json!({"CountBasedWindow": 0})),
            "triggerConfig.runOptions.batchWindow.CountBasedWindow: must be an integer from 1 to 10000, got 0"
        );
        assert_eq!(
            with("batchWindow", json!({"TimeBasedWindow": 16})),
            "triggerConfig.runOptions.batchWindow.TimeBasedWindow: must be an integer from 0 to 15, got 16"
        );
        let mut c = config(p.clone());
        c["triggerEnable"] = json!("yes");
        assert_eq!(
            eventbridge(&c).unwrap_err().to_string(),
            "triggerConfig.triggerEnable: must be a boolean, got a string"
        );
        let mut c = config(p);
        c["eventSinkConfig"]["deliveryOption"]["eventSchema"] = json!("Xml");
        assert!(eventbridge(&c).is_err());
    }
}
