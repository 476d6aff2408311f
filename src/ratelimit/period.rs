//! The period syntax shared by the text (`60s`) and meta (`W60s`) protocols, and the range
//! check shared with the binary protocol (period in ms).

use std::fmt;

/// Shortest period accepted: 1 ms.
pub const MIN_PERIOD_NS: u64 = 1_000_000;
/// Longest period accepted: 365 days.
pub const MAX_PERIOD_NS: u64 = 365 * 86_400 * 1_000_000_000;

/// Why a period token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodError {
    /// Not an unsigned decimal followed by an optional known unit
    /// (the wire answer is `CLIENT_ERROR bad command line format`).
    Syntax,
    /// Well formed but outside 1 ms ..= 365 days (`CLIENT_ERROR invalid period`).
    OutOfRange,
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeriodError::Syntax => "bad command line format",
            PeriodError::OutOfRange => "invalid period",
        })
    }
}

impl std::error::Error for PeriodError {}

/// Parses `<digits>[ms|s|m|h|d]` (units lower case; a bare number is seconds, like every
/// memcached TTL) into nanoseconds within [`MIN_PERIOD_NS`]..=[`MAX_PERIOD_NS`].
/// No sign, space or fraction is accepted; a number too large for any unit is out of range.
pub fn parse_period(token: &[u8]) -> Result<u64, PeriodError> {
    let digits = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(PeriodError::Syntax);
    }
    let unit_ns: u64 = match &token[digits..] {
        b"ms" => 1_000_000,
        b"" | b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        b"d" => 86_400_000_000_000,
        _ => return Err(PeriodError::Syntax),
    };
    let mut n: u64 = 0;
    for &b in &token[..digits] {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(PeriodError::OutOfRange)?;
    }
    n.checked_mul(unit_ns)
        .filter(|ns| (MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(ns))
        .ok_or(PeriodError::OutOfRange)
}

/// A period given in milliseconds (binary protocol) as nanoseconds, range-checked.
pub fn period_from_ms(ms: u64) -> Result<u64, PeriodError> {
    ms.checked_mul(1_000_000)
        .filter(|ns| (MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(ns))
        .ok_or(PeriodError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units() {
        assert_eq!(parse_period(b"60"), Ok(60_000_000_000));
        assert_eq!(parse_period(b"60s"), Ok(60_000_000_000));
        assert_eq!(parse_period(b"250ms"), Ok(250_000_000));
        assert_eq!(parse_period(b"1m"), Ok(60_000_000_000));
        assert_eq!(parse_period(b"1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_period(b"2d"), Ok(172_800_000_000_000));
        assert_eq!(parse_period(b"0060s"), Ok(60_000_000_000));
    }

    #[test]
    fn range_edges() {
        assert_eq!(parse_period(b"1ms"), Ok(MIN_PERIOD_NS));
        assert_eq!(parse_period(b"365d"), Ok(MAX_PERIOD_NS));
        assert_eq!(parse_period(b"8760h"), Ok(MAX_PERIOD_NS));
        assert_eq!(parse_period(b"31536000"), Ok(MAX_PERIOD_NS));
        assert_eq!(parse_period(b"31536000000ms"), Ok(MAX_PERIOD_NS));
        for bad in [
            &b"0"[..],
            b"0ms",
            b"0d",
            b"366d",
            b"31536001",
            b"31536000001ms",
            b"99999999999999999999999999",
            b"18446744073709551615d",
        ] {
            assert_eq!(parse_period(bad), Err(PeriodError::OutOfRange), "{bad:?}");
        }
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            &b""[..],
            b"s",
            b"ms",
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5s",
            b"1S",
            b"1MS",
            b"1sec",
            b"1us",
            b"1ns",
            b"1w",
            b"1y",
            b"1hh",
            b"1s1",
            b"99999999999999999999999x",
        ] {
            assert_eq!(parse_period(bad), Err(PeriodError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn binary_ms() {
        assert_eq!(period_from_ms(1), Ok(MIN_PERIOD_NS));
        assert_eq!(period_from_ms(31_536_000_000), Ok(MAX_PERIOD_NS));
        assert_eq!(period_from_ms(0), Err(PeriodError::OutOfRange));
        assert_eq!(period_from_ms(31_536_000_001), Err(PeriodError::OutOfRange));
        assert_eq!(period_from_ms(u64::MAX), Err(PeriodError::OutOfRange));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(token in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = parse_period(&token);
        }

        #[test]
        fn every_unit_agrees(n in 0u64..40_000_000_000) {
            let units: [(&str, u128); 5] = [
                ("ms", 1_000_000),
                ("s", 1_000_000_000),
                ("m", 60_000_000_000),
                ("h", 3_600_000_000_000),
                ("d", 86_400_000_000_000),
            ];
            for (unit, mul) in units {
                let ns = u128::from(n) * mul;
                let expected = if (u128::from(MIN_PERIOD_NS)..=u128::from(MAX_PERIOD_NS)).contains(&ns) {
                    Ok(ns as u64)
                } else {
                    Err(PeriodError::OutOfRange)
                };
                prop_assert_eq!(parse_period(format!("{n}{unit}").as_bytes()), expected);
            }
        }
    }
}
