//! Lifecycle rules in the database, readiness detail, and `/metrics`.

use crate::helpers::*;
use crate::ops_support::*;
use keydrop::crypto::Keyring;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Runs one statement and returns the database's error message, if any.
async fn try_sql(db: &PgPool, sql: &str, id: Uuid) -> Option<String> {
    sqlx::query(sql)
        .bind(id)
        .execute(db)
        .await
        .err()
        .map(|e| e.to_string())
}

#[sqlx::test]
async fn the_database_rejects_impossible_secret_transitions_even_without_the_api(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let s = seed(&app, &Keyring::parse(&app.kek).unwrap(), 2).await;
    let (id, other) = (s[0].0, s[1].0);

    let skip_reveal = "UPDATE secrets SET status = 'ingested', ingested_at = now() WHERE id = $1";
    let e = try_sql(&db, skip_reveal, id)
        .await
        .expect("received -> ingested is refused");
    assert!(e.contains("not a lifecycle transition"), "{e}");

    assert_eq!(
        try_sql(
            &db,
            "UPDATE secrets SET status = 'revealed', revealed_at = now() WHERE id = $1",
            id
        )
        .await,
        None
    );
    let back = "UPDATE secrets SET status = 'received' WHERE id = $1";
    assert!(
        try_sql(&db, back, id).await.is_some(),
        "revealed -> received is refused"
    );
    assert_eq!(
        try_sql(&db, skip_reveal, id).await,
        None,
        "revealed -> ingested is fine"
    );
    let unshred = "UPDATE secrets SET status = 'revealed' WHERE id = $1";
    assert!(
        try_sql(&db, unshred, id).await.is_some(),
        "ingested -> revealed is refused"
    );

    let shred = "UPDATE secrets SET status = 'shredded', shredded_at = now(), payload = NULL, wrapped_dek = NULL WHERE id = $1";
    assert_eq!(try_sql(&db, shred, id).await, None);
    assert_eq!(
        try_sql(&db, shred, other).await,
        None,
        "received -> shredded is fine"
    );
    for sql in [
        "UPDATE secrets SET status = 'received', shredded_at = NULL, payload = '\\x00', wrapped_dek = '\\x00' WHERE id = $1",
        "UPDATE secrets SET status = 'ingested', shredded_at = NULL, payload = '\\x00', wrapped_dek = '\\x00' WHERE id = $1",
    ] {
        let e = try_sql(&db, sql, id).await.expect("nothing leaves shredded");
        assert!(e.contains("not a lifecycle transition"), "{e}");
    }
    let e = try_sql(&db, "DELETE FROM secrets WHERE id = $1", id)
        .await
        .expect("tombstones stay");
    assert!(e.contains("never deleted"), "{e}");
}

#[sqlx::test]
async fn the_database_keeps_revoked_links_revoked_and_unusable(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (id, _) = app.create_link("lever").await;
    let id = Uuid::parse_str(&id).unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/requests/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::OK
    );
    let e = try_sql(
        &db,
        "UPDATE drop_requests SET revoked_at = NULL WHERE id = $1",
        id,
    )
    .await
    .expect("no un-revoking");
    assert!(e.contains("stays revoked"), "{e}");
    let e = try_sql(
        &db,
        "UPDATE drop_requests SET use_count = use_count + 1, used_at = now() WHERE id = $1",
        id,
    )
    .await
    .expect("a revoked link takes no use");
    assert!(e.contains("cannot be used"), "{e}");

    let (id, _) = app.create_link("lever").await;
    let id = Uuid::parse_str(&id).unwrap();
    let expire = "UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 hour' WHERE id = $1";
    assert_eq!(try_sql(&db, expire, id).await, None);
    let e = try_sql(
        &db,
        "UPDATE drop_requests SET use_count = 1, used_at = now() WHERE id = $1",
        id,
    )
    .await
    .expect("an expired link takes no use");
    assert!(e.contains("expired"), "{e}");
}

#[sqlx::test]
async fn readiness_reports_migrations_and_internal_readiness_reports_rows_per_kek(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    seed(&app, &Keyring::parse(&app.kek).unwrap(), 3).await;
    let internal: Value = app
        .api
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(internal["status"], "ready");
    assert_eq!(internal["database"], "ok");
    assert_eq!(internal["keks"]["status"], "ok");
    assert_eq!(internal["keks"]["active"], "test-kek");
    assert_eq!(internal["keks"]["rows"]["test-kek"], 3);
    assert_eq!(internal["migrations"]["status"], "current");

    let public: Value = app
        .api
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["status"], "ready");
    assert!(
        public["keks"].get("rows").is_none(),
        "the internet is not told how many secrets we hold"
    );

    // A binary newer than its database (started with --no-migrate) is not ready.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&db)
    .await
    .unwrap();
    let resp = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["migrations"]["status"], "pending");
    assert_eq!(v["migrations"]["pending"].as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn metrics_are_served_on_the_internal_listener_only_and_count_what_happened(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("greenhouse").await;
    let token = link[link.find("/d/").unwrap() + 3..].to_owned();
    let series = [
        r#"keydrop_http_requests_total{listener="public",method="POST",route="/d/{token}",status="303"}"#,
        r#"keydrop_http_requests_total{listener="internal",method="POST",route="/api/v1/secrets/{id}/reveal",status="200"}"#,
        r#"keydrop_submissions_total{provider="greenhouse"}"#,
        r#"keydrop_reveals_total{provider="greenhouse"}"#,
        // The test configuration's Greenhouse upstream is a closed port.
        r#"keydrop_check_outcomes_total{provider="greenhouse",status="unverified"}"#,
    ];
    let before: Vec<f64> = series.iter().map(|s| app.metric(s)).collect();
    let receipt = app
        .submit_greenhouse(&link, "metrics-secret")
        .await
        .text()
        .await
        .unwrap();
    let id = reference_from(&receipt);
    assert_eq!(app.reveal(&id).await.status(), StatusCode::OK);
    for (s, b) in series.iter().zip(before) {
        assert_eq!(app.metric(s) - b, 1.0, "{s} counts the one action");
    }

    let public = app
        .api
        .get(format!("{}/metrics", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);

    let resp = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = resp.text().await.unwrap();
    // The scrape serves this app's registry, with the database gauges read now.
    for s in series {
        assert_eq!(sample(&body, s), app.metric(s), "{s}");
    }
    for (s, v) in [
        (r#"keydrop_secret_rows_by_kek{kek_id="test-kek"}"#, 1.0),
        (r#"keydrop_secrets{status="revealed"}"#, 1.0),
        ("keydrop_database_up", 1.0),
    ] {
        assert_eq!(sample(&body, s), v, "{s} in:\n{body}");
    }
    for needle in [
        r#"keydrop_http_request_duration_seconds_bucket{listener="public",method="GET",route="/d/{token}",le="0.005"}"#,
        r#"keydrop_db_pool_connections{state="idle"}"#,
        "keydrop_db_pool_max_connections",
    ] {
        assert!(body.contains(needle), "missing {needle} in:\n{body}");
    }
    assert!(!body.contains(&token), "no drop-link token in metrics");
    assert!(!body.contains("metrics-secret"));
    assert!(!body.contains(&id), "no ids in labels");
}

#[sqlx::test]
async fn two_apps_in_one_process_count_separately(db: PgPool) {
    let first = spawn_app(db.clone()).await;
    let (_, link) = first.create_link("greenhouse").await;
    let second = TestApp::builder(db).with_kek(&first.kek).spawn().await;
    let receipt = first.submit_greenhouse(&link, "counted-once").await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let submitted = r#"keydrop_submissions_total{provider="greenhouse"}"#;
    assert_eq!(first.metric(submitted), 1.0);
    assert_eq!(second.metric(submitted), 0.0, "no shared, global registry");
}
