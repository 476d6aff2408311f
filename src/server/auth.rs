//! memcached's ASCII authentication (`-Y FILE`): until a connection authenticates, its first
//! request must be `set <any> <any> <any> <n>` whose `n`-byte value is `user pass`, checked
//! against a file of `user:pass` lines.

use std::path::Path;

use super::conn::Step;
use super::output::Output;
use super::Context;
use crate::protocol::text::{auth_set_length, split_auth_token, write_reply};
use crate::protocol::{Reply, MAX_LINE_WITHOUT_NEWLINE};
use crate::stats::ServerStats;

/// The users and passwords of an auth file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFile {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl AuthFile {
    /// Parses `user:pass` lines (blank lines ignored; the password may contain `:`).
    pub fn parse(text: &[u8]) -> AuthFile {
        let entries = text
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter_map(|l| {
                let colon = l.iter().position(|&b| b == b':')?;
                Some((l[..colon].to_vec(), l[colon + 1..].to_vec()))
            })
            .collect();
        AuthFile { entries }
    }

    /// Reads a file, failing with memcached's message.
    pub fn load(path: &Path) -> Result<AuthFile, String> {
        std::fs::read(path)
            .map(|t| AuthFile::parse(&t))
            .map_err(|e| {
                format!(
                    "Could not open authfile [{}] for reading, error {e}",
                    path.display()
                )
            })
    }

    /// True if `user` / `pass` is listed.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        self.entries.iter().any(|(u, p)| u == user && p == pass)
    }
}

/// Longest authenticating request (line, token and `\r\n`) a connection may send: what
/// memcached's 16 KiB read buffer holds. Longer ones close the connection, as in memcached.
const MAX_AUTH_FRAME: usize = crate::protocol::SMALL_FRAME;

/// Per-connection authentication progress.
#[derive(Debug, Default)]
pub struct AuthState {
    /// Authenticated: requests go to the normal session.
    pub done: bool,
}

impl AuthState {
    /// Runs the authentication request at the start of `buf` (only `set <k> <f> <e> <n>`
    /// with an `n`-byte `user pass` value counts; anything else answers
    /// `CLIENT_ERROR unauthenticated`). Sets `done` once a token is accepted.
    pub fn step(&mut self, ctx: &Context, file: &AuthFile, buf: &[u8], out: &mut Output) -> Step {
        let Some(nl) = memchr::memchr(b'\n', buf) else {
            return if buf.len() > MAX_LINE_WITHOUT_NEWLINE {
                Step::Close
            } else {
                Step::Incomplete {
                    need: buf.len() + 1,
                    value: false,
                }
            };
        };
        let Some(size) = auth_set_length(&buf[..nl]) else {
            write_reply(out, Reply::ClientError("unauthenticated"));
            return Step::Done {
                len: nl + 1,
                skip: 0,
            };
        };
        let total = nl + 1 + size as usize + 2;
        if total > MAX_AUTH_FRAME {
            return Step::Close;
        }
        if buf.len() < total {
            return Step::Incomplete {
                need: total,
                value: true,
            };
        }
        let done = Step::Done {
            len: total,
            skip: 0,
        };
        let data = &buf[nl + 1..total];
        if !data.ends_with(b"\r\n") {
            write_reply(out, Reply::ClientError("bad command line termination"));
            return done;
        }
        ServerStats::add(&ctx.stats.auth_cmds, 1);
        match split_auth_token(&data[..data.len() - 2]) {
            None => write_reply(out, Reply::ClientError("bad authentication token format")),
            Some((user, pass)) if file.check(user, pass) => {
                write_reply(out, Reply::Stored);
                self.done = true;
            }
            Some(_) => {
                ServerStats::add(&ctx.stats.auth_errors, 1);
                write_reply(out, Reply::ClientError("authentication failure"));
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::conn::{Driver, Stop};
    use crate::server::text::TextSession;

    #[test]
    fn authenticates_then_hands_over() {
        let mut ctx = Context::for_tests(Config::default());
        let file = AuthFile::parse(b"user1:pass1\nuser2:pa:ss\n\n");
        assert!(file.check(b"user2", b"pa:ss"));
        ctx.auth = Some(file);
        let mut d = Driver::new(TextSession::new(&ctx));
        let (out, stop) = d.feed_all(b"get x\r\nset a 0 0 11\r\nuser1 wrong\r\nset a 0 0 5\r\nuser1\r\nset a 0 0 11\r\nuser1 pa");
        assert_eq!(stop, Stop::Read);
        assert_eq!(
            &out[..],
            &b"CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR authentication failure\r\nCLIENT_ERROR bad authentication token format\r\n"[..]
        );
        let (out, _) = d.feed_all(b"ss1\r\nset k 0 0 1\r\nv\r\nget k\r\n");
        assert_eq!(
            &out[..],
            &b"STORED\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"[..]
        );
    }

    #[test]
    fn long_unauthenticated_requests_close() {
        let mut ctx = Context::for_tests(Config::default());
        ctx.auth = Some(AuthFile::parse(b"u:p\n"));
        let mut d = Driver::new(TextSession::new(&ctx));
        assert_eq!(d.feed(&[b'x'; 3000]), Stop::Close);
        // A token memcached's read buffer could not hold closes before it is buffered.
        let mut d = Driver::new(TextSession::new(&ctx));
        assert_eq!(d.feed(b"set a 0 0 300000000\r\n"), Stop::Close);
        let mut d = Driver::new(TextSession::new(&ctx));
        assert_eq!(d.feed(b"set a 0 0 16000\r\n"), Stop::Read);
    }
}
