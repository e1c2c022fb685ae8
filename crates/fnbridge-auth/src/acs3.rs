//! ACS3-HMAC-SHA256, the request signature of Alibaba Cloud's v3 SDKs (the FC 3.0 SDK among
//! them; fc-api.md §2): parsing the `Authorization` header, the canonical request exactly as
//! tea-openapi's `get_authorization` builds it, and the signature itself.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Bounds on what a client may send, so parsing costs little whatever arrives.
const MAX_SIGNED_HEADERS: usize = 64;
const MAX_HEADER_NAME: usize = 128;

/// The parts of `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`
/// after the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// Lower-case header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

/// Parses the credentials of an ACS3 `Authorization` header (`rest` follows the scheme).
pub fn parse_authorization(rest: &str) -> Result<Authorization, String> {
    let (mut ak, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(format!("malformed Authorization part '{}'", part.trim()));
        };
        match k.trim() {
            "Credential" => ak = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => sig = Some(v.trim()),
            _ => {} // extensions are ignored, as other verifiers do
        }
    }
    let ak = ak
        .filter(|s| !s.is_empty())
        .ok_or("Authorization has no Credential")?;
    let signed = signed.ok_or("Authorization has no SignedHeaders")?;
    let sig = sig.ok_or("Authorization has no Signature")?;
    let signed_headers: Vec<String> = signed
        .split(';')
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if signed_headers.len() > MAX_SIGNED_HEADERS
        || signed_headers.iter().any(|h| h.len() > MAX_HEADER_NAME)
    {
        return Err(format!(
            "SignedHeaders lists more than {MAX_SIGNED_HEADERS} headers or a name longer than {MAX_HEADER_NAME}"
        ));
    }
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature is not 64 hex digits".into());
    }
    Ok(Authorization {
        access_key_id: ak.to_owned(),
        signed_headers,
        signature: sig.to_ascii_lowercase(),
    })
}

/// What the canonical request is built from. `headers` are (lower-case name, value) pairs as
/// received; `query` is the raw query string (without `?`).
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body bytes.
    pub payload_sha256: &'a str,
}

/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED\nPAYLOADHASH`, over the headers the client signed (the
/// HTTP client adds others, such as `content-length`, after signing). A signed header that is
/// not in the request is an error: the client cannot have signed what it did not send.
pub fn canonical_request(req: &Request<'_>, signed_headers: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(512);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(if req.path.is_empty() { "/" } else { req.path });
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed_headers {
        let mut values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect();
        if values.is_empty() {
            return Err(format!("signed header '{name}' is not in the request"));
        }
        // tea-openapi sorts repeated values before joining them.
        values.sort_unstable();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(req.payload_sha256);
    Ok(out)
}

/// `ACS3-HMAC-SHA256\n` + hex(sha256(canonical request)).
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// hex(hmac_sha256(secret, string to sign)).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Hex SHA-256, as in `x-acs-content-sha256`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The canonical query: pairs decoded as the HTTP client encoded them (form encoding, `+` is a
/// space), sorted by key, each value re-encoded with only unreserved characters and `~` left
/// as is (Python's `quote(v, safe='~')`), the key as is.
pub fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                String::from_utf8_lossy(&form_decode(k)).into_owned(),
                encode(&form_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &c in bytes {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The worked example of fc-api.md §2.
    #[test]
    fn the_reference_example_signs_as_documented() {
        let empty = sha256_hex(b"");
        let h = headers(&[
            ("host", "127.0.0.1:9000"),
            ("user-agent", "example"),
            ("accept", "application/json"),
            ("x-acs-action", "GetFunction"),
            ("x-acs-version", "2023-03-30"),
            ("x-acs-date", "2026-11-22T01:54:23Z"),
            ("x-acs-signature-nonce", "3f1e1c6a9d2b4e0f8a7c6b5d4e3f2a1b"),
            ("x-acs-content-sha256", &empty),
            // Added by the HTTP client after signing: not in SignedHeaders.
            ("content-length", "0"),
        ]);
        let auth = parse_authorization(
            "Credential=LTAIexample,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=ad52ef3d45c8f17430a312626e3d10892a20f511738172edd161f89434c79b50",
        )
        .unwrap();
        let req = Request {
            method: "GET",
            path: "/2023-03-30/functions/my-func",
            query: "qualifier=LATEST",
            headers: &h,
            payload_sha256: &empty,
        };
        let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
        let sts = string_to_sign(&canonical);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\nfa752fc20074e9c7e78f961cf723d6c1423bc2dcb77b26627e16121d4c490200"
        );
        assert_eq!(sign("testsecret", &sts), auth.signature);
        assert_ne!(sign("wrongsecret", &sts), auth.signature);
    }

    #[test]
    fn the_query_is_decoded_then_encoded_as_the_sdk_does() {
        assert_eq!(
            canonical_query("prefix=a+b&limit=10&nextToken=x%2Fy%7E&includePayload=True&e="),
            "e=&includePayload=True&limit=10&nextToken=x%2Fy~&prefix=a%20b"
        );
        assert_eq!(canonical_query(""), "");
        // Broken escapes are kept literally instead of failing.
        assert_eq!(canonical_query("a=%zz%4"), "a=%25zz%254");
    }

    #[test]
    fn malformed_authorizations_are_refused() {
        for bad in [
            "",
            "Credential=,SignedHeaders=host,Signature=00",
            "Credential=a,SignedHeaders=host",
            "Credential=a,SignedHeaders=host,Signature=xyz",
            "garbage",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signed_header_missing_from_the_request_is_an_error() {
        let h = headers(&[("host", "x")]);
        let req = Request {
            method: "GET",
            path: "",
            query: "",
            headers: &h,
            payload_sha256: "",
        };
        let e = canonical_request(&req, &["host".into(), "x-acs-date".into()]).unwrap_err();
        assert!(e.contains("x-acs-date"), "{e}");
        let ok = canonical_request(&req, &["host".into()]).unwrap();
        assert_eq!(ok, "GET\n/\n\nhost:x\n\nhost\n");
    }
}
