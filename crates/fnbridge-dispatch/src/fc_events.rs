//! The `acs.fc` CloudEvents a function's lifecycle publishes on the `default` bus (created,
//! updated, deleted, version published), committed by the registry service in the same write
//! as the change. Modelled on the event types Alibaba's Function Compute publishes to
//! EventBridge (`fc:Function:CreateSuccess`, `fc:Function:UpdateSuccess`,
//! `fc:Function:DeleteSuccess`; `fc:Version:PublishSuccess` is fnbridge's name for a published
//! version) with the attributes of the `acs.oss` event (events.md §6). `data` names the
//! function and its code, never its environment variables (they may hold secrets).

use fnbridge_event::{BusEvent, EventSource, FunctionConfig};
use serde_json::{Map, Value, json};

use crate::cloudevents::DEFAULT_BUS;
use crate::ids;

/// What happened to a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Created,
    Updated,
    Deleted,
    VersionPublished,
}

impl Lifecycle {
    /// The CloudEvent `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            Lifecycle::Created => "fc:Function:CreateSuccess",
            Lifecycle::Updated => "fc:Function:UpdateSuccess",
            Lifecycle::Deleted => "fc:Function:DeleteSuccess",
            Lifecycle::VersionPublished => "fc:Version:PublishSuccess",
        }
    }

    /// The FC API action that made the change (`data.eventName`).
    pub fn action(self) -> &'static str {
        match self {
            Lifecycle::Created => "CreateFunction",
            Lifecycle::Updated => "UpdateFunction",
            Lifecycle::Deleted => "DeleteFunction",
            Lifecycle::VersionPublished => "PublishFunctionVersion",
        }
    }
}

fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// One lifecycle event of `function` (`config` as it is after the change, or as it was for a
/// deletion; `version` for a published version).
pub fn event(
    region: &str,
    account_id: &str,
    what: Lifecycle,
    function: &str,
    config: Option<&FunctionConfig>,
    version: Option<(u64, &str)>,
    now_ms: i64,
) -> BusEvent {
    let arn = format!("acs:fc:{region}:{account_id}:functions/{function}");
    let request_id = ids::request_id();
    let mut data = Map::new();
    data.insert("eventName".into(), what.action().into());
    data.insert("eventSource".into(), "acs:fc".into());
    data.insert("eventTime".into(), iso_ms(now_ms).into());
    data.insert("region".into(), region.into());
    data.insert("accountId".into(), account_id.into());
    data.insert("requestId".into(), request_id.clone().into());
    data.insert("functionName".into(), function.into());
    data.insert("functionArn".into(), arn.clone().into());
    if let Some(c) = config {
        data.insert("functionId".into(), c.function_id.clone().into());
        data.insert("runtime".into(), c.runtime.as_str().into());
        data.insert("handler".into(), c.handler.clone().into());
        data.insert("codeChecksum".into(), c.code_checksum.clone().into());
        data.insert("codeSize".into(), c.code_size.into());
        data.insert(
            "lastModifiedTime".into(),
            c.last_modified_time.clone().into(),
        );
    }
    if let Some((v, description)) = version {
        data.insert("versionId".into(), v.to_string().into());
        data.insert("description".into(), description.into());
    }
    let body = json!({
        "id": request_id,
        "source": "acs.fc",
        "specversion": "1.0",
        "type": what.event_type(),
        "subject": arn,
        "time": iso_ms(now_ms),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": account_id,
        "aliyunoriginalaccountid": account_id,
        "aliyuneventbusname": DEFAULT_BUS,
        "aliyunregionid": region,
        "aliyunpublishtime": iso_ms(now_ms),
        "data": data,
    });
    let body = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    BusEvent {
        source: EventSource::CloudEvent,
        id: request_id,
        name: what.event_type().to_string(),
        body,
        s3: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_names_the_function() {
        let e = event(
            "cn-hangzhou",
            "123",
            Lifecycle::Deleted,
            "f",
            None,
            None,
            1_795_312_463_000,
        );
        let v = Value::Object(e.body);
        assert_eq!(v["type"], "fc:Function:DeleteSuccess");
        assert_eq!(v["subject"], "acs:fc:cn-hangzhou:123:functions/f");
        assert_eq!(v["data"]["eventName"], "DeleteFunction");
        assert_eq!(v["data"]["functionName"], "f");
        assert_eq!(v["id"], v["data"]["requestId"]);
        assert_eq!(e.id, v["id"].as_str().unwrap());
        assert!(v["data"].get("runtime").is_none());
    }
}
