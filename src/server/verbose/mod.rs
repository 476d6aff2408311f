//! memcached's verbose lines, in its exact format: `-v` errors of the connections, `-vv`
//! connection events and every request with its replies (`<24 get a`, `>24 sending key a`,
//! `>24 END`), `-vvv` the connection loop's state changes. Lines go out through
//! [`crate::logging::wire`], bare.
//!
//! A connection reads the level once per read ([`ConnLog::refresh`]: one relaxed load), and
//! below `-v` its sessions take their usual path: nothing is decoded twice, formatted or
//! allocated for the log. [`text`] and [`binary`] derive the request and reply lines from the
//! bytes a request spans and the replies it wrote, so the executors know nothing of logging.

pub mod binary;
#[cfg(test)]
mod session_tests;
pub mod text;

use std::fmt;
use std::sync::atomic::Ordering;

use super::Context;
use crate::config::ProtocolChoice;
use crate::logging::wire;

/// A connection's file descriptor (memcached's name for it in every line) and the verbosity
/// last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLog {
    fd: i32,
    level: u32,
}

impl ConnLog {
    /// Logs nothing (UDP datagrams, tests).
    pub const OFF: ConnLog = ConnLog { fd: -1, level: 0 };

    /// The log of connection `fd`, at the current verbosity.
    pub fn new(fd: i32, ctx: &Context) -> ConnLog {
        let mut log = ConnLog { fd, level: 0 };
        log.refresh(ctx);
        log
    }

    /// Reads the verbosity again (once per read, and after a `verbosity` command).
    #[inline]
    pub fn refresh(&mut self, ctx: &Context) {
        if self.fd >= 0 {
            self.level = ctx.stats.verbosity.load(Ordering::Relaxed);
        }
    }

    /// The verbosity last read.
    #[inline]
    pub fn level(self) -> u32 {
        self.level
    }

    /// True when any line may be logged (`-v` and up): sessions then take their logging path.
    #[inline]
    pub fn on(self) -> bool {
        self.level >= 1
    }

    /// The connection's file descriptor.
    pub fn fd(self) -> i32 {
        self.fd
    }

    /// Logs `line` when the verbosity is at least `level`.
    pub fn line(self, level: u32, line: fmt::Arguments<'_>) {
        if self.level >= level {
            wire(level, line);
        }
    }

    /// `-vv`: a client connected (memcached's `conn_new`).
    pub fn opened(self, protocol: ProtocolChoice) {
        let fd = self.fd;
        match protocol {
            ProtocolChoice::Auto => self.line(
                2,
                format_args!("<{fd} new auto-negotiating client connection"),
            ),
            ProtocolChoice::Ascii => {
                self.line(2, format_args!("<{fd} new ascii client connection."))
            }
            ProtocolChoice::Binary => {
                self.line(2, format_args!("<{fd} new binary client connection."))
            }
        }
    }

    /// `-vv`: the first byte chose the protocol (`-B auto`).
    pub fn negotiated(self, binary: bool) {
        let name = if binary { "binary" } else { "ascii" };
        self.line(
            2,
            format_args!("{}: Client using the {name} protocol", self.fd),
        );
    }

    /// `-vv`: the connection is closing.
    pub fn closed(self) {
        self.line(2, format_args!("<{} connection closed.", self.fd));
    }

    /// `-vv`: the idle timeout (`-o idle_timeout`) closes the connection.
    pub fn idle(self) {
        self.line(2, format_args!("Closing idle fd {}", self.fd));
    }

    /// `-v`: a read failed other than by blocking (a reset connection, say) while discarding
    /// a value (`None`) or reading one (`Some`: memcached adds the error, and its buffer
    /// pointers, left out here).
    pub fn read_failed(self, reading_value: Option<&std::io::Error>) {
        match reading_value {
            None => self.line(1, format_args!("Failed to read, and not due to blocking")),
            Some(e) => self.line(
                1,
                format_args!(
                    "Failed to read, and not due to blocking:\nerrno: {} {} ",
                    e.raw_os_error().unwrap_or(0),
                    strerror(e)
                ),
            ),
        }
    }

    /// `-v`: a write failed other than by blocking (memcached's `perror`).
    pub fn write_failed(self, e: &std::io::Error) {
        self.line(
            1,
            format_args!("Failed to write, and not due to blocking: {}", strerror(e)),
        );
    }

    /// `-vvv`: the connection loop moved from state `from` to `to`.
    pub fn state(self, from: State, to: State) {
        let fd = self.fd;
        self.line(3, format_args!("{fd}: going from {from} to {to}"));
    }
}

/// `-vv`: a `cas` (text or binary) found another cas unique on `key` (memcached's
/// `CAS:  failure` line; the current unique is read back without touching the item).
pub fn cas_failure(log: ConnLog, ctx: &Context, key: &[u8], got: u64) {
    if log.level() >= 2 {
        if let Some(expected) = ctx.store.meta_peek(key, |it| it.map(|it| it.cas())) {
            log.line(
                2,
                format_args!("CAS:  failure: expected {expected}, got {got}"),
            );
        }
    }
}

/// The connection loop's states, named as memcached names its equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Between requests.
    NewCmd,
    /// Waiting for the socket to become readable.
    Waiting,
    /// Reading.
    Read,
    /// Running the complete requests read.
    ParseCmd,
    /// Writing replies.
    Mwrite,
    /// Closing.
    Closing,
    /// Closed.
    Closed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::NewCmd => "conn_new_cmd",
            State::Waiting => "conn_waiting",
            State::Read => "conn_read",
            State::ParseCmd => "conn_parse_cmd",
            State::Mwrite => "conn_mwrite",
            State::Closing => "conn_closing",
            State::Closed => "conn_closed",
        })
    }
}

/// The C library's text of an I/O error (what `perror` prints), without Rust's suffix.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// `-vv`: a listener is open (memcached's `server listening (auto-negotiate)`).
pub fn listening(ctx: &Context, fd: i32, udp: bool) {
    if ctx.stats.verbosity.load(Ordering::Relaxed) < 2 {
        return;
    }
    let what = match (udp, ctx.config.protocol) {
        (true, _) => "udp",
        (false, ProtocolChoice::Auto) => "auto-negotiate",
        (false, ProtocolChoice::Ascii) => "ascii",
        (false, ProtocolChoice::Binary) => "binary",
    };
    wire(2, format_args!("<{fd} server listening ({what})"));
}

/// `-vv`: the slab classes, as memcached prints them at start.
pub fn slab_classes(ctx: &Context) {
    if ctx.stats.verbosity.load(Ordering::Relaxed) < 2 {
        return;
    }
    let slabs = ctx.store.slabs();
    for id in 1..=slabs.len() as u8 {
        let (size, per) = (slabs.chunk_size(id), slabs.per_page(id));
        wire(
            2,
            format_args!("slab class {id:3}: chunk size {size:9} perslab {per:7}"),
        );
    }
}

/// Bytes as memcached prints them (`%s`, `%c`): UTF-8 as is, other bytes replaced.
pub fn show(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Reads replies back from the slices a request wrote ([`super::output::Output::since`]).
pub struct Reader<'a> {
    parts: Vec<&'a [u8]>,
    part: usize,
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `parts`.
    pub fn new(parts: Vec<&'a [u8]>) -> Self {
        Reader {
            parts,
            part: 0,
            at: 0,
        }
    }

    /// Goes back to the start.
    pub fn rewind(&mut self) {
        self.part = 0;
        self.at = 0;
    }

    /// The next line without its `\r\n` (or `\n`); `None` at the end.
    pub fn line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let part = self.parts.get(self.part)?;
            let rest = &part[self.at..];
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    line.extend_from_slice(&rest[..i]);
                    self.at += i + 1;
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(line);
                }
                None => {
                    line.extend_from_slice(rest);
                    self.part += 1;
                    self.at = 0;
                }
            }
        }
    }

    /// The next `n` bytes, copied; `None` if fewer are left.
    pub fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let part = self.parts.get(self.part)?;
            let k = (n - out.len()).min(part.len() - self.at);
            out.extend_from_slice(&part[self.at..self.at + k]);
            self.at += k;
            if self.at == part.len() {
                self.part += 1;
                self.at = 0;
            }
        }
        Some(out)
    }

    /// Skips `n` bytes (a value); false if fewer are left.
    pub fn skip(&mut self, mut n: usize) -> bool {
        while n > 0 {
            let Some(part) = self.parts.get(self.part) else {
                return false;
            };
            let k = n.min(part.len() - self.at);
            self.at += k;
            n -= k;
            if self.at == part.len() {
                self.part += 1;
                self.at = 0;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_walks_lines_and_values_across_slices() {
        let parts: Vec<&[u8]> = vec![b"VALUE k 0 5\r\nhe", b"llo", b"\r\nEN", b"D\r\n"];
        let mut r = Reader::new(parts);
        assert_eq!(r.line().unwrap(), b"VALUE k 0 5");
        assert!(r.skip(7));
        assert_eq!(r.line().unwrap(), b"END");
        assert_eq!(r.line(), None);
        let mut r = Reader::new(vec![b"ab", b"cd"]);
        assert_eq!(r.take(3).unwrap(), b"abc");
        assert_eq!(r.take(2), None);
    }

    #[test]
    fn states_and_errors_read_as_memcached_prints_them() {
        assert_eq!(State::ParseCmd.to_string(), "conn_parse_cmd");
        let e = std::io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(strerror(&e), "Broken pipe");
    }
}
