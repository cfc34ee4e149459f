//! `loadgen`: the load generator and helpers behind `scripts/bench`.
//!
//! Not part of the Keydrop build (its own workspace). Modes:
//! * `submit`: C clients each fetch the drop page once (CSRF cookie + token),
//!   then POST complete submissions in a loop on a keep-alive connection.
//! * `reveal`: C clients POST reveals over a pool of secret ids.
//! * `check`: times one full live check (Keydrop's own `Checker`) against a
//!   fake Greenhouse, beside one plain upstream round-trip.
//! * `fake-greenhouse`: that fake, answering every request after a fixed delay.
//! * `seed`: writes N real envelopes (Keydrop's `crypto::seal`) for rotation.
//! * `report`: the Markdown table of one run's JSON results.
//!
//! Every mode prints one JSON object on stdout.
#![forbid(unsafe_code)]

mod check;
mod fake;
mod load;
mod report;
mod seed;
mod stats;

use clap::{Parser, Subcommand};
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Clone, Copy)]
pub struct LoadArgs {
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds run before measuring (not recorded).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
}

#[derive(Subcommand)]
enum Mode {
    /// Submissions through the public drop form.
    Submit {
        /// The drop link (`keydrop request create … --max-uses 1000000`).
        #[arg(long)]
        url: String,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Reveals through the internal API.
    Reveal {
        /// Internal listener base, e.g. http://127.0.0.1:8081
        #[arg(long)]
        base: String,
        /// Staff token with the reveal scope.
        #[arg(long, env = "LOADGEN_TOKEN")]
        token: String,
        /// File with one secret id per line.
        #[arg(long)]
        ids_file: std::path::PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// One full live check vs one upstream round-trip, against the fake.
    Check {
        /// Base URL of `loadgen fake-greenhouse`.
        #[arg(long)]
        fake: String,
        /// Sequential checks per provider.
        #[arg(long, default_value_t = 30)]
        iterations: usize,
    },
    /// A fake Greenhouse (auth + Harvest v1/v3) with a fixed delay per request.
    FakeGreenhouse {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long, default_value_t = 50)]
        delay_ms: u64,
    },
    /// Inserts N valid sealed secrets for a rotation benchmark.
    Seed {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// KEK ring (`id=base64key,…`); rows are sealed under its first key.
        #[arg(long, env = "KEYDROP_KEKS")]
        keks: String,
        /// Drop request the rows belong to.
        #[arg(long)]
        request_id: uuid::Uuid,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// Prints the Markdown table for the JSON results in a directory.
    Report { dir: std::path::PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = match Cli::parse().mode {
        Mode::Submit { url, load } => load::submit(url, load).await?,
        Mode::Reveal {
            base,
            token,
            ids_file,
            load,
        } => load::reveal(base, token, &ids_file, load).await?,
        Mode::Check { fake, iterations } => check::run(&fake, iterations).await?,
        Mode::FakeGreenhouse { addr, delay_ms } => {
            return fake::serve(&addr, Duration::from_millis(delay_ms)).await
        }
        Mode::Seed {
            database_url,
            keks,
            request_id,
            count,
        } => seed::run(&database_url, &keks, request_id, count).await?,
        Mode::Report { dir } => {
            print!("{}", report::run(&dir)?);
            return Ok(());
        }
    };
    println!("{out}");
    Ok(())
}
