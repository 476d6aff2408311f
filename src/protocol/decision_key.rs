//! The decision keys of `--ratelimit-prefix` (docs/ratelimit.md, "Any client, any proxy"): a
//! key that names a rate-limit decision, so that any client able to send `get` can decide.
//!
//! ```text
//! PREFIX<policy>/<subject>                                  rl:free/api:u42
//! PREFIX<limit>/<period>[/<burst>][/<algorithm>]/<subject>  rl:100/60s/10/api:u42
//! ```
//!
//! A first field that starts with a digit is a limit, else a policy name. After the period a
//! field is a burst (all digits) or an algorithm only when another field follows it; the rest
//! is the subject, never empty, and may contain `/`. Pure: the policy is looked up, and the
//! decision made, by the executor.

use super::limits::Target;
use crate::ratelimit::{parse_period, Algorithm, Decision, Limit, Params};

/// Longest verdict line: `DENIED `, two u64 and two u128 in decimal, three spaces.
const VERDICT_MAX: usize = 7 + 20 + 20 + 39 + 39 + 3;

/// The value a decision key reads as: `ALLOWED|DENIED <limit> <remaining> <retry_after_ms>
/// <reset_after_ms>` without `\r\n`, formatted on the stack.
#[derive(Clone, Copy)]
pub struct VerdictLine {
    buf: [u8; VERDICT_MAX],
    len: usize,
}

impl VerdictLine {
    /// The line of decision `d`.
    pub fn new(d: &Decision) -> VerdictLine {
        let mut line = VerdictLine {
            buf: [0; VERDICT_MAX],
            len: 0,
        };
        let mut n = itoa::Buffer::new();
        line.put(if d.allowed { b"ALLOWED" } else { b"DENIED" });
        for v in [d.limit, d.remaining] {
            line.put(b" ");
            line.put(n.format(v).as_bytes());
        }
        for v in [d.retry_after_ms(), d.reset_after_ms()] {
            line.put(b" ");
            line.put(n.format(v).as_bytes());
        }
        line
    }

    fn put(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// The line's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A parsed decision key: what to decide and on which subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionKey<'a> {
    /// The subject, shared with `ratelimit <subject> ...`.
    pub subject: &'a [u8],
    /// Explicit parameters (cost 1) or a policy name (cost 1).
    pub target: Target<'a>,
}

/// A key under the prefix that does not parse (answered `CLIENT_ERROR bad rate-limit key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadDecisionKey;

/// Splits `s` at its first `/`: the field before it and the rest after it.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = s.iter().position(|&b| b == b'/')?;
    Some((&s[..at], &s[at + 1..]))
}

/// A strict decimal in `lo..=u32::MAX`.
fn number(tok: &[u8], lo: u32) -> Result<u32, BadDecisionKey> {
    if tok.is_empty() || tok.len() > 10 || !tok.iter().all(u8::is_ascii_digit) {
        return Err(BadDecisionKey);
    }
    let v = tok.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    u32::try_from(v)
        .ok()
        .filter(|&v| v >= lo)
        .ok_or(BadDecisionKey)
}

/// The decision `key` names when it begins with `prefix`: `None` for an ordinary key.
pub fn parse<'a>(prefix: &[u8], key: &'a [u8]) -> Option<Result<DecisionKey<'a>, BadDecisionKey>> {
    let body = key.strip_prefix(prefix)?;
    Some(parse_body(body))
}

fn parse_body(body: &[u8]) -> Result<DecisionKey<'_>, BadDecisionKey> {
    let (first, rest) = field(body).ok_or(BadDecisionKey)?;
    if !first.first().is_some_and(u8::is_ascii_digit) {
        if first.is_empty() || rest.is_empty() {
            return Err(BadDecisionKey);
        }
        let target = Target::Policy {
            name: first,
            cost: 1,
        };
        return Ok(DecisionKey {
            subject: rest,
            target,
        });
    }
    let limit = number(first, 1)?;
    let (period, mut rest) = field(rest).ok_or(BadDecisionKey)?;
    let period_ns = parse_period(period).map_err(|_| BadDecisionKey)?;
    let mut burst = None;
    let mut algorithm = None;
    while algorithm.is_none() {
        let Some((f, after)) = field(rest) else { break };
        if burst.is_none() && f.first().is_some_and(u8::is_ascii_digit) {
            burst = Some(number(f, 0)?);
        } else if let Some(a) = Algorithm::from_keyword(f) {
            algorithm = Some(a);
        } else {
            break;
        }
        rest = after;
    }
    if rest.is_empty() {
        return Err(BadDecisionKey);
    }
    let algorithm = algorithm.unwrap_or(Algorithm::Gcra);
    let params = Params {
        limit,
        period_ns,
        burst: burst.unwrap_or(0),
        cost: 1,
    };
    params.validate(algorithm).map_err(|_| BadDecisionKey)?;
    let limit = Limit {
        key: rest,
        algorithm,
        params,
        from_policy: false,
        group: crate::limiter::Group::NONE,
    };
    Ok(DecisionKey {
        subject: rest,
        target: Target::Explicit(limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(key: &[u8]) -> (Limit<'_>, &[u8]) {
        match parse(b"rl:", key) {
            Some(Ok(DecisionKey {
                subject,
                target: Target::Explicit(l),
            })) => (l, subject),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(key)),
        }
    }

    #[test]
    fn an_ordinary_key_is_not_a_decision() {
        assert_eq!(parse(b"rl:", b"user:1"), None);
        assert_eq!(parse(b"rl:", b"rl"), None);
    }

    #[test]
    fn explicit_keys_take_limit_period_burst_and_algorithm() {
        let (l, s) = explicit(b"rl:100/60s/10/api:u42");
        assert_eq!(s, b"api:u42");
        assert_eq!(l.key, b"api:u42");
        assert_eq!(
            (l.params.limit, l.params.burst, l.params.cost),
            (100, 10, 1)
        );
        assert_eq!(l.params.period_ns, 60_000_000_000);
        assert_eq!(l.algorithm, Algorithm::Gcra);
        let (l, s) = explicit(b"rl:5/1m/fixed/ip:10.1.2.3");
        assert_eq!(
            (s, l.algorithm, l.params.burst),
            (&b"ip:10.1.2.3"[..], Algorithm::Fixed, 0)
        );
        let (l, s) = explicit(b"rl:5/1m/5/sliding/a/b/c");
        assert_eq!(
            (s, l.algorithm, l.params.burst),
            (&b"a/b/c"[..], Algorithm::Sliding, 5)
        );
    }

    #[test]
    fn a_field_is_a_parameter_only_when_another_field_follows() {
        // The spec's own examples.
        let (l, s) = explicit(b"rl:100/60s/12345");
        assert_eq!((s, l.params.burst), (&b"12345"[..], 0));
        let (l, s) = explicit(b"rl:100/60s/10/5");
        assert_eq!((s, l.params.burst), (&b"5"[..], 10));
        // An algorithm name as the last field is the subject.
        let (l, s) = explicit(b"rl:100/60s/gcra");
        assert_eq!((s, l.algorithm), (&b"gcra"[..], Algorithm::Gcra));
        // After an algorithm, digits are the subject's.
        let (l, s) = explicit(b"rl:100/60s/fixed/10/x");
        assert_eq!((s, l.params.burst), (&b"10/x"[..], 0));
    }

    #[test]
    fn policies_take_the_first_field_as_name() {
        let k = parse(b"rl:", b"rl:free/api:u42/x").unwrap().unwrap();
        assert_eq!(k.subject, b"api:u42/x");
        assert_eq!(
            k.target,
            Target::Policy {
                name: b"free",
                cost: 1
            }
        );
    }

    #[test]
    fn malformed_keys_are_errors_never_misses() {
        for key in [
            &b"rl:"[..],
            b"rl:free",
            b"rl:free/",
            b"rl:/x",
            b"rl:100",
            b"rl:100/60s",
            b"rl:100/60s/",
            b"rl:100/60s/10/",
            b"rl:0/60s/x",
            b"rl:100/0s/x",
            b"rl:100/soon/x",
            b"rl:1x/60s/x",
            b"rl:99999999999/60s/x",
            b"rl:100/60s/99999999999/x",
            // A burst other than the limit is refused for fixed and sliding, as on the line.
            b"rl:5/1m/3/sliding/x",
        ] {
            assert_eq!(
                parse(b"rl:", key),
                Some(Err(BadDecisionKey)),
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn verdict_lines_are_the_ratelimit_reply_without_crlf() {
        let d = Decision {
            allowed: false,
            limit: u64::MAX,
            remaining: u64::MAX,
            retry_after_ns: u128::MAX,
            reset_after_ns: 1,
        };
        let line = VerdictLine::new(&d);
        let mut wire = bytes::BytesMut::new();
        crate::protocol::limits::write_decision(&mut wire, &d);
        assert_eq!(line.as_bytes(), wire.strip_suffix(b"\r\n").unwrap());
        assert!(line.as_bytes().starts_with(b"DENIED 18446744073709551615 "));
        let d = Decision {
            allowed: true,
            limit: 10,
            remaining: 9,
            retry_after_ns: 0,
            reset_after_ns: 6_000_000_001,
        };
        assert_eq!(VerdictLine::new(&d).as_bytes(), b"ALLOWED 10 9 0 6001");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let alphabet = b"rl:/0123456789smhdfixedgcra";
            let key: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 8 * 8)) as usize + i) % alphabet.len()])
                .collect();
            if let Some(Ok(k)) = parse(b"rl:", &key) {
                assert!(!k.subject.is_empty());
            }
        }
    }
}
