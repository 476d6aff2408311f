//! Tests of the text `ratelimit` family parsers.

use super::*;

fn toks(s: &str) -> Vec<&[u8]> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(str::as_bytes)
        .collect()
}

fn err(s: &str) -> Reply {
    match parse_ratelimit(&toks(s), false) {
        Request::LimitError { reply, .. } => reply,
        other => panic!("{s}: {other:?}"),
    }
}

fn ok(s: &str) -> (Limit<'_>, Mode) {
    match parse_ratelimit(&toks(s), false) {
        Request::RateLimit {
            target: Target::Explicit(l),
            mode,
            ..
        } => (l, mode),
        other => panic!("{s}: {other:?}"),
    }
}

#[test]
fn parses_the_full_form() {
    let (l, m) = ok("api:u42 100 60s 10");
    assert_eq!(l.key, b"api:u42");
    assert_eq!(
        l.params,
        Params {
            limit: 100,
            period_ns: 60_000_000_000,
            burst: 10,
            cost: 1
        }
    );
    assert_eq!((l.algorithm, m), (Algorithm::Gcra, Mode::Consume));
    let (l, m) = ok("k 5 250ms 5 2 peek fixed");
    assert_eq!(
        (l.params.cost, l.params.period_ns, l.algorithm, m),
        (2, 250_000_000, Algorithm::Fixed, Mode::Peek)
    );
    let (l, _) = ok("k 5 60");
    assert_eq!(
        l.params.period_ns, 60_000_000_000,
        "a bare period is seconds"
    );
    let (_, m) = ok("k 5 1h refund sliding");
    assert_eq!(m, Mode::Refund);
}

#[test]
fn errors_from_the_spec() {
    // The spec's `bad command line format`, with memcached's usage hint after it.
    const USAGE: Reply = Reply::ClientError(RATELIMIT_USAGE);
    assert!(RATELIMIT_USAGE.starts_with("bad command line format.  Usage: "));
    assert_eq!(err("k 5"), USAGE);
    assert_eq!(err(""), USAGE);
    assert_eq!(err("k x 60"), USAGE);
    assert_eq!(err("k -5 60"), USAGE);
    assert_eq!(err("k 5 60y"), USAGE);
    assert_eq!(err("k 5 60 1x"), USAGE);
    assert_eq!(err("k 5 60 1 1 1"), USAGE);
    assert_eq!(err(&format!("{} 5 60", "k".repeat(251))), USAGE);
    assert_eq!(err("k 0 60"), Reply::ClientError("invalid limit"));
    assert_eq!(err("k 4294967296 60"), Reply::ClientError("invalid limit"));
    assert_eq!(err("k 5 0"), Reply::ClientError("invalid period"));
    assert_eq!(err("k 5 366d"), Reply::ClientError("invalid period"));
    assert_eq!(
        err("k 5 60 4294967296"),
        Reply::ClientError("invalid burst")
    );
    assert_eq!(err("k 5 60 5 0"), Reply::ClientError("invalid cost"));
    assert_eq!(err("k 5 60 5 6"), Reply::ClientError("cost exceeds burst"));
    assert_eq!(err("k 5 60 bogus"), UNKNOWN_OPTION);
    assert_eq!(err("k 5 60 gcra fixed"), UNKNOWN_OPTION);
    assert_eq!(err("k 5 60 peek refund"), UNKNOWN_OPTION);
    assert_eq!(err("k 5 60 peek 3"), USAGE);
}

#[test]
fn parses_policies_and_sets() {
    match parse_ratelimit(&toks("u1 @free 3 peek"), true) {
        Request::RateLimit {
            key,
            target: Target::Policy { name, cost },
            mode,
            noreply,
        } => {
            assert_eq!(
                (key, name, cost, mode, noreply),
                (&b"u1"[..], &b"free"[..], 3, Mode::Peek, true)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_ratelimit_all(&toks("3 peek"), false),
        Request::RateLimitAll {
            lines: &[],
            count: 3,
            peek: true,
            noreply: false
        }
    );
    assert!(matches!(
        parse_ratelimit_all(&toks("17"), false),
        Request::LimitError { .. }
    ));
    assert!(matches!(
        parse_ratelimit_all(&toks("2 refund"), false),
        Request::LimitError { .. }
    ));
    assert_eq!(parse_limit_line(b"k 10 1m").unwrap().params.limit, 10);
    assert_eq!(parse_limit_line(b"k 10 1m peek"), Err(UNKNOWN_OPTION));
}

#[test]
fn encodes_decisions() {
    let mut out = BytesMut::new();
    let d = Decision {
        allowed: false,
        limit: 10,
        remaining: 0,
        retry_after_ns: 599_000_001,
        reset_after_ns: 6_000_000_000,
    };
    write_decision(&mut out, &d);
    assert_eq!(&out[..], b"DENIED 10 0 600 6000\r\n");
    // Durations past 2^64 ms are printed exactly.
    let far = Decision {
        retry_after_ns: 1_000_000 * (1u128 << 64),
        reset_after_ns: 1_000_000 * u128::from(u64::MAX),
        ..d
    };
    out.clear();
    write_decision(&mut out, &far);
    assert_eq!(
        &out[..],
        b"DENIED 10 0 18446744073709551616 18446744073709551615\r\n"
    );
}
