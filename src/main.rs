//! `keydrop`: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use clap::Parser;
use keydrop::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (filter, json) = keydrop::config::log_settings();
    keydrop::telemetry::init(&filter, json);
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
