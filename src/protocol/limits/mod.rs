//! Text syntax of the `ratelimit` family (see `docs/ratelimit.md`):
//!
//! ```text
//! ratelimit <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding] [peek|refund] [noreply]
//! ratelimit <key> @<policy> [<cost>] [peek|refund] [noreply]
//! ratelimit_all <n> [peek] [noreply]        followed by n lines:
//! <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding]
//! ```

use bytes::{BufMut, BytesMut};

use crate::protocol::{Reply, Request, KEY_MAX_LENGTH};
use crate::ratelimit::{parse_period, Algorithm, Decision, Limit, Mode, Params, PeriodError};

/// Most limits in one `ratelimit_all`.
pub const MAX_LIMITS: usize = 16;

const BAD_FORMAT: Reply = Reply::ClientError("bad command line format");
/// `BAD_FORMAT` of a `ratelimit` line, with a usage hint as memcached gives for `delete`.
pub const RATELIMIT_USAGE: &str = "bad command line format.  Usage: ratelimit <key> <limit> \
<period> [<burst> [<cost>]] [gcra|fixed|sliding] [peek|refund] [noreply] \
or ratelimit <key> @<policy> [<cost>] [peek|refund] [noreply]";
/// `BAD_FORMAT` of a `ratelimit_all` line, with a usage hint.
pub const RATELIMIT_ALL_USAGE: &str = "bad command line format.  Usage: ratelimit_all <n> \
[peek] [noreply], then <n> lines of <key> <limit> <period> [<burst> [<cost>]] \
[gcra|fixed|sliding]";

/// `reply`, with `usage` in place of a bare `bad command line format`.
fn hinted(reply: Reply, usage: &'static str) -> Reply {
    if reply == BAD_FORMAT {
        Reply::ClientError(usage)
    } else {
        reply
    }
}
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
    let mut numbers = [0u64; 2];
    let mut n_numbers = 0;
    let mut algorithm = None;
    let mut keywords_seen = false;
    for tok in &toks[3..] {
        if tok.first().is_some_and(u8::is_ascii_digit) {
            if keywords_seen || n_numbers == 2 {
                return Err(BAD_FORMAT);
            }
            numbers[n_numbers] = number(tok)?;
            n_numbers += 1;
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
    let burst = in_u32(numbers[0], 0, "invalid burst")?;
    let cost = in_u32(
        if n_numbers == 2 { numbers[1] } else { 1 },
        1,
        "invalid cost",
    )?;
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
        from_policy: false,
        group: crate::limiter::Group::NONE,
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
    let fail = |reply| Request::LimitError {
        reply: hinted(reply, RATELIMIT_USAGE),
        noreply,
    };
    let mut mode = None;
    if toks.len() >= 2 && toks[1].first() == Some(&b'@') {
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
    }
    let parsed = parse_limit(toks, |tok| match Mode::from_keyword(tok) {
        Some(Mode::Consume) | None => Ok(false),
        Some(m) => set_mode(&mut mode, m),
    });
    match parsed {
        Ok(limit) => Request::RateLimit {
            key: limit.key,
            target: Target::Explicit(limit),
            mode: mode.unwrap_or(Mode::Consume),
            noreply,
        },
        Err(r) => fail(r),
    }
}

/// Parses the header tokens after `ratelimit_all` (the last `noreply` already removed).
pub fn parse_ratelimit_all<'a>(toks: &[&'a [u8]], noreply: bool) -> Request<'a> {
    let fail = |reply| Request::LimitError {
        reply: hinted(reply, RATELIMIT_ALL_USAGE),
        noreply,
    };
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
        lines: &[],
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
    put_wide(out, &mut n, d.retry_after_ms());
    out.put_u8(b' ');
    put_wide(out, &mut n, d.reset_after_ms());
    out.put_slice(b"\r\n");
}

/// Appends a u128 in decimal, through itoa's cheaper u64 path when it fits (it nearly always
/// does: only durations past 584 million years need more).
#[inline]
fn put_wide(out: &mut BytesMut, n: &mut itoa::Buffer, v: u128) {
    match u64::try_from(v) {
        Ok(v) => out.put_slice(n.format(v).as_bytes()),
        Err(_) => out.put_slice(n.format(v).as_bytes()),
    }
}

pub use meta::{parse_meta_limit, write_meta_decision, MetaLimit};

mod meta;
#[cfg(test)]
mod meta_tests;
#[cfg(test)]
mod tests;
