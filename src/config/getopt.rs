//! memcached's command line syntax: a getopt_long(3) emulation (short option string, long
//! options with unambiguous prefixes, in-order processing, getopt's error messages).

use super::{err, ConfigError};

/// memcached's getopt short option string: a letter followed by `:` takes an argument.
pub(super) const SHORT_OPTS: &str = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:";

/// Whether a long option takes an argument (getopt's `has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HasArg {
    No,
    Required,
    Optional,
}

/// memcached's long options in its table order, which getopt follows when it lists the
/// candidates of an ambiguous abbreviation.
pub(super) const LONG_OPTS: &[(&str, HasArg, char)] = &[
    ("unix-mask", HasArg::Required, 'a'),
    ("enable-shutdown", HasArg::No, 'A'),
    ("enable-ssl", HasArg::No, 'Z'),
    ("port", HasArg::Required, 'p'),
    ("unix-socket", HasArg::Required, 's'),
    ("udp-port", HasArg::Required, 'U'),
    ("memory-limit", HasArg::Required, 'm'),
    ("disable-evictions", HasArg::No, 'M'),
    ("conn-limit", HasArg::Required, 'c'),
    ("lock-memory", HasArg::No, 'k'),
    ("help", HasArg::No, 'h'),
    ("license", HasArg::No, 'i'),
    ("version", HasArg::No, 'V'),
    ("enable-coredumps", HasArg::No, 'r'),
    ("verbose", HasArg::Optional, 'v'),
    ("daemon", HasArg::No, 'd'),
    ("listen", HasArg::Required, 'l'),
    ("user", HasArg::Required, 'u'),
    ("pidfile", HasArg::Required, 'P'),
    ("slab-growth-factor", HasArg::Required, 'f'),
    ("slab-min-size", HasArg::Required, 'n'),
    ("threads", HasArg::Required, 't'),
    ("enable-largepages", HasArg::No, 'L'),
    ("max-reqs-per-event", HasArg::Required, 'R'),
    ("disable-cas", HasArg::No, 'C'),
    ("listen-backlog", HasArg::Required, 'b'),
    ("protocol", HasArg::Required, 'B'),
    ("max-item-size", HasArg::Required, 'I'),
    ("enable-sasl", HasArg::No, 'S'),
    ("disable-flush-all", HasArg::No, 'F'),
    ("disable-dumping", HasArg::No, 'X'),
    ("disable-watch", HasArg::No, 'W'),
    ("auth-file", HasArg::Required, 'Y'),
    ("memory-file", HasArg::Required, 'e'),
    ("extended", HasArg::Required, 'o'),
    ("napi-ids", HasArg::Required, 'N'),
    // ratecached's own options (long form only).
    ("policies", HasArg::Required, POLICIES),
    ("ratelimit-prefix", HasArg::Required, RATELIMIT_PREFIX),
    ("metrics", HasArg::Required, METRICS),
    ("log", HasArg::Required, LOG),
];

/// Option letter of `--policies` (it has no short form).
pub(super) const POLICIES: char = '\u{1}';
/// Option letter of `--ratelimit-prefix` (it has no short form).
pub(super) const RATELIMIT_PREFIX: char = '\u{2}';
/// Option letter of `--metrics` (it has no short form).
pub(super) const METRICS: char = '\u{3}';
/// Option letter of `--log` (it has no short form).
pub(super) const LOG: char = '\u{4}';
/// ratecached's own options, which have no short form.
pub(super) const OWN_OPTS: [char; 4] = [POLICIES, RATELIMIT_PREFIX, METRICS, LOG];

/// One command line element as getopt returns it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Arg {
    /// An option (by its short letter) and its argument.
    Opt(char, Option<String>),
    /// A non-option argument.
    Free(String),
}

/// GNU getopt_long over owned arguments, permuting mode: non-options are yielded in place.
pub(super) struct Getopt {
    args: std::vec::IntoIter<String>,
    /// Unread rest of a short option cluster (`vp11211` after the first `-v` of `-vvp11211`).
    cluster: String,
    /// `--` was seen: everything after it is a non-option.
    end: bool,
}

impl Getopt {
    pub(super) fn new(args: Vec<String>) -> Self {
        Getopt {
            args: args.into_iter(),
            cluster: String::new(),
            end: false,
        }
    }

    fn short(&mut self, cluster: &str) -> Result<Arg, ConfigError> {
        let mut chars = cluster.chars();
        let c = chars.next().unwrap_or('-');
        let rest = chars.as_str();
        let Some(at) = SHORT_OPTS.find(c).filter(|_| c != ':') else {
            return Err(err(format!("invalid option -- '{c}'")));
        };
        if !SHORT_OPTS[at + 1..].starts_with(':') {
            self.cluster = rest.to_string();
            return Ok(Arg::Opt(c, None));
        }
        if !rest.is_empty() {
            return Ok(Arg::Opt(c, Some(rest.to_string())));
        }
        match self.args.next() {
            Some(value) => Ok(Arg::Opt(c, Some(value))),
            None => Err(err(format!("option requires an argument -- '{c}'"))),
        }
    }

    fn long(&mut self, body: &str) -> Result<Arg, ConfigError> {
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let (long, has_arg, c) = match LONG_OPTS.iter().find(|o| o.0 == name) {
            Some(&exact) => exact,
            None => {
                // ratecached's own options match only in full, so every abbreviation memcached
                // accepts keeps its meaning.
                let found: Vec<_> = LONG_OPTS
                    .iter()
                    .filter(|o| !OWN_OPTS.contains(&o.2) && o.0.starts_with(name))
                    .collect();
                match found.as_slice() {
                    [] => return Err(err(format!("unrecognized option '--{body}'"))),
                    [&only] => only,
                    _ => {
                        let list: String = found.iter().map(|o| format!(" '--{}'", o.0)).collect();
                        return Err(err(format!(
                            "option '--{body}' is ambiguous; possibilities:{list}"
                        )));
                    }
                }
            }
        };
        let value = match (has_arg, inline) {
            (HasArg::No, Some(_)) => {
                return Err(err(format!("option '--{long}' doesn't allow an argument")))
            }
            (HasArg::Required, None) => Some(
                self.args
                    .next()
                    .ok_or_else(|| err(format!("option '--{long}' requires an argument")))?,
            ),
            (_, inline) => inline.map(str::to_string),
        };
        Ok(Arg::Opt(c, value))
    }
}

impl Iterator for Getopt {
    type Item = Result<Arg, ConfigError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.cluster.is_empty() {
            let cluster = std::mem::take(&mut self.cluster);
            return Some(self.short(&cluster));
        }
        let arg = self.args.next()?;
        if self.end || arg == "-" || !arg.starts_with('-') {
            return Some(Ok(Arg::Free(arg)));
        }
        if arg == "--" {
            self.end = true;
            return self.next();
        }
        Some(match arg.strip_prefix("--") {
            Some(long) => self.long(long),
            None => self.short(&arg[1..]),
        })
    }
}
