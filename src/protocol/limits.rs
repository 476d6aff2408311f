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
    let fail = |reply| Request::LimitError { reply, noreply };
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
    let fail = |reply| Request::LimitError { reply, noreply };
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
            Request::LimitError { reply, .. } => reply,
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
                lines: &[],
                count: 3,
                peek: true,
                noreply: false
            }
        );
        assert!(matches!(
            parse_ratelimit_all(&toks("17"), false),
            Request::LimitError { .. }
        ));
        assert!(matches!(
            parse_ratelimit_all(&toks("2 refund"), false),
            Request::LimitError { .. }
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
        // Durations past 2^64 ms are printed exactly.
        let far = Decision {
            retry_after_ns: 1_000_000 * (1u128 << 64),
            reset_after_ns: 1_000_000 * u128::from(u64::MAX),
            ..d
        };
        out.clear();
        write_decision(&mut out, &far);
        assert_eq!(
            &out[..],
            b"DENIED 10 0 18446744073709551616 18446744073709551615\r\n"
        );
    }
}

/// A parsed `ml` (meta rate limit) command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaLimit<'a> {
    /// The subject (base64-decoded with `b`).
    pub key: std::borrow::Cow<'a, [u8]>,
    /// Algorithm (`A`).
    pub algorithm: Algorithm,
    /// Parameters (`R W B D`).
    pub params: Params,
    /// Mode (`M`).
    pub mode: Mode,
    /// Flag tokens in request order (their echo order).
    pub tokens: Vec<&'a [u8]>,
    /// `b`: the key is base64.
    pub base64: bool,
    /// `q`: suppress `HD`.
    pub quiet: bool,
}

/// Parses `ml <key> R<limit> W<period> [B<burst>] [D<cost>] [A<G|F|S>] [M<C|P|R>] [b] [k]
/// [O<opaque>] [q] [l] [r] [a] [t]` (`toks` after the command). Errors use memcached's meta
/// parser strings.
pub fn parse_meta_limit<'a>(toks: &[&'a [u8]]) -> Request<'a> {
    let fail = |r: &'static str| Request::LimitError {
        reply: Reply::ClientError(r),
        noreply: false,
    };
    let Some((&key, flags)) = toks.split_first() else {
        return Request::LimitError {
            reply: Reply::Error,
            noreply: false,
        };
    };
    if key.len() > KEY_MAX_LENGTH {
        return fail("bad command line format");
    }
    if flags.len() + 3 > 20 {
        return fail("options flags are too long");
    }
    let mut seen = [false; 128];
    let (mut limit, mut period, mut burst, mut cost) = (None, None, 0u64, 1u64);
    let mut algorithm = Algorithm::Gcra;
    let mut mode = Mode::Consume;
    let (mut base64, mut quiet) = (false, false);
    for tok in flags {
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return fail("duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        let n = || number(arg).map_err(|_| "bad token in command line format");
        match o {
            b'R' => match n() {
                Ok(v) => limit = Some(v),
                Err(e) => return fail(e),
            },
            b'W' => match parse_period(arg) {
                Ok(ns) => period = Some(Ok(ns)),
                Err(PeriodError::OutOfRange) => period = Some(Err(())),
                Err(PeriodError::Syntax) => return fail("bad token in command line format"),
            },
            b'B' => match n() {
                Ok(v) => burst = v,
                Err(e) => return fail(e),
            },
            b'D' => match n() {
                Ok(v) => cost = v,
                Err(e) => return fail(e),
            },
            b'A' => {
                algorithm = match arg {
                    b"G" => Algorithm::Gcra,
                    b"F" => Algorithm::Fixed,
                    b"S" => Algorithm::Sliding,
                    _ => return fail("invalid mode for ml A token"),
                }
            }
            b'M' => {
                mode = match arg {
                    b"C" => Mode::Consume,
                    b"P" => Mode::Peek,
                    b"R" => Mode::Refund,
                    _ => return fail("invalid mode for ml M token"),
                }
            }
            b'O' if tok.len() > 32 => return fail("opaque token too long"),
            b'b' => base64 = true,
            b'q' => quiet = true,
            b'k' | b'O' | b'l' | b'r' | b'a' | b't' => {}
            _ => return fail("invalid flag"),
        }
    }
    let key: std::borrow::Cow<'a, [u8]> = if base64 {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(k) if !k.is_empty() && k.len() <= KEY_MAX_LENGTH => std::borrow::Cow::Owned(k),
            _ => return fail("error decoding key"),
        }
    } else {
        std::borrow::Cow::Borrowed(key)
    };
    let (Some(limit), Some(period)) = (limit, period) else {
        return fail("bad command line format");
    };
    let Ok(period_ns) = period else {
        return fail("invalid period");
    };
    let params = (|| {
        Ok::<_, Reply>(Params {
            limit: in_u32(limit, 1, "invalid limit")?,
            period_ns,
            burst: in_u32(burst, 0, "invalid burst")?,
            cost: in_u32(cost, 1, "invalid cost")?,
        })
    })();
    let params = match params.and_then(|p| {
        p.validate(algorithm)
            .map(|()| p)
            .map_err(|e| Reply::ClientError(e.message()))
    }) {
        Ok(p) => p,
        Err(reply) => {
            return Request::LimitError {
                reply,
                noreply: false,
            }
        }
    };
    Request::MetaLimit(MetaLimit {
        key,
        algorithm,
        params,
        mode,
        tokens: flags.to_vec(),
        base64,
        quiet,
    })
}

/// Appends an `ml` reply: `HD`/`NS`, then the requested fields in request order.
pub fn write_meta_decision(out: &mut BytesMut, req: &MetaLimit<'_>, d: &Decision) {
    let mut n = itoa::Buffer::new();
    out.put_slice(if d.allowed { b"HD" } else { b"NS" });
    for tok in &req.tokens {
        let (flag, v) = match tok[0] {
            b'l' => (b'l', u128::from(d.limit)),
            b'r' => (b'r', u128::from(d.remaining)),
            b'a' => (b'a', d.retry_after_ms()),
            b't' => (b't', d.reset_after_ms()),
            b'O' => {
                out.put_u8(b' ');
                out.put_slice(tok);
                continue;
            }
            b'k' => {
                super::meta::put_key(out, &req.key, req.base64);
                continue;
            }
            _ => continue,
        };
        out.put_u8(b' ');
        out.put_u8(flag);
        put_wide(out, &mut n, v);
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod meta_tests {
    use super::*;

    fn parse(line: &str) -> Request<'_> {
        let toks: Vec<&[u8]> = line
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::as_bytes)
            .collect();
        parse_meta_limit(&toks)
    }

    fn error(line: &str) -> Reply {
        match parse(line) {
            Request::LimitError { reply, .. } => reply,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn parses_and_encodes() {
        let Request::MetaLimit(m) = parse("api:u42 R100 W60s B10 l r a t k O7") else {
            panic!()
        };
        assert_eq!(
            m.params,
            Params {
                limit: 100,
                period_ns: 60_000_000_000,
                burst: 10,
                cost: 1
            }
        );
        let d = Decision {
            allowed: true,
            limit: 10,
            remaining: 9,
            retry_after_ns: 0,
            reset_after_ns: 600_000_000,
        };
        let mut out = BytesMut::new();
        write_meta_decision(&mut out, &m, &d);
        assert_eq!(&out[..], b"HD l10 r9 a0 t600 kapi:u42 O7\r\n");
        let Request::MetaLimit(m) = parse("YWJj R5 W1m AF MP b k q") else {
            panic!()
        };
        assert_eq!(
            (&m.key[..], m.algorithm, m.mode, m.quiet),
            (&b"abc"[..], Algorithm::Fixed, Mode::Peek, true)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(error(""), Reply::Error);
        assert_eq!(error("k R5"), Reply::ClientError("bad command line format"));
        assert_eq!(error("k R5 W1s R6"), Reply::ClientError("duplicate flag"));
        assert_eq!(error("k R5 W1s Z"), Reply::ClientError("invalid flag"));
        assert_eq!(
            error("k Rx W1s"),
            Reply::ClientError("bad token in command line format")
        );
        assert_eq!(
            error("k R5 W1y"),
            Reply::ClientError("bad token in command line format")
        );
        assert_eq!(error("k R5 W0"), Reply::ClientError("invalid period"));
        assert_eq!(error("k R0 W1s"), Reply::ClientError("invalid limit"));
        assert_eq!(
            error("k R5 W1s D6"),
            Reply::ClientError("cost exceeds burst")
        );
        assert_eq!(
            error("k R5 W1s AX"),
            Reply::ClientError("invalid mode for ml A token")
        );
        assert_eq!(
            error("k R5 W1s MX"),
            Reply::ClientError("invalid mode for ml M token")
        );
        assert_eq!(
            error(&format!("k R5 W1s O{}", "x".repeat(40))),
            Reply::ClientError("opaque token too long")
        );
        assert_eq!(
            error("! R5 W1s b"),
            Reply::ClientError("error decoding key")
        );
    }
}
