//! KEK canaries: refuse to run with a key the database was not written with.

use crate::crypto::{self, Keyring};
use sqlx::PgPool;

/// The outcome of comparing the configured ring with the database.
#[derive(Debug, Default)]
pub struct KeyringStatus {
    /// KEK ids whose configured key does not match the stored canary.
    pub mismatched: Vec<String>,
    /// KEK ids that wrap live secrets but are not in the ring, with how many
    /// rows each wraps: those secrets cannot be revealed by this process.
    pub missing: Vec<(String, i64)>,
    /// Configured KEK ids without a canary yet: no process has loaded them
    /// against this database before.
    pub unregistered: Vec<String>,
}

impl KeyringStatus {
    pub fn is_valid(&self) -> bool {
        self.mismatched.is_empty()
    }
}

/// Stores a canary for every configured KEK not seen before.
pub async fn register(pool: &PgPool, ring: &Keyring) -> anyhow::Result<()> {
    for kek in ring.iter() {
        let canary = crypto::make_canary(kek)?;
        sqlx::query!(
            "INSERT INTO kek_canaries (kek_id, canary) VALUES ($1, $2) ON CONFLICT (kek_id) DO NOTHING",
            kek.id().as_str(),
            canary
        )
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Compares each configured KEK with its canary, and lists ids still in use but not configured.
pub async fn status(pool: &PgPool, ring: &Keyring) -> sqlx::Result<KeyringStatus> {
    let rows = sqlx::query!("SELECT kek_id, canary FROM kek_canaries")
        .fetch_all(pool)
        .await?;
    let mut out = KeyringStatus::default();
    for kek in ring.iter() {
        if !rows.iter().any(|r| r.kek_id == kek.id().as_str()) {
            out.unregistered.push(kek.id().as_str().to_owned());
        }
    }
    for row in rows {
        if let Some(kek) = ring.get(&row.kek_id) {
            if !crypto::check_canary(kek, &row.canary) {
                out.mismatched.push(row.kek_id);
            }
        }
    }
    out.missing = crate::store::maintenance::rows_per_kek(pool)
        .await?
        .into_iter()
        .filter(|(id, _)| ring.get(id).is_none())
        .collect();
    Ok(out)
}

/// Fails with a clear message when a configured KEK does not match the
/// database; otherwise registers canaries for new KEKs. Returns the status as
/// found before registering.
pub async fn verify(pool: &PgPool, ring: &Keyring) -> anyhow::Result<KeyringStatus> {
    let status = status(pool, ring).await?;
    if !status.is_valid() {
        anyhow::bail!(
            "KEK id(s) {} are configured with a different key than this database was written with; \
             refusing to use this ring (check KEYDROP_KEKS / KEYDROP_KEKS_FILE)",
            status.mismatched.join(", ")
        );
    }
    register(pool, ring).await?;
    Ok(status)
}
