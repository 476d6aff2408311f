//! memcached's binary protocol: the request model, its framing ([`decode`]) and the encoders
//! of response packets. Pure: no I/O, no store.

mod decode;

pub use decode::{batch_keys, decode, PREFETCH_FRAMES};

use bytes::{BufMut, BytesMut};

use super::Refusal;
use crate::ratelimit::{Algorithm, Mode, Params};

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
    /// set, add, replace, append, prepend (and quiet forms), with the value.
    Store {
        /// Which command.
        op: StoreOp,
        /// The key.
        key: &'a [u8],
        /// Client flags (0 for append/prepend).
        flags: u32,
        /// Expiration (0 for append/prepend).
        exptime: u32,
        /// The value.
        value: &'a [u8],
    },
    /// A storage command refused before its value was read (the frame discards the value).
    StoreRefused {
        /// Which command.
        op: StoreOp,
        /// The key.
        key: &'a [u8],
        /// Why.
        why: Refusal,
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
    /// SASL auth or step, with its data.
    SaslAuth {
        /// The mechanism.
        mech: &'a [u8],
        /// Step (true) or start.
        step: bool,
        /// The data after the mechanism name.
        data: &'a [u8],
    },
    /// The rate-limit opcodes (any body past extras and key is discarded by the frame).
    RateLimit {
        /// The subject.
        key: &'a [u8],
        /// The parameters, or `None` when the extras or lengths are invalid.
        args: Option<RateLimitArgs>,
    },
    /// An opcode memcached does not serve: `Unknown command` (the frame discards `bodylen`
    /// more bytes after extras and key, as memcached does).
    Unknown,
    /// An error reply with this status (the frame discards the body).
    Error(u16),
    /// A known opcode with bad lengths or a key over 250 bytes: `Invalid arguments`, close.
    Invalid,
    /// `keylen + extlen > bodylen`: `Unknown command`, close.
    BadLengths,
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

/// Appends the header of a response to request `h` (its opcode and opaque): `key_len`,
/// `extras_len` and the whole body's length.
fn write_header(
    out: &mut BytesMut,
    h: &Header,
    status: u16,
    cas: u64,
    key_len: usize,
    extras_len: usize,
    body_len: usize,
) {
    out.put_u8(RES_MAGIC);
    out.put_u8(h.opcode);
    out.put_u16(key_len as u16);
    out.put_u8(extras_len as u8);
    out.put_u8(0);
    out.put_u16(status);
    out.put_u32(body_len as u32);
    out.put_u32(h.opaque);
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
    out.reserve(HEADER_LEN + extras.len() + key.len() + value.len());
    write_header(
        out,
        h,
        status,
        cas,
        key.len(),
        extras.len(),
        extras.len() + key.len() + value.len(),
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
    write_item_header(out, h, cas, flags, key, value.len());
    out.put_slice(value);
}

/// Appends an item packet up to its value (header, flags, key); `value_len` bytes follow.
pub fn write_item_header(
    out: &mut BytesMut,
    h: &Header,
    cas: u64,
    flags: u32,
    key: &[u8],
    value_len: usize,
) {
    out.reserve(HEADER_LEN + 4 + key.len());
    let body = 4 + key.len() + value_len;
    write_header(out, h, status::SUCCESS, cas, key.len(), 4, body);
    out.put_u32(flags);
    out.put_slice(key);
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
}
