//! ratecache: a memcached-compatible cache server with atomic server-side rate limiting.
//!
//! Data flows one way: bytes -> [`protocol`] (Request) -> [`store`] -> Response -> bytes.
//! The protocol layer never touches the store, the store never sees wire bytes, and the
//! [`server`] only moves bytes and owns connections.

pub mod clock; // the clock trait: coarse real clock, mock clock for tests
pub mod config; // memcached-compatible command line flags and limits
pub mod limit_stats; // rate-limit counters per policy and key prefix, `stats ratelimit`
pub mod limiter; // rate-limit state apart from cache data: own budget, lock-free decisions
pub mod logging; // the log level: -v flags and the verbosity command
pub mod metrics; // the Prometheus text exposition of the stats (`--metrics ADDR`)
pub mod numeric; // C-compatible decimal parsing shared by protocol and store
pub mod persist; // warm restarts: items and rate-limit states saved to and restored from -e FILE
pub mod protocol; // request/response model and the text protocol codec
pub mod ratelimit; // rate-limit algorithms: pure math over state + time
pub mod server; // listeners, connection loop, command dispatch, shutdown
pub mod stats; // global counters rendered by the `stats` commands
pub mod store; // sharded item store: slab classes, LRU, timing wheel

/// The memcached version whose behaviour ratecached reproduces (reported by `version`).
pub const MEMCACHED_VERSION: &str = "1.6.18";
