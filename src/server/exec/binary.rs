//! The binary protocol's [`Responder`]: memcached's response packets (status, extras, key,
//! body), its quiet rules (a quiet command answers only its errors; a quiet get only its
//! hits) and the per-opcode status of each outcome.

use super::{Refused, Responder};
use crate::protocol::binary::{
    ratelimit_extras, status, write_error, write_error_msg, write_item_header, write_response,
    Header, StoreOp,
};
use crate::ratelimit::{ApplyError, Decision};
use crate::server::decision::READ_ONLY_STATUS;
use crate::server::output::Output;
use crate::store::{ArithOutcome, DeleteOutcome, ItemRef, StoreOutcome};

/// What kind of request is being answered: the statuses of an outcome depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// GET/GAT and their quiet and key-returning forms.
    Get {
        /// GETK, GETKQ, GATK, GATKQ: the key is echoed.
        with_key: bool,
    },
    /// TOUCH: flags and cas, no value.
    Touch,
    /// A storage opcode; `cas` when the request carried one (set/add/replace become a cas).
    Store {
        /// Which opcode.
        op: StoreOp,
        /// The request's cas was non-zero.
        cas: bool,
    },
    /// A storage opcode refused before its value was read.
    Refused,
    /// Any other opcode (delete, incr/decr, rate limit).
    Other,
}

/// Replies of one binary request.
#[derive(Debug, Clone, Copy)]
pub struct BinaryReply<'h> {
    /// The request's header (opcode, opaque echoed).
    pub h: &'h Header,
    /// A quiet opcode.
    pub quiet: bool,
    /// The request's kind.
    pub shape: Shape,
}

impl BinaryReply<'_> {
    /// A success (unless quiet) with `value` as body, or the error `st`.
    fn success_or_error(&self, out: &mut Output, st: u16, cas: u64, value: &[u8]) {
        if st != status::SUCCESS {
            write_error(out, self.h, st);
        } else if !self.quiet {
            write_response(out, self.h, status::SUCCESS, cas, &[], &[], value);
        }
    }

    fn with_key<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        match self.shape {
            Shape::Get { with_key: true } => key,
            _ => &[],
        }
    }
}

impl Responder for BinaryReply<'_> {
    fn item(&mut self, out: &mut Output, key: &[u8], it: &ItemRef<'_>) {
        if self.shape == Shape::Touch {
            let flags = it.flags.to_be_bytes();
            return write_response(out, self.h, status::SUCCESS, it.cas, &flags, &[], &[]);
        }
        write_item_header(
            out,
            self.h,
            it.cas,
            it.flags,
            self.with_key(key),
            it.value.len(),
        );
        out.put_value(it);
    }

    fn verdict(&mut self, out: &mut Output, key: &[u8], line: &[u8]) {
        write_item_header(out, self.h, 0, 0, self.with_key(key), line.len());
        bytes::BufMut::put_slice(&mut **out, line);
    }

    fn miss(&mut self, out: &mut Output, key: &[u8]) {
        match self.shape {
            Shape::Get { .. } if self.quiet => {}
            Shape::Get { with_key: true } => {
                write_response(out, self.h, status::KEY_ENOENT, 0, &[], key, &[])
            }
            _ => write_error(out, self.h, status::KEY_ENOENT),
        }
    }

    fn stored(&mut self, out: &mut Output, outcome: StoreOutcome, cas: u64) {
        let h = self.h;
        let (op, cas_mode) = match self.shape {
            Shape::Store { op, cas } => (op, cas),
            _ => {
                // Refused before its value: too large, or no memory to receive it.
                return match outcome {
                    StoreOutcome::NoMemory => {
                        write_error_msg(out, h, status::ENOMEM, "Out of memory allocating item")
                    }
                    _ => write_error(out, h, status::E2BIG),
                };
            }
        };
        let concat = matches!(op, StoreOp::Append | StoreOp::Prepend);
        let st = match outcome {
            StoreOutcome::Stored => return self.success_or_error(out, status::SUCCESS, cas, &[]),
            StoreOutcome::Exists => status::KEY_EEXISTS,
            StoreOutcome::NotFound => status::KEY_ENOENT,
            // memcached fails the allocation before reading the value.
            StoreOutcome::NoMemory if !concat => {
                return write_error_msg(out, h, status::ENOMEM, "Out of memory allocating item")
            }
            StoreOutcome::NotStored | StoreOutcome::TooLarge | StoreOutcome::NoMemory => match op {
                _ if cas_mode && !concat => status::NOT_STORED,
                StoreOp::Add => status::KEY_EEXISTS,
                StoreOp::Replace => status::KEY_ENOENT,
                _ => status::NOT_STORED,
            },
        };
        write_error(out, h, st);
    }

    fn deleted(&mut self, out: &mut Output, outcome: DeleteOutcome) {
        let st = match outcome {
            DeleteOutcome::Deleted => status::SUCCESS,
            DeleteOutcome::NotFound => status::KEY_ENOENT,
            DeleteOutcome::Exists => status::KEY_EEXISTS,
        };
        self.success_or_error(out, st, 0, &[]);
    }

    fn arith(&mut self, out: &mut Output, outcome: ArithOutcome) {
        let h = self.h;
        match outcome {
            ArithOutcome::Value { value, cas } => {
                self.success_or_error(out, status::SUCCESS, cas, &value.to_be_bytes())
            }
            ArithOutcome::NotFound => write_error(out, h, status::KEY_ENOENT),
            ArithOutcome::Exists => write_error(out, h, status::KEY_EEXISTS),
            ArithOutcome::NonNumeric => write_error(out, h, status::DELTA_BADVAL),
            ArithOutcome::NoMemory => {
                write_error_msg(out, h, status::ENOMEM, "Out of memory allocating new item")
            }
        }
    }

    fn touched(&mut self, out: &mut Output, found: bool) {
        let st = if found {
            status::SUCCESS
        } else {
            status::KEY_ENOENT
        };
        self.success_or_error(out, st, 0, &[]);
    }

    fn decision(&mut self, out: &mut Output, decided: Result<&Decision, ApplyError>) {
        let h = self.h;
        match decided {
            Ok(d) if self.quiet && d.allowed => {}
            Ok(d) => {
                let st = if d.allowed {
                    status::SUCCESS
                } else {
                    status::NOT_STORED
                };
                write_response(out, h, st, 0, &ratelimit_extras(d), &[], &[]);
            }
            Err(ApplyError::Incompatible) => {
                write_error_msg(out, h, status::DELTA_BADVAL, "key holds incompatible value")
            }
            Err(ApplyError::NoMemory) => write_error(out, h, status::ENOMEM),
        }
    }

    fn refused(&mut self, out: &mut Output, why: Refused) {
        let (st, msg) = match why {
            Refused::ReadOnly => READ_ONLY_STATUS,
            Refused::Decision(e) => e.status(),
        };
        write_error_msg(out, self.h, st, msg);
    }
}
