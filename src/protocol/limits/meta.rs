//! The meta form of `ratelimit`: `ml <key> R<limit> W<period> ...` and its `HD`/`NS` reply.

use bytes::{BufMut, BytesMut};

use super::{in_u32, number, put_wide};
use crate::protocol::{Reply, Request, KEY_MAX_LENGTH};
use crate::ratelimit::{parse_period, Algorithm, Decision, Mode, Params, PeriodError};

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
                crate::protocol::meta::put_key(out, &req.key, req.base64);
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
