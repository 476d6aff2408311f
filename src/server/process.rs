//! Process-level start-up chores done before the runtime starts: the descriptor limit
//! (`RLIMIT_NOFILE` raised to fit `-c`), daemonizing (`-d`), the pid file (`-P`), and dropping
//! root privileges (`-u`).

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::config::Config;

/// memcached's message when the descriptor limit cannot be raised to `-c` (exit 71).
pub const RLIMIT_FAILED: &str = "failed to set rlimit for open files. Try starting as root or \
                                 requesting smaller maxconns value.";

/// Descriptors opened besides the connections: stdio, the runtime's poller, waker and signal
/// pipe, files read at run time (policies, pid file).
const RESERVED_FDS: u64 = 32;

/// Daemonizes, writes the pid file and switches user as the configuration asks, after
/// raising the descriptor limit to fit `-c` (while still root, if started as root).
pub fn prepare(cfg: &Config) -> Result<(), String> {
    raise_nofile(cfg)?;
    if cfg.daemonize {
        let mut d = daemonize::Daemonize::new().working_directory("/");
        if let Some(pid) = &cfg.pid_file {
            d = d.pid_file(pid).chown_pid_file(false);
        }
        d.start().map_err(|e| format!("failed to daemonize: {e}"))?;
    } else if let Some(pid) = &cfg.pid_file {
        std::fs::write(pid, format!("{}\n", std::process::id())).map_err(|e| {
            format!(
                "Could not open the pid file {} for writing: {e}",
                pid.display()
            )
        })?;
    }
    if let Some(name) = &cfg.user {
        if nix::unistd::geteuid().is_root() {
            drop_root(name)?;
        }
    }
    Ok(())
}

/// Becomes `name`, in memcached's order: supplementary groups cleared (EPERM only warns: the
/// process already holds no privilege to drop), then the group, then the user.
fn drop_root(name: &str) -> Result<(), String> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| format!("can't find the user {name} to switch to: {e}"))?
        .ok_or_else(|| format!("can't find the user {name} to switch to"))?;
    if let Err(e) = nix::unistd::setgroups(&[]) {
        let msg = format!("failed to drop supplementary groups: {}", e.desc());
        if e != Errno::EPERM {
            return Err(msg);
        }
        tracing::warn!("{msg}");
    }
    nix::unistd::setgid(user.gid)
        .and_then(|()| nix::unistd::setuid(user.uid))
        .map_err(|e| format!("failed to assume identity of user {name}: {e}"))
}

/// Descriptors kept beside `-c`: [`RESERVED_FDS`] plus, per `-l` entry, room for its
/// listeners (an entry can resolve to several addresses), their spare descriptors and UDP.
pub fn fd_headroom(cfg: &Config) -> u64 {
    RESERVED_FDS + 4 * cfg.listen.len() as u64
}

/// A soft and a hard `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The limit enforced.
    pub soft: u64,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: u64,
}

/// What to do with `RLIMIT_NOFILE` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NofilePlan {
    /// The soft limit already fits `-c` and the headroom: leave it (a higher limit is never
    /// lowered).
    Keep,
    /// Set `want`. If the kernel refuses (raising the hard limit needs root), set `fallback`
    /// (soft = hard: `-c` fits, only the headroom does not) or, without one, give up:
    /// `-c` cannot fit.
    Raise {
        /// The limits that fit `-c` plus the headroom.
        want: Limits,
        /// The best the current hard limit allows, when `-c` still fits under it.
        fallback: Option<Limits>,
    },
}

/// Decides the new limits from the `current` ones, `-c` and the `headroom` (pure).
pub fn plan_nofile(current: Limits, max_conns: u64, headroom: u64) -> NofilePlan {
    let need = max_conns.saturating_add(headroom);
    if current.soft >= need {
        return NofilePlan::Keep;
    }
    if current.hard >= need {
        let want = Limits {
            soft: need,
            hard: current.hard,
        };
        return NofilePlan::Raise {
            want,
            fallback: None,
        };
    }
    let fallback = (current.hard >= max_conns).then_some(Limits {
        soft: current.hard,
        hard: current.hard,
    });
    NofilePlan::Raise {
        want: Limits {
            soft: need,
            hard: need,
        },
        fallback,
    }
}

/// Raises `RLIMIT_NOFILE` to fit `-c` as [`plan_nofile`] decides; an error is memcached's
/// message (the caller exits 71, EX_OSERR).
fn raise_nofile(cfg: &Config) -> Result<(), String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|_| "failed to getrlimit number of files".to_string())?;
    let current = Limits { soft, hard };
    let max_conns = cfg.max_connections as u64;
    let set = |l: Limits| setrlimit(Resource::RLIMIT_NOFILE, l.soft, l.hard).is_ok();
    match plan_nofile(current, max_conns, fd_headroom(cfg)) {
        NofilePlan::Keep => Ok(()),
        NofilePlan::Raise { want, .. } if set(want) => {
            tracing::info!(
                "open files limit raised from {soft}/{hard} to {}/{}",
                want.soft,
                want.hard
            );
            Ok(())
        }
        NofilePlan::Raise {
            fallback: Some(f), ..
        } if set(f) => {
            tracing::info!(
                "open files limit {} leaves no headroom above -c {max_conns}; accepting \
                 pauses when descriptors run out",
                f.soft
            );
            Ok(())
        }
        NofilePlan::Raise { .. } => Err(RLIMIT_FAILED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenAddr;

    const INF: u64 = u64::MAX;

    fn lim(soft: u64, hard: u64) -> Limits {
        Limits { soft, hard }
    }

    #[test]
    fn a_soft_limit_that_fits_is_kept_and_never_lowered() {
        assert_eq!(plan_nofile(lim(1064, 1064), 1024, 40), NofilePlan::Keep);
        assert_eq!(
            plan_nofile(lim(1_048_576, 1_048_576), 1024, 40),
            NofilePlan::Keep
        );
        assert_eq!(plan_nofile(lim(INF, INF), 1_000_000, 40), NofilePlan::Keep);
    }

    #[test]
    fn the_soft_limit_is_raised_under_a_high_enough_hard_limit() {
        let want = lim(1064, 524_288);
        assert_eq!(
            plan_nofile(lim(1024, 524_288), 1024, 40),
            NofilePlan::Raise {
                want,
                fallback: None
            }
        );
        assert_eq!(
            plan_nofile(lim(64, INF), 1000, 40),
            NofilePlan::Raise {
                want: lim(1040, INF),
                fallback: None
            }
        );
        // Exactly enough hard limit: soft goes up to it, hard stays.
        assert_eq!(
            plan_nofile(lim(64, 1040), 1000, 40),
            NofilePlan::Raise {
                want: lim(1040, 1040),
                fallback: None
            }
        );
    }

    #[test]
    fn a_hard_limit_short_of_the_headroom_falls_back_to_soft_equals_hard() {
        assert_eq!(
            plan_nofile(lim(1024, 1024), 1024, 40),
            NofilePlan::Raise {
                want: lim(1064, 1064),
                fallback: Some(lim(1024, 1024))
            }
        );
        assert_eq!(
            plan_nofile(lim(64, 1020), 1000, 40),
            NofilePlan::Raise {
                want: lim(1040, 1040),
                fallback: Some(lim(1020, 1020))
            }
        );
    }

    #[test]
    fn a_hard_limit_below_the_conn_limit_has_no_fallback() {
        assert_eq!(
            plan_nofile(lim(64, 64), 1000, 40),
            NofilePlan::Raise {
                want: lim(1040, 1040),
                fallback: None
            }
        );
        assert_eq!(
            plan_nofile(lim(64, 999), 1000, 40),
            NofilePlan::Raise {
                want: lim(1040, 1040),
                fallback: None
            }
        );
    }

    #[test]
    fn a_huge_conn_limit_saturates_instead_of_wrapping() {
        assert_eq!(
            plan_nofile(lim(1024, 4096), u64::MAX - 1, 40),
            NofilePlan::Raise {
                want: lim(INF, INF),
                fallback: None
            }
        );
    }

    #[test]
    fn headroom_grows_with_the_listen_entries() {
        let mut cfg = Config {
            listen: vec![ListenAddr::ip(std::net::Ipv4Addr::LOCALHOST)],
            ..Config::default()
        };
        let one = fd_headroom(&cfg);
        cfg.listen
            .push(ListenAddr::ip(std::net::Ipv6Addr::LOCALHOST));
        assert!(fd_headroom(&cfg) > one);
        assert!(one > RESERVED_FDS);
    }
}
