//! `keydrop token create|list|revoke`: staff tokens, each change audited.

use super::connect;
use crate::domain::{HumanDuration, Scopes, StaffSecret};
use crate::store::{self, audit::Actor, tokens};
use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a staff token; prints the token alone (shown only once).
    Create {
        /// A name for people (who or what uses the token), 1-100 characters.
        #[arg(long)]
        name: String,
        /// Comma-separated: read, request, reveal, admin.
        #[arg(long)]
        scope: String,
        /// Lifetime such as 30d; `never` for a token that does not expire.
        #[arg(long, default_value = "90d", value_parser = parse_token_lifetime)]
        expires_in: TokenLifetime,
    },
    /// List staff tokens (never the tokens themselves).
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a live token by name or by id (as `token list --json` shows).
    Revoke {
        /// The token's name or id.
        token: String,
    },
}

/// A staff token's lifetime: `None` only when the operator said `never`.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetime(Option<HumanDuration>);

/// `--expires-in`: a duration such as `90d`, or `never` (said explicitly, since
/// a token that never expires outlives the person it was made for).
fn parse_token_lifetime(s: &str) -> Result<TokenLifetime, String> {
    if s.trim().eq_ignore_ascii_case("never") {
        return Ok(TokenLifetime(None));
    }
    HumanDuration::parse(s)
        .map(|d| TokenLifetime(Some(d)))
        .map_err(|e| format!("{e} (or never)"))
}

pub(super) async fn token(cmd: TokenCmd) -> anyhow::Result<()> {
    let (_, db) = connect().await?;
    match cmd {
        TokenCmd::Create {
            name,
            scope,
            expires_in,
        } => {
            let scopes = Scopes::parse(&scope).map_err(anyhow::Error::msg)?;
            let name = name.trim();
            if name.is_empty() || name.len() > 100 {
                bail!("--name must be 1-100 characters");
            }
            let secret = StaffSecret::generate();
            let expires_at = expires_in.0.map(|d| Utc::now() + d.as_chrono());
            let mut tx = db.begin().await?;
            let created = match tokens::insert(&mut *tx, name, &secret.hash(), &scopes, expires_at)
                .await
            {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    bail!("a live token named {name:?} already exists; revoke it first or pick another name")
                }
                other => other?,
            };
            store::audit::record(
                &mut *tx,
                store::audit::NewEvent::success(&Actor::cli(), "token.created").detail(
                    json!({ "token_id": created.id, "name": name, "scopes": scopes.names() }),
                ),
            )
            .await?;
            tx.commit().await?;
            eprintln!(
                "created token {name:?} with scopes {}; it is shown only once",
                scopes.names().join(",")
            );
            println!("{}", secret.expose());
        }
        TokenCmd::List { json } => {
            let all = tokens::list(&db).await?;
            if json {
                let items: Vec<_> = all
                    .iter()
                    .map(|t| json!({"id": t.id, "name": t.name, "scopes": t.scopes, "created_at": t.created_at, "expires_at": t.expires_at, "revoked_at": t.revoked_at, "last_used_at": t.last_used_at}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                println!(
                    "{:<36}  {:<24} {:<8} {:<24} {:<10} {:<10} LAST USED",
                    "ID", "NAME", "STATE", "SCOPES", "CREATED", "EXPIRES"
                );
                for t in all {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= Utc::now()) {
                        "expired"
                    } else {
                        "live"
                    };
                    let day = |d: chrono::DateTime<Utc>| d.format("%Y-%m-%d").to_string();
                    println!(
                        "{:<36}  {:<24} {:<8} {:<24} {:<10} {:<10} {}",
                        t.id,
                        t.name,
                        state,
                        t.scopes.join(","),
                        day(t.created_at),
                        t.expires_at.map_or("never".into(), day),
                        t.last_used_at.map_or("never".into(), |d| d.to_rfc3339())
                    );
                }
            }
        }
        TokenCmd::Revoke { token } => {
            let mut tx = db.begin().await?;
            let (id, name) = match Uuid::parse_str(token.trim()) {
                Ok(id) => match tokens::revoke_by_id(&mut *tx, id).await? {
                    Some(name) => (id, name),
                    None => bail!("no live token with id {id}"),
                },
                Err(_) => match tokens::revoke_by_name(&mut *tx, &token).await? {
                    Some(id) => (id, token),
                    None => bail!("no live token named {token:?}"),
                },
            };
            store::audit::record(
                &mut *tx,
                store::audit::NewEvent::success(&Actor::cli(), "token.revoked")
                    .detail(json!({ "token_id": id, "name": name })),
            )
            .await?;
            tx.commit().await?;
            eprintln!("revoked token {name:?} ({id})");
        }
    }
    Ok(())
}
