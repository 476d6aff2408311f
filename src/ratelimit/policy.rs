//! Named policies: sets of limits defined in a TOML file (`--policies FILE`, reloaded on
//! SIGHUP) and applied with `ratelimit <key> @<name>`.
//!
//! ```toml
//! [policy.free]
//! limits = [ { limit = 100, period = "1h" }, { limit = 20, period = "1m" } ]
//! [policy.pro]
//! limits = [ { limit = 1000, period = "1h", burst = 50, algorithm = "gcra" } ]
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::{parse_period, Algorithm, Limit, Params};
use crate::limiter::Group;
use crate::protocol::limits::MAX_LIMITS;

/// One limit of a policy; the subject and cost come with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyLimit {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Limit, period and burst (cost is set per request).
    pub params: Params,
}

/// One loaded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Its limits, in file order.
    pub limits: Vec<PolicyLimit>,
    /// Its stats row (`stats ratelimit`; 0 until [`Policies::assign_rows`]).
    pub row: u8,
}

/// The loaded policies by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    map: HashMap<Vec<u8>, Policy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    policy: HashMap<String, PolicyDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDef {
    limits: Vec<LimitDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitDef {
    limit: u64,
    period: toml::Value,
    #[serde(default)]
    burst: u64,
    #[serde(default)]
    algorithm: Option<String>,
}

impl Policies {
    /// Parses a policy file's text; the error names the policy and what is wrong. A file that
    /// defines no policy (empty, only comments, no `[policy.NAME]` table) is an error: it is
    /// what a truncated deploy looks like, and accepting it would drop every policy.
    pub fn parse(text: &str) -> Result<Policies, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("policy file: {e}"))?;
        if file.policy.is_empty() {
            return Err(
                "policy file defines no policy (no [policy.NAME] table): an empty or truncated \
                 file is refused"
                    .to_string(),
            );
        }
        let mut map = HashMap::new();
        for (name, def) in file.policy {
            if def.limits.is_empty() || def.limits.len() > MAX_LIMITS {
                return Err(format!("policy {name}: 1 to {MAX_LIMITS} limits required"));
            }
            let mut limits = Vec::with_capacity(def.limits.len());
            for l in def.limits {
                let period = match &l.period {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    other => return Err(format!("policy {name}: bad period {other}")),
                };
                let period_ns = parse_period(period.as_bytes())
                    .map_err(|_| format!("policy {name}: invalid period {period:?}"))?;
                let algorithm = match l.algorithm.as_deref() {
                    None => Algorithm::Gcra,
                    Some(a) => Algorithm::from_keyword(a.as_bytes())
                        .ok_or_else(|| format!("policy {name}: unknown algorithm {a:?}"))?,
                };
                let params = Params {
                    limit: u32::try_from(l.limit)
                        .map_err(|_| format!("policy {name}: invalid limit"))?,
                    period_ns,
                    burst: u32::try_from(l.burst)
                        .map_err(|_| format!("policy {name}: invalid burst"))?,
                    cost: 1,
                };
                params
                    .validate(algorithm)
                    .map_err(|e| format!("policy {name}: {e}"))?;
                limits.push(PolicyLimit { algorithm, params });
            }
            map.insert(name.into_bytes(), Policy { limits, row: 0 });
        }
        Ok(Policies { map })
    }

    /// Reads and parses a policy file; the error starts with the file's path.
    pub fn load(path: &Path) -> Result<Policies, String> {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| Self::parse(&text))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The limits of policy `name` applied to `key` at `cost`, or `None` for an unknown policy.
    /// They carry the policy's stats row (their group's `policy`).
    pub fn limits<'a>(&self, name: &[u8], key: &'a [u8], cost: u32) -> Option<Vec<Limit<'a>>> {
        let policy = self.map.get(name)?;
        Some(
            policy
                .limits
                .iter()
                .map(|l| Limit {
                    key,
                    algorithm: l.algorithm,
                    params: Params { cost, ..l.params },
                    from_policy: true,
                    group: Group {
                        policy: policy.row,
                        prefix: 0,
                    },
                })
                .collect(),
        )
    }

    /// Gives each policy its stats row: `row_of(name)`.
    pub fn assign_rows(&mut self, mut row_of: impl FnMut(&[u8]) -> u8) {
        for (name, policy) in &mut self.map {
            policy.row = row_of(name);
        }
    }

    /// The policies sorted by name.
    pub fn sorted(&self) -> Vec<(&[u8], &Policy)> {
        let mut all: Vec<(&[u8], &Policy)> =
            self.map.iter().map(|(k, v)| (k.as_slice(), v)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no policy is defined.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[policy.free]
limits = [ { limit = 100, period = "1h" }, { limit = 20, period = "1m" } ]
[policy.pro]
limits = [ { limit = 1000, period = "1h", burst = 50 } ]
[policy.window]
limits = [ { limit = 10, period = 60, algorithm = "fixed" } ]
"#;

    #[test]
    fn parses_the_spec_example() {
        let p = Policies::parse(SPEC).unwrap();
        assert_eq!(p.len(), 3);
        let free = p.limits(b"free", b"u1", 2).unwrap();
        assert_eq!(free.len(), 2);
        assert_eq!(
            free[1].params,
            Params {
                limit: 20,
                period_ns: 60_000_000_000,
                burst: 0,
                cost: 2
            }
        );
        assert_eq!(p.limits(b"pro", b"u1", 1).unwrap()[0].params.burst, 50);
        assert_eq!(
            p.limits(b"window", b"u", 1).unwrap()[0].algorithm,
            Algorithm::Fixed
        );
        assert!(p.limits(b"nope", b"u1", 1).is_none());
    }

    #[test]
    fn refuses_bad_files() {
        assert!(Policies::parse("[policy.x]\nlimits = []").is_err());
        assert!(Policies::parse("[policy.x]\nlimits = [{ limit = 0, period = \"1s\" }]").is_err());
        assert!(Policies::parse("[policy.x]\nlimits = [{ limit = 1, period = \"1y\" }]").is_err());
        assert!(Policies::parse(
            "[policy.x]\nlimits = [{ limit = 1, period = \"1s\", algorithm = \"x\" }]"
        )
        .is_err());
        assert!(Policies::parse("[policy.x]\nlimits = [{ limit = 5, period = \"1s\", burst = 2, algorithm = \"fixed\" }]").is_err());
        assert!(Policies::parse("[policy.x]\nlimitz = 1").is_err());
        assert!(Policies::parse("not toml [").is_err());
    }

    #[test]
    fn refuses_a_file_without_policies() {
        for text in [
            "",
            "\n  \n",
            "# all commented out\n",
            "policy = {}",
            "[policy]\n",
        ] {
            let e = Policies::parse(text).unwrap_err();
            assert!(e.contains("defines no policy"), "{text:?}: {e}");
        }
        // A file cut inside a table is a syntax error.
        assert!(Policies::parse("[policy.free]\nlimits = [ { limit = 100, per").is_err());
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("ratecache-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(&path, "").unwrap();
        let e = Policies::load(&path).unwrap_err();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        std::fs::write(&path, SPEC).unwrap();
        assert_eq!(Policies::load(&path).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Policies::load(&path)
            .unwrap_err()
            .starts_with(&format!("{}: ", path.display())));
    }
}
