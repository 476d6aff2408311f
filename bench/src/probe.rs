//! Queries to a server outside the measured load: loading the Redis scripts, counting what the
//! server holds (`stats`, `DBSIZE`) and watching that count fall after a fill with a TTL.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{resp, Protocol, Workload};
use crate::report::Expiry;
use crate::runner::{connect, Target};

/// Sends one RESP command and reads one reply value, rendered for the caller.
async fn redis_call(s: &mut TcpStream, args: &[&[u8]]) -> Result<resp::Owned, String> {
    let mut out = BytesMut::new();
    resp::put_command(&mut out, args);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some((v, _)) = resp::parse(&buf)? {
            return Ok(resp::Owned::from(&v));
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut buf))
            .await
            .map_err(|_| "no reply".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
    }
}

/// The `stats` line that counts what a workload leaves on a memcached-protocol server:
/// `ratelimit_keys` (live rate-limit subjects) after `rl-fill`, `curr_items` otherwise.
pub fn held_stat(workload: Workload) -> &'static str {
    if workload == Workload::RlFill {
        "ratelimit_keys"
    } else {
        "curr_items"
    }
}

/// The number of items the server holds: the `stats` line `stat` (see [`held_stat`]), or
/// Redis' DBSIZE (every key, whatever `stat` says).
pub async fn count_items(s: &mut TcpStream, protocol: Protocol, stat: &str) -> Result<u64, String> {
    if protocol == Protocol::Redis {
        return match redis_call(s, &[b"DBSIZE"]).await? {
            resp::Owned::Int(n) => Ok(n.max(0) as u64),
            other => Err(format!("DBSIZE answered {other:?}")),
        };
    }
    s.write_all(b"stats\r\n").await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        if buf.ends_with(b"END\r\n") {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut buf))
            .await
            .map_err(|_| "no reply to stats".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
    }
    parse_stat(&buf, stat).ok_or_else(|| format!("no STAT {stat}"))
}

/// The value of the line `STAT <name> <n>` of a `stats` reply.
pub fn parse_stat(stats: &[u8], name: &str) -> Option<u64> {
    stats.split(|&b| b == b'\n').find_map(|l| {
        let rest = l.strip_prefix(b"STAT ")?.strip_prefix(name.as_bytes())?;
        let v = rest.strip_prefix(b" ")?;
        crate::codec::parse_u64(v.strip_suffix(b"\r").unwrap_or(v))
    })
}

/// Loads the fixed-window and sliding-log scripts: their SHA1s, in that order.
pub async fn load_scripts(addr: &str) -> Result<(String, String), String> {
    let mut s = connect(addr).await.map_err(|e| e.to_string())?;
    let mut sha = Vec::new();
    for script in [resp::FIXED_WINDOW_LUA, resp::SLIDING_LOG_LUA] {
        match redis_call(&mut s, &[b"SCRIPT", b"LOAD", script.as_bytes()]).await? {
            resp::Owned::Bulk(Some(b)) if b.len() == 40 => {
                sha.push(String::from_utf8_lossy(&b).into_owned())
            }
            other => return Err(format!("answered {other:?}")),
        }
    }
    Ok((sha[0].clone(), sha[1].clone()))
}

/// Polls the item count until it is back to `base` (the count before the load: 0 on a fresh
/// server) or `bound` has passed since the load ended.
pub async fn watch_expiry(
    target: &Target,
    ttl: u32,
    loaded_at: Instant,
    bound: Duration,
    base: u64,
) -> Expiry {
    let mut e = Expiry {
        ttl_s: ttl,
        bound_s: bound.as_secs_f64(),
        items_before_load: base,
        zero_after_load_ms: None,
        items_after_load: None,
        zero_after_ttl_ms: None,
        items_at_end: None,
        samples: Vec::new(),
        error: None,
    };
    let mut s = match connect(&target.addr).await {
        Ok(s) => s,
        Err(err) => {
            e.error = Some(err.to_string());
            return e;
        }
    };
    let stat = held_stat(target.workload);
    let mut last_sample = None;
    loop {
        let n = match count_items(&mut s, target.protocol, stat).await {
            Ok(n) => n,
            Err(err) => {
                e.error = Some(err);
                return e;
            }
        };
        let now = Instant::now();
        let since_load = now.duration_since(loaded_at).as_secs_f64();
        if e.items_after_load.is_none() {
            e.items_after_load = Some(n);
        }
        e.items_at_end = Some(n);
        if last_sample.is_none_or(|t: Instant| now.duration_since(t) >= Duration::from_millis(250))
        {
            e.samples.push((since_load, n));
            last_sample = Some(now);
        }
        if n <= base {
            e.samples.push((since_load, n));
            let after_load = now.duration_since(loaded_at).as_secs_f64() * 1000.0;
            e.zero_after_load_ms = Some(after_load);
            e.zero_after_ttl_ms = Some(after_load - f64::from(ttl) * 1000.0);
            return e;
        }
        if now.duration_since(loaded_at) >= bound {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_are_found_by_their_exact_name() {
        let stats = b"STAT pid 9\r\nSTAT curr_items 12\r\nSTAT ratelimit_keys_x 5\r\n\
                      STAT ratelimit_keys 1000000\r\nSTAT ratelimit_bytes 44000000\r\nEND\r\n";
        assert_eq!(parse_stat(stats, "curr_items"), Some(12));
        assert_eq!(parse_stat(stats, "ratelimit_keys"), Some(1_000_000));
        assert_eq!(parse_stat(stats, "ratelimit_bytes"), Some(44_000_000));
        assert_eq!(parse_stat(stats, "ratelimit"), None);
        assert_eq!(
            parse_stat(b"STAT curr_items x\r\nEND\r\n", "curr_items"),
            None
        );
    }

    #[test]
    fn rl_fill_counts_limiter_subjects() {
        assert_eq!(held_stat(Workload::RlFill), "ratelimit_keys");
        assert_eq!(held_stat(Workload::Fill), "curr_items");
    }
}
