//! Comparable forms of leaf values: canonical decimals, doubles, case folding and IP addresses.
//!
//! Exact numeric values compare as decimals (`35`, `35.0` and `3.5e1` share one canonical form)
//! so that large integers such as account ids never collide the way rounded doubles would;
//! `numeric` ranges compare as doubles over the full float64 range.

use std::net::IpAddr;

/// Appends the canonical decimal form of a JSON number's text to `out`: an optional `-`, the
/// significant digits without leading or trailing zeros, `e`, and the decimal exponent, so that
/// equal values have equal bytes (`0` and `-0` both give `0`).
pub(crate) fn canon_number(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let neg = text.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut digits: [u8; 40] = [0; 40];
    let mut nd = 0usize; // significant digits kept (at most 40; the rest only shift the exponent)
    let mut dropped_nonzero = false;
    let mut exp: i64 = 0; // value = digits * 10^exp
    let mut seen_nonzero = false;
    let mut push = |d: u8, frac: bool, exp: &mut i64| {
        if d == b'0' && !seen_nonzero {
            if frac {
                *exp -= 1;
            }
            return;
        }
        seen_nonzero = true;
        if nd < digits.len() {
            digits[nd] = d;
            nd += 1;
            if frac {
                *exp -= 1;
            }
        } else {
            // Precision beyond 40 digits: keep the magnitude, remember inexactness.
            if !frac {
                *exp += 1;
            }
            if d != b'0' {
                dropped_nonzero = true;
            }
        }
    };
    while i < text.len() && text[i].is_ascii_digit() {
        push(text[i], false, &mut exp);
        i += 1;
    }
    if i < text.len() && text[i] == b'.' {
        i += 1;
        while i < text.len() && text[i].is_ascii_digit() {
            push(text[i], true, &mut exp);
            i += 1;
        }
    }
    if i < text.len() && (text[i] == b'e' || text[i] == b'E') {
        i += 1;
        let mut eneg = false;
        if i < text.len() && (text[i] == b'+' || text[i] == b'-') {
            eneg = text[i] == b'-';
            i += 1;
        }
        let mut e: i64 = 0;
        while i < text.len() && text[i].is_ascii_digit() {
            // Saturate: exponents this large only need to stay distinct from sane ones.
            e = (e * 10 + (text[i] - b'0') as i64).min(1 << 50);
            i += 1;
        }
        exp = exp.saturating_add(if eneg { -e } else { e });
    }
    // Strip trailing zeros of the significand into the exponent.
    while nd > 0 && digits[nd - 1] == b'0' {
        nd -= 1;
        exp = exp.saturating_add(1);
    }
    if nd == 0 {
        out.push(b'0');
        return;
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[..nd]);
    if dropped_nonzero {
        // Distinguish a truncated significand from an exact one with the same leading digits.
        out.push(b'~');
    }
    out.push(b'e');
    let mut buf = itoa_i64(exp);
    out.append(&mut buf);
}

fn itoa_i64(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The double value of a JSON number's text; overflow gives an infinity, which still orders
/// correctly against every finite bound.
#[inline]
pub(crate) fn number_f64(text: &[u8]) -> f64 {
    // Fast path: short integers convert exactly.
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for &d in digits {
            v = v * 10 + (d - b'0') as i64;
        }
        let f = v as f64;
        return if neg { -f } else { f };
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// Simple (one-to-one) case folding of one char: the lowercase of the uppercase, as Java's
/// `equalsIgnoreCase` compares, so `ς`, `σ` and `Σ` fold together and `ß` stays `ß`.
#[inline]
pub(crate) fn fold_char(c: char) -> char {
    let mut up = c.to_uppercase();
    let u = match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c, // a multi-char uppercase (ß -> SS) has no simple mapping: keep the char
    };
    // Only U+0130 has a multi-char lowercase; its simple mapping is the first char ('i').
    u.to_lowercase().next().unwrap_or(u)
}

/// Appends the case-folded form of UTF-8 `s` to `out`.
pub(crate) fn fold_into(s: &[u8], out: &mut Vec<u8>) {
    if s.is_ascii() {
        out.extend(s.iter().map(u8::to_ascii_lowercase));
        return;
    }
    let text = String::from_utf8_lossy(s);
    let mut tmp = [0u8; 4];
    for c in text.chars() {
        if c.is_ascii() {
            out.push((c as u8).to_ascii_lowercase());
        } else {
            out.extend_from_slice(fold_char(c).encode_utf8(&mut tmp).as_bytes());
        }
    }
}

pub(crate) fn fold(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    fold_into(s.as_bytes(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// An IP address as a 128-bit number; IPv4 maps into `::ffff:0:0/96` so one range type covers
/// both families (and an IPv4-mapped IPv6 address matches an IPv4 CIDR, as in AWS).
#[inline]
pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000u128 | u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Parses an event string as an IP address literal.
#[inline]
pub(crate) fn parse_ip(s: &[u8]) -> Option<u128> {
    // Cheap reject before the std parser: IP literals are short and use a small alphabet.
    if s.is_empty()
        || s.len() > 45
        || !s
            .iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b'.' || *c == b':')
    {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    text.parse::<IpAddr>().ok().map(ip_to_u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        let mut out = Vec::new();
        canon_number(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(c("35"), c("35.0"));
        assert_eq!(c("35"), c("3.5e1"));
        assert_eq!(c("35"), c("350e-1"));
        assert_eq!(c("35"), "35e0");
        assert_eq!(c("0"), "0");
        assert_eq!(c("-0.0e5"), "0");
        assert_eq!(c("0.001"), "1e-3");
        assert_eq!(c("-12.50"), "-125e-1");
        assert_ne!(c("12345678901234567890"), c("12345678901234567891"));
        assert_ne!(c("1"), c("-1"));
        assert_eq!(c("1e400"), c("10e399"));
    }

    #[test]
    fn doubles() {
        assert_eq!(number_f64(b"101.0"), 101.0);
        assert_eq!(number_f64(b"-42"), -42.0);
        assert_eq!(number_f64(b"1e400"), f64::INFINITY);
        assert_eq!(number_f64(b"-1.5e-3"), -0.0015);
    }

    #[test]
    fn folding() {
        assert_eq!(fold("EvEnTb"), "eventb");
        assert_eq!(fold("ΣΑΣ"), fold("σας"));
        assert_eq!(fold("ß"), "ß");
        assert_eq!(fold("ẞ"), "ß");
        assert_eq!(fold("İ"), "i");
        assert_eq!(fold("\u{212A}"), "k"); // Kelvin sign
    }

    #[test]
    fn ips() {
        assert_eq!(parse_ip(b"10.0.0.255"), Some(0xffff_0a00_00ff));
        assert_eq!(parse_ip(b"10.0.0.256"), None);
        assert_eq!(parse_ip(b"::ffff:10.0.0.255"), Some(0xffff_0a00_00ff));
        assert!(parse_ip(b"2001:0db8:1234:1a00:0000:0000:0000:0000").is_some());
        assert_eq!(parse_ip(b"hello"), None);
    }
}
