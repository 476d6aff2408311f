//! Request encoders and reply checkers, one module per protocol.
//!
//! Every request leaves an [`Expect`] behind; its reply is checked against it by
//! [`Codec::check`]. A reply that is well framed but wrong (a miss reported as a hit, a value
//! that is not the one stored, an error line, a malformed rate-limit verdict, a reordered
//! binary opaque...) is returned as `Err(reason)` and counted as an error by the runner. A
//! reply whose end cannot be found is a [`Check::Desync`]: the connection cannot go on.

pub mod binary;
pub mod meta;
pub mod resp;
pub mod text;

use std::sync::Arc;

use bytes::BytesMut;
use serde::Serialize;

/// The wire protocol spoken to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// memcached's text protocol (`get`, `set`, `incr`, and ratecached's `ratelimit`).
    Text,
    /// memcached's meta protocol (`mg`, `ms`, `ma ... N60 J1 v t`, and ratecached's `ml`).
    Meta,
    /// memcached's binary protocol (and ratecached's RATELIMIT opcode 0x4c).
    Binary,
    /// Redis RESP2 (`GET`, `SET`, `INCR`, `EVALSHA`).
    Redis,
}

/// What the connections do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// A mix of sets and gets (`--ratio SET:GET`) over keys that are loaded first.
    Getset,
    /// Increment counters (text: loaded first; meta `ma N60 J1`, binary and Redis create them).
    Incr,
    /// ratecached's `ratelimit` command (text), `ml` (meta) or opcode 0x4c (binary).
    Ratelimit,
    /// Redis: the fixed-window Lua limiter (INCR + PEXPIRE) through EVALSHA.
    RedisFixed,
    /// Redis: the sliding-log Lua limiter (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE) via EVALSHA.
    RedisSliding,
    /// Store keys 0..keys-1 once each (with `--ttl`), for memory and expiry measurements.
    Fill,
    /// One rate-limit decision on each subject 0..keys-1 once, for memory measurements:
    /// ratecached's `ratelimit` (`ml`, opcode 0x4c), on Redis the fixed-window script.
    RlFill,
}

impl Workload {
    /// True for the workloads that create each key once (`fill`, `rl-fill`): their reports
    /// carry the RSS growth per item the server holds.
    pub fn fills(self) -> bool {
        matches!(self, Workload::Fill | Workload::RlFill)
    }
}

/// Rate-limit algorithm of the `ratelimit` workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// Generic cell rate algorithm (ratecached's default).
    Gcra,
    /// Fixed window.
    Fixed,
    /// Sliding window counter.
    Sliding,
}

/// Everything the encoders and checkers need to know, shared by all connections.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Wire protocol.
    pub protocol: Protocol,
    /// Key name prefix.
    pub key_prefix: Vec<u8>,
    /// Key length in bytes (the index is zero-padded to it).
    pub key_size: usize,
    /// Value length of sets.
    pub value_size: usize,
    /// Expiration of stored items in seconds (0 = never).
    pub ttl: u32,
    /// Sets store `0` instead of the key's value (loading counters).
    pub zero_values: bool,
    /// Rate limit: tokens per period.
    pub rl_limit: u32,
    /// Rate limit: period in milliseconds.
    pub rl_period_ms: u64,
    /// Rate limit: burst (0 = limit).
    pub rl_burst: u32,
    /// Rate limit: algorithm.
    pub rl_algo: Algo,
    /// SHA1 of the loaded fixed-window script (Redis).
    pub redis_fixed_sha: String,
    /// SHA1 of the loaded sliding-log script (Redis).
    pub redis_sliding_sha: String,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            protocol: Protocol::Text,
            key_prefix: b"key:".to_vec(),
            key_size: 20,
            value_size: 32,
            ttl: 0,
            zero_values: false,
            rl_limit: 100,
            rl_period_ms: 1000,
            rl_burst: 0,
            rl_algo: Algo::Gcra,
            redis_fixed_sha: String::new(),
            redis_sliding_sha: String::new(),
        }
    }
}

impl Spec {
    /// The capacity a rate-limit reply must report.
    pub fn rl_capacity(&self) -> u64 {
        if self.rl_burst == 0 || self.rl_algo != Algo::Gcra {
            u64::from(self.rl_limit)
        } else {
            u64::from(self.rl_burst)
        }
    }
}

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read a key.
    Get,
    /// Store a key (its value, or `0` when loading counters).
    Set,
    /// Increment a counter by 1.
    Incr,
    /// One rate-limit decision of ratecached.
    RateLimit,
    /// One decision of the Redis fixed-window script.
    RedisFixed,
    /// One decision of the Redis sliding-log script.
    RedisSliding,
}

/// What a sent request expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The request.
    pub kind: OpKind,
    /// Its key index.
    pub key: u64,
    /// Binary protocol opaque (0 elsewhere).
    pub opaque: u32,
}

/// A correct reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A get found the key's value.
    Hit,
    /// A get found nothing.
    Miss,
    /// A set was stored.
    Stored,
    /// A counter's new value.
    Counter(u64),
    /// A rate limiter allowed.
    Allowed,
    /// A rate limiter denied.
    Denied,
}

/// The result of looking at the start of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The reply has not fully arrived.
    Incomplete,
    /// One reply of `len` bytes: correct, or wrong with the reason.
    Done {
        /// Bytes the reply takes.
        len: usize,
        /// The verdict on it.
        result: Result<Outcome, String>,
    },
    /// The end of the reply cannot be found: the stream is out of step.
    Desync(String),
}

impl Check {
    /// A reply of `len` bytes with its verdict.
    pub fn done(len: usize, result: Result<Outcome, String>) -> Check {
        Check::Done { len, result }
    }
}

/// Per-connection encoder and checker.
#[derive(Debug)]
pub struct Codec {
    /// The shared spec.
    pub spec: Arc<Spec>,
    /// Scratch for a key name.
    key: Vec<u8>,
    /// Scratch for a value or an expected reply.
    scratch: Vec<u8>,
    /// Expected-reply scratch for the project's own encoders.
    expected: BytesMut,
    /// Request frame scratch for the project's own binary encoder.
    frame: Vec<u8>,
    /// Next binary opaque / sliding-log member sequence.
    seq: u32,
    /// Connection number (makes sliding-log members unique).
    conn: u32,
}

impl Codec {
    /// A codec for connection number `conn`.
    pub fn new(spec: Arc<Spec>, conn: u32) -> Codec {
        Codec {
            spec,
            key: Vec::with_capacity(64),
            scratch: Vec::with_capacity(256),
            expected: BytesMut::with_capacity(256),
            frame: Vec::with_capacity(256),
            seq: 0,
            conn,
        }
    }

    fn make_key(&mut self, idx: u64) {
        self.key.clear();
        crate::keys::write_key(
            &mut self.key,
            &self.spec.key_prefix,
            idx,
            self.spec.key_size,
        );
    }

    fn make_value(&mut self, idx: u64) {
        self.scratch.clear();
        if self.spec.zero_values {
            self.scratch.push(b'0');
        } else {
            crate::keys::write_value(&mut self.scratch, idx, self.spec.value_size);
        }
    }

    /// Appends the request `kind` on key `idx` to `out`, and returns what its reply must be.
    pub fn encode(&mut self, kind: OpKind, idx: u64, out: &mut BytesMut) -> Expect {
        self.make_key(idx);
        if kind == OpKind::Set {
            self.make_value(idx);
        }
        self.seq = self.seq.wrapping_add(1);
        let spec = &*self.spec;
        let (key, value) = (&self.key[..], &self.scratch[..]);
        match spec.protocol {
            Protocol::Text => text::encode(spec, kind, key, value, out),
            Protocol::Meta => meta::encode(spec, kind, key, value, out),
            Protocol::Binary => {
                binary::encode(spec, kind, key, value, self.seq, &mut self.frame, out)
            }
            Protocol::Redis => {
                resp::encode(spec, kind, key, value, (self.conn, self.seq), out);
            }
        }
        Expect {
            kind,
            key: idx,
            opaque: self.seq,
        }
    }

    /// Checks the reply at the start of `buf` against `e`.
    pub fn check(&mut self, buf: &[u8], e: &Expect) -> Check {
        self.make_key(e.key);
        let spec = &*self.spec;
        match spec.protocol {
            Protocol::Text => text::check(spec, e, &self.key, &mut self.expected, buf),
            Protocol::Meta => meta::check(spec, e, buf),
            Protocol::Binary => binary::check(spec, e, buf),
            Protocol::Redis => resp::check(spec, e, buf),
        }
    }
}

/// At most this many bytes of a wrong reply are quoted in its error message.
const QUOTE: usize = 80;

/// A short printable rendering of reply bytes for an error message.
pub fn quote(b: &[u8]) -> String {
    let s: String = b[..b.len().min(QUOTE)].escape_ascii().to_string();
    if b.len() > QUOTE {
        format!("\"{s}...\"")
    } else {
        format!("\"{s}\"")
    }
}

/// Parses an unsigned decimal (no sign, no spaces, at most 20 digits).
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Checks the numbers of a rate-limit verdict against the spec: the reported capacity, the
/// remaining tokens within it, and a retry-after that is 0 exactly when allowed.
pub fn check_verdict(
    spec: &Spec,
    allowed: bool,
    capacity: u64,
    remaining: u64,
    retry_ms: u64,
) -> Result<Outcome, String> {
    let want = spec.rl_capacity();
    if capacity != want {
        return Err(format!("rate-limit capacity {capacity}, expected {want}"));
    }
    if remaining > capacity {
        return Err(format!("remaining {remaining} over capacity {capacity}"));
    }
    match (allowed, retry_ms) {
        (true, 0) => Ok(Outcome::Allowed),
        (true, r) => Err(format!("allowed with retry-after {r} ms")),
        (false, 0) => Err("denied with retry-after 0".to_string()),
        (false, _) => Ok(Outcome::Denied),
    }
}
