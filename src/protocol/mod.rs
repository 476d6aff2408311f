//! Wire protocols: decoders that own framing and turn a connection's buffered bytes into
//! requests ([`Decode`]), and the encoders of replies. Pure: nothing here knows sockets or the
//! store, so every decoder is tested and fuzzed on byte slices alone.

pub mod binary;
pub mod command;
pub mod decision_key;
pub mod limits;
pub mod meta;
pub mod text;

/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;
/// A command line without `\n` longer than this closes the connection (unless a multi-get).
pub const MAX_LINE_WITHOUT_NEWLINE: usize = 2048;
/// Upper bound on a buffered multi-get line (memcached grows its buffer without limit; we stop
/// a client from making us buffer forever).
pub const MAX_MULTIGET_LINE: usize = 8 << 20;

/// Largest frame a connection buffers without charging it to the memory limit: a request (a
/// value, a long multi-get line) that needs more is reserved against `-m` first.
pub const SMALL_FRAME: usize = 16 * 1024;

/// What a decoder finds at the start of a connection's buffered bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decode<T> {
    /// A complete request.
    Frame(Frame<T>),
    /// Not enough bytes yet: decode again once the buffer holds `need` bytes (always more
    /// than it holds now, and bounded by the decoder's limits).
    Incomplete {
        /// Bytes the buffer must hold.
        need: usize,
        /// The request to run instead when those bytes cannot be buffered (no memory for a
        /// value); `None` when the connection must close then.
        fallback: Option<Frame<T>>,
    },
    /// Close the connection without a reply.
    Close,
}

/// A complete request and the bytes it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T> {
    /// The request, borrowing from the buffer.
    pub req: T,
    /// Bytes of the buffer it used.
    pub len: usize,
    /// Bytes after those to discard unread (a refused value), which may not have arrived yet.
    pub skip: u64,
}

impl<T> Frame<T> {
    /// A frame of `len` bytes with nothing to discard.
    pub fn new(req: T, len: usize) -> Frame<T> {
        Frame { req, len, skip: 0 }
    }
}

/// The store's size rules a decoder applies before it waits for a value, so that a value too
/// large to store is discarded as it streams in instead of being buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest item (`-I`), header and key included.
    pub item_size_max: usize,
    /// Items carry cas uniques (not `-C`), which count in an item's size.
    pub use_cas: bool,
    /// SASL is on (`-S`): the binary SASL opcodes read their data instead of discarding it.
    pub sasl: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            item_size_max: 1 << 20,
            use_cas: true,
            sasl: false,
        }
    }
}

impl DecodeLimits {
    /// True if an item with these lengths and flags may be stored at all.
    pub fn fits(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        crate::store::slab::item_total(key_len, value_len, flags, self.use_cas)
            <= self.item_size_max
    }
}

/// Why a storage command was refused before its value was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The item would exceed the item size limit.
    TooLarge,
    /// No memory could be reserved to receive the value.
    NoMemory,
}

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `set`
    Set,
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `append`
    Append,
    /// `prepend`
    Prepend,
    /// `cas`
    Cas,
}

/// Which `stats` sub-report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsKind {
    /// `stats`
    General,
    /// `stats settings`
    Settings,
    /// `stats items`
    Items,
    /// `stats slabs`
    Slabs,
    /// `stats sizes`
    Sizes,
    /// `stats sizes_enable`
    SizesEnable,
    /// `stats sizes_disable`
    SizesDisable,
    /// `stats conns`
    Conns,
    /// `stats reset`
    Reset,
    /// `stats detail on`
    DetailOn,
    /// `stats detail off`
    DetailOff,
    /// `stats detail dump`
    DetailDump,
    /// `stats cachedump <class> <limit>`
    CacheDump(u32, u32),
    /// `stats ratelimit`: the rate-limit counters per policy and key prefix (ratecached's).
    RateLimit,
}

/// One decoded request. Borrowed from the connection's read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// get/gets/gat/gats: `keys` is the rest of the line, split by [`text::Keys`].
    Get {
        /// Return cas uniques (`gets`, `gats`).
        cas: bool,
        /// New exptime (`gat`, `gats`).
        touch: Option<i32>,
        /// The keys.
        keys: text::Keys<'a>,
    },
    /// get/gets/gat/gats with a key over 250 bytes: `before`, the keys ahead of it, are
    /// fetched (and touched) without replies, as memcached does, then the line is answered
    /// `CLIENT_ERROR bad command line format`.
    GetBadKey {
        /// New exptime (`gat`, `gats`).
        touch: Option<i32>,
        /// The keys before the first one over 250 bytes.
        before: text::Keys<'a>,
    },
    /// A storage command with its value (the decoder checked the `\r\n` after it).
    Store {
        /// Which command.
        kind: StoreKind,
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Client exptime.
        exptime: i32,
        /// Value length.
        len: usize,
        /// Cas unique to compare (`cas` only).
        cas: u64,
        /// Suppress the reply.
        noreply: bool,
        /// The value (empty until [`text::decode`] has framed it).
        data: &'a [u8],
    },
    /// A storage command (`set`..., `ms`) refused before its value was read; the value is
    /// discarded.
    Refused {
        /// The key (decoded for a base64 meta key).
        key: std::borrow::Cow<'a, [u8]>,
        /// Why.
        why: Refusal,
        /// Delete the key's old value too (memcached will not leave it stale after a `set`).
        drop_existing: bool,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `delete`
    Delete {
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// `incr` / `decr`
    Arith {
        /// The key.
        key: &'a [u8],
        /// incr (true) or decr.
        incr: bool,
        /// Amount.
        delta: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `touch`
    Touch {
        /// The key.
        key: &'a [u8],
        /// New exptime.
        exptime: i32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `flush_all [delay]`
    FlushAll {
        /// Delay (an exptime), 0 = now.
        delay: i32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `version`
    Version,
    /// `lru_crawler metadump all|hash|<class>[,<class>...]`: the items' metadata.
    MetaDump {
        /// The slab classes to list, bit `n` for class `n` (every bit for `all`).
        classes: u64,
    },
    /// `verbosity <level>`
    Verbosity {
        /// Level.
        level: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `cache_memlimit <megabytes>`
    CacheMemlimit {
        /// New limit in megabytes.
        megabytes: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `stats ...`
    Stats(StatsKind),
    /// `quit`
    Quit,
    /// `shutdown [graceful]`
    Shutdown {
        /// False for an unknown mode (answered only when shutdown is enabled).
        valid: bool,
        /// `shutdown graceful`: stop as SIGUSR1 does (saving to the `-e` file).
        graceful: bool,
    },
    /// The request is answered with a fixed reply (errors, no-op admin commands).
    Reply {
        /// What to answer.
        reply: Reply,
        /// Suppress it (memcached suppresses even errors once `noreply` was seen).
        noreply: bool,
    },
    /// `ratelimit <key> ...`: one limit, or a named policy.
    RateLimit {
        /// The subject.
        key: &'a [u8],
        /// Explicit parameters or a policy.
        target: limits::Target<'a>,
        /// consume, peek or refund.
        mode: crate::ratelimit::Mode,
        /// Suppress the reply.
        noreply: bool,
    },
    /// `ratelimit_all <n>` with its `count` limit lines.
    RateLimitAll {
        /// Number of limit lines.
        count: usize,
        /// The limit lines, `\n`-terminated (empty until [`text::decode`] has framed them).
        lines: &'a [u8],
        /// Decide without spending.
        peek: bool,
        /// Suppress the reply.
        noreply: bool,
    },
    /// A meta command (`mg ms md ma`); an `ms` with its value. Boxed: it is the largest
    /// request by far, and every request is moved through the decoder and the session.
    Meta(Box<meta::MetaRequest<'a>>),
    /// A rate-limit command refused before a decision (counted in `ratelimit_errors`).
    LimitError {
        /// What to answer.
        reply: Reply,
        /// Suppress it.
        noreply: bool,
    },
    /// `ml <key> R.. W.. ...`: the meta form of `ratelimit`.
    MetaLimit(limits::MetaLimit<'a>),
    /// `me <key>`: the debug line of an item.
    MetaDebug {
        /// The key (decoded).
        key: std::borrow::Cow<'a, [u8]>,
    },
    /// An error answered after which `len` value bytes are discarded.
    Swallow {
        /// The error.
        reply: Reply,
        /// Bytes to discard.
        len: usize,
    },
    /// Close the connection without a reply (HTTP requests, as memcached does).
    Close,
}

/// A reply line that does not carry item data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// `OK`
    Ok,
    /// `RESET`
    Reset,
    /// `END`
    End,
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR <msg>`
    ClientError(&'static str),
    /// `SERVER_ERROR <msg>`
    ServerError(&'static str),
    /// Any other fixed line, sent as is.
    Line(&'static str),
}
