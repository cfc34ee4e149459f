//! Tamper evidence for the audit trail: a SHA-256 hash chain over `audit_events`.
//!
//! # Design
//!
//! Writers never touch the chain. `store::audit::record` stays a plain
//! `INSERT` inside the caller's transaction, so submissions and reveals never
//! wait on each other for sealing. Each row records the id of the transaction
//! that wrote it (`txid xid8 DEFAULT pg_current_xact_id()`).
//!
//! A background sealer ([`sealer`]) appends one row per event to `audit_seals`:
//! `hash = SHA-256(prev_hash ‖ canonical(event))`, `seq` contiguous from 1.
//!
//! **Which order?** Not plain `id` order. Ids come from a sequence when the
//! `INSERT` runs, transactions commit later and in any order, so id 7 can
//! become visible before id 6 — and id 6 might still commit a moment later, or
//! never (rollbacks leave gaps that stay gaps forever). Sealing 7 and then
//! meeting 6 would make 6 an "inserted out of order" event; waiting for 6 might
//! wait forever. So the chain follows `(txid, id)` and seals only events whose
//! `txid` is below `pg_snapshot_xmin(pg_current_snapshot())`: every transaction
//! with a smaller id has finished, committed or rolled back, and any
//! transaction that writes an event later has a larger txid. An event can
//! therefore never appear *before* one already sealed, gaps never need to be
//! waited for, and a rolled-back event simply never exists. The cost is
//! latency: a transaction left open delays sealing (not writing) until it ends.
//!
//! The sealer runs every second in each `keydrop serve` process; one
//! transaction-scoped advisory lock (`pg_try_advisory_xact_lock`) lets exactly
//! one replica seal at a time, others skip the round.
//!
//! `audit_seals` has no foreign key to `audit_events`: a deleted event leaves
//! its seal behind and [`verify`] names it. Both tables reject UPDATE, DELETE
//! and TRUNCATE with triggers. A chain an attacker rewrote end to end (they can
//! recompute SHA-256) is caught by comparing with a head recorded elsewhere:
//! the sealer logs the head, `/metrics` exports it, and
//! `keydrop audit verify --anchor SEQ:HASH` checks an old head is still there.

pub mod metrics;
pub mod sealer;
pub mod verify;

use crate::store::audit_chain::ChainEvent;
use ring::digest;

/// `prev_hash` of the first seal.
pub const GENESIS: [u8; 32] = [0; 32];

/// Format tag: bump when the encoding changes.
const DOMAIN: &[u8] = b"keydrop.audit.v1";

/// A length-prefixed, unambiguous encoding of every stored field.
pub fn canonical(e: &ChainEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + e.detail.len());
    put(&mut out, Some(DOMAIN));
    put(&mut out, Some(&e.id.to_be_bytes()));
    put(&mut out, Some(&e.txid.to_be_bytes()));
    put(
        &mut out,
        Some(&e.occurred_at.timestamp_micros().to_be_bytes()),
    );
    put(&mut out, Some(e.actor_kind.as_bytes()));
    put(
        &mut out,
        e.actor_id.as_ref().map(|u| u.as_bytes().as_slice()),
    );
    put(&mut out, e.actor_name.as_deref().map(str::as_bytes));
    put(&mut out, e.client_ip.as_deref().map(str::as_bytes));
    put(&mut out, Some(e.action.as_bytes()));
    put(&mut out, Some(e.outcome.as_bytes()));
    put(
        &mut out,
        e.secret_id.as_ref().map(|u| u.as_bytes().as_slice()),
    );
    put(
        &mut out,
        e.request_id.as_ref().map(|u| u.as_bytes().as_slice()),
    );
    put(&mut out, Some(e.detail.as_bytes()));
    out
}

/// `0` for absent; `1 ‖ u32 length ‖ bytes` for present.
fn put(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// The seal of `e` after a seal whose hash is `prev`.
pub fn seal_hash(prev: &[u8], e: &ChainEvent) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(&canonical(e));
    ctx.finish().as_ref().to_vec()
}

/// Lower-case hex, for logs and the CLI.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> ChainEvent {
        ChainEvent {
            id: 1,
            txid: 700,
            occurred_at: chrono::Utc
                .timestamp_opt(1_800_000_000, 123_456_000)
                .unwrap(),
            actor_kind: "staff".into(),
            actor_id: Some(uuid::Uuid::nil()),
            actor_name: Some("ana".into()),
            client_ip: None,
            action: "secret.revealed".into(),
            outcome: "success".into(),
            secret_id: None,
            request_id: None,
            detail: "{}".into(),
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = seal_hash(&GENESIS, &event());
        type Change = Box<dyn Fn(&mut ChainEvent)>;
        let variants: Vec<Change> = vec![
            Box::new(|e| e.id = 2),
            Box::new(|e| e.txid = 701),
            Box::new(|e| e.occurred_at += chrono::Duration::microseconds(1)),
            Box::new(|e| e.actor_kind = "cli".into()),
            Box::new(|e| e.actor_id = None),
            Box::new(|e| e.actor_name = Some("bob".into())),
            Box::new(|e| e.client_ip = Some(String::new())),
            Box::new(|e| e.action = "secret.ingested".into()),
            Box::new(|e| e.outcome = "failure".into()),
            Box::new(|e| e.secret_id = Some(uuid::Uuid::nil())),
            Box::new(|e| e.request_id = Some(uuid::Uuid::nil())),
            Box::new(|e| e.detail = r#"{"a": 1}"#.into()),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = event();
            change(&mut e);
            assert_ne!(seal_hash(&GENESIS, &e), base, "variant {i}");
        }
        assert_ne!(seal_hash(&[1; 32], &event()), base);
    }

    #[test]
    fn fields_cannot_bleed_into_each_other() {
        let mut a = event();
        a.actor_name = Some("ab".into());
        a.client_ip = Some("c".into());
        let mut b = event();
        b.actor_name = Some("a".into());
        b.client_ip = Some("bc".into());
        assert_ne!(canonical(&a), canonical(&b));
    }
}
