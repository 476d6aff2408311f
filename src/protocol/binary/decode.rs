//! Framing of the binary protocol, following memcached 1.6.18's `proto_bin.c` including its
//! quirks:
//! - a request is decided once its header, extras and key have arrived; only storage commands
//!   and SASL auth/step then wait for their value, and the rate-limit opcodes discard theirs;
//! - other commands leave any body bytes past extras and key in the stream, where they are read
//!   as the next request (a `touch` with a value, a `stat` with a value...);
//! - an unknown opcode is answered `Unknown command` and then `bodylen` more bytes are discarded
//!   *after* extras and key were already consumed;
//! - lengths that disagree (`keylen + extlen > bodylen`) answer `Unknown command` and close;
//!   a key over 250 bytes or a malformed known command answers `Invalid arguments` and closes;
//!   a first byte other than 0x80 closes without a reply.
//!
//! What it bounds: the header alone decides lengths that disagree and keys over 250 bytes; a
//! value over the item size limit, and SASL data over [`SMALL_FRAME`], are refused at once and
//! discarded as they arrive ([`Frame::skip`]), never buffered.

use super::{
    is_quiet, opcode, status, Command, Header, RateLimitArgs, Request, StoreOp, HEADER_LEN,
    RATELIMIT_EXTLEN, REQ_MAGIC,
};
use crate::protocol::{Decode, DecodeLimits, Frame, Refusal, KEY_MAX_LENGTH, SMALL_FRAME};
use crate::ratelimit::{period_from_ms, Algorithm, Mode, Params};
use crate::store::smallvec::SmallVec;

/// Longest SASL mechanism name memcached accepts.
const MAX_SASL_MECH_LEN: usize = 32;

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from(be_u32(b)) << 32 | u64::from(be_u32(&b[4..]))
}

/// Decodes the request at the start of `buf`. Never panics, whatever the bytes.
pub fn decode<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Decode<Request<'a>> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Decode::Incomplete {
            need: HEADER_LEN,
            fallback: None,
        };
    };
    let h = Header::parse(head);
    if h.magic != REQ_MAGIC {
        return Decode::Close;
    }
    let quiet = is_quiet(h.opcode);
    let frame = |command, len, skip: usize| {
        Decode::Frame(Frame {
            req: Request {
                header: h,
                quiet,
                command,
            },
            len,
            skip: skip as u64,
        })
    };
    let (extlen, keylen) = (usize::from(h.extlen), usize::from(h.keylen));
    if keylen + extlen > h.bodylen as usize {
        return frame(Command::BadLengths, HEADER_LEN, 0);
    }
    if keylen > KEY_MAX_LENGTH {
        return frame(Command::Invalid, HEADER_LEN, 0);
    }
    let prefix = h.prefix_len();
    if buf.len() < prefix {
        return Decode::Incomplete {
            need: prefix,
            fallback: None,
        };
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + extlen];
    let key = &buf[HEADER_LEN + extlen..prefix];
    let value_len = h.value_len();
    let total = prefix + value_len;
    // A body that must be buffered: waits for it, or runs `refused` (discarding the body)
    // when there is no memory to buffer it.
    let body = |refused: Command<'a>, with: &dyn Fn(&'a [u8]) -> Command<'a>| {
        if buf.len() < total {
            return Decode::Incomplete {
                need: total,
                fallback: Some(Frame {
                    req: Request {
                        header: h,
                        quiet,
                        command: refused,
                    },
                    len: prefix,
                    skip: value_len as u64,
                }),
            };
        }
        frame(with(&buf[prefix..total]), total, 0)
    };
    match command(&h, extras, key) {
        Command::Store {
            op,
            key,
            flags,
            exptime,
            ..
        } => {
            if !limits.fits(key.len(), value_len, flags) {
                let why = Refusal::TooLarge;
                return frame(Command::StoreRefused { op, key, why }, prefix, value_len);
            }
            let why = Refusal::NoMemory;
            body(Command::StoreRefused { op, key, why }, &|value| {
                Command::Store {
                    op,
                    key,
                    flags,
                    exptime,
                    value,
                }
            })
        }
        Command::SaslListMechs if !limits.sasl => frame(Command::Unknown, prefix, 0),
        Command::SaslAuth { .. } if !limits.sasl => frame(Command::Unknown, prefix, value_len),
        Command::SaslAuth { mech, step, .. } => {
            if mech.len() > MAX_SASL_MECH_LEN {
                return frame(Command::Error(status::EINVAL), prefix, value_len);
            }
            if value_len > SMALL_FRAME {
                return frame(Command::Error(status::ENOMEM), prefix, value_len);
            }
            body(Command::Error(status::ENOMEM), &|data| Command::SaslAuth {
                mech,
                step,
                data,
            })
        }
        Command::RateLimit { key, args } => {
            frame(Command::RateLimit { key, args }, prefix, value_len)
        }
        Command::Unknown => frame(Command::Unknown, prefix, h.bodylen as usize),
        c => frame(c, prefix, 0),
    }
}

fn command<'a>(h: &Header, extras: &[u8], key: &'a [u8]) -> Command<'a> {
    use opcode::*;
    let extlen = extras.len();
    let keylen = key.len();
    let bodylen = h.bodylen as usize;
    let no_body = extlen == 0 && keylen == 0 && bodylen == 0;
    let ok = |valid: bool, c: Command<'a>| if valid { c } else { Command::Invalid };
    match h.opcode {
        VERSION => ok(no_body, Command::Version),
        NOOP => ok(no_body, Command::Noop),
        QUIT | QUITQ => ok(no_body, Command::Quit),
        FLUSH | FLUSHQ => ok(
            keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4),
            Command::Flush {
                exptime: if extlen == 4 { be_u32(extras) } else { 0 },
            },
        ),
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => {
            if extlen == 8 && keylen != 0 && bodylen >= keylen + 8 {
                let op = match h.opcode {
                    SET | SETQ => StoreOp::Set,
                    ADD | ADDQ => StoreOp::Add,
                    _ => StoreOp::Replace,
                };
                Command::Store {
                    op,
                    key,
                    flags: be_u32(extras),
                    exptime: be_u32(&extras[4..]),
                    value: &[],
                }
            } else {
                Command::Invalid
            }
        }
        APPEND | APPENDQ | PREPEND | PREPENDQ => ok(
            keylen > 0 && extlen == 0,
            Command::Store {
                op: if matches!(h.opcode, APPEND | APPENDQ) {
                    StoreOp::Append
                } else {
                    StoreOp::Prepend
                },
                key,
                flags: 0,
                exptime: 0,
                value: &[],
            },
        ),
        GET | GETQ | GETK | GETKQ => ok(
            extlen == 0 && bodylen == keylen && keylen > 0,
            Command::Get {
                key,
                with_key: matches!(h.opcode, GETK | GETKQ),
            },
        ),
        DELETE | DELETEQ => ok(
            keylen > 0 && extlen == 0 && bodylen == keylen,
            Command::Delete { key },
        ),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => {
            if keylen > 0 && extlen == 20 && bodylen == keylen + extlen {
                Command::Arith {
                    key,
                    incr: matches!(h.opcode, INCREMENT | INCREMENTQ),
                    delta: be_u64(extras),
                    initial: be_u64(&extras[8..]),
                    exptime: be_u32(&extras[16..]),
                }
            } else {
                Command::Invalid
            }
        }
        STAT => ok(extlen == 0, Command::Stat { key }),
        SASL_LIST_MECHS => ok(no_body, Command::SaslListMechs),
        SASL_AUTH | SASL_STEP => ok(
            extlen == 0 && keylen != 0,
            Command::SaslAuth {
                mech: key,
                step: h.opcode == SASL_STEP,
                data: &[],
            },
        ),
        TOUCH | GAT | GATQ | GATK | GATKQ => {
            if extlen == 4 && keylen != 0 {
                let exptime = be_u32(extras);
                if h.opcode == TOUCH {
                    Command::Touch { key, exptime }
                } else {
                    Command::Gat {
                        key,
                        exptime,
                        with_key: matches!(h.opcode, GATK | GATKQ),
                    }
                }
            } else {
                Command::Invalid
            }
        }
        RATELIMIT | RATELIMITQ => {
            let args = (extlen == RATELIMIT_EXTLEN && keylen > 0 && bodylen == keylen + extlen)
                .then(|| ratelimit_args(extras))
                .flatten();
            Command::RateLimit { key, args }
        }
        _ => Command::Unknown,
    }
}

/// The 24 bytes of rate-limit extras: u64 period ms, u32 limit, u32 burst, u32 cost (0 = 1),
/// u8 algorithm, u8 mode, u16 reserved (must be 0). `None` if any is out of range.
fn ratelimit_args(e: &[u8]) -> Option<RateLimitArgs> {
    let period_ns = period_from_ms(be_u64(e)).ok()?;
    let algorithm = Algorithm::from_code(e[20])?;
    let mode = Mode::from_code(e[21])?;
    if e[22] != 0 || e[23] != 0 {
        return None;
    }
    let params = Params {
        limit: be_u32(&e[8..]),
        period_ns,
        burst: be_u32(&e[12..]),
        cost: be_u32(&e[16..]).max(1),
    };
    params.validate(algorithm).ok()?;
    Some(RateLimitArgs {
        algorithm,
        params,
        mode,
    })
}

/// Frames of a pipelined batch whose keys are prefetched at most.
pub const PREFETCH_FRAMES: usize = 16;

/// The keys of the complete request frames at the start of `buf` (up to [`PREFETCH_FRAMES`]),
/// for the store to warm before the batch runs. Stops at the first frame that is incomplete or
/// not a request; a hint only.
pub fn batch_keys(buf: &[u8]) -> SmallVec<[&[u8]; PREFETCH_FRAMES]> {
    let mut keys = SmallVec::new();
    let mut rest = buf;
    while keys.len() < PREFETCH_FRAMES && rest.len() >= HEADER_LEN && rest[0] == REQ_MAGIC {
        let key_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let ext_len = usize::from(rest[4]);
        let body = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        let Some(frame) = rest.get(..HEADER_LEN + body) else {
            break;
        };
        if let Some(key) = frame.get(HEADER_LEN + ext_len..HEADER_LEN + ext_len + key_len) {
            if !key.is_empty() {
                keys.push(key);
            }
        }
        rest = &rest[HEADER_LEN + body..];
    }
    keys
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
