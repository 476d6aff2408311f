//! `ratecached`: parse memcached-style arguments, then run the server.

use std::process::ExitCode;

use ratecache::config::{self, Action};

/// Logs to stderr at the level of `-v` (or `RUST_LOG`), changeable at run time by the
/// `verbosity` command.
fn init_logging(verbosity: u32) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| ratecache::logging::filter_of(verbosity).into());
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, never into files or journald.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    ratecache::logging::install(move |v| {
        let _ = handle.reload(EnvFilter::new(ratecache::logging::filter_of(v)));
    });
}

fn main() -> ExitCode {
    let cfg = match config::parse(std::env::args_os().skip(1)) {
        Ok(Action::Run(cfg)) => *cfg,
        Ok(Action::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(64);
        }
    };
    init_logging(u32::from(cfg.verbosity));
    for note in &cfg.ignored {
        tracing::info!("{note}");
    }
    if let Err(e) = ratecache::server::process::prepare(&cfg) {
        eprintln!("{e}");
        return ExitCode::from(71);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .thread_name("ratecached-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start runtime: {e}");
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(ratecache::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ratecached: {e}");
            ExitCode::from(71)
        }
    }
}
