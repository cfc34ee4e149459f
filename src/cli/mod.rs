//! The `keydrop` command line. Results a script captures go to stdout;
//! messages for people go to stderr.

mod audit;
mod fingerprints;
mod health;
mod keks;
mod links;
mod purge;
mod remote;
mod rotate;
mod secrets;
mod tokens;

use crate::config::{self, Config};
use crate::crypto::{self, KekId};
use crate::providers::PROVIDERS;
use crate::startup::{shutdown_signal, Application, Migrations};
use crate::store;
use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "keydrop",
    version,
    about = "A secure key drop for API credentials"
)]
pub struct Cli {
    /// Who runs the command, as the audit trail records it (`cli:NAME`;
    /// default: $KEYDROP_ACTOR, else $USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
    #[command(flatten)]
    pub api: remote::ApiArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the public and internal listeners.
    #[command(
        after_help = "Reads its configuration from the environment: DATABASE_URL \
        (required, postgres://…), KEYDROP_KEKS or KEYDROP_KEKS_FILE (the KEK ring, first is \
        active; make a key with `keydrop keygen`), KEYDROP_PUBLIC_URL, KEYDROP_PUBLIC_ADDR, \
        KEYDROP_INTERNAL_ADDR and the other KEYDROP_* variables listed in docs/configuration.md."
    )]
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
    Token(tokens::TokenCmd),
    /// Manage drop links (through the API when KEYDROP_API_URL is set).
    #[command(subcommand)]
    Request(links::RequestCmd),
    /// Secrets that arrived: list, show, reveal, mark ingested, check again
    /// (through the API: KEYDROP_API_URL and KEYDROP_API_TOKEN).
    #[command(subcommand)]
    Secret(secrets::SecretCmd),
    /// Check and export the audit trail (export through the API when KEYDROP_API_URL is set).
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// List the provider catalog.
    Providers {
        /// Print the catalog as JSON, with fields and permissions.
        #[arg(long)]
        json: bool,
    },
    /// Rewrap every data key under the active (first) KEK; progress on stderr.
    Rotate(rotate::RotateArgs),
    /// Key-encryption key maintenance (`keydrop keks adopt ID`).
    #[command(subcommand)]
    Keks(keks::KeksCmd),
    /// Maintain stored fingerprints (`keydrop fingerprints refresh`).
    #[command(subcommand)]
    Fingerprints(fingerprints::FingerprintsCmd),
    /// Apply the retention policy now; prints what was shredded.
    Purge(purge::PurgeArgs),
    /// Exit 0 when the local server answers /healthz (for Docker's HEALTHCHECK).
    Healthcheck(health::HealthcheckArgs),
}

/// A failure that wants a particular exit status (e.g. 130 after Ctrl-C);
/// carried inside `anyhow::Error` and read back by `main`.
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct ExitStatus(pub u8, pub String);

impl Command {
    /// For a command that would use the database here: its name, and whether
    /// the internal API could do it instead.
    fn database_use(&self, through_api: bool) -> Option<(&'static str, bool)> {
        let only = |name| Some((name, false));
        match self {
            Self::Serve { .. } => only("serve"),
            Self::Migrate => only("migrate"),
            Self::Token(_) => only("token"),
            Self::Rotate(_) => only("rotate"),
            Self::Keks(_) => only("keks"),
            Self::Fingerprints(_) => only("fingerprints"),
            Self::Purge(_) => only("purge"),
            Self::Audit(audit::AuditCmd::Verify { .. }) => only("audit verify"),
            Self::Audit(_) if !through_api => Some(("audit export", true)),
            Self::Request(_) if !through_api => Some(("request", true)),
            _ => None,
        }
    }
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // The environment is read by `config` alone (`KEYDROP_ACTOR`, `$USER`).
    if let Some(actor) = cli.actor.clone().or_else(config::cli_actor).as_deref() {
        let actor = actor.trim();
        if actor.is_empty() || actor.len() > 100 || actor.chars().any(char::is_control) {
            bail!("--actor (or KEYDROP_ACTOR) must be 1-100 printable characters");
        }
        store::audit::set_cli_actor(actor);
    } else if let Some(user) = config::operator_name() {
        store::audit::set_cli_actor(&user);
    }
    let remote = remote::Remote::from_args(&cli.api)?;
    if let Some((name, api_can)) = cli.command.database_use(remote.is_some()) {
        if !config::database_url_set() {
            bail!(
                "`keydrop {name}` {}",
                match (api_can, remote.is_some()) {
                    (true, _) =>
                        "needs DATABASE_URL, or KEYDROP_API_URL and KEYDROP_API_TOKEN \
                                  to go through the internal API",
                    (false, true) =>
                        "works on the database directly: set DATABASE_URL \
                                      (the internal API, KEYDROP_API_URL, does not offer it)",
                    (false, false) => "works on the database directly: set DATABASE_URL",
                }
            );
        }
    }
    match cli.command {
        Command::Keygen { id } => keygen(id),
        Command::Providers { json } => {
            providers(json);
            Ok(())
        }
        Command::Migrate => migrate().await,
        Command::Serve { no_migrate } => serve(no_migrate).await,
        Command::Token(cmd) => tokens::token(cmd).await,
        Command::Request(cmd) => match remote {
            Some(api) => links::remote(cmd, &api).await,
            None => links::request(cmd).await,
        },
        Command::Secret(cmd) => secrets::secret(cmd, remote).await,
        Command::Audit(audit::AuditCmd::Export {
            since,
            until,
            after_id,
            action,
        }) if remote.is_some() => {
            let api = remote.expect("checked");
            audit::export_remote(&api, since, until, after_id, action).await
        }
        Command::Audit(cmd) => {
            let (_, db) = connect().await?;
            audit::run(cmd, &db).await
        }
        Command::Rotate(args) => rotate::rotate(args).await,
        Command::Keks(cmd) => keks::keks(cmd).await,
        Command::Fingerprints(cmd) => fingerprints::fingerprints(cmd).await,
        Command::Purge(args) => purge::purge(args).await,
        Command::Healthcheck(args) => health::healthcheck(args).await,
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
