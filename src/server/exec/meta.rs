//! The meta protocol's [`Responder`]: status codes (`HD NS EX NF EN VA`), the returned flags
//! in request order, `q` hiding the uninteresting answer. `mg` and `ma` of items lend the
//! item itself to their reply and run in [`crate::server::meta`]; everything else of meta
//! (ms, md, and every command on a decision key) is answered here.

use bytes::{BufMut, BytesMut};

use super::text::apply_error_reply;
use super::{Refused, Responder};
use crate::protocol::meta::{put_echoes, put_hit_head, put_key, MetaRequest};
use crate::protocol::text::write_reply;
use crate::protocol::Reply;
use crate::ratelimit::{ApplyError, Decision};
use crate::server::decision::READ_ONLY;
use crate::server::output::Output;
use crate::store::{ArithOutcome, DeleteOutcome, ItemRef, StoreOutcome};

/// Appends ` <flag><n>`.
pub fn num(out: &mut BytesMut, flag: u8, n: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.put_u8(b' ');
    out.put_u8(flag);
    out.put_slice(b.format(n).as_bytes());
}

/// Appends ` t<ttl>`: -1 for never; memcached prints an expiry already past as an unsigned
/// 32-bit difference.
pub fn ttl(out: &mut BytesMut, ttl: Option<i64>) {
    match ttl {
        None => out.put_slice(b" t-1"),
        Some(t) => num(out, b't', t as u32),
    }
}

/// Replies of one meta command.
pub struct MetaReply<'r, 'a> {
    /// The request (its flags decide what the reply returns).
    pub req: &'r MetaRequest<'a>,
}

impl MetaReply<'_, '_> {
    /// `code`, the `O` and `k` echoes, `\r\n`; nothing for a `q` request when `quiet_ok`.
    fn status(&self, out: &mut Output, code: &[u8], quiet_ok: bool) {
        if quiet_ok && self.req.quiet {
            return;
        }
        out.put_slice(code);
        put_echoes(out, self.req);
        out.put_slice(b"\r\n");
    }

    /// The line of an `mg` hit without item metadata (no ttl, last access or fetch marks):
    /// `VA <len>` or `HD`, then the returned flags in request order.
    fn hit(&self, out: &mut Output, len: usize, flags: u32, cas: u64) {
        let req = self.req;
        put_hit_head(out, req.value, len);
        for tok in &req.tokens {
            match tok[0] {
                b's' => num(out, b's', len),
                b't' => ttl(out, None),
                b'c' => num(out, b'c', cas),
                b'f' => num(out, b'f', flags),
                b'l' | b'h' => num(out, tok[0], 0),
                b'O' => {
                    out.put_u8(b' ');
                    out.put_slice(tok);
                }
                b'k' => put_key(out, &req.key, req.base64),
                _ => {}
            }
        }
        out.put_slice(b"\r\n");
    }
}

impl Responder for MetaReply<'_, '_> {
    fn item(&mut self, out: &mut Output, _key: &[u8], it: &ItemRef<'_>) {
        self.hit(out, it.value.len(), it.flags, it.cas);
        if self.req.value {
            out.put_value(it);
            out.put_slice(b"\r\n");
        }
    }

    fn verdict(&mut self, out: &mut Output, _key: &[u8], line: &[u8]) {
        self.hit(out, line.len(), 0, 0);
        if self.req.value {
            out.put_slice(line);
            out.put_slice(b"\r\n");
        }
    }

    fn miss(&mut self, out: &mut Output, _key: &[u8]) {
        self.status(out, b"EN", true);
    }

    fn stored(&mut self, out: &mut Output, outcome: StoreOutcome, cas: u64) {
        let code: &[u8] = match outcome {
            StoreOutcome::Stored if self.req.quiet => return,
            StoreOutcome::Stored => b"HD",
            StoreOutcome::NotStored => b"NS",
            StoreOutcome::Exists => b"EX",
            StoreOutcome::NotFound => b"NF",
            StoreOutcome::TooLarge => {
                return write_reply(out, Reply::ServerError("object too large for cache"))
            }
            StoreOutcome::NoMemory => {
                return write_reply(out, Reply::ServerError("out of memory storing object"))
            }
        };
        out.put_slice(code);
        for tok in &self.req.tokens {
            match tok[0] {
                b'O' => {
                    out.put_u8(b' ');
                    out.put_slice(tok);
                }
                b'k' => put_key(out, &self.req.key, self.req.base64),
                b'c' => num(out, b'c', cas),
                _ => {}
            }
        }
        out.put_slice(b"\r\n");
    }

    fn deleted(&mut self, out: &mut Output, outcome: DeleteOutcome) {
        match outcome {
            DeleteOutcome::Deleted => self.status(out, b"HD", true),
            DeleteOutcome::NotFound => self.status(out, b"NF", false),
            DeleteOutcome::Exists => self.status(out, b"EX", false),
        }
    }

    fn arith(&mut self, out: &mut Output, outcome: ArithOutcome) {
        match outcome {
            ArithOutcome::Value { .. } => self.status(out, b"HD", true),
            ArithOutcome::NotFound => self.status(out, b"NF", false),
            ArithOutcome::Exists => self.status(out, b"EX", false),
            ArithOutcome::NonNumeric => write_reply(
                out,
                Reply::ClientError("cannot increment or decrement non-numeric value"),
            ),
            ArithOutcome::NoMemory => {
                write_reply(out, Reply::ServerError("Out of memory allocating new item"))
            }
        }
    }

    fn touched(&mut self, out: &mut Output, found: bool) {
        if found {
            self.status(out, b"HD", true)
        } else {
            self.status(out, b"NF", false)
        }
    }

    fn decision(&mut self, out: &mut Output, decided: Result<&Decision, ApplyError>) {
        match decided {
            Ok(d) if d.allowed => self.status(out, b"HD", true),
            Ok(_) => self.status(out, b"NS", false),
            Err(e) => write_reply(out, apply_error_reply(e)),
        }
    }

    fn refused(&mut self, out: &mut Output, why: Refused) {
        match why {
            Refused::ReadOnly => write_reply(out, READ_ONLY),
            Refused::Decision(e) => write_reply(out, e.reply()),
        }
    }

    fn counts_detail(&self) -> bool {
        false
    }
}
