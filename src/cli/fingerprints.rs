//! `keydrop fingerprints refresh`: recompute stored fingerprints under the
//! current rule; batched, resumable, stops after the batch in flight on a signal.

use crate::config::{self, Config};
use crate::ops::fingerprints;
use crate::startup::shutdown_signal;
use crate::store::{self, audit::Actor, canary, fingerprint_keys};
use anyhow::bail;
use clap::Args;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum FingerprintsCmd {
    /// Recompute stored fingerprints under the current rule (short secrets get a
    /// keyed fingerprint), by opening the envelopes; batched and resumable.
    Refresh(RefreshArgs),
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Rows per batch; each batch is one short transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch: i64,
    /// Stop after this many batches (the next run carries on).
    #[arg(long)]
    max_batches: Option<u64>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn fingerprints(cmd: FingerprintsCmd) -> anyhow::Result<()> {
    let FingerprintsCmd::Refresh(args) = cmd;
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    canary::verify(&db, &ring).await?;
    let fingerprinter = fingerprint_keys::load(&db, &ring).await?;
    // Envelopes open through the local ring or the KMS, as for a reveal.
    let keys = crate::kms::Keys::connect(Arc::new(ring), config.kms.clone()).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("\nfingerprints: stopping after the current batch");
        flag.store(true, Ordering::Relaxed);
    });
    let opts = fingerprints::Options {
        batch: args.batch,
        max_batches: args.max_batches,
    };
    let summary = fingerprints::refresh(
        &db,
        &keys,
        &fingerprinter,
        &Actor::cli(),
        opts,
        &stop,
        |s| {
            eprintln!(
                "fingerprints: batch {}: {} refreshed",
                s.batches,
                s.refreshed + s.erased
            );
        },
    )
    .await?;
    eprintln!(
        "fingerprints: {} refreshed, {} erased (shredded), {} failed, {} still to do",
        summary.refreshed, summary.erased, summary.failures, summary.remaining
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    db.close().await;
    if summary.failures > 0 {
        bail!(
            "{} fingerprint(s) could not be recomputed (their envelope did not open): keep their KEKs \
             in the ring and run `keydrop fingerprints refresh` again",
            summary.failures
        );
    }
    if summary.interrupted {
        eprintln!(
            "fingerprints: stopped early; run `keydrop fingerprints refresh` again to continue"
        );
    } else {
        eprintln!("fingerprints: done");
    }
    Ok(())
}
