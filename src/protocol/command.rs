//! The one command model: the operations on items and rate limits that the text and binary
//! protocols both ask for, free of any wire detail (quiet flags, opaque, noreply and reply
//! shapes stay with each protocol's responder). Borrowed from the connection's buffer.

use super::Refusal;
use crate::ratelimit::{Limit, Mode};
use crate::store::{ArithOptions, DeleteOptions, StoreMode, StoreOptions};

/// One operation on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// Fetch `key`; with `touch`, also set its client exptime (gat, binary TOUCH).
    Get {
        /// The key.
        key: &'a [u8],
        /// New client exptime.
        touch: Option<i64>,
    },
    /// A storage command with its value.
    Store {
        /// The key.
        key: &'a [u8],
        /// set, add, replace, append, prepend or cas.
        mode: StoreMode,
        /// Client flags.
        flags: u32,
        /// Client exptime.
        exptime: i64,
        /// The value.
        value: &'a [u8],
        /// Compare-cas of append/prepend, stale writes, a base64 key (binary, meta).
        opts: StoreOptions,
    },
    /// A storage command refused before its value was read (the value is discarded).
    Refused {
        /// The key.
        key: &'a [u8],
        /// Why.
        why: Refusal,
        /// Drop the old value too (a `set`: memcached will not leave it stale).
        drop_existing: bool,
    },
    /// Delete `key`, and reset the rate-limit states of subject `key` unless the delete is
    /// conditional (a cas) or only marks the item stale (meta `I`).
    Delete {
        /// The key.
        key: &'a [u8],
        /// Cas to compare, stale marking, meta accounting.
        opts: DeleteOptions,
    },
    /// incr/decr.
    Arith {
        /// The key.
        key: &'a [u8],
        /// Direction, amount, creation and cas.
        opts: ArithOptions,
    },
    /// Set a new client exptime (a write: refused on a decision key).
    Touch {
        /// The key.
        key: &'a [u8],
        /// New client exptime.
        exptime: i64,
        /// Lend the item to the responder as a gat does, without bumping it in its LRU
        /// (binary TOUCH answers the flags and cas); else a text `touch`.
        fetch: bool,
    },
    /// One rate-limit decision.
    Decide {
        /// Subject and parameters.
        limit: Limit<'a>,
        /// consume, peek or refund.
        mode: Mode,
    },
}
