//! The stats as Prometheus metrics (`--metrics ADDR`, `GET /metrics`): what a scrape shows,
//! built from the same reports as `stats`, `stats settings`, `stats items`, `stats slabs` and
//! `stats ratelimit`, so the two views never disagree.
//!
//! The shared stats carry the names and labels of the Prometheus memcached exporter
//! (prometheus/memcached_exporter), so its dashboards and alerts work unchanged; the
//! rate-limit metrics are `ratecache_ratelimit_*`. docs/ratelimit.md lists them. The HTTP side
//! is [`crate::server::metrics_http`].

mod collect;
#[cfg(test)]
mod collect_tests;
pub mod exposition;

pub use collect::{render, Reports};
