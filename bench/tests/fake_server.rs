//! The bench against fake servers on 127.0.0.1: a correct one reports no error, every kind of
//! wrong one is reported (counted in `errors`, with a sample message), never ignored.

use std::time::Duration;

use ratecache_bench::codec::{Protocol, Spec, Workload};
use ratecache_bench::keys::KeyDist;
use ratecache_bench::report::{Report, ServerResult};
use ratecache_bench::runner::{run_target, Load, Target};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the fake text server answers one request line (`None`: close the connection).
type Answer = fn(&str) -> Option<String>;

async fn fake_text_server(answer: Answer) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    if let Some(len) = cmd
                        .strip_prefix("set ")
                        .and_then(|rest| rest.split(' ').nth(3))
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        let mut data = vec![0; len + 2];
                        r.read_exact(&mut data).await.unwrap();
                    }
                    match answer(&cmd) {
                        Some(reply) => {
                            if w.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            });
        }
    });
    addr
}

fn load(requests: u64) -> Load {
    Load {
        connections: 4,
        pipeline: 4,
        keys: 50,
        dist: KeyDist::Uniform,
        set_share: 0.3,
        duration: Some(Duration::from_secs(10)),
        requests: Some(requests),
        seed: 7,
        timeout: Duration::from_millis(500),
        prefill: false,
        watch_expiry: None,
        progress: false,
    }
}

async fn bench(addr: &str, workload: Workload, requests: u64) -> ServerResult {
    let target = Target {
        name: "fake".into(),
        addr: addr.into(),
        pid: None,
        protocol: Protocol::Text,
        workload,
    };
    run_target(&target, &load(requests), &Spec::default()).await
}

/// The value the bench stores under key:...N (digits 1-9 from the index).
fn value_of(key: &str) -> String {
    let idx: u64 = key.trim_start_matches("key:").parse().unwrap();
    (0..32)
        .map(|i| (b'1' + ((idx + i) % 9) as u8) as char)
        .collect()
}

#[tokio::test]
async fn a_correct_server_has_no_errors() {
    let addr = fake_text_server(|cmd| {
        Some(match cmd.split(' ').collect::<Vec<_>>().as_slice() {
            ["get", key] if key.ends_with('3') => "END\r\n".into(),
            ["get", key] => format!("VALUE {key} 0 32\r\n{}\r\nEND\r\n", value_of(key)),
            ["set", ..] => "STORED\r\n".into(),
            ["incr", ..] => "5\r\n".into(),
            ["ratelimit", ..] => "ALLOWED 100 99 0 10\r\n".into(),
            _ => "ERROR\r\n".into(),
        })
    })
    .await;
    let r = bench(&addr, Workload::Getset, 400).await;
    assert_eq!((r.ops, r.errors), (400, 0), "{:?}", r.error_samples);
    assert!(r.hits > 0 && r.misses > 0 && r.stored > 0);
    let r = bench(&addr, Workload::Ratelimit, 100).await;
    assert_eq!((r.errors, r.allowed), (0, 100));
    let r = bench(&addr, Workload::Incr, 100).await;
    assert_eq!((r.errors, r.counters), (0, 100));
}

#[tokio::test]
async fn wrong_values_are_reported() {
    // Answers every get with the value of another key.
    let addr = fake_text_server(|cmd| {
        Some(match cmd.split(' ').collect::<Vec<_>>().as_slice() {
            ["get", key] => format!("VALUE {key} 0 32\r\n{}\r\nEND\r\n", value_of("key:1")),
            _ => "STORED\r\n".into(),
        })
    })
    .await;
    let r = bench(&addr, Workload::Getset, 400).await;
    assert_eq!(r.ops, 400);
    assert!(r.errors > 200 && r.errors < 400, "{}", r.errors);
    assert!(r.error_samples[0].contains("get"), "{:?}", r.error_samples);
    let report = Report::new("t".into(), "cmd".into(), vec![r]);
    assert!(report.errors() > 0);
    assert!(report.table().contains("fake error: get"));
    assert!(report.markdown().contains("Errors seen"));
}

#[tokio::test]
async fn error_lines_and_bad_verdicts_are_reported() {
    let addr = fake_text_server(|cmd| {
        Some(if cmd.starts_with("ratelimit") {
            "ALLOWED 100 99 250 10\r\n".into()
        } else {
            "SERVER_ERROR out of memory\r\n".into()
        })
    })
    .await;
    let r = bench(&addr, Workload::Ratelimit, 50).await;
    assert_eq!((r.ops, r.errors, r.allowed), (50, 50, 0));
    assert_eq!(r.ops_per_sec, 0.0, "wrong replies are not throughput");
    assert!(
        r.error_samples[0].contains("retry-after"),
        "{:?}",
        r.error_samples
    );
    let r = bench(&addr, Workload::Incr, 50).await;
    assert_eq!(r.errors, 50);
    assert!(r.error_samples[0].contains("SERVER_ERROR"));
}

#[tokio::test]
async fn a_server_that_hangs_up_or_stalls_is_reported() {
    let addr = fake_text_server(|_| None).await;
    let r = bench(&addr, Workload::Getset, 100).await;
    assert!(r.errors > 0, "{r:?}");
    assert!(r.error_samples.iter().any(|s| s.contains("closed")));
    // Answers nothing at all: the connections time out and say so.
    let addr = fake_text_server(|_| Some(String::new())).await;
    let r = bench(&addr, Workload::Getset, 100).await;
    assert!(r.errors > 0);
    assert!(r.error_samples.iter().any(|s| s.contains("no reply")));
}

#[tokio::test]
async fn garbage_desynchronises_and_is_reported() {
    let addr = fake_text_server(|_| Some("VALUE x 0 notanumber\r\n".into())).await;
    let r = bench(&addr, Workload::Getset, 100).await;
    assert!(r.errors > 0);
    assert!(
        r.error_samples.iter().any(|s| s.contains("out of step")),
        "{:?}",
        r.error_samples
    );
}

#[tokio::test]
async fn nobody_listening_is_reported() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let r = bench(&addr, Workload::Getset, 10).await;
    assert!(r.errors > 0 && r.error_samples[0].contains("connect"));
}
