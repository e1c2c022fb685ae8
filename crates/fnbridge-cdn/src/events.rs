//! The eight CDN events (events.md §2) as `BusEvent`s: the common envelope (`eventSource`
//! `cdn`, `eventVersion` `1.0.0`, `eventTime` in Beijing time, a UUID `traceId`) around each
//! event's `eventParameter`; and the `acs.cdn` CloudEvent (events.md §6) each of them is also
//! published as on the `default` bus, for `eventbridge` triggers (`with_cloud_events`).

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

/// `2026-03-11T05:40:45.000Z` for Unix milliseconds `ms` (CloudEvents' `time` form).
fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// The `acs.cdn` CloudEvent of a native CDN event (events.md §6, modelled on the `acs.oss` one):
/// `id` the event's `traceId`, `type` `cdn:` + its name, `subject` the domain's ARN
/// (`acs:cdn:{region}:{uid}:domain/{domain}`, cdn.md §10), `time` its `eventTime` in UTC, and
/// `data` the native event object itself. `None` for an event that is not a CDN one.
pub fn cloud_event(id: &Identity, native: &BusEvent, publish_ms: i64) -> Option<BusEvent> {
    if native.source != EventSource::Cdn {
        return None;
    }
    let b = &native.body;
    let domain = b
        .get("resource")
        .and_then(|r| r.get("domain"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let time_ms = b
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(publish_ms);
    let v = json!({
        "id": native.id,
        "source": "acs.cdn",
        "specversion": "1.0",
        "type": format!("cdn:{}", native.name),
        "subject": format!("acs:cdn:{}:{}:domain/{domain}", id.region, id.account_id),
        "time": iso_ms(time_ms),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": id.account_id,
        "aliyunoriginalaccountid": id.account_id,
        "aliyuneventbusname": "default",
        "aliyunregionid": id.region,
        "aliyunpublishtime": iso_ms(publish_ms),
        "data": Value::Object(b.clone()),
    });
    let Value::Object(body) = v else { return None };
    Some(BusEvent {
        source: EventSource::CloudEvent,
        id: native.id.clone(),
        name: format!("cdn:{}", native.name),
        body,
        s3: None,
    })
}

/// `events` and, after each CDN event, its `acs.cdn` CloudEvent: what a CDN change commits, so
/// that `cdn_events` and `eventbridge` triggers see it in the same transaction.
pub fn with_cloud_events(id: &Identity, events: Vec<BusEvent>, publish_ms: i64) -> Vec<BusEvent> {
    let mut out = Vec::with_capacity(events.len() * 2);
    for e in events {
        let cloud = cloud_event(id, &e, publish_ms);
        out.push(e);
        out.extend(cloud);
    }
    out
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

    #[test]
    fn cloud_event_wraps_the_native_event() {
        let id = Identity {
            region: "cn-hangzhou".into(),
            account_id: "123".into(),
        };
        let native = status_event(&id, true, "example.com", 1521180769);
        let all = with_cloud_events(&id, vec![native.clone()], 1_521_180_770_123);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], native);
        let c = Value::Object(all[1].body.clone());
        assert_eq!(all[1].source, EventSource::CloudEvent);
        assert_eq!(c["id"], native.id.as_str());
        assert_eq!(c["source"], "acs.cdn");
        assert_eq!(c["type"], "cdn:CdnDomainStarted");
        assert_eq!(c["subject"], "acs:cdn:cn-hangzhou:123:domain/example.com");
        assert_eq!(c["time"], "2018-03-16T06:12:49.000Z");
        assert_eq!(c["aliyunpublishtime"], "2018-03-16T06:12:50.123Z");
        assert_eq!(c["data"], Value::Object(native.body));
    }
}
