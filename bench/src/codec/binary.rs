//! memcached's binary protocol, with the project's own code: requests are framed by
//! `ratecache::protocol::binary::encode_request` (checked in the tests against the server's
//! `decode`), responses are read with the server's `Header::parse`, opcodes and status codes,
//! and the tests build responses with the server's own response encoders.

use bytes::{BufMut, BytesMut};
use ratecache::protocol::binary::{encode_request, opcode, status, Header, HEADER_LEN, RES_MAGIC};

use super::{check_verdict, quote, Algo, Check, Expect, OpKind, Outcome, Spec};

/// A response body larger than this means the stream is out of step.
const MAX_BODY: u32 = 16 << 20;

/// Appends one request packet, framed by the server crate's encoder in `frame` (a reusable
/// scratch buffer).
fn put_request(
    out: &mut BytesMut,
    frame: &mut Vec<u8>,
    op: u8,
    opaque: u32,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    frame.clear();
    encode_request(frame, op, key, extras, value, 0, opaque);
    out.put_slice(frame);
}

fn op_of(kind: OpKind) -> u8 {
    match kind {
        OpKind::Get => opcode::GET,
        OpKind::Set => opcode::SET,
        OpKind::Incr => opcode::INCREMENT,
        OpKind::RateLimit => opcode::RATELIMIT,
        OpKind::RedisFixed | OpKind::RedisSliding => 0xff,
    }
}

/// Appends the request (`frame` is scratch space).
pub fn encode(
    spec: &Spec,
    kind: OpKind,
    key: &[u8],
    value: &[u8],
    opaque: u32,
    frame: &mut Vec<u8>,
    out: &mut BytesMut,
) {
    let op = op_of(kind);
    match kind {
        OpKind::Get => put_request(out, frame, op, opaque, &[], key, &[]),
        OpKind::Set => {
            let mut ex = [0u8; 8];
            ex[4..].copy_from_slice(&spec.ttl.to_be_bytes());
            put_request(out, frame, op, opaque, &ex, key, value);
        }
        OpKind::Incr => {
            // delta 1, initial 1 (a created counter reads 1), no expiration
            let mut ex = [0u8; 20];
            ex[7] = 1;
            ex[15] = 1;
            put_request(out, frame, op, opaque, &ex, key, &[]);
        }
        OpKind::RateLimit => {
            let mut ex = [0u8; 24];
            ex[..8].copy_from_slice(&spec.rl_period_ms.to_be_bytes());
            ex[8..12].copy_from_slice(&spec.rl_limit.to_be_bytes());
            ex[12..16].copy_from_slice(&spec.rl_burst.to_be_bytes());
            ex[16..20].copy_from_slice(&1u32.to_be_bytes());
            ex[20] = match spec.rl_algo {
                Algo::Gcra => 0,
                Algo::Fixed => 1,
                Algo::Sliding => 2,
            };
            put_request(out, frame, op, opaque, &ex, key, &[]);
        }
        OpKind::RedisFixed | OpKind::RedisSliding => unreachable!("redis workload over binary"),
    }
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

/// Checks the response at the start of `buf`.
pub fn check(spec: &Spec, e: &Expect, buf: &[u8]) -> Check {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Check::Incomplete;
    };
    let h = Header::parse(head);
    if h.magic != RES_MAGIC {
        return Check::Desync(format!("response magic {:#04x}", h.magic));
    }
    if h.bodylen > MAX_BODY {
        return Check::Desync(format!("response body of {} bytes", h.bodylen));
    }
    let len = HEADER_LEN + h.bodylen as usize;
    if buf.len() < len {
        return Check::Incomplete;
    }
    let frame = &buf[..len];
    let body = &frame[HEADER_LEN..];
    let (extlen, keylen) = (usize::from(h.extlen), usize::from(h.keylen));
    if extlen + keylen > body.len() {
        return Check::Done {
            len,
            result: Err(format!(
                "extras and key longer than the body: {}",
                quote(frame)
            )),
        };
    }
    let extras = &body[..extlen];
    let value = &body[extlen + keylen..];
    // In a response the vbucket field is the status.
    let st = h.vbucket;
    let wrong = |what: &str| {
        Err(format!(
            "{what}: got opcode {:#04x} status {st:#06x} body {}",
            h.opcode,
            quote(body)
        ))
    };
    let result = if h.opcode != op_of(e.kind) {
        wrong("response to another opcode")
    } else if h.opaque != e.opaque {
        Err(format!(
            "opaque {} where {} was expected (reordered reply)",
            h.opaque, e.opaque
        ))
    } else {
        match (e.kind, st) {
            (OpKind::Get, status::SUCCESS) => {
                if extlen == 4
                    && be32(extras) == 0
                    && crate::keys::is_value(value, e.key, spec.value_size)
                {
                    Ok(Outcome::Hit)
                } else {
                    wrong("get: not the stored value")
                }
            }
            (OpKind::Get, status::KEY_ENOENT) => Ok(Outcome::Miss),
            (OpKind::Set, status::SUCCESS) if h.bodylen == 0 => Ok(Outcome::Stored),
            (OpKind::Incr, status::SUCCESS) if value.len() == 8 && be64(value) >= 1 => {
                Ok(Outcome::Counter(be64(value)))
            }
            (OpKind::RateLimit, status::SUCCESS | status::NOT_STORED) if extlen == 24 => {
                check_verdict(
                    spec,
                    st == status::SUCCESS,
                    u64::from(be32(extras)),
                    u64::from(be32(&extras[4..])),
                    be64(&extras[8..]),
                )
                .map_err(|why| format!("ratelimit: {why}"))
            }
            (kind, _) => wrong(&format!("{kind:?}: unexpected response")),
        }
    };
    Check::Done { len, result }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Protocol};
    use ratecache::protocol::binary::{decode, write_item, write_response, Command, REQ_MAGIC};
    use ratecache::protocol::{Decode, DecodeLimits, Frame};
    use std::sync::Arc;

    fn spec() -> Arc<Spec> {
        Arc::new(Spec {
            protocol: Protocol::Binary,
            ttl: 9,
            ..Spec::default()
        })
    }

    #[test]
    fn requests_decode_with_the_servers_decoder() {
        let mut c = Codec::new(spec(), 0);
        let mut out = BytesMut::new();
        let e = c.encode(OpKind::Set, 2, &mut out);
        let Decode::Frame(Frame { req: r, len, .. }) = decode(&out, &DecodeLimits::default())
        else {
            panic!("not decoded")
        };
        assert_eq!(len, out.len());
        assert_eq!(r.header.opaque, e.opaque);
        match r.command {
            Command::Store {
                key,
                exptime,
                value,
                ..
            } => {
                assert_eq!(
                    (key, exptime, value.len()),
                    (&b"key:0000000000000002"[..], 9, 32)
                );
            }
            other => panic!("{other:?}"),
        }
        for kind in [OpKind::Get, OpKind::Incr, OpKind::RateLimit] {
            out.clear();
            c.encode(kind, 2, &mut out);
            let Decode::Frame(Frame { req: r, len, .. }) = decode(&out, &DecodeLimits::default())
            else {
                panic!("{kind:?} not decoded")
            };
            assert_eq!(len, out.len());
            assert_eq!(r.header.prefix_len() + r.header.value_len(), out.len());
            let ok = match (kind, r.command) {
                (OpKind::Get, Command::Get { .. }) => true,
                (
                    OpKind::Incr,
                    Command::Arith {
                        delta: 1,
                        incr: true,
                        ..
                    },
                ) => true,
                (OpKind::RateLimit, Command::RateLimit { args: Some(a), .. }) => {
                    a.params.limit == 100
                }
                _ => false,
            };
            assert!(ok, "{kind:?}: {:?}", r.command);
        }
    }

    fn header(op: u8, opaque: u32) -> Header {
        Header {
            magic: REQ_MAGIC,
            opcode: op,
            opaque,
            ..Header::default()
        }
    }

    #[test]
    fn responses_are_checked() {
        let mut c = Codec::new(spec(), 0);
        let e = Expect {
            kind: OpKind::Get,
            key: 3,
            opaque: 77,
        };
        let mut value = Vec::new();
        crate::keys::write_value(&mut value, 3, 32);
        let mut out = BytesMut::new();
        write_item(&mut out, &header(opcode::GET, 77), 5, 0, &[], &value);
        assert_eq!(
            c.check(&out, &e),
            Check::Done {
                len: out.len(),
                result: Ok(Outcome::Hit)
            }
        );
        assert_eq!(c.check(&out[..30], &e), Check::Incomplete);
        // Another opaque (reordered), another value, another status, another opcode.
        let bad = |c: &mut Codec, out: &BytesMut, e: &Expect| {
            matches!(c.check(out, e), Check::Done { result: Err(_), .. })
        };
        assert!(bad(&mut c, &out, &Expect { opaque: 76, ..e }));
        assert!(bad(&mut c, &out, &Expect { key: 4, ..e }));
        out.clear();
        write_response(
            &mut out,
            &header(opcode::GET, 77),
            status::ENOMEM,
            0,
            &[],
            &[],
            b"x",
        );
        assert!(bad(&mut c, &out, &e));
        out.clear();
        write_response(
            &mut out,
            &header(opcode::SET, 77),
            status::SUCCESS,
            1,
            &[],
            &[],
            &[],
        );
        assert!(bad(&mut c, &out, &e));
        assert!(matches!(
            c.check(
                &out,
                &Expect {
                    kind: OpKind::Set,
                    ..e
                }
            ),
            Check::Done {
                result: Ok(Outcome::Stored),
                ..
            }
        ));
        // Rate-limit extras: allowed with a retry is wrong.
        let rl = Expect {
            kind: OpKind::RateLimit,
            ..e
        };
        let mut ex = [0u8; 24];
        ex[..4].copy_from_slice(&100u32.to_be_bytes());
        ex[4..8].copy_from_slice(&99u32.to_be_bytes());
        out.clear();
        write_response(
            &mut out,
            &header(opcode::RATELIMIT, 77),
            0,
            0,
            &ex,
            &[],
            &[],
        );
        assert!(matches!(
            c.check(&out, &rl),
            Check::Done {
                result: Ok(Outcome::Allowed),
                ..
            }
        ));
        ex[15] = 3;
        out.clear();
        write_response(
            &mut out,
            &header(opcode::RATELIMIT, 77),
            0,
            0,
            &ex,
            &[],
            &[],
        );
        assert!(bad(&mut c, &out, &rl));
        // A request magic where a response belongs cannot be framed.
        out[0] = REQ_MAGIC;
        assert!(matches!(c.check(&out, &rl), Check::Desync(_)));
    }
}
