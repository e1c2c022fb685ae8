//! The payload FC sends to an async destination (delivery.md §2): `requestPayload` and
//! `responsePayload` are strings, `timestamp` is Unix milliseconds.

use serde_json::json;

pub struct DestinationRecord<'a> {
    pub timestamp_ms: i64,
    pub request_id: &'a str,
    pub function_arn: &'a str,
    pub qualifier: &'a str,
    /// `Success`, the error type (`UnhandledInvocationError`), or `EventAgeExceeded`.
    pub condition: &'a str,
    pub approximate_invoke_count: u32,
    pub request_payload: &'a [u8],
    pub function_error: Option<&'a str>,
    pub response_payload: &'a [u8],
}

impl DestinationRecord<'_> {
    /// The record, at most `limit` bytes: payloads that would not fit are left out and
    /// replaced by their size and the request id to find them by (the async task keeps the
    /// request; its result is in the task record), so records never nest without bound.
    pub fn to_json_within(&self, limit: usize) -> String {
        let full = self.to_json();
        if full.len() <= limit {
            return full;
        }
        let mut v: serde_json::Value = serde_json::from_str(&full).unwrap_or_default();
        for (key, bytes) in [
            ("requestPayload", self.request_payload.len()),
            ("responsePayload", self.response_payload.len()),
        ] {
            v[key] = json!("");
            v[format!("{key}Omitted")] = json!({
                "reason": format!("the record would exceed the async payload limit of {limit} bytes"),
                "bytes": bytes,
                "requestId": self.request_id,
            });
        }
        v.to_string()
    }

    pub fn to_json(&self) -> String {
        let mut response_context = json!({"statusCode": 200});
        if let Some(e) = self.function_error {
            response_context["functionError"] = json!(e);
        }
        json!({
            "timestamp": self.timestamp_ms,
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": self.function_arn,
                "qualifier": self.qualifier,
                "condition": self.condition,
                "approximateInvokeCount": self.approximate_invoke_count,
            },
            "requestPayload": String::from_utf8_lossy(self.request_payload),
            "responseContext": response_context,
            "responsePayload": String::from_utf8_lossy(self.response_payload),
        })
        .to_string()
    }
}

/// The function name in an `acs:fc:{region}:{uid}:functions/{name}` ARN.
pub fn function_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("acs:fc:")?;
    let (_, name) = rest.rsplit_once(":functions/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parsing() {
        assert_eq!(
            function_of_arn("acs:fc:cn-hangzhou:123:functions/on-ok"),
            Some("on-ok")
        );
        assert_eq!(function_of_arn("acs:fc:::functions/x"), Some("x"));
        assert_eq!(function_of_arn("acs:mns:cn-hangzhou:1:/queues/q"), None);
        assert_eq!(function_of_arn("acs:fc:r:1:functions/"), None);
    }

    #[test]
    fn oversized_records_leave_payloads_out() {
        let big = vec![b'x'; 200_000];
        let r = DestinationRecord {
            timestamp_ms: 1,
            request_id: "req-1",
            function_arn: "acs:fc:cn-hangzhou:1:functions/f",
            qualifier: "LATEST",
            condition: "UnhandledInvocationError",
            approximate_invoke_count: 1,
            request_payload: &big,
            function_error: Some("UnhandledInvocationError"),
            response_payload: b"{}",
        };
        let text = r.to_json_within(128 * 1024);
        assert!(text.len() <= 128 * 1024);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["requestPayload"], "");
        assert_eq!(v["requestPayloadOmitted"]["bytes"], 200_000);
        assert_eq!(v["requestPayloadOmitted"]["requestId"], "req-1");
        assert_eq!(v["requestContext"]["condition"], "UnhandledInvocationError");
        // A small record is unchanged.
        let small = DestinationRecord {
            request_payload: b"{}",
            ..r
        };
        assert_eq!(small.to_json_within(128 * 1024), small.to_json());
    }

    #[test]
    fn record_shape() {
        let r = DestinationRecord {
            timestamp_ms: 1,
            request_id: "r",
            function_arn: "acs:fc:cn-hangzhou:1:functions/f",
            qualifier: "LATEST",
            condition: "UnhandledInvocationError",
            approximate_invoke_count: 4,
            request_payload: b"{\"failure\":true}",
            function_error: Some("UnhandledInvocationError"),
            response_payload: b"{\"errorMessage\":\"x\"}",
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["requestPayload"], "{\"failure\":true}");
        assert_eq!(
            v["responseContext"]["functionError"],
            "UnhandledInvocationError"
        );
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 4);
    }
}
