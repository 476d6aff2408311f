//! memcached's text protocol. Expected replies are built with the server's own encoders
//! (`ratecache::protocol::text::write_value` / `write_reply`), and the requests are checked in
//! the tests against the server's own parser (`parse_command`).

use bytes::{BufMut, BytesMut};
use ratecache::protocol::text::{write_reply, write_value};
use ratecache::protocol::Reply;

use super::{check_verdict, parse_u64, quote, Algo, Check, Expect, OpKind, Outcome, Spec};

/// A reply line longer than this without `\n` means the stream is out of step.
const MAX_LINE: usize = 4096;

fn put_num(out: &mut BytesMut, n: u64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends the request.
pub fn encode(spec: &Spec, kind: OpKind, key: &[u8], value: &[u8], out: &mut BytesMut) {
    match kind {
        OpKind::Get => {
            out.put_slice(b"get ");
            out.put_slice(key);
        }
        OpKind::Set => {
            out.put_slice(b"set ");
            out.put_slice(key);
            out.put_slice(b" 0 ");
            put_num(out, u64::from(spec.ttl));
            out.put_u8(b' ');
            put_num(out, value.len() as u64);
            out.put_slice(b"\r\n");
            out.put_slice(value);
        }
        OpKind::Incr => {
            out.put_slice(b"incr ");
            out.put_slice(key);
            out.put_slice(b" 1");
        }
        OpKind::RateLimit => {
            out.put_slice(b"ratelimit ");
            out.put_slice(key);
            out.put_u8(b' ');
            put_num(out, u64::from(spec.rl_limit));
            out.put_u8(b' ');
            put_num(out, spec.rl_period_ms);
            out.put_slice(b"ms");
            if spec.rl_burst != 0 {
                out.put_u8(b' ');
                put_num(out, u64::from(spec.rl_burst));
            }
            match spec.rl_algo {
                Algo::Gcra => {}
                Algo::Fixed => out.put_slice(b" fixed"),
                Algo::Sliding => out.put_slice(b" sliding"),
            }
        }
        OpKind::RedisFixed | OpKind::RedisSliding => unreachable!("redis workload over text"),
    }
    out.put_slice(b"\r\n");
}

/// The length of the reply frame at the start of `buf`: one line, or a `VALUE` line, its
/// data and everything up to the closing `END`.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[at..]) else {
            return if buf.len() - at > MAX_LINE {
                Err(format!("no end of line in {}", quote(&buf[at..])))
            } else {
                Ok(None)
            };
        };
        let line = &buf[at..at + nl];
        let next = at + nl + 1;
        if !line.starts_with(b"VALUE ") {
            return Ok(Some(next));
        }
        // VALUE <key> <flags> <bytes> [<cas>]
        let len = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .split(|&b| b == b' ')
            .nth(3)
            .and_then(parse_u64)
            .ok_or_else(|| format!("bad VALUE line {}", quote(line)))?;
        let end = next + len as usize + 2;
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(format!(
                "value not followed by CRLF: {}",
                quote(&buf[at..end])
            ));
        }
        at = end;
    }
}

/// Checks the reply at the start of `buf`.
pub fn check(spec: &Spec, e: &Expect, key: &[u8], expected: &mut BytesMut, buf: &[u8]) -> Check {
    let len = match frame_len(buf) {
        Ok(Some(len)) => len,
        Ok(None) => return Check::Incomplete,
        Err(why) => return Check::Desync(why),
    };
    let frame = &buf[..len];
    let line = frame.strip_suffix(b"\r\n").unwrap_or(frame);
    let wrong = |what: &str| Err(format!("{what}: got {}", quote(frame)));
    let result = match e.kind {
        OpKind::Get => {
            expected.clear();
            write_reply(expected, Reply::End);
            if frame == &expected[..] {
                Ok(Outcome::Miss)
            } else {
                let mut value = Vec::with_capacity(spec.value_size);
                crate::keys::write_value(&mut value, e.key, spec.value_size);
                expected.clear();
                write_value(expected, key, 0, &value, None);
                write_reply(expected, Reply::End);
                if frame == &expected[..] {
                    Ok(Outcome::Hit)
                } else {
                    wrong("get: expected the stored value or END")
                }
            }
        }
        OpKind::Set => {
            expected.clear();
            write_reply(expected, Reply::Stored);
            if frame == &expected[..] {
                Ok(Outcome::Stored)
            } else {
                wrong("set: expected STORED")
            }
        }
        OpKind::Incr => match parse_u64(line) {
            Some(n) if n >= 1 && frame.ends_with(b"\r\n") => Ok(Outcome::Counter(n)),
            _ => wrong("incr: expected a counter >= 1"),
        },
        OpKind::RateLimit => {
            // No allocation per reply: the load generator must stay cheaper than the server.
            let mut t = line.split(|&b| b == b' ');
            let verdict = t.next();
            let mut nums = [None; 4];
            for n in nums.iter_mut() {
                *n = t.next().and_then(parse_u64);
            }
            match (verdict, nums, t.next()) {
                (Some(v), [Some(cap), Some(rem), Some(retry), Some(_reset)], None)
                    if v == b"ALLOWED" || v == b"DENIED" =>
                {
                    check_verdict(spec, v == b"ALLOWED", cap, rem, retry)
                        .map_err(|why| format!("ratelimit: {why}: got {}", quote(frame)))
                }
                _ => wrong("ratelimit: expected ALLOWED|DENIED and four numbers"),
            }
        }
        OpKind::RedisFixed | OpKind::RedisSliding => wrong("redis workload over text"),
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

    fn codec(spec: Spec) -> Codec {
        Codec::new(Arc::new(spec), 0)
    }

    fn first_line(b: &[u8]) -> &[u8] {
        let nl = b.iter().position(|&c| c == b'\n').unwrap();
        &b[..nl - 1]
    }

    #[test]
    fn requests_parse_with_the_servers_parser() {
        let mut c = codec(Spec {
            ttl: 7,
            ..Spec::default()
        });
        let mut out = BytesMut::new();
        c.encode(OpKind::Set, 3, &mut out);
        match parse_command(first_line(&out)) {
            Request::Store {
                key,
                exptime,
                len,
                flags,
                ..
            } => {
                assert_eq!(key, b"key:0000000000000003");
                assert_eq!((exptime, len, flags), (7, 32, 0));
            }
            other => panic!("{other:?}"),
        }
        assert!(out.ends_with(b"\r\n") && out.len() == 20 + "set  0 7 32\r\n".len() + 34);
        for (kind, ok) in [
            (
                OpKind::Get,
                matches!(parse_command(b"get x"), Request::Get { .. }),
            ),
            (OpKind::Incr, true),
            (OpKind::RateLimit, true),
        ] {
            assert!(ok);
            out.clear();
            c.encode(kind, 5, &mut out);
            let req = parse_command(first_line(&out));
            match (kind, req) {
                (OpKind::Get, Request::Get { .. }) => {}
                (
                    OpKind::Incr,
                    Request::Arith {
                        delta: 1,
                        incr: true,
                        ..
                    },
                ) => {}
                (OpKind::RateLimit, Request::RateLimit { key, .. }) => {
                    assert_eq!(key, b"key:0000000000000005")
                }
                (k, r) => panic!("{k:?} parsed as {r:?}"),
            }
        }
    }

    fn check_bytes(c: &mut Codec, kind: OpKind, key: u64, reply: &[u8]) -> Check {
        let e = Expect {
            kind,
            key,
            opaque: 0,
        };
        c.check(reply, &e)
    }

    #[test]
    fn right_replies_pass() {
        let mut c = codec(Spec::default());
        let mut v = b"VALUE key:0000000000000009 0 32\r\n".to_vec();
        crate::keys::write_value(&mut v, 9, 32);
        v.extend_from_slice(b"\r\nEND\r\nSTORED\r\n");
        let hit = check_bytes(&mut c, OpKind::Get, 9, &v);
        assert_eq!(hit, Check::done(v.len() - 8, Ok(Outcome::Hit)));
        // Every shorter prefix is incomplete, never an error.
        for cut in 0..v.len() - 8 {
            assert_eq!(
                check_bytes(&mut c, OpKind::Get, 9, &v[..cut]),
                Check::Incomplete
            );
        }
        assert_eq!(
            check_bytes(&mut c, OpKind::Get, 1, b"END\r\n"),
            Check::done(5, Ok(Outcome::Miss))
        );
        assert_eq!(
            check_bytes(&mut c, OpKind::Set, 1, b"STORED\r\n"),
            Check::done(8, Ok(Outcome::Stored))
        );
        assert_eq!(
            check_bytes(&mut c, OpKind::Incr, 1, b"42\r\n"),
            Check::done(4, Ok(Outcome::Counter(42)))
        );
        assert_eq!(
            check_bytes(&mut c, OpKind::RateLimit, 1, b"ALLOWED 100 99 0 10\r\n"),
            Check::done(21, Ok(Outcome::Allowed))
        );
        assert_eq!(
            check_bytes(&mut c, OpKind::RateLimit, 1, b"DENIED 100 0 10 1000\r\n"),
            Check::done(22, Ok(Outcome::Denied))
        );
    }

    #[test]
    fn wrong_replies_are_errors() {
        let mut c = codec(Spec::default());
        let wrong = |c: &mut Codec, kind, key, reply: &[u8]| match check_bytes(c, kind, key, reply)
        {
            Check::Done {
                len,
                result: Err(why),
            } => {
                assert_eq!(len, reply.len(), "{why}");
                why
            }
            other => panic!("{} accepted: {other:?}", reply.escape_ascii()),
        };
        // Another key's value, a value of the right key but wrong bytes, flags, length.
        let mut v = b"VALUE key:0000000000000009 0 32\r\n".to_vec();
        crate::keys::write_value(&mut v, 9, 32);
        v.extend_from_slice(b"\r\nEND\r\n");
        wrong(&mut c, OpKind::Get, 8, &v);
        let mut bad = v.clone();
        bad[40] = b'x';
        wrong(&mut c, OpKind::Get, 9, &bad);
        let flags = String::from_utf8(v.clone())
            .unwrap()
            .replace(" 0 32", " 1 32");
        wrong(&mut c, OpKind::Get, 9, flags.as_bytes());
        wrong(
            &mut c,
            OpKind::Get,
            9,
            b"VALUE key:0000000000000009 0 1\r\n1\r\nEND\r\n",
        );
        let why = wrong(&mut c, OpKind::Get, 9, b"ERROR\r\n");
        assert!(why.contains("ERROR"), "{why}");
        wrong(&mut c, OpKind::Get, 9, b"STORED\r\n");
        wrong(&mut c, OpKind::Set, 9, b"NOT_STORED\r\n");
        wrong(
            &mut c,
            OpKind::Set,
            9,
            b"SERVER_ERROR out of memory storing object\r\n",
        );
        wrong(&mut c, OpKind::Incr, 9, b"NOT_FOUND\r\n");
        wrong(&mut c, OpKind::Incr, 9, b"0\r\n");
        wrong(&mut c, OpKind::Incr, 9, b"-1\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"ERROR\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"ALLOWED 100 99 5 10\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"DENIED 100 0 0 10\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"ALLOWED 10 9 0 10\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"ALLOWED 100 101 0 10\r\n");
        wrong(&mut c, OpKind::RateLimit, 9, b"ALLOWED 100 99 0\r\n");
        // A stream whose frame cannot be found is out of step.
        assert!(matches!(
            check_bytes(&mut c, OpKind::Get, 9, b"VALUE k 0 zz\r\n"),
            Check::Desync(_)
        ));
        assert!(matches!(
            check_bytes(&mut c, OpKind::Get, 9, &[b'x'; 5000]),
            Check::Desync(_)
        ));
    }
}
