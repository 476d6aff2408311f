//! Tests of the `ml` parser and reply.

use super::*;

fn parse(line: &str) -> Request<'_> {
    let toks: Vec<&[u8]> = line
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::as_bytes)
        .collect();
    parse_meta_limit(&toks)
}

fn error(line: &str) -> Reply {
    match parse(line) {
        Request::LimitError { reply, .. } => reply,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn parses_and_encodes() {
    let Request::MetaLimit(m) = parse("api:u42 R100 W60s B10 l r a t k O7") else {
        panic!()
    };
    assert_eq!(
        m.params,
        Params {
            limit: 100,
            period_ns: 60_000_000_000,
            burst: 10,
            cost: 1
        }
    );
    let d = Decision {
        allowed: true,
        limit: 10,
        remaining: 9,
        retry_after_ns: 0,
        reset_after_ns: 600_000_000,
    };
    let mut out = BytesMut::new();
    write_meta_decision(&mut out, &m, &d);
    assert_eq!(&out[..], b"HD l10 r9 a0 t600 kapi:u42 O7\r\n");
    let Request::MetaLimit(m) = parse("YWJj R5 W1m AF MP b k q") else {
        panic!()
    };
    assert_eq!(
        (&m.key[..], m.algorithm, m.mode, m.quiet),
        (&b"abc"[..], Algorithm::Fixed, Mode::Peek, true)
    );
}

#[test]
fn errors() {
    assert_eq!(error(""), Reply::Error);
    assert_eq!(error("k R5"), Reply::ClientError("bad command line format"));
    assert_eq!(error("k R5 W1s R6"), Reply::ClientError("duplicate flag"));
    assert_eq!(error("k R5 W1s Z"), Reply::ClientError("invalid flag"));
    assert_eq!(
        error("k Rx W1s"),
        Reply::ClientError("bad token in command line format")
    );
    assert_eq!(
        error("k R5 W1y"),
        Reply::ClientError("bad token in command line format")
    );
    assert_eq!(error("k R5 W0"), Reply::ClientError("invalid period"));
    assert_eq!(error("k R0 W1s"), Reply::ClientError("invalid limit"));
    assert_eq!(
        error("k R5 W1s D6"),
        Reply::ClientError("cost exceeds burst")
    );
    assert_eq!(
        error("k R5 W1s AX"),
        Reply::ClientError("invalid mode for ml A token")
    );
    assert_eq!(
        error("k R5 W1s MX"),
        Reply::ClientError("invalid mode for ml M token")
    );
    assert_eq!(
        error(&format!("k R5 W1s O{}", "x".repeat(40))),
        Reply::ClientError("opaque token too long")
    );
    assert_eq!(
        error("! R5 W1s b"),
        Reply::ClientError("error decoding key")
    );
}
