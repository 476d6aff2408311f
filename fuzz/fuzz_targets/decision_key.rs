//! Decision keys (`--ratelimit-prefix`): any bytes after the prefix parse without panicking;
//! an accepted key's subject is the non-empty tail of the key; its parameters are the ones
//! the equivalent `ratelimit <subject> <limit> <period> [<burst>] [<algorithm>]` line gives
//! (the spec's "exactly as ratelimit would decide"), and its policy name is the first field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecache::protocol::decision_key::{parse, BadDecisionKey};
use ratecache::protocol::limits::{parse_ratelimit, Target};
use ratecache::protocol::Request;

const PREFIX: &[u8] = b"rl:";

fuzz_target!(|body: &[u8]| {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(body);
    let parsed = match parse(PREFIX, &key) {
        None => panic!("a key under the prefix is always a decision key"),
        Some(Err(BadDecisionKey)) => return,
        Some(Ok(k)) => k,
    };
    assert!(!parsed.subject.is_empty());
    assert!(key.ends_with(parsed.subject));
    // The fields before the subject, without the `/` that ends them.
    let head = &body[..body.len() - parsed.subject.len() - 1];
    let fields: Vec<&[u8]> = head.split(|&b| b == b'/').collect();
    match parsed.target {
        Target::Policy { name, cost } => {
            assert_eq!((fields.as_slice(), cost), (&[name][..], 1));
        }
        Target::Explicit(limit) => {
            assert!((2..=4).contains(&fields.len()), "{fields:?}");
            assert_eq!(limit.key, parsed.subject);
            assert_eq!(limit.params.cost, 1);
            // The same limit as the ratelimit line, when the subject is a line token.
            if parsed.subject.iter().all(|&b| b > b' ' && b != 0x7f) && parsed.subject.len() <= 250 {
                let mut toks = vec![parsed.subject];
                toks.extend(&fields);
                match parse_ratelimit(&toks, false) {
                    Request::RateLimit {
                        target: Target::Explicit(line),
                        ..
                    } => assert_eq!(line, limit),
                    other => panic!("{toks:?}: the line gives {other:?}"),
                }
            }
        }
    }
});
