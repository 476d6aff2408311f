//! The connection loop, one for every protocol: read what arrived, run the complete requests
//! in order while their replies stream into a bounded [`Output`], write, repeat.
//!
//! What it bounds, whatever the client sends:
//! - output: requests stop running when the pending output reaches [`HIGH_WATER`] and resume
//!   once the socket has taken it (a multi-get resumes at its next key);
//! - input: a request is buffered only as far as its decoder allows (a value up to the item
//!   size, a line up to 2048 bytes); past [`SMALL_FRAME`] the session charges it to the memory
//!   limit first; a refused value is discarded as it arrives, never buffered;
//! - idle memory: a connection waiting for bytes holds no buffer ([`transport`] pools them);
//! - idle time: with `-o idle_timeout=N` a connection that completed no request for N seconds
//!   while waiting for one is closed, however many bytes of an unfinished line it trickles.
//!
//! [`transport`]: super::transport

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::time::Instant;

use super::binary::BinarySession;
use super::output::{iov_array, Output, HIGH_WATER};
use super::text::TextSession;
use super::transport::{give_buffer, take_buffer, Transport, BUF_SIZE};
use super::verbose::{ConnLog, State};
use super::Context;
use crate::config::ProtocolChoice;
use crate::protocol::binary::REQ_MAGIC;
use crate::protocol::{Decode, Frame, MAX_LINE_WITHOUT_NEWLINE, SMALL_FRAME};
use crate::stats::ServerStats;
use crate::store::Store;

/// A protocol's side of a connection: decodes and runs one request at a time.
pub trait Session {
    /// Called after each read with the buffered bytes, before they run (a batch's prefetch).
    fn batch_start(&mut self, _buf: &[u8]) {}

    /// Runs the request at the start of `buf`, writing its replies to `out`.
    fn step(&mut self, buf: &[u8], out: &mut Output) -> Step;

    /// The connection's verbose log, at the level read after the last read.
    fn set_log(&mut self, _log: ConnLog) {}
}

/// What running the request at the start of the buffer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It ran: drop `len` bytes, then discard `skip` more as they arrive.
    Done {
        /// Bytes it used.
        len: usize,
        /// Bytes to discard after them.
        skip: u64,
    },
    /// It needs `need` buffered bytes before it can run.
    Incomplete {
        /// Bytes the buffer must hold.
        need: usize,
        /// The missing bytes are a value (memcached never times out a connection reading one).
        value: bool,
    },
    /// It stopped part-way at the output high-water mark; run it again once output drained.
    Paused,
    /// Close the connection once the replies so far are sent.
    Close,
}

/// Why [`Input::execute`] stopped running requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// More input is needed.
    Read,
    /// Output reached the high-water mark: send it, then go on.
    Flush,
    /// Send what is pending, then close.
    Close,
    /// `-R` requests ran and more are buffered: send what is pending, let other
    /// connections run, then go on (memcached's `conn_yields`).
    Yield,
}

/// A connection's input: the bytes buffered and what the next request waits for.
#[derive(Debug, Default)]
pub struct Input {
    /// Bytes received and not yet used.
    pub buf: BytesMut,
    /// Bytes still to discard as they arrive.
    skip: u64,
    /// Bytes the buffer must hold before the next request can run.
    need: usize,
    /// The bytes awaited are a value, not a command line.
    in_value: bool,
    /// Requests run before yielding to other connections (`-R`; 0: never yield).
    pub yield_after: u32,
}

impl Input {
    /// Runs the buffered requests in order until input runs out or `out` is full. Also
    /// returns whether any request completed (progress, for the idle timeout).
    pub fn execute<S: Session>(&mut self, s: &mut S, out: &mut Output) -> (Stop, bool) {
        let mut progressed = false;
        let mut ran = 0;
        let stop = loop {
            if self.skip > 0 {
                let n = self.skip.min(self.buf.len() as u64);
                self.buf.advance(n as usize);
                self.skip -= n;
                if self.skip > 0 {
                    break Stop::Read;
                }
            }
            if out.is_full() {
                break Stop::Flush;
            }
            if self.buf.is_empty() || self.buf.len() < self.need {
                break Stop::Read;
            }
            if ran == self.yield_after && ran > 0 {
                break Stop::Yield;
            }
            if out.capacity() == 0 {
                out.set_buffer(take_buffer());
            }
            match s.step(&self.buf, out) {
                Step::Done { len, skip } => {
                    self.buf.advance(len);
                    self.skip = skip;
                    self.need = 0;
                    self.in_value = false;
                    progressed = true;
                    ran += 1;
                }
                Step::Incomplete { need, value } => {
                    debug_assert!(need > self.buf.len());
                    self.need = need;
                    self.in_value = value;
                    break Stop::Read;
                }
                Step::Paused => break Stop::Flush,
                Step::Close => break Stop::Close,
            }
        };
        (stop, progressed)
    }

    /// True when the next bytes start a new batch of requests (nothing partial is pending).
    pub fn at_batch_start(&self) -> bool {
        self.skip == 0 && self.need == 0
    }
}

/// Serves one connection until it closes. The protocol is chosen by the first byte as
/// memcached chooses it: with `-B auto` 0x80 selects the binary protocol, anything else the
/// text protocol; `-B ascii` and `-B binary` force one.
pub async fn serve<T: Transport>(io: &T, ctx: &Context) {
    let mut conn = Conn::new(io, ctx);
    conn.log.opened(ctx.config.protocol);
    if conn.read().await {
        let binary = match ctx.config.protocol {
            ProtocolChoice::Binary => true,
            ProtocolChoice::Ascii => false,
            ProtocolChoice::Auto => {
                let binary = conn.input.buf[0] == REQ_MAGIC;
                conn.log.negotiated(binary);
                binary
            }
        };
        if binary {
            conn.run(BinarySession::new(ctx)).await;
        } else {
            conn.run(TextSession::new(ctx)).await;
        }
    }
    conn.enter(State::Closing);
    conn.log.closed();
    conn.enter(State::Closed);
}

struct Conn<'a, T> {
    io: &'a T,
    ctx: &'a Context,
    input: Input,
    out: Output,
    /// When the last request completed (the idle timeout counts from here).
    progress: Instant,
    /// The verbose log, its level read after each read.
    log: ConnLog,
    /// The loop's state, for `-vvv`.
    state: State,
}

impl<'a, T: Transport> Conn<'a, T> {
    fn new(io: &'a T, ctx: &'a Context) -> Self {
        Conn {
            io,
            ctx,
            input: Input {
                yield_after: ctx.config.reqs_per_event,
                ..Input::default()
            },
            out: Output::new(),
            progress: Instant::now(),
            log: ConnLog::new(io.as_raw_fd(), ctx),
            state: State::NewCmd,
        }
    }

    /// `-v`: memcached reports a failed read only while it discards a refused value or reads
    /// one (a reset between requests closes silently).
    fn read_failed(&self, e: &io::Error) {
        if self.input.skip > 0 {
            self.log.read_failed(None);
        } else if self.input.in_value {
            self.log.read_failed(Some(e));
        }
    }

    /// Moves the loop to `state`, logged at `-vvv`.
    #[inline]
    fn enter(&mut self, state: State) {
        if self.log.level() >= 3 && state != self.state {
            self.log.state(self.state, state);
            self.state = state;
        }
    }

    async fn run<S: Session>(&mut self, mut s: S) {
        s.set_log(self.log);
        s.batch_start(&self.input.buf);
        loop {
            self.enter(State::ParseCmd);
            let (stop, progressed) = self.input.execute(&mut s, &mut self.out);
            if progressed {
                self.progress = Instant::now();
            }
            match stop {
                Stop::Read => {}
                Stop::Flush => {
                    if self.flush().await.is_err() {
                        return;
                    }
                    continue;
                }
                Stop::Close => {
                    let _ = self.flush().await;
                    self.io.shutdown_write();
                    return;
                }
                Stop::Yield => {
                    ServerStats::add(&self.ctx.stats.conn_yields, 1);
                    if self.flush().await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            if self.flush().await.is_err() {
                return;
            }
            self.release_buffers();
            if !self.read().await {
                return;
            }
            s.set_log(self.log);
            if self.input.at_batch_start() {
                s.batch_start(&self.input.buf);
            }
        }
    }

    /// Sends everything pending; waits while the socket is full (that wait is the
    /// backpressure on a client that does not read).
    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.enter(State::Mwrite);
        }
        let sent = self.send().await;
        if let Err(e) = &sent {
            self.log.write_failed(e);
        }
        self.enter(State::NewCmd);
        sent
    }

    async fn send(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            let written = {
                let mut iov = iov_array();
                match self.out.slices(&mut iov) {
                    // One buffer (the common case): a plain send, cheaper than writev.
                    1 => self.io.try_write(&iov[0]),
                    n => self.io.try_write_vectored(&iov[..n]),
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    ServerStats::add(&self.ctx.stats.bytes_written, n as u64);
                    self.out.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Returns buffers an idle connection does not need to the pool, and moves a small rest
    /// of input out of a buffer grown for a large request.
    fn release_buffers(&mut self) {
        if self.out.is_empty() && self.out.capacity() > 0 {
            give_buffer(self.out.take_buffer());
        }
        let input = &mut self.input;
        if input.buf.is_empty() {
            if input.buf.capacity() > 0 {
                give_buffer(std::mem::take(&mut input.buf));
            }
        } else if input.buf.capacity() > 2 * BUF_SIZE
            && input.buf.len() <= BUF_SIZE / 2
            && input.need <= SMALL_FRAME
        {
            let mut small = take_buffer();
            small.extend_from_slice(&input.buf);
            input.buf = small;
        }
    }

    /// Waits for bytes and appends them to the read buffer; false when the connection ends
    /// (closed by the peer, an error, or the idle timeout).
    async fn read(&mut self) -> bool {
        let idle = match self.ctx.config.idle_timeout {
            0 => None,
            secs if !self.input.in_value && self.input.skip == 0 => {
                Some(self.progress + Duration::from_secs(u64::from(secs)))
            }
            _ => None,
        };
        loop {
            self.enter(State::Waiting);
            let ready = match idle {
                None => self.io.readable().await,
                Some(deadline) => match tokio::time::timeout_at(deadline, self.io.readable()).await
                {
                    Ok(r) => r,
                    Err(_) => {
                        ServerStats::add(&self.ctx.stats.idle_kicks, 1);
                        self.log.refresh(self.ctx);
                        self.log.idle();
                        return false;
                    }
                },
            };
            if let Err(e) = ready {
                self.log.refresh(self.ctx);
                self.read_failed(&e);
                return false;
            }
            self.enter(State::Read);
            let buf = &mut self.input.buf;
            if buf.capacity() == 0 {
                *buf = take_buffer();
            }
            // Like memcached, a partial line moves to the front of a whole buffer before the
            // next read, so one read can bring the rest of it: a line over 2048 bytes is judged
            // by what a read of the full buffer leaves, not by where the last read ended.
            if buf.capacity() < BUF_SIZE && buf.len() <= MAX_LINE_WITHOUT_NEWLINE {
                compact(buf);
            }
            let want = self.input.need.saturating_sub(buf.len());
            if buf.capacity() - buf.len() < want.clamp(1024, HIGH_WATER) {
                buf.reserve(want.max(BUF_SIZE));
            }
            let read = self.io.try_read_buf(buf);
            self.log.refresh(self.ctx);
            match read {
                Ok(0) => return false,
                Ok(n) => {
                    ServerStats::add(&self.ctx.stats.bytes_read, n as u64);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A spurious wake-up (a fresh socket is reported ready once): an idle
                    // connection must not keep a buffer while it waits.
                    if buf.is_empty() {
                        give_buffer(std::mem::take(buf));
                    }
                }
                Err(e) => {
                    self.read_failed(&e);
                    return false;
                }
            }
        }
    }
}

/// Moves the bytes of `buf` (a partial line) to the front of a buffer of [`BUF_SIZE`].
fn compact(buf: &mut BytesMut) {
    if buf.is_empty() {
        // Empty: `reserve` takes the consumed front back in place.
        buf.reserve(BUF_SIZE);
        return;
    }
    let mut fresh = take_buffer();
    fresh.extend_from_slice(buf);
    let mut old = std::mem::replace(buf, fresh);
    old.clear();
    old.reserve(BUF_SIZE);
    give_buffer(old);
}

/// The connection loop without a socket: runs requests from bytes handed to it, for UDP
/// datagrams and for tests of the sessions.
pub struct Driver<S> {
    /// The protocol session.
    pub session: S,
    /// Bytes not yet used.
    pub input: Input,
    /// Replies not yet taken.
    pub out: Output,
}

impl<S: Session> Driver<S> {
    /// A driver for `session` with nothing buffered.
    pub fn new(session: S) -> Self {
        Driver {
            session,
            input: Input::default(),
            out: Output::new(),
        }
    }

    /// Appends `bytes` and runs the complete requests until input runs out, output fills
    /// up, or the session stops.
    pub fn feed(&mut self, bytes: &[u8]) -> Stop {
        let batch = self.input.at_batch_start();
        self.input.buf.extend_from_slice(bytes);
        if batch {
            self.session.batch_start(&self.input.buf);
        }
        self.input.execute(&mut self.session, &mut self.out).0
    }

    /// [`Driver::feed`] for a client that reads everything: output is taken whenever it
    /// fills up. Returns all replies and why running stopped.
    pub fn feed_all(&mut self, bytes: &[u8]) -> (Vec<u8>, Stop) {
        let mut replies = Vec::new();
        let mut stop = self.feed(bytes);
        while stop == Stop::Flush {
            replies.extend(self.out.take_all());
            stop = self.input.execute(&mut self.session, &mut self.out).0;
        }
        replies.extend(self.out.take_all());
        (replies, stop)
    }
}

/// A session's handling of its decoder's answer: run a complete frame; wait for more bytes,
/// charging those past [`SMALL_FRAME`] to the memory limit first (when there is no room, run
/// the decoder's fallback refusal, or close when it has none); or close.
#[inline(always)]
pub fn decoded<T>(
    d: Decode<T>,
    transit: &mut Transit<'_>,
    mut run: impl FnMut(Frame<T>) -> Step,
) -> Step {
    match d {
        Decode::Frame(f) => {
            transit.release();
            run(f)
        }
        Decode::Incomplete { need, fallback } => {
            if need > SMALL_FRAME && !transit.cover(need) {
                transit.release();
                return fallback.map_or(Step::Close, run);
            }
            Step::Incomplete {
                need,
                value: fallback.is_some(),
            }
        }
        Decode::Close => Step::Close,
    }
}

/// Memory reserved for the request a session is receiving: the bytes it must buffer past
/// [`SMALL_FRAME`] (a large value, a long multi-get line), taken from the store's transit
/// budget before they are read and given back when the request completes, fails or the
/// connection ends.
pub struct Transit<'c> {
    store: &'c Store,
    bytes: u64,
}

impl<'c> Transit<'c> {
    /// Nothing reserved yet.
    pub fn new(store: &'c Store) -> Self {
        Transit { store, bytes: 0 }
    }

    /// Makes sure a request needing `need` buffered bytes is covered; false when the transit
    /// budget has no room for it (the request must then be refused).
    pub fn cover(&mut self, need: usize) -> bool {
        let want = need.saturating_sub(SMALL_FRAME) as u64;
        if want <= self.bytes {
            return true;
        }
        if !self.store.reserve_transit(want - self.bytes) {
            return false;
        }
        self.bytes = want;
        true
    }

    /// Gives the reservation back.
    pub fn release(&mut self) {
        if self.bytes > 0 {
            self.store.release_transit(self.bytes);
            self.bytes = 0;
        }
    }
}

impl Drop for Transit<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
