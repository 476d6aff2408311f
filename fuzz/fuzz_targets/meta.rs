//! Meta commands (`mg ms md ma me mn ml`) built from structured input, decoded by the text
//! decoder. Input: a selector byte, then `<key> <flag>...` and, after a `\n`, an `ms` value.
//! Selector bits 0-2 pick the command, bit 3 base64-encodes the key, bit 4 breaks the `\r\n`
//! after the value, bits 5-7 pick the decoder limits.
//!
//! Checks every framing property (as `text_decode`), and that an accepted request carries
//! the flags, key and value it was built from (a base64 key decodes to the original bytes),
//! with no duplicate flag, a valid mode and no over-long opaque where memcached refuses
//! one; refusals carry a known error string, and an `ms` refused after its length discards
//! exactly its value and `\r\n`.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ratecache::protocol::meta::{MetaCmd, MetaRequest};
use ratecache::protocol::{text, Decode, Reply, Request};
use ratecache_fuzz::limit::{check_error, check_params};
use ratecache_fuzz::{check_framing, limits_from, text::Text};

const COMMANDS: [&[u8]; 8] = [b"mg", b"ms", b"md", b"ma", b"me", b"mn", b"ml", b"mx"];

/// Error strings of memcached's meta parser (and the framing's).
const META_ERRORS: &[&str] = &[
    "bad command line format",
    "bad token in command line format",
    "duplicate flag",
    "invalid flag",
    "invalid or duplicate flag",
    "error decoding key",
    "incorrect length for M token",
    "invalid numeric delta value",
    "invalid numeric initial value",
    "invalid mode for ms M token",
    "invalid mode for ma M token",
    "opaque token too long",
    "options flags are too long",
    "options flags too long",
    "bad data chunk",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cmd = COMMANDS[usize::from(sel & 7)];
    let limits = limits_from(sel >> 5);
    let (head, value) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    // A NUL would end the line early: keep the tokens as built.
    let head: Vec<u8> = head
        .iter()
        .map(|&b| if b == 0 { b'0' } else { b })
        .collect();
    let mut toks = head.split(|&b| b == b' ').filter(|t| !t.is_empty());
    // Without a key token the first flag would be read as the key (or an `ms` length).
    let raw_key = toks.next().unwrap_or(b"k");
    let flags: Vec<&[u8]> = toks.collect();
    let encoded = sel & 8 != 0;
    let key_tok = if encoded {
        STANDARD.encode(raw_key).into_bytes()
    } else {
        raw_key.to_vec()
    };

    let mut buf = cmd.to_vec();
    buf.push(b' ');
    buf.extend_from_slice(&key_tok);
    if cmd == b"ms" {
        buf.extend(format!(" {}", value.len()).bytes());
    }
    for f in &flags {
        buf.push(b' ');
        buf.extend_from_slice(f);
    }
    buf.extend_from_slice(b"\r\n");
    let line_len = buf.len();
    if cmd == b"ms" {
        buf.extend_from_slice(value);
        buf.extend_from_slice(if sel & 16 == 0 { b"\r\n" } else { b"\rX" });
    }

    check_framing::<Text>(&buf, &limits);
    let Decode::Frame(f) = text::decode(&buf, &limits) else {
        panic!("a whole meta request is not a frame: {buf:?}");
    };
    let key_matches = |key: &[u8], base64: bool| {
        if base64 && encoded {
            assert_eq!(key, raw_key, "base64 key does not round-trip");
        } else if !base64 {
            assert_eq!(key, &key_tok[..], "key");
        }
    };
    match &f.req {
        Request::Meta(m) => {
            key_matches(&m.key, m.base64);
            check_meta(cmd, m, &flags);
            if m.cmd == MetaCmd::Set {
                assert_eq!(m.data, value, "ms value");
                assert_eq!(f.len, buf.len(), "ms frame length");
            }
        }
        Request::MetaLimit(m) => {
            assert_eq!(cmd, b"ml");
            key_matches(&m.key, m.base64);
            assert_eq!(m.tokens, flags, "ml flags");
            check_params(&m.params, m.algorithm);
        }
        Request::MetaDebug { key } => {
            assert_eq!(cmd, b"me");
            let decoded = flags.first() == Some(&&b"b"[..]);
            key_matches(key, decoded);
        }
        Request::Refused { key, .. } => {
            assert_eq!(cmd, b"ms");
            // The key is decoded when a `b` flag was given.
            key_matches(key, flags.iter().any(|t| t[0] == b'b'));
            assert_eq!((f.len, f.skip), (line_len, value.len() as u64 + 2));
        }
        Request::LimitError { reply, .. } => {
            assert_eq!(cmd, b"ml");
            if *reply != Reply::Error {
                check_error(reply);
            }
        }
        Request::Reply { reply, .. } => {
            match reply {
                Reply::ClientError(msg) => assert!(META_ERRORS.contains(msg), "{msg:?}"),
                Reply::Error | Reply::Line("MN") => {}
                other => panic!("unexpected reply {other:?}"),
            }
            if cmd == b"ms" && f.skip > 0 {
                assert_eq!((f.len, f.skip), (line_len, value.len() as u64 + 2));
            }
        }
        other => panic!("a meta line decoded as {other:?}"),
    }
});

/// An accepted `mg ms md ma` carries its flags in order, each at most once, and every field
/// it sets comes from a flag.
fn check_meta(cmd: &[u8], m: &MetaRequest<'_>, flags: &[&[u8]]) {
    let expected = match cmd {
        b"mg" => MetaCmd::Get,
        b"ms" => MetaCmd::Set,
        b"md" => MetaCmd::Delete,
        b"ma" => MetaCmd::Arith,
        other => panic!("{other:?} parsed as {:?}", m.cmd),
    };
    assert_eq!(m.cmd, expected);
    assert_eq!(m.tokens, flags, "flags");
    let mut seen = [false; 256];
    for t in flags {
        assert!(!seen[usize::from(t[0])], "duplicate flag {t:?} accepted");
        seen[usize::from(t[0])] = true;
    }
    let has = |c: u8| seen[usize::from(c)];
    assert_eq!(m.base64, has(b'b'));
    assert_eq!(m.value, has(b'v'));
    assert_eq!(m.quiet, has(b'q'));
    assert_eq!(m.no_update, has(b'u'));
    assert_eq!(m.invalidate, has(b'I'));
    assert_eq!(m.ttl.is_some(), has(b'T'));
    assert_eq!(m.vivify.is_some(), has(b'N'));
    assert_eq!(m.recache.is_some(), has(b'R'));
    assert_eq!(m.cas.is_some(), has(b'C'));
    assert_eq!(m.mode.is_some(), has(b'M'));
    assert!(m.client_flags == 0 || has(b'F'));
    assert!(m.delta == 1 || has(b'D'));
    assert!(m.initial == 0 || has(b'J'));
    match (m.cmd, m.mode) {
        (MetaCmd::Set, Some(c)) => assert!(b"EAPRS".contains(&c), "ms mode {c}"),
        (MetaCmd::Arith, Some(c)) => assert!(b"I+D-".contains(&c), "ma mode {c}"),
        _ => {}
    }
    if matches!(m.cmd, MetaCmd::Set | MetaCmd::Delete) {
        let long = flags.iter().any(|t| t[0] == b'O' && t.len() > 32);
        assert!(!long, "long opaque accepted by {:?}", m.cmd);
    }
}
