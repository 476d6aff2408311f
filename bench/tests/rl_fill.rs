//! `rl-fill` against fake servers on 127.0.0.1: every subject is decided on exactly once, with
//! ratecached's command or the Redis fixed-window script, and the RSS growth is divided by the
//! subjects the server says it holds (`ratelimit_keys`, `DBSIZE`), not by the requests sent.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratecache_bench::codec::{Protocol, Spec, Workload};
use ratecache_bench::keys::KeyDist;
use ratecache_bench::report::ServerResult;
use ratecache_bench::runner::{run_target, Load, Target};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpListener;

/// The commands a fake server received, one string per command.
type Seen = Arc<Mutex<Vec<String>>>;

const SUBJECTS: u64 = 600;

async fn bench(addr: &str, protocol: Protocol) -> ServerResult {
    let target = Target {
        name: "fake".into(),
        addr: addr.into(),
        // This process: its RSS is read before and after, like a server's.
        pid: Some(std::process::id()),
        protocol,
        workload: Workload::RlFill,
    };
    let load = Load {
        connections: 4,
        pipeline: 8,
        keys: SUBJECTS,
        dist: KeyDist::Uniform,
        set_share: 0.0,
        duration: Some(Duration::from_secs(10)),
        requests: None,
        seed: 3,
        timeout: Duration::from_secs(2),
        prefill: true,
        watch_expiry: None,
        progress: false,
    };
    let spec = Spec {
        key_prefix: Vec::new(),
        rl_limit: 100,
        rl_period_ms: 3_600_000,
        ..Spec::default()
    };
    run_target(&target, &load, &spec).await
}

/// The subject names the bench must use: `rlfill:` and the zero-padded index, 20 bytes.
fn all_subjects() -> HashSet<String> {
    (0..SUBJECTS).map(|i| format!("rlfill:{i:013}")).collect()
}

/// A text server that answers every `ratelimit` with ALLOWED, keeps 16 KiB of written memory
/// per subject (so this process's RSS grows), and reports `held` subjects in `stats` once the
/// fill has decided on all of them (0 before).
async fn fake_ratecached(held: u64) -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let state: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (log, state) = (log.clone(), state.clone());
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let cmd = line.trim_end().to_string();
                    line.clear();
                    let reply = if cmd.starts_with("ratelimit ") {
                        log.lock().unwrap().push(cmd);
                        state.lock().unwrap().push(vec![1; 16 << 10]);
                        "ALLOWED 100 99 0 36000\r\n".to_string()
                    } else if cmd == "stats" {
                        let n = log.lock().unwrap().len() as u64;
                        let keys = if n == SUBJECTS { held } else { 0 };
                        format!("STAT curr_items 0\r\nSTAT ratelimit_keys {keys}\r\nEND\r\n")
                    } else {
                        "ERROR\r\n".to_string()
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Reads one RESP command (an array of bulk strings); None at the end of the stream.
async fn read_command(r: &mut BufReader<OwnedReadHalf>) -> Option<Vec<Vec<u8>>> {
    let mut line = String::new();
    r.read_line(&mut line).await.ok().filter(|&n| n > 0)?;
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut data = vec![0; len + 2];
        r.read_exact(&mut data).await.ok()?;
        data.truncate(len);
        args.push(data);
    }
    Some(args)
}

/// A Redis that loads scripts, answers EVALSHA with an allowed verdict and counts in DBSIZE
/// the distinct keys it was asked about.
async fn fake_redis() -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                while let Some(args) = read_command(&mut r).await {
                    let a: Vec<String> = args
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect();
                    let reply = match a.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                        ["SCRIPT", "LOAD", _] => format!("$40\r\n{}\r\n", "f".repeat(40)),
                        ["EVALSHA", _, "1", ..] => {
                            log.lock().unwrap().push(a[1..].join(" "));
                            "*3\r\n:1\r\n:99\r\n:0\r\n".to_string()
                        }
                        ["DBSIZE"] => {
                            let keys: HashSet<String> =
                                log.lock().unwrap().clone().into_iter().collect();
                            format!(":{}\r\n", keys.len())
                        }
                        _ => "-ERR unknown command\r\n".to_string(),
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn rss_per(r: &ServerResult, held: u64) -> Option<f64> {
    let (a, b) = (r.rss_before?, r.rss_after?);
    Some((b as f64 - a as f64) / held as f64)
}

#[tokio::test]
async fn ratecached_decides_each_subject_once_and_bytes_are_per_held_subject() {
    // The server says it holds 450 of the 600 subjects (it evicted the rest).
    let (addr, seen) = fake_ratecached(450).await;
    let r = bench(&addr, Protocol::Text).await;
    assert_eq!(
        (r.ops, r.errors, r.allowed),
        (SUBJECTS, 0, SUBJECTS),
        "{r:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, SUBJECTS);
    let subjects: HashSet<String> = seen
        .iter()
        .map(|cmd| {
            let parts: Vec<&str> = cmd.split(' ').collect();
            assert_eq!(parts[2..], ["100", "3600000ms"], "{cmd}");
            parts[1].to_string()
        })
        .collect();
    assert_eq!(subjects, all_subjects());
    // The fake holds 600 x 16 KiB: the growth is there, and it is divided by the 450 held.
    assert!(r.rss_after > r.rss_before, "{r:?}");
    assert!(r.rss_bytes_per_item.is_some());
    assert_eq!(r.rss_bytes_per_item, rss_per(&r, 450));
    assert_eq!(r.items_held, Some(450));
}

#[tokio::test]
async fn redis_runs_the_fixed_window_script_once_per_subject() {
    let (addr, seen) = fake_redis().await;
    let r = bench(&addr, Protocol::Redis).await;
    assert_eq!(
        (r.ops, r.errors, r.allowed),
        (SUBJECTS, 0, SUBJECTS),
        "{r:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let subjects: HashSet<String> = seen
        .iter()
        .map(|args| {
            // sha 1 key limit window
            let parts: Vec<&str> = args.split(' ').collect();
            assert_eq!(parts[3..], ["100", "3600000"], "{args}");
            parts[2].to_string()
        })
        .collect();
    assert_eq!(seen.len() as u64, SUBJECTS);
    assert_eq!(subjects, all_subjects());
    assert_eq!(r.rss_bytes_per_item, rss_per(&r, SUBJECTS));
    assert_eq!(r.items_held, Some(SUBJECTS));
}
