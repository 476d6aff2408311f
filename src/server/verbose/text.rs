//! The `-vv` lines of the text protocol, as memcached 1.6.18 prints them: every command line
//! as read (`<24 set a 0 0 1`), then what `out_string` sends (`>24 STORED`, or
//! `>24 NOREPLY STORED` under `noreply`); for `get`/`gets`/`gat`/`gats` one
//! `>24 sending key a` per hit and `>24 END`; for meta commands and report-style replies (stats,
//! dumps) only the error lines, `MN`, and `EN` of `me`. ratecached's `ratelimit` and
//! `ratelimit_all` log their reply lines as `out_string` would; `ml` logs as a meta command.

use super::{show, ConnLog, Reader};
use crate::protocol::{Request, StatsKind, StoreKind};

/// Which reply lines memcached logs for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    /// Every line (`out_string`).
    Lines,
    /// `sending key <key>` per value, then `END` (the get family).
    Values,
    /// `END`, then the error (a get with a key over 250 bytes).
    BadKey,
    /// Only error lines (meta commands, stats reports): values are skipped unread.
    Errors,
    /// `EN` and error lines (`me`).
    Debug,
    /// Everything but the dumped items and their `END` (`lru_crawler metadump`).
    Dump,
}

/// What the log needs to know of a request before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Which reply lines are logged.
    pub replies: Replies,
    /// The request sets the verbosity (its reply is logged at the new level).
    pub verbosity: bool,
    /// `cache_memlimit <megabytes>`: `-v` logs the new limit when it is accepted.
    pub memlimit: Option<u32>,
}

impl Shape {
    /// Every reply line logged.
    pub const LINES: Shape = Shape {
        replies: Replies::Lines,
        verbosity: false,
        memlimit: None,
    };
}

/// How `req`'s replies are logged.
pub fn shape(req: &Request<'_>) -> Shape {
    let replies = match req {
        Request::Get { .. } => Replies::Values,
        Request::GetBadKey { .. } => Replies::BadKey,
        Request::Meta(_) | Request::MetaLimit(_) => Replies::Errors,
        Request::MetaDebug { .. } => Replies::Debug,
        Request::MetaDump { .. } => Replies::Dump,
        Request::Stats(StatsKind::Reset | StatsKind::DetailOn | StatsKind::DetailOff) => {
            Replies::Lines
        }
        Request::Stats(_) => Replies::Errors,
        _ => Replies::Lines,
    };
    Shape {
        replies,
        verbosity: matches!(req, Request::Verbosity { .. }),
        memlimit: match req {
            Request::CacheMemlimit { megabytes, .. } => Some(*megabytes),
            _ => None,
        },
    }
}

/// The key and cas unique of a `cas` command.
pub fn cas_of<'a>(req: &Request<'a>) -> Option<(&'a [u8], u64)> {
    match req {
        Request::Store {
            kind: StoreKind::Cas,
            key,
            cas,
            ..
        } => Some((key, *cas)),
        _ => None,
    }
}

/// True when the first reply line in `written` is `line`.
pub fn first_line_is(written: Vec<&[u8]>, line: &[u8]) -> bool {
    Reader::new(written).line().as_deref() == Some(line)
}

/// Clears `req`'s `noreply` and says whether it was set: the request then writes the reply
/// memcached would have suppressed, which the log shows as `NOREPLY` and the session drops.
pub fn take_noreply(req: &mut Request<'_>) -> bool {
    let flag = match req {
        Request::Store { noreply, .. }
        | Request::Refused { noreply, .. }
        | Request::Delete { noreply, .. }
        | Request::Arith { noreply, .. }
        | Request::Touch { noreply, .. }
        | Request::FlushAll { noreply, .. }
        | Request::Verbosity { noreply, .. }
        | Request::CacheMemlimit { noreply, .. }
        | Request::Reply { noreply, .. }
        | Request::RateLimit { noreply, .. }
        | Request::RateLimitAll { noreply, .. }
        | Request::LimitError { noreply, .. } => noreply,
        _ => return false,
    };
    std::mem::take(flag)
}

/// The command line at the start of `buf` as memcached prints it: up to the `\n`, without
/// the `\r` before it (unless the line is that `\r` alone), up to a NUL.
pub fn command_line(buf: &[u8]) -> Option<&[u8]> {
    let nl = memchr::memchr(b'\n', buf)?;
    let end = if nl > 1 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let line = &buf[..end];
    Some(memchr::memchr(0, line).map_or(line, |z| &line[..z]))
}

/// `-vv`: `<fd <command line>`.
pub fn request(log: ConnLog, buf: &[u8]) {
    if log.level() >= 2 {
        if let Some(line) = command_line(buf) {
            log.line(2, format_args!("<{} {}", log.fd(), show(line)));
        }
    }
}

fn is_error(line: &[u8]) -> bool {
    line.starts_with(b"ERROR")
        || line.starts_with(b"CLIENT_ERROR")
        || line.starts_with(b"SERVER_ERROR")
}

/// The length of the value after a `VALUE <key> <flags> <bytes>` or `VA <bytes>` line.
fn value_len(line: &[u8], field: usize) -> Option<usize> {
    let token = line.split(|&b| b == b' ').nth(field)?;
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// Logs the replies a request wrote (`written`, from [`crate::server::output::Output::since`])
/// as memcached does; `noreply`: they were not sent.
pub fn replies(log: ConnLog, shape: &Shape, noreply: bool, written: Vec<&[u8]>) {
    let fd = log.fd();
    let mut r = Reader::new(written);
    if let Some(mb) = shape.memlimit {
        if log.level() >= 1 && r.line().as_deref() == Some(b"OK") {
            log.line(1, format_args!("maxbytes adjusted to {mb}m"));
        }
        r.rewind();
    }
    if log.level() < 2 {
        return;
    }
    let sent = |line: &[u8]| {
        let tag = if noreply { "NOREPLY " } else { "" };
        log.line(2, format_args!(">{fd} {tag}{}", show(line)));
    };
    if shape.replies == Replies::BadKey {
        log.line(2, format_args!(">{fd} END"));
    }
    while let Some(line) = r.line() {
        match shape.replies {
            Replies::Lines | Replies::BadKey => sent(&line),
            Replies::Values => {
                if let Some(rest) = line.strip_prefix(b"VALUE ") {
                    let key = rest.split(|&b| b == b' ').next().unwrap_or_default();
                    log.line(2, format_args!(">{fd} sending key {}", show(key)));
                    r.skip(value_len(&line, 3).unwrap_or(0) + 2);
                } else {
                    sent(&line);
                }
            }
            Replies::Errors | Replies::Debug => {
                if line.starts_with(b"VA ") {
                    r.skip(value_len(&line, 1).unwrap_or(0) + 2);
                } else if is_error(&line) || (shape.replies == Replies::Debug && line == b"EN") {
                    sent(&line);
                }
            }
            Replies::Dump => {
                if !line.starts_with(b"key=") && line != b"END" {
                    sent(&line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_cut_as_memcached_cuts_them() {
        assert_eq!(command_line(b"get a\r\nget b\r\n"), Some(&b"get a"[..]));
        assert_eq!(command_line(b"get a\n"), Some(&b"get a"[..]));
        assert_eq!(command_line(b"\r\n"), Some(&b"\r"[..]));
        assert_eq!(command_line(b"\n"), Some(&b""[..]));
        assert_eq!(command_line(b"ge\0t a\r\n"), Some(&b"ge"[..]));
        assert_eq!(command_line(b"get a"), None);
    }

    #[test]
    fn noreply_is_taken_from_the_requests_that_have_it() {
        let mut r = Request::Delete {
            key: b"k",
            noreply: true,
        };
        assert!(take_noreply(&mut r));
        assert_eq!(
            r,
            Request::Delete {
                key: b"k",
                noreply: false
            }
        );
        assert!(!take_noreply(&mut r));
        assert!(!take_noreply(&mut Request::Version));
    }

    #[test]
    fn value_lengths_are_read_from_headers() {
        assert_eq!(value_len(b"VALUE k 0 12 99", 3), Some(12));
        assert_eq!(value_len(b"VA 3 t", 1), Some(3));
        assert_eq!(value_len(b"VA", 1), None);
    }
}
