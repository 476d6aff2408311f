//! The `--metrics ADDR` endpoint: `GET /metrics` (and `HEAD`) over plain HTTP/1.1, answering
//! the Prometheus text exposition of the stats ([`crate::metrics`]).
//!
//! Each scrape is one small task: it reads the request head (at most [`MAX_HEAD`] bytes,
//! within [`READ_TIMEOUT`]), answers once with `Connection: close`, and closes (after reading
//! at most 64 KiB more, for up to 2 s, while the client closes its side). At most
//! [`MAX_SCRAPES`] scrapes run at once; a connection beyond that is closed unanswered, so a
//! client that opens many connections or never finishes its request holds nothing more.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::stats_cmd::{self, StatsReport};
use super::Context;
use crate::metrics::exposition::CONTENT_TYPE;
use crate::metrics::{render, Reports};
use crate::protocol::StatsKind;
use crate::stats::Stat;

/// Most bytes of a request head (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// Most scrapes served at once.
pub const MAX_SCRAPES: usize = 8;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After the response: reads of at most 1 KiB, and how long, the client gets to close.
const DRAIN_READS: usize = 64;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts scrapes on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // busy: dropping the socket closes it
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = scrape(sock, &ctx).await {
                tracing::debug!("metrics: scrape failed: {e}");
            }
            drop(slot);
        });
    }
}

/// Serves one connection: one request, one response, close.
async fn scrape(mut sock: TcpStream, ctx: &Context) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let route = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut sock, &mut head)).await {
        Err(_) => Route::Error(408, "Request Timeout"),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::TooLarge)) => Route::Error(431, "Request Header Fields Too Large"),
        Ok(Ok(Head::Complete)) => route(&head),
    };
    let response = match route {
        Route::Metrics { head_only } => {
            let body = metrics_text(ctx);
            let headers = format!("Content-Type: {CONTENT_TYPE}\r\n");
            response(200, "OK", &headers, body.as_bytes(), head_only)
        }
        Route::Error(status, reason) => {
            let body = format!("{status} {reason}\n");
            let mut headers = String::from("Content-Type: text/plain; charset=utf-8\r\n");
            if status == 405 {
                headers.push_str("Allow: GET, HEAD\r\n");
            }
            response(status, reason, &headers, body.as_bytes(), false)
        }
    };
    sock.write_all(&response).await?;
    sock.shutdown().await?;
    // Read what the client still sends (a head cut at MAX_HEAD, a body) until it closes, a
    // little while at most: closing with unread input would reset the connection and could
    // destroy the response before the client reads it.
    let mut sink = [0u8; 1024];
    let drain = async {
        for _ in 0..DRAIN_READS {
            if sock.read(&mut sink).await? == 0 {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    Ok(())
}

/// How reading a request head ended.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// A blank line ended it.
    Complete,
    /// [`MAX_HEAD`] bytes without a blank line.
    TooLarge,
    /// The client closed first.
    Closed,
}

async fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Head> {
    let mut chunk = [0u8; 1024];
    loop {
        if head_end(buf).is_some() {
            return Ok(Head::Complete);
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let want = chunk.len().min(MAX_HEAD - buf.len());
        let n = sock.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Where the head ends: after the first blank line (`\r\n\r\n`, or `\n\n` from a lax client).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// The metrics (`HEAD`: headers only).
    Metrics {
        /// A `HEAD` request.
        head_only: bool,
    },
    /// An error status and its reason phrase.
    Error(u16, &'static str),
}

/// Routes a complete request head by its request line.
fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Error(400, "Bad Request");
    };
    if !version.starts_with(b"HTTP/1.") {
        return Route::Error(400, "Bad Request");
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Route::Error(405, "Method Not Allowed"),
    };
    if path != b"/metrics" {
        return Route::Error(404, "Not Found");
    }
    Route::Metrics { head_only }
}

/// A complete response that closes the connection (`headers`: complete header lines).
fn response(status: u16, reason: &str, headers: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        r.extend_from_slice(body);
    }
    r
}

/// The exposition of the server's stats now.
pub fn metrics_text(ctx: &Context) -> String {
    let pairs = |kind| match stats_cmd::run(ctx, kind) {
        StatsReport::Pairs(p) => p,
        _ => Vec::<Stat>::new(),
    };
    let general = pairs(StatsKind::General);
    let settings = pairs(StatsKind::Settings);
    let items = pairs(StatsKind::Items);
    let slabs = pairs(StatsKind::Slabs);
    let ratelimit = stats_cmd::ratelimit_report(ctx);
    render(&Reports {
        general: &general,
        settings: &settings,
        items: &items,
        slabs: &slabs,
        ratelimit: &ratelimit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::Error(404, "Not Found"));
        assert_eq!(
            r("POST /metrics HTTP/1.1\r\n\r\n"),
            Route::Error(405, "Method Not Allowed")
        );
        assert_eq!(r("GET /metrics\r\n\r\n"), Route::Error(400, "Bad Request"));
        assert_eq!(
            r("GET /metrics SPDY/3\r\n\r\n"),
            Route::Error(400, "Bad Request")
        );
        assert_eq!(r("\r\n\r\n"), Route::Error(400, "Bad Request"));
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn responses_close_and_carry_their_length() {
        let ct = format!("Content-Type: {CONTENT_TYPE}\r\n");
        let r = response(200, "OK", &ct, b"m 1\n", false);
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
              Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"
        );
        let h = response(
            405,
            "Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            b"x",
            true,
        );
        assert!(h.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
        assert!(h.ends_with(b"Content-Length: 1\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn a_scrape_shows_what_the_requests_did() {
        use crate::config::Config;
        use crate::ratelimit::policy::Policies;
        use crate::server::conn::Driver;
        use crate::server::text::TextSession;

        let ctx = Context::for_tests(Config::default());
        let mut p =
            Policies::parse("[policy.free]\nlimits = [ { limit = 2, period = \"1h\" } ]").unwrap();
        p.assign_rows(|name| ctx.limit_stats.policies.row(name));
        *ctx.policies.write() = Arc::new(p);
        let mut d = Driver::new(TextSession::new(&ctx));
        let (out, _) = d.feed_all(
            b"ratelimit u:1 @free\r\nratelimit u:1 @free\r\nratelimit u:1 @free\r\n\
              ratelimit ip:9 5 1m\r\nratelimit u:2 @nope\r\n",
        );
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3 * 3 + 2);
        let text = metrics_text(&ctx);
        for want in [
            "memcached_up 1",
            "ratecache_ratelimit_decisions_total{result=\"allowed\"} 3",
            "ratecache_ratelimit_decisions_total{result=\"denied\"} 1",
            "ratecache_ratelimit_errors_total 1",
            "ratecache_ratelimit_unknown_policy_total 1",
            "ratecache_ratelimit_policy_decisions_total{policy=\"free\",result=\"allowed\"} 2",
            "ratecache_ratelimit_policy_keys{policy=\"free\"} 1",
            "ratecache_ratelimit_prefix_decisions_total{prefix=\"u\",result=\"denied\"} 1",
            "ratecache_ratelimit_prefix_keys{prefix=\"ip\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "{want} missing from\n{text}"
            );
        }
    }
}
