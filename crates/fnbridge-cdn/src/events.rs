//! The eight CDN events (events.md §2) as `BusEvent`s: the common envelope (`eventSource`
//! `cdn`, `eventVersion` `1.0.0`, `eventTime` in Beijing time, a UUID `traceId`) around each
//! event's `eventParameter`.

use fnbridge_event::{BusEvent, EventSource};
use serde_json::{Map, Value, json};

/// Who and where: the account and CDN region the events name.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
}

/// A random RFC 4122 version-4 UUID.
pub fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `2018-06-14T15:31:49+08:00` for Unix seconds `s`: CDN events use Beijing time.
pub fn beijing_time(s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(s)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    let f =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+08:00");
    t.format(&f).unwrap_or_default()
}

/// One CDN event for `domain` with its `eventParameter`.
pub fn event(id: &Identity, name: &str, domain: &str, parameter: Value, now_s: i64) -> BusEvent {
    let trace = uuid();
    let body = json!({
        "eventName": name,
        "eventSource": "cdn",
        "region": id.region,
        "eventVersion": "1.0.0",
        "eventTime": beijing_time(now_s),
        "traceId": trace,
        "userIdentity": {"aliUid": id.account_id},
        "resource": {"domain": domain},
        "eventParameter": parameter,
    });
    let body: Map<String, Value> = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    BusEvent {
        source: EventSource::Cdn,
        id: trace,
        name: name.to_string(),
        body,
        s3: None,
    }
}

/// `CdnDomainAdded`, `CdnDomainDeleted`: `{"domain"}`.
pub fn domain_event(id: &Identity, name: &str, domain: &str, now_s: i64) -> BusEvent {
    event(id, name, domain, json!({"domain": domain}), now_s)
}

/// `CdnDomainStarted` (`online`), `CdnDomainStopped` (`offline`).
pub fn status_event(id: &Identity, started: bool, domain: &str, now_s: i64) -> BusEvent {
    let (name, status) = if started {
        ("CdnDomainStarted", "online")
    } else {
        ("CdnDomainStopped", "offline")
    };
    event(
        id,
        name,
        domain,
        json!({"domain": domain, "status": status}),
        now_s,
    )
}

/// `CachedObjectsRefreshed`, `CachedObjectsPushed`, `CachedObjectsBlocked`: one domain's URL
/// paths of a completed task.
#[allow(clippy::too_many_arguments)]
pub fn objects_event(
    id: &Identity,
    name: &str,
    domain: &str,
    task_id: i64,
    object_type: &str,
    paths: &[String],
    create_s: i64,
    complete_s: i64,
) -> BusEvent {
    event(
        id,
        name,
        domain,
        json!({
            "domain": domain, "taskId": task_id, "objectType": object_type,
            "objectPath": paths, "createTime": create_s, "completeTime": complete_s,
        }),
        complete_s,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope() {
        let id = Identity {
            region: "cn-hangzhou".into(),
            account_id: "123".into(),
        };
        let e = status_event(&id, false, "example.com", 1521180769);
        let v = Value::Object(e.body);
        assert_eq!(v["eventName"], "CdnDomainStopped");
        assert_eq!(v["eventParameter"]["status"], "offline");
        assert_eq!(v["eventTime"], "2018-03-16T14:12:49+08:00");
        assert_eq!(v["userIdentity"]["aliUid"], "123");
        assert_eq!(v["traceId"].as_str().unwrap().len(), 36);
    }
}
