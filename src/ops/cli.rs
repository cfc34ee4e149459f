//! `keydrop rotate`, `keydrop purge` and `keydrop healthcheck`.

use super::{retention, rotate};
use crate::config::{self, Config};
use crate::startup::shutdown_signal;
use crate::store::{self, audit::Actor};
use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::Args;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
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
    // Ctrl-C or SIGTERM: finish the batch in flight, record the run, stop.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("\nrotate: stopping after the current batch");
        flag.store(true, Ordering::Relaxed);
    });
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "rotate: rewrapping data keys under KEK {:?} in batches of {}",
        ring.active().id().as_str(),
        args.batch
    );
    let opts = rotate::Options {
        batch: args.batch,
        max_batches: args.max_batches,
        workers: usize::from(args.workers),
    };
    let summary = rotate::rotate(&db, &ring, &Actor::cli(), opts, &stop, |p| {
        if tty {
            eprint!("\r{}", progress_bar(p.rewrapped, p.total));
            let _ = std::io::stderr().flush();
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
    if summary.interrupted {
        eprintln!("rotate: stopped early; run `keydrop rotate` again to continue");
    } else if !summary.complete {
        bail!(
            "{} row(s) are still under another KEK (held by other work, or written by a server \
             still running the old ring); run `keydrop rotate` again",
            summary.remaining
        );
    } else {
        eprintln!("rotate: done; KEKs other than the active one can now leave the ring");
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
    let summary = retention::purge(&db, &policy, Utc::now(), &retention::actor()).await?;
    db.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let rule = |d: Option<Duration>| d.map_or("(off)".to_owned(), human);
        println!(
            "shredded {} secret(s): {} ingested more than {} ago, {} never revealed within {}",
            summary.total(),
            summary.shredded_ingested,
            rule(policy.after_ingested),
            summary.shredded_unclaimed,
            rule(policy.unclaimed_after),
        );
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
