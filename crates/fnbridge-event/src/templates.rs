//! Test-event templates: a sample of every CDN event and of the object-storage events, for the
//! console's "Configure Test Parameters" and `fnbridge function test --event-name`.

/// (template name, JSON payload as a function receives it).
const FILES: [(&str, &str); 10] = [
    (
        "LogFileCreated",
        include_str!("../../../examples/events/LogFileCreated.json"),
    ),
    (
        "CachedObjectsRefreshed",
        include_str!("../../../examples/events/CachedObjectsRefreshed.json"),
    ),
    (
        "CachedObjectsPushed",
        include_str!("../../../examples/events/CachedObjectsPushed.json"),
    ),
    (
        "CachedObjectsBlocked",
        include_str!("../../../examples/events/CachedObjectsBlocked.json"),
    ),
    (
        "CdnDomainStarted",
        include_str!("../../../examples/events/CdnDomainStarted.json"),
    ),
    (
        "CdnDomainStopped",
        include_str!("../../../examples/events/CdnDomainStopped.json"),
    ),
    (
        "CdnDomainAdded",
        include_str!("../../../examples/events/CdnDomainAdded.json"),
    ),
    (
        "CdnDomainDeleted",
        include_str!("../../../examples/events/CdnDomainDeleted.json"),
    ),
    (
        "oss:ObjectCreated:PutObject",
        include_str!("../../../examples/events/oss-PutObject.json"),
    ),
    (
        "cos:ObjectCreated:Put",
        include_str!("../../../examples/events/cos-ObjectCreated-Put.json"),
    ),
];

/// OSS event types offered as templates besides PutObject: same shape, another `eventName`.
const OSS_VARIANTS: [&str; 5] = [
    "ObjectCreated:PostObject",
    "ObjectCreated:CopyObject",
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectCreated:AppendObject",
    "ObjectRemoved:DeleteObject",
];

/// COS event types offered besides Put.
const COS_VARIANTS: [&str; 4] = [
    "cos:ObjectCreated:Post",
    "cos:ObjectCreated:Copy",
    "cos:ObjectCreated:CompleteMultipartUpload",
    "cos:ObjectRemove:Delete",
];

/// Every template name.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
    v.extend(OSS_VARIANTS.iter().map(|n| format!("oss:{n}")));
    v.extend(COS_VARIANTS.iter().map(|n| n.to_string()));
    v
}

/// The payload of a template, compact JSON.
pub fn get(name: &str) -> Option<String> {
    let compact = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .map(|v| v.to_string())
    };
    if let Some((_, text)) = FILES.iter().find(|(n, _)| *n == name) {
        return compact(text);
    }
    if let Some(oss) = name
        .strip_prefix("oss:")
        .filter(|n| OSS_VARIANTS.contains(n))
    {
        let base = compact(FILES[8].1)?;
        let mut v: serde_json::Value = serde_json::from_str(&base).ok()?;
        v["events"][0]["eventName"] = serde_json::Value::String(oss.to_string());
        if oss.starts_with("ObjectRemoved") {
            v["events"][0]["oss"]["object"]["size"] = 0.into();
        }
        return Some(v.to_string());
    }
    if COS_VARIANTS.contains(&name) {
        let mut v: serde_json::Value = serde_json::from_str(&compact(FILES[9].1)?).ok()?;
        v["Records"][0]["event"]["eventName"] = serde_json::Value::String(name.to_string());
        return Some(v.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_is_valid_json_of_its_event() {
        let names = super::names();
        assert_eq!(names.len(), 19);
        for n in &names {
            let v: serde_json::Value = serde_json::from_str(&super::get(n).unwrap()).unwrap();
            let name = v["events"][0]["eventName"]
                .as_str()
                .or(v["Records"][0]["event"]["eventName"].as_str())
                .unwrap();
            assert_eq!(
                n.trim_start_matches("oss:"),
                name.trim_start_matches("oss:"),
                "{n}"
            );
        }
        for cdn in crate::source::CDN_EVENT_NAMES {
            assert!(names.iter().any(|n| n == cdn), "no template for {cdn}");
        }
        assert!(super::get("nope").is_none());
    }
}
