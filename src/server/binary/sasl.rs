//! SASL PLAIN over the binary protocol (`-S`): the credentials come with the start, or (after
//! an empty start answered "continue") with one step, and are checked against the
//! `user:password` lines of the file named by `MEMCACHED_SASL_PWDB`, as memcached's own SASL
//! database does.

use bytes::BytesMut;

use crate::protocol::binary::{status, write_error, write_response, Header};
use crate::server::Context;
use crate::stats::ServerStats;

/// A connection's SASL progress.
#[derive(Debug, Default)]
pub struct Sasl {
    /// Authenticated (only consulted with `-S`).
    pub authenticated: bool,
    /// A PLAIN exchange waits for its step.
    started: bool,
}

impl Sasl {
    /// A PLAIN exchange was started (an empty start answered "continue") and waits for its
    /// step.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Answers `SASL list mechanisms`.
    pub fn list_mechs(out: &mut BytesMut, h: &Header) {
        write_response(out, h, status::SUCCESS, 0, &[], &[], b"PLAIN");
    }

    /// Runs a SASL auth (`step` false) or step request with its data.
    pub fn auth(
        &mut self,
        ctx: &Context,
        h: &Header,
        mech: &[u8],
        step: bool,
        data: &[u8],
        out: &mut BytesMut,
    ) {
        let plain = mech == b"PLAIN";
        if !step && plain && data.is_empty() {
            self.started = true;
            write_response(out, h, status::AUTH_CONTINUE, 0, &[], &[], &[]);
            return;
        }
        let ok = if step {
            std::mem::take(&mut self.started) && plain && plain_auth_ok(data)
        } else {
            self.started = false;
            plain && plain_auth_ok(data)
        };
        ServerStats::add(&ctx.stats.auth_cmds, 1);
        if ok {
            self.authenticated = true;
            write_response(out, h, status::SUCCESS, 0, &[], &[], b"Authenticated");
        } else {
            ServerStats::add(&ctx.stats.auth_errors, 1);
            write_error(out, h, status::AUTH_ERROR);
        }
    }
}

/// Checks a PLAIN message (`authzid NUL authcid NUL password`) against the password file named
/// by `MEMCACHED_SASL_PWDB` (lines `user:password`).
fn plain_auth_ok(data: &[u8]) -> bool {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(_authz), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(path) = std::env::var_os("MEMCACHED_SASL_PWDB") else {
        return false;
    };
    let Ok(db) = std::fs::read(path) else {
        return false;
    };
    db.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.iter().position(|&b| b == b':') {
            Some(i) => &line[..i] == user && &line[i + 1..] == pass,
            None => false,
        }
    })
}
