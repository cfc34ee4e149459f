//! Retention: secrets are crypto-shredded when the policy says so, each once,
//! with its audit event, leaving a tombstone without ciphertext.

use crate::helpers::*;
use crate::ops_support::*;
use chrono::{Duration, Utc};
use keydrop::crypto::Keyring;
use keydrop::ops::retention::{self, Policy, Summary};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

fn policy() -> Policy {
    Policy {
        after_ingested: Some(7 * DAY),
        unclaimed_after: Some(30 * DAY),
    }
}

async fn status_of(db: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM secrets WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn retention_shreds_ingested_and_unclaimed_secrets_when_due_leaving_tombstones(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let ring = Keyring::parse(&app.kek).unwrap();
    let s = seed(&app, &ring, 4).await;
    let (unclaimed, revealed, ingested, also_unclaimed) = (s[0].0, s[1].0, s[2].0, s[3].0);
    revealed_secret(&app, revealed).await;
    revealed_secret(&app, ingested).await;
    let resp = app
        .post(
            &format!("/api/v1/secrets/{ingested}/ingested"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let system = retention::actor();
    let now = Utc::now();
    let policy = policy();
    let purge = |days: i64| retention::purge(&db, &policy, now + Duration::days(days), &system);
    assert_eq!(
        purge(0).await.unwrap(),
        Summary::default(),
        "nothing due yet"
    );
    assert_eq!(purge(6).await.unwrap().total(), 0);

    let after_a_week = purge(8).await.unwrap();
    assert_eq!(
        after_a_week,
        Summary {
            shredded_ingested: 1,
            shredded_unclaimed: 0
        }
    );
    assert_eq!(status_of(&db, ingested).await, "shredded");
    assert_eq!(status_of(&db, unclaimed).await, "received");

    let after_a_month = purge(31).await.unwrap();
    assert_eq!(after_a_month.shredded_unclaimed, 2);
    assert_eq!(after_a_month.shredded_ingested, 0);
    assert_eq!(purge(365).await.unwrap().total(), 0, "idempotent");
    assert_eq!(
        status_of(&db, revealed).await,
        "revealed",
        "revealed but not ingested: someone is working on it, no rule applies"
    );

    for id in [ingested, unclaimed, also_unclaimed] {
        assert_eq!(blobs(&db, id).await, (None, None), "no ciphertext left");
        assert_eq!(audit_count(&db, "secret.shredded", id).await, 1);
        let meta: Value = app
            .get(&format!("/api/v1/secrets/{id}"), &app.admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(meta["status"], "shredded");
        assert_eq!(
            meta["organization"], "Acme Corp",
            "tombstone keeps metadata"
        );
        assert_eq!(
            app.reveal(&id.to_string()).await.status(),
            StatusCode::CONFLICT
        );
    }
    let (kind, name, detail): (String, Option<String>, Value) = sqlx::query_as(
        "SELECT actor_kind, actor_name, detail FROM audit_events WHERE action = 'secret.shredded' AND secret_id = $1",
    )
    .bind(ingested)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(kind, "system");
    assert_eq!(name.as_deref(), Some("retention"));
    assert_eq!(detail["reason"], "ingested");
    assert_eq!(detail["from"], "ingested");
}

#[sqlx::test]
async fn a_rule_switched_off_shreds_nothing(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let s = seed(&app, &Keyring::parse(&app.kek).unwrap(), 2).await;
    let off = Policy {
        after_ingested: Some(DAY),
        unclaimed_after: None,
    };
    let summary = retention::purge(
        &db,
        &off,
        Utc::now() + Duration::days(3650),
        &retention::actor(),
    )
    .await
    .unwrap();
    assert_eq!(summary.total(), 0);
    assert_eq!(status_of(&db, s[0].0).await, "received");
}

#[sqlx::test]
async fn two_replicas_purging_at_once_shred_and_audit_each_secret_exactly_once(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let seeded = seed(&app, &Keyring::parse(&app.kek).unwrap(), 250).await;
    let replica = second_pool(&db).await;
    let later = Utc::now() + Duration::days(31);
    let system = retention::actor();
    let policy = policy();
    // Two pools (two "servers"), two purges each, all at once.
    let (a, b, c, d) = tokio::join!(
        retention::purge(&db, &policy, later, &system),
        retention::purge(&replica, &policy, later, &system),
        retention::purge(&db, &policy, later, &system),
        retention::purge(&replica, &policy, later, &system),
    );
    let totals: Vec<u64> = [a, b, c, d]
        .into_iter()
        .map(|s| s.unwrap().total())
        .collect();
    assert_eq!(totals.iter().sum::<u64>(), 250, "{totals:?}");
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'secret.shredded'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(events, 250);
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT secret_id FROM audit_events WHERE action = 'secret.shredded'
                               GROUP BY secret_id HAVING count(*) > 1) t",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(twice, 0);
    for (id, _) in seeded.iter().step_by(25) {
        assert_eq!(blobs(&db, *id).await, (None, None));
    }
}

#[sqlx::test]
async fn the_servers_retention_loop_counts_what_it_shredded_in_its_own_metrics(db: PgPool) {
    let app = TestApp::builder(db.clone())
        .with_env([
            ("KEYDROP_SHRED_UNCLAIMED_AFTER", "1s"),
            ("KEYDROP_ALLOW_SHORT_RETENTION", "true"),
            ("KEYDROP_PURGE_INTERVAL", "1s"),
        ])
        .spawn()
        .await;
    let shredded = r#"keydrop_secrets_shredded_total{reason="unclaimed"}"#;
    let before = app.metric(shredded);
    seed(&app, &Keyring::parse(&app.kek).unwrap(), 3).await;
    age_secrets(&db, 2).await;
    eventually("the retention loop to count its shreds", || {
        std::future::ready(app.metric(shredded) - before >= 3.0)
    })
    .await;
    assert_eq!(
        app.metric(shredded) - before,
        3.0,
        "each shred counted once"
    );
    let tombstones: i64 =
        sqlx::query_scalar("SELECT count(*) FROM secrets WHERE status = 'shredded'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(tombstones, 3);
    assert_eq!(
        app.metric(r#"keydrop_secrets_shredded_total{reason="ingested"}"#),
        0.0
    );
}
