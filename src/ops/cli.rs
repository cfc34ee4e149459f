//! `keydrop rotate`, `keydrop purge` and `keydrop healthcheck`.

use super::{fingerprints, retention, rotate};
use crate::config::{self, Config};
use crate::startup::shutdown_signal;
use crate::store::{self, audit::Actor, canary, fingerprint_keys};
use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::Args;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A failure that wants a particular exit status (e.g. 130 after Ctrl-C);
/// carried inside `anyhow::Error` and read back by `main`.
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct ExitStatus(pub u8, pub String);

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

#[derive(Debug, clap::Subcommand)]
pub enum KeksCmd {
    /// Record the canary of a configured KEK id that wraps secrets but has
    /// none (deleted, or never written), after checking that the configured
    /// key opens those secrets' data keys. `serve` refuses such an id until then.
    Adopt {
        /// The KEK id, as configured in KEYDROP_KEKS / KEYDROP_KEKS_FILE.
        id: String,
    },
}

/// `keydrop keks adopt ID`: prove the key, record its canary, audit it.
pub async fn keks(cmd: KeksCmd) -> anyhow::Result<()> {
    let KeksCmd::Adopt { id } = cmd;
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    match canary::adopt(&db, &ring, &id).await? {
        canary::Adopted::AlreadyRegistered => {
            eprintln!(
                "KEK {id:?} already has a canary matching the configured key; nothing to adopt"
            );
        }
        canary::Adopted::Recorded { checked } => {
            let actor = Actor::cli();
            store::audit::record(
                &db,
                store::audit::NewEvent::success(&actor, "kek.adopted")
                    .detail(serde_json::json!({ "kek_id": id, "data_keys_checked": checked })),
            )
            .await?;
            if checked == 0 {
                eprintln!("KEK {id:?} wraps no stored secrets; its canary is recorded");
            } else {
                eprintln!(
                    "adopted KEK {id:?}: the configured key opened all {checked} data keys checked; its canary is recorded"
                );
            }
        }
    }
    Ok(())
}

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

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Only count what the policy would shred now; shred nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's internal listener (0.0.0.0 means this host).
    #[arg(long, env = "KEYDROP_INTERNAL_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Which check: /healthz (process up) or /readyz (database and keys too).
    #[arg(long, default_value = "/healthz", value_parser = ["/healthz", "/readyz"])]
    path: String,
}

pub async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    store::require_migrated(&db).await?;
    let active = ring.active().id().as_str().to_owned();
    // A server registers the canary of every KEK it loads. No canary for the
    // active KEK means no server runs this ring yet: rows rewrapped now could
    // not be opened by any of them.
    let keks = canary::status(&db, &ring).await?;
    let check_hint = format!(
        "every replica must run a ring that contains {active:?}: its start-up log says \
         \"KEK ring loaded\" with ring={active}, and its internal /readyz lists {active:?} \
         in keks.ring"
    );
    if keks.is_valid() && keks.unregistered.contains(&active) {
        if !args.force {
            db.close().await;
            bail!(
                "no server has loaded KEK {active:?} yet (it has no canary in this database), \
                 so servers still running the old ring could not open the rows rotate would \
                 rewrap. Put {active:?} first in the ring of every server and restart them, then \
                 run `keydrop rotate` again ({check_hint}). --force rotates anyway."
            );
        }
        eprintln!("rotate: --force: KEK {active:?} is new to this database; {check_hint}");
    } else {
        eprintln!("rotate: before the old KEK leaves the ring, check that {check_hint}");
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
    let summary = rotate::rotate(&db, &ring, &Actor::cli(), opts, &stop, |p| {
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

pub async fn fingerprints(cmd: FingerprintsCmd) -> anyhow::Result<()> {
    let FingerprintsCmd::Refresh(args) = cmd;
    let config = Config::from_env()?;
    let ring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    canary::verify(&db, &ring).await?;
    let fingerprinter = fingerprint_keys::load(&db, &ring).await?;
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
        &ring,
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

pub async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let db = store::connect(&config.database_url).await?;
    let policy = retention::Policy {
        after_ingested: config.shred_after_ingested,
        unclaimed_after: config.shred_unclaimed_after,
    };
    store::require_migrated(&db).await?;
    let summary = if args.dry_run {
        retention::due(&db, &policy, Utc::now()).await?
    } else {
        retention::purge(&db, &policy, Utc::now(), &retention::actor()).await?
    };
    db.close().await;
    let verb = if args.dry_run {
        "would shred"
    } else {
        "shredded"
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let mut rules = Vec::new();
        if let Some(d) = policy.after_ingested {
            rules.push(format!(
                "{} ingested more than {} ago",
                summary.shredded_ingested,
                human(d)
            ));
        }
        if let Some(d) = policy.unclaimed_after {
            rules.push(format!(
                "{} never revealed within {}",
                summary.shredded_unclaimed,
                human(d)
            ));
        }
        if rules.is_empty() {
            println!("{verb} nothing: both retention rules are off");
        } else {
            println!("{verb} {} secret(s): {}", summary.total(), rules.join(", "));
        }
    }
    Ok(())
}

/// `7d`, `36h`, `90m` or `45s`: the largest unit that divides the duration.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A minimal HTTP/1.1 GET, so the runtime image needs no curl.
pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    let mut addr = args.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let status = tokio::time::timeout(Duration::from_secs(5), async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            args.path
        );
        conn.write_all(request.as_bytes()).await?;
        let mut head = vec![0; 64];
        let n = conn.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    })
    .await
    .with_context(|| format!("{addr} did not answer within 5s"))?
    .with_context(|| format!("cannot reach {addr}"))?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!("{}{} answered {code:?}", addr, args.path);
    }
    eprintln!("{}{}: ok", addr, args.path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{human, progress_bar};
    use std::time::Duration;

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(human(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(human(Duration::from_secs(1)), "1s");
    }

    #[test]
    fn the_progress_bar_fills_with_progress_and_survives_zero() {
        assert!(progress_bar(0, 10).starts_with("[......"));
        assert!(progress_bar(10, 10).starts_with(&format!("[{}]", "#".repeat(30))));
        assert!(progress_bar(5, 10).contains("5/10"));
        assert!(progress_bar(0, 0).contains("0/0"));
    }
}
