//! `ratecached`: parse memcached-style arguments, then run the server.

use std::process::ExitCode;

use ratecache::config::{self, Action};
use ratecache::logging::Destination;

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
    // Before daemonizing: the log file is opened (and a relative path resolved) here.
    let dest = Destination::of(cfg.log_file.as_deref(), cfg.daemonize);
    if let Err(e) = ratecache::logging::init(dest, u32::from(cfg.verbosity)) {
        eprintln!("failed to open the log: {e}");
        return ExitCode::from(73);
    }
    // With -d stderr is gone: fatal errors also go to the log.
    let to_log = cfg.daemonize || cfg.log_file.is_some();
    let fatal = |msg: String| {
        if to_log {
            tracing::error!("{msg}");
        }
        eprintln!("{msg}");
    };
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
            fatal(format!("failed to start runtime: {e}"));
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(ratecache::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fatal(format!("ratecached: {e}"));
            ExitCode::from(71)
        }
    }
}
