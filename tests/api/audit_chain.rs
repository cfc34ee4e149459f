//! The audit hash chain: sealing, `verify`, and tampering of every kind.

use crate::helpers::{new_kek, spawn_app};
use keydrop::chain::sealer::seal_pending;
use keydrop::chain::verify::{verify, Anchor, Broken, VerifyError};
use keydrop::store::audit::{self, Actor, NewEvent};
use keydrop::store::audit_chain;
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};

async fn record(db: &PgPool, action: &'static str) -> i64 {
    audit::record(
        db,
        NewEvent::success(&Actor::cli(), action).detail(json!({ "n": 1 })),
    )
    .await
    .unwrap()
}

/// Runs SQL with the append-only triggers switched off, as an attacker with
/// superuser rights on the database could.
async fn tamper(db: &PgPool, sql: &str) {
    let mut tx = db.begin().await.unwrap();
    for t in [
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "ALTER TABLE audit_seals DISABLE TRIGGER USER",
    ] {
        sqlx::query(t).execute(&mut *tx).await.unwrap();
    }
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    for t in [
        "ALTER TABLE audit_events ENABLE TRIGGER USER",
        "ALTER TABLE audit_seals ENABLE TRIGGER USER",
    ] {
        sqlx::query(t).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Seals until nothing is left. Transactions still open anywhere in the
/// cluster (other tests run in parallel) hold sealing back for a moment.
async fn seal_all(db: &PgPool) -> usize {
    let start = Instant::now();
    let mut sealed = 0;
    loop {
        sealed += seal_pending(db).await.unwrap().sealed;
        if audit_chain::unsealed_count(db).await.unwrap() == 0 {
            return sealed;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "events left unsealed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Five sealed events; returns their ids.
async fn sealed_chain(db: &PgPool) -> Vec<i64> {
    let mut ids = Vec::new();
    for a in ["a.one", "a.two", "a.three", "a.four", "a.five"] {
        ids.push(record(db, a).await);
    }
    assert_eq!(seal_all(db).await, 5);
    let v = verify(db, &[]).await.unwrap();
    assert_eq!((v.events, v.unsealed), (5, 0));
    ids
}

fn broken(r: Result<keydrop::chain::verify::Verified, VerifyError>) -> Broken {
    match r {
        Err(VerifyError::Broken(b)) => b,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[sqlx::test]
async fn an_empty_chain_verifies(db: PgPool) {
    let v = verify(&db, &[]).await.unwrap();
    assert_eq!((v.events, v.head, v.unsealed), (0, None, 0));
}

#[sqlx::test]
async fn every_committed_event_is_sealed_within_seconds_by_the_running_server(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("greenhouse").await;
    app.open_form(&link).await;
    let written = Instant::now();
    let before = app.count("audit_events").await;
    assert!(before >= 1);
    loop {
        let unsealed = audit_chain::unsealed_count(&db).await.unwrap();
        if unsealed == 0 {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "{unsealed} events still unsealed after 5s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "sealed {before} events {:?} after they were written",
        written.elapsed()
    );
    let v = verify(&db, &[]).await.unwrap();
    assert_eq!(v.events, app.count("audit_events").await);
    let head = audit_chain::head(&db).await.unwrap().unwrap();
    assert_eq!(v.head.unwrap(), keydrop::chain::hex(&head.hash));
}

#[sqlx::test]
async fn verify_names_a_modified_event(db: PgPool) {
    let ids = sealed_chain(&db).await;
    tamper(
        &db,
        &format!(
            "UPDATE audit_events SET detail = '{{\"n\": 2}}' WHERE id = {}",
            ids[2]
        ),
    )
    .await;
    let b = broken(verify(&db, &[]).await);
    assert_eq!(
        b,
        Broken::Modified {
            seq: 3,
            event_id: ids[2]
        }
    );
    assert!(b.to_string().contains(&format!("event {}", ids[2])));
}

#[sqlx::test]
async fn verify_names_an_event_whose_time_or_actor_changed(db: PgPool) {
    let ids = sealed_chain(&db).await;
    tamper(
        &db,
        &format!(
            "UPDATE audit_events SET occurred_at = occurred_at - interval '1 day' WHERE id = {}",
            ids[1]
        ),
    )
    .await;
    assert_eq!(
        broken(verify(&db, &[]).await),
        Broken::Modified {
            seq: 2,
            event_id: ids[1]
        }
    );
}

#[sqlx::test]
async fn verify_names_a_deleted_event(db: PgPool) {
    let ids = sealed_chain(&db).await;
    tamper(
        &db,
        &format!("DELETE FROM audit_events WHERE id = {}", ids[3]),
    )
    .await;
    let b = broken(verify(&db, &[]).await);
    assert_eq!(
        b,
        Broken::Deleted {
            seq: 4,
            event_id: ids[3]
        }
    );
    assert!(b.to_string().contains("deleted"));
}

#[sqlx::test]
async fn verify_names_an_event_deleted_together_with_its_seal(db: PgPool) {
    let ids = sealed_chain(&db).await;
    tamper(
        &db,
        &format!(
            "DELETE FROM audit_seals WHERE event_id = {0}; DELETE FROM audit_events WHERE id = {0}",
            ids[1]
        ),
    )
    .await;
    assert_eq!(
        broken(verify(&db, &[]).await),
        Broken::MissingSeal {
            expected: 2,
            found: 3,
            event_id: ids[2]
        }
    );
}

#[sqlx::test]
async fn verify_names_an_event_inserted_out_of_order(db: PgPool) {
    let _ = sealed_chain(&db).await;
    // Backdated into the middle of the chain: an old transaction id.
    let forged: i64 = sqlx::query_scalar(
        "INSERT INTO audit_events (txid, actor_kind, action, outcome) VALUES ('3', 'cli', 'secret.revealed', 'success') RETURNING id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    // The sealer never seals it: it sorts before the head.
    seal_pending(&db).await.unwrap();
    let b = broken(verify(&db, &[]).await);
    assert_eq!(b, Broken::Inserted { event_id: forged });
    assert!(b.to_string().contains(&format!("event {forged}")));
}

#[sqlx::test]
async fn verify_names_reordered_events(db: PgPool) {
    let ids = sealed_chain(&db).await;
    // Swap the positions of events 2 and 4.
    tamper(
        &db,
        &format!(
            "UPDATE audit_events SET id = -1 WHERE id = {a}; UPDATE audit_events SET id = {a} WHERE id = {b}; UPDATE audit_events SET id = {b} WHERE id = -1",
            a = ids[1],
            b = ids[3]
        ),
    )
    .await;
    assert_eq!(
        broken(verify(&db, &[]).await),
        Broken::Modified {
            seq: 2,
            event_id: ids[1]
        }
    );
}

#[sqlx::test]
async fn a_rewritten_chain_fails_against_a_recorded_anchor(db: PgPool) {
    let _ = sealed_chain(&db).await;
    let v = verify(&db, &[]).await.unwrap();
    let anchor = Anchor::parse(&format!("5:{}", v.head.unwrap())).unwrap();
    verify(&db, std::slice::from_ref(&anchor)).await.unwrap();
    // Truncate the whole trail and start over: the chain is internally valid…
    tamper(&db, "DELETE FROM audit_seals; DELETE FROM audit_events;").await;
    record(&db, "a.new").await;
    seal_all(&db).await;
    verify(&db, &[]).await.unwrap();
    // …but the recorded head is gone.
    assert!(matches!(
        broken(verify(&db, &[anchor]).await),
        Broken::Anchor { seq: 5, .. }
    ));
}

#[sqlx::test]
async fn the_database_refuses_to_update_delete_or_truncate_the_trail(db: PgPool) {
    let ids = sealed_chain(&db).await;
    for sql in [
        format!("UPDATE audit_events SET action = 'x' WHERE id = {}", ids[0]),
        format!("DELETE FROM audit_events WHERE id = {}", ids[0]),
        "TRUNCATE audit_events".to_owned(),
        "UPDATE audit_seals SET hash = prev_hash".to_owned(),
        "DELETE FROM audit_seals".to_owned(),
        "TRUNCATE audit_seals".to_owned(),
    ] {
        let e = sqlx::query(&sql).execute(&db).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    verify(&db, &[]).await.unwrap();
}

/// Writers that commit out of id order, hold transactions open and roll back
/// (leaving sequence gaps) while the sealer runs: every committed event ends up
/// sealed exactly once, in a valid chain.
#[sqlx::test]
async fn concurrent_writers_rollbacks_and_slow_commits_all_seal_into_one_valid_chain(db: PgPool) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sealer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seal_pending(&db).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..12u64 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut committed = 0;
            for i in 0..25u64 {
                let mut tx = db.begin().await.unwrap();
                audit::record(&mut *tx, NewEvent::success(&Actor::cli(), "load.test"))
                    .await
                    .unwrap();
                // Vary how long the transaction stays open after taking its id.
                tokio::time::sleep(Duration::from_millis((w * 7 + i * 3) % 20)).await;
                if (w + i) % 5 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed += 1;
                }
            }
            committed
        }));
    }
    let mut committed = 0;
    for w in writers {
        committed += w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sealer.await.unwrap();
    seal_all(&db).await;
    let v = verify(&db, &[]).await.unwrap();
    assert_eq!(v.events, committed);
    assert_eq!(v.unsealed, 0);
}

/// The real binary: exit 0 with count and head, non-zero naming the event.
#[sqlx::test]
async fn keydrop_audit_verify_reports_the_head_or_the_tampered_event(db: PgPool) {
    let ids = sealed_chain(&db).await;
    let name = db.connect_options().get_database().unwrap().to_owned();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&name);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keydrop"))
            .env_clear()
            .env("DATABASE_URL", url.as_str())
            .env("KEYDROP_KEKS", new_kek("k"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, _) = run(&["audit", "verify"]);
    let head = verify(&db, &[]).await.unwrap().head.unwrap();
    assert!(ok);
    assert_eq!(stdout.trim(), format!("ok: 5 events sealed; head 5:{head}"));
    let (ok, _, _) = run(&["audit", "verify", "--anchor", &format!("5:{head}")]);
    assert!(ok);

    tamper(
        &db,
        &format!(
            "UPDATE audit_events SET actor_name = 'someone else' WHERE id = {}",
            ids[0]
        ),
    )
    .await;
    let (ok, _, stderr) = run(&["audit", "verify"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("event {} (seal #1) was modified", ids[0])),
        "{stderr}"
    );
}

#[sqlx::test]
async fn metrics_expose_the_chain_head_and_webhook_deliveries(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    app.create_link("lever").await;
    seal_all(&db).await;
    let head = verify(&db, &[]).await.unwrap();
    let body = app.get("/metrics", &app.admin).await.text().await.unwrap();
    let line = format!(
        "keydrop_audit_chain_head{{hash=\"{}\"}} {}",
        head.head.unwrap(),
        head.events
    );
    assert!(body.contains(&line), "{body}");
    assert!(body.contains(&format!("keydrop_audit_chain_length {}", head.events)));
    assert!(body.contains("keydrop_audit_events_unsealed 0"));
    assert!(body.contains("keydrop_webhook_deliveries{state=\"pending\"} 0"));
}

/// Sealing never sits on the write path: with the sealer locked out and a
/// write transaction held open (which stalls sealing), submissions still
/// complete; their events wait unsealed, and seal once the blockers go.
/// (Throughput with sealing on and off is a benchmark figure, not a test.)
#[sqlx::test]
async fn sealing_never_blocks_submissions(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app
        .create_link_with(json!({ "organization": "Load", "provider": "generic", "max_uses": 100 }))
        .await;
    let csrf = app.open_form(&link).await;
    seal_all(&db).await;
    let mut sealer_lock = db.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7738417216553055281)")
        .execute(&mut *sealer_lock)
        .await
        .unwrap();
    let mut open_tx = db.begin().await.unwrap();
    // Taking a transaction id makes this an open write transaction.
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *open_tx)
        .await
        .unwrap();
    for i in 0..20 {
        let secret = format!("sealing-{i}");
        let form = [
            ("csrf_token", csrf.as_str()),
            ("submitter_name", "Load"),
            ("submitter_email", "load@example.com"),
            ("label", "l"),
            ("secret", secret.as_str()),
        ];
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), app.submit(&link, &form))
            .await
            .expect("a submission is never held up by sealing");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    let unsealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(unsealed >= 20, "events wait while sealing is blocked");
    open_tx.rollback().await.unwrap();
    sqlx::query("SELECT pg_advisory_unlock(7738417216553055281)")
        .execute(&mut *sealer_lock)
        .await
        .unwrap();
    drop(sealer_lock);
    seal_all(&db).await;
    let v = verify(&db, &[]).await.unwrap();
    assert_eq!(v.events, app.count("audit_events").await);
}
