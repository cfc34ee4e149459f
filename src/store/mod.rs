//! Postgres access: every SQL statement Keydrop runs lives under this module.

pub mod actions;
pub mod audit;
pub mod audit_chain;
pub mod canary;
pub mod console;
pub mod fingerprint_keys;
pub mod mail;
pub mod maintenance;
pub mod requests;
pub mod secrets;
pub mod tokens;
pub mod webhooks;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::{str::FromStr, time::Duration};

/// JSON serialised once, straight from the data, and bound as `jsonb` as it
/// is. The hot actions used to build a `serde_json::Value` (a map of owned
/// strings) only for sqlx to serialise it again (issue 16; BENCHMARKS.md).
/// Made only by [`json_text`], so it always holds valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `v` as [`JsonText`]. Only for data that serialises as JSON (no map with
/// non-string keys), which every caller's types are.
pub fn json_text(v: &impl serde::Serialize) -> JsonText {
    JsonText(serde_json::to_string(v).expect("the value serialises as JSON"))
}

impl sqlx::Type<sqlx::Postgres> for JsonText {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <serde_json::Value as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::postgres::PgHasArrayType for JsonText {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <serde_json::Value as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for JsonText {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        // The binary `jsonb` format: version 1, then the JSON text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(sqlx::encode::IsNull::No)
    }
}

/// Migrations compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle at least this long is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// How long the first connection may take before start-up gives up.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// Connects a pool that fails fast when the database is unreachable.
///
/// One connection is opened directly first: the pool would report any
/// failure as "pool timed out", losing the host and the real cause (refused,
/// bad password, TLS) an operator needs.
pub async fn connect(url: &secrecy::SecretString) -> anyhow::Result<PgPool> {
    let url = url.expose_secret();
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    if !matches!(scheme, "postgres" | "postgresql") {
        anyhow::bail!(
            "DATABASE_URL must be a Postgres URL (postgres://user@host/db), not {:?}",
            if scheme.is_empty() {
                "a bare string"
            } else {
                scheme
            }
        );
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| {
            anyhow::anyhow!(
                "DATABASE_URL is not a valid Postgres URL: {}",
                redact_db_error(&e)
            )
        })?
        .application_name("keydrop");
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    match tokio::time::timeout(FIRST_CONNECT, sqlx::ConnectOptions::connect(&options)).await {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
        }
        Ok(Err(e)) => anyhow::bail!(
            "cannot connect to the database at {target}: {}",
            redact_db_error(&e)
        ),
        Err(_) => anyhow::bail!(
            "cannot connect to the database at {target}: no answer within {}s",
            FIRST_CONNECT.as_secs()
        ),
    }
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
        // A submission or a reveal writes in one statement (store::actions)
        // with no transaction around it, so nothing waits for the client's
        // COMMIT: a statement still queued on a row lock when this process
        // goes away (shutdown timeout, SIGKILL) would otherwise run and commit
        // later, recording a reveal nobody received. Postgres 14+ polls the
        // socket while a statement runs and cancels it once the client is
        // gone; older servers lack the setting, so it is set only where known.
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::query(
                    "SELECT set_config('client_connection_check_interval', '1000', false) \
                     WHERE current_setting('server_version_num')::int >= 140000",
                )
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        // Short, so a database outage answers 503 quickly instead of piling up
        // requests; connections are re-established on their own once it is back.
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the database at {target}: {}",
                redact_db_error(&e)
            )
        })?;
    Ok(pool)
}

/// sqlx errors can echo the connection string; keep only the kind of failure.
fn redact_db_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        other => other.to_string(),
    }
}

/// How the database's schema compares with the migrations in this binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Versions applied successfully, lowest first.
    pub applied: Vec<i64>,
    /// Versions this binary has that the database lacks.
    pub pending: Vec<i64>,
    /// Versions the database has that this binary does not know: a newer
    /// Keydrop migrated it (rolling upgrade, or a rollback to this version).
    pub ahead: Vec<i64>,
}

impl Schema {
    /// `current`, `pending` (this binary needs migrations the database
    /// lacks) or `ahead` (a newer Keydrop migrated it; the schema only grows,
    /// so this binary still runs on it).
    pub fn status(&self) -> &'static str {
        if !self.pending.is_empty() {
            "pending"
        } else if !self.ahead.is_empty() {
            "ahead"
        } else {
            "current"
        }
    }

    /// True when no migration was ever applied (a new, empty database).
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }
}

/// Reads the applied migrations. A database sqlx never migrated (no
/// `_sqlx_migrations` table) has none applied.
pub async fn schema(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<Schema> {
    let applied = match maintenance::applied_migrations(db).await {
        Ok(v) => v,
        // 42P01: undefined_table.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
        Err(e) => return Err(e),
    };
    let known: std::collections::BTreeSet<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let have: std::collections::BTreeSet<i64> = applied.iter().copied().collect();
    Ok(Schema {
        pending: known.difference(&have).copied().collect(),
        ahead: have.difference(&known).copied().collect(),
        applied,
    })
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrated {
    /// These versions were applied now.
    Applied(Vec<i64>),
    /// Nothing was pending.
    Current,
    /// A newer Keydrop migrated the database (these versions are unknown
    /// here) and nothing this binary knows is missing: nothing was applied.
    Ahead(Vec<i64>),
}

/// Applies pending migrations, unless a newer Keydrop already migrated the
/// database: then nothing is applied (sqlx would refuse with "previously
/// applied but missing"), and the caller says so.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<Migrated> {
    let before = schema(pool).await?;
    if !before.ahead.is_empty() {
        if !before.pending.is_empty() {
            anyhow::bail!(
                "this database was migrated by a newer Keydrop (it has migration(s) {} that \
                 keydrop {} does not know) and lacks migration(s) {} that this version needs; \
                 run the newer version's `keydrop migrate` instead",
                versions(&before.ahead),
                env!("CARGO_PKG_VERSION"),
                versions(&before.pending)
            );
        }
        return Ok(Migrated::Ahead(before.ahead));
    }
    if before.pending.is_empty() {
        return Ok(Migrated::Current);
    }
    MIGRATOR.run(pool).await?;
    Ok(Migrated::Applied(before.pending))
}

/// Refuses to go on against a database that was never migrated, naming the fix.
pub async fn require_migrated(pool: &PgPool) -> anyhow::Result<Schema> {
    let schema = schema(pool).await?;
    if schema.is_empty() {
        anyhow::bail!(
            "the database has no Keydrop tables yet: run `keydrop migrate` first \
             (or start `keydrop serve` without --no-migrate)"
        );
    }
    Ok(schema)
}

/// `20261128000001, 20261128020001`, for messages.
pub fn versions(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}
