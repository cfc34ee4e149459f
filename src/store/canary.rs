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
    /// Configured KEK ids without a canary that nevertheless wrap stored
    /// secrets (the canary was deleted, or never written), with their row
    /// counts. Registering a canary for them would trust whatever key is
    /// configured, so [`verify`] refuses until `keydrop keks adopt ID`.
    pub unproven: Vec<(String, i64)>,
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
    // Ids with a backend prefix (`vault:…`, `aws:…`) name KMS keys: no local
    // canary; the KMS start-up canary (`kms::Keys::connect`) checks those.
    // Rows are counted only for the ids reported (an error state), so the
    // readiness refresh's cost does not grow with the table.
    let in_use = crate::store::maintenance::keks_in_use(pool).await?;
    for id in in_use.into_iter().filter(|id| !id.contains(':')) {
        let unproven = out.unregistered.contains(&id);
        let missing = ring.get(&id).is_none();
        if unproven || missing {
            let rows = crate::store::maintenance::rows_under(pool, &id).await?;
            if unproven {
                out.unproven.push((id.clone(), rows));
            }
            if missing {
                out.missing.push((id, rows));
            }
        }
    }
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
    if !status.unproven.is_empty() {
        let ids: Vec<String> = status
            .unproven
            .iter()
            .map(|(id, rows)| format!("{id} ({rows} secrets)"))
            .collect();
        anyhow::bail!(
            "KEK id(s) {} wrap stored secrets but have no canary in this database (it was \
             deleted, or never written), so there is no proof that the configured key is the one \
             they were written with; refusing to use this ring. If you are sure it is, run \
             `keydrop keks adopt ID`: it checks that the key opens those secrets' data keys and \
             then records its canary",
            ids.join(", ")
        );
    }
    register(pool, ring).await?;
    Ok(status)
}

/// What [`adopt`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Adopted {
    /// The canary was recorded after `checked` data keys opened with the key.
    Recorded { checked: usize },
    /// The id already had a canary matching the configured key.
    AlreadyRegistered,
}

/// How many of a KEK id's data keys [`adopt`] unwraps before trusting the key.
const ADOPT_SAMPLE: i64 = 200;

/// Records the canary of a configured KEK id that wraps secrets but lost its
/// canary, after proving the configured key unwraps (up to 200 of) those
/// secrets' data keys. Every data key checked must open: one that does not
/// means the configured key is not the one the rows were written with.
pub async fn adopt(pool: &PgPool, ring: &Keyring, id: &str) -> anyhow::Result<Adopted> {
    let Some(kek) = ring.get(id) else {
        anyhow::bail!(
            "KEK id {id:?} is not in the configured ring; add it to KEYDROP_KEKS or \
             KEYDROP_KEKS_FILE (with the key those secrets were written with) and run this again"
        );
    };
    let existing = sqlx::query_scalar!("SELECT canary FROM kek_canaries WHERE kek_id = $1", id)
        .fetch_optional(pool)
        .await?;
    if let Some(canary) = existing {
        anyhow::ensure!(
            crypto::check_canary(kek, &canary),
            "KEK id {id:?} already has a canary, made with a different key than the one \
             configured; nothing adopted (check KEYDROP_KEKS / KEYDROP_KEKS_FILE)"
        );
        return Ok(Adopted::AlreadyRegistered);
    }
    let rows = sqlx::query!(
        r#"SELECT id, wrapped_dek AS "wrapped_dek!", format_version FROM secrets
           WHERE payload IS NOT NULL AND kek_id = $1 ORDER BY id LIMIT $2"#,
        id,
        ADOPT_SAMPLE
    )
    .fetch_all(pool)
    .await?;
    let failed = rows
        .iter()
        .filter(|r| {
            let envelope = crypto::Envelope {
                format_version: r.format_version,
                kek_id: id.to_owned(),
                wrapped_dek: r.wrapped_dek.clone(),
                payload: Vec::new(),
            };
            !crypto::unwraps_dek(ring, r.id, &envelope)
        })
        .count();
    anyhow::ensure!(
        failed == 0,
        "the key configured as {id:?} does not open {failed} of the {} data keys checked: it is \
         not the key those secrets were written with; nothing adopted",
        rows.len()
    );
    sqlx::query!(
        "INSERT INTO kek_canaries (kek_id, canary) VALUES ($1, $2) ON CONFLICT (kek_id) DO NOTHING",
        id,
        crypto::make_canary(kek)?
    )
    .execute(pool)
    .await?;
    Ok(Adopted::Recorded {
        checked: rows.len(),
    })
}
