//! The events an object change produces, byte-shaped as events.md says: the native OSS event
//! (§3) for `oss` triggers, the COS `Records` message (§4) for `cos` triggers, and the S3
//! `Records` 2.1 record (§5) for triggers with `"payloadFormat": "s3"`, and the `acs.oss`
//! CloudEvent (§6) the change publishes to the `default` bus for `eventbridge` triggers.

use std::sync::atomic::{AtomicU64, Ordering};

use fnbridge_event::{BusEvent, EventSource};
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

/// The operation that changed an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Post,
    Copy,
    Append,
    InitiateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    Delete,
    DeleteObjects,
    AbortMultipartUpload,
}

impl Op {
    /// The native OSS `eventName` (no `oss:` prefix).
    pub fn oss_name(self) -> &'static str {
        match self {
            Op::Put => "ObjectCreated:PutObject",
            Op::Post => "ObjectCreated:PostObject",
            Op::Copy => "ObjectCreated:CopyObject",
            Op::Append => "ObjectCreated:AppendObject",
            Op::InitiateMultipartUpload => "ObjectCreated:InitiateMultipartUpload",
            Op::UploadPart => "ObjectCreated:UploadPart",
            Op::UploadPartCopy => "ObjectCreated:UploadPartCopy",
            Op::CompleteMultipartUpload => "ObjectCreated:CompleteMultipartUpload",
            Op::Delete => "ObjectRemoved:DeleteObject",
            Op::DeleteObjects => "ObjectRemoved:DeleteObjects",
            Op::AbortMultipartUpload => "ObjectRemoved:AbortMultipartUpload",
        }
    }

    /// The COS event name, for the operations COS notifies (events.md §4). An append is a
    /// `Put` there (COS has no append notification).
    pub fn cos_name(self) -> Option<&'static str> {
        match self {
            Op::Put | Op::Append => Some("cos:ObjectCreated:Put"),
            Op::Post => Some("cos:ObjectCreated:Post"),
            Op::Copy => Some("cos:ObjectCreated:Copy"),
            Op::CompleteMultipartUpload => Some("cos:ObjectCreated:CompleteMultipartUpload"),
            Op::Delete | Op::DeleteObjects => Some("cos:ObjectRemove:Delete"),
            _ => None,
        }
    }

    /// The S3 event name (no `s3:` prefix), for the operations S3 notifies.
    pub fn s3_name(self) -> Option<&'static str> {
        match self {
            Op::Put | Op::Append => Some("ObjectCreated:Put"),
            Op::Post => Some("ObjectCreated:Post"),
            Op::Copy => Some("ObjectCreated:Copy"),
            Op::CompleteMultipartUpload => Some("ObjectCreated:CompleteMultipartUpload"),
            Op::Delete | Op::DeleteObjects => Some("ObjectRemoved:Delete"),
            _ => None,
        }
    }

    fn is_removal(self) -> bool {
        matches!(
            self,
            Op::Delete | Op::DeleteObjects | Op::AbortMultipartUpload
        )
    }
}

/// Who the store says it is in events (the FC account and region of the deployment).
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
    /// The COS region events name (`ap-guangzhou`); its short code goes in `cosBucket.region`.
    pub cos_region: String,
}

/// One change, as the events describe it.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub op: Op,
    pub bucket: &'a str,
    pub key: &'a str,
    /// The object's size after the change (0 for removals).
    pub size: u64,
    /// New size minus old size.
    pub delta: i64,
    /// Lower-case hex MD5 (`{hex}-{n}` for multipart objects); empty when there is none.
    pub etag: &'a str,
    pub content_type: &'a str,
    /// User metadata, names without their protocol prefix.
    pub meta: &'a [(String, String)],
    pub request_id: &'a str,
    pub source_ip: &'a str,
    pub time_ms: i64,
}

fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// The OSS event of a change (events.md §3).
pub fn oss_event(id: &Identity, c: &Change<'_>) -> Map<String, Value> {
    let user_meta: Map<String, Value> = c
        .meta
        .iter()
        .map(|(k, v)| (format!("x-oss-meta-{k}"), Value::String(v.clone())))
        .collect();
    let mut object = json!({
        "deltaSize": c.delta,
        "eTag": c.etag.to_ascii_uppercase(),
        "key": c.key,
        "size": c.size,
    });
    if !c.op.is_removal() {
        object["objectMeta"] = json!({"mimeType": c.content_type, "userMeta": user_meta});
    }
    let rule = hex::encode(Sha1::digest(format!("fnbridge-oss-rule:{}", c.bucket)));
    let v = json!({
        "eventName": c.op.oss_name(),
        "eventSource": "acs:oss",
        "eventTime": iso_ms(c.time_ms),
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": format!("acs:oss:{}:{}:{}", id.region, id.account_id, c.bucket),
                "name": c.bucket,
                "ownerIdentity": id.account_id,
                "virtualBucket": "",
            },
            "object": object,
            "ossSchemaVersion": "1.0",
            "ruleId": rule,
        },
        "region": id.region,
        "requestParameters": {"sourceIPAddress": c.source_ip},
        "responseElements": {"requestId": c.request_id},
        "userIdentity": {"principalId": id.account_id},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The `acs.oss` CloudEvent of a change on the `default` bus (events.md §6): CloudEvents 1.0
/// attributes and Alibaba's extensions, `data` the native OSS event without `ruleId` (no
/// notification rule is involved on the bus). `aliyunpublishaddr` is left out, as the reference
/// says it sometimes is: fnbridge has no publisher address worth giving.
pub fn cloud_event(id: &Identity, c: &Change<'_>, publish_ms: i64) -> Map<String, Value> {
    let mut data = oss_event(id, c);
    if let Some(Value::Object(oss)) = data.get_mut("oss") {
        oss.remove("ruleId");
    }
    // One id per event: a multi-delete is one request with many events.
    let event_id = if c.op == Op::DeleteObjects {
        let h = Sha1::digest(format!("{}\n{}", c.request_id, c.key));
        hex::encode_upper(&h[..12])
    } else {
        c.request_id.to_string()
    };
    let v = json!({
        "id": event_id,
        "source": "acs.oss",
        "specversion": "1.0",
        "type": format!("oss:{}", c.op.oss_name()),
        "subject": format!("acs:oss:{}:{}:{}/{}", id.region, id.account_id, c.bucket, c.key),
        "time": iso_ms(c.time_ms),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": id.account_id,
        "aliyunoriginalaccountid": id.account_id,
        "aliyuneventbusname": "default",
        "aliyunregionid": id.region,
        "aliyunpublishtime": iso_ms(publish_ms),
        "data": data,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// COS's short region code (`ap-chengdu` → `cd`); unknown regions keep their full name.
fn cos_short_region(region: &str) -> &str {
    match region {
        "ap-chengdu" => "cd",
        "ap-guangzhou" => "gz",
        "ap-beijing" => "bj",
        "ap-shanghai" => "sh",
        "ap-chongqing" => "cq",
        "ap-nanjing" => "nj",
        "ap-hongkong" => "hk",
        "ap-singapore" => "sg",
        other => other,
    }
}

/// `{name}-{appid}` split as COS spells buckets; a bucket without an appid suffix uses the
/// account id as its appid.
fn cos_bucket<'a>(bucket: &'a str, account: &'a str) -> (&'a str, &'a str) {
    match bucket.rsplit_once('-') {
        Some((name, appid))
            if !name.is_empty()
                && !appid.is_empty()
                && appid.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (name, appid)
        }
        _ => (bucket, account),
    }
}

/// The COS record of a change (events.md §4), if COS notifies its operation.
pub fn cos_record(id: &Identity, c: &Change<'_>) -> Option<Map<String, Value>> {
    let name = c.op.cos_name()?;
    let (short, appid) = cos_bucket(c.bucket, &id.account_id);
    // The same encoding the `cos` trigger compiler writes its filters in.
    let enc = fnbridge_pattern::compile::encode_cos_key(c.key);
    let host = if c.bucket.ends_with(&format!("-{appid}")) {
        c.bucket.to_string()
    } else {
        format!("{}-{appid}", c.bucket)
    };
    let mut meta = Map::new();
    meta.insert("x-cos-request-id".into(), c.request_id.into());
    meta.insert("Content-Type".into(), c.content_type.into());
    for (k, v) in c.meta {
        meta.insert(format!("x-cos-meta-{k}"), v.clone().into());
    }
    // COS's `reqid` is an integer; derived from the request id so redeliveries agree.
    let digest = Sha1::digest(c.request_id.as_bytes());
    let reqid = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3] & 0x7f]);
    let v = json!({
        "cos": {
            "cosSchemaVersion": "1.0",
            "cosObject": {
                "url": format!("http://{host}.cos.{}.myqcloud.com/{enc}", id.cos_region),
                "meta": meta,
                "vid": "",
                "key": format!("/{appid}/{short}/{enc}"),
                "size": c.size,
            },
            "cosBucket": {"region": cos_short_region(&id.cos_region), "name": short, "appid": appid},
            "cosNotificationId": "unkown",
        },
        "event": {
            "eventName": name,
            "eventVersion": "1.0",
            "eventTime": c.time_ms / 1000,
            "eventSource": "qcs::cos",
            "requestParameters": {"requestSourceIP": c.source_ip, "requestHeaders": {}},
            "eventQueue": format!("qcs:0:scf:{}:appid/{appid}:default", cos_short_region(&id.cos_region)),
            "reservedInfo": "",
            "reqid": reqid,
        }
    });
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` encoding of a key, as S3 events carry it.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

static SEQUENCER: AtomicU64 = AtomicU64::new(0);

/// The S3 record of a change (events.md §5), if S3 notifies its operation.
pub fn s3_record(id: &Identity, c: &Change<'_>) -> Option<Map<String, Value>> {
    let name = c.op.s3_name()?;
    // Orders events for one key: time, then a process-wide counter.
    let seq = ((c.time_ms as u64) << 16) | (SEQUENCER.fetch_add(1, Ordering::Relaxed) & 0xffff);
    let mut object =
        json!({"key": form_encode(c.key), "eTag": c.etag, "sequencer": format!("{seq:018X}")});
    if !c.op.is_removal() {
        object["size"] = json!(c.size);
    }
    let v = json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": id.region,
        "eventTime": iso_ms(c.time_ms),
        "eventName": name,
        "userIdentity": {"principalId": id.account_id},
        "requestParameters": {"sourceIPAddress": c.source_ip},
        "responseElements": {"x-amz-request-id": c.request_id, "x-amz-id-2": c.request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "fnbridge",
            "bucket": {"name": c.bucket, "ownerIdentity": {"principalId": id.account_id},
                       "arn": format!("arn:aws:s3:::{}", c.bucket)},
            "object": object,
        }
    });
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Every event of a change: the OSS event (with its S3 form), its `acs.oss` CloudEvent on the
/// `default` bus, and the COS record when COS notifies the operation.
pub fn bus_events(id: &Identity, c: &Change<'_>) -> Vec<BusEvent> {
    let s3 = s3_record(id, c);
    let cloud = cloud_event(id, c, fnbridge_store::now_ms());
    let mut out = vec![
        BusEvent {
            source: EventSource::Oss,
            id: c.request_id.to_string(),
            name: c.op.oss_name().to_string(),
            body: oss_event(id, c),
            s3: s3.clone(),
        },
        BusEvent {
            source: EventSource::CloudEvent,
            id: cloud
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            name: format!("oss:{}", c.op.oss_name()),
            body: cloud,
            s3: None,
        },
    ];
    if let Some(rec) = cos_record(id, c) {
        out.push(BusEvent {
            source: EventSource::Cos,
            id: c.request_id.to_string(),
            name: c.op.cos_name().unwrap_or_default().to_string(),
            body: rec,
            s3,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            region: "cn-hangzhou".into(),
            account_id: "1234567890123456".into(),
            cos_region: "ap-chengdu".into(),
        }
    }

    fn change(op: Op, key: &str) -> Change<'_> {
        Change {
            op,
            bucket: "testpic-1253970026",
            key,
            size: 5,
            delta: 5,
            etag: "5d41402abc4b2a76b9719d911017c592",
            content_type: "image/jpeg",
            meta: &[],
            request_id: "5C3D9175B6FC201293AD4890",
            source_ip: "127.0.0.1",
            time_ms: 1_795_348_800_123,
        }
    }

    #[test]
    fn oss_event_has_the_documented_fields() {
        let e = Value::Object(oss_event(&id(), &change(Op::Put, "uploads/a b+c.jpg")));
        assert_eq!(e["eventName"], "ObjectCreated:PutObject");
        assert_eq!(e["eventSource"], "acs:oss");
        assert_eq!(e["eventTime"], "2026-11-22T12:00:00.123Z");
        assert_eq!(
            e["oss"]["object"]["eTag"],
            "5D41402ABC4B2A76B9719D911017C592"
        );
        assert_eq!(e["oss"]["object"]["key"], "uploads/a b+c.jpg");
        assert_eq!(
            e["oss"]["bucket"]["arn"],
            "acs:oss:cn-hangzhou:1234567890123456:testpic-1253970026"
        );
        assert_eq!(
            e["responseElements"]["requestId"],
            "5C3D9175B6FC201293AD4890"
        );
        assert_eq!(e["oss"]["ruleId"].as_str().unwrap().len(), 40);
    }

    #[test]
    fn cos_record_matches_a_cos_trigger() {
        let rec = cos_record(&id(), &change(Op::Put, "filterdir/a b.jpg")).unwrap();
        let v = Value::Object(rec);
        assert_eq!(
            v["cos"]["cosObject"]["key"],
            "/1253970026/testpic/filterdir/a%20b.jpg"
        );
        assert_eq!(
            v["cos"]["cosObject"]["url"],
            "http://testpic-1253970026.cos.ap-chengdu.myqcloud.com/filterdir/a%20b.jpg"
        );
        assert_eq!(v["event"]["eventTime"], 1_795_348_800);
        assert_eq!(v["cos"]["cosBucket"]["region"], "cd");
    }

    #[test]
    fn s3_keys_are_form_encoded() {
        let rec = s3_record(&id(), &change(Op::Put, "uploads/red flower+1.jpg")).unwrap();
        assert_eq!(rec["s3"]["object"]["key"], "uploads/red+flower%2B1.jpg");
    }

    #[test]
    fn cloud_event_is_the_documented_envelope() {
        let c = change(Op::Put, "input/file.csv");
        let e = Value::Object(cloud_event(&id(), &c, 1_795_348_800_456));
        let mut data = Value::Object(oss_event(&id(), &c));
        data["oss"].as_object_mut().unwrap().remove("ruleId");
        assert_eq!(
            e,
            json!({
                "id": "5C3D9175B6FC201293AD4890",
                "source": "acs.oss",
                "specversion": "1.0",
                "type": "oss:ObjectCreated:PutObject",
                "subject": "acs:oss:cn-hangzhou:1234567890123456:testpic-1253970026/input/file.csv",
                "time": "2026-11-22T12:00:00.123Z",
                "datacontenttype": "application/json;charset=utf-8",
                "aliyunaccountid": "1234567890123456",
                "aliyunoriginalaccountid": "1234567890123456",
                "aliyuneventbusname": "default",
                "aliyunregionid": "cn-hangzhou",
                "aliyunpublishtime": "2026-11-22T12:00:00.456Z",
                "data": data,
            })
        );
        // Each key of a multi-delete has an id of its own.
        let a = cloud_event(&id(), &change(Op::DeleteObjects, "a"), 0);
        let b = cloud_event(&id(), &change(Op::DeleteObjects, "b"), 0);
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["id"].as_str().unwrap().len(), 24);
    }
}
