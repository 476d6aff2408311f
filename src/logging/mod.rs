//! Logging: the level (memcached's `-v` flags at start, the `verbosity` command at run time),
//! where lines go ([`sink`]: stderr, `--log FILE`, or syslog when daemonized), and memcached's
//! own lines (`<24 get a`, `>24 END`...), which go out bare, without timestamp or level, under
//! the [`WIRE`] target. The binary calls [`init`]; the library only emits events and asks for
//! level changes.

pub mod sink;
mod syslog;

use std::sync::OnceLock;

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::{self, format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, EnvFilter, Layer};

pub use sink::{Destination, Sink};

/// The tracing target of lines in memcached's format: printed as they are, one per event.
pub const WIRE: &str = "memcached";

/// Highest level the `verbosity` command sets (memcached's `MAX_VERBOSITY_LEVEL`): `-vvv` is
/// for the command line only.
pub const MAX_RUNTIME_VERBOSITY: u32 = 2;

type Apply = Box<dyn Fn(u32) + Send + Sync>;

static APPLY: OnceLock<Apply> = OnceLock::new();
static SINK: OnceLock<Sink> = OnceLock::new();

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

/// Installs how a new verbosity takes effect (once, by whoever set up logging).
pub fn install(apply: impl Fn(u32) + Send + Sync + 'static) {
    let _ = APPLY.set(Box::new(apply));
}

/// Applies `verbosity` (capped at [`MAX_RUNTIME_VERBOSITY`]) now: the `verbosity` command.
/// Nothing when no logger is installed.
pub fn set_verbosity(verbosity: u32) {
    if let Some(apply) = APPLY.get() {
        apply(verbosity.min(MAX_RUNTIME_VERBOSITY));
    }
}

/// Emits one line in memcached's format at a memcached verbosity: 0 always (memcached's
/// unconditional messages), 1 `-v` (errors and warnings), 2 `-vv` (commands and replies),
/// 3 `-vvv` (internal state). Callers check the level first, so nothing is formatted below it.
pub fn wire(level: u32, line: std::fmt::Arguments<'_>) {
    match level {
        0 => tracing::warn!(target: WIRE, "{line}"),
        1 => tracing::info!(target: WIRE, "{line}"),
        2 => tracing::debug!(target: WIRE, "{line}"),
        _ => tracing::trace!(target: WIRE, "{line}"),
    }
}

/// Sets up logging for the process: events at the level of `verbosity` (or `RUST_LOG`) go to
/// `dest`; [`WIRE`] lines bare, the others with time (except into syslog, which adds its own),
/// level and target; colour only for a terminal. [`set_verbosity`] and [`reopen`] work from
/// then on. Fails when the log file cannot be opened.
pub fn init(dest: Destination, verbosity: u32) -> Result<(), String> {
    let sink = Sink::open(dest)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter_of(verbosity).into());
    let (filter, handle) = reload::Layer::new(filter);
    let bare = fmt::layer()
        .with_writer(sink.clone())
        .with_ansi(false)
        .event_format(Bare)
        .with_filter(filter_fn(|m| m.target() == WIRE));
    let full = fmt::layer()
        .with_writer(sink.clone())
        .with_ansi(sink.is_terminal());
    let full = if sink.is_syslog() {
        full.without_time().boxed()
    } else {
        full.boxed()
    }
    .with_filter(filter_fn(|m| m.target() != WIRE));
    tracing_subscriber::registry()
        .with(filter)
        .with(bare)
        .with(full)
        .try_init()
        .map_err(|e| e.to_string())?;
    install(move |v| {
        let _ = handle.reload(EnvFilter::new(filter_of(v)));
    });
    let _ = SINK.set(sink);
    Ok(())
}

/// Reopens the `--log` file (SIGHUP, after a log rotation moved it away); nothing for the
/// other destinations. On failure the old file stays in use.
pub fn reopen() -> std::io::Result<()> {
    match SINK.get() {
        Some(sink) => sink.reopen(),
        None => Ok(()),
    }
}

/// The event format of [`WIRE`] lines: the message alone.
struct Bare;

impl<S, N> FormatEvent<S, N> for Bare
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
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
