//! memcached's ASCII authentication (`-Y FILE`): until a connection authenticates, its first
//! request must be `set <any> <any> <any> <n>` whose `n`-byte value is `user pass`, checked
//! against a file of `user:pass` lines.

use std::path::Path;

use bytes::{Buf, BytesMut};

use super::dispatch::Flow;
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

/// Per-connection authentication progress.
#[derive(Debug, Default)]
pub struct AuthState {
    /// Authenticated: requests go to the normal session.
    pub done: bool,
    /// Value bytes (with `\r\n`) of the pending `set` carrying the token.
    pending: Option<usize>,
}

impl AuthState {
    /// Consumes authentication requests from `rbuf`; returns once authenticated (with `done`
    /// set and the rest of the buffer left for the session), when more bytes are needed, or
    /// when the connection must close.
    pub fn process(
        &mut self,
        ctx: &Context,
        file: &AuthFile,
        rbuf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Flow {
        while !self.done {
            let need = match self.pending {
                Some(n) => n,
                None => {
                    let Some(nl) = memchr::memchr(b'\n', rbuf) else {
                        return if rbuf.len() > MAX_LINE_WITHOUT_NEWLINE {
                            Flow::Close
                        } else {
                            Flow::Continue
                        };
                    };
                    let len = auth_set_length(&rbuf[..nl]);
                    rbuf.advance(nl + 1);
                    match len {
                        Some(n) => n as usize + 2,
                        None => {
                            write_reply(out, Reply::ClientError("unauthenticated"));
                            continue;
                        }
                    }
                }
            };
            if rbuf.len() < need {
                self.pending = Some(need);
                return Flow::Continue;
            }
            self.pending = None;
            let data = rbuf.split_to(need);
            if !data.ends_with(b"\r\n") {
                write_reply(out, Reply::ClientError("bad command line termination"));
                continue;
            }
            ServerStats::add(&ctx.stats.auth_cmds, 1);
            match split_auth_token(&data[..need - 2]) {
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
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn authenticates_then_hands_over() {
        let ctx = Context::for_tests(Config::default());
        let file = AuthFile::parse(b"user1:pass1\nuser2:pa:ss\n\n");
        assert!(file.check(b"user2", b"pa:ss"));
        let mut st = AuthState::default();
        let mut out = BytesMut::new();
        let mut rbuf = BytesMut::from(&b"get x\r\nset a 0 0 11\r\nuser1 wrong\r\nset a 0 0 5\r\nuser1\r\nset a 0 0 11\r\nuser1 pa"[..]);
        assert_eq!(st.process(&ctx, &file, &mut rbuf, &mut out), Flow::Continue);
        assert!(!st.done);
        rbuf.extend_from_slice(b"ss1\r\nget a\r\n");
        st.process(&ctx, &file, &mut rbuf, &mut out);
        assert!(st.done);
        assert_eq!(&rbuf[..], b"get a\r\n");
        assert_eq!(
            &out[..],
            &b"CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR authentication failure\r\nCLIENT_ERROR bad authentication token format\r\nSTORED\r\n"[..]
        );
        let mut st = AuthState::default();
        let mut long = BytesMut::from(&[b'x'; 3000][..]);
        assert_eq!(st.process(&ctx, &file, &mut long, &mut out), Flow::Close);
    }
}
