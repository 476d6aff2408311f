//! The rate-limit argument parsers (`ratelimit`, `ratelimit_all` and its limit lines, `ml`,
//! periods). The first byte picks the mode:
//! - even: the rest is a raw line given to every parser; accepted limits must satisfy the
//!   spec's ranges, agree with the tokens they came from, survive a round trip through their
//!   canonical form and be accepted alike by the binary protocol; refusals carry known errors;
//!   the parse through `parse_command` equals the direct one; periods match a reference parser.
//! - odd: the rest chooses numbers (biased to the edges of each range) that are written as a
//!   `ratelimit` line, an `ml` line and a limit line: all three accept exactly when the spec's
//!   reference rules hold, with the parameters written, and otherwise name a violated rule.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ratecache::protocol::limits::{
    parse_limit_line, parse_meta_limit, parse_ratelimit, parse_ratelimit_all, Target,
};
use ratecache::protocol::text::parse_command;
use ratecache::protocol::{Reply, Request};
use ratecache::ratelimit::{parse_period, Algorithm, Limit, Mode, Params};
use ratecache_fuzz::limit::{
    check_binary_agrees, check_error, check_params, reference_period, violations, MAX_PERIOD_NS,
};
use ratecache_fuzz::text::check_request;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        raw(rest);
    } else {
        let _ = structured(&mut Unstructured::new(rest));
    }
});

/// memcached's tokenizer: the line ends at a NUL, tokens are split on spaces.
fn tokens(line: &[u8]) -> Vec<&[u8]> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    line.split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect()
}

fn decimal(tok: &[u8]) -> Option<u64> {
    (!tok.is_empty() && tok.iter().all(u8::is_ascii_digit)).then(|| {
        tok.iter().fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
    })
}

fn mode_keyword(m: Mode) -> Option<&'static [u8]> {
    match m {
        Mode::Consume => None,
        Mode::Peek => Some(b"peek"),
        Mode::Refund => Some(b"refund"),
    }
}

/// The canonical `ratelimit` tokens of an accepted limit.
fn canonical(l: &Limit<'_>, mode: Mode) -> Vec<Vec<u8>> {
    let p = &l.params;
    let mut t = vec![
        l.key.to_vec(),
        p.limit.to_string().into_bytes(),
        format!("{}ms", p.period_ns / 1_000_000).into_bytes(),
        p.burst.to_string().into_bytes(),
        p.cost.to_string().into_bytes(),
        l.algorithm.keyword().as_bytes().to_vec(),
    ];
    t.extend(mode_keyword(mode).map(<[u8]>::to_vec));
    t
}

fn raw(line: &[u8]) {
    assert_eq!(
        parse_period(line),
        reference_period(line),
        "period {line:?}"
    );
    let limits = Default::default();
    let toks = tokens(line);
    let noreply = toks.last() == Some(&&b"noreply"[..]);
    let args = &toks[..toks.len() - usize::from(noreply)];

    let single = parse_ratelimit(args, noreply);
    check_request(&single, &limits);
    match &single {
        Request::RateLimit {
            target: Target::Explicit(l),
            mode,
            noreply: n,
            ..
        } => {
            assert_eq!(*n, noreply);
            assert_eq!(l.key, args[0]);
            assert_eq!(Some(u64::from(l.params.limit)), decimal(args[1]));
            assert_eq!(Ok(l.params.period_ns), reference_period(args[2]));
            let canon = canonical(l, *mode);
            let canon: Vec<&[u8]> = canon.iter().map(Vec::as_slice).collect();
            assert_eq!(parse_ratelimit(&canon, noreply), single, "round trip");
            check_binary_agrees(l.key, l.algorithm, &l.params, *mode);
        }
        Request::RateLimit {
            key,
            target: Target::Policy { name, .. },
            ..
        } => {
            assert_eq!((*key, *name), (args[0], &args[1][1..]));
        }
        Request::LimitError { noreply: n, .. } => assert_eq!(*n, noreply),
        other => panic!("ratelimit parsed as {other:?}"),
    }
    if toks.len() <= 21 {
        let mut cmd = b"ratelimit ".to_vec();
        cmd.extend_from_slice(line);
        assert_eq!(parse_command(&cmd), single, "parse_command disagrees");
    }

    match parse_ratelimit_all(args, noreply) {
        Request::RateLimitAll { lines, .. } => assert!(lines.is_empty()),
        Request::LimitError { reply, .. } => check_error(&reply),
        other => panic!("ratelimit_all parsed as {other:?}"),
    }

    // A limit line is a `ratelimit` argument list without modes (the body of ratelimit_all
    // is not cut at a NUL).
    let all_toks: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    match parse_limit_line(line) {
        Ok(l) => {
            let single = parse_ratelimit(&all_toks, false);
            let expected = Request::RateLimit {
                key: l.key,
                target: Target::Explicit(l),
                mode: Mode::Consume,
                noreply: false,
            };
            assert_eq!(single, expected, "limit line and ratelimit disagree");
        }
        Err(reply) => check_error(&reply),
    }

    let meta = parse_meta_limit(&toks);
    check_request(&meta, &limits);
    let mut cmd = b"ml ".to_vec();
    cmd.extend_from_slice(line);
    assert_eq!(parse_command(&cmd), meta, "parse_command disagrees on ml");
    if let Request::MetaLimit(m) = &meta {
        if !m.base64 {
            assert_eq!(&m.key[..], toks[0]);
        }
        let canon = meta_line(&m.key, m.algorithm, &m.params, m.mode);
        match parse_meta_limit(&canon.iter().map(Vec::as_slice).collect::<Vec<_>>()) {
            Request::MetaLimit(r) => assert_eq!(
                (r.params, r.algorithm, r.mode),
                (m.params, m.algorithm, m.mode)
            ),
            other => panic!("ml round trip: {other:?}"),
        }
        check_binary_agrees(&m.key, m.algorithm, &m.params, m.mode);
    }
}

/// The `ml` tokens (after the command) for these parameters.
fn meta_line(key: &[u8], alg: Algorithm, p: &Params, mode: Mode) -> Vec<Vec<u8>> {
    let a = ["G", "F", "S"][usize::from(alg.code())];
    let m = ["C", "P", "R"][usize::from(mode.code())];
    vec![
        key.to_vec(),
        format!("R{}", p.limit).into_bytes(),
        format!("W{}ms", p.period_ns / 1_000_000).into_bytes(),
        format!("B{}", p.burst).into_bytes(),
        format!("D{}", p.cost).into_bytes(),
        format!("A{a}").into_bytes(),
        format!("M{m}").into_bytes(),
    ]
}

/// A number near the edges of the u32 range, or near `anchor`.
fn number(u: &mut Unstructured<'_>, anchor: u64) -> Result<u64> {
    let small = u64::from(u.int_in_range(0u8..=3)?);
    Ok(match u.int_in_range(0u8..=6)? {
        0 => small,
        1 => u64::from(u32::MAX) - small,
        2 => u64::from(u32::MAX) + 1 + small,
        3 => u64::from(u.arbitrary::<u32>()?),
        4 => u.arbitrary::<u64>()?,
        5 => anchor.saturating_add(small),
        _ => anchor.saturating_sub(small),
    })
}

fn structured(u: &mut Unstructured<'_>) -> Result<()> {
    let key = format!("k{}", u.arbitrary::<u16>()?);
    let limit = number(u, 10)?;
    let (unit, unit_ns) = *u.choose(&[
        ("", 1_000_000_000u64),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ])?;
    let period = number(u, MAX_PERIOD_NS / unit_ns)?;
    let period_tok = format!("{period}{unit}");
    let (with_burst, with_cost) = (u.arbitrary::<bool>()?, u.arbitrary::<bool>()?);
    let burst = if with_burst { number(u, limit)? } else { 0 };
    let cost = if with_burst && with_cost {
        number(u, if burst == 0 { limit } else { burst })?
    } else {
        1
    };
    let alg = *u.choose(&[Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding])?;
    let mode = *u.choose(&[Mode::Consume, Mode::Peek, Mode::Refund])?;
    let period_ns = reference_period(period_tok.as_bytes()).ok();
    let broken = violations(limit, period_ns, burst, cost, alg);
    let expected = Params {
        limit: limit as u32,
        period_ns: period_ns.unwrap_or(0),
        burst: burst as u32,
        cost: cost as u32,
    };
    let expect_error = |reply: &Reply, what: &str| match reply {
        Reply::ClientError(msg) => assert!(
            broken.contains(msg),
            "{what}: {msg:?}, but the violations are {broken:?}"
        ),
        other => panic!("{what}: {other:?}"),
    };

    let mut toks = vec![key.clone(), limit.to_string(), period_tok.clone()];
    if with_burst {
        toks.push(burst.to_string());
        if with_cost {
            toks.push(cost.to_string());
        }
    }
    let limit_line = format!("{} {}", toks.join(" "), alg.keyword());
    let mut keywords = vec![alg.keyword().to_string()];
    keywords.extend(mode_keyword(mode).map(|k| String::from_utf8_lossy(k).into_owned()));
    if u.arbitrary::<bool>()? {
        keywords.reverse();
    }
    toks.extend(keywords);
    let toks: Vec<&[u8]> = toks.iter().map(|t| t.as_bytes()).collect();
    match parse_ratelimit(&toks, false) {
        Request::RateLimit {
            target: Target::Explicit(l),
            mode: m,
            ..
        } if broken.is_empty() => {
            assert_eq!((l.params, l.algorithm, m), (expected, alg, mode));
            check_params(&l.params, alg);
            check_binary_agrees(l.key, alg, &l.params, mode);
        }
        Request::LimitError { reply, .. } if !broken.is_empty() => {
            expect_error(&reply, "ratelimit")
        }
        other => panic!("ratelimit {toks:?}: {other:?}, violations {broken:?}"),
    }

    match parse_limit_line(limit_line.as_bytes()) {
        Ok(l) if broken.is_empty() => {
            assert_eq!((l.params, l.algorithm), (expected, alg))
        }
        Err(reply) if !broken.is_empty() => expect_error(&reply, "limit line"),
        other => panic!("limit line {limit_line:?}: {other:?}, violations {broken:?}"),
    }

    let a = ["G", "F", "S"][usize::from(alg.code())];
    let m = ["C", "P", "R"][usize::from(mode.code())];
    let mut meta = vec![
        key.clone(),
        format!("R{limit}"),
        format!("W{period_tok}"),
        format!("A{a}"),
        format!("M{m}"),
    ];
    if with_burst {
        meta.push(format!("B{burst}"));
    }
    if with_burst && with_cost {
        meta.push(format!("D{cost}"));
    }
    let meta: Vec<&[u8]> = meta.iter().map(|t| t.as_bytes()).collect();
    match parse_meta_limit(&meta) {
        Request::MetaLimit(r) if broken.is_empty() => {
            assert_eq!((r.params, r.algorithm, r.mode), (expected, alg, mode))
        }
        Request::LimitError { reply, .. } if !broken.is_empty() => expect_error(&reply, "ml"),
        other => panic!("ml {meta:?}: {other:?}, violations {broken:?}"),
    }
    Ok(())
}
