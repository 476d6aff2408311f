//! memcached's binary protocol: 24-byte request headers (plus extras and key) into a
//! [`Request`], and response packets into bytes. Pure: no I/O, no store.
//!
//! Framing follows memcached 1.6.18's `proto_bin.c` exactly, including its quirks:
//! - a request is decided as soon as its header, extras and key have arrived; only storage
//!   commands, SASL auth/step (and the rate-limit opcodes) then read their value;
//! - other commands leave any body bytes past extras and key in the stream, where they are read
//!   as the next request (a `touch` with a value, a `stat` with a value...);
//! - an unknown opcode is answered `Unknown command` and then `bodylen` more bytes are discarded
//!   *after* extras and key were already consumed;
//! - lengths that disagree (`keylen + extlen > bodylen`) answer `Unknown command` and close;
//!   a key over 250 bytes or a malformed known command answers `Invalid arguments` and closes;
//!   a first byte other than 0x80 closes without a reply.

use bytes::{BufMut, BytesMut};

use super::KEY_MAX_LENGTH;
use crate::ratelimit::{period_from_ms, Algorithm, Mode, Params};

/// Length of a request or response header.
pub const HEADER_LEN: usize = 24;
/// Magic byte of a request.
pub const REQ_MAGIC: u8 = 0x80;
/// Magic byte of a response.
pub const RES_MAGIC: u8 = 0x81;
/// Extras length of a rate-limit request.
pub const RATELIMIT_EXTLEN: usize = 24;
/// Incr/decr expiration meaning "do not create a missing counter".
pub const NO_AUTOVIVIFY: u32 = 0xffff_ffff;

/// Opcodes.
pub mod opcode {
    #![allow(missing_docs)]
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
    pub const RATELIMIT: u8 = 0x4c;
    pub const RATELIMITQ: u8 = 0x4d;
}

/// Response status codes.
pub mod status {
    #![allow(missing_docs)]
    pub const SUCCESS: u16 = 0x00;
    pub const KEY_ENOENT: u16 = 0x01;
    pub const KEY_EEXISTS: u16 = 0x02;
    pub const E2BIG: u16 = 0x03;
    pub const EINVAL: u16 = 0x04;
    pub const NOT_STORED: u16 = 0x05;
    pub const DELTA_BADVAL: u16 = 0x06;
    pub const AUTH_ERROR: u16 = 0x20;
    pub const AUTH_CONTINUE: u16 = 0x21;
    pub const UNKNOWN_COMMAND: u16 = 0x81;
    pub const ENOMEM: u16 = 0x82;
}

/// The body memcached sends with an error status when it has no specific text.
pub fn status_message(st: u16) -> &'static str {
    match st {
        status::ENOMEM => "Out of memory",
        status::UNKNOWN_COMMAND => "Unknown command",
        status::KEY_ENOENT => "Not found",
        status::EINVAL => "Invalid arguments",
        status::KEY_EEXISTS => "Data exists for key.",
        status::E2BIG => "Too large.",
        status::DELTA_BADVAL => "Non-numeric server-side value for incr or decr",
        status::NOT_STORED => "Not stored.",
        status::AUTH_ERROR => "Auth failure.",
        _ => "UNHANDLED ERROR",
    }
}

/// A request header, fields in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// 0x80 for a request.
    pub magic: u8,
    /// The opcode.
    pub opcode: u8,
    /// Key length.
    pub keylen: u16,
    /// Extras length.
    pub extlen: u8,
    /// Data type (ignored, as memcached does).
    pub datatype: u8,
    /// vbucket id (ignored).
    pub vbucket: u16,
    /// Extras + key + value length.
    pub bodylen: u32,
    /// Echoed in the response.
    pub opaque: u32,
    /// Cas unique to compare (0 = none).
    pub cas: u64,
}

impl Header {
    /// Reads a header from its 24 bytes.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            magic: b[0],
            opcode: b[1],
            keylen: u16_at(2),
            extlen: b[4],
            datatype: b[5],
            vbucket: u16_at(6),
            bodylen: u32_at(8),
            opaque: u32_at(12),
            cas: u64::from(u32_at(16)) << 32 | u64::from(u32_at(20)),
        }
    }

    /// Bytes of header, extras and key: what memcached consumes before deciding.
    pub fn prefix_len(&self) -> usize {
        HEADER_LEN + usize::from(self.extlen) + usize::from(self.keylen)
    }

    /// Body bytes past extras and key (0 when the lengths disagree).
    pub fn value_len(&self) -> usize {
        (self.bodylen as usize).saturating_sub(usize::from(self.extlen) + usize::from(self.keylen))
    }
}

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// set / setq
    Set,
    /// add / addq
    Add,
    /// replace / replaceq
    Replace,
    /// append / appendq
    Append,
    /// prepend / prependq
    Prepend,
}

/// A rate-limit request's parameters, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitArgs {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Limit, period, burst, cost.
    pub params: Params,
    /// consume, peek or refund.
    pub mode: Mode,
}

/// One decoded command. Keys borrow from the connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// get, getq, getk, getkq.
    Get {
        /// The key.
        key: &'a [u8],
        /// Return the key (getk, getkq).
        with_key: bool,
    },
    /// gat, gatq, gatk, gatkq.
    Gat {
        /// The key.
        key: &'a [u8],
        /// New expiration.
        exptime: u32,
        /// Return the key (gatk, gatkq).
        with_key: bool,
    },
    /// touch: like gat, but the reply carries only the flags.
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiration.
        exptime: u32,
    },
    /// set, add, replace, append, prepend (and quiet forms); `value_len` bytes follow.
    Store {
        /// Which command.
        op: StoreOp,
        /// The key.
        key: &'a [u8],
        /// Client flags (0 for append/prepend).
        flags: u32,
        /// Expiration (0 for append/prepend).
        exptime: u32,
        /// Value bytes after the key.
        value_len: usize,
    },
    /// delete, deleteq.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// increment, decrement (and quiet forms).
    Arith {
        /// The key.
        key: &'a [u8],
        /// incr (true) or decr.
        incr: bool,
        /// Amount.
        delta: u64,
        /// Value stored when the key is missing (unless `exptime` is [`NO_AUTOVIVIFY`]).
        initial: u64,
        /// Expiration of a created counter.
        exptime: u32,
    },
    /// quit, quitq.
    Quit,
    /// flush, flushq; `exptime` 0 when absent.
    Flush {
        /// Delay (an expiration), 0 = now.
        exptime: u32,
    },
    /// noop.
    Noop,
    /// version.
    Version,
    /// stat with an optional sub-report name.
    Stat {
        /// The key (empty for the general report).
        key: &'a [u8],
    },
    /// SASL list mechanisms.
    SaslListMechs,
    /// SASL auth or step: `value_len` bytes of data follow.
    SaslAuth {
        /// The mechanism.
        mech: &'a [u8],
        /// Step (true) or start.
        step: bool,
        /// Data bytes after the key.
        value_len: usize,
    },
    /// The rate-limit opcodes; `rest` body bytes after extras and key are discarded.
    RateLimit {
        /// The subject.
        key: &'a [u8],
        /// The parameters, or `None` when the extras or lengths are invalid.
        args: Option<RateLimitArgs>,
        /// Body bytes past extras and key (0 for a well-formed request).
        rest: usize,
    },
    /// An opcode memcached does not serve: `Unknown command`, then `swallow` bytes go.
    Unknown {
        /// Bytes to discard after extras and key (memcached's `bodylen`).
        swallow: u32,
    },
    /// A known opcode with bad lengths or a key over 250 bytes: `Invalid arguments`, close.
    Invalid,
}

/// One decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header.
    pub header: Header,
    /// A quiet opcode (its success replies, or misses for gets, are suppressed).
    pub quiet: bool,
    /// What to do.
    pub command: Command<'a>,
}

/// What the start of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Header, extras or key not complete yet.
    Incomplete,
    /// The first byte is not 0x80: memcached closes without a reply.
    BadMagic,
    /// `keylen + extlen > bodylen`: `Unknown command`, then close.
    BadLengths(Header),
    /// A request; [`Header::prefix_len`] bytes are its header, extras and key.
    Request(Request<'a>),
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from(be_u32(b)) << 32 | u64::from(be_u32(&b[4..]))
}

/// True for the quiet opcodes memcached knows (and RATELIMITQ).
pub fn is_quiet(op: u8) -> bool {
    use opcode::*;
    matches!(
        op,
        GETQ | GETKQ
            | SETQ
            | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GATQ
            | GATKQ
            | RATELIMITQ
    )
}

/// Decodes the request at the start of `buf` (never panics, whatever the bytes).
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Decoded::Incomplete;
    };
    let h = Header::parse(head);
    if h.magic != REQ_MAGIC {
        return Decoded::BadMagic;
    }
    let extlen = usize::from(h.extlen);
    let keylen = usize::from(h.keylen);
    if buf.len() < h.prefix_len() {
        return Decoded::Incomplete;
    }
    let bodylen = h.bodylen as usize;
    if keylen + extlen > bodylen {
        return Decoded::BadLengths(h);
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + extlen];
    let key = &buf[HEADER_LEN + extlen..h.prefix_len()];
    let quiet = is_quiet(h.opcode);
    let command = if keylen > KEY_MAX_LENGTH {
        Command::Invalid
    } else {
        command(&h, extras, key)
    };
    Decoded::Request(Request {
        header: h,
        quiet,
        command,
    })
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
                    value_len: h.value_len(),
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
                value_len: h.value_len(),
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
                value_len: h.value_len(),
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
            Command::RateLimit {
                key,
                args,
                rest: h.value_len(),
            }
        }
        _ => Command::Unknown { swallow: h.bodylen },
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

/// Appends a response header.
#[allow(clippy::too_many_arguments)]
pub fn write_header(
    out: &mut BytesMut,
    opcode: u8,
    status: u16,
    keylen: usize,
    extlen: usize,
    bodylen: usize,
    opaque: u32,
    cas: u64,
) {
    out.reserve(HEADER_LEN + bodylen);
    out.put_u8(RES_MAGIC);
    out.put_u8(opcode);
    out.put_u16(keylen as u16);
    out.put_u8(extlen as u8);
    out.put_u8(0);
    out.put_u16(status);
    out.put_u32(bodylen as u32);
    out.put_u32(opaque);
    out.put_u64(cas);
}

/// Appends a whole response packet.
pub fn write_response(
    out: &mut BytesMut,
    h: &Header,
    status: u16,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    write_header(
        out,
        h.opcode,
        status,
        key.len(),
        extras.len(),
        extras.len() + key.len() + value.len(),
        h.opaque,
        cas,
    );
    out.put_slice(extras);
    out.put_slice(key);
    out.put_slice(value);
}

/// Appends an error response with `msg` as its body (memcached's `write_bin_error`).
pub fn write_error_msg(out: &mut BytesMut, h: &Header, status: u16, msg: &str) {
    write_response(out, h, status, 0, &[], &[], msg.as_bytes());
}

/// Appends an error response with the status's standard text.
pub fn write_error(out: &mut BytesMut, h: &Header, status: u16) {
    write_error_msg(out, h, status, status_message(status));
}

/// Appends an item for get/gat (`key` empty unless getk/gatk): flags as extras, then the value.
pub fn write_item(out: &mut BytesMut, h: &Header, cas: u64, flags: u32, key: &[u8], value: &[u8]) {
    write_response(
        out,
        h,
        status::SUCCESS,
        cas,
        &flags.to_be_bytes(),
        key,
        value,
    );
}

/// Appends one `stat` packet (`name` and `value` empty for the terminating packet).
pub fn write_stat(out: &mut BytesMut, h: &Header, name: &[u8], value: &[u8]) {
    write_response(out, h, status::SUCCESS, 0, &[], name, value);
}

/// The 24 bytes of rate-limit response extras: u32 limit, u32 remaining, u64 retry-after ms,
/// u64 reset-after ms (saturated at `u64::MAX` beyond 584 million years).
pub fn ratelimit_extras(d: &crate::ratelimit::Decision) -> [u8; 24] {
    let mut e = [0u8; 24];
    e[..4].copy_from_slice(&(d.limit.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    e[4..8].copy_from_slice(&(d.remaining.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    e[8..16].copy_from_slice(&d.retry_after_ms_u64().to_be_bytes());
    e[16..].copy_from_slice(&d.reset_after_ms_u64().to_be_bytes());
    e
}

/// Appends a binary request frame (header, extras, key, value): what clients send. Used by
/// tests and by the benchmark's load generator.
pub fn encode_request(
    out: &mut Vec<u8>,
    op: u8,
    key: &[u8],
    extras: &[u8],
    value: &[u8],
    cas: u64,
    opaque: u32,
) {
    out.extend_from_slice(&[REQ_MAGIC, op]);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(op: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64, opaque: u32) -> Vec<u8> {
        let mut v = Vec::new();
        encode_request(&mut v, op, key, extras, value, cas, opaque);
        v
    }

    fn raw_header(op: u8, keylen: u16, extlen: u8, bodylen: u32) -> Vec<u8> {
        let mut v = vec![REQ_MAGIC, op];
        v.extend(keylen.to_be_bytes());
        v.push(extlen);
        v.extend([0, 0, 0]);
        v.extend(bodylen.to_be_bytes());
        v.extend([0u8; 12]);
        v
    }

    fn cmd(buf: &[u8]) -> Command<'_> {
        match decode(buf) {
            Decoded::Request(r) => r.command,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn header_fields_big_endian() {
        let b = req(
            opcode::SET,
            b"key",
            &[0; 8],
            b"value",
            0x0102030405060708,
            0xdeadbeef,
        );
        let h = Header::parse(b[..24].try_into().unwrap());
        assert_eq!(h.opcode, opcode::SET);
        assert_eq!((h.keylen, h.extlen, h.bodylen), (3, 8, 16));
        assert_eq!(h.opaque, 0xdeadbeef);
        assert_eq!(h.cas, 0x0102030405060708);
        assert_eq!(h.prefix_len(), 35);
        assert_eq!(h.value_len(), 5);
    }

    #[test]
    fn incomplete_until_header_extras_and_key() {
        let b = req(opcode::SET, b"key", &[0; 8], b"value", 0, 0);
        for n in 0..35 {
            assert_eq!(decode(&b[..n]), Decoded::Incomplete, "{n} bytes");
        }
        // The value is not needed to decide.
        assert!(matches!(
            cmd(&b[..35]),
            Command::Store {
                op: StoreOp::Set,
                key: b"key",
                value_len: 5,
                ..
            }
        ));
    }

    #[test]
    fn bad_magic_and_bad_lengths() {
        let mut b = req(opcode::NOOP, b"", &[], b"", 0, 0);
        b[0] = RES_MAGIC;
        assert_eq!(decode(&b), Decoded::BadMagic);
        assert_eq!(decode(b"get foo\r\nget bar baz qux\r\n"), Decoded::BadMagic);
        let mut b = raw_header(opcode::GET, 5, 0, 3);
        b.extend(b"abcde");
        assert!(matches!(decode(&b), Decoded::BadLengths(_)));
        let mut b = raw_header(opcode::GET, 3, 4, 5);
        b.extend(b"abcdefg");
        assert!(matches!(decode(&b), Decoded::BadLengths(_)));
    }

    #[test]
    fn key_over_250_is_invalid_for_every_opcode() {
        let key = [b'k'; 251];
        assert_eq!(
            cmd(&req(opcode::GET, &key, &[], b"", 0, 0)),
            Command::Invalid
        );
        assert_eq!(cmd(&req(0x40, &key, &[], b"", 0, 0)), Command::Invalid);
        assert!(matches!(
            cmd(&req(opcode::GET, &key[..250], &[], b"", 0, 0)),
            Command::Get { .. }
        ));
    }

    #[test]
    fn malformed_known_commands_are_invalid() {
        let cases: Vec<Vec<u8>> = vec![
            req(opcode::GET, b"k", b"1234", b"", 0, 0),
            req(opcode::GET, b"k", b"", b"v", 0, 0),
            req(opcode::GET, b"", b"", b"", 0, 0),
            req(opcode::NOOP, b"", b"", b"x", 0, 0),
            req(opcode::VERSION, b"x", b"", b"", 0, 0),
            req(opcode::QUIT, b"", b"", b"x", 0, 0),
            req(opcode::SET, b"k", b"", b"v", 0, 0),
            req(opcode::SET, b"", &[0; 8], b"v", 0, 0),
            req(opcode::INCREMENT, b"k", &[0; 12], b"", 0, 0),
            req(opcode::INCREMENT, b"k", &[0; 20], b"v", 0, 0),
            req(opcode::DELETE, b"k", b"1234", b"", 0, 0),
            req(opcode::FLUSH, b"", &[0; 8], b"", 0, 0),
            req(opcode::FLUSH, b"x", b"", b"", 0, 0),
            req(opcode::TOUCH, b"k", b"", b"", 0, 0),
            req(opcode::APPEND, b"k", b"1234", b"v", 0, 0),
            req(opcode::APPEND, b"", b"", b"v", 0, 0),
            req(opcode::STAT, b"", b"1234", b"", 0, 0),
            req(opcode::SASL_AUTH, b"", b"", b"data", 0, 0),
            req(opcode::SASL_LIST_MECHS, b"x", b"", b"", 0, 0),
        ];
        for c in &cases {
            assert_eq!(cmd(c), Command::Invalid, "{c:02x?}");
        }
    }

    #[test]
    fn commands_and_their_extras() {
        let e: Vec<u8> = [7u64.to_be_bytes(), 42u64.to_be_bytes()]
            .concat()
            .into_iter()
            .chain(300u32.to_be_bytes())
            .collect();
        assert_eq!(
            cmd(&req(opcode::DECREMENTQ, b"c", &e, b"", 0, 0)),
            Command::Arith {
                key: b"c",
                incr: false,
                delta: 7,
                initial: 42,
                exptime: 300
            }
        );
        assert_eq!(
            cmd(&req(opcode::GATKQ, b"g", &9u32.to_be_bytes(), b"", 0, 0)),
            Command::Gat {
                key: b"g",
                exptime: 9,
                with_key: true
            }
        );
        assert_eq!(
            cmd(&req(opcode::FLUSHQ, b"", &5u32.to_be_bytes(), b"", 0, 0)),
            Command::Flush { exptime: 5 }
        );
        assert_eq!(
            cmd(&req(opcode::FLUSH, b"", b"", b"", 0, 0)),
            Command::Flush { exptime: 0 }
        );
        let mut se = 3u32.to_be_bytes().to_vec();
        se.extend(100u32.to_be_bytes());
        assert_eq!(
            cmd(&req(opcode::ADDQ, b"k", &se, b"abc", 0, 0)),
            Command::Store {
                op: StoreOp::Add,
                key: b"k",
                flags: 3,
                exptime: 100,
                value_len: 3
            }
        );
        assert_eq!(
            cmd(&req(opcode::STAT, b"items", b"", b"", 0, 0)),
            Command::Stat { key: b"items" }
        );
        // Verbosity is not served by memcached 1.6.18's binary protocol.
        assert_eq!(
            cmd(&req(opcode::VERBOSITY, b"", &[0, 0, 0, 1], b"", 0, 0)),
            Command::Unknown { swallow: 4 }
        );
    }

    #[test]
    fn quiet_opcodes() {
        for op in 0..=255u8 {
            let b = req(op, b"", b"", b"", 0, 0);
            if let Decoded::Request(r) = decode(&b) {
                assert_eq!(r.quiet, is_quiet(op));
            }
        }
        assert!(is_quiet(opcode::GETKQ) && is_quiet(opcode::RATELIMITQ));
        assert!(!is_quiet(opcode::GETK) && !is_quiet(opcode::VERBOSITY));
    }

    fn rl_extras(period_ms: u64, limit: u32, burst: u32, cost: u32, alg: u8, mode: u8) -> Vec<u8> {
        let mut e = period_ms.to_be_bytes().to_vec();
        e.extend(limit.to_be_bytes());
        e.extend(burst.to_be_bytes());
        e.extend(cost.to_be_bytes());
        e.extend([alg, mode, 0, 0]);
        e
    }

    #[test]
    fn ratelimit_extras_are_validated() {
        let ok = rl_extras(60_000, 100, 10, 0, 0, 1);
        match cmd(&req(opcode::RATELIMIT, b"u", &ok, b"", 0, 0)) {
            Command::RateLimit {
                key: b"u",
                args: Some(a),
                rest: 0,
            } => {
                assert_eq!(a.algorithm, Algorithm::Gcra);
                assert_eq!(a.mode, Mode::Peek);
                assert_eq!(a.params.cost, 1);
                assert_eq!(a.params.period_ns, 60_000_000_000);
            }
            other => panic!("{other:?}"),
        }
        let bad = [
            rl_extras(0, 100, 0, 1, 0, 0),
            rl_extras(60_000, 0, 0, 1, 0, 0),
            rl_extras(60_000, 10, 0, 11, 0, 0),
            rl_extras(60_000, 10, 5, 1, 1, 0),
            rl_extras(60_000, 10, 0, 1, 3, 0),
            rl_extras(60_000, 10, 0, 1, 0, 3),
            rl_extras(366 * 86_400_000, 10, 0, 1, 0, 0),
        ];
        for e in &bad {
            assert!(matches!(
                cmd(&req(opcode::RATELIMITQ, b"u", e, b"", 0, 0)),
                Command::RateLimit { args: None, .. }
            ));
        }
        let mut reserved = ok.clone();
        reserved[23] = 1;
        assert!(matches!(
            cmd(&req(opcode::RATELIMIT, b"u", &reserved, b"", 0, 0)),
            Command::RateLimit { args: None, .. }
        ));
        assert!(matches!(
            cmd(&req(opcode::RATELIMIT, b"u", &ok[..20], b"", 0, 0)),
            Command::RateLimit {
                args: None,
                rest: 0,
                ..
            }
        ));
        assert!(matches!(
            cmd(&req(opcode::RATELIMIT, b"u", &ok, b"xyz", 0, 0)),
            Command::RateLimit {
                args: None,
                rest: 3,
                ..
            }
        ));
        assert!(matches!(
            cmd(&req(opcode::RATELIMIT, b"", &ok, b"", 0, 0)),
            Command::RateLimit { args: None, .. }
        ));
    }

    #[test]
    fn encoders() {
        let h = Header {
            magic: REQ_MAGIC,
            opcode: opcode::GETK,
            opaque: 0x01020304,
            ..Header::default()
        };
        let mut out = BytesMut::new();
        write_item(&mut out, &h, 9, 5, b"k", b"hello");
        assert_eq!(
            &out[..],
            &[
                0x81, 0x0c, 0, 1, 4, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 9, 0,
                0, 0, 5, b'k', b'h', b'e', b'l', b'l', b'o'
            ][..]
        );
        out.clear();
        write_error(&mut out, &h, status::KEY_ENOENT);
        assert_eq!(&out[24..], b"Not found");
        assert_eq!(out[7], 1);
        assert_eq!(out[11], 9);
        for st in [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x20, 0x81, 0x82] {
            assert_ne!(status_message(st), "UNHANDLED ERROR");
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_with_request_magic(
            op in any::<u8>(),
            keylen in 0u16..300,
            extlen in any::<u8>(),
            bodylen in any::<u32>(),
            rest in proptest::collection::vec(any::<u8>(), 0..700),
        ) {
            let mut b = raw_header(op, keylen, extlen, bodylen);
            b.extend(rest);
            match decode(&b) {
                Decoded::Request(r) => {
                    prop_assert!(b.len() >= r.header.prefix_len());
                    if let Command::Store { key, value_len, .. } = r.command {
                        prop_assert!(!key.is_empty());
                        prop_assert_eq!(value_len + r.header.prefix_len() - HEADER_LEN, bodylen as usize);
                    }
                }
                Decoded::Incomplete => prop_assert!(b.len() < 24 + usize::from(keylen) + usize::from(extlen)),
                Decoded::BadLengths(h) => prop_assert!(usize::from(h.keylen) + usize::from(h.extlen) > h.bodylen as usize),
                Decoded::BadMagic => prop_assert!(false),
            }
        }
    }
}
