//! Redis RESP2: a tiny encoder (arrays of bulk strings) and decoder, and the two usual Lua
//! rate limiters run with EVALSHA.

use bytes::{BufMut, BytesMut};

use super::{quote, Check, Expect, OpKind, Outcome, Spec};

/// Fixed window: INCR the window's counter, set its expiry on the first hit.
/// KEYS[1] subject, ARGV[1] limit, ARGV[2] window in ms. Returns {allowed, remaining, retry ms}.
pub const FIXED_WINDOW_LUA: &str = r#"local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[1])
if n > limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return {0, 0, ttl}
end
return {1, limit - n, 0}"#;

/// Sliding log: a sorted set of request times, trimmed to the window on every call.
/// KEYS[1] subject, ARGV[1] limit, ARGV[2] window in ms, ARGV[3] a unique member.
/// Returns {allowed, remaining, retry ms}.
pub const SLIDING_LOG_LUA: &str = r#"local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 1 then retry = 1 end
return {0, 0, retry}"#;

/// Appends a command: an array of bulk strings.
pub fn put_command(out: &mut BytesMut, args: &[&[u8]]) {
    let mut num = itoa::Buffer::new();
    out.put_u8(b'*');
    out.put_slice(num.format(args.len()).as_bytes());
    out.put_slice(b"\r\n");
    for a in args {
        out.put_u8(b'$');
        out.put_slice(num.format(a.len()).as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(a);
        out.put_slice(b"\r\n");
    }
}

/// Appends the request; `member` makes sliding-log entries unique (connection, sequence).
pub fn encode(
    spec: &Spec,
    kind: OpKind,
    key: &[u8],
    value: &[u8],
    member: (u32, u32),
    out: &mut BytesMut,
) {
    let mut a = itoa::Buffer::new();
    let mut b = itoa::Buffer::new();
    match kind {
        OpKind::Get => put_command(out, &[b"GET", key]),
        OpKind::Set if spec.ttl == 0 => put_command(out, &[b"SET", key, value]),
        OpKind::Set => {
            let ttl = a.format(spec.ttl).as_bytes();
            put_command(out, &[b"SET", key, value, b"EX", ttl]);
        }
        OpKind::Incr => put_command(out, &[b"INCR", key]),
        OpKind::RedisFixed => {
            let limit = a.format(spec.rl_limit).as_bytes();
            let window = b.format(spec.rl_period_ms).as_bytes();
            let sha = spec.redis_fixed_sha.as_bytes();
            put_command(out, &[b"EVALSHA", sha, b"1", key, limit, window]);
        }
        OpKind::RedisSliding => {
            let limit = a.format(spec.rl_limit).as_bytes();
            let window = b.format(spec.rl_period_ms).as_bytes();
            let m = format!("{}-{}", member.0, member.1);
            let sha = spec.redis_sliding_sha.as_bytes();
            put_command(
                out,
                &[b"EVALSHA", sha, b"1", key, limit, window, m.as_bytes()],
            );
        }
        OpKind::RateLimit => unreachable!("ratelimit over redis"),
    }
}

/// One RESP2 value, borrowed from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// `+...`
    Simple(&'a [u8]),
    /// `-...`
    Error(&'a [u8]),
    /// `:n`
    Int(i64),
    /// `$n` (None for `$-1`)
    Bulk(Option<&'a [u8]>),
    /// `*n` (None for `*-1`)
    Array(Option<Vec<Value<'a>>>),
}

/// A RESP2 value that owns its bytes (setup commands and their replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// `+...`
    Simple(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n`
    Bulk(Option<Vec<u8>>),
    /// `*n`
    Array(Option<Vec<Owned>>),
}

impl From<&Value<'_>> for Owned {
    fn from(v: &Value<'_>) -> Owned {
        match v {
            Value::Simple(b) => Owned::Simple(b.to_vec()),
            Value::Error(b) => Owned::Error(b.to_vec()),
            Value::Int(n) => Owned::Int(*n),
            Value::Bulk(b) => Owned::Bulk(b.map(<[u8]>::to_vec)),
            Value::Array(a) => {
                Owned::Array(a.as_ref().map(|a| a.iter().map(Owned::from).collect()))
            }
        }
    }
}

/// Nesting deeper than this, or lengths over 512 MB, mean the stream is out of step.
const MAX_DEPTH: usize = 8;
const MAX_LEN: i64 = 512 << 20;
const MAX_LINE: usize = 64 << 10;

/// Parses the value at the start of `buf`: `Ok(None)` while incomplete, else the value and
/// the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Value<'_>, usize)>, String> {
    parse_at(buf, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Value<'_>, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("RESP nesting too deep".into());
    }
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Err(format!("no end of line in {}", quote(buf)))
        } else {
            Ok(None)
        };
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(format!("line without CRLF: {}", quote(&buf[..=nl])));
    }
    let line = &buf[1..nl - 1];
    let next = nl + 1;
    let int = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad number in {}", quote(&buf[..next])))
    };
    Ok(Some(match buf[0] {
        b'+' => (Value::Simple(line), next),
        b'-' => (Value::Error(line), next),
        b':' => (Value::Int(int()?), next),
        b'$' => {
            let n = int()?;
            if n < 0 {
                (Value::Bulk(None), next)
            } else if n > MAX_LEN {
                return Err(format!("bulk of {n} bytes"));
            } else {
                let end = next + n as usize + 2;
                if buf.len() < end {
                    return Ok(None);
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(format!("bulk not followed by CRLF: {}", quote(&buf[..end])));
                }
                (Value::Bulk(Some(&buf[next..end - 2])), end)
            }
        }
        b'*' => {
            let n = int()?;
            if n < 0 {
                (Value::Array(None), next)
            } else if n > MAX_LEN {
                return Err(format!("array of {n} items"));
            } else {
                let mut items = Vec::with_capacity(n as usize);
                let mut at = next;
                for _ in 0..n {
                    match parse_at(&buf[at..], depth + 1)? {
                        Some((v, used)) => {
                            items.push(v);
                            at += used;
                        }
                        None => return Ok(None),
                    }
                }
                (Value::Array(Some(items)), at)
            }
        }
        _ => return Err(format!("not a RESP type byte: {}", quote(&buf[..next]))),
    }))
}

fn verdict(spec: &Spec, items: &[Value<'_>]) -> Result<Outcome, String> {
    let ints: Vec<i64> = items
        .iter()
        .map(|v| match v {
            Value::Int(n) => Ok(*n),
            other => Err(format!("not an integer: {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    let limit = i64::from(spec.rl_limit);
    match ints.as_slice() {
        [1, rem, 0] if (0..limit).contains(rem) => Ok(Outcome::Allowed),
        [0, 0, retry] if *retry >= 1 => Ok(Outcome::Denied),
        other => Err(format!(
            "verdict {other:?} is not {{1, 0..limit-1, 0}} or {{0, 0, >=1}}"
        )),
    }
}

/// Checks the reply at the start of `buf`.
pub fn check(spec: &Spec, e: &Expect, buf: &[u8]) -> Check {
    let (v, len) = match parse(buf) {
        Ok(Some(x)) => x,
        Ok(None) => return Check::Incomplete,
        Err(why) => return Check::Desync(why),
    };
    let frame = &buf[..len];
    let wrong = |what: &str| Err(format!("{what}: got {}", quote(frame)));
    let result = match (e.kind, &v) {
        (OpKind::Get, Value::Bulk(None)) => Ok(Outcome::Miss),
        (OpKind::Get, Value::Bulk(Some(d))) if crate::keys::is_value(d, e.key, spec.value_size) => {
            Ok(Outcome::Hit)
        }
        (OpKind::Get, _) => wrong("GET: expected the stored value or nil"),
        (OpKind::Set, Value::Simple(b"OK")) => Ok(Outcome::Stored),
        (OpKind::Set, _) => wrong("SET: expected +OK"),
        (OpKind::Incr, Value::Int(n)) if *n >= 1 => Ok(Outcome::Counter(*n as u64)),
        (OpKind::Incr, _) => wrong("INCR: expected an integer >= 1"),
        (OpKind::RedisFixed | OpKind::RedisSliding, Value::Array(Some(items))) => {
            verdict(spec, items).map_err(|why| format!("EVALSHA: {why}: got {}", quote(frame)))
        }
        (OpKind::RedisFixed | OpKind::RedisSliding, _) => wrong("EVALSHA: expected a verdict"),
        (OpKind::RateLimit, _) => wrong("ratelimit over redis"),
    };
    Check::Done { len, result }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Protocol};
    use std::sync::Arc;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = BytesMut::new();
        put_command(&mut out, &[b"GET", b"k"]);
        assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        let (v, n) = parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(
            v,
            Value::Array(Some(vec![
                Value::Bulk(Some(b"GET")),
                Value::Bulk(Some(b"k"))
            ]))
        );
    }

    #[test]
    fn parser_handles_every_type_and_partial_input() {
        let all = b"+OK\r\n-ERR x\r\n:-3\r\n$-1\r\n*-1\r\n$0\r\n\r\n*3\r\n:1\r\n:2\r\n*0\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while at < all.len() {
            for cut in at..at + 1 {
                let _ = parse(&all[at..cut]).unwrap();
            }
            let (v, n) = parse(&all[at..]).unwrap().unwrap();
            got.push(v);
            at += n;
        }
        assert_eq!(got.len(), 7);
        assert_eq!(got[2], Value::Int(-3));
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
    }

    #[test]
    fn replies_are_checked() {
        let spec = Spec {
            protocol: Protocol::Redis,
            redis_fixed_sha: "abc".into(),
            ..Spec::default()
        };
        let mut c = Codec::new(Arc::new(spec), 0);
        let ok = |c: &mut Codec, kind, key, reply: &[u8]| match c.check(
            reply,
            &Expect {
                kind,
                key,
                opaque: 0,
            },
        ) {
            Check::Done { len, result } => {
                assert_eq!(len, reply.len());
                result.is_ok()
            }
            other => panic!("{other:?}"),
        };
        let mut hit = b"$32\r\n".to_vec();
        crate::keys::write_value(&mut hit, 6, 32);
        hit.extend_from_slice(b"\r\n");
        assert!(ok(&mut c, OpKind::Get, 6, &hit));
        assert!(!ok(&mut c, OpKind::Get, 7, &hit));
        assert!(ok(&mut c, OpKind::Get, 6, b"$-1\r\n"));
        assert!(!ok(&mut c, OpKind::Get, 6, b"-ERR wrong\r\n"));
        assert!(ok(&mut c, OpKind::Set, 6, b"+OK\r\n"));
        assert!(!ok(&mut c, OpKind::Set, 6, b"$-1\r\n"));
        assert!(ok(&mut c, OpKind::Incr, 6, b":5\r\n"));
        assert!(!ok(&mut c, OpKind::Incr, 6, b":0\r\n"));
        assert!(ok(
            &mut c,
            OpKind::RedisFixed,
            6,
            b"*3\r\n:1\r\n:99\r\n:0\r\n"
        ));
        assert!(ok(
            &mut c,
            OpKind::RedisSliding,
            6,
            b"*3\r\n:0\r\n:0\r\n:12\r\n"
        ));
        assert!(!ok(
            &mut c,
            OpKind::RedisFixed,
            6,
            b"*3\r\n:1\r\n:100\r\n:0\r\n"
        ));
        assert!(!ok(
            &mut c,
            OpKind::RedisFixed,
            6,
            b"*3\r\n:0\r\n:0\r\n:0\r\n"
        ));
        assert!(!ok(
            &mut c,
            OpKind::RedisFixed,
            6,
            b"-NOSCRIPT No matching script\r\n"
        ));
        let mut out = BytesMut::new();
        c.encode(OpKind::RedisFixed, 1, &mut out);
        assert_eq!(
            &out[..],
            &b"*6\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$20\r\nkey:0000000000000001\r\n$3\r\n100\r\n$4\r\n1000\r\n"[..]
        );
    }
}
