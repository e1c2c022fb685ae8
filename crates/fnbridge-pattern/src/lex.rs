//! Low-level JSON lexing over bytes, shared by the pattern parser and the event flattener.
//!
//! Strings are scanned eight bytes at a time (SWAR) looking for the only bytes that need
//! attention: `"`, `\`, control characters and non-ASCII bytes. Non-ASCII sequences are validated
//! inline, so no separate UTF-8 pass over the input is needed: outside strings any byte >= 0x80 is
//! a grammar error anyway.

/// A lexing failure: byte offset and a static reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LexError {
    pub offset: usize,
    pub reason: &'static str,
}

pub(crate) type LexResult<T> = Result<T, LexError>;

#[inline]
pub(crate) fn err<T>(offset: usize, reason: &'static str) -> LexResult<T> {
    Err(LexError { offset, reason })
}

/// Location of a string's content (between the quotes) in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrSpan {
    pub start: usize,
    pub end: usize,
    /// Non-zero when the content holds a `\` escape and must be decoded before use
    /// ([`ESCAPED`], plus [`LONE_SURROGATE`] when some `\u` escape is an unpaired surrogate). A
    /// full word rather than a `bool`: a byte-wide field written and then read back as part of
    /// the whole span stalls store-to-load forwarding on the hottest path of the scanner.
    esc: usize,
}

/// [`StrSpan::esc`] bit: the content holds an escape.
const ESCAPED: usize = 1;
/// [`StrSpan::esc`] bit: a `\u` escape is a surrogate without its partner, which JSON's grammar
/// allows but serde_json refuses when it reads a string (see [`StrSpan::lone_surrogate`]).
const LONE_SURROGATE: usize = 2;

impl StrSpan {
    #[inline(always)]
    pub fn escaped(&self) -> bool {
        self.esc != 0
    }

    /// Whether an escape is a lone surrogate: a trailing one (`\uDC00`-`\uDFFF`) on its own, or a
    /// leading one (`\uD800`-`\uDBFF`) not followed at once by a trailing one. serde_json refuses
    /// such strings when it reads a `Value`, so the strict walk does too (set by
    /// [`scan_string`] only; the trusted scanner never sets it).
    #[inline(always)]
    pub fn lone_surrogate(&self) -> bool {
        self.esc & LONE_SURROGATE != 0
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in every byte lane that is `"`, `\`, < 0x20 or >= 0x80. Lanes after the first set
/// one may be false positives (borrow propagation), so only the lowest set lane is meaningful.
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    let q = w ^ (LO * b'"' as u64);
    let bs = w ^ (LO * b'\\' as u64);
    let zq = q.wrapping_sub(LO) & !q;
    let zb = bs.wrapping_sub(LO) & !bs;
    let ctl = w.wrapping_sub(LO * 0x20) & !w;
    (zq | zb | ctl | w) & HI
}

#[inline(always)]
pub(crate) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Skips whitespace starting at `i`; returns the index of the next non-whitespace byte.
#[inline(always)]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    // Compact JSON has none: test once before looping.
    if i < b.len() && !is_ws(b[i]) {
        return i;
    }
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Length of the valid UTF-8 sequence starting at `b[i]` (a byte >= 0x80), or `None`.
#[inline]
fn utf8_seq_len(b: &[u8], i: usize) -> Option<usize> {
    let cont = |j: usize| b.get(j).is_some_and(|&c| (0x80..=0xBF).contains(&c));
    let in_range = |j: usize, lo: u8, hi: u8| b.get(j).is_some_and(|&c| (lo..=hi).contains(&c));
    match b[i] {
        0xC2..=0xDF => cont(i + 1).then_some(2),
        0xE0 => (in_range(i + 1, 0xA0, 0xBF) && cont(i + 2)).then_some(3),
        0xE1..=0xEC | 0xEE..=0xEF => (cont(i + 1) && cont(i + 2)).then_some(3),
        0xED => (in_range(i + 1, 0x80, 0x9F) && cont(i + 2)).then_some(3),
        0xF0 => (in_range(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3)).then_some(4),
        0xF1..=0xF3 => (cont(i + 1) && cont(i + 2) && cont(i + 3)).then_some(4),
        0xF4 => (in_range(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3)).then_some(4),
        _ => None,
    }
}

#[inline]
fn hex_val(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'a'..=b'f' => Some((c - b'a' + 10) as u32),
        b'A'..=b'F' => Some((c - b'A' + 10) as u32),
        _ => None,
    }
}

#[inline]
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    if i + 4 > b.len() {
        return None;
    }
    let mut v = 0;
    for &c in &b[i..i + 4] {
        v = (v << 4) | hex_val(c)?;
    }
    Some(v)
}

/// Index of the first byte at or after `j` that is `"`, a backslash, a control character or
/// non-ASCII, or `b.len()` when there is none.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn find_special(b: &[u8], mut j: usize) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available; the
    // only memory access is an unaligned 16-byte load within `b` (j + 16 <= b.len()).
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let ctl = _mm_set1_epi8(0x1F);
        while j + 16 <= b.len() {
            let x = _mm_loadu_si128(b.as_ptr().add(j) as *const __m128i);
            let hits = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                _mm_cmpeq_epi8(_mm_max_epu8(x, ctl), ctl),
            );
            // The movemask of x itself flags bytes >= 0x80.
            let mask = (_mm_movemask_epi8(hits) | _mm_movemask_epi8(x)) as u32;
            if mask != 0 {
                return j + mask.trailing_zeros() as usize;
            }
            j += 16;
        }
    }
    find_special_swar(b, j)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn find_special(b: &[u8], j: usize) -> usize {
    find_special_swar(b, j)
}

#[inline(always)]
fn find_special_swar(b: &[u8], mut j: usize) -> usize {
    while j + 8 <= b.len() {
        let w = u64::from_le_bytes(b[j..j + 8].try_into().unwrap());
        let m = special_mask(w);
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < b.len() {
        let c = b[j];
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            return j;
        }
        j += 1;
    }
    j
}

/// Scans a string whose opening quote is at `b[i]`. Returns its span and the index just past the
/// closing quote. Validates escapes, control characters and UTF-8.
///
/// The common case, a plain ASCII string, is inlined into the callers' loops; anything else
/// continues out of line.
#[inline(always)]
pub(crate) fn scan_string(b: &[u8], i: usize) -> LexResult<(StrSpan, usize)> {
    debug_assert_eq!(b[i], b'"');
    let start = i + 1;
    let j = find_special(b, start);
    if b.get(j) == Some(&b'"') {
        return Ok((
            StrSpan {
                start,
                end: j,
                esc: 0,
            },
            j + 1,
        ));
    }
    scan_string_slow(b, start, j)
}

/// The rest of a string from `j`, the first byte needing attention.
#[cold]
#[inline(never)]
fn scan_string_slow(b: &[u8], start: usize, mut j: usize) -> LexResult<(StrSpan, usize)> {
    let mut esc = 0;
    loop {
        let Some(&c) = b.get(j) else {
            return err(j, "unterminated string");
        };
        match c {
            b'"' => return Ok((StrSpan { start, end: j, esc }, j + 1)),
            b'\\' => {
                esc |= ESCAPED;
                match b.get(j + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u') => {
                        let Some(cp) = hex4(b, j + 2) else {
                            return err(j, "invalid unicode escape");
                        };
                        j += 6;
                        if (0xD800..0xDC00).contains(&cp) {
                            // A leading surrogate pairs only with a trailing one right after it;
                            // the pair is consumed here so its second half is not seen alone.
                            let paired = b.get(j) == Some(&b'\\')
                                && b.get(j + 1) == Some(&b'u')
                                && hex4(b, j + 2).is_some_and(|lo| (0xDC00..0xE000).contains(&lo));
                            if paired {
                                j += 6;
                            } else {
                                esc |= LONE_SURROGATE;
                            }
                        } else if (0xDC00..0xE000).contains(&cp) {
                            esc |= LONE_SURROGATE;
                        }
                    }
                    _ => return err(j, "invalid escape"),
                }
            }
            0..=0x1F => return err(j, "control character in string"),
            _ => match utf8_seq_len(b, j) {
                Some(n) => j += n,
                None => return err(j, "invalid utf-8"),
            },
        }
        j = find_special(b, j);
    }
}

/// Index of the first `"` or backslash at or after `j`, or `b.len()`: the only bytes that end or
/// interrupt a string of input trusted to be valid JSON.
#[inline(always)]
fn find_quote_or_backslash(b: &[u8], mut j: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the only memory access is an unaligned
        // 16-byte load within `b` (j + 16 <= b.len()).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while j + 16 <= b.len() {
                let x = _mm_loadu_si128(b.as_ptr().add(j) as *const __m128i);
                let hits = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash));
                let mask = _mm_movemask_epi8(hits) as u32;
                if mask != 0 {
                    return j + mask.trailing_zeros() as usize;
                }
                j += 16;
            }
        }
    }
    while j < b.len() && b[j] != b'"' && b[j] != b'\\' {
        j += 1;
    }
    j
}

/// [`scan_string`] for input trusted to be valid JSON: finds the closing quote, stepping over
/// escapes, without validating escapes, control characters or UTF-8. On invalid input the span
/// is still within `b` (so decoding it cannot go out of bounds) and the only error is an
/// unterminated string.
#[inline(always)]
pub(crate) fn scan_string_trusted(b: &[u8], i: usize) -> LexResult<(StrSpan, usize)> {
    let start = i + 1;
    let mut esc = 0;
    let mut j = find_quote_or_backslash(b, start);
    loop {
        match b.get(j) {
            Some(b'"') => return Ok((StrSpan { start, end: j, esc }, j + 1)),
            // A backslash: the next byte is escaped whatever it is (`\u` hex digits hold no
            // quote or backslash in valid JSON).
            Some(_) => {
                esc = ESCAPED;
                j = find_quote_or_backslash(b, j + 2);
            }
            None => return err(b.len(), "unterminated string"),
        }
    }
}

/// Bit masks over a 32-byte block: (quotes, backslashes, `{`/`[`, `}`/`]`), bit k for byte k.
#[inline(always)]
pub(crate) fn structural_masks(block: &[u8; 32]) -> (u32, u32, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the loads read the 32 bytes of `block`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            // `[` `]` are `{` `}` minus 0x20: or-ing 0x20 in folds each pair onto one compare.
            let lower = _mm_set1_epi8(0x20);
            let open = _mm_set1_epi8(b'{' as i8);
            let close = _mm_set1_epi8(b'}' as i8);
            let half = |x: __m128i| {
                let f = _mm_or_si128(x, lower);
                (
                    _mm_movemask_epi8(_mm_cmpeq_epi8(x, quote)) as u32,
                    _mm_movemask_epi8(_mm_cmpeq_epi8(x, backslash)) as u32,
                    _mm_movemask_epi8(_mm_cmpeq_epi8(f, open)) as u32,
                    _mm_movemask_epi8(_mm_cmpeq_epi8(f, close)) as u32,
                )
            };
            let lo = half(_mm_loadu_si128(block.as_ptr() as *const __m128i));
            let hi = half(_mm_loadu_si128(block.as_ptr().add(16) as *const __m128i));
            (
                lo.0 | hi.0 << 16,
                lo.1 | hi.1 << 16,
                lo.2 | hi.2 << 16,
                lo.3 | hi.3 << 16,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut q, mut bs, mut o, mut c) = (0, 0, 0, 0);
        for (k, &x) in block.iter().enumerate() {
            match x {
                b'"' => q |= 1 << k,
                b'\\' => bs |= 1 << k,
                b'{' | b'[' => o |= 1 << k,
                b'}' | b']' => c |= 1 << k,
                _ => {}
            }
        }
        (q, bs, o, c)
    }
}

/// Decodes the content of an escaped string span, appending UTF-8 to `out`. Lone surrogate
/// escapes decode to U+FFFD rather than failing. Spans from [`scan_string_trusted`] over invalid
/// input may hold malformed escapes: those decode to something unspecified, never out of bounds
/// (every read is within the span).
pub(crate) fn decode_escaped(b: &[u8], span: StrSpan, out: &mut Vec<u8>) {
    let b = &b[..span.end];
    let mut j = span.start;
    let end = span.end;
    let mut run = j;
    while j < end {
        if b[j] != b'\\' {
            j += 1;
            continue;
        }
        out.extend_from_slice(&b[run..j]);
        let Some(&e) = b.get(j + 1) else {
            // A trailing lone backslash (invalid input only).
            run = end;
            break;
        };
        j += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                // 'u' (validated by scan_string; anything else only from invalid trusted input).
                let hi = hex4(b, j).unwrap_or(0xFFFD);
                j = (j + 4).min(end);
                if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate pairs only with an immediately following low one.
                    if j + 6 <= end && b[j] == b'\\' && b[j + 1] == b'u' {
                        if let Some(lo) = hex4(b, j + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                        {
                            j += 6;
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        } else {
                            '\u{FFFD}'
                        }
                    } else {
                        '\u{FFFD}'
                    }
                } else {
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
        };
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
        run = j;
    }
    out.extend_from_slice(&b[run..end]);
}

/// Scans a number starting at `b[i]` per the JSON grammar; returns the index just past it.
#[inline]
pub(crate) fn scan_number(b: &[u8], i: usize) -> LexResult<usize> {
    scan_number_exp(b, i).map(|(end, _)| end)
}

/// [`scan_number`], also saying whether the number has an exponent (which the scan learns for
/// free, and the strict range check would otherwise look for byte by byte).
#[inline]
pub(crate) fn scan_number_exp(b: &[u8], i: usize) -> LexResult<(usize, bool)> {
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        _ => return err(j, "invalid number"),
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        if !b.get(j).is_some_and(u8::is_ascii_digit) {
            return err(j, "invalid number");
        }
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
    }
    let exp = matches!(b.get(j), Some(b'e' | b'E'));
    if exp {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if !b.get(j).is_some_and(u8::is_ascii_digit) {
            return err(j, "invalid number");
        }
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
    }
    Ok((j, exp))
}

/// Checks that `lit` (`true`, `false`, `null`) is at `b[i]`; returns the index past it.
#[inline]
pub(crate) fn scan_literal(b: &[u8], i: usize, lit: &'static [u8]) -> LexResult<usize> {
    if b.len() >= i + lit.len() && &b[i..i + lit.len()] == lit {
        Ok(i + lit.len())
    } else {
        err(i, "invalid literal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> LexResult<(StrSpan, usize)> {
        scan_string(input.as_bytes(), 0)
    }

    #[test]
    fn strings_scan_and_decode() {
        let (sp, end) = s("\"hello world, a long plain string\" tail").unwrap();
        assert_eq!(end, 34);
        assert!(!sp.escaped());
        let input = r#""a\"b\\c\/\n\u0041\ud83d\ude80\ud800x""#;
        let (sp, _) = s(input).unwrap();
        assert!(sp.escaped());
        let mut out = Vec::new();
        decode_escaped(input.as_bytes(), sp, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\"b\\c/\nA\u{1F680}\u{FFFD}x"
        );
    }

    #[test]
    fn strings_reject_bad_input() {
        assert!(s("\"abc").is_err());
        assert!(s("\"a\\x\"").is_err());
        assert!(s("\"a\\u12\"").is_err());
        assert!(s("\"a\u{1}b\"").is_err());
        assert!(scan_string(b"\"\xff\"", 0).is_err());
        assert!(scan_string(b"\"\xed\xa0\x80\"", 0).is_err()); // encoded surrogate
        assert!(scan_string(b"\"\xc3\xa9 caf\xc3\xa9 \xf0\x9f\x9a\x80 long enough\"", 0).is_ok());
    }

    #[test]
    fn numbers() {
        for ok in ["0", "-0", "12", "1.5", "1e5", "1E+5", "-3.25e-2"] {
            assert_eq!(scan_number(ok.as_bytes(), 0).unwrap(), ok.len(), "{ok}");
            let exp = ok.contains(['e', 'E']);
            assert_eq!(scan_number_exp(ok.as_bytes(), 0).unwrap(), (ok.len(), exp));
        }
        for bad in ["-", "01x", ".5", "1.", "1e", "+1"] {
            let r = scan_number(bad.as_bytes(), 0);
            assert!(r.is_err() || r.unwrap() < bad.len(), "{bad}");
        }
    }
}
