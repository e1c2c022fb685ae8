//! Times in FC's format: RFC 3339 UTC with second precision (`2020-08-20T02:28:21Z`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_rfc3339() -> String {
    rfc3339_ms(fnbridge_store::now_ms())
}

pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339_ms(1_597_890_501_999), "2020-08-20T02:28:21Z");
        assert_eq!(super::rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
