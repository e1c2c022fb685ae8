//! Request signatures of the OSS and COS dialects, each a module checked against a vector from
//! the client's own signer (S3 SigV4 is s3s's). Every verifier takes the same `ReqView` and
//! answers with the access key that signed, or the dialect's refusal.
//!
//! # Layout
//! - `oss_v1`: OSS V1 (`Authorization: OSS ak:sig`, and `OSSAccessKeyId`/`Expires`/`Signature`
//!   presigned URLs), HMAC-SHA1 (oss2's default).
//! - `oss_v4`: OSS V4 (`OSS4-HMAC-SHA256`, header and query), alibabacloud-oss-v2's default.
//! - `cos`: COS XML `q-sign-algorithm=sha1` (header and query), cos-python-sdk-v5.

pub mod cos;
pub mod oss_v1;
pub mod oss_v4;

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Code, ObjError};

/// RFC 3986 unreserved characters stay; everything else is escaped.
pub const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As `URI_ENCODE`, keeping `/` (paths).
pub const URI_ENCODE_SLASH_SAFE: &AsciiSet = &URI_ENCODE.remove(b'/');

/// What a verifier sees of a request.
pub struct ReqView<'a> {
    pub method: &'a str,
    /// The bucket and decoded key the request addresses.
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    /// The query string as sent (still percent-encoded).
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    /// Server time, Unix seconds.
    pub now: i64,
}

impl ReqView<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query pairs, decoded (`+` is a space only in form encoding, which no signer uses here).
    pub fn query(&self) -> Vec<(String, String)> {
        self.raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The access key (and STS token) a request was signed with.
#[derive(Debug, Clone)]
pub struct Verified {
    pub access_key_id: String,
    /// The STS token sent with it (`None` for an account key).
    pub security_token: Option<String>,
}

pub(crate) fn mismatch(string_to_sign: &str) -> ObjError {
    // The string to sign helps a client author; it holds no secret.
    ObjError::new(
        Code::SignatureDoesNotMatch,
        format!(
            "the request signature we calculated does not match the signature you provided; string to sign: {:?}",
            string_to_sign
        ),
    )
}

pub(crate) fn unknown_key() -> ObjError {
    ObjError::new(
        Code::InvalidAccessKeyId,
        "the access key id you provided does not exist in our records",
    )
}

/// Constant-time comparison of two signatures.
pub(crate) fn same(a: &str, b: &str) -> bool {
    use subtle_like::ct_eq;
    ct_eq(a.as_bytes(), b.as_bytes())
}

mod subtle_like {
    /// Compares without stopping at the first difference.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
