//! `keydrop audit verify` and `keydrop audit export`.

use crate::chain::verify::{verify, Anchor, VerifyError};
use crate::domain::HumanDuration;
use crate::store::audit::{self, Query};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;
use sqlx::PgPool;
use std::io::Write as _;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the audit trail's hash chain. Exits 0 and prints the event count
    /// and head (`SEQ:HASH`), or fails naming the first tampered event.
    Verify {
        /// A head recorded earlier (`SEQ:HASH`, as printed here): it must still be in the chain.
        #[arg(long = "anchor", value_parser = parse_anchor)]
        anchors: Vec<Anchor>,
        #[arg(long)]
        json: bool,
    },
    /// Print audit events as JSON lines, oldest first (for a SIEM).
    Export {
        /// Only events at or after this: RFC 3339 (2026-11-01T00:00:00Z) or an age (7d, 12h).
        #[arg(long, value_parser = parse_when)]
        since: Option<DateTime<Utc>>,
        /// Only events before this: RFC 3339 or an age.
        #[arg(long, value_parser = parse_when)]
        until: Option<DateTime<Utc>>,
        /// Only events after this event id (resume an earlier export).
        #[arg(long)]
        after_id: Option<i64>,
        /// Exact action, or a prefix such as `secret.*`.
        #[arg(long)]
        action: Option<String>,
    },
}

fn parse_anchor(s: &str) -> Result<Anchor, String> {
    Anchor::parse(s)
}

/// RFC 3339, or an age such as `7d` meaning that long ago.
fn parse_when(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    HumanDuration::parse(s)
        .map(|d| Utc::now() - d.as_chrono())
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor an age such as 7d"))
}

pub async fn run(cmd: AuditCmd, db: &PgPool) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify { anchors, json } => match verify(db, &anchors).await {
            Ok(v) => {
                let head = v.head.as_deref().unwrap_or("none");
                if json {
                    println!(
                        "{}",
                        json!({ "ok": true, "events": v.events, "head_seq": v.events, "head": v.head, "unsealed": v.unsealed })
                    );
                } else {
                    println!("ok: {} events sealed; head {}:{head}", v.events, v.events);
                }
                if v.unsealed > 0 {
                    eprintln!(
                        "{} newer events are not sealed yet (a running `keydrop serve` seals them within seconds)",
                        v.unsealed
                    );
                }
                Ok(())
            }
            Err(VerifyError::Broken(b)) => {
                if json {
                    println!("{}", json!({ "ok": false, "error": b.to_string() }));
                }
                Err(anyhow::anyhow!("audit chain broken: {b}"))
            }
            Err(VerifyError::Db(e)) => Err(e).context("cannot read the audit trail"),
        },
        AuditCmd::Export {
            since,
            until,
            after_id,
            action,
        } => {
            let mut q = Query {
                since,
                until,
                action,
                cursor: after_id,
                ascending: true,
                ..Query::default()
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut n = 0u64;
            loop {
                let page = audit::list(db, &q, 1000).await?;
                for e in &page {
                    if serde_json::to_writer(&mut out, e).is_err() || out.write_all(b"\n").is_err()
                    {
                        return Ok(()); // the reader went away (e.g. `| head`)
                    }
                }
                n += page.len() as u64;
                match page.last() {
                    Some(last) if page.len() == 1000 => q.cursor = Some(last.id),
                    _ => break,
                }
            }
            let _ = out.flush();
            eprintln!("exported {n} events");
            Ok(())
        }
    }
}

/// `keydrop audit export` through the internal API: the API pages newest
/// first, so the pages are gathered, then printed oldest first as the
/// database export does, one `AuditEventView` per line.
pub(super) async fn export_remote(
    api: &super::remote::Remote,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    after_id: Option<i64>,
    action: Option<String>,
) -> anyhow::Result<()> {
    use crate::http::api::views::{AuditEventView, AuditPage};
    let mut base: Vec<(&str, String)> = vec![("limit", "1000".into())];
    base.extend(since.map(|t| ("since", t.to_rfc3339())));
    base.extend(until.map(|t| ("until", t.to_rfc3339())));
    base.extend(action.map(|a| ("action", a)));
    let mut events: Vec<AuditEventView> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = base.clone();
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let page: AuditPage = api.get("audit", &query).await?;
        let done = page.items.iter().any(|e| Some(e.id) <= after_id);
        events.extend(
            page.items
                .into_iter()
                .filter(|e| after_id.is_none_or(|a| e.id > a)),
        );
        match page.next_cursor {
            Some(c) if !done => cursor = Some(c),
            _ => break,
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in events.iter().rev() {
        if serde_json::to_writer(&mut out, e).is_err() || out.write_all(b"\n").is_err() {
            return Ok(()); // the reader went away (e.g. `| head`)
        }
    }
    let _ = out.flush();
    eprintln!("exported {} events", events.len());
    Ok(())
}
