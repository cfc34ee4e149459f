//! KEK rotation: rewrap every data key under the new KEK, resumably, while
//! serving; afterwards the old KEK can leave the ring.

use crate::helpers::*;
use crate::ops_support::*;
use keydrop::crypto::Keyring;
use keydrop::ops::rotate::{self, Options};
use keydrop::store::audit::Actor;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

fn actor() -> Actor {
    Actor::cli()
}

#[sqlx::test]
async fn an_interrupted_rotation_resumes_and_then_the_old_kek_can_leave_the_ring(db: PgPool) {
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let old = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    let ring_a = Keyring::parse(&a).unwrap();
    let seeded = seed(&old, &ring_a, 7).await;
    let payloads: HashMap<_, _> = {
        let mut m = HashMap::new();
        for (id, _) in &seeded {
            m.insert(*id, blobs(&db, *id).await.0.unwrap());
        }
        m
    };

    let both = Keyring::parse(&format!("{b},{a}")).unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = Vec::new();
    let first = rotate::rotate(
        &db,
        &both,
        &actor(),
        Options {
            batch: 2,
            max_batches: Some(2),
            ..Options::default()
        },
        &stop,
        |p| seen.push(p.rewrapped),
    )
    .await
    .unwrap();
    assert_eq!(seen, [2, 4], "progress after every batch");
    assert!(first.interrupted && !first.complete);
    assert_eq!((first.rewrapped, first.remaining), (4, 3));

    let second = rotate::rotate(
        &db,
        &both,
        &actor(),
        Options {
            batch: 2,
            max_batches: None,
            ..Options::default()
        },
        &stop,
        |_| {},
    )
    .await
    .unwrap();
    assert!(second.complete && !second.interrupted, "{second:?}");
    assert_eq!(
        (second.rewrapped, second.already_current, second.remaining),
        (3, 4, 0)
    );
    assert!(second.failures.is_empty());

    for (id, _) in &seeded {
        assert_eq!(kek_of(&db, *id).await.as_deref(), Some("kek-b"));
        assert_eq!(
            blobs(&db, *id).await.0.unwrap(),
            payloads[id],
            "payload ciphertext untouched"
        );
    }
    drop(old);

    // Only the new KEK now: every secret still reveals.
    let new = TestApp::builder(db.clone()).with_kek(&b).spawn().await;
    for (id, secret) in &seeded {
        assert_eq!(&revealed_secret(&new, *id).await, secret);
    }
    let ready: Value = new
        .api
        .get(new.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["keks"]["rows"], serde_json::json!({ "kek-b": 7 }));

    let runs: Vec<(String, Value)> = sqlx::query_as(
        "SELECT outcome, detail FROM audit_events WHERE action = 'kek.rotated' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(runs.len(), 2, "one audit event per run");
    assert_eq!(
        runs[0].0, "failure",
        "the interrupted run is recorded as incomplete"
    );
    assert_eq!(runs[1].0, "success");
    assert_eq!(runs[1].1["rewrapped"], 3);
    assert_eq!(runs[1].1["active"], "kek-b");
}

#[sqlx::test]
async fn rotation_runs_beside_concurrent_submissions_and_reveals(db: PgPool) {
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let old = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    let mut seeded = seed(&old, &Keyring::parse(&a).unwrap(), 60).await;
    drop(old);
    // The servers restart with B first (A kept to read old rows), then rotate.
    let app = TestApp::builder(db.clone())
        .with_kek(&format!("{b},{a}"))
        .spawn()
        .await;
    let both = Keyring::parse(&format!("{b},{a}")).unwrap();

    let submissions = async {
        let mut ids = Vec::new();
        for i in 0..8 {
            let (_, link) = app.create_link("greenhouse").await;
            let secret = format!("concurrent-secret-{i}");
            let resp = app.submit_greenhouse(&link, &secret).await;
            assert_eq!(resp.status(), StatusCode::OK);
            ids.push((reference_from(&resp.text().await.unwrap()), secret));
        }
        ids
    };
    let reveals = async {
        for (id, secret) in seeded.iter().step_by(5) {
            assert_eq!(&revealed_secret(&app, *id).await, secret);
        }
    };
    let stop = AtomicBool::new(false);
    let cli = actor();
    let rotation = rotate::rotate(
        &db,
        &both,
        &cli,
        Options {
            batch: 3,
            max_batches: None,
            ..Options::default()
        },
        &stop,
        |_| {},
    );
    let (submitted, (), summary) = tokio::join!(submissions, reveals, rotation);
    let summary = summary.unwrap();
    assert!(summary.complete, "{summary:?}");
    assert_eq!(summary.rewrapped, 60);
    drop(app);

    let only_b = TestApp::builder(db.clone()).with_kek(&b).spawn().await;
    for (id, secret) in submitted {
        let v: Value = only_b.reveal(&id).await.json().await.unwrap();
        assert_eq!(v["fields"]["client_secret"], secret.as_str());
    }
    seeded.truncate(20);
    for (id, secret) in &seeded {
        assert_eq!(&revealed_secret(&only_b, *id).await, secret);
    }
}

#[sqlx::test]
async fn rows_under_a_kek_missing_from_the_ring_are_reported_not_lost(db: PgPool) {
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let app = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    let seeded = seed(&app, &Keyring::parse(&a).unwrap(), 3).await;
    let stop = AtomicBool::new(false);
    // The operator forgot to keep A in the ring.
    let summary = rotate::rotate(
        &db,
        &Keyring::parse(&b).unwrap(),
        &actor(),
        Options::default(),
        &stop,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.rewrapped, 0);
    assert_eq!(summary.failures.get("kek-a"), Some(&3));
    assert!(!summary.complete);
    for (id, _) in &seeded {
        assert_eq!(kek_of(&db, *id).await.as_deref(), Some("kek-a"));
    }
    // Same with a tampered wrapped key: that row fails, the others rotate.
    sqlx::query("UPDATE secrets SET wrapped_dek = (SELECT wrapped_dek FROM secrets WHERE id = $2) WHERE id = $1")
        .bind(seeded[0].0)
        .bind(seeded[1].0)
        .execute(&db)
        .await
        .unwrap();
    let summary = rotate::rotate(
        &db,
        &Keyring::parse(&format!("{b},{a}")).unwrap(),
        &actor(),
        Options::default(),
        &stop,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.rewrapped, 2);
    assert_eq!(summary.failures.get("kek-a"), Some(&1));
    assert_eq!(summary.remaining, 1);
}
