//! memcached's meta commands (`mg ms md ma me mn`) in the text protocol: parsing of the key,
//! the flag tokens and their arguments with memcached 1.6.18's rules and error strings, and
//! the encoders of the flag echoes (`O`, `k`, `b`). Execution lives in the server.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};

use super::{Reply, Request, KEY_MAX_LENGTH};
use crate::numeric::{parse_i32_truncating, parse_u32_truncating, parse_u64};

/// memcached's MFLAG_MAX_OPT_LENGTH: most tokens (command, key, flags, terminal) in a meta line.
const MAX_OPT_TOKENS: usize = 20;
/// Longest opaque token (`O` included).
const MAX_OPAQUE_LENGTH: usize = 32;

/// True for an `O` token longer than memcached accepts ("opaque token too long"). `mg` and
/// `ma` find it only while answering, after their effects; `ms` and `md` before any.
pub fn opaque_too_long(tok: &[u8]) -> bool {
    tok[0] == b'O' && tok.len() > MAX_OPAQUE_LENGTH
}

/// memcached's base64 decoder for `b` keys: bytes outside the alphabet are skipped, `=` is a
/// zero digit that marks padding, and decoding ends with the first block holding padding.
/// `None` where memcached fails (no digits, digits not a multiple of four, bad padding).
pub fn decode_key(src: &[u8]) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            b'=' => Some(0),
            _ => None,
        }
    }
    let count = src.iter().filter(|&&b| digit(b).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let (mut block, mut n, mut pad) = ([0u8; 4], 0, 0);
    for &b in src {
        let Some(d) = digit(b) else { continue };
        pad += usize::from(b == b'=');
        block[n] = d;
        n += 1;
        if n < 4 {
            continue;
        }
        n = 0;
        out.extend_from_slice(&[
            block[0] << 2 | block[1] >> 4,
            block[1] << 4 | block[2] >> 2,
            block[2] << 6 | block[3],
        ]);
        if pad > 0 {
            if pad > 2 {
                return None;
            }
            out.truncate(out.len() - pad);
            break;
        }
    }
    Some(out)
}

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCmd {
    /// `mg`
    Get,
    /// `ms`
    Set,
    /// `md`
    Delete,
    /// `ma`
    Arith,
}

/// A parsed meta command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest<'a> {
    /// Which command.
    pub cmd: MetaCmd,
    /// The key, base64-decoded when the `b` flag was given.
    pub key: Cow<'a, [u8]>,
    /// The flag tokens, in request order (their echo order).
    pub tokens: Vec<&'a [u8]>,
    /// `b`: the key is base64.
    pub base64: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `q`: quiet mode.
    pub quiet: bool,
    /// `u`: do not bump the item.
    pub no_update: bool,
    /// `I`: invalidate (mark stale) instead of failing or deleting.
    pub invalidate: bool,
    /// `C`: compare cas.
    pub cas: Option<u64>,
    /// `F`: client flags.
    pub client_flags: u32,
    /// `T`: new exptime.
    pub ttl: Option<i32>,
    /// `N`: autovivify with this exptime.
    pub vivify: Option<i32>,
    /// `R`: win a recache token if the ttl is below this.
    pub recache: Option<i32>,
    /// `M`: mode switch character.
    pub mode: Option<u8>,
    /// `D`: delta (default 1).
    pub delta: u64,
    /// `J`: initial value for autovivified counters (default 0).
    pub initial: u64,
    /// Value length (`ms` only).
    pub datalen: usize,
    /// The value (`ms` only; empty until [`super::text::decode`] has framed it).
    pub data: &'a [u8],
}

fn err(r: &'static str) -> Reply {
    Reply::ClientError(r)
}

/// The flag preparse of memcached (`_meta_flag_preparse`): first error string, if any.
fn preparse(req: &mut MetaRequest<'_>) -> Result<(), &'static str> {
    let mut seen = [false; 128];
    let mut error: Option<&'static str> = None;
    for i in 0..req.tokens.len() {
        let tok = req.tokens[i];
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err("duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        match o {
            b'b' => {
                match decode_key(&req.key) {
                    Some(k) => req.key = Cow::Owned(k),
                    None => error = Some("error decoding key"),
                }
                req.base64 = true;
            }
            b'N' | b'T' | b'R' => match parse_i32_truncating(arg) {
                Some(v) => match o {
                    b'N' => req.vivify = Some(v),
                    b'T' => req.ttl = Some(v),
                    _ => req.recache = Some(v),
                },
                None => error = Some("bad token in command line format"),
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => req.value = true,
            b'u' => req.no_update = true,
            b'q' => req.quiet = true,
            // memcached flags a bad F without a message of its own: an earlier one stays.
            b'F' => match parse_u32_truncating(arg) {
                Some(v) => req.client_flags = v,
                None => {
                    error.get_or_insert("bad command line format");
                }
            },
            b'C' => match parse_u64(arg) {
                Some(v) => req.cas = Some(v),
                None => error = Some("bad token in command line format"),
            },
            b'M' => {
                if tok.len() != 2 {
                    error = Some("incorrect length for M token");
                } else {
                    req.mode = Some(tok[1]);
                }
            }
            b'J' => match parse_u64(arg) {
                Some(v) => req.initial = v,
                None => error = Some("invalid numeric initial value"),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => req.delta = v,
                None => error = Some("invalid numeric delta value"),
            },
            b'I' => req.invalidate = true,
            _ => return Err("invalid flag"),
        }
    }
    error.map_or(Ok(()), Err)
}

/// Parses a meta command. `toks` are all tokens of the line (command first); `ntokens` is
/// memcached's count (tokens + terminal) for its length checks.
pub fn parse_meta<'a>(toks: &[&'a [u8]], ntokens: usize) -> Request<'a> {
    let cmd = match toks[0][1] {
        b'g' => MetaCmd::Get,
        b's' => MetaCmd::Set,
        b'd' => MetaCmd::Delete,
        b'a' => MetaCmd::Arith,
        b'n' => {
            return Request::Reply {
                reply: Reply::Line("MN"),
                noreply: false,
            }
        }
        b'e' => return parse_me(toks, ntokens),
        _ => {
            return Request::Reply {
                reply: Reply::Error,
                noreply: false,
            }
        }
    };
    let fail = |r: Reply| Request::Reply {
        reply: r,
        noreply: false,
    };
    if ntokens < 3 {
        return fail(Reply::Error);
    }
    let key = toks[1];
    if key.len() > KEY_MAX_LENGTH {
        return fail(err("bad command line format"));
    }
    let too_long = if cmd == MetaCmd::Get {
        "options flags are too long"
    } else {
        "options flags too long"
    };
    let mut req = MetaRequest {
        cmd,
        key: Cow::Borrowed(key),
        tokens: Vec::new(),
        base64: false,
        value: false,
        quiet: false,
        no_update: false,
        invalidate: false,
        cas: None,
        client_flags: 0,
        ttl: None,
        vivify: None,
        recache: None,
        mode: None,
        delta: 1,
        initial: 0,
        datalen: 0,
        data: &[],
    };
    let mut first_flag = 2;
    if cmd == MetaCmd::Set {
        if ntokens == 3 {
            return fail(err("bad command line format"));
        }
        if ntokens > MAX_OPT_TOKENS {
            return fail(err(too_long));
        }
        match parse_i32_truncating(toks[2]) {
            Some(len) if (0..=i32::MAX - 2).contains(&len) => req.datalen = len as usize,
            _ => return fail(err("bad command line format")),
        }
        first_flag = 3;
    } else if ntokens > MAX_OPT_TOKENS {
        return fail(err(too_long));
    }
    req.tokens = toks[first_flag..].to_vec();
    if let Err(e) = preparse(&mut req) {
        let e = match cmd {
            MetaCmd::Delete | MetaCmd::Arith => "invalid or duplicate flag",
            _ => e,
        };
        return meta_error(cmd, req.datalen, err(e));
    }
    // memcached's order: flags, then (md) opaque, then the mode; `ms` finds a long opaque
    // before its mode but reports the mode first.
    match (cmd, req.mode) {
        (MetaCmd::Set, Some(m)) if !b"EAPRS".contains(&m) => {
            return meta_error(cmd, req.datalen, err("invalid mode for ms M token"));
        }
        (MetaCmd::Arith, Some(m)) if !b"I+D-".contains(&m) => {
            return meta_error(cmd, req.datalen, err("invalid mode for ma M token"));
        }
        _ => {}
    }
    if matches!(cmd, MetaCmd::Set | MetaCmd::Delete)
        && req.tokens.iter().any(|t| opaque_too_long(t))
    {
        return meta_error(cmd, req.datalen, err("opaque token too long"));
    }
    Request::Meta(Box::new(req))
}

/// An error after an `ms` length was read swallows the value; other commands just answer.
fn meta_error(cmd: MetaCmd, datalen: usize, reply: Reply) -> Request<'static> {
    if cmd == MetaCmd::Set {
        Request::Swallow {
            reply,
            len: datalen + 2,
        }
    } else {
        Request::Reply {
            reply,
            noreply: false,
        }
    }
}

fn parse_me<'a>(toks: &[&'a [u8]], ntokens: usize) -> Request<'a> {
    let bad = Request::Reply {
        reply: err("bad command line format"),
        noreply: false,
    };
    if ntokens < 3 || toks[1].len() > KEY_MAX_LENGTH {
        return bad;
    }
    let mut key = Cow::Borrowed(toks[1]);
    if ntokens >= 4 && toks[2] == b"b" {
        match decode_key(toks[1]) {
            Some(k) => key = Cow::Owned(k),
            None => return bad,
        }
    }
    Request::MetaDebug { key }
}

/// Appends ` k<key>` (base64 plus ` b` for binary keys).
pub fn put_key(out: &mut BytesMut, key: &[u8], base64: bool) {
    out.put_slice(b" k");
    if base64 {
        out.put_slice(STANDARD.encode(key).as_bytes());
        out.put_slice(b" b");
    } else {
        out.put_slice(key);
    }
}

/// Appends the head of a meta hit: `VA <len>` when the value follows, else `HD`.
pub fn put_hit_head(out: &mut BytesMut, value: bool, len: usize) {
    if value {
        out.put_slice(b"VA ");
        out.put_slice(itoa::Buffer::new().format(len).as_bytes());
    } else {
        out.put_slice(b"HD");
    }
}

/// Appends the `O` and `k` echoes, in request order (what every miss and `md` return).
pub fn put_echoes(out: &mut BytesMut, req: &MetaRequest<'_>) {
    for tok in &req.tokens {
        match tok[0] {
            b'O' => {
                out.put_u8(b' ');
                out.put_slice(tok);
            }
            b'k' => put_key(out, &req.key, req.base64),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Request<'_> {
        let toks: Vec<&[u8]> = line
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::as_bytes)
            .collect();
        parse_meta(&toks, toks.len() + 1)
    }

    fn error(line: &str) -> Reply {
        match parse(line) {
            Request::Reply { reply, .. } | Request::Swallow { reply, .. } => reply,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn parses_flags() {
        let Request::Meta(r) = parse("mg foo v k O123 T30 N5 q") else {
            panic!()
        };
        assert_eq!(
            (r.cmd, &r.key[..], r.value, r.quiet, r.ttl, r.vivify),
            (MetaCmd::Get, &b"foo"[..], true, true, Some(30), Some(5))
        );
        let Request::Meta(r) = parse("ms foo 3 F5 C9 MA I") else {
            panic!()
        };
        assert_eq!(
            (r.datalen, r.client_flags, r.cas, r.mode, r.invalidate),
            (3, 5, Some(9), Some(b'A'), true)
        );
        let Request::Meta(r) = parse("mg Zm9v b k") else {
            panic!()
        };
        assert_eq!(&r.key[..], b"foo");
        let Request::Meta(r) = parse("ma n D5 J10 N0 MD") else {
            panic!()
        };
        assert_eq!((r.delta, r.initial, r.mode), (5, 10, Some(b'D')));
    }

    #[test]
    fn errors_match_memcached() {
        assert_eq!(error("mg"), Reply::Error);
        assert_eq!(error("mg foo v v"), err("duplicate flag"));
        assert_eq!(error("mg foo !"), err("invalid flag"));
        assert_eq!(error("mg foo E5"), err("invalid flag"));
        assert_eq!(error("mg ! b"), err("error decoding key"));
        // mg and ma find a long opaque while answering; md and ms before running.
        let long = "x".repeat(40);
        assert!(matches!(
            parse(&format!("mg foo O{long}")),
            Request::Meta(_)
        ));
        assert!(matches!(
            parse(&format!("ma foo O{long}")),
            Request::Meta(_)
        ));
        assert_eq!(
            error(&format!("md foo O{long}")),
            err("opaque token too long")
        );
        assert!(matches!(
            parse(&format!("ms foo 3 O{long}")),
            Request::Swallow { len: 5, .. }
        ));
        // ms reports a bad mode before a long opaque.
        assert_eq!(
            error(&format!("ms foo 3 O{long} MX")),
            err("invalid mode for ms M token")
        );
        // A bad F keeps an earlier flag's message.
        assert_eq!(
            error("ms foo 3 Tx Fx"),
            err("bad token in command line format")
        );
        assert_eq!(
            error(&format!("mg {} v", "k".repeat(251))),
            err("bad command line format")
        );
        assert_eq!(
            error("mg a b c d e f g h i j k l m n o p q r s t"),
            err("options flags are too long")
        );
        assert_eq!(error("ms foo"), err("bad command line format"));
        assert_eq!(error("ms foo abc"), err("bad command line format"));
        assert!(matches!(
            parse("ms foo 3 zz"),
            Request::Swallow { len: 5, .. }
        ));
        assert_eq!(error("ms foo 3 MX"), err("invalid mode for ms M token"));
        assert_eq!(error("ms foo 3 Mab"), err("incorrect length for M token"));
        assert_eq!(
            error("ms foo 3 Tabc"),
            err("bad token in command line format")
        );
        assert_eq!(error("ms foo 3 F-1"), err("bad command line format"));
        assert_eq!(error("ma cnt Dabc"), err("invalid or duplicate flag"));
        assert_eq!(error("ma cnt Mz"), err("invalid mode for ma M token"));
        assert_eq!(error("md x1 x"), err("invalid or duplicate flag"));
        assert_eq!(error("mz foo"), Reply::Error);
    }

    #[test]
    fn decodes_keys_as_memcached_does() {
        let d = |s: &str| decode_key(s.as_bytes());
        assert_eq!(d("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(d("Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(d("Zh==").as_deref(), Some(&b"f"[..]));
        assert_eq!(d("Zg=a").as_deref(), Some(&b"f\0"[..]));
        assert_eq!(d("Zg==Zm9v").as_deref(), Some(&b"f"[..]));
        assert_eq!(d("Z.m.9.v!").as_deref(), Some(&b"foo"[..]));
        for bad in ["", "!!!", "Zm9", "Zm9vYg", "Z===", "====", "-_-_"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn echoes_keys_and_opaques() {
        let Request::Meta(r) = parse("mg Zm9v b O1 k") else {
            panic!()
        };
        let mut out = BytesMut::new();
        put_echoes(&mut out, &r);
        assert_eq!(&out[..], b" O1 kZm9v b");
    }
}
