//! Postgres access: every SQL statement Keydrop runs lives under this module.

pub mod audit;
pub mod audit_chain;
pub mod canary;
pub mod maintenance;
pub mod requests;
pub mod secrets;
pub mod tokens;
pub mod webhooks;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::{str::FromStr, time::Duration};

/// Migrations compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle at least this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// Connects a pool that fails fast when the database is unreachable.
pub async fn connect(url: &secrecy::SecretString) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|e| {
            anyhow::anyhow!(
                "DATABASE_URL is not a valid Postgres URL: {}",
                redact_db_error(&e)
            )
        })?
        .application_name("keydrop");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        // sqlx pings every connection it hands out by default: one extra
        // round-trip per acquire (two per submission or reveal, ~11 % of the
        // server's CPU under load; see BENCHMARKS.md). Ping only connections
        // that sat idle, which is where a database restart leaves dead ones.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        // Short, so a database outage answers 503 quickly instead of piling up
        // requests; connections are re-established on their own once it is back.
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {}", redact_db_error(&e)))?;
    Ok(pool)
}

/// sqlx errors can echo the connection string; keep only the kind of failure.
fn redact_db_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        other => other.to_string(),
    }
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
