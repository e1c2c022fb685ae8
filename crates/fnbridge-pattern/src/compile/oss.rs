//! `oss` triggers: `{"events": ["oss:ObjectCreated:PutObject", ...], "filter": {"key": {"prefix",
//! "suffix"}}}` plus the bucket from `sourceArn`, compiled to a pattern over one element of the
//! OSS `events` array (events.md §3), whose `eventName` has no `oss:` prefix.

use serde_json::{Map, Value, json};

use super::config::{Obj, quoted, type_name};
use super::keyfilter::{check_affix, key_values};
use super::{Compiled, finish};
use crate::error::ConfigError;
use crate::limits::MAX_VALUES_PER_LIST;

/// The OSS event types a native trigger may name, by family (FC doc "OSS触发器概述"). Each
/// family also accepts `*` (every type of the family).
pub const OSS_EVENT_TYPES: [(&str, &[&str]); 4] = [
    (
        "ObjectCreated",
        &[
            "PutObject",
            "PostObject",
            "CopyObject",
            "PutSymlink",
            "AppendObject",
            "InitiateMultipartUpload",
            "UploadPart",
            "UploadPartCopy",
            "CompleteMultipartUpload",
        ],
    ),
    (
        "ObjectRemoved",
        &["DeleteObject", "DeleteObjects", "AbortMultipartUpload"],
    ),
    ("ObjectModified", &["UpdateObjectMeta"]),
    (
        "ObjectReplication",
        &["ObjectCreated", "ObjectModified", "ObjectRemoved"],
    ),
];

const ROOT: &str = "triggerConfig";

/// The bucket named by an OSS source ARN `acs:oss:{region}:{accountId}:{bucket}`.
pub(crate) fn oss_arn_bucket(arn: &str) -> Result<&str, ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["acs", "oss", _region, _uid, bucket] if !bucket.is_empty() && !bucket.contains('/') => {
            Ok(bucket)
        }
        _ => Err(ConfigError::new(
            "sourceArn",
            format!(
                "must look like \"acs:oss:{{region}}:{{accountId}}:{{bucket}}\", got {}",
                quoted(arn)
            ),
        )),
    }
}

/// Checks one configured event name; returns the pattern value matching its delivered form.
fn event_value(path: &str, name: &str) -> Result<Value, ConfigError> {
    let bad = || {
        let families: Vec<&str> = OSS_EVENT_TYPES.iter().map(|(f, _)| *f).collect();
        ConfigError::new(
            path,
            format!(
                "unknown oss event {} (expected oss:{{{}}}:{{type}} or oss:{{family}}:*)",
                quoted(name),
                families.join(",")
            ),
        )
    };
    let Some(rest) = name.strip_prefix("oss:") else {
        return Err(ConfigError::new(
            path,
            format!("must start with \"oss:\", got {}", quoted(name)),
        ));
    };
    let (family, kind) = rest.split_once(':').ok_or_else(bad)?;
    let (_, kinds) = OSS_EVENT_TYPES
        .iter()
        .find(|(f, _)| *f == family)
        .ok_or_else(bad)?;
    if kind == "*" {
        // Delivered names drop the `oss:` prefix: `ObjectCreated:PutObject`.
        Ok(json!({ "prefix": format!("{family}:") }))
    } else if kinds.contains(&kind) {
        Ok(Value::String(rest.to_string()))
    } else {
        Err(bad())
    }
}

/// The optional `payloadFormat` (fc-api.md §8.5, fnbridge extension): `"s3"` delivers the S3
/// `Records` 2.1 shape instead of the trigger type's native one.
pub(crate) fn payload_format<'a>(c: &Obj<'a>) -> Result<Option<&'a str>, ConfigError> {
    match c.opt_str("payloadFormat")? {
        None => Ok(None),
        Some(f @ ("s3" | "native")) => Ok(Some(f)),
        Some(other) => Err(ConfigError::new(
            c.at("payloadFormat"),
            format!("must be \"s3\" or \"native\", got {}", quoted(other)),
        )),
    }
}

/// Compiles an `oss` trigger config; `source_arn` names the bucket to watch.
pub fn oss(config: &Value, source_arn: Option<&str>) -> Result<Compiled, ConfigError> {
    let c = Obj::new(config, ROOT)?;
    c.only(&["events", "filter", "payloadFormat"])?;
    let format = payload_format(&c)?;

    let path = c.at("events");
    let Value::Array(items) = c.required("events")? else {
        return Err(ConfigError::new(
            &path,
            format!(
                "must be an array of event names, got {}",
                type_name(&c.map["events"])
            ),
        ));
    };
    if items.is_empty() {
        return Err(ConfigError::new(&path, "must hold at least one event name"));
    }
    if items.len() > MAX_VALUES_PER_LIST {
        return Err(ConfigError::new(
            &path,
            format!("more than {MAX_VALUES_PER_LIST} event names"),
        ));
    }
    let mut events: Vec<&str> = Vec::new();
    let mut names: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Value::String(name) = item else {
            return Err(ConfigError::new(
                at,
                format!("must be a string, got {}", type_name(item)),
            ));
        };
        let v = event_value(&at, name)?;
        if !events.contains(&name.as_str()) {
            events.push(name);
            names.push(v);
        }
    }

    let (mut prefix, mut suffix) = ("", "");
    if let Some(filter) = c.opt_obj("filter")? {
        filter.only(&["key"])?;
        if let Some(key) = filter.opt_obj("key")? {
            key.only(&["prefix", "suffix"])?;
            prefix = key.opt_str("prefix")?.unwrap_or_default();
            suffix = key.opt_str("suffix")?.unwrap_or_default();
            check_affix(&key.at("prefix"), prefix)?;
            check_affix(&key.at("suffix"), suffix)?;
        }
    }
    let key_path = format!("{ROOT}.filter.key");
    let identity = |s: &str| s.to_string();
    let key = key_values(&key_path, "", prefix, suffix, &identity, false)?;

    let mut oss = Map::new();
    if let Some(arn) = source_arn {
        oss.insert("bucket".into(), json!({ "name": [oss_arn_bucket(arn)?] }));
    }
    if let Some(values) = key {
        oss.insert("object".into(), json!({ "key": values }));
    }
    let mut pattern = Map::new();
    pattern.insert("eventSource".into(), json!(["acs:oss"]));
    pattern.insert("eventName".into(), Value::Array(names));
    if !oss.is_empty() {
        pattern.insert("oss".into(), Value::Object(oss));
    }
    let mut normalized =
        json!({ "events": events, "filter": { "key": { "prefix": prefix, "suffix": suffix } } });
    if let Some(f) = format {
        normalized["payloadFormat"] = Value::String(f.to_string());
    }
    finish(Value::Object(pattern), normalized, &key_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "acs:oss:cn-hangzhou:1234567890123456:testbucket";

    fn event(name: &str, bucket: &str, key: &str) -> String {
        json!({"eventName": name, "eventSource": "acs:oss", "eventTime": "2022-08-13T06:45:43.000Z",
            "eventVersion": "1.0",
            "oss": {"bucket": {"arn": format!("acs:oss:cn-hangzhou:1234567890123456:{bucket}"), "name": bucket,
                               "ownerIdentity": "1234567890123456", "virtualBucket": ""},
                    "object": {"deltaSize": 122539, "eTag": "688A7BF4F233DC9C88A80BF985AB7329", "key": key,
                               "size": 122539, "objectMeta": {"mimeType": "image/png"}},
                    "ossSchemaVersion": "1.0", "ruleId": "9adac8e253828f4f7c0466d941fa3db81161e853"},
            "region": "cn-hangzhou", "requestParameters": {"sourceIPAddress": "140.205.128.221"},
            "responseElements": {"requestId": "58F9FF2D3DF792092E12044C"},
            "userIdentity": {"principalId": "1234567890123456"}})
        .to_string()
    }

    fn compile(v: Value, arn: Option<&str>) -> Compiled {
        oss(&v, arn).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(v: Value, arn: Option<&str>) -> String {
        oss(&v, arn).unwrap_err().to_string()
    }

    #[test]
    fn prefix_and_suffix_are_anded() {
        let c = compile(
            json!({"events": ["oss:ObjectCreated:PutObject", "oss:ObjectRemoved:*"],
                "filter": {"key": {"prefix": "source/", "suffix": ".zip"}}}),
            Some(ARN),
        );
        assert_eq!(
            c.pattern_json,
            r#"{"eventSource":["acs:oss"],"eventName":["ObjectCreated:PutObject",{"prefix":"ObjectRemoved:"}],"oss":{"bucket":{"name":["testbucket"]},"object":{"key":[{"wildcard":"source/*.zip"}]}}}"#
        );
        let m = |n: &str, b: &str, k: &str| c.pattern.matches(event(n, b, k).as_bytes()).unwrap();
        assert!(m("ObjectCreated:PutObject", "testbucket", "source/a.zip"));
        assert!(m(
            "ObjectRemoved:DeleteObject",
            "testbucket",
            "source/x/y.zip"
        ));
        assert!(!m("ObjectCreated:PostObject", "testbucket", "source/a.zip"));
        assert!(!m("ObjectCreated:PutObject", "other", "source/a.zip"));
        assert!(!m("ObjectCreated:PutObject", "testbucket", "source/a.png"));
        assert!(!m("ObjectCreated:PutObject", "testbucket", "other/a.zip"));
        // A key only the prefix OR only the suffix would accept.
        assert!(!m("ObjectCreated:PutObject", "testbucket", "a.zip"));
        assert_eq!(
            c.normalized_config,
            json!({"events": ["oss:ObjectCreated:PutObject", "oss:ObjectRemoved:*"],
                "filter": {"key": {"prefix": "source/", "suffix": ".zip"}}})
        );
    }

    #[test]
    fn overlapping_prefix_and_suffix_and_escaping() {
        let c = compile(
            json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "logs/", "suffix": "/"}}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(event("ObjectCreated:PutObject", "b", k).as_bytes())
                .unwrap()
        };
        assert!(m("logs/"));
        assert!(m("logs/2024/"));
        assert!(!m("logs/x"));
        assert!(!m("log/"));
        let c = compile(
            json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "a*", "suffix": "\\z"}}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(event("ObjectCreated:PutObject", "b", k).as_bytes())
                .unwrap()
        };
        assert!(m("a*x\\z"));
        assert!(m("a*\\z"));
        assert!(!m("abc\\z"));
    }

    #[test]
    fn single_sided_and_empty_filters() {
        let ev = |k: &str| event("ObjectCreated:PutObject", "testbucket", k);
        let c = compile(
            json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "in/"}}}),
            Some(ARN),
        );
        assert!(c.pattern.matches(ev("in/a").as_bytes()).unwrap());
        assert!(!c.pattern.matches(ev("out/a").as_bytes()).unwrap());
        let c = compile(
            json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"suffix": ".png"}}}),
            Some(ARN),
        );
        assert!(c.pattern.matches(ev("x.png").as_bytes()).unwrap());
        assert!(!c.pattern.matches(ev("x.jpg").as_bytes()).unwrap());
        let c = compile(
            json!({"events": ["oss:ObjectCreated:*"], "filter": {"key": {"prefix": "", "suffix": ""}}}),
            None,
        );
        assert_eq!(
            c.pattern_json,
            r#"{"eventSource":["acs:oss"],"eventName":[{"prefix":"ObjectCreated:"}]}"#
        );
        let c = compile(json!({"events": ["oss:ObjectCreated:*"]}), None);
        assert_eq!(
            c.normalized_config["filter"],
            json!({"key": {"prefix": "", "suffix": ""}})
        );
    }

    #[test]
    fn rejections() {
        let ev = || json!({"events": ["oss:ObjectCreated:PutObject"]});
        assert_eq!(
            err(json!("x"), None),
            "triggerConfig: must be a json object, got a string"
        );
        assert_eq!(err(json!({}), None), "triggerConfig.events: required");
        assert_eq!(
            err(json!({"events": []}), None),
            "triggerConfig.events: must hold at least one event name"
        );
        assert_eq!(
            err(json!({"events": "oss:ObjectCreated:*"}), None),
            "triggerConfig.events: must be an array of event names, got a string"
        );
        assert_eq!(
            err(json!({"events": [1]}), None),
            "triggerConfig.events[0]: must be a string, got a number"
        );
        assert_eq!(
            err(json!({"events": ["ObjectCreated:PutObject"]}), None),
            r#"triggerConfig.events[0]: must start with "oss:", got "ObjectCreated:PutObject""#
        );
        assert!(
            err(json!({"events": ["oss:ObjectCreated:Nope"]}), None)
                .starts_with("triggerConfig.events[0]: unknown oss event")
        );
        assert!(
            err(json!({"events": ["oss:Bogus:*"]}), None)
                .starts_with("triggerConfig.events[0]: unknown oss event")
        );
        assert!(
            err(json!({"events": ["oss:ObjectCreated"]}), None)
                .starts_with("triggerConfig.events[0]: unknown oss event")
        );
        let mut v = ev();
        v["extra"] = json!(1);
        assert!(err(v, None).starts_with("triggerConfig.extra: unknown field"));
        let mut v = ev();
        v["filter"] = json!({"key": {"prefix": 1}});
        assert_eq!(
            err(v, None),
            "triggerConfig.filter.key.prefix: must be a string, got a number"
        );
        let mut v = ev();
        v["filter"] = json!({"key": {"regex": "x"}});
        assert!(err(v, None).starts_with("triggerConfig.filter.key.regex: unknown field"));
        let mut v = ev();
        v["filter"] = json!({"name": {}});
        assert!(err(v, None).starts_with("triggerConfig.filter.name: unknown field"));
        let mut v = ev();
        v["filter"] = json!({"key": {"suffix": "x".repeat(2000)}});
        assert_eq!(
            err(v, None),
            "triggerConfig.filter.key.suffix: longer than 1024 bytes"
        );
        let mut v = ev();
        v["filter"] = json!({"key": {"prefix": "a".repeat(100), "suffix": "a".repeat(100)}});
        assert!(err(v, None).starts_with("triggerConfig.filter.key: prefix and suffix overlap"));
        assert!(
            err(ev(), Some("acs:oss:cn-hangzhou:123")).starts_with("sourceArn: must look like")
        );
        assert!(
            err(ev(), Some("acs:cdn:cn-hangzhou:123:b")).starts_with("sourceArn: must look like")
        );
        assert!(
            err(ev(), Some("acs:oss:cn-hangzhou:123:")).starts_with("sourceArn: must look like")
        );
    }
}
