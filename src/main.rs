//! `ratecached`: parse memcached-style arguments, then run the server.

use std::process::ExitCode;

use ratecache::config::{self, Action};

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
    let level = match cfg.verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
