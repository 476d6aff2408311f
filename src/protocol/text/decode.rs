//! Framing of the text protocol (classic, meta and rate-limit commands): finds the request at
//! the start of a connection's bytes, with its value or limit lines, and bounds what a client
//! can make the server buffer before anything is executed.

use std::borrow::Cow;

use memchr::memchr;

use super::{may_be_long_multiget, parse_command, Keys};
use crate::protocol::meta::MetaCmd;
use crate::protocol::{
    Decode, DecodeLimits, Frame, Refusal, Reply, Request, StoreKind, KEY_MAX_LENGTH,
    MAX_LINE_WITHOUT_NEWLINE, MAX_MULTIGET_LINE,
};
use crate::store::smallvec::SmallVec;

/// Decodes the request at the start of `buf`. Never panics, whatever the bytes.
///
/// - A line without `\n` waits for more, up to 2048 bytes (a `get`/`gets` line up to
///   [`MAX_MULTIGET_LINE`]); past that the connection closes, as memcached closes it.
/// - A storage command (`set`..., `ms`) is a frame once its value and the `\r\n` after it have
///   arrived; a value over the item size limit is refused at once and discarded as it arrives
///   ([`Frame::skip`]), never buffered.
/// - `ratelimit_all <n>` is a frame once its `n` limit lines have arrived.
/// - A multi-get naming a key over 250 bytes answers only `CLIENT_ERROR` (memcached discards
///   the values of that command it had gathered); it is checked here, before any key is run.
pub fn decode<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Decode<Request<'a>> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_LINE_WITHOUT_NEWLINE
            && (!may_be_long_multiget(buf) || buf.len() >= MAX_MULTIGET_LINE)
        {
            return Decode::Close;
        }
        return Decode::Incomplete {
            need: buf.len() + 1,
            fallback: None,
        };
    };
    // memcached strips a '\r' before the '\n' only when the line has more than it.
    let end = if nl > 1 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let body = nl + 1;
    match parse_command(&buf[..end]) {
        Request::Store {
            kind,
            key,
            flags,
            exptime,
            len,
            cas,
            noreply,
            ..
        } => {
            let refused = |why| Request::Refused {
                key: Cow::Borrowed(key),
                why,
                drop_existing: kind == StoreKind::Set,
                noreply,
            };
            value_frame(
                buf,
                body,
                len,
                limits.fits(key.len(), len, flags),
                refused,
                |data| Request::Store {
                    kind,
                    key,
                    flags,
                    exptime,
                    len,
                    cas,
                    noreply,
                    data,
                },
                noreply,
            )
        }
        Request::Meta(m) if m.cmd == MetaCmd::Set => {
            let len = m.datalen;
            let fits = limits.fits(m.key.len(), len, m.client_flags);
            let key = m.key.clone();
            let refused = move |why| Request::Refused {
                key: key.clone(),
                why,
                drop_existing: true,
                noreply: false,
            };
            value_frame(
                buf,
                body,
                len,
                fits,
                refused,
                |data| {
                    let mut m = m;
                    m.data = data;
                    Request::Meta(m)
                },
                false,
            )
        }
        Request::Swallow { reply, len } => Decode::Frame(Frame {
            req: Request::Reply {
                reply,
                noreply: false,
            },
            len: body,
            skip: len as u64,
        }),
        Request::RateLimitAll {
            count,
            peek,
            noreply,
            ..
        } => {
            // The limit lines follow the command line; wait until all have arrived.
            let mut pos = body;
            for _ in 0..count {
                match memchr(b'\n', &buf[pos..]) {
                    Some(i) => pos += i + 1,
                    None if buf.len() - body > count * MAX_LINE_WITHOUT_NEWLINE => {
                        return Decode::Close
                    }
                    None => {
                        return Decode::Incomplete {
                            need: buf.len() + 1,
                            fallback: None,
                        }
                    }
                }
            }
            Decode::Frame(Frame::new(
                Request::RateLimitAll {
                    count,
                    lines: &buf[body..pos],
                    peek,
                    noreply,
                },
                pos,
            ))
        }
        Request::Get { cas, touch, keys } => {
            let list = keys.rest();
            let mut walk = keys.clone();
            let req = loop {
                let at = list.len() - walk.rest().len();
                match walk.next() {
                    None => break Request::Get { cas, touch, keys },
                    Some(k) if k.len() > KEY_MAX_LENGTH => {
                        let before = Keys::new(&list[..at]);
                        break Request::GetBadKey { touch, before };
                    }
                    Some(_) => {}
                }
            };
            Decode::Frame(Frame::new(req, body))
        }
        req => Decode::Frame(Frame::new(req, body)),
    }
}

/// The frame of a storage command whose line ends at `body`: its value of `len` bytes plus
/// `\r\n` (`CLIENT_ERROR bad data chunk` if those two bytes are wrong), a refusal when the
/// item cannot fit, or `Incomplete` with the out-of-memory refusal as fallback.
fn value_frame<'a>(
    buf: &'a [u8],
    body: usize,
    len: usize,
    fits: bool,
    refused: impl Fn(Refusal) -> Request<'a>,
    stored: impl FnOnce(&'a [u8]) -> Request<'a>,
    noreply: bool,
) -> Decode<Request<'a>> {
    let refusal = |why| Frame {
        req: refused(why),
        len: body,
        skip: len as u64 + 2,
    };
    if !fits {
        return Decode::Frame(refusal(Refusal::TooLarge));
    }
    let total = body + len + 2;
    if buf.len() < total {
        return Decode::Incomplete {
            need: total,
            fallback: Some(refusal(Refusal::NoMemory)),
        };
    }
    let req = if &buf[body + len..total] == b"\r\n" {
        stored(&buf[body..body + len])
    } else {
        Request::Reply {
            reply: Reply::ClientError("bad data chunk"),
            noreply,
        }
    };
    Decode::Frame(Frame::new(req, total))
}

/// Requests of a pipelined batch whose keys are prefetched at most.
pub const PREFETCH_LINES: usize = 16;

/// The keys of a batch's first lines, by where they live.
#[derive(Debug, Default)]
pub struct BatchKeys<'a> {
    /// Keys of cache commands, for the store.
    pub store: SmallVec<[&'a [u8]; PREFETCH_LINES]>,
    /// Subjects of `ratelimit` and `ml` lines, for the limiter.
    pub subjects: SmallVec<[&'a [u8]; PREFETCH_LINES]>,
}

/// The keys of the complete lines at the start of `buf` (the second token of each of the
/// first [`PREFETCH_LINES`] lines, skipping the data line after a storage command; the first
/// token of the subject lines after `ratelimit_all <n>`), for the store and the limiter to
/// warm before the batch runs. A hint only: a wrong guess costs a wasted prefetch.
pub fn batch_keys(buf: &[u8]) -> BatchKeys<'_> {
    let mut keys = BatchKeys::default();
    let mut rest = buf;
    let mut data_next = false;
    let mut subject_lines = 0usize;
    while keys.store.len() + keys.subjects.len() < PREFETCH_LINES {
        let Some(nl) = memchr(b'\n', rest) else {
            break;
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if std::mem::take(&mut data_next) {
            continue;
        }
        let mut toks = Keys::new(line.strip_suffix(b"\r").unwrap_or(line));
        if subject_lines > 0 {
            subject_lines -= 1;
            if let Some(subject) = toks.next().filter(|s| s.len() <= KEY_MAX_LENGTH) {
                keys.subjects.push(subject);
            }
            continue;
        }
        let (Some(cmd), Some(key)) = (toks.next(), toks.next()) else {
            continue;
        };
        data_next = matches!(
            cmd,
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" | b"ms"
        );
        if key.len() > KEY_MAX_LENGTH {
            continue;
        }
        match cmd {
            // A hot subject repeated through a batch is warmed once.
            b"ratelimit" | b"ml" if keys.subjects.last() == Some(&key) => {}
            b"ratelimit" | b"ml" => keys.subjects.push(key),
            // Its second token is a count; the subjects follow on their own lines.
            b"ratelimit_all" => {
                subject_lines = std::str::from_utf8(key)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            _ => keys.store.push(key),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(input: &[u8]) -> Frame<Request<'_>> {
        match decode(input, &DecodeLimits::default()) {
            Decode::Frame(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_keys_take_second_tokens_skip_data_lines_and_sort_out_subjects() {
        let buf = b"get a\r\nset b 0 0 3\r\nget\r\nratelimit  c 10 1s\r\nmg d v\r\nml g 5 1s\r\n\
                    ratelimit_all 1\r\nh 5 1s\r\nincr e 1\r\npartial f";
        let keys = batch_keys(buf);
        // "get" right after the set is its data line; "partial f" has no newline yet.
        assert_eq!(keys.store.to_vec(), vec![&b"a"[..], b"b", b"d", b"e"]);
        assert_eq!(keys.subjects.to_vec(), vec![&b"c"[..], b"g", b"h"]);
        let many: Vec<u8> = (0..40)
            .flat_map(|i| format!("get k{i}\r\n").into_bytes())
            .collect();
        assert_eq!(batch_keys(&many).store.len(), PREFETCH_LINES);
        let long = format!("get {}\r\nget x\r\n", "k".repeat(251));
        assert_eq!(batch_keys(long.as_bytes()).store.to_vec(), vec![&b"x"[..]]);
    }

    #[test]
    fn storage_frames_carry_their_value() {
        let f = frame(b"set k 1 0 3\r\nabc\r\nget k\r\n");
        assert_eq!(f.len, 18);
        assert!(matches!(
            f.req,
            Request::Store {
                data: b"abc",
                flags: 1,
                ..
            }
        ));
        let input = b"set k 0 0 3\r\nabc\r\n";
        for cut in 0..input.len() {
            match decode(&input[..cut], &DecodeLimits::default()) {
                Decode::Incomplete { need, fallback } => {
                    assert!(need > cut, "cut {cut}");
                    // Past the line, the fallback refuses for lack of memory.
                    assert_eq!(fallback.is_some(), cut >= 13, "cut {cut}");
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let f = frame(b"set k 0 0 3\r\nabcde\r\n");
        assert_eq!(f.len, 18, "the line and 3+2 bytes go, as in memcached");
        assert!(matches!(
            f.req,
            Request::Reply {
                reply: Reply::ClientError("bad data chunk"),
                ..
            }
        ));
    }

    #[test]
    fn values_too_large_are_refused_before_they_arrive() {
        let limits = DecodeLimits {
            item_size_max: 1024,
            ..DecodeLimits::default()
        };
        let Decode::Frame(f) = decode(b"set k 0 0 2000\r\nxx", &limits) else {
            panic!()
        };
        assert_eq!((f.len, f.skip), (16, 2002));
        assert!(matches!(
            f.req,
            Request::Refused {
                why: Refusal::TooLarge,
                drop_existing: true,
                ..
            }
        ));
        let Decode::Frame(f) = decode(b"ms k 2000 T0\r\n", &limits) else {
            panic!()
        };
        assert_eq!(f.skip, 2002);
        // An error after an ms length swallows the value too.
        let f = frame(b"ms k 5 !\r\nhello\r\n");
        assert_eq!((f.len, f.skip), (10, 7));
    }

    #[test]
    fn lines_are_bounded() {
        let limits = DecodeLimits::default();
        assert_eq!(decode(&[b'x'; 3000], &limits), Decode::Close);
        let mut get = b"get ".to_vec();
        get.extend(std::iter::repeat_n(b'k', 3000));
        assert!(matches!(
            decode(&get, &limits),
            Decode::Incomplete { need: 3005, .. }
        ));
        get.resize(MAX_MULTIGET_LINE, b'k');
        assert_eq!(decode(&get, &limits), Decode::Close);
    }

    #[test]
    fn ratelimit_all_waits_for_its_lines() {
        let input = b"ratelimit_all 2\r\nu 1 1s\r\nv 2 1m\r\nget x\r\n";
        let f = frame(input);
        assert_eq!(f.len, input.len() - 7);
        assert!(matches!(
            f.req,
            Request::RateLimitAll {
                count: 2,
                lines: b"u 1 1s\r\nv 2 1m\r\n",
                ..
            }
        ));
        assert!(matches!(
            decode(&input[..30], &DecodeLimits::default()),
            Decode::Incomplete {
                need: 31,
                fallback: None
            }
        ));
    }

    #[test]
    fn a_long_key_fails_the_multiget_after_the_keys_before_it() {
        let line = format!("gat 9 a  c {} b\r\n", "k".repeat(251));
        let f = frame(line.as_bytes());
        let Request::GetBadKey { touch, before } = f.req else {
            panic!("{:?}", f.req)
        };
        assert_eq!(touch, Some(9));
        assert_eq!(before.collect::<Vec<_>>(), vec![&b"a"[..], b"c"]);
        let line = format!("get {}\r\n", "k".repeat(251));
        let Request::GetBadKey {
            touch: None,
            before,
        } = frame(line.as_bytes()).req
        else {
            panic!()
        };
        assert_eq!(before.count(), 0);
    }
}
