//! `keydrop rotate`: rewrap every data key under the active KEK, with
//! progress on stderr; stops cleanly after the batch in flight on a signal.

use super::ExitStatus;
use crate::config::{self, Config};
use crate::ops::rotate;
use crate::store::{self, audit::Actor, canary};
use anyhow::bail;
use clap::Args;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Rows per batch; each batch is one short transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch: i64,
    /// Stop after this many batches (spread a large rotation over several runs).
    #[arg(long)]
    max_batches: Option<u64>,
    /// Batches rewrapped at once, each on its own database connection.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    workers: u16,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Rotate even though no server has loaded the active KEK yet (servers
    /// still running the old ring could not open the rewrapped rows).
    #[arg(long)]
    force: bool,
}

pub async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    store::require_migrated(&db).await?;
    let keys = crate::kms::Keys::connect(Arc::new(ring), config.kms.clone()).await?;
    let ring = keys.ring();
    let active = keys.active_kek();
    let check_hint = if keys.backend() == "local" {
        format!(
            "every replica must run a ring that contains {active:?}: its start-up log says \
             \"KEK ring loaded\" with ring={active}, and its internal /readyz lists {active:?} \
             in keks.ring"
        )
    } else {
        format!(
            "every replica runs with the same KEYDROP_KMS settings (its internal /readyz shows \
             kms.key = {active:?})"
        )
    };
    if keys.backend() != "local" {
        // The KMS start-up canary (in `Keys::connect`) proved this process can
        // wrap and unwrap; servers need the same KMS settings to open the rows.
        eprintln!(
            "rotate: moving data keys into {} key {active:?}; check that {check_hint}",
            keys.backend()
        );
    } else {
        // A server registers the canary of every KEK it loads. No canary for the
        // active KEK means no server runs this ring yet: rows rewrapped now could
        // not be opened by any of them.
        let keks = canary::status(&db, ring).await?;
        if keks.is_valid() && keks.unregistered.contains(&active) {
            if !args.force {
                db.close().await;
                bail!(
                    "no server has loaded KEK {active:?} yet (it has no canary in this database), \
                     so servers still running the old ring could not open the rows rotate would \
                     rewrap. Put {active:?} first in the ring of every server and restart them, \
                     then run `keydrop rotate` again ({check_hint}). --force rotates anyway."
                );
            }
            eprintln!("rotate: --force: KEK {active:?} is new to this database; {check_hint}");
        } else {
            eprintln!("rotate: before the old KEK leaves the ring, check that {check_hint}");
        }
    }
    // Ctrl-C or SIGTERM: finish the batch in flight, record the run, stop.
    let stop = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(std::sync::atomic::AtomicU8::new(0));
    {
        let (stop, signal) = (stop.clone(), signal.clone());
        tokio::spawn(async move {
            let code = interrupted().await;
            eprintln!("\nrotate: stopping after the current batch");
            signal.store(code, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "rotate: rewrapping data keys under KEK {active:?} in batches of {}",
        args.batch
    );
    let opts = rotate::Options {
        batch: args.batch,
        max_batches: args.max_batches,
        workers: usize::from(args.workers),
    };
    let summary = rotate::rotate_keys(&db, &keys, &Actor::cli(), opts, &stop, |p| {
        // Rows written by servers on the old ring during the run are rewrapped
        // too, so the count can pass the starting total.
        let total = p.total.max(p.rewrapped);
        if tty {
            eprint!("\r{}", progress_bar(p.rewrapped, total));
            let _ = std::io::stderr().flush();
        } else if p.rewrapped > p.total {
            eprintln!(
                "rotate: batch {}: {} rewrapped ({} were under another KEK at the start; more arrived since)",
                p.batches, p.rewrapped, p.total
            );
        } else {
            eprintln!(
                "rotate: batch {}: {} of {} rewrapped",
                p.batches, p.rewrapped, p.total
            );
        }
    })
    .await?;
    if tty && summary.batches > 0 {
        eprintln!();
    }
    eprintln!(
        "rotate: {} rewrapped, {} already current, {} still under another KEK",
        summary.rewrapped, summary.already_current, summary.remaining
    );
    for (kek, n) in &summary.failures {
        eprintln!("rotate: {n} row(s) under KEK {kek:?} could not be rewrapped");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    db.close().await;
    if !summary.failures.is_empty() {
        bail!(
            "some data keys could not be rewrapped: keep their KEKs in the ring \
             (add missing ones back) and run `keydrop rotate` again"
        );
    }
    if summary.complete {
        eprintln!("rotate: done; once {check_hint}, KEKs other than {active:?} can leave the ring");
        return Ok(());
    }
    let left = summary.remaining;
    match signal.load(Ordering::Relaxed) {
        // Shell convention: 128 + the signal number.
        code @ 1.. => Err(ExitStatus(
            code,
            format!("rotate stopped early: {left} row(s) are still under another KEK; run `keydrop rotate` again to continue"),
        )
        .into()),
        0 if summary.interrupted => bail!(
            "rotate stopped after --max-batches: {left} row(s) are still under another KEK; \
             run `keydrop rotate` again to continue"
        ),
        0 => bail!(
            "{left} row(s) are still under another KEK (held by other work, or written by a server \
             still running the old ring); run `keydrop rotate` again"
        ),
    }
}

/// Waits for Ctrl-C or SIGTERM; returns the exit status a shell would give
/// (130 or 143).
async fn interrupted() -> u8 {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => 130, _ = term => 143 }
}

/// `[#######.............]  350/1000 rewrapped`
fn progress_bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH) as usize;
    format!(
        "[{}{}] {done}/{total} rewrapped",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::progress_bar;

    #[test]
    fn the_progress_bar_fills_with_progress_and_survives_zero() {
        assert!(progress_bar(0, 10).starts_with("[......"));
        assert!(progress_bar(10, 10).starts_with(&format!("[{}]", "#".repeat(30))));
        assert!(progress_bar(5, 10).contains("5/10"));
        assert!(progress_bar(0, 0).contains("0/0"));
    }
}
