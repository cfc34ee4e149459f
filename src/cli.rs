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
    /// Who runs the command, as the audit trail records it (`cli:NAME`;
    /// default: $USER).
    #[arg(long, global = true, env = "KEYDROP_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
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
    Token(TokenCmd),
    /// Manage drop links.
    #[command(subcommand)]
    Request(RequestCmd),
    /// Check and export the audit trail.
    #[command(subcommand)]
    Audit(crate::chain::cli::AuditCmd),
    /// List the provider catalog.
    Providers {
        /// Print the catalog as JSON, with fields and permissions.
        #[arg(long)]
        json: bool,
    },
    /// Rewrap every data key under the active (first) KEK; progress on stderr.
    Rotate(crate::ops::cli::RotateArgs),
    /// Key-encryption key maintenance (`keydrop keks adopt ID`).
    #[command(subcommand)]
    Keks(crate::ops::cli::KeksCmd),
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

#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// Create a drop link; prints the URL alone.
    Create(CreateLink),
    /// List drop links.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a drop link by id or by its URL.
    Revoke {
        /// The link's id (printed by `request create`) or the drop link URL itself.
        link: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateLink {
    /// The customer organization, as shown on the drop page.
    #[arg(long)]
    org: String,
    /// The provider id (see `keydrop providers`), e.g. greenhouse or generic.
    #[arg(long)]
    provider: String,
    /// Lifetime such as 7d (default: KEYDROP_LINK_TTL, 7d).
    #[arg(long)]
    expires_in: Option<String>,
    /// How many submissions the link accepts (default 1).
    #[arg(long)]
    max_uses: Option<i64>,
    /// The customer admin's email address, for staff reference.
    #[arg(long)]
    contact: Option<String>,
    /// A note shown to the customer on the drop page.
    #[arg(long)]
    note: Option<String>,
    /// Print the created link as JSON instead of the bare URL.
    #[arg(long)]
    json: bool,
}

pub use crate::ops::cli::ExitStatus;

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(actor) = cli.actor.as_deref() {
        let actor = actor.trim();
        if actor.is_empty() || actor.len() > 100 || actor.chars().any(char::is_control) {
            bail!("--actor must be 1-100 printable characters");
        }
        store::audit::set_cli_actor(actor);
    }
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
        Command::Keks(cmd) => crate::ops::cli::keks(cmd).await,
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
            .map_err(|e| anyhow::Error::msg(flag_names(&e)))?;
            if is_local(&config.public_url) {
                eprintln!(
                    "warning: this link points at {} (KEYDROP_PUBLIC_URL {}): a customer cannot \
                     open it. Set KEYDROP_PUBLIC_URL to the address customers reach.",
                    config.public_url.origin().ascii_serialization(),
                    if std::env::var_os("KEYDROP_PUBLIC_URL").is_some() {
                        "is local"
                    } else {
                        "is not set"
                    }
                );
            }
            let created = links::create(&db, &config.public_url, &Actor::cli(), &input).await?;
            if c.json {
                println!(
                    "{}",
                    json!({"id": created.request.id, "url": created.url, "expires_at": created.request.expires_at, "max_uses": created.request.max_uses})
                );
            } else {
                eprintln!(
                    "drop link {} for {} ({}), expires {}, {} use(s); send it to the customer admin:",
                    created.request.id,
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
        RequestCmd::Revoke { link } => {
            let id = match Uuid::parse_str(link.trim()) {
                Ok(id) => id,
                Err(_) => link_id_from_url(&db, &link).await?,
            };
            match links::revoke(&db, &Actor::cli(), id).await {
                Ok(_) => eprintln!("revoked drop link {id}"),
                Err(RevokeError::Db(e)) => return Err(e.into()),
                Err(e) => bail!("{e}"),
            }
        }
    }
    Ok(())
}

/// The id of the link a drop-link URL (`…/d/TOKEN`) opens. The token is
/// looked up by its hash, as the drop page does; it is never printed.
async fn link_id_from_url(db: &sqlx::PgPool, link: &str) -> anyhow::Result<Uuid> {
    let token = link
        .trim()
        .trim_end_matches('/')
        .rsplit_once("/d/")
        .map(|(_, t)| t)
        .and_then(crate::domain::DropToken::parse)
        .context("give the link's id (see `keydrop request list`) or its whole URL, …/d/TOKEN")?;
    match requests::find_by_token(db, &token.hash()).await? {
        Some(r) => Ok(r.id),
        None => bail!("no drop link has this URL"),
    }
}

/// Names the command-line flags in a link-validation message written for
/// the API (`expires_in: …` → `--expires-in: …`).
fn flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 5] = [
        ("organization", "--org"),
        ("expires_in", "--expires-in"),
        ("max_uses", "--max-uses"),
        ("contact_email", "--contact"),
        ("note", "--note"),
    ];
    for (api, flag) in FLAGS {
        if let Some(rest) = message.strip_prefix(api) {
            return format!("{flag}{rest}");
        }
    }
    if message.starts_with("unknown provider") {
        return format!("--provider: {message}");
    }
    message.to_owned()
}

/// Whether drop links under `base` point at this machine (localhost,
/// loopback or an unspecified address), so a customer could not open them.
fn is_local(base: &url::Url) -> bool {
    match base.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_errors_name_the_flags() {
        assert_eq!(
            flag_names("expires_in: \"x\" is not a duration"),
            "--expires-in: \"x\" is not a duration"
        );
        assert_eq!(
            flag_names("max_uses must be between 1 and 1000"),
            "--max-uses must be between 1 and 1000"
        );
        assert!(flag_names("unknown provider \"x\": use one of a").starts_with("--provider: "));
    }

    #[test]
    fn local_link_bases_are_recognised() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
        ] {
            assert!(is_local(&url::Url::parse(local).unwrap()), "{local}");
        }
        assert!(!is_local(
            &url::Url::parse("https://drop.example.com").unwrap()
        ));
    }
}
