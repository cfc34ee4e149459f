//! The background sealer: appends committed events to the hash chain.

use super::{hex, seal_hash, GENESIS};
use crate::store::audit_chain::{self, Head, NewSeal};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

/// Events sealed per transaction.
const BATCH: i64 = 1000;

/// How often `keydrop serve` seals: every committed event is sealed within
/// about this long after its transaction (and any older one) ends.
pub const EVERY: Duration = Duration::from_secs(1);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub sealed: usize,
    /// The chain's head after the round; `None` while nothing is sealed.
    pub head: Option<Head>,
    /// False when another replica held the sealer lock and this round did nothing.
    pub ran: bool,
}

/// Seals every event that can be sealed now, in batches.
pub async fn seal_pending(db: &PgPool) -> sqlx::Result<Round> {
    let mut round = Round::default();
    loop {
        let mut tx = db.begin().await?;
        if !audit_chain::try_lock_sealer(&mut tx).await? {
            return Ok(round);
        }
        round.ran = true;
        let head = audit_chain::head(&mut *tx).await?;
        let (after_txid, after_id, mut seq, mut prev) = match &head {
            Some(h) => (h.txid, h.event_id, h.seq, h.hash.clone()),
            None => (0, 0, 0, GENESIS.to_vec()),
        };
        let events = audit_chain::sealable_after(&mut *tx, after_txid, after_id, BATCH).await?;
        if events.is_empty() {
            round.head = head;
            return Ok(round);
        }
        let mut seals = Vec::with_capacity(events.len());
        for e in &events {
            seq += 1;
            let hash = seal_hash(&prev, e);
            seals.push(NewSeal {
                seq,
                event_id: e.id,
                txid: e.txid,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        audit_chain::insert_seals(&mut tx, &seals).await?;
        tx.commit().await?;
        let last = seals.last().expect("non-empty");
        round.sealed += seals.len();
        round.head = Some(Head {
            seq: last.seq,
            event_id: last.event_id,
            txid: last.txid,
            hash: last.hash.clone(),
        });
        if (events.len() as i64) < BATCH {
            return Ok(round);
        }
    }
}

/// Seals every `every` until `stop` fires. Logs the head whenever it moves so
/// an operator's log archive holds a record of it outside the database.
pub async fn run(db: PgPool, every: Duration, mut stop: watch::Receiver<()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        match seal_pending(&db).await {
            Ok(Round {
                sealed,
                head: Some(h),
                ..
            }) if sealed > 0 => {
                tracing::info!(sealed, head_seq = h.seq, head_hash = %hex(&h.hash), "audit chain sealed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit sealer round failed; retrying"),
        }
    }
}
