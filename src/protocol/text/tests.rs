//! Tests of the text command parser.

use super::*;
use proptest::prelude::*;

fn parse(s: &str) -> Request<'_> {
    parse_command(s.as_bytes())
}

#[test]
fn parses_storage_commands() {
    assert_eq!(
        parse("set k 5 10 3"),
        Request::Store {
            kind: StoreKind::Set,
            key: b"k",
            flags: 5,
            exptime: 10,
            len: 3,
            cas: 0,
            noreply: false,
            data: &[]
        }
    );
    assert_eq!(
        parse("cas k 0 0 1 99 noreply"),
        Request::Store {
            kind: StoreKind::Cas,
            key: b"k",
            flags: 0,
            exptime: 0,
            len: 1,
            cas: 99,
            noreply: true,
            data: &[]
        }
    );
    assert_eq!(parse("set k 0 0"), ERROR);
    assert_eq!(parse("set k 0 0 1 noreply extra"), ERROR);
    assert_eq!(parse("set k abc 0 1"), reply(BAD_FORMAT, false));
    assert_eq!(parse("set k 0 0 -1"), reply(BAD_FORMAT, false));
    assert_eq!(parse("set k -1 0 1"), reply(BAD_FORMAT, false));
    let long = format!("set {} 0 0 1", "k".repeat(251));
    assert_eq!(parse(&long), reply(BAD_FORMAT, false));
    // flags truncate to 32 bits as memcached's do.
    assert!(matches!(
        parse("set k 4294967296 0 1"),
        Request::Store { flags: 0, .. }
    ));
}

#[test]
fn parses_gets_and_keys() {
    let Request::Get { cas, touch, keys } = parse("gets a  b c") else {
        panic!()
    };
    assert!(cas);
    assert_eq!(touch, None);
    assert_eq!(keys.collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"c"]);
    let Request::Get { touch, keys, .. } = parse("gat 10 a") else {
        panic!()
    };
    assert_eq!(touch, Some(10));
    assert_eq!(keys.count(), 1);
    assert_eq!(
        parse("gat x a"),
        reply(Reply::ClientError("invalid exptime argument"), false)
    );
    assert_eq!(parse("get"), ERROR);
}

#[test]
fn parses_delete_forms() {
    assert_eq!(
        parse("delete k"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        parse("delete k 0"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        parse("delete k noreply"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert_eq!(
        parse("delete k 0 noreply"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert!(matches!(
        parse("delete k 1"),
        Request::Reply {
            reply: Reply::ClientError(_),
            noreply: false
        }
    ));
}

#[test]
fn parses_misc() {
    assert_eq!(
        parse("incr k 1"),
        Request::Arith {
            key: b"k",
            incr: true,
            delta: 1,
            noreply: false
        }
    );
    assert_eq!(
        parse("decr k -1"),
        reply(Reply::ClientError("invalid numeric delta argument"), false)
    );
    assert_eq!(
        parse("touch k 10 noreply"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: true
        }
    );
    assert_eq!(
        parse("flush_all"),
        Request::FlushAll {
            delay: 0,
            noreply: false
        }
    );
    assert_eq!(
        parse("flush_all noreply"),
        Request::FlushAll {
            delay: 0,
            noreply: true
        }
    );
    assert_eq!(
        parse("flush_all 10"),
        Request::FlushAll {
            delay: 10,
            noreply: false
        }
    );
    assert_eq!(
        parse("verbosity 1 2"),
        Request::Verbosity {
            level: 1,
            noreply: false
        }
    );
    assert_eq!(parse("stats"), Request::Stats(StatsKind::General));
    assert_eq!(
        parse("stats detail"),
        reply(Reply::ClientError("usage: stats detail on|off|dump"), false)
    );
    assert_eq!(parse("stats bogus"), ERROR);
    assert_eq!(parse("GET / HTTP/1.1"), Request::Close);
    assert_eq!(parse(""), ERROR);
    assert_eq!(parse("x"), ERROR);
    assert_eq!(parse("mn"), reply(Reply::Line("MN"), false));
}

#[test]
fn long_multiget_detection() {
    assert!(may_be_long_multiget(b"get a b"));
    assert!(may_be_long_multiget(b"   gets a"));
    assert!(!may_be_long_multiget(b"set a"));
    assert!(!may_be_long_multiget(&[b' '; 101]));
}

proptest! {
    #[test]
    fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_command(&line);
    }

    #[test]
    fn structured_lines_never_panic(cmd in "(get|gets|gat|set|cas|incr|delete|touch|flush_all|stats|verbosity|cache_memlimit|slabs|lru_crawler|lru) ?",
                                    args in proptest::collection::vec("[a-z0-9-]{0,5}| |noreply", 0..30)) {
        let line = format!("{cmd}{}", args.join(" "));
        let _ = parse_command(line.as_bytes());
    }
}
