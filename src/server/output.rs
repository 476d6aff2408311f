//! A connection's pending output. Replies are written into it as requests run; a large value
//! is queued as a shared reference to the stored bytes instead of a copy. The connection stops
//! running requests once [`Output::pending`] reaches [`HIGH_WATER`] and resumes when the socket
//! has taken the bytes, so what a connection holds for a client that does not read is bounded
//! by the high-water mark plus one reply.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::{Deref, DerefMut};

use bytes::{Buf, Bytes, BytesMut};

use crate::store::{ItemRef, MetaItem, SharedValue};

/// Pending output at which a connection stops running requests until the socket drains.
pub const HIGH_WATER: usize = 1 << 20;

/// Values at least this long are queued as a reference to the stored bytes rather than copied
/// (below it a copy costs less than sharing the block).
pub const SHARE_MIN: usize = 4 * 1024;

/// Most buffers handed to one vectored write.
const MAX_IOV: usize = 64;

/// Bytes waiting to be sent, in order: sealed segments, then the tail being written.
///
/// It dereferences to the tail, a `BytesMut`, so reply encoders append to it directly;
/// [`Output::push`] seals the tail and queues a shared segment after it.
#[derive(Debug, Default)]
pub struct Output {
    segs: VecDeque<Bytes>,
    /// Bytes held in `segs`.
    queued: usize,
    tail: BytesMut,
}

impl Output {
    /// An empty output with no buffer yet.
    pub fn new() -> Output {
        Output::default()
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.queued + self.tail.len()
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// True once the connection should stop running requests until the socket drains.
    pub fn is_full(&self) -> bool {
        self.pending() >= HIGH_WATER
    }

    /// Queues `bytes` (a value shared with the store) after everything written so far.
    pub fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            self.queued += self.tail.len();
            self.segs.push_back(self.tail.split().freeze());
        }
        self.queued += bytes.len();
        self.segs.push_back(bytes);
    }

    /// Appends the value of an item lent by [`crate::store::Store::get`]: a long one as the
    /// stored block itself, which stays valid however the store changes the item meanwhile.
    pub fn put_value(&mut self, it: &ItemRef<'_>) {
        self.put_shared(it.value, || it.shared_value());
    }

    /// Appends the value of an item lent by [`crate::store::Store::meta_get`], as
    /// [`Output::put_value`] does.
    pub fn put_meta_value(&mut self, it: &MetaItem<'_>) {
        self.put_shared(it.value(), || it.shared_value());
    }

    fn put_shared(&mut self, value: &[u8], shared: impl FnOnce() -> Option<SharedValue>) {
        let shared = if value.len() >= SHARE_MIN {
            shared()
        } else {
            None
        };
        match shared {
            Some(v) => self.push(Bytes::from_owner(v)),
            None => self.tail.extend_from_slice(value),
        }
    }

    /// Fills `iov` with the next bytes to send; returns how many slices it used.
    pub fn slices<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let mut n = 0;
        for seg in &self.segs {
            if n == MAX_IOV {
                return n;
            }
            iov[n] = IoSlice::new(seg);
            n += 1;
        }
        if n < MAX_IOV && !self.tail.is_empty() {
            iov[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }

    /// Drops the first `n` bytes, which the socket took.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.segs.front_mut() else {
                self.tail.advance(n);
                break;
            };
            let k = n.min(front.len());
            front.advance(k);
            self.queued -= k;
            n -= k;
            if front.is_empty() {
                self.segs.pop_front();
            }
        }
        if self.tail.is_empty() {
            self.tail.clear();
        }
    }

    /// The pending bytes from offset `mark` on (a [`Output::pending`] taken earlier): what was
    /// written since, in order, as slices (for the `-vv` log of a request's replies).
    pub fn since(&self, mark: usize) -> Vec<&[u8]> {
        let mut skip = mark;
        let mut out = Vec::new();
        for part in self.segs.iter().map(|s| &s[..]).chain([&self.tail[..]]) {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            out.push(&part[skip..]);
            skip = 0;
        }
        out
    }

    /// Drops what was written after offset `mark` (a [`Output::pending`] taken earlier).
    pub fn truncate(&mut self, mark: usize) {
        if mark >= self.queued {
            self.tail.truncate(mark - self.queued);
            return;
        }
        self.tail.clear();
        while self.queued > mark {
            let Some(mut last) = self.segs.pop_back() else {
                break;
            };
            self.queued -= last.len();
            if self.queued < mark {
                last.truncate(mark - self.queued);
                self.queued += last.len();
                self.segs.push_back(last);
            }
        }
    }

    /// Takes every pending byte out as one vector (datagrams and tests; connections write
    /// with [`Output::slices`] instead).
    pub fn take_all(&mut self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.pending());
        for seg in self.segs.drain(..) {
            all.extend_from_slice(&seg);
        }
        all.extend_from_slice(&self.tail);
        self.queued = 0;
        self.tail.clear();
        all
    }

    /// Takes the tail buffer out (to return it to a pool) once everything was sent.
    pub fn take_buffer(&mut self) -> BytesMut {
        debug_assert!(self.is_empty());
        std::mem::take(&mut self.tail)
    }

    /// Gives the output a buffer to write into (when it has none).
    pub fn set_buffer(&mut self, buf: BytesMut) {
        debug_assert!(self.tail.is_empty());
        self.tail = buf;
    }

    /// Capacity of the tail buffer.
    pub fn capacity(&self) -> usize {
        self.tail.capacity()
    }
}

impl Deref for Output {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        &self.tail
    }
}

impl DerefMut for Output {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }
}

/// An array of empty slices for [`Output::slices`].
pub fn iov_array<'a>() -> [IoSlice<'a>; MAX_IOV] {
    [IoSlice::new(&[]); MAX_IOV]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn drain(out: &mut Output, step: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        while !out.is_empty() {
            let mut iov = iov_array();
            let n = out.slices(&mut iov);
            let mut left = step;
            for s in &iov[..n] {
                let k = left.min(s.len());
                sent.extend_from_slice(&s[..k]);
                left -= k;
            }
            let took = step - left;
            out.advance(took);
        }
        sent
    }

    #[test]
    fn segments_keep_their_order_through_partial_writes() {
        for step in [1, 3, 7, 100] {
            let mut out = Output::new();
            out.put_slice(b"VALUE k 0 5\r\n");
            out.push(Bytes::from_static(b"hello"));
            out.put_slice(b"\r\nEND\r\n");
            out.push(Bytes::new());
            out.push(Bytes::from_static(b"xy"));
            assert_eq!(out.pending(), 13 + 5 + 7 + 2);
            assert_eq!(drain(&mut out, step), b"VALUE k 0 5\r\nhello\r\nEND\r\nxy");
            assert_eq!(out.pending(), 0);
        }
    }

    #[test]
    fn full_at_the_high_water_mark() {
        let mut out = Output::new();
        out.push(Bytes::from(vec![0u8; HIGH_WATER - 1]));
        assert!(!out.is_full());
        out.put_u8(b'x');
        assert!(out.is_full());
        out.advance(10);
        assert!(!out.is_full());
    }

    #[test]
    fn long_values_are_shared_with_the_store_not_copied() {
        let store = crate::store::Store::new(
            &crate::store::StoreConfig::default(),
            std::sync::Arc::new(crate::clock::SystemClock::new()),
        );
        let long = vec![b'l'; SHARE_MIN];
        store.store(crate::store::StoreMode::Set, b"long", 0, 0, &long);
        store.store(crate::store::StoreMode::Set, b"short", 0, 0, b"s");
        let mut out = Output::new();
        store.get(b"long", None, |it| out.put_value(&it));
        store.get(b"short", None, |it| out.put_value(&it));
        assert_eq!(out.segs.len(), 1, "the long value is a shared segment");
        assert_eq!(&out[..], b"s", "the short one was copied");
        // The store may replace the item; the queued bytes stay what was read.
        store.store(crate::store::StoreMode::Set, b"long", 0, 0, b"new");
        store.delete(b"long", crate::store::DeleteOptions::default());
        let all = out.take_all();
        assert_eq!(all.len(), SHARE_MIN + 1);
        assert!(all[..SHARE_MIN].iter().all(|&b| b == b'l'));
    }

    #[test]
    fn what_was_written_since_a_mark_is_seen_and_dropped() {
        let mut out = Output::new();
        out.put_slice(b"ab");
        out.push(Bytes::from_static(b"cdef"));
        out.put_slice(b"gh");
        let all: Vec<u8> = out.since(0).concat();
        assert_eq!(all, b"abcdefgh");
        for mark in 0..=8 {
            assert_eq!(out.since(mark).concat(), &all[mark..], "since {mark}");
            let mut copy = Output::new();
            copy.put_slice(b"ab");
            copy.push(Bytes::from_static(b"cdef"));
            copy.put_slice(b"gh");
            copy.truncate(mark);
            assert_eq!(copy.pending(), mark);
            assert_eq!(copy.take_all(), &all[..mark], "truncate {mark}");
        }
        out.advance(3);
        assert_eq!(out.since(2).concat(), b"fgh");
    }

    #[test]
    fn more_segments_than_one_write_takes() {
        let mut out = Output::new();
        for i in 0..200u8 {
            out.push(Bytes::from(vec![i; 2]));
        }
        let mut iov = iov_array();
        assert_eq!(out.slices(&mut iov), MAX_IOV);
        let all = drain(&mut out, 1000);
        assert_eq!(all.len(), 400);
        assert_eq!(&all[398..], &[199, 199]);
    }
}
