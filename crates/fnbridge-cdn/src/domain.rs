//! Domain names and origins, parsed once: `DomainName` (a host name, or `.example.com` for a
//! wildcard) and `Sources` (cdn.md §2) into an `Origin` the edge fetches from.

use serde_json::{Value, json};

use crate::error::CdnError;

/// Longest domain name (DNS).
pub const MAX_DOMAIN: usize = 253;
/// Most origins a domain lists.
pub const MAX_SOURCES: usize = 20;

/// Where the edge fetches a domain's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A bucket of the embedded object store, read through `ObjectStore`.
    Bucket(String),
    /// An HTTP server (`ipaddr` or `domain` source).
    Http { host: String, port: u16 },
}

/// Checks a domain name: lower-case labels of `[a-z0-9-]`, at least two, or a leading `.`
/// for a wildcard domain.
pub fn check_domain(name: &str) -> Result<String, CdnError> {
    let name = name.trim().to_ascii_lowercase();
    let bare = name.strip_prefix('.').unwrap_or(&name);
    let labels: Vec<&str> = bare.split('.').collect();
    let ok = !bare.is_empty()
        && name.len() <= MAX_DOMAIN
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(CdnError::new(
            400,
            "InvalidDomainName.Malformed",
            format!("'{name}' is not a valid domain name"),
        ));
    }
    Ok(name)
}

/// The validated origins of `Sources`: the normalized array to store and the primary origin
/// (the first of the lowest `priority`).
pub fn parse_sources(raw: &str) -> Result<(String, Origin), CdnError> {
    let bad = |why: &str| CdnError::new(400, "InvalidSources.Malformed", why.to_string());
    let v: Value =
        serde_json::from_str(raw).map_err(|e| bad(&format!("Sources is not a JSON array: {e}")))?;
    let arr = v
        .as_array()
        .ok_or_else(|| bad("Sources must be a JSON array"))?;
    if arr.is_empty() || arr.len() > MAX_SOURCES {
        return Err(bad(&format!(
            "Sources must list 1 to {MAX_SOURCES} origins"
        )));
    }
    let mut out = Vec::new();
    let mut primary: Option<(u32, Origin)> = None;
    for s in arr {
        let content = s
            .get("content")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("each source needs a non-empty \"content\""))?;
        let kind = s.get("type").and_then(Value::as_str).unwrap_or("ipaddr");
        let num = |k: &str, default: u64| -> Result<u64, CdnError> {
            match s.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .ok_or_else(|| bad(&format!("{k} must be a number"))),
                Some(Value::String(t)) => {
                    t.parse().map_err(|_| bad(&format!("{k} must be a number")))
                }
                Some(_) => Err(bad(&format!("{k} must be a number"))),
            }
        };
        let port = num("port", 80)?;
        if !(1..=65535).contains(&port) {
            return Err(bad("port must be 1 to 65535"));
        }
        let priority = num("priority", 20)?;
        let weight = num("weight", 10)?;
        if weight > 100 {
            return Err(bad("weight must be 0 to 100"));
        }
        let origin = match kind {
            "oss" => {
                // The console shows a bucket as `bucket.oss-<region>.aliyuncs.com`; the bare
                // name is accepted too.
                let bucket = match content.split_once(".oss-") {
                    Some((b, _)) => b,
                    None => content,
                };
                fnbridge_objectstore::store::check_bucket_name(bucket)
                    .map_err(|_| bad(&format!("'{bucket}' is not a valid bucket name")))?;
                Origin::Bucket(bucket.to_string())
            }
            "ipaddr" | "domain" | "fc_domain" => {
                let (host, port) = match content.rsplit_once(':') {
                    Some((h, p)) if kind != "ipaddr" || !h.contains(':') => {
                        (h, p.parse::<u16>().map_err(|_| bad("bad port in content"))?)
                    }
                    _ => (content, port as u16),
                };
                if host.is_empty()
                    || !host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
                {
                    return Err(bad(&format!("'{content}' is not an IP address or domain")));
                }
                Origin::Http {
                    host: host.to_ascii_lowercase(),
                    port,
                }
            }
            other => {
                return Err(bad(&format!(
                    "source type '{other}' is not one of ipaddr, domain, oss, fc_domain"
                )));
            }
        };
        out.push(json!({
            "content": content, "type": kind, "port": port,
            "priority": priority.to_string(), "weight": weight.to_string(),
        }));
        let p = priority as u32;
        if primary.as_ref().is_none_or(|(best, _)| p < *best) {
            primary = Some((p, origin));
        }
    }
    let (_, origin) = primary.ok_or_else(|| bad("Sources is empty"))?;
    Ok((Value::Array(out).to_string(), origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let (_, o) =
            parse_sources(r#"[{"content":"pics.oss-cn-hangzhou.aliyuncs.com","type":"oss"}]"#)
                .unwrap();
        assert_eq!(o, Origin::Bucket("pics".into()));
        let (_, o) = parse_sources(r#"[{"content":"pics","type":"oss","port":443}]"#).unwrap();
        assert_eq!(o, Origin::Bucket("pics".into()));
        let (_, o) = parse_sources(
            r#"[{"content":"1.1.1.1","type":"ipaddr","priority":"20","port":8080,"weight":"15"}]"#,
        )
        .unwrap();
        assert_eq!(
            o,
            Origin::Http {
                host: "1.1.1.1".into(),
                port: 8080
            }
        );
        let (_, o) =
            parse_sources(r#"[{"content":"origin.example.com:81","type":"domain"}]"#).unwrap();
        assert_eq!(
            o,
            Origin::Http {
                host: "origin.example.com".into(),
                port: 81
            }
        );
        for bad in [
            "",
            "{}",
            "[]",
            r#"[{"type":"oss"}]"#,
            r#"[{"content":"x","type":"ftp"}]"#,
            r#"[{"content":"a b","type":"domain"}]"#,
            r#"[{"content":"1.1.1.1","port":70000}]"#,
        ] {
            assert!(parse_sources(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(check_domain("CDN.Example.com").unwrap(), "cdn.example.com");
        assert!(check_domain(".example.com").is_ok());
        for bad in ["", "example", "a..com", "-a.com", "a_b.com", "a.com/x"] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }
}
