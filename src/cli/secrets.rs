//! `keydrop secret list|show|reveal|ingested|check|shred`: what arrived,
//! through the internal API only (`KEYDROP_API_URL`), so the people who
//! fetch keys need a staff token with the right scope and never the database
//! or KEKs.

use super::remote::Remote;
use crate::domain::Reason;
use crate::http::api::views::{ReasonBody, Revealed, SecretList, SecretView};
use anyhow::bail;
use clap::Subcommand;
use reqwest::Method;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// List secrets' metadata, newest first (scope read).
    List {
        /// received, revealed, ingested or shredded.
        #[arg(long)]
        status: Option<String>,
        /// A provider id (see `keydrop providers`).
        #[arg(long)]
        provider: Option<String>,
        /// The organization, exactly.
        #[arg(long)]
        org: Option<String>,
        /// Print the API's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One secret's metadata and last check result (scope read).
    Show {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Print the credential's fields as JSON on stdout, and nothing else
    /// (scope reveal; audited).
    Reveal {
        id: Uuid,
        /// Why, recorded in the audit event: 3 to 500 characters, one line.
        #[arg(long, value_parser = parse_reason)]
        reason: Option<Reason>,
    },
    /// Mark a revealed secret ingested (scope reveal).
    Ingested {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Run the provider's live check again (scope reveal).
    Check {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Crypto-shred a secret: its ciphertext and wrapped key are deleted for
    /// good, its metadata stays (scope admin; audited).
    Shred {
        id: Uuid,
        /// Why, recorded in the audit event: 3 to 500 characters, one line.
        #[arg(long, value_parser = parse_reason)]
        reason: Option<Reason>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_reason(raw: &str) -> Result<Reason, String> {
    Reason::parse(raw).map_err(|e| format!("the reason {e}"))
}

/// The body of a reveal or a shred: none without a reason, as before reasons.
fn reason_body(reason: Option<Reason>) -> Option<ReasonBody> {
    reason.map(|r| ReasonBody {
        reason: Some(r.as_str().to_owned()),
    })
}

pub(super) async fn secret(cmd: SecretCmd, remote: Option<Remote>) -> anyhow::Result<()> {
    let Some(api) = remote else {
        bail!(
            "`keydrop secret` works through the internal API: set KEYDROP_API_URL and \
             KEYDROP_API_TOKEN (or KEYDROP_API_TOKEN_FILE) to a staff token"
        );
    };
    match cmd {
        SecretCmd::List {
            status,
            provider,
            org,
            json,
        } => {
            let query: Vec<(&str, String)> = [("status", status), ("provider", provider)]
                .into_iter()
                .chain([("organization", org)])
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            let list: SecretList = api.get("secrets", &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list.items {
                    println!("{}", line(s));
                }
            }
        }
        SecretCmd::Show { id, json } => {
            let s: SecretView = api.get(&format!("secrets/{id}"), &[]).await?;
            print(&s, json)?;
        }
        SecretCmd::Reveal { id, reason } => {
            let r: Revealed = api
                .call(
                    Method::POST,
                    &format!("secrets/{id}/reveal"),
                    &[],
                    reason_body(reason).as_ref(),
                )
                .await?;
            println!("{}", serde_json::to_string(&r.fields)?);
        }
        SecretCmd::Ingested { id, json } => {
            let s: SecretView = api
                .call(
                    Method::POST,
                    &format!("secrets/{id}/ingested"),
                    &[],
                    None::<&()>,
                )
                .await?;
            print(&s, json)?;
        }
        SecretCmd::Check { id, json } => {
            let s: SecretView = api
                .call(
                    Method::POST,
                    &format!("secrets/{id}/check"),
                    &[],
                    None::<&()>,
                )
                .await?;
            print(&s, json)?;
        }
        SecretCmd::Shred { id, reason, json } => {
            let s: SecretView = api
                .call(
                    Method::DELETE,
                    &format!("secrets/{id}"),
                    &[],
                    reason_body(reason).as_ref(),
                )
                .await?;
            print(&s, json)?;
        }
    }
    Ok(())
}

/// One line per secret: id, status, check, provider, organization, fingerprint.
fn line(s: &SecretView) -> String {
    format!(
        "{}  {:<9} {:<19} {:<16} {:<30} {}",
        s.id,
        s.status,
        s.check.status.as_str(),
        s.provider,
        s.organization,
        s.fingerprint
    )
}

fn print(s: &SecretView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
    } else {
        println!("{}", line(s));
        println!(
            "  submitted by {} <{}> at {}",
            s.submitter_name,
            s.submitter_email,
            s.created_at.to_rfc3339()
        );
        println!("  check: {}", s.check.detail);
        if !s.check.missing.is_empty() {
            println!("  missing: {}", s.check.missing.join(", "));
        }
    }
    Ok(())
}
