//! `loadgen`: the load generator and helpers behind `scripts/bench`.
//!
//! Not part of the Keydrop build (its own workspace). Modes:
//! * `submit`: C clients each fetch the drop page of their links once (CSRF
//!   cookie + token), then POST complete submissions in a loop on a keep-alive
//!   connection, spread over the links. A submission is its POST, answered by
//!   `303 See Other` to the receipt; `--follow-receipt` also fetches that
//!   receipt page, as a browser does (two exchanges per submission).
//! * `form`: a plain form POST in a loop (the peer, Snappass).
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
    /// Send exactly this many requests in all (no warm-up, no duration):
    /// for instruction counts and the soak.
    #[arg(long)]
    pub requests: Option<u64>,
}

#[derive(Subcommand)]
enum Mode {
    /// Submissions through the public drop form.
    Submit {
        /// A drop link (`keydrop request create … --max-uses 100000`); repeat
        /// for many links.
        #[arg(long)]
        url: Vec<String>,
        /// A file with one drop link per line (added to `--url`).
        #[arg(long)]
        urls_file: Option<std::path::PathBuf>,
        /// Also GET the receipt the POST redirects to (a browser's whole
        /// exchange), expecting its 200; without it the POST's 303 is the answer.
        #[arg(long)]
        follow_receipt: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// A plain form POST in a loop, expecting 200 (the peer, Snappass).
    Form {
        #[arg(long)]
        url: String,
        /// A form field `name=value`; repeat for more.
        #[arg(long = "field", value_parser = parse_field)]
        fields: Vec<(String, String)>,
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

fn parse_field(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?}: expected name=value"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = match Cli::parse().mode {
        Mode::Submit {
            mut url,
            urls_file,
            follow_receipt,
            load,
        } => {
            if let Some(f) = urls_file {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                url.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
            }
            load::submit(url, follow_receipt, load).await?
        }
        Mode::Form { url, fields, load } => load::form(url, fields, load).await?,
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
