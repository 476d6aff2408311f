//! memcached's meta protocol: `mg <key> v`, `ms <key> <len> [T<ttl>]`, `ma <key> N60 J1 v t`
//! (memcached's one-round-trip counter) and ratecached's `ml`.

use bytes::{BufMut, BytesMut};

use super::{check_verdict, parse_u64, quote, Algo, Check, Expect, OpKind, Outcome, Spec};

const MAX_LINE: usize = 4096;

fn put_num(out: &mut BytesMut, n: u64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends the request.
pub fn encode(spec: &Spec, kind: OpKind, key: &[u8], value: &[u8], out: &mut BytesMut) {
    match kind {
        OpKind::Get => {
            out.put_slice(b"mg ");
            out.put_slice(key);
            out.put_slice(b" v");
        }
        OpKind::Set => {
            out.put_slice(b"ms ");
            out.put_slice(key);
            out.put_u8(b' ');
            put_num(out, value.len() as u64);
            if spec.ttl != 0 {
                out.put_slice(b" T");
                put_num(out, u64::from(spec.ttl));
            }
            out.put_slice(b"\r\n");
            out.put_slice(value);
        }
        OpKind::Incr => {
            out.put_slice(b"ma ");
            out.put_slice(key);
            out.put_slice(b" N60 J1 v t");
        }
        OpKind::RateLimit => {
            out.put_slice(b"ml ");
            out.put_slice(key);
            out.put_slice(b" R");
            put_num(out, u64::from(spec.rl_limit));
            out.put_slice(b" W");
            put_num(out, spec.rl_period_ms);
            out.put_slice(b"ms");
            if spec.rl_burst != 0 {
                out.put_slice(b" B");
                put_num(out, u64::from(spec.rl_burst));
            }
            match spec.rl_algo {
                Algo::Gcra => {}
                Algo::Fixed => out.put_slice(b" AF"),
                Algo::Sliding => out.put_slice(b" AS"),
            }
            out.put_slice(b" l r a t");
        }
        OpKind::RedisFixed | OpKind::RedisSliding => unreachable!("redis workload over meta"),
    }
    out.put_slice(b"\r\n");
}

/// True if the reply carries a `t` flag: seconds left, or `-1` for an item that never expires.
fn ttl_flag(tokens: &[&[u8]]) -> bool {
    tokens[1..]
        .iter()
        .any(|t| t.first() == Some(&b't') && (&t[1..] == b"-1" || parse_u64(&t[1..]).is_some()))
}

/// Checks the reply at the start of `buf`.
pub fn check(spec: &Spec, e: &Expect, buf: &[u8]) -> Check {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Check::Desync(format!("no end of line in {}", quote(buf)))
        } else {
            Check::Incomplete
        };
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let mut len = nl + 1;
    let mut data: &[u8] = &[];
    if tokens[0] == b"VA" {
        let Some(n) = tokens.get(1).and_then(|t| parse_u64(t)) else {
            return Check::Desync(format!("bad VA line {}", quote(line)));
        };
        let end = len + n as usize + 2;
        if buf.len() < end {
            return Check::Incomplete;
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Check::Desync(format!(
                "value not followed by CRLF: {}",
                quote(&buf[..end])
            ));
        }
        data = &buf[len..end - 2];
        len = end;
    }
    let frame = &buf[..len];
    let wrong = |what: &str| Err(format!("{what}: got {}", quote(frame)));
    let flag = |c: u8| {
        tokens[1..]
            .iter()
            .find(|t| t.first() == Some(&c))
            .and_then(|t| parse_u64(&t[1..]))
    };
    let result = match (e.kind, tokens[0]) {
        (OpKind::Get, b"EN") if tokens.len() == 1 => Ok(Outcome::Miss),
        (OpKind::Get, b"VA") if tokens.len() == 2 => {
            if crate::keys::is_value(data, e.key, spec.value_size) {
                Ok(Outcome::Hit)
            } else {
                wrong("mg: not the stored value")
            }
        }
        (OpKind::Get, _) => wrong("mg: expected VA or EN"),
        (OpKind::Set, b"HD") if tokens.len() == 1 => Ok(Outcome::Stored),
        (OpKind::Set, _) => wrong("ms: expected HD"),
        (OpKind::Incr, b"VA") => match (parse_u64(data), ttl_flag(&tokens)) {
            (Some(n), true) if n >= 1 => Ok(Outcome::Counter(n)),
            _ => wrong("ma: expected a counter >= 1 and its TTL"),
        },
        (OpKind::Incr, _) => wrong("ma: expected VA"),
        (OpKind::RateLimit, v @ (b"HD" | b"NS")) => {
            match (flag(b'l'), flag(b'r'), flag(b'a'), flag(b't')) {
                (Some(cap), Some(rem), Some(retry), Some(_)) => {
                    check_verdict(spec, v == b"HD", cap, rem, retry)
                        .map_err(|why| format!("ml: {why}: got {}", quote(frame)))
                }
                _ => wrong("ml: expected l r a t flags"),
            }
        }
        (OpKind::RateLimit, _) => wrong("ml: expected HD or NS"),
        (OpKind::RedisFixed | OpKind::RedisSliding, _) => wrong("redis workload over meta"),
    };
    Check::Done { len, result }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use ratecache::protocol::text::parse_command;
    use ratecache::protocol::Request;
    use std::sync::Arc;

    fn run(c: &mut Codec, kind: OpKind, key: u64, reply: &[u8]) -> Check {
        c.check(
            reply,
            &Expect {
                kind,
                key,
                opaque: 0,
            },
        )
    }

    #[test]
    fn requests_parse_with_the_servers_parser() {
        let mut c = Codec::new(
            Arc::new(Spec {
                protocol: crate::codec::Protocol::Meta,
                ..Spec::default()
            }),
            0,
        );
        for kind in [OpKind::Get, OpKind::Set, OpKind::Incr, OpKind::RateLimit] {
            let mut out = BytesMut::new();
            c.encode(kind, 1, &mut out);
            let nl = out.iter().position(|&b| b == b'\n').unwrap();
            let req = parse_command(&out[..nl - 1]);
            assert!(
                matches!(req, Request::Meta(_) | Request::MetaLimit(_)),
                "{kind:?}: {req:?}"
            );
        }
    }

    #[test]
    fn replies_are_checked() {
        let spec = Spec {
            protocol: crate::codec::Protocol::Meta,
            ..Spec::default()
        };
        let mut c = Codec::new(Arc::new(spec), 0);
        let mut hit = b"VA 32\r\n".to_vec();
        crate::keys::write_value(&mut hit, 4, 32);
        hit.extend_from_slice(b"\r\n");
        assert_eq!(
            run(&mut c, OpKind::Get, 4, &hit),
            Check::Done {
                len: hit.len(),
                result: Ok(Outcome::Hit)
            }
        );
        assert_eq!(run(&mut c, OpKind::Get, 4, &hit[..10]), Check::Incomplete);
        assert!(matches!(
            run(&mut c, OpKind::Get, 5, &hit),
            Check::Done { result: Err(_), .. }
        ));
        let ok = |c: &mut Codec, kind, reply: &[u8]| matches!(run(c, kind, 1, reply), Check::Done { result: Ok(_), len } if len == reply.len());
        assert!(ok(&mut c, OpKind::Get, b"EN\r\n"));
        assert!(ok(&mut c, OpKind::Set, b"HD\r\n"));
        assert!(ok(&mut c, OpKind::Incr, b"VA 1 t60\r\n7\r\n"));
        assert!(ok(&mut c, OpKind::Incr, b"VA 1 t-1\r\n7\r\n"));
        assert!(!ok(&mut c, OpKind::Incr, b"VA 1 t-2\r\n7\r\n"));
        assert!(ok(&mut c, OpKind::RateLimit, b"HD l100 r99 a0 t10\r\n"));
        assert!(ok(&mut c, OpKind::RateLimit, b"NS l100 r0 a9 t1000\r\n"));
        assert!(!ok(&mut c, OpKind::Set, b"NS\r\n"));
        assert!(!ok(&mut c, OpKind::Get, b"HD\r\n"));
        assert!(!ok(&mut c, OpKind::Incr, b"VA 1\r\n7\r\n"));
        assert!(!ok(&mut c, OpKind::Incr, b"NF\r\n"));
        assert!(!ok(&mut c, OpKind::Incr, b"VA 1 t60\r\nx\r\n"));
        assert!(!ok(&mut c, OpKind::RateLimit, b"HD l100 r99 a3 t10\r\n"));
        assert!(!ok(&mut c, OpKind::RateLimit, b"HD l100 r99\r\n"));
        assert!(!ok(
            &mut c,
            OpKind::RateLimit,
            b"CLIENT_ERROR bad command line format\r\n"
        ));
        assert!(matches!(
            run(&mut c, OpKind::Get, 1, b"VA x\r\n"),
            Check::Desync(_)
        ));
    }
}
