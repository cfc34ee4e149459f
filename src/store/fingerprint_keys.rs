//! The stored fingerprint key (see `crypto::fingerprint`): loaded at start-up,
//! made on first use, rewrapped under the active KEK.

use crate::crypto::fingerprint::{self, WrappedFingerprintKey};
use crate::crypto::{Fingerprinter, Keyring};
use anyhow::Context as _;
use sqlx::{PgConnection, PgPool};

/// Serialises start-ups deciding about the key, so replicas starting together
/// agree on one generation instead of each making its own.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('keydrop fingerprint key'))";

/// The fingerprint key in use. Rewraps it when an older KEK wraps it; makes
/// a new generation when none exists or its KEK is no longer configured
/// (earlier fingerprints then differ until `keydrop fingerprints refresh`).
/// A configured KEK that fails to open it is an error, never a silent new key.
pub async fn load(db: &PgPool, ring: &Keyring) -> anyhow::Result<Fingerprinter> {
    let mut tx = db.begin().await?;
    sqlx::query(LOCK).execute(&mut *tx).await?;
    if let Some((generation, stored)) = newest(&mut tx).await? {
        if ring.get(&stored.kek_id).is_some() {
            let key = fingerprint::open(ring, &stored).with_context(|| {
                format!(
                    "the fingerprint key (generation {generation}) does not open with KEK {:?}; \
                     check KEYDROP_KEKS / KEYDROP_KEKS_FILE",
                    stored.kek_id
                )
            })?;
            if stored.kek_id != ring.active().id().as_str() {
                store_rewrapped(&mut tx, generation, &fingerprint::wrap(ring, &key)?).await?;
            }
            tx.commit().await?;
            return Ok(Fingerprinter::from_key(generation, &key));
        }
        tracing::warn!(
            generation,
            kek_id = %stored.kek_id,
            "the KEK wrapping the fingerprint key is not configured: starting a new fingerprint key; \
             run `keydrop fingerprints refresh` so stored fingerprints match new ones"
        );
    }
    let (key, wrapped) = Fingerprinter::generate(ring)?;
    let generation = sqlx::query_scalar!(
        "INSERT INTO fingerprint_keys (kek_id, wrapped, format_version) VALUES ($1, $2, $3) RETURNING generation",
        wrapped.kek_id,
        wrapped.wrapped,
        wrapped.format_version
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Fingerprinter::from_key(generation, &key[..]))
}

/// Rewraps the fingerprint key under the active KEK (part of `keydrop rotate`).
/// Returns false when its KEK is not in the ring, so it could not be rewrapped.
pub async fn rewrap(db: &PgPool, ring: &Keyring) -> anyhow::Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query(LOCK).execute(&mut *tx).await?;
    let Some((generation, stored)) = newest(&mut tx).await? else {
        return Ok(true);
    };
    if stored.kek_id == ring.active().id().as_str() {
        return Ok(true);
    }
    let key = match fingerprint::open(ring, &stored) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(kek_id = %stored.kek_id, error = %e, "cannot rewrap the fingerprint key");
            return Ok(false);
        }
    };
    store_rewrapped(&mut tx, generation, &fingerprint::wrap(ring, &key)?).await?;
    tx.commit().await?;
    Ok(true)
}

async fn newest(tx: &mut PgConnection) -> sqlx::Result<Option<(i32, WrappedFingerprintKey)>> {
    let row = sqlx::query!(
        "SELECT generation, kek_id, wrapped, format_version FROM fingerprint_keys ORDER BY generation DESC LIMIT 1"
    )
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|r| {
        (
            r.generation,
            WrappedFingerprintKey {
                kek_id: r.kek_id,
                wrapped: r.wrapped,
                format_version: r.format_version,
            },
        )
    }))
}

async fn store_rewrapped(
    tx: &mut PgConnection,
    generation: i32,
    w: &WrappedFingerprintKey,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE fingerprint_keys SET kek_id = $2, wrapped = $3, format_version = $4 WHERE generation = $1",
        generation,
        w.kek_id,
        w.wrapped,
        w.format_version
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// A secret whose stored fingerprint predates the current rule or key.
#[derive(Debug)]
pub struct Stale {
    pub id: uuid::Uuid,
    pub provider: String,
    /// `None` once shredded: nothing left to recompute from.
    pub envelope: Option<crate::crypto::Envelope>,
}

/// Locks up to `limit` secrets with a `legacy` fingerprint, or a keyed one
/// under another key generation than `generation`, with ids above `after`.
pub async fn claim_stale(
    tx: &mut PgConnection,
    generation: i32,
    after: uuid::Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Stale>> {
    let rows = sqlx::query!(
        r#"SELECT id, provider, payload, wrapped_dek, kek_id, format_version
           FROM secrets
           WHERE (fingerprint_kind = 'legacy'
                  OR (fingerprint_kind = 'keyed' AND fingerprint_key <> $1))
             AND id > $2
           ORDER BY id
           LIMIT $3
           FOR UPDATE SKIP LOCKED"#,
        generation,
        after,
        limit
    )
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Stale {
            id: r.id,
            provider: r.provider,
            envelope: match (r.payload, r.wrapped_dek, r.kek_id) {
                (Some(payload), Some(wrapped_dek), Some(kek_id)) => Some(crate::crypto::Envelope {
                    format_version: r.format_version,
                    kek_id,
                    payload,
                    wrapped_dek,
                }),
                _ => None,
            },
        })
        .collect())
}

/// Stores recomputed fingerprints for rows locked by [`claim_stale`].
pub async fn store_refreshed(
    tx: &mut PgConnection,
    generation: i32,
    rows: &[(uuid::Uuid, crate::crypto::Fingerprint)],
) -> sqlx::Result<u64> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let texts: Vec<&str> = rows.iter().map(|(_, f)| f.text.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|(_, f)| f.kind.as_str()).collect();
    let done = sqlx::query!(
        r#"UPDATE secrets s SET fingerprint = u.text, fingerprint_kind = u.kind,
                  fingerprint_key = CASE WHEN u.kind = 'keyed' THEN $4::integer END
           FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(id, text, kind)
           WHERE s.id = u.id"#,
        &ids,
        &texts as &[&str],
        &kinds as &[&str],
        generation
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// Secrets whose fingerprint [`claim_stale`] would pick up.
pub async fn count_stale(db: impl sqlx::PgExecutor<'_>, generation: i32) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM secrets
           WHERE fingerprint_kind = 'legacy' OR (fingerprint_kind = 'keyed' AND fingerprint_key <> $1)"#,
        generation
    )
    .fetch_one(db)
    .await
}
