//! `keydrop fingerprints refresh`: recompute stored fingerprints by opening
//! the envelopes, for rows written before fingerprints were keyed (which may
//! hold the last four characters of a short secret) or under an older
//! fingerprint key. Each row is locked and opened through `service::secrets`
//! (`lock`, `Sealed::open_fields` with `kms::Keys`), the one path that opens
//! a secret, so a KMS-wrapped data key is unwrapped here as for a reveal.
//!
//! Like rotation, each batch is one transaction locking its rows with
//! `SKIP LOCKED`, so the command runs beside serving replicas and can be
//! stopped at any moment: the next run carries on with the rows still stale.
//! Audit events already written are append-only and are not changed (see the
//! README's upgrade note).

use crate::crypto::{Fingerprint, FingerprintKind, Fingerprinter};
use crate::kms::Keys;
use crate::providers;
use crate::service::secrets::{self, SecretError};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::fingerprint_keys;
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// How a refresh run proceeds.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rows per batch (one transaction each).
    pub batch: i64,
    /// Stop after this many batches; the next run carries on.
    pub max_batches: Option<u64>,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Rows given a fingerprint under the current rule and key.
    pub refreshed: u64,
    /// Shredded rows whose old fingerprint was erased: without the envelope
    /// there is no telling whether it showed too much.
    pub erased: u64,
    /// Rows whose envelope could not be opened (their KEK is missing, or the row
    /// was altered); they keep their old fingerprint.
    pub failures: u64,
    /// Rows still stale when the run ended.
    pub remaining: u64,
    pub batches: u64,
    pub complete: bool,
    pub interrupted: bool,
}

/// Recomputes stale fingerprints batch by batch until none is left (apart
/// from failures), `max_batches` is reached or `stop` is set. Records one
/// `fingerprints.refreshed` audit event.
pub async fn refresh(
    db: &PgPool,
    keys: &Keys,
    fingerprinter: &Fingerprinter,
    actor: &Actor,
    opts: Options,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&Summary),
) -> anyhow::Result<Summary> {
    anyhow::ensure!(opts.batch > 0, "the batch size must be at least 1");
    let generation = fingerprinter.generation();
    let mut summary = Summary::default();
    // A cursor: failed rows stay stale, and must not be met again in this run.
    let mut after = Uuid::nil();
    loop {
        if opts.max_batches.is_some_and(|m| summary.batches >= m) || stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            break;
        }
        let mut tx = db.begin().await?;
        let rows = fingerprint_keys::claim_stale(&mut tx, generation, after, opts.batch).await?;
        let Some(last) = rows.last() else {
            tx.rollback().await?;
            break;
        };
        after = last.id;
        let mut fresh = Vec::with_capacity(rows.len());
        for row in &rows {
            match recompute(&mut tx, keys, fingerprinter, row.id).await {
                Ok(Some(f)) => {
                    summary.refreshed += 1;
                    fresh.push((row.id, f));
                }
                Ok(None) => {
                    summary.erased += 1;
                    let none = Fingerprint {
                        kind: FingerprintKind::None,
                        text: String::new(),
                    };
                    fresh.push((row.id, none));
                }
                // The batch's transaction is gone with the database: stop.
                Err(Failed::Secret(SecretError::Db(e))) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(secret_id = %row.id, error = %e, "cannot recompute a fingerprint");
                    summary.failures += 1;
                }
            }
        }
        fingerprint_keys::store_refreshed(&mut tx, generation, &fresh).await?;
        tx.commit().await?;
        summary.batches += 1;
        on_progress(&summary);
    }
    summary.remaining = fingerprint_keys::count_stale(db, generation).await? as u64;
    summary.complete = summary.remaining == 0;
    let event = if summary.failures == 0 && !summary.interrupted {
        NewEvent::success(actor, "fingerprints.refreshed")
    } else {
        NewEvent::failure(actor, "fingerprints.refreshed", "failure")
    };
    audit::record(db, event.detail(json!(summary))).await?;
    Ok(summary)
}

/// Why one row's fingerprint could not be recomputed.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
}

/// The fingerprint of one row (locked by the batch's claim) under the
/// current rule; `None` when shredded.
async fn recompute(
    tx: &mut PgConnection,
    keys: &Keys,
    fingerprinter: &Fingerprinter,
    id: Uuid,
) -> Result<Option<Fingerprint>, Failed> {
    let sealed = match secrets::lock(tx, id).await {
        Ok(sealed) => sealed,
        Err(SecretError::Shredded) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let provider = providers::find(&sealed.meta.provider)
        .ok_or_else(|| Failed::UnknownProvider(sealed.meta.provider.clone()))?;
    let fields = sealed.open_fields(keys).await?;
    Ok(Some(
        match fields.get(provider.fingerprint_field.as_str()) {
            Some(v) => fingerprinter.fingerprint(v),
            None => Fingerprint {
                kind: FingerprintKind::None,
                text: String::new(),
            },
        },
    ))
}
