//! The text decoder's framing ([`ratecache::protocol::text::decode`]) as a [`Framing`], with
//! the request-level checks of a frame.

use ratecache::protocol::limits::{parse_limit_line, Target, MAX_LIMITS};
use ratecache::protocol::meta::MetaCmd;
use ratecache::protocol::{
    text, Decode, DecodeLimits, Frame, Refusal, Reply, Request, KEY_MAX_LENGTH, MAX_MULTIGET_LINE,
};

use crate::limit::{check_error, check_key, check_limit, check_params};
use crate::Framing;

/// The text protocol decoder.
pub struct Text;

impl Framing for Text {
    type Req<'a> = Request<'a>;

    fn decode<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Decode<Request<'a>> {
        text::decode(buf, limits)
    }

    /// A line without `\n` is bounded by the multi-get limit; a value is awaited only when it
    /// fits the item size limit, after a line already buffered.
    fn max_need(buf_len: usize, limits: &DecodeLimits) -> usize {
        MAX_MULTIGET_LINE.max(buf_len + limits.item_size_max + 2)
    }

    fn check_frame(buf: &[u8], f: &Frame<Request<'_>>, limits: &DecodeLimits) {
        let framed = &buf[..f.len];
        let line_end = memchr_nl(framed).expect("a text frame holds its line's newline") + 1;
        check_request(&f.req, limits);
        match &f.req {
            Request::Store { data, len, .. } => {
                assert_eq!(data.len(), *len, "value length");
                assert_eq!(f.len, line_end + len + 2, "store frame length");
                assert!(framed.ends_with(b"\r\n"), "value not followed by \\r\\n");
                assert_eq!(&framed[line_end..line_end + len], *data, "value bytes");
            }
            Request::Meta(m) if m.cmd == MetaCmd::Set => {
                assert_eq!(m.data.len(), m.datalen, "ms value length");
                assert_eq!(f.len, line_end + m.datalen + 2, "ms frame length");
                assert!(framed.ends_with(b"\r\n"), "ms value not followed by \\r\\n");
            }
            Request::RateLimitAll { count, lines, .. } => {
                assert_eq!(f.len, line_end + lines.len(), "ratelimit_all frame length");
                let newlines = lines.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(newlines, *count, "ratelimit_all lines");
                assert!(lines.ends_with(b"\n"));
                // Each line as the server parses it.
                for line in lines.split_inclusive(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    match parse_limit_line(line.strip_suffix(b"\r").unwrap_or(line)) {
                        Ok(l) => check_limit(&l),
                        Err(reply) => check_error(&reply),
                    }
                }
            }
            Request::Refused { why, .. } => {
                assert_eq!(*why, Refusal::TooLarge, "only a too-large value is refused");
                assert_eq!(f.len, line_end, "a refusal consumes its line only");
                assert!(f.skip >= 2, "a refused value and its \\r\\n are discarded");
            }
            _ => {
                let swallowed = f.skip > 0;
                assert!(
                    f.len == line_end || !swallowed,
                    "frame with skip spans its line only"
                );
            }
        }
    }

    fn check_fallback(f: &Frame<Request<'_>>) {
        assert!(
            matches!(
                f.req,
                Request::Refused {
                    why: Refusal::NoMemory,
                    ..
                }
            ),
            "fallback {f:?}"
        );
    }
}

/// Checks the prefetch hint of a batch: keys of 1..=250 bytes taken from `buf`, no more than
/// fit inline in all (the decoder's `PREFETCH_LINES`: the hint never allocates).
pub fn check_batch_keys(buf: &[u8]) {
    let keys = text::batch_keys(buf);
    assert!(!keys.store.spilled() && !keys.subjects.spilled());
    assert!(keys.store.len() + keys.subjects.len() <= keys.store.inline_size());
    for k in keys.store.into_iter().chain(keys.subjects) {
        assert!(
            !k.is_empty() && k.len() <= KEY_MAX_LENGTH,
            "prefetch key {k:?}"
        );
        assert!(crate::within(buf, k), "prefetch key outside the buffer");
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Checks a parsed request's fields: keys within 250 bytes, accepted rate limits within the
/// spec's ranges, refused ones with a known error string.
pub fn check_request(req: &Request<'_>, limits: &DecodeLimits) {
    match req {
        Request::Get { keys, .. } | Request::GetBadKey { before: keys, .. } => {
            for k in keys.clone() {
                assert!(!k.is_empty() && k.len() <= KEY_MAX_LENGTH, "get key {k:?}");
            }
        }
        Request::Store {
            key, len, flags, ..
        } => {
            assert!(key.len() <= KEY_MAX_LENGTH, "store key");
            assert!(limits.fits(key.len(), *len, *flags), "stored value over -I");
        }
        Request::Delete { key, .. } | Request::Arith { key, .. } | Request::Touch { key, .. } => {
            assert!(
                !key.is_empty() && key.len() <= KEY_MAX_LENGTH,
                "key {key:?}"
            )
        }
        Request::Meta(m) => {
            assert!(m.key.len() <= KEY_MAX_LENGTH, "meta key");
            if m.cmd == MetaCmd::Set {
                assert!(limits.fits(m.key.len(), m.datalen, m.client_flags));
            }
        }
        Request::RateLimit {
            key,
            target: Target::Explicit(l),
            ..
        } => {
            assert_eq!(key, &l.key, "ratelimit key");
            check_limit(l);
        }
        Request::RateLimit {
            key,
            target: Target::Policy { name, cost },
            ..
        } => {
            check_key(key);
            assert!(
                !name.is_empty() && *cost >= 1,
                "policy {name:?} cost {cost}"
            );
        }
        Request::RateLimitAll { count, .. } => {
            assert!(
                (1..=MAX_LIMITS).contains(count),
                "ratelimit_all count {count}"
            )
        }
        Request::MetaLimit(m) => {
            assert!(!m.key.is_empty() && m.key.len() <= KEY_MAX_LENGTH, "ml key");
            check_params(&m.params, m.algorithm);
        }
        Request::LimitError { reply, .. } if *reply != Reply::Error => check_error(reply),
        _ => {}
    }
}
