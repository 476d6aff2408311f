//! Text syntax of the `ratelimit` family (see `docs/ratelimit.md`):
//!
//! ```text
//! ratelimit <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding] [peek|refund] [noreply]
//! ratelimit <key> @<policy> [<cost>] [peek|refund] [noreply]
//! ratelimit_all <n> [peek] [noreply]        followed by n lines:
//! <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding]
//! ```

use bytes::{BufMut, BytesMut};

use super::{Reply, Request, KEY_MAX_LENGTH};
use crate::ratelimit::{parse_period, Algorithm, Decision, Limit, Mode, Params, PeriodError};

/// Most limits in one `ratelimit_all`.
pub const MAX_LIMITS: usize = 16;

const BAD_FORMAT: Reply = Reply::ClientError("bad command line format");
const UNKNOWN_OPTION: Reply = Reply::ClientError("unknown option");

/// What a `ratelimit` line asks to limit by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Parameters given on the line.
    Explicit(Limit<'a>),
    /// A named policy from the server's policy file, with an optional cost.
    Policy {
        /// Policy name (without the `@`).
        name: &'a [u8],
        /// Cost per limit (default 1).
        cost: u32,
    },
}

/// A strict unsigned decimal (digits only); values past u64 saturate (they are out of range).
fn number(tok: &[u8]) -> Result<u64, Reply> {
    if tok.is_empty() || !tok.iter().all(u8::is_ascii_digit) {
        return Err(BAD_FORMAT);
    }
    Ok(tok.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn in_u32(v: u64, lo: u64, err: &'static str) -> Result<u32, Reply> {
    if v < lo || v > u64::from(u32::MAX) {
        return Err(Reply::ClientError(err));
    }
    Ok(v as u32)
}

/// Parses `<key> <limit> <period> [<burst> [<cost>]]` then keywords. Keywords other than an
/// algorithm are handed to `keyword`, which returns false for an unknown one.
fn parse_limit<'a>(
    toks: &[&'a [u8]],
    mut keyword: impl FnMut(&[u8]) -> Result<bool, Reply>,
) -> Result<Limit<'a>, Reply> {
    if toks.len() < 3 {
        return Err(BAD_FORMAT);
    }
    let key = toks[0];
    if key.len() > KEY_MAX_LENGTH {
        return Err(BAD_FORMAT);
    }
    let limit = number(toks[1])?;
    let period = parse_period(toks[2]);
    let mut numbers = Vec::with_capacity(2);
    let mut algorithm = None;
    let mut keywords_seen = false;
    for tok in &toks[3..] {
        if tok.first().is_some_and(u8::is_ascii_digit) {
            if keywords_seen || numbers.len() == 2 {
                return Err(BAD_FORMAT);
            }
            numbers.push(number(tok)?);
            continue;
        }
        keywords_seen = true;
        if let Some(a) = Algorithm::from_keyword(tok) {
            if algorithm.replace(a).is_some() {
                return Err(UNKNOWN_OPTION);
            }
        } else if !keyword(tok)? {
            return Err(UNKNOWN_OPTION);
        }
    }
    let period_ns = match period {
        Ok(ns) => ns,
        Err(PeriodError::Syntax) => return Err(BAD_FORMAT),
        Err(PeriodError::OutOfRange) => return Err(Reply::ClientError("invalid period")),
    };
    let limit = in_u32(limit, 1, "invalid limit")?;
    let burst = in_u32(numbers.first().copied().unwrap_or(0), 0, "invalid burst")?;
    let cost = in_u32(numbers.get(1).copied().unwrap_or(1), 1, "invalid cost")?;
    let algorithm = algorithm.unwrap_or(Algorithm::Gcra);
    let params = Params {
        limit,
        period_ns,
        burst,
        cost,
    };
    params
        .validate(algorithm)
        .map_err(|e| Reply::ClientError(e.message()))?;
    Ok(Limit {
        key,
        algorithm,
        params,
    })
}

fn set_mode(mode: &mut Option<Mode>, m: Mode) -> Result<bool, Reply> {
    if mode.replace(m).is_some() {
        return Err(UNKNOWN_OPTION);
    }
    Ok(true)
}

/// Parses the tokens after `ratelimit` (the last `noreply`, if any, already removed).
pub fn parse_ratelimit<'a>(toks: &[&'a [u8]], noreply: bool) -> Request<'a> {
    let fail = |reply| Request::Reply { reply, noreply };
    let mut mode = None;
    let target = if toks.len() >= 2 && toks[1].first() == Some(&b'@') {
        let key = toks[0];
        if key.len() > KEY_MAX_LENGTH || toks[1].len() < 2 {
            return fail(BAD_FORMAT);
        }
        let mut cost = None;
        for tok in &toks[2..] {
            if tok.first().is_some_and(u8::is_ascii_digit) {
                if cost.is_some() || mode.is_some() {
                    return fail(BAD_FORMAT);
                }
                match number(tok).and_then(|c| in_u32(c, 1, "invalid cost")) {
                    Ok(c) => cost = Some(c),
                    Err(r) => return fail(r),
                }
                continue;
            }
            let r = match Mode::from_keyword(tok) {
                Some(Mode::Consume) | None => Err(UNKNOWN_OPTION),
                Some(m) => set_mode(&mut mode, m),
            };
            if let Err(r) = r {
                return fail(r);
            }
        }
        let policy = Target::Policy {
            name: &toks[1][1..],
            cost: cost.unwrap_or(1),
        };
        return Request::RateLimit {
            key,
            target: policy,
            mode: mode.unwrap_or(Mode::Consume),
            noreply,
        };
    } else {
        let parsed = parse_limit(toks, |tok| match Mode::from_keyword(tok) {
            Some(Mode::Consume) | None => Ok(false),
            Some(m) => set_mode(&mut mode, m),
        });
        match parsed {
            Ok(l) => Target::Explicit(l),
            Err(r) => return fail(r),
        }
    };
    let Target::Explicit(limit) = target else {
        unreachable!()
    };
    Request::RateLimit {
        key: limit.key,
        target,
        mode: mode.unwrap_or(Mode::Consume),
        noreply,
    }
}

/// Parses the header tokens after `ratelimit_all` (the last `noreply` already removed).
pub fn parse_ratelimit_all<'a>(toks: &[&'a [u8]], noreply: bool) -> Request<'a> {
    let fail = |reply| Request::Reply { reply, noreply };
    let Some((&n, rest)) = toks.split_first() else {
        return fail(BAD_FORMAT);
    };
    let count = match number(n) {
        Ok(c) if (1..=MAX_LIMITS as u64).contains(&c) => c as usize,
        _ => return fail(BAD_FORMAT),
    };
    let mut peek = false;
    for tok in rest {
        match *tok {
            b"peek" if !peek => peek = true,
            _ => return fail(UNKNOWN_OPTION),
        }
    }
    Request::RateLimitAll {
        count,
        peek,
        noreply,
    }
}

/// Parses one limit line of a `ratelimit_all` body.
pub fn parse_limit_line(line: &[u8]) -> Result<Limit<'_>, Reply> {
    let toks: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    parse_limit(&toks, |_| Ok(false))
}

/// Appends `ALLOWED|DENIED <limit> <remaining> <retry_after_ms> <reset_after_ms>\r\n`.
pub fn write_decision(out: &mut BytesMut, d: &Decision) {
    let mut n = itoa::Buffer::new();
    out.put_slice(if d.allowed { b"ALLOWED " } else { b"DENIED " });
    out.put_slice(n.format(d.limit).as_bytes());
    out.put_u8(b' ');
    out.put_slice(n.format(d.remaining).as_bytes());
    out.put_u8(b' ');
    out.put_slice(n.format(d.retry_after_ms()).as_bytes());
    out.put_u8(b' ');
    out.put_slice(n.format(d.reset_after_ms()).as_bytes());
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<&[u8]> {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .map(str::as_bytes)
            .collect()
    }

    fn err(s: &str) -> Reply {
        match parse_ratelimit(&toks(s), false) {
            Request::Reply { reply, .. } => reply,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn ok(s: &str) -> (Limit<'_>, Mode) {
        match parse_ratelimit(&toks(s), false) {
            Request::RateLimit {
                target: Target::Explicit(l),
                mode,
                ..
            } => (l, mode),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_the_full_form() {
        let (l, m) = ok("api:u42 100 60s 10");
        assert_eq!(l.key, b"api:u42");
        assert_eq!(
            l.params,
            Params {
                limit: 100,
                period_ns: 60_000_000_000,
                burst: 10,
                cost: 1
            }
        );
        assert_eq!((l.algorithm, m), (Algorithm::Gcra, Mode::Consume));
        let (l, m) = ok("k 5 250ms 5 2 peek fixed");
        assert_eq!(
            (l.params.cost, l.params.period_ns, l.algorithm, m),
            (2, 250_000_000, Algorithm::Fixed, Mode::Peek)
        );
        let (l, _) = ok("k 5 60");
        assert_eq!(
            l.params.period_ns, 60_000_000_000,
            "a bare period is seconds"
        );
        let (_, m) = ok("k 5 1h refund sliding");
        assert_eq!(m, Mode::Refund);
    }

    #[test]
    fn errors_from_the_spec() {
        assert_eq!(err("k 5"), BAD_FORMAT);
        assert_eq!(err(""), BAD_FORMAT);
        assert_eq!(err("k x 60"), BAD_FORMAT);
        assert_eq!(err("k -5 60"), BAD_FORMAT);
        assert_eq!(err("k 5 60y"), BAD_FORMAT);
        assert_eq!(err("k 5 60 1x"), BAD_FORMAT);
        assert_eq!(err("k 5 60 1 1 1"), BAD_FORMAT);
        assert_eq!(err(&format!("{} 5 60", "k".repeat(251))), BAD_FORMAT);
        assert_eq!(err("k 0 60"), Reply::ClientError("invalid limit"));
        assert_eq!(err("k 4294967296 60"), Reply::ClientError("invalid limit"));
        assert_eq!(err("k 5 0"), Reply::ClientError("invalid period"));
        assert_eq!(err("k 5 366d"), Reply::ClientError("invalid period"));
        assert_eq!(
            err("k 5 60 4294967296"),
            Reply::ClientError("invalid burst")
        );
        assert_eq!(err("k 5 60 5 0"), Reply::ClientError("invalid cost"));
        assert_eq!(err("k 5 60 5 6"), Reply::ClientError("cost exceeds burst"));
        assert_eq!(err("k 5 60 bogus"), UNKNOWN_OPTION);
        assert_eq!(err("k 5 60 gcra fixed"), UNKNOWN_OPTION);
        assert_eq!(err("k 5 60 peek refund"), UNKNOWN_OPTION);
        assert_eq!(err("k 5 60 peek 3"), BAD_FORMAT);
    }

    #[test]
    fn parses_policies_and_sets() {
        match parse_ratelimit(&toks("u1 @free 3 peek"), true) {
            Request::RateLimit {
                key,
                target: Target::Policy { name, cost },
                mode,
                noreply,
            } => {
                assert_eq!(
                    (key, name, cost, mode, noreply),
                    (&b"u1"[..], &b"free"[..], 3, Mode::Peek, true)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_ratelimit_all(&toks("3 peek"), false),
            Request::RateLimitAll {
                count: 3,
                peek: true,
                noreply: false
            }
        );
        assert!(matches!(
            parse_ratelimit_all(&toks("17"), false),
            Request::Reply { .. }
        ));
        assert!(matches!(
            parse_ratelimit_all(&toks("2 refund"), false),
            Request::Reply { .. }
        ));
        assert_eq!(parse_limit_line(b"k 10 1m").unwrap().params.limit, 10);
        assert_eq!(parse_limit_line(b"k 10 1m peek"), Err(UNKNOWN_OPTION));
    }

    #[test]
    fn encodes_decisions() {
        let mut out = BytesMut::new();
        let d = Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            retry_after_ns: 599_000_001,
            reset_after_ns: 6_000_000_000,
        };
        write_decision(&mut out, &d);
        assert_eq!(&out[..], b"DENIED 10 0 600 6000\r\n");
    }
}
