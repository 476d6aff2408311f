//! The Prometheus text exposition format (version 0.0.4): metric families with their `# HELP`
//! and `# TYPE` lines, samples with escaped label values, integer values printed exactly.

use std::fmt::Write as _;

/// The `Content-Type` of a scrape's body.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset by a restart or `stats reset`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer, printed exactly.
    Int(u64),
    /// A float (CPU seconds).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// Builds an exposition: one [`Exposition::family`] call, then its samples, per metric.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// Names of the families written, so none is written twice (debug builds check).
    names: Vec<&'static str>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name` (written once; its samples follow).
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(valid_name(name), "metric name {name:?}");
        debug_assert!(!self.names.contains(&name), "family {name} written twice");
        self.names.push(name);
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
        Family {
            out: &mut self.out,
            name,
        }
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The family being written.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// One sample with these labels (name, value; names are constants of this crate).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k) && !k.contains(':'), "label name {k:?}");
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) if v.is_nan() => self.out.push_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                self.out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
        self
    }
}

/// A valid metric (or label) name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_in_the_text_format() {
        let mut e = Exposition::new();
        e.family(
            "memcached_up",
            Kind::Gauge,
            "Could the memcached server be reached.",
        )
        .sample(&[], 1u64);
        e.family(
            "memcached_commands_total",
            Kind::Counter,
            "Total number of all requests broken down by command (get, set, etc.) and status.",
        )
        .sample(&[("command", "get"), ("status", "hit")], 3u64)
        .sample(&[("command", "get"), ("status", "miss")], u64::MAX);
        e.family("x_seconds", Kind::Counter, "a\\b\nc")
            .sample(&[], 0.25)
            .sample(&[("k", "v")], f64::NAN)
            .sample(&[("k", "w")], f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP memcached_up Could the memcached server be reached.\n\
             # TYPE memcached_up gauge\n\
             memcached_up 1\n\
             # HELP memcached_commands_total Total number of all requests broken down by command (get, set, etc.) and status.\n\
             # TYPE memcached_commands_total counter\n\
             memcached_commands_total{command=\"get\",status=\"hit\"} 3\n\
             memcached_commands_total{command=\"get\",status=\"miss\"} 18446744073709551615\n\
             # HELP x_seconds a\\\\b\\nc\n\
             # TYPE x_seconds counter\n\
             x_seconds 0.25\n\
             x_seconds{k=\"v\"} NaN\n\
             x_seconds{k=\"w\"} +Inf\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("m", Kind::Gauge, "h")
            .sample(&[("prefix", "a\"b\\c\nd")], 7u64);
        assert!(e.finish().ends_with("m{prefix=\"a\\\"b\\\\c\\nd\"} 7\n"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("memcached_up") && valid_name("a:b_c9") && valid_name("_x"));
        assert!(!valid_name("") && !valid_name("9a") && !valid_name("a-b") && !valid_name("a b"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn a_family_is_written_once() {
        let mut e = Exposition::new();
        e.family("m", Kind::Gauge, "h");
        e.family("m", Kind::Gauge, "h");
    }
}
