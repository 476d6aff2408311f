//! `ratecache-bench`: see `ratecache-bench --help` and docs/benchmarks.md.

use std::process::ExitCode;

use ratecache_bench::report::Report;
use ratecache_bench::{cli, plot, runner};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let cfg = match cli::parse(&args) {
        Ok(c) => c,
        Err(cli::CliStop::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(cli::CliStop::Usage(e)) => {
            eprintln!("{e}");
            return ExitCode::from(64);
        }
    };
    let threads = cfg.cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // One core: a current-thread runtime saves the worker/driver hand-offs of the
    // multi-thread scheduler.
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let results = rt.block_on(async {
        let mut results = Vec::new();
        for t in &cfg.targets {
            results.push(runner::run_target(t, &cfg.load, &cfg.spec).await);
        }
        results
    });
    let title = cfg.cli.title.clone().unwrap_or_else(|| {
        format!(
            "{:?}, {} connections, pipeline {}",
            cfg.cli.workload, cfg.load.connections, cfg.load.pipeline
        )
        .to_lowercase()
    });
    let report = Report::new(title, args.join(" "), results);
    print!("{}", report.table());
    let mut failed = false;
    if let Some(p) = &cfg.cli.json {
        let json = serde_json::to_string_pretty(&report).expect("serializable report");
        if let Err(e) = std::fs::write(p, json + "\n") {
            eprintln!("{}: {e}", p.display());
            failed = true;
        }
    }
    if let Some(p) = &cfg.cli.markdown {
        if let Err(e) = std::fs::write(p, report.markdown()) {
            eprintln!("{}: {e}", p.display());
            failed = true;
        }
    }
    if let Some(p) = &cfg.cli.plot {
        if let Err(e) = plot::draw(&report, p) {
            eprintln!("{}: {e}", p.display());
            failed = true;
        }
    }
    let errors = report.errors();
    if errors > 0 {
        eprintln!("{errors} wrong or missing replies (see the error lines above)");
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
