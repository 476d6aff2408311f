//! ratecache-bench: a closed-loop load generator for memcached-compatible servers and Redis.
//!
//! Requests are encoded per protocol in [`codec`], every reply is checked there (a wrong reply
//! is an error, counted and reported), connections run in [`runner`], and [`report`] and
//! [`plot`] turn the results into a table, JSON and a percentile plot.

pub mod cli; // command line: servers, protocol, workload, load shape
pub mod codec; // request encoders and reply checkers: text, meta, binary, RESP
pub mod keys; // key names, popularity (uniform, zipf) and the PRNG
pub mod plot; // latency percentile curves of all servers in one PNG
pub mod probe; // out-of-load queries: scripts, stats / DBSIZE counts, the expiry watch
pub mod procfs; // server CPU time and RSS from /proc
pub mod report; // results, table, ratios, JSON, markdown
pub mod runner; // connections, pipelining, budget, histograms, progress
