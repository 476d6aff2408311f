//! The log level: set by memcached's `-v` flags at start and by the `verbosity` command at
//! run time. The binary installs how a level is applied; the library only asks for it.

use std::sync::OnceLock;

type Apply = Box<dyn Fn(u32) + Send + Sync>;

static APPLY: OnceLock<Apply> = OnceLock::new();

/// The tracing filter of a memcached verbosity: 0 warnings and errors, 1 (`-v`) also
/// information, 2 (`-vv`) also debug, 3 (`-vvv`) everything.
pub fn filter_of(verbosity: u32) -> &'static str {
    match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs how a new verbosity takes effect (once, by the binary after it set up logging).
pub fn install(apply: impl Fn(u32) + Send + Sync + 'static) {
    let _ = APPLY.set(Box::new(apply));
}

/// Applies `verbosity` now (the `verbosity` command); nothing when no logger is installed.
pub fn set_verbosity(verbosity: u32) {
    if let Some(apply) = APPLY.get() {
        apply(verbosity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_memcached_verbosity() {
        let names: Vec<_> = (0..5).map(filter_of).collect();
        assert_eq!(names, ["warn", "info", "debug", "trace", "trace"]);
    }
}
