//! The OSS RAM action and resource of every object-store operation, whatever the protocol it
//! came in (S3, OSS and COS all reach the same s3s operations), as OSS's RAM documents them:
//! `oss:GetObject` on `acs:oss:{region}:{account}:{bucket}/{key}`, `oss:ListObjects` on
//! `acs:oss:{region}:{account}:{bucket}`, `oss:ListBuckets` on `acs:oss:{region}:{account}:*`.
//! An operation with no OSS name maps to `oss:{S3 operation name}`, which only a policy allowing
//! `oss:*` (or `*`) grants: unknown operations fail closed.

use crate::events::Identity;

/// What is being addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Service,
    Bucket(&'a str),
    Object(&'a str, &'a str),
}

/// The RAM action of an s3s operation (by its S3 name).
pub fn action(s3_op: &str) -> String {
    let a = match s3_op {
        "ListBuckets" => "oss:ListBuckets",
        "CreateBucket" => "oss:PutBucket",
        "DeleteBucket" => "oss:DeleteBucket",
        "HeadBucket" => "oss:GetBucketInfo",
        "GetBucketLocation" => "oss:GetBucketLocation",
        "ListObjects" | "ListObjectsV2" => "oss:ListObjects",
        "ListMultipartUploads" => "oss:ListMultipartUploads",
        "PutObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "CopyObject" => "oss:PutObject",
        "GetObject" | "HeadObject" => "oss:GetObject",
        "DeleteObject" | "DeleteObjects" => "oss:DeleteObject",
        "AbortMultipartUpload" => "oss:AbortMultipartUpload",
        "ListParts" => "oss:ListParts",
        other => return format!("oss:{other}"),
    };
    a.to_owned()
}

/// The ARN of what a request addresses.
pub fn resource(id: &Identity, target: Target<'_>) -> String {
    let base = format!("acs:oss:{}:{}:", id.region, id.account_id);
    match target {
        Target::Service => format!("{base}*"),
        Target::Bucket(b) => format!("{base}{b}"),
        Target::Object(b, k) => format!("{base}{b}/{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_oss_actions_and_resources() {
        let id = Identity {
            region: "cn-hangzhou".into(),
            account_id: "123".into(),
            cos_region: "ap-guangzhou".into(),
        };
        assert_eq!(action("PutObject"), "oss:PutObject");
        assert_eq!(action("UploadPart"), "oss:PutObject");
        assert_eq!(action("HeadObject"), "oss:GetObject");
        assert_eq!(action("ListObjectsV2"), "oss:ListObjects");
        assert_eq!(action("CreateBucket"), "oss:PutBucket");
        assert_eq!(action("DeleteObjects"), "oss:DeleteObject");
        assert_eq!(action("GetBucketAcl"), "oss:GetBucketAcl");
        assert_eq!(
            resource(&id, Target::Object("b", "a/k.txt")),
            "acs:oss:cn-hangzhou:123:b/a/k.txt"
        );
        assert_eq!(
            resource(&id, Target::Bucket("b")),
            "acs:oss:cn-hangzhou:123:b"
        );
        assert_eq!(resource(&id, Target::Service), "acs:oss:cn-hangzhou:123:*");
    }
}
