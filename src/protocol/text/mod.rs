//! memcached's classic text protocol: command lines into [`Request`]s ([`parse_command`]),
//! framing of whole requests over a connection's bytes ([`decode`]), and reply encoders.
//!
//! Parsing follows memcached byte for byte: its tokenizer ([`tokens`]), its token counts and
//! error strings, and numbers by C's `strtoul` rules ([`crate::numeric`]).

mod decode;
mod encode;
mod tokens;

pub use decode::{batch_keys, decode, BatchKeys};
pub use encode::{
    write_metadump_line, write_number, write_reply, write_stat, write_value, write_value_header,
};
pub use tokens::Keys;

use super::{Reply, Request, StatsKind, StoreKind, KEY_MAX_LENGTH};
use crate::numeric::{parse_i32_truncating, parse_u32_truncating, parse_u64};
use tokens::Tokens;

fn reply(r: Reply, noreply: bool) -> Request<'static> {
    Request::Reply { reply: r, noreply }
}

const ERROR: Request<'static> = Request::Reply {
    reply: Reply::Error,
    noreply: false,
};
const BAD_FORMAT: Reply = Reply::ClientError("bad command line format");

/// Splits one complete line (without `\r\n`) into a request.
pub fn parse_command(line: &[u8]) -> Request<'_> {
    let t = Tokens::new(line);
    let n = t.ntokens();
    let cmd = t.get(0);
    if n < 2 || cmd.len() < 2 {
        return ERROR;
    }
    match cmd {
        b"ml" | [b'm', _] => {
            // A meta line has at most 20 tokens; only an over-long (refused) line needs more
            // than the tokenizer's 23, so only then are they collected afresh.
            let all: Vec<&[u8]>;
            let toks = if t.rest.is_none() {
                &t.toks[..t.len]
            } else {
                all = Keys::new(t.line).collect();
                &all[..]
            };
            if cmd == b"ml" {
                super::limits::parse_meta_limit(&toks[1..])
            } else {
                super::meta::parse_meta(toks, n)
            }
        }
        b"get" | b"gets" | b"bget" => {
            if n < 3 {
                return ERROR;
            }
            Request::Get {
                cas: cmd == b"gets",
                touch: None,
                keys: Keys::new(t.from(1)),
            }
        }
        b"gat" | b"gats" => {
            if n < 3 {
                return ERROR;
            }
            let Some(exptime) = parse_i32_truncating(t.get(1)) else {
                return reply(Reply::ClientError("invalid exptime argument"), false);
            };
            Request::Get {
                cas: cmd == b"gats",
                touch: Some(exptime),
                keys: Keys::new(t.from(2)),
            }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            if n != 6 && n != 7 {
                return ERROR;
            }
            let kind = match cmd {
                b"set" => StoreKind::Set,
                b"add" => StoreKind::Add,
                b"replace" => StoreKind::Replace,
                b"append" => StoreKind::Append,
                _ => StoreKind::Prepend,
            };
            parse_store(&t, kind)
        }
        b"cas" => {
            if n != 7 && n != 8 {
                return ERROR;
            }
            parse_store(&t, StoreKind::Cas)
        }
        b"incr" | b"decr" => {
            if n != 4 && n != 5 {
                return ERROR;
            }
            let noreply = t.noreply();
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return reply(BAD_FORMAT, noreply);
            }
            match parse_u64(t.get(2)) {
                Some(delta) => Request::Arith {
                    key,
                    incr: cmd == b"incr",
                    delta,
                    noreply,
                },
                None => reply(
                    Reply::ClientError("invalid numeric delta argument"),
                    noreply,
                ),
            }
        }
        b"delete" => {
            if !(3..=5).contains(&n) {
                return ERROR;
            }
            let mut noreply = false;
            if n > 3 {
                let hold_is_zero = t.get(2) == b"0";
                noreply = t.noreply();
                let valid =
                    (n == 4 && (hold_is_zero || noreply)) || (n == 5 && hold_is_zero && noreply);
                if !valid {
                    return reply(
                        Reply::ClientError(
                            "bad command line format.  Usage: delete <key> [noreply]",
                        ),
                        noreply,
                    );
                }
            }
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return reply(BAD_FORMAT, noreply);
            }
            Request::Delete { key, noreply }
        }
        b"touch" => {
            if n != 4 && n != 5 {
                return ERROR;
            }
            let noreply = t.noreply();
            let key = t.get(1);
            if key.len() > KEY_MAX_LENGTH {
                return reply(BAD_FORMAT, noreply);
            }
            match parse_i32_truncating(t.get(2)) {
                Some(exptime) => Request::Touch {
                    key,
                    exptime,
                    noreply,
                },
                None => reply(Reply::ClientError("invalid exptime argument"), noreply),
            }
        }
        b"stats" => parse_stats(&t),
        b"flush_all" => {
            if !(2..=4).contains(&n) {
                return ERROR;
            }
            let noreply = t.noreply();
            let mut delay = 0;
            if n != if noreply { 3 } else { 2 } {
                match parse_i32_truncating(t.get(1)) {
                    Some(d) => delay = d,
                    None => {
                        return Request::FlushAll {
                            delay: i32::MIN,
                            noreply,
                        }
                    }
                }
            }
            Request::FlushAll { delay, noreply }
        }
        b"version" => Request::Version,
        b"quit" => Request::Quit,
        b"shutdown" => Request::Shutdown {
            valid: n == 2 || (n == 3 && t.get(1) == b"graceful"),
            graceful: n == 3,
        },
        b"verbosity" => {
            if n != 3 && n != 4 {
                return ERROR;
            }
            let noreply = t.noreply();
            match parse_u32_truncating(t.get(1)) {
                Some(level) => Request::Verbosity { level, noreply },
                None => reply(BAD_FORMAT, noreply),
            }
        }
        b"cache_memlimit" => {
            if n != 3 && n != 4 {
                return ERROR;
            }
            let noreply = t.noreply();
            match parse_u32_truncating(t.get(1)) {
                None => reply(Reply::Error, noreply),
                Some(mb) if mb < 8 => reply(
                    Reply::Line("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"),
                    noreply,
                ),
                Some(mb) if mb > 1_000_000_000 => reply(
                    Reply::Line("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"),
                    noreply,
                ),
                Some(megabytes) => Request::CacheMemlimit { megabytes, noreply },
            }
        }
        b"slabs" => parse_slabs(&t),
        b"lru_crawler" => parse_lru_crawler(&t),
        b"lru" => {
            if n < 3 {
                return ERROR;
            }
            let noreply = t.noreply();
            match t.get(1) {
                b"mode" if n >= 4 && matches!(t.get(2), b"flat" | b"segmented") => {
                    reply(Reply::Ok, noreply)
                }
                b"temp_ttl" if n >= 4 && parse_i32_truncating(t.get(2)).is_some() => {
                    reply(Reply::Ok, noreply)
                }
                b"tune" if n >= 7 => reply(Reply::Ok, noreply),
                _ => reply(Reply::Error, noreply),
            }
        }
        b"ratelimit" | b"ratelimit_all" => {
            if t.rest.is_some() {
                // More than 23 tokens: never a valid rate-limit line.
                return Request::LimitError {
                    reply: BAD_FORMAT,
                    noreply: false,
                };
            }
            let noreply = t.noreply();
            let toks = &t.toks[1..t.len - usize::from(noreply)];
            if cmd == b"ratelimit" {
                super::limits::parse_ratelimit(toks, noreply)
            } else {
                super::limits::parse_ratelimit_all(toks, noreply)
            }
        }
        b"watch" => reply(
            Reply::Line("CLIENT_ERROR watch commands not allowed"),
            t.noreply(),
        ),
        _ => {
            if t.len >= 1 && t.get(t.len - 1).starts_with(b"HTTP/") {
                Request::Close
            } else {
                ERROR
            }
        }
    }
}

fn parse_store<'a>(t: &Tokens<'a>, kind: StoreKind) -> Request<'a> {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        return reply(BAD_FORMAT, noreply);
    }
    let (Some(flags), Some(exptime), Some(len)) = (
        parse_u32_truncating(t.get(2)),
        parse_i32_truncating(t.get(3)),
        parse_i32_truncating(t.get(4)),
    ) else {
        return reply(BAD_FORMAT, noreply);
    };
    let mut cas = 0;
    if kind == StoreKind::Cas {
        match parse_u64(t.get(5)) {
            Some(c) => cas = c,
            None => return reply(BAD_FORMAT, noreply),
        }
    }
    if !(0..=i32::MAX - 2).contains(&len) {
        return reply(BAD_FORMAT, noreply);
    }
    Request::Store {
        kind,
        key,
        flags,
        exptime,
        len: len as usize,
        cas,
        noreply,
        data: &[],
    }
}

fn parse_stats<'a>(t: &Tokens<'a>) -> Request<'a> {
    if t.ntokens() == 2 {
        return Request::Stats(StatsKind::General);
    }
    let kind = match t.get(1) {
        b"reset" => StatsKind::Reset,
        b"detail" => match t.get(2) {
            b"on" if t.ntokens() >= 4 => StatsKind::DetailOn,
            b"off" if t.ntokens() >= 4 => StatsKind::DetailOff,
            b"dump" if t.ntokens() >= 4 => StatsKind::DetailDump,
            _ => return reply(Reply::ClientError("usage: stats detail on|off|dump"), false),
        },
        b"settings" => StatsKind::Settings,
        b"cachedump" => {
            if t.ntokens() < 5 {
                return reply(Reply::ClientError("bad command line"), false);
            }
            let (Some(id), Some(limit)) = (
                parse_u32_truncating(t.get(2)),
                parse_u32_truncating(t.get(3)),
            ) else {
                return reply(BAD_FORMAT, false);
            };
            if id >= 64 {
                return reply(Reply::ClientError("Illegal slab id"), false);
            }
            StatsKind::CacheDump(id, limit)
        }
        b"conns" => StatsKind::Conns,
        b"items" => StatsKind::Items,
        b"slabs" => StatsKind::Slabs,
        b"sizes" => StatsKind::Sizes,
        b"sizes_enable" => StatsKind::SizesEnable,
        b"sizes_disable" => StatsKind::SizesDisable,
        b"ratelimit" => StatsKind::RateLimit,
        _ => return ERROR,
    };
    Request::Stats(kind)
}

fn parse_slabs<'a>(t: &Tokens<'a>) -> Request<'a> {
    let n = t.ntokens();
    if n == 5 && t.get(1) == b"reassign" {
        if parse_i32_truncating(t.get(2)).is_none() || parse_i32_truncating(t.get(3)).is_none() {
            return reply(BAD_FORMAT, false);
        }
        // Items are charged per chunk, not held in pages: there is never a page to move.
        return reply(
            Reply::Line("NOSPARE source class has no spare pages"),
            false,
        );
    }
    if n >= 4 && t.get(1) == b"automove" {
        let noreply = t.noreply();
        if t.get(2) == b"ratio" {
            let ok = n >= 5
                && std::str::from_utf8(t.get(3)).is_ok_and(|s| s.trim().parse::<f64>().is_ok());
            return reply(if ok { Reply::Ok } else { Reply::Error }, noreply);
        }
        return match parse_u32_truncating(t.get(2)) {
            None => reply(BAD_FORMAT, noreply),
            Some(0..=2) => reply(Reply::Ok, noreply),
            Some(_) => reply(Reply::Error, noreply),
        };
    }
    ERROR
}

/// The classes `lru_crawler metadump` names: `all` or `hash` (every class) or a comma list of
/// class ids 1 to 63 (memcached's MAX_NUMBER_OF_SLAB_CLASSES - 1).
fn metadump_classes(arg: &[u8]) -> Option<u64> {
    if arg == b"all" || arg == b"hash" {
        return Some(u64::MAX);
    }
    let mut classes = 0u64;
    for id in arg.split(|&b| b == b',').filter(|id| !id.is_empty()) {
        let id: u32 = std::str::from_utf8(id).ok()?.parse().ok()?;
        if !(1..64).contains(&id) {
            return None;
        }
        classes |= 1 << id;
    }
    Some(classes)
}

fn parse_lru_crawler<'a>(t: &Tokens<'a>) -> Request<'a> {
    let n = t.ntokens();
    match (n, t.get(1)) {
        (4, b"crawl") => reply(Reply::Ok, false),
        (4, b"metadump") => match metadump_classes(t.get(2)) {
            Some(classes) => Request::MetaDump { classes },
            None => reply(Reply::Line("BADCLASS invalid class id"), false),
        },
        (4, b"tocrawl") => match parse_u32_truncating(t.get(2)) {
            Some(_) => reply(Reply::Ok, false),
            None => reply(BAD_FORMAT, false),
        },
        (4, b"sleep") => match parse_u32_truncating(t.get(2)) {
            Some(s) if s > 1_000_000 => reply(
                Reply::ClientError("sleep must be one second or less"),
                false,
            ),
            Some(_) => reply(Reply::Ok, false),
            None => reply(BAD_FORMAT, false),
        },
        // memcached's crawler runs by default, so enabling it again fails there.
        (3, b"enable") => reply(
            Reply::Line("ERROR failed to start lru crawler thread"),
            false,
        ),
        (3, b"disable") => reply(Reply::Ok, false),
        _ => ERROR,
    }
}

/// ASCII authentication (`-Y`): the value length of a `set <k> <f> <e> <n>` line (the `\r`
/// left in, as memcached does), or `None` for anything else.
pub fn auth_set_length(line: &[u8]) -> Option<u32> {
    let t = Tokens::new(line);
    if t.ntokens() < 6 || t.get(0) != b"set" {
        return None;
    }
    parse_u32_truncating(t.get(4))
}

/// ASCII authentication (`-Y`): `user pass` from the value of the authenticating `set`.
pub fn split_auth_token(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = Tokens::new(payload);
    (t.ntokens() >= 3).then(|| (t.get(0), t.get(1)))
}

/// True if a line that has no `\n` yet may keep growing past the normal limit: memcached
/// allows that only for `get`/`gets` multi-gets (after at most 100 leading spaces).
pub fn may_be_long_multiget(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}

#[cfg(test)]
mod tests;
