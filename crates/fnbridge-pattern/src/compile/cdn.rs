//! `cdn_events` triggers: `{"eventName", "eventVersion", "notes"?, "filter": {"domain": [...]}}`
//! compiled to a pattern over one CDN event object (events.md §2).

use serde_json::{Value, json};

use super::config::{Obj, quoted, type_name};
use super::{Compiled, finish};
use crate::error::ConfigError;
use crate::limits::MAX_VALUES_PER_LIST;

/// The eight CDN event names (seed documents 000-002).
pub const CDN_EVENT_NAMES: [&str; 8] = [
    "LogFileCreated",
    "CachedObjectsRefreshed",
    "CachedObjectsPushed",
    "CachedObjectsBlocked",
    "CdnDomainStarted",
    "CdnDomainStopped",
    "CdnDomainAdded",
    "CdnDomainDeleted",
];

const VERSION: &str = "1.0.0";
const ROOT: &str = "triggerConfig";

/// Compiles a `cdn_events` trigger config.
pub fn cdn_events(config: &Value) -> Result<Compiled, ConfigError> {
    let c = Obj::new(config, ROOT)?;
    c.only(&["eventName", "eventVersion", "notes", "filter"])?;

    let name = c.req_str("eventName")?;
    if !CDN_EVENT_NAMES.contains(&name) {
        return Err(ConfigError::new(
            c.at("eventName"),
            format!(
                "must be one of {}, got {}",
                CDN_EVENT_NAMES.join(", "),
                quoted(name)
            ),
        ));
    }

    match c.required("eventVersion")? {
        Value::String(v) if v == VERSION => {}
        Value::String(v) => {
            return Err(ConfigError::new(
                c.at("eventVersion"),
                format!("must be \"{VERSION}\", got {}", quoted(v)),
            ));
        }
        other => {
            return Err(ConfigError::new(
                c.at("eventVersion"),
                format!("must be \"{VERSION}\", got {}", type_name(other)),
            ));
        }
    }

    let notes = c.opt_str("notes")?;

    let Some(filter) = c.opt_obj("filter")? else {
        return Err(ConfigError::new(
            c.at("filter"),
            "required: at least one filter (\"domain\")",
        ));
    };
    filter.only(&["domain"])?;
    let path = filter.at("domain");
    let Value::Array(items) = filter.required("domain")? else {
        return Err(ConfigError::new(
            &path,
            format!(
                "must be an array of domains, got {}",
                type_name(&filter.map["domain"])
            ),
        ));
    };
    if items.is_empty() {
        return Err(ConfigError::new(&path, "must hold at least one domain"));
    }
    if items.len() > MAX_VALUES_PER_LIST {
        return Err(ConfigError::new(
            &path,
            format!("more than {MAX_VALUES_PER_LIST} domains"),
        ));
    }
    let mut domains: Vec<&str> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Value::String(d) = item else {
            return Err(ConfigError::new(
                at,
                format!("must be a string, got {}", type_name(item)),
            ));
        };
        if d.is_empty() {
            return Err(ConfigError::new(at, "must not be empty"));
        }
        if d.len() > 253 || d.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(ConfigError::new(
                at,
                format!("not a domain name: {}", quoted(d)),
            ));
        }
        // FC documents exact domain matching; how a wildcard (`*.example.com`, `.example.com`)
        // matches is unverified, so refuse it rather than store a trigger that never fires.
        if d.contains('*') || d.starts_with('.') {
            return Err(ConfigError::new(
                at,
                format!(
                    "wildcard domain {} is not supported: only exact domains match (list each domain, e.g. \"cdn.example.com\")",
                    quoted(d)
                ),
            ));
        }
        if !domains.contains(&d.as_str()) {
            domains.push(d);
        }
    }

    // The delivered event: {"eventName", "eventSource": "cdn", "eventVersion", "resource": {"domain"}}.
    // Domains match exactly (FC documents exact matching; wildcard domains are unverified).
    let pattern = json!({
        "eventSource": ["cdn"],
        "eventName": [name],
        "eventVersion": [VERSION],
        "resource": { "domain": domains },
    });
    let mut normalized = serde_json::Map::new();
    normalized.insert("eventName".into(), name.into());
    normalized.insert("eventVersion".into(), VERSION.into());
    if let Some(n) = notes {
        normalized.insert("notes".into(), n.into());
    }
    normalized.insert("filter".into(), json!({ "domain": domains }));
    finish(pattern, Value::Object(normalized), &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Value) -> Compiled {
        cdn_events(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(v: Value) -> String {
        cdn_events(&v).unwrap_err().to_string()
    }

    fn event(name: &str, domain: &str) -> String {
        json!({"eventName": name, "eventSource": "cdn", "region": "cn-hangzhou", "eventVersion": "1.0.0",
            "eventTime": "2018-06-14T15:31:49+08:00", "traceId": "c6459282-6a4d-4413-894c-e4ea39686738",
            "userIdentity": {"aliUid": "1234567890123456"}, "resource": {"domain": domain},
            "eventParameter": {"domain": domain, "startTime": 1528959600, "endTime": 1528963200}})
        .to_string()
    }

    #[test]
    fn compiles_and_matches_the_delivered_event() {
        let c = ok(
            json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "notes": "cdn events trigger",
            "filter": {"domain": ["example.com", "b.example.com", "example.com"]}}),
        );
        assert_eq!(
            c.pattern_json,
            r#"{"eventSource":["cdn"],"eventName":["LogFileCreated"],"eventVersion":["1.0.0"],"resource":{"domain":["example.com","b.example.com"]}}"#
        );
        assert_eq!(
            c.normalized_config,
            json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "notes": "cdn events trigger",
                "filter": {"domain": ["example.com", "b.example.com"]}})
        );
        let m = |n: &str, d: &str| c.pattern.matches(event(n, d).as_bytes()).unwrap();
        assert!(m("LogFileCreated", "example.com"));
        assert!(m("LogFileCreated", "b.example.com"));
        assert!(!m("LogFileCreated", "c.example.com"));
        assert!(!m("CdnDomainStarted", "example.com"));
        // Without notes, normalized config has none.
        let c = ok(
            json!({"eventName": "CdnDomainAdded", "eventVersion": "1.0.0", "filter": {"domain": ["a.com"]}}),
        );
        assert!(c.normalized_config.get("notes").is_none());
        for n in CDN_EVENT_NAMES {
            ok(json!({"eventName": n, "eventVersion": "1.0.0", "filter": {"domain": ["a.com"]}}));
        }
    }

    #[test]
    fn rejections() {
        let base = || json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "filter": {"domain": ["a.com"]}});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        let without = |k: &str| {
            let mut b = base();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        assert_eq!(
            err(json!([1])),
            "triggerConfig: must be a json object, got an array"
        );
        assert_eq!(
            err(with("eventVersion", json!("2.0"))),
            r#"triggerConfig.eventVersion: must be "1.0.0", got "2.0""#
        );
        assert_eq!(
            err(with("eventVersion", json!(1))),
            r#"triggerConfig.eventVersion: must be "1.0.0", got a number"#
        );
        assert_eq!(
            err(without("eventVersion")),
            "triggerConfig.eventVersion: required"
        );
        assert_eq!(
            err(without("eventName")),
            "triggerConfig.eventName: required"
        );
        assert!(
            err(with("eventName", json!("LogFileDeleted")))
                .starts_with("triggerConfig.eventName: must be one of LogFileCreated,")
        );
        assert_eq!(
            err(with("eventName", json!(5))),
            "triggerConfig.eventName: must be a string, got a number"
        );
        assert_eq!(
            err(with("notes", json!(5))),
            "triggerConfig.notes: must be a string, got a number"
        );
        assert!(err(with("extra", json!(1))).starts_with("triggerConfig.extra: unknown field"));
        assert!(err(without("filter")).starts_with("triggerConfig.filter: required"));
        assert_eq!(
            err(with("filter", json!([]))),
            "triggerConfig.filter: must be a json object, got an array"
        );
        assert!(
            err(with("filter", json!({"domain": ["a.com"], "path": ["/x"]})))
                .starts_with("triggerConfig.filter.path: unknown field")
        );
        assert_eq!(
            err(with("filter", json!({}))),
            "triggerConfig.filter.domain: required"
        );
        assert_eq!(
            err(with("filter", json!({"domain": "a.com"}))),
            "triggerConfig.filter.domain: must be an array of domains, got a string"
        );
        assert_eq!(
            err(with("filter", json!({"domain": []}))),
            "triggerConfig.filter.domain: must hold at least one domain"
        );
        assert_eq!(
            err(with("filter", json!({"domain": ["a.com", ""]}))),
            "triggerConfig.filter.domain[1]: must not be empty"
        );
        assert_eq!(
            err(with("filter", json!({"domain": [3]}))),
            "triggerConfig.filter.domain[0]: must be a string, got a number"
        );
        assert!(
            err(with("filter", json!({"domain": ["a b.com"]})))
                .starts_with("triggerConfig.filter.domain[0]: not a domain name")
        );
        for w in ["*.example.com", ".example.com", "cdn*.example.com"] {
            let e = err(with("filter", json!({"domain": ["a.com", w]})));
            assert!(
                e.starts_with(&format!(
                    "triggerConfig.filter.domain[1]: wildcard domain \"{w}\" is not supported: only exact domains match"
                )),
                "{e}"
            );
        }
    }
}
