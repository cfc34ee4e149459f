//! KEK rotation: rewrap every data key under the active KEK.
//!
//! Each batch is one transaction that locks its rows with `SKIP LOCKED`, so a
//! rotation can run beside serving replicas (a reveal holding a row just makes
//! the rotation take that row in a later pass) and can be killed at any moment:
//! a batch either commits whole or not at all, and the next run picks up the
//! rows still under an old KEK. Payload ciphertext is never read or written.
//!
//! Each batch writes its own `kek.rewrapped` audit event in the batch's
//! transaction, so a run killed part-way leaves no committed rewrap without a
//! record; `kek.rotated` still summarises the run at the end.
//!
//! With a KMS configured the active KEK is the KMS key: rows under the local
//! ring move into it, rows under another key of the same KMS move across (AWS
//! `ReEncrypt` inside KMS), and rows under an older Transit key version are
//! rewrapped under the newest one. A KMS that stops answering ends the run
//! with an error; the batch in flight rolls back and the next run resumes.

use crate::crypto::{self, Context, Envelope, Keyring};
use crate::kms::{KeyError, Keys};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::maintenance::{self, Stale};
use crate::store::{canary, fingerprint_keys};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// How a rotation run proceeds.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rows per batch (one transaction each).
    pub batch: i64,
    /// Stop after this many batches; the next run carries on.
    pub max_batches: Option<u64>,
    /// Batches worked on at once, each on its own connection. Postgres runs
    /// each session's statements on one core, so two workers keep both busy
    /// (see BENCHMARKS.md).
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch: 500,
            max_batches: None,
            workers: 2,
        }
    }
}

/// Where a run stands, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub batches: u64,
    pub rewrapped: u64,
    /// Rows under an old KEK when the run started.
    pub total: u64,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The KEK every data key is now meant to be wrapped by.
    pub active: String,
    pub rewrapped: u64,
    /// Rows already under the active KEK when the run started.
    pub already_current: u64,
    /// Rows that could not be rewrapped, by the KEK id wrapping them (that KEK
    /// is not in the ring nor the KMS, or the wrapped key failed to authenticate).
    pub failures: BTreeMap<String, u64>,
    /// Rows still under another KEK when the run ended.
    pub remaining: u64,
    pub batches: u64,
    /// True when no row is left under another KEK.
    pub complete: bool,
    /// True when stopped early (`--max-batches` or an interrupt).
    pub interrupted: bool,
}

/// How many times to look again for rows that were locked by someone else.
const BUSY_RETRIES: u32 = 5;

/// Rewraps data keys under the active KEK (the KMS key, else the ring's first), batch by batch, until none is
/// left, `opts.max_batches` is reached or `stop` is set (checked between
/// batches). Records a `kek.rewrapped` audit event with every batch (in its
/// transaction) and one `kek.rotated` event for the run.
pub async fn rotate(
    db: &PgPool,
    ring: &Keyring,
    actor: &Actor,
    opts: Options,
    stop: &AtomicBool,
    on_progress: impl FnMut(Progress),
) -> anyhow::Result<Summary> {
    run(db, Source::Ring(ring), actor, opts, stop, on_progress).await
}

/// [`rotate`] through [`Keys`]: into the configured KMS key when there is one.
pub async fn rotate_keys(
    db: &PgPool,
    keys: &Keys,
    actor: &Actor,
    opts: Options,
    stop: &AtomicBool,
    on_progress: impl FnMut(Progress),
) -> anyhow::Result<Summary> {
    run(db, Source::Keys(keys), actor, opts, stop, on_progress).await
}

/// Where the active KEK is: the ring alone, or [`Keys`] (ring and KMS).
#[derive(Clone, Copy)]
enum Source<'a> {
    Ring(&'a Keyring),
    Keys(&'a Keys),
}

impl Source<'_> {
    fn ring(&self) -> &Keyring {
        match self {
            Source::Ring(r) => r,
            Source::Keys(k) => k.ring(),
        }
    }

    fn active(&self) -> String {
        match self {
            Source::Ring(r) => r.active().id().as_str().to_owned(),
            Source::Keys(k) => k.active_kek(),
        }
    }

    fn serves(&self, kek: &str) -> bool {
        match self {
            Source::Ring(r) => r.get(kek).is_some(),
            Source::Keys(k) => k.serves(kek),
        }
    }

    async fn rewrap(&self, ctx: Context<'_>, envelope: &Envelope) -> Result<Vec<u8>, KeyError> {
        match self {
            Source::Ring(r) => Ok(crypto::rewrap(r, ctx.secret_id, envelope)?.wrapped_dek),
            Source::Keys(k) => Ok(k.rewrap(ctx, envelope).await?.1),
        }
    }
}

async fn run(
    db: &PgPool,
    keys: Source<'_>,
    actor: &Actor,
    opts: Options,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(Progress),
) -> anyhow::Result<Summary> {
    anyhow::ensure!(opts.batch > 0, "the batch size must be at least 1");
    // Refuses a key that does not match its canary, and registers the new one.
    let ring = keys.ring();
    canary::verify(db, ring).await?;
    // The fingerprint key moves to the ring's active KEK too, so fingerprints
    // stay stable after the old KEK leaves the ring (it stays in the ring even
    // with a KMS: see `kms`).
    if !fingerprint_keys::rewrap(db, ring).await? {
        tracing::warn!("the fingerprint key stays under its old KEK: keep that KEK in the ring");
    }
    let active = keys.active();
    // Transit: rows under an older version of the active key are due too.
    let prefix = match keys {
        Source::Keys(k) => k.current_version_prefix().await?,
        Source::Ring(_) => None,
    };
    let stale = Stale {
        active: &active,
        current_prefix: prefix.as_deref(),
    };
    let mut summary = Summary {
        active: active.clone(),
        ..Summary::default()
    };
    let mut total = 0;
    let mut from: Vec<String> = Vec::new();
    let stale_rows = maintenance::count_not_under(db, stale).await? as u64;
    for (kek, rows) in maintenance::rows_per_kek(db).await? {
        let rows = rows as u64;
        if kek == active {
            summary.already_current = rows;
        } else if !keys.serves(&kek) {
            // Without the key there is nothing to try; report, don't loop.
            summary.failures.insert(kek, rows);
        } else {
            total += rows;
            from.push(kek);
        }
    }
    // Rows under an older version of the active key (Transit).
    let old_versions = stale_rows.saturating_sub(total + summary.failures.values().sum::<u64>());
    summary.already_current = summary.already_current.saturating_sub(old_versions);
    total += old_versions;
    let shared = std::sync::Mutex::new(Shared {
        summary,
        on_progress: &mut on_progress,
        started: 0,
        failed: Vec::new(),
    });
    let work = Work {
        db,
        keys,
        from: &from,
        stale,
        opts,
        stop,
        total,
        shared: &shared,
        actor,
    };
    // The workers run concurrently on this task (no spawning: they borrow the run's state).
    let results =
        futures_util::future::join_all((0..opts.workers.max(1)).map(|_| worker(&work))).await;
    let Shared { mut summary, .. } = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    for r in results {
        r?;
    }
    summary.remaining = maintenance::count_not_under(db, stale).await? as u64;
    summary.complete = summary.remaining == 0;
    // Stopping with nothing left to do is not stopping early.
    summary.interrupted &= !summary.complete;
    let failures: u64 = summary.failures.values().sum();
    let event = if failures == 0 && !summary.interrupted {
        NewEvent::success(actor, "kek.rotated")
    } else {
        NewEvent::failure(actor, "kek.rotated", "failure")
    };
    audit::record(db, event.detail(json!(summary))).await?;
    Ok(summary)
}

/// What the workers of one run share.
struct Shared<'p> {
    summary: Summary,
    on_progress: &'p mut dyn FnMut(Progress),
    /// Batches started so far (for `max_batches`).
    started: u64,
    /// Rows that could not be rewrapped; every worker skips them.
    failed: Vec<Uuid>,
}

/// One run's fixed inputs.
struct Work<'a, 'p> {
    db: &'a PgPool,
    keys: Source<'a>,
    from: &'a [String],
    stale: Stale<'a>,
    opts: Options,
    stop: &'a AtomicBool,
    total: u64,
    shared: &'a std::sync::Mutex<Shared<'p>>,
    actor: &'a Actor,
}

/// Claims, rewraps and stores batches until none is left (or the run stops).
async fn worker(w: &Work<'_, '_>) -> anyhow::Result<()> {
    let lock = || w.shared.lock().unwrap_or_else(|p| p.into_inner());
    let mut busy_retries = 0;
    // Batches walk the table in id order; rows skipped because someone held
    // them (another worker, a reveal) are met again on a pass from the start.
    let mut after = Uuid::nil();
    loop {
        let failed = {
            let mut s = lock();
            if w.opts.max_batches.is_some_and(|max| s.started >= max)
                || w.stop.load(Ordering::Relaxed)
            {
                s.summary.interrupted = true;
                return Ok(());
            }
            s.started += 1;
            s.failed.clone()
        };
        let mut tx = w.db.begin().await?;
        let rows =
            maintenance::claim_for_rewrap(&mut tx, w.from, &failed, after, w.opts.batch, w.stale)
                .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            lock().started -= 1;
            if after != Uuid::nil() {
                after = Uuid::nil();
                continue;
            }
            // Rows someone else held are still waiting: look again shortly.
            let left = maintenance::count_not_under(w.db, w.stale).await? as u64;
            let unfixable = lock().summary.failures.values().sum::<u64>();
            if left > unfixable && busy_retries < BUSY_RETRIES {
                busy_retries += 1;
                tokio::time::sleep(Duration::from_millis(200 * u64::from(busy_retries))).await;
                continue;
            }
            return Ok(());
        }
        after = rows.last().map_or(after, |r| r.id);
        let mut ids = Vec::with_capacity(rows.len());
        let mut wrapped = Vec::with_capacity(rows.len());
        let mut failures: Vec<(Uuid, String)> = Vec::new();
        let mut kek_of: Vec<String> = Vec::with_capacity(rows.len());
        for row in rows {
            let envelope = Envelope {
                format_version: row.format_version,
                kek_id: row.kek_id,
                payload: Vec::new(), // rewrap only reads the wrapped key
                wrapped_dek: row.wrapped_dek,
            };
            let ctx = Context {
                secret_id: row.id,
                provider: &row.provider,
            };
            match w.keys.rewrap(ctx, &envelope).await {
                Ok(new) => {
                    ids.push(row.id);
                    wrapped.push(new);
                    kek_of.push(envelope.kek_id.clone());
                }
                // The KMS is down or refusing: stop; this batch rolls back and
                // the next run resumes (nothing is marked as failed).
                Err(KeyError::Kms(e)) if e.is_unavailable() => {
                    return Err(anyhow::anyhow!(
                        "the KMS stopped answering during rotation: {e}"
                    ));
                }
                Err(e) => {
                    tracing::warn!(secret_id = %row.id, kek_id = %envelope.kek_id, error = %e, "cannot rewrap data key");
                    failures.push((row.id, envelope.kek_id));
                }
            }
        }
        let done = maintenance::store_rewrapped(&mut tx, w.stale.active, &ids, &wrapped).await?;
        // The batch's record commits with the batch, or neither does.
        let mut from: BTreeMap<&str, u64> = BTreeMap::new();
        for kek in &kek_of {
            *from.entry(kek.as_str()).or_default() += 1;
        }
        audit::record(
            &mut *tx,
            NewEvent::success(w.actor, "kek.rewrapped").detail(json!({
                "to": w.stale.active,
                "rows": done,
                "from": from,
                "failed": failures.len(),
            })),
        )
        .await?;
        tx.commit().await?;
        let mut s = lock();
        for (id, kek) in failures {
            // Another worker may have met the same row in the meantime; count it once.
            if !s.failed.contains(&id) {
                s.failed.push(id);
                *s.summary.failures.entry(kek).or_default() += 1;
            }
        }
        s.summary.rewrapped += done;
        s.summary.batches += 1;
        let progress = Progress {
            batches: s.summary.batches,
            rewrapped: s.summary.rewrapped,
            total: w.total,
        };
        (s.on_progress)(progress);
    }
}
