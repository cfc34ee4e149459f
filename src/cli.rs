//! The `keydrop` command line. Results a script captures go to stdout;
//! messages for people go to stderr.

use crate::config::{self, Config};
use crate::crypto::{self, KekId};
use crate::domain::{HumanDuration, Scopes, StaffSecret};
use crate::providers::PROVIDERS;
use crate::service::links::{self, LinkInput, RawLink, RevokeError};
use crate::startup::{shutdown_signal, Application, Migrations};
use crate::store::{self, audit::Actor, requests, tokens};
use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "keydrop",
    version,
    about = "A secure key drop for API credentials"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the public and internal listeners.
    Serve {
        /// Do not apply migrations on start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Make a new key-encryption key; prints `ID=base64key`.
    Keygen {
        /// The KEK id (default: kek-YYYYMMDD).
        #[arg(long)]
        id: Option<String>,
    },
    /// Manage staff tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage drop links.
    #[command(subcommand)]
    Request(RequestCmd),
    /// Check and export the audit trail.
    #[command(subcommand)]
    Audit(crate::chain::cli::AuditCmd),
    /// List the provider catalog.
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// Rewrap every data key under the active (first) KEK; progress on stderr.
    Rotate(crate::ops::cli::RotateArgs),
    /// Maintain stored fingerprints (`keydrop fingerprints refresh`).
    #[command(subcommand)]
    Fingerprints(crate::ops::cli::FingerprintsCmd),
    /// Apply the retention policy now; prints what was shredded.
    Purge(crate::ops::cli::PurgeArgs),
    /// Exit 0 when the local server answers /healthz (for Docker's HEALTHCHECK).
    Healthcheck(crate::ops::cli::HealthcheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a staff token; prints the token alone (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: read, request, reveal, admin.
        #[arg(long)]
        scope: String,
        /// Lifetime such as 90d; default: no expiry.
        #[arg(long)]
        expires_in: Option<HumanDuration>,
    },
    /// List staff tokens (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke the live token with this name.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// Create a drop link; prints the URL alone.
    Create(CreateLink),
    /// List drop links.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a drop link by id.
    Revoke { id: Uuid },
}

#[derive(Debug, Args)]
pub struct CreateLink {
    #[arg(long)]
    org: String,
    #[arg(long)]
    provider: String,
    /// Lifetime such as 7d (default: KEYDROP_LINK_TTL, 7d).
    #[arg(long)]
    expires_in: Option<String>,
    /// How many submissions the link accepts (default 1).
    #[arg(long)]
    max_uses: Option<i64>,
    #[arg(long)]
    contact: Option<String>,
    #[arg(long)]
    note: Option<String>,
    /// Print the created link as JSON instead of the bare URL.
    #[arg(long)]
    json: bool,
}

pub use crate::ops::cli::ExitStatus;

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen { id } => keygen(id),
        Command::Providers { json } => {
            providers(json);
            Ok(())
        }
        Command::Migrate => migrate().await,
        Command::Serve { no_migrate } => serve(no_migrate).await,
        Command::Token(cmd) => token(cmd).await,
        Command::Request(cmd) => request(cmd).await,
        Command::Audit(cmd) => {
            let (_, db) = connect().await?;
            crate::chain::cli::run(cmd, &db).await
        }
        Command::Rotate(args) => crate::ops::cli::rotate(args).await,
        Command::Fingerprints(cmd) => crate::ops::cli::fingerprints(cmd).await,
        Command::Purge(args) => crate::ops::cli::purge(args).await,
        Command::Healthcheck(args) => crate::ops::cli::healthcheck(args).await,
    }
}

fn keygen(id: Option<String>) -> anyhow::Result<()> {
    let id = id.unwrap_or_else(|| format!("kek-{}", Utc::now().format("%Y%m%d")));
    let id = KekId::parse(&id).with_context(|| {
        format!("invalid KEK id {id:?}: use 1-64 characters from A-Z a-z 0-9 . _ -")
    })?;
    println!("{}", *crypto::generate_kek(&id)?);
    Ok(())
}

fn providers(as_json: bool) {
    if as_json {
        let items: Vec<_> = PROVIDERS
            .iter()
            .map(|p| {
                json!({
                    "id": p.id, "name": p.name, "credential": p.credential,
                    "fields": p.fields.iter().map(|f| json!({"name": f.name, "label": f.label, "secret": f.secret, "required": f.required})).collect::<Vec<_>>(),
                    "permissions": p.permissions,
                    "upstreams": p.upstreams.iter().map(|u| u.env).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items).expect("json"));
        return;
    }
    for p in PROVIDERS {
        let fields: Vec<String> = p
            .fields
            .iter()
            .map(|f| format!("{}{}", f.name, if f.required { "" } else { "?" }))
            .collect();
        println!("{:<18} {:<40} fields: {}", p.id, p.name, fields.join(", "));
    }
}

async fn migrate() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let db = store::connect(&config.database_url).await?;
    let done = store::migrate(&db).await;
    db.close().await;
    match done? {
        store::Migrated::Applied(v) => {
            eprintln!("applied {} migration(s): {}", v.len(), store::versions(&v))
        }
        store::Migrated::Current => eprintln!("the database schema is current; nothing to apply"),
        store::Migrated::Ahead(v) => eprintln!(
            "this database belongs to a newer Keydrop: it has migration(s) {} that keydrop {} \
             does not know. Nothing to apply; this version still serves it (migrations only \
             add), so a rollback or a rolling upgrade works. Run migrations with the newest \
             binary.",
            store::versions(&v),
            env!("CARGO_PKG_VERSION")
        ),
    }
    Ok(())
}

async fn serve(no_migrate: bool) -> anyhow::Result<()> {
    // First, so a SIGTERM during start-up still ends in a graceful stop.
    let shutdown = shutdown_signal();
    let config = Config::from_env()?;
    let keyring = config::load_keyring()?;
    let db = store::connect(&config.database_url).await?;
    let migrations = if no_migrate {
        Migrations::Check
    } else {
        Migrations::Apply
    };
    let app = match Application::build_with(config, keyring, db.clone(), migrations).await {
        Ok(app) => app,
        Err(e) => {
            db.close().await;
            return Err(e);
        }
    };
    let result = app.run_until(shutdown).await;
    db.close().await;
    result
}

/// Configuration and a pool on a database that has been migrated.
async fn connect() -> anyhow::Result<(Config, sqlx::PgPool)> {
    let config = Config::from_env()?;
    let db = store::connect(&config.database_url).await?;
    store::require_migrated(&db).await?;
    Ok((config, db))
}

async fn token(cmd: TokenCmd) -> anyhow::Result<()> {
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
            let expires_at = expires_in.map(|d| Utc::now() + d.as_chrono());
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
                for t in all {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= Utc::now()) {
                        "expired"
                    } else {
                        "live"
                    };
                    println!(
                        "{:<24} {:<8} {:<24} last used {}",
                        t.name,
                        state,
                        t.scopes.join(","),
                        t.last_used_at.map_or("never".into(), |d| d.to_rfc3339())
                    );
                }
            }
        }
        TokenCmd::Revoke { name } => {
            let mut tx = db.begin().await?;
            let Some(id) = tokens::revoke_by_name(&mut *tx, &name).await? else {
                bail!("no live token named {name:?}");
            };
            store::audit::record(
                &mut *tx,
                store::audit::NewEvent::success(&Actor::cli(), "token.revoked")
                    .detail(json!({ "token_id": id, "name": name })),
            )
            .await?;
            tx.commit().await?;
            eprintln!("revoked token {name:?}");
        }
    }
    Ok(())
}

async fn request(cmd: RequestCmd) -> anyhow::Result<()> {
    let (config, db) = connect().await?;
    match cmd {
        RequestCmd::Create(c) => {
            let input = LinkInput::parse(
                RawLink {
                    organization: &c.org,
                    provider: &c.provider,
                    expires_in: c.expires_in.as_deref(),
                    max_uses: c.max_uses,
                    contact_email: c.contact.as_deref(),
                    note: c.note.as_deref(),
                },
                config.link_ttl,
            )
            .map_err(anyhow::Error::msg)?;
            let created = links::create(&db, &config.public_url, &Actor::cli(), &input).await?;
            if c.json {
                println!(
                    "{}",
                    json!({"id": created.request.id, "url": created.url, "expires_at": created.request.expires_at, "max_uses": created.request.max_uses})
                );
            } else {
                eprintln!(
                    "drop link for {} ({}), expires {}, {} use(s); send it to the customer admin:",
                    input.organization,
                    input.provider.id,
                    created.request.expires_at.to_rfc3339(),
                    input.max_uses
                );
                println!("{}", created.url);
            }
        }
        RequestCmd::List { json } => {
            let all = requests::list(&db, requests::Filter::default(), 1000).await?;
            let now = Utc::now();
            if json {
                let items: Vec<_> = all
                    .iter()
                    .map(|r| json!({"id": r.id, "organization": r.organization, "provider": r.provider, "status": r.state(now), "use_count": r.use_count, "max_uses": r.max_uses, "created_at": r.created_at, "expires_at": r.expires_at}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                for r in all {
                    println!(
                        "{}  {:<8} {:<18} {:<30} uses {}/{}  expires {}",
                        r.id,
                        format!("{:?}", r.state(now)).to_lowercase(),
                        r.provider,
                        r.organization,
                        r.use_count,
                        r.max_uses,
                        r.expires_at.to_rfc3339()
                    );
                }
            }
        }
        RequestCmd::Revoke { id } => match links::revoke(&db, &Actor::cli(), id).await {
            Ok(_) => eprintln!("revoked drop link {id}"),
            Err(RevokeError::Db(e)) => return Err(e.into()),
            Err(e) => bail!("{e}"),
        },
    }
    Ok(())
}
