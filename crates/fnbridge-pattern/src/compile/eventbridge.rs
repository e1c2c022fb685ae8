//! `eventbridge` triggers: the pattern is the user's own `eventRuleFilterPattern` (a JSON string
//! holding an EventBridge pattern over the CloudEvent); the rest of the config is validated by
//! the API layer.

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
    let mut normalized = config.clone();
    normalized["eventRuleFilterPattern"] = Value::String(text);
    Ok(Compiled {
        pattern_json: pattern.to_compact_json(),
        pattern,
        normalized_config: normalized,
    })
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
    }
}
