//! Tests of the binary decoder: framing, limits, every opcode, proptests.

use super::*;
use crate::protocol::binary::{encode_request, RES_MAGIC};
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

const LIMITS: DecodeLimits = DecodeLimits {
    item_size_max: 1 << 20,
    use_cas: true,
    sasl: true,
};

fn cmd(buf: &[u8]) -> Command<'_> {
    match decode(buf, &LIMITS) {
        Decode::Frame(f) => f.req.command,
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
fn incomplete_until_the_value_has_arrived() {
    let b = req(opcode::SET, b"key", &[0; 8], b"value", 0, 0);
    for n in 0..b.len() {
        match decode(&b[..n], &LIMITS) {
            Decode::Incomplete { need, fallback } => {
                assert!(need > n, "{n} bytes");
                assert_eq!(fallback.is_some(), n >= 35, "{n} bytes");
            }
            other => panic!("{n} bytes: {other:?}"),
        }
    }
    assert!(matches!(
        cmd(&b),
        Command::Store {
            op: StoreOp::Set,
            key: b"key",
            value: b"value",
            ..
        }
    ));
}

#[test]
fn too_large_values_and_sasl_data_are_refused_unbuffered() {
    let small = DecodeLimits {
        item_size_max: 1024,
        ..LIMITS
    };
    let b = req(opcode::SETQ, b"k", &[0; 8], &[b'x'; 2000], 0, 0);
    let Decode::Frame(f) = decode(&b[..40], &small) else {
        panic!()
    };
    assert_eq!((f.len, f.skip), (33, 2000));
    assert!(matches!(
        f.req.command,
        Command::StoreRefused {
            why: Refusal::TooLarge,
            ..
        }
    ));
    let big = raw_header(opcode::SASL_AUTH, 5, 0, 5 + 300_000_000);
    let mut b = big.clone();
    b.extend(b"PLAIN");
    let Decode::Frame(f) = decode(&b, &LIMITS) else {
        panic!()
    };
    assert_eq!(f.req.command, Command::Error(status::ENOMEM));
    assert_eq!(f.skip, 300_000_000);
    // Without -S the SASL opcodes are unknown commands, their data discarded.
    let no_sasl = DecodeLimits {
        sasl: false,
        ..LIMITS
    };
    let Decode::Frame(f) = decode(&b, &no_sasl) else {
        panic!()
    };
    assert_eq!((f.req.command, f.skip), (Command::Unknown, 300_000_000));
}

#[test]
fn bad_magic_and_bad_lengths() {
    let mut b = req(opcode::NOOP, b"", &[], b"", 0, 0);
    b[0] = RES_MAGIC;
    assert_eq!(decode(&b, &LIMITS), Decode::Close);
    assert_eq!(
        decode(b"get foo\r\nget bar baz qux\r\n", &LIMITS),
        Decode::Close
    );
    // Decided by the header alone, before extras and key arrive.
    let b = raw_header(opcode::GET, 5, 0, 3);
    assert_eq!(cmd(&b), Command::BadLengths);
    let b = raw_header(opcode::GET, 3, 4, 5);
    assert_eq!(cmd(&b), Command::BadLengths);
    let b = raw_header(opcode::GET, 60_000, 0, 60_000);
    assert_eq!(cmd(&b), Command::Invalid);
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
            value: b"abc"
        }
    );
    assert_eq!(
        cmd(&req(opcode::STAT, b"items", b"", b"", 0, 0)),
        Command::Stat { key: b"items" }
    );
    // Verbosity is not served by memcached 1.6.18's binary protocol.
    let verbosity = req(opcode::VERBOSITY, b"", &[0, 0, 0, 1], b"", 0, 0);
    let Decode::Frame(f) = decode(&verbosity, &LIMITS) else {
        panic!()
    };
    assert_eq!((f.req.command, f.len, f.skip), (Command::Unknown, 28, 4));
}

#[test]
fn quiet_opcodes() {
    for op in 0..=255u8 {
        let b = req(op, b"", b"", b"", 0, 0);
        if let Decode::Frame(f) = decode(&b, &LIMITS) {
            assert_eq!(f.req.quiet, is_quiet(op));
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
        Command::RateLimit { args: None, .. }
    ));
    let with_body = req(opcode::RATELIMIT, b"u", &ok, b"xyz", 0, 0);
    let Decode::Frame(f) = decode(&with_body, &LIMITS) else {
        panic!()
    };
    assert!(matches!(
        f.req.command,
        Command::RateLimit { args: None, .. }
    ));
    assert_eq!(f.skip, 3);
    assert!(matches!(
        cmd(&req(opcode::RATELIMIT, b"", &ok, b"", 0, 0)),
        Command::RateLimit { args: None, .. }
    ));
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes, &LIMITS);
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
        match decode(&b, &LIMITS) {
            Decode::Frame(f) => {
                let h = f.req.header;
                if usize::from(h.keylen) + usize::from(h.extlen) > h.bodylen as usize {
                    prop_assert_eq!(f.req.command, Command::BadLengths);
                } else if h.keylen > 250 {
                    prop_assert_eq!(f.req.command, Command::Invalid);
                } else {
                    prop_assert!(f.len <= b.len() && f.len >= h.prefix_len());
                }
                if let Command::Store { key, value, .. } = f.req.command {
                    prop_assert!(!key.is_empty());
                    prop_assert_eq!(value.len() + h.prefix_len() - HEADER_LEN, bodylen as usize);
                }
            }
            Decode::Incomplete { need, .. } => prop_assert!(need > b.len()),
            Decode::Close => prop_assert!(false),
        }
    }
}
