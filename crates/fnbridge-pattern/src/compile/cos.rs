//! `cos` triggers (fnbridge extension, Tencent SCF's COS `TriggerDesc`): `{"bucketUrl"?,
//! "event", "filter"?: {"Prefix"?, "Suffix"?}}`, compiled to a pattern over one element of the
//! COS `Records` array (events.md §4).
//!
//! # Key encoding contract
//!
//! `cos.cosObject.key` is `/{appid}/{bucket}/{key}` with the object key percent-encoded, and
//! `cos.cosObject.url` ends with the same encoded key. Filters are written on raw keys, so the
//! compiler encodes them with [`encode_cos_key`]; the COS event builder must encode with the same
//! function. Percent-encoding is prefix-free, so a raw prefix match is exactly an encoded prefix
//! match. It is not suffix-free: the encoded suffix `1.log` also ends `x%21.log` (raw `x!.log`),
//! where its first character is the tail of an escape. When an encoded suffix starts with a hex
//! digit, the pattern therefore also requires, on `cosObject.url`, that no `%` sits one or two
//! characters before the suffix (an `anything-but` wildcard list), which makes the match exact.

use serde_json::{Map, Value, json};

use super::config::{Obj, quoted};
use super::keyfilter::{check_affix, key_values};
use super::oss::oss_arn_bucket;
use super::{Compiled, finish};
use crate::error::ConfigError;
use crate::wildcard::escape;

/// The COS event types (events.md §4).
pub const COS_EVENT_TYPES: [&str; 12] = [
    "cos:ObjectCreated:*",
    "cos:ObjectCreated:Put",
    "cos:ObjectCreated:Post",
    "cos:ObjectCreated:Copy",
    "cos:ObjectCreated:CompleteMultipartUpload",
    "cos:ObjectCreated:Origin",
    "cos:ObjectCreated:Replication",
    "cos:ObjectRemove:*",
    "cos:ObjectRemove:Delete",
    "cos:ObjectRemove:DeleteMarkerCreated",
    "cos:ObjectRestore:Post",
    "cos:ObjectRestore:Completed",
];

const ROOT: &str = "triggerConfig";

/// Percent-encodes an object key for `cosObject.key` / `cosObject.url`: every byte except
/// `A-Z a-z 0-9 - _ . ~ /` becomes `%XX` with upper-case hex.
pub fn encode_cos_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

/// A COS bucket: short name and appid (`{name}-{appid}` is the full bucket name).
#[derive(Debug, PartialEq, Eq)]
struct Bucket {
    name: String,
    appid: String,
}

fn split_bucket(full: &str) -> Option<Bucket> {
    let (name, appid) = full.rsplit_once('-')?;
    (!name.is_empty() && !appid.is_empty() && appid.bytes().all(|c| c.is_ascii_digit())).then(
        || Bucket {
            name: name.to_string(),
            appid: appid.to_string(),
        },
    )
}

/// `{bucket}-{appid}.cos.{region}.myqcloud.com`, optionally with a scheme and a trailing `/`.
fn bucket_from_url(url: &str) -> Option<Bucket> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let host = host.strip_suffix('/').unwrap_or(host);
    let (full, rest) = host.split_once('.')?;
    let region = rest.strip_prefix("cos.")?.strip_suffix(".myqcloud.com")?;
    if region.is_empty() || region.contains('.') || region.contains('/') {
        return None;
    }
    split_bucket(full)
}

/// `qcs::cos:{region}:uid/{appid}:{bucket}-{appid}` (Tencent's resource form) or fnbridge's
/// object-store form `acs:oss:{region}:{uid}:{bucket}-{appid}`.
fn bucket_from_arn(arn: &str) -> Result<Bucket, ConfigError> {
    let bad = || {
        ConfigError::new(
            "sourceArn",
            format!(
                "must look like \"qcs::cos:{{region}}:uid/{{appid}}:{{bucket}}-{{appid}}\" or \"acs:oss:{{region}}:{{uid}}:{{bucket}}-{{appid}}\", got {}",
                quoted(arn)
            ),
        )
    };
    let full = if arn.starts_with("acs:") {
        oss_arn_bucket(arn).map_err(|_| bad())?
    } else {
        match arn.split(':').collect::<Vec<_>>().as_slice() {
            ["qcs", "", "cos", _region, uid, full] if uid.starts_with("uid/") => *full,
            _ => return Err(bad()),
        }
    };
    split_bucket(full).ok_or_else(bad)
}

/// The `url` guard for an encoded suffix starting with a hex digit (see the module docs).
fn url_guard(enc_suffix: &str) -> Option<Value> {
    if !enc_suffix.starts_with(|c: char| c.is_ascii_hexdigit()) {
        return None;
    }
    let tail = escape(enc_suffix);
    let mut list = vec![format!("*%{tail}")];
    for h in "0123456789ABCDEF".chars() {
        list.push(format!("*%{h}{tail}"));
    }
    Some(json!([{ "anything-but": { "wildcard": list } }]))
}

/// Compiles a `cos` trigger config; the bucket comes from `bucketUrl` or `source_arn`.
pub fn cos(config: &Value, source_arn: Option<&str>) -> Result<Compiled, ConfigError> {
    let c = Obj::new(config, ROOT)?;
    c.only(&["bucketUrl", "event", "filter", "payloadFormat"])?;
    let format = super::oss::payload_format(&c)?;

    let event = c.req_str("event")?;
    if !COS_EVENT_TYPES.contains(&event) {
        return Err(ConfigError::new(
            c.at("event"),
            format!(
                "must be one of {}, got {}",
                COS_EVENT_TYPES.join(", "),
                quoted(event)
            ),
        ));
    }

    let url = c.opt_str("bucketUrl")?;
    let from_url = match url {
        Some(u) => Some(bucket_from_url(u).ok_or_else(|| {
            ConfigError::new(
                c.at("bucketUrl"),
                format!(
                    "must look like \"{{bucket}}-{{appid}}.cos.{{region}}.myqcloud.com\", got {}",
                    quoted(u)
                ),
            )
        })?),
        None => None,
    };
    let from_arn = source_arn.map(bucket_from_arn).transpose()?;
    let bucket = match (from_url, from_arn) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConfigError::new(
                "sourceArn",
                format!(
                    "names bucket {}-{} but triggerConfig.bucketUrl names {}-{}",
                    b.name, b.appid, a.name, a.appid
                ),
            ));
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            return Err(ConfigError::new(
                c.at("bucketUrl"),
                "required when sourceArn is not given",
            ));
        }
    };

    let (mut prefix, mut suffix) = ("", "");
    let mut filter_norm = Map::new();
    if let Some(filter) = c.opt_obj("filter")? {
        filter.only(&["Prefix", "Suffix"])?;
        if let Some(p) = filter.opt_str("Prefix")? {
            check_affix(&filter.at("Prefix"), p)?;
            prefix = p;
            filter_norm.insert("Prefix".into(), p.into());
        }
        if let Some(s) = filter.opt_str("Suffix")? {
            check_affix(&filter.at("Suffix"), s)?;
            suffix = s;
            filter_norm.insert("Suffix".into(), s.into());
        }
    }
    let base = format!("/{}/{}/", bucket.appid, bucket.name);
    let key_path = format!("{ROOT}.filter");
    let key = key_values(&key_path, &base, prefix, suffix, &encode_cos_key, true)?;

    let event_name = match event.strip_suffix('*') {
        Some(family) => json!({ "prefix": family }),
        None => Value::String(event.to_string()),
    };
    let mut object = Map::new();
    if let Some(values) = key {
        object.insert("key".into(), Value::Array(values));
        if let Some(guard) = url_guard(&encode_cos_key(suffix)) {
            object.insert("url".into(), guard);
        }
    }
    let mut cos = Map::new();
    cos.insert(
        "cosBucket".into(),
        json!({ "name": [bucket.name], "appid": [bucket.appid] }),
    );
    if !object.is_empty() {
        cos.insert("cosObject".into(), Value::Object(object));
    }
    let pattern = json!({
        "event": { "eventSource": ["qcs::cos"], "eventName": [event_name] },
        "cos": Value::Object(cos),
    });

    let mut normalized = Map::new();
    if let Some(u) = url {
        normalized.insert("bucketUrl".into(), u.into());
    }
    normalized.insert("event".into(), event.into());
    if c.get("filter").is_some() {
        normalized.insert("filter".into(), Value::Object(filter_norm));
    }
    if let Some(f) = format {
        normalized.insert("payloadFormat".into(), f.into());
    }
    finish(pattern, Value::Object(normalized), &key_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "testpic-1253970026.cos.ap-chengdu.myqcloud.com";

    fn record(name: &str, bucket: &str, appid: &str, raw_key: &str) -> String {
        let enc = encode_cos_key(raw_key);
        json!({"Records": [{
            "cos": {"cosSchemaVersion": "1.0",
                    "cosObject": {"url": format!("http://{bucket}-{appid}.cos.ap-chengdu.myqcloud.com/{enc}"),
                                  "meta": {"x-cos-request-id": "NWMxOWY4MGFfMjViMjU4NjRfMTUyMV8yNzhhZjM=", "Content-Type": ""},
                                  "vid": "", "key": format!("/{appid}/{bucket}/{enc}"), "size": 1029},
                    "cosBucket": {"region": "cd", "name": bucket, "appid": appid},
                    "cosNotificationId": "unkown"},
            "event": {"eventName": name, "eventVersion": "1.0", "eventTime": 1545205770, "eventSource": "qcs::cos",
                      "requestParameters": {"requestSourceIP": "192.168.15.101"},
                      "eventQueue": "qcs:0:scf:cd:appid/1253970026:default.printevent.$LATEST",
                      "reservedInfo": "", "reqid": 179398952}}]})["Records"][0]
            .to_string()
    }

    fn compile(v: Value, arn: Option<&str>) -> Compiled {
        cos(&v, arn).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(v: Value, arn: Option<&str>) -> String {
        cos(&v, arn).unwrap_err().to_string()
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_cos_key("dir/a b+c.jpg"), "dir/a%20b%2Bc.jpg");
        assert_eq!(encode_cos_key("é!"), "%C3%A9%21");
    }

    #[test]
    fn compiles_and_matches_records() {
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*",
            "filter": {"Prefix": "filterdir/", "Suffix": ".jpg"}}),
            None,
        );
        assert_eq!(
            c.pattern_json,
            r#"{"event":{"eventSource":["qcs::cos"],"eventName":[{"prefix":"cos:ObjectCreated:"}]},"cos":{"cosBucket":{"name":["testpic"],"appid":["1253970026"]},"cosObject":{"key":[{"wildcard":"/1253970026/testpic/filterdir/*.jpg"}]}}}"#
        );
        let m = |n: &str, k: &str| {
            c.pattern
                .matches(record(n, "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(m("cos:ObjectCreated:Put", "filterdir/a.jpg"));
        assert!(m("cos:ObjectCreated:*", "filterdir/sub dir/a.jpg"));
        assert!(!m("cos:ObjectRemove:Delete", "filterdir/a.jpg"));
        assert!(!m("cos:ObjectCreated:Put", "other/a.jpg"));
        assert!(!m("cos:ObjectCreated:Put", "filterdir/a.png"));
        assert!(
            !c.pattern
                .matches(
                    record(
                        "cos:ObjectCreated:Put",
                        "other",
                        "1253970026",
                        "filterdir/a.jpg"
                    )
                    .as_bytes()
                )
                .unwrap()
        );
        assert_eq!(
            c.normalized_config,
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*", "filter": {"Prefix": "filterdir/", "Suffix": ".jpg"}})
        );
    }

    #[test]
    fn encoded_filters_are_exact() {
        // Special characters in the prefix are matched in their encoded form.
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:Put", "filter": {"Prefix": "my dir/"}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(record("cos:ObjectCreated:Put", "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(m("my dir/x"));
        assert!(!m("my%20dir/x"));
        assert!(!m("mydir/x"));

        // A suffix starting with a hex digit must not match inside an escape.
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:Put", "filter": {"Suffix": "1.log"}}),
            None,
        );
        assert!(c.pattern_json.contains("anything-but"));
        let m = |k: &str| {
            c.pattern
                .matches(record("cos:ObjectCreated:Put", "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(m("a1.log"));
        assert!(m("!1.log"));
        assert!(m("1.log"));
        assert!(!m("x!.log")); // encodes to x%21.log
        assert!(!m("x.log"));
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:Put", "filter": {"Suffix": "AB.txt"}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(record("cos:ObjectCreated:Put", "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(m("xAB.txt"));
        assert!(!m("\u{0a}B.txt")); // %0AB.txt
        assert!(!m("x\u{AB}.txt")); // %C2%AB.txt

        // A suffix alone cannot reach back into /{appid}/{bucket}/.
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:Put", "filter": {"Suffix": "testpic/x"}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(record("cos:ObjectCreated:Put", "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(!m("x"));
        assert!(m("a/testpic/x"));
        // Overlapping prefix and suffix.
        let c = compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectCreated:Put", "filter": {"Prefix": "logs/", "Suffix": "/"}}),
            None,
        );
        let m = |k: &str| {
            c.pattern
                .matches(record("cos:ObjectCreated:Put", "testpic", "1253970026", k).as_bytes())
                .unwrap()
        };
        assert!(m("logs/"));
        assert!(m("logs/a/"));
        assert!(!m("logs/a"));
    }

    #[test]
    fn bucket_sources() {
        let v = json!({"event": "cos:ObjectRemove:Delete"});
        let a = compile(
            v.clone(),
            Some("qcs::cos:ap-chengdu:uid/1253970026:testpic-1253970026"),
        );
        let b = compile(
            v.clone(),
            Some("acs:oss:cn-hangzhou:1234567890123456:testpic-1253970026"),
        );
        let u = compile(
            json!({"bucketUrl": format!("https://{URL}/"), "event": "cos:ObjectRemove:Delete"}),
            None,
        );
        assert_eq!(a.pattern_json, b.pattern_json);
        assert_eq!(a.pattern_json, u.pattern_json);
        compile(
            json!({"bucketUrl": URL, "event": "cos:ObjectRemove:Delete"}),
            Some("qcs::cos:ap-chengdu:uid/1253970026:testpic-1253970026"),
        );
        for e in COS_EVENT_TYPES {
            compile(json!({"bucketUrl": URL, "event": e}), None);
        }
    }

    #[test]
    fn rejections() {
        assert_eq!(
            err(json!(null), None),
            "triggerConfig: must be a json object, got null"
        );
        assert_eq!(
            err(json!({"bucketUrl": URL}), None),
            "triggerConfig.event: required"
        );
        assert!(
            err(
                json!({"bucketUrl": URL, "event": "cos:ObjectRemoved:*"}),
                None
            )
            .starts_with("triggerConfig.event: must be one of")
        );
        assert_eq!(
            err(
                json!({"bucketUrl": URL, "event": ["cos:ObjectCreated:*"]}),
                None
            ),
            "triggerConfig.event: must be a string, got an array"
        );
        assert_eq!(
            err(json!({"event": "cos:ObjectCreated:*"}), None),
            "triggerConfig.bucketUrl: required when sourceArn is not given"
        );
        assert!(err(json!({"bucketUrl": "testpic.cos.ap-chengdu.myqcloud.com", "event": "cos:ObjectCreated:*"}), None)
            .starts_with("triggerConfig.bucketUrl: must look like"));
        assert!(err(json!({"bucketUrl": "testpic-125.s3.amazonaws.com", "event": "cos:ObjectCreated:*"}), None)
            .starts_with("triggerConfig.bucketUrl: must look like"));
        assert!(
            err(
                json!({"event": "cos:ObjectCreated:*"}),
                Some("qcs::cos:ap-chengdu:1253970026:testpic-1253970026")
            )
            .starts_with("sourceArn: must look like")
        );
        assert!(
            err(
                json!({"event": "cos:ObjectCreated:*"}),
                Some("acs:oss:cn-hangzhou:1:testpic")
            )
            .starts_with("sourceArn: must look like")
        );
        assert_eq!(
            err(
                json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*"}),
                Some("qcs::cos:ap-chengdu:uid/1253970026:other-1253970026")
            ),
            "sourceArn: names bucket other-1253970026 but triggerConfig.bucketUrl names testpic-1253970026"
        );
        assert!(err(json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*", "filter": {"prefix": "x"}}), None)
            .starts_with("triggerConfig.filter.prefix: unknown field"));
        assert_eq!(
            err(
                json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*", "filter": {"Suffix": 3}}),
                None
            ),
            "triggerConfig.filter.Suffix: must be a string, got a number"
        );
        assert!(
            err(
                json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*", "x": 1}),
                None
            )
            .starts_with("triggerConfig.x: unknown field")
        );
        assert_eq!(
            err(
                json!({"bucketUrl": URL, "event": "cos:ObjectCreated:*", "filter": {"Prefix": "p".repeat(1025)}}),
                None
            ),
            "triggerConfig.filter.Prefix: longer than 1024 bytes"
        );
    }
}
