//! The rate-limit spec's ranges (`/work/shared/spec/ratelimit.md`, `docs/ratelimit.md`) as
//! assertions, and reference implementations the parsers are compared with.

use ratecache::protocol::binary::{self, opcode, Command};
use ratecache::protocol::{Decode, DecodeLimits, Reply, KEY_MAX_LENGTH};
use ratecache::ratelimit::{Algorithm, Limit, Mode, Params, PeriodError};

/// Shortest period the spec allows: 1 ms.
pub const MIN_PERIOD_NS: u64 = 1_000_000;
/// Longest period the spec allows: 365 days.
pub const MAX_PERIOD_NS: u64 = 365 * 86_400 * 1_000_000_000;

/// Error strings a rate-limit parser may answer (text and meta forms).
pub const ERRORS: &[&str] = &[
    "bad command line format",
    ratecache::protocol::limits::RATELIMIT_USAGE,
    ratecache::protocol::limits::RATELIMIT_ALL_USAGE,
    "invalid limit",
    "invalid period",
    "invalid burst",
    "invalid cost",
    "unknown option",
    "cost exceeds burst",
    // ml (memcached's meta parser strings)
    "bad token in command line format",
    "options flags are too long",
    "duplicate flag",
    "invalid flag",
    "invalid mode for ml A token",
    "invalid mode for ml M token",
    "opaque token too long",
    "error decoding key",
];

/// Asserts that accepted parameters satisfy every range of the spec: limit >= 1,
/// 1 ms <= period <= 365 d in whole milliseconds, cost >= 1, cost <= burst (or limit when
/// burst is 0), and fixed/sliding take burst 0 or `limit` only.
pub fn check_params(p: &Params, alg: Algorithm) {
    assert!(p.limit >= 1, "limit 0 accepted: {p:?}");
    assert!(
        (MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&p.period_ns),
        "period out of range: {p:?}"
    );
    assert_eq!(p.period_ns % 1_000_000, 0, "period not whole ms: {p:?}");
    assert!(p.cost >= 1, "cost 0 accepted: {p:?}");
    let capacity = if p.burst == 0 { p.limit } else { p.burst };
    assert!(p.cost <= capacity, "cost over capacity accepted: {p:?}");
    if alg != Algorithm::Gcra {
        assert!(
            p.burst == 0 || p.burst == p.limit,
            "{alg:?} with burst accepted: {p:?}"
        );
    }
    assert_eq!(p.validate(alg), Ok(()), "accepted but invalid: {p:?}");
}

/// [`check_params`] plus the key rules (1..=250 bytes, no space).
pub fn check_limit(l: &Limit<'_>) {
    check_key(l.key);
    check_params(&l.params, l.algorithm);
}

/// A subject key: 1..=250 bytes without a space (the tokenizer's separator).
pub fn check_key(key: &[u8]) {
    assert!(
        !key.is_empty() && key.len() <= KEY_MAX_LENGTH,
        "bad key length {}",
        key.len()
    );
    assert!(!key.contains(&b' '), "space in key {key:?}");
}

/// Asserts a refusal is a `CLIENT_ERROR` with one of the [`ERRORS`] strings.
pub fn check_error(reply: &Reply) {
    match reply {
        Reply::ClientError(msg) => assert!(ERRORS.contains(msg), "unexpected error {msg:?}"),
        other => panic!("unexpected refusal {other:?}"),
    }
}

/// Reference parser for a period token: digits, then `ms`, `s`, `m`, `h`, `d` or nothing
/// (seconds); computed in u128 (digit strings saturate far above any valid period).
pub fn reference_period(token: &[u8]) -> Result<u64, PeriodError> {
    let digits = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(PeriodError::Syntax);
    }
    let unit: u128 = match &token[digits..] {
        b"ms" => 1_000_000,
        b"" | b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        b"d" => 86_400_000_000_000,
        _ => return Err(PeriodError::Syntax),
    };
    let n = token[..digits].iter().fold(0u128, |n, &d| {
        (n * 10 + u128::from(d - b'0')).min(u128::from(u64::MAX) + 1)
    });
    let ns = n * unit;
    if (u128::from(MIN_PERIOD_NS)..=u128::from(MAX_PERIOD_NS)).contains(&ns) {
        Ok(ns as u64)
    } else {
        Err(PeriodError::OutOfRange)
    }
}

/// Reference validity of raw parameters (numbers as the client wrote them, before any range
/// check): the error a parser may answer for each violated rule, empty if all hold.
pub fn violations(
    limit: u64,
    period_ns: Option<u64>,
    burst: u64,
    cost: u64,
    alg: Algorithm,
) -> Vec<&'static str> {
    let max = u64::from(u32::MAX);
    let mut v = Vec::new();
    if limit == 0 || limit > max {
        v.push("invalid limit");
    }
    if period_ns.is_none() {
        v.push("invalid period");
    }
    if burst > max || (alg != Algorithm::Gcra && burst != 0 && burst != limit) {
        v.push("invalid burst");
    }
    if cost == 0 || cost > max {
        v.push("invalid cost");
    }
    let capacity = if burst == 0 { limit } else { burst };
    if cost > capacity {
        v.push("cost exceeds burst");
    }
    v
}

/// Asserts that the binary protocol decides the same parameters: a RATELIMIT packet with
/// these extras is accepted with equal parameters, algorithm and mode.
pub fn check_binary_agrees(key: &[u8], alg: Algorithm, p: &Params, mode: Mode) {
    let mut extras = (p.period_ns / 1_000_000).to_be_bytes().to_vec();
    extras.extend(p.limit.to_be_bytes());
    extras.extend(p.burst.to_be_bytes());
    extras.extend(p.cost.to_be_bytes());
    extras.extend([alg.code(), mode.code(), 0, 0]);
    let mut packet = Vec::new();
    binary::encode_request(&mut packet, opcode::RATELIMIT, key, &extras, &[], 0, 0);
    match binary::decode(&packet, &DecodeLimits::default()) {
        Decode::Frame(f) => match f.req.command {
            Command::RateLimit { args: Some(a), .. } => {
                assert_eq!((a.params, a.algorithm, a.mode), (*p, alg, mode), "binary")
            }
            other => panic!("binary refuses {p:?} {alg:?}: {other:?}"),
        },
        other => panic!("binary: {other:?}"),
    }
}
