//! Decimal parsing with the exact acceptance rules memcached applies (`safe_strtoul` and
//! friends over C's `strtoul`): leading white space and a sign are accepted, the number must be
//! followed by white space or the end of the token, and out-of-range values are refused.
//! Both the protocol parsers and the store (incr/decr on stored values) use these.

/// C's `isspace` in the "C" locale.
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Result of C's `strtoull`/`strtoll` scan: magnitude, sign, overflow, and bytes consumed.
struct Scan {
    magnitude: u64,
    negative: bool,
    overflow: bool,
    /// Index just past the last digit; 0 when no digits were found.
    end: usize,
}

fn scan(s: &[u8]) -> Scan {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = u64::from(s[i] - b'0');
        match magnitude.checked_mul(10).and_then(|m| m.checked_add(d)) {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    let end = if i == digits_start { 0 } else { i };
    Scan {
        magnitude,
        negative,
        overflow,
        end,
    }
}

/// memcached's rule for what may follow a number: white space or the end of the token.
fn tail_ok(s: &[u8], end: usize) -> bool {
    end != 0 && (end == s.len() || is_c_space(s[end]) || s[end] == 0)
}

/// `safe_strtoull`: an unsigned 64-bit decimal.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let sc = scan(s);
    if sc.overflow || !tail_ok(s, sc.end) {
        return None;
    }
    let v = if sc.negative {
        sc.magnitude.wrapping_neg()
    } else {
        sc.magnitude
    };
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// `safe_strtoul`: as [`parse_u64`], then truncated to 32 bits as memcached's store into a
/// `uint32_t` does on 64-bit builds.
pub fn parse_u32_truncating(s: &[u8]) -> Option<u32> {
    parse_u64(s).map(|v| v as u32)
}

/// `safe_strtoll`: a signed 64-bit decimal.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let sc = scan(s);
    if !tail_ok(s, sc.end) {
        return None;
    }
    let limit = if sc.negative {
        1u64 << 63
    } else {
        (1u64 << 63) - 1
    };
    if sc.overflow || sc.magnitude > limit {
        return None;
    }
    Some(if sc.negative {
        (sc.magnitude as i64).wrapping_neg()
    } else {
        sc.magnitude as i64
    })
}

/// `safe_strtol`: a signed decimal in C's 64-bit `long`, truncated to 32 bits as memcached's
/// store into an `int32_t` does.
pub fn parse_i32_truncating(s: &[u8]) -> Option<i32> {
    parse_i64(s).map(|v| v as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_what_strtoull_accepts() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"  42"), Some(42));
        assert_eq!(parse_u64(b"+42"), Some(42));
        assert_eq!(parse_u64(b"42 "), Some(42));
        assert_eq!(parse_u64(b"42\t"), Some(42));
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"42x"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-"), None);
        assert_eq!(parse_u64(b"abc"), None);
    }

    #[test]
    fn small_negative_wraps_like_c() {
        // strtoull("-5") is 2^64-5, negative as signed, and a '-' is present: refused.
        assert_eq!(parse_u64(b"-5"), None);
        // "-9223372036854775809" wraps to a value that is positive as signed: C accepts it.
        assert_eq!(
            parse_u64(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
    }

    #[test]
    fn u32_truncates() {
        assert_eq!(parse_u32_truncating(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32_truncating(b"4294967296"), Some(0));
        assert_eq!(parse_u32_truncating(b"-1"), None);
    }

    #[test]
    fn signed_parsing() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i32_truncating(b"-1"), Some(-1));
        assert_eq!(parse_i32_truncating(b"4294967297"), Some(1));
        assert_eq!(parse_i32_truncating(b"1.5"), None);
    }

    proptest! {
        #[test]
        fn u64_roundtrips(v: u64) {
            prop_assert_eq!(parse_u64(v.to_string().as_bytes()), Some(v));
        }

        #[test]
        fn i64_roundtrips(v: i64) {
            prop_assert_eq!(parse_i64(v.to_string().as_bytes()), Some(v));
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_u64(&s);
            let _ = parse_i64(&s);
        }
    }
}
