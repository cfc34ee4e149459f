//! `keydrop`: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use clap::Parser;
use keydrop::cli::{self, Cli, ExitStatus};

/// mimalloc rather than glibc's malloc: a request makes hundreds of small
/// allocations, and glibc spent ~28 % of the server's instructions on them
/// (callgrind, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (filter, json) = keydrop::config::log_settings();
    keydrop::telemetry::init(
        filter
            .as_deref()
            .unwrap_or(keydrop::config::DEFAULT_LOG_FILTER),
        json,
    );
    let result = match filter {
        Ok(_) => cli::run(cli).await,
        Err(e) => Err(anyhow::anyhow!(e)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A log collector reading JSON lines gets the fatal error as one too.
            if json {
                tracing::error!(error = format!("{e:#}"), "keydrop failed");
            } else {
                eprintln!("error: {e:#}");
            }
            let code = e.downcast_ref::<ExitStatus>().map_or(1, |s| s.0);
            std::process::ExitCode::from(code)
        }
    }
}
