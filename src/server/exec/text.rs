//! The text protocol's [`Responder`]: memcached's reply lines (`VALUE ... END` blocks are
//! opened and closed by the session, which owns the key list), `noreply` honoured.

use bytes::BufMut;

use super::{Refused, Responder};
use crate::protocol::limits::write_decision;
use crate::protocol::text::{write_number, write_reply, write_value_header};
use crate::protocol::Reply;
use crate::ratelimit::{ApplyError, Decision};
use crate::server::decision::READ_ONLY;
use crate::server::output::Output;
use crate::store::{ArithOutcome, DeleteOutcome, ItemRef, StoreOutcome};

/// Replies of one text command.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextReply {
    /// `gets`/`gats`: values carry their cas unique.
    pub cas: bool,
    /// Suppress the reply (memcached suppresses even errors once `noreply` was seen).
    pub noreply: bool,
}

impl TextReply {
    /// Replies of a command with this `noreply`.
    pub fn new(noreply: bool) -> TextReply {
        TextReply {
            cas: false,
            noreply,
        }
    }

    fn line(&self, out: &mut Output, r: Reply) {
        if !self.noreply {
            write_reply(out, r);
        }
    }
}

/// The text reply of a rate-limit request that could not be decided.
pub fn apply_error_reply(e: ApplyError) -> Reply {
    match e {
        ApplyError::Incompatible => Reply::ClientError("key holds incompatible value"),
        ApplyError::NoMemory => Reply::ServerError("out of memory storing object"),
    }
}

impl Responder for TextReply {
    fn item(&mut self, out: &mut Output, _key: &[u8], it: &ItemRef<'_>) {
        write_value_header(
            out,
            it.key,
            it.flags,
            it.value.len(),
            self.cas.then_some(it.cas),
        );
        out.put_value(it);
        out.put_slice(b"\r\n");
    }

    fn verdict(&mut self, out: &mut Output, key: &[u8], line: &[u8]) {
        write_value_header(out, key, 0, line.len(), self.cas.then_some(0));
        out.put_slice(line);
        out.put_slice(b"\r\n");
    }

    fn miss(&mut self, _out: &mut Output, _key: &[u8]) {}

    fn stored(&mut self, out: &mut Output, outcome: StoreOutcome, _cas: u64) {
        let r = match outcome {
            StoreOutcome::Stored => Reply::Stored,
            StoreOutcome::NotStored => Reply::NotStored,
            StoreOutcome::Exists => Reply::Exists,
            StoreOutcome::NotFound => Reply::NotFound,
            StoreOutcome::TooLarge => Reply::ServerError("object too large for cache"),
            StoreOutcome::NoMemory => Reply::ServerError("out of memory storing object"),
        };
        self.line(out, r);
    }

    fn deleted(&mut self, out: &mut Output, outcome: DeleteOutcome) {
        let r = match outcome {
            DeleteOutcome::Deleted => Reply::Deleted,
            DeleteOutcome::NotFound => Reply::NotFound,
            DeleteOutcome::Exists => Reply::Exists,
        };
        self.line(out, r);
    }

    fn arith(&mut self, out: &mut Output, outcome: ArithOutcome) {
        let r = match outcome {
            ArithOutcome::Value { value, .. } => {
                if !self.noreply {
                    write_number(out, value);
                }
                return;
            }
            ArithOutcome::NotFound => Reply::NotFound,
            ArithOutcome::Exists => Reply::Exists,
            ArithOutcome::NonNumeric => {
                Reply::ClientError("cannot increment or decrement non-numeric value")
            }
            ArithOutcome::NoMemory => Reply::ServerError("out of memory storing object"),
        };
        self.line(out, r);
    }

    fn touched(&mut self, out: &mut Output, found: bool) {
        self.line(
            out,
            if found {
                Reply::Touched
            } else {
                Reply::NotFound
            },
        );
    }

    fn decision(&mut self, out: &mut Output, decided: Result<&Decision, ApplyError>) {
        match decided {
            Ok(d) if !self.noreply => write_decision(out, d),
            Ok(_) => {}
            Err(e) => self.line(out, apply_error_reply(e)),
        }
    }

    fn refused(&mut self, out: &mut Output, why: Refused) {
        match why {
            Refused::ReadOnly => self.line(out, READ_ONLY),
            Refused::Decision(e) => self.line(out, e.reply()),
        }
    }
}
