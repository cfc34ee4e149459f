//! `keydrop`: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use clap::Parser;
use keydrop::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter =
        std::env::var("KEYDROP_LOG").unwrap_or_else(|_| "info,sqlx::postgres::notice=warn".into());
    let json = std::env::var("KEYDROP_LOG_FORMAT").is_ok_and(|f| f == "json");
    keydrop::telemetry::init(&filter, json);
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
