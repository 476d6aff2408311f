//! Wire protocols. One request/reply model; `text` decodes memcached's classic text protocol
//! into it and encodes replies. Parsing here knows nothing of sockets or of the store.

pub mod binary;
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
    /// A storage command; `len` value bytes plus `\r\n` follow the line.
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
    /// `ratelimit_all <n>`: `count` limit lines follow the command line.
    RateLimitAll {
        /// Number of limit lines.
        count: usize,
        /// Decide without spending.
        peek: bool,
        /// Suppress the reply.
        noreply: bool,
    },
    /// A meta command (`mg ms md ma`); an `ms` is followed by `datalen` value bytes.
    Meta(meta::MetaRequest<'a>),
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
