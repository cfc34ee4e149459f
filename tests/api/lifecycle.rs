//! Secret states: received → revealed → ingested → shredded.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

async fn one_secret(app: &TestApp) -> String {
    let (_, link) = app.create_link("greenhouse").await;
    reference_from(
        &app.submit_greenhouse(&link, "lifecycle-secret-of-24ch")
            .await
            .text()
            .await
            .unwrap(),
    )
}

#[sqlx::test]
async fn a_secret_moves_through_its_lifecycle_and_impossible_moves_are_409(db: PgPool) {
    let app = spawn_app(db).await;
    let id = one_secret(&app).await;
    let ingest = format!("/api/v1/secrets/{id}/ingested");
    let conflict = app.post(&ingest, &app.admin, None).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT, "not revealed yet");
    let v: Value = conflict.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_transition");

    assert_eq!(app.reveal(&id).await.status(), StatusCode::OK);
    let v: Value = app
        .post(&ingest, &app.admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ingested");
    assert_eq!(
        app.reveal(&id).await.status(),
        StatusCode::OK,
        "ingested secrets can still be revealed"
    );

    let shred = app
        .delete(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await;
    assert_eq!(shred.status(), StatusCode::OK);
    let v: Value = shred.json().await.unwrap();
    assert_eq!(v["status"], "shredded");
    assert_eq!(v["fingerprint"], "24ch", "metadata tombstone stays");

    let (payload, dek): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT payload, wrapped_dek FROM secrets WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        payload.is_none() && dek.is_none(),
        "ciphertext and wrapped DEK are gone"
    );
    assert_eq!(app.reveal(&id).await.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.delete(&format!("/api/v1/secrets/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.post(&ingest, &app.admin, None).await.status(),
        StatusCode::CONFLICT
    );

    let audit: Value = app
        .get(&format!("/api/v1/audit?secret_id={id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "secret.shredded",
            "secret.revealed",
            "secret.ingested",
            "secret.revealed",
            "secret.submitted"
        ]
    );
}

#[sqlx::test]
async fn secrets_can_be_filtered_and_unknown_ids_are_404(db: PgPool) {
    let app = spawn_app(db).await;
    let id = one_secret(&app).await;
    let (_, link) = app.create_link("lever").await;
    app.open_and_submit(
        &link,
        &[
            ("submitter_name", "B"),
            ("submitter_email", "b@c.de"),
            ("api_key", "lk"),
        ],
    )
    .await;
    app.reveal(&id).await;

    let list = |q: &'static str| {
        let app = &app;
        async move {
            let v: Value = app
                .get(&format!("/api/v1/secrets{q}"), &app.admin)
                .await
                .json()
                .await
                .unwrap();
            v["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(list("").await, 2);
    assert_eq!(list("?provider=lever").await, 1);
    assert_eq!(list("?status=revealed").await, 1);
    assert_eq!(list("?status=received&provider=greenhouse").await, 0);
    assert_eq!(list("?organization=Acme%20Corp").await, 2);
    let bad = app.get("/api/v1/secrets?status=lost", &app.admin).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{missing}"), &app.admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.reveal(&missing.to_string()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.reveal("'; DROP TABLE secrets; --").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/audit?secret_id=nope", &app.admin)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}
