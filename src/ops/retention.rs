//! Retention: crypto-shred secrets once they are no longer needed.
//!
//! Two rules, both from configuration: a secret marked ingested is shredded
//! `KEYDROP_SHRED_AFTER_INGESTED` later, and a secret nobody ever revealed is
//! shredded `KEYDROP_SHRED_UNCLAIMED_AFTER` after it arrived. Each batch of
//! rows is claimed with `SKIP LOCKED` and shredded in one transaction together
//! with one audit event per secret, so replicas purging at the same time never
//! shred or record a secret twice. `now` is a parameter so tests need not wait.

use crate::domain::Actor;
use crate::metrics::Metrics;
use crate::service::{self, secrets::SecretError};
use crate::store::maintenance::{self, ShredReason};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

/// When secrets are shredded; `None` switches a rule off.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub after_ingested: Option<Duration>,
    pub unclaimed_after: Option<Duration>,
}

/// What one purge did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Shredded because they were ingested long enough ago.
    pub shredded_ingested: u64,
    /// Shredded because nobody revealed them in time.
    pub shredded_unclaimed: u64,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.shredded_ingested + self.shredded_unclaimed
    }
}

/// Rows shredded per transaction.
const BATCH: i64 = 100;

/// The audit actor for retention.
pub fn actor() -> Actor {
    Actor::system("retention")
}

/// The cut-off times of `policy` as of `now`: `(ingested_before, unclaimed_before)`.
fn cutoffs(policy: &Policy, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let before = |d: Option<Duration>| {
        d.and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_sub_signed(d))
    };
    (
        before(policy.after_ingested),
        before(policy.unclaimed_after),
    )
}

/// What [`purge`] would shred as of `now`, without shredding anything.
pub async fn due(db: &PgPool, policy: &Policy, now: DateTime<Utc>) -> sqlx::Result<Summary> {
    let (ingested_before, unclaimed_before) = cutoffs(policy, now);
    if ingested_before.is_none() && unclaimed_before.is_none() {
        return Ok(Summary::default());
    }
    let (ingested, unclaimed) =
        maintenance::count_due_for_shred(db, ingested_before, unclaimed_before).await?;
    Ok(Summary {
        shredded_ingested: ingested as u64,
        shredded_unclaimed: unclaimed as u64,
    })
}

/// Applies `policy` as of `now`, until nothing more is due.
pub async fn purge(
    db: &PgPool,
    policy: &Policy,
    now: DateTime<Utc>,
    actor: &Actor,
) -> sqlx::Result<Summary> {
    let (ingested_before, unclaimed_before) = cutoffs(policy, now);
    let mut summary = Summary::default();
    if ingested_before.is_none() && unclaimed_before.is_none() {
        return Ok(summary);
    }
    loop {
        let mut tx = db.begin().await?;
        let due =
            maintenance::claim_due_for_shred(&mut tx, ingested_before, unclaimed_before, BATCH)
                .await?;
        if due.is_empty() {
            tx.rollback().await?;
            return Ok(summary);
        }
        let mut batch = Summary::default();
        for secret in &due {
            service::secrets::shred_in(
                &mut tx,
                actor,
                "retention",
                secret.id,
                Some(secret.reason.as_str()),
            )
            .await
            .map_err(|e| match e {
                SecretError::Db(e) => e,
                // Claimed rows are live and locked by this transaction.
                other => sqlx::Error::Protocol(format!("retention: {other}")),
            })?;
            match secret.reason {
                ShredReason::Ingested => batch.shredded_ingested += 1,
                ShredReason::Unclaimed => batch.shredded_unclaimed += 1,
            }
        }
        tx.commit().await?;
        summary.shredded_ingested += batch.shredded_ingested;
        summary.shredded_unclaimed += batch.shredded_unclaimed;
    }
}

/// Purges every `every` until `stop` fires (the server's retention loop),
/// counting what each purge shredded in `metrics` (a purge that fails part
/// way is not counted: its committed shreds are in the audit trail, and the
/// `keydrop_secrets{status="shredded"}` gauge shows them).
///
/// The first purge waits one interval instead of running at start-up, and
/// start-up first logs how many secrets the policy will shred: a new or
/// mistaken setting is announced before anything is destroyed, and a restart
/// with the fix in that interval shreds nothing.
pub async fn run_periodically(
    db: PgPool,
    policy: Policy,
    every: Duration,
    metrics: Metrics,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let actor = actor();
    match due(&db, &policy, Utc::now()).await {
        Ok(d) => tracing::info!(
            due_ingested = d.shredded_ingested,
            due_unclaimed = d.shredded_unclaimed,
            first_purge_in = %crate::domain::HumanDuration::display(every),
            "retention: {} secret(s) are due under this policy and will be shredded at the first purge",
            d.total()
        ),
        Err(e) => tracing::warn!(error = %e, "retention: cannot count the secrets due"),
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match purge(&db, &policy, Utc::now(), &actor).await {
            Ok(s) if s.total() > 0 => {
                metrics.shredded(ShredReason::Ingested.as_str(), s.shredded_ingested);
                metrics.shredded(ShredReason::Unclaimed.as_str(), s.shredded_unclaimed);
                tracing::info!(
                    shredded_ingested = s.shredded_ingested,
                    shredded_unclaimed = s.shredded_unclaimed,
                    "retention: secrets shredded"
                )
            }
            Ok(_) => tracing::debug!("retention: nothing due"),
            // A database outage: try again next time, the server keeps serving.
            Err(e) => tracing::warn!(error = %e, "retention: purge failed; will retry"),
        }
    }
}
