//! Key-encryption keys in a KMS (issue 14): OpenBao Transit and AWS KMS
//! (moto_server), both real processes on loopback started by the tests.

use crate::helpers::*;
use crate::kms_support::{signal, Bao};
// The AWS tests need the SDK, which the `aws-kms` feature (default) brings.
#[cfg(feature = "aws-kms")]
use crate::kms_support::Moto;
use crate::support::console::{csrf, spawn_console_with};
use crate::support::openbao::INGESTION;
use keydrop::crypto::Keyring;
use keydrop::kms::Keys;
use keydrop::ops::rotate::{self, Options};
use keydrop::startup::Application;
use keydrop::store::audit::Actor;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// An app with KEK ring `kek` and extra environment (a KMS's, or none).
async fn spawn(db: &PgPool, kek: &str, env: &[(&'static str, String)]) -> TestApp {
    TestApp::builder(db.clone())
        .with_kek(kek)
        .with_env(env.to_vec())
        .spawn()
        .await
}

/// Submits a Greenhouse credential; returns the secret's id.
async fn submit(app: &TestApp, secret: &str) -> String {
    let (_, link) = app.create_link("greenhouse").await;
    let resp = app.submit_greenhouse(&link, secret).await;
    assert_eq!(resp.status(), StatusCode::OK);
    reference_from(&resp.text().await.unwrap())
}

async fn revealed_secret(app: &TestApp, id: &str) -> String {
    let resp = app.reveal(id).await;
    assert_eq!(resp.status(), StatusCode::OK, "reveal of {id}");
    let body: Value = resp.json().await.unwrap();
    body["fields"]["client_secret"].as_str().unwrap().to_owned()
}

/// (kek_id, wrapped key) of a row.
async fn row_key(db: &PgPool, id: &str) -> (String, Vec<u8>) {
    sqlx::query_as("SELECT kek_id, wrapped_dek FROM secrets WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn status_of(db: &PgPool, id: &str) -> String {
    sqlx::query_scalar("SELECT status::text FROM secrets WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn check_of(db: &PgPool, id: &str) -> Value {
    sqlx::query_scalar("SELECT check_result FROM secrets WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// The detail of a secret's `secret.revealed` event.
async fn revealed_detail(db: &PgPool, id: &str) -> Value {
    sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'secret.revealed' AND secret_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Runs `keydrop rotate` as the CLI does, with the given environment.
async fn rotate_with(db: &PgPool, kek: &str, env: &[(&str, String)]) -> rotate::Summary {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ring = Arc::new(Keyring::parse(kek).unwrap());
    let keys = Keys::connect(ring, test_config(&env).kms).await.unwrap();
    let opts = Options {
        batch: 2,
        ..Options::default()
    };
    rotate::rotate_keys(
        db,
        &keys,
        &Actor::cli(),
        opts,
        &AtomicBool::new(false),
        |_| {},
    )
    .await
    .unwrap()
}

/// Swaps two rows' ciphertexts and wrapped keys, as an attacker with write
/// access to the database would, so each row holds the other's envelope.
async fn swap_envelopes(db: &PgPool, a: &str, b: &str) {
    sqlx::query(
        "UPDATE secrets s SET payload = o.payload, wrapped_dek = o.wrapped_dek
         FROM secrets o
         WHERE (s.id, o.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))",
    )
    .bind(a)
    .bind(b)
    .execute(db)
    .await
    .unwrap();
}

/// Two submissions, their envelopes swapped: each reveal fails (the KMS
/// refuses the other row's binding) and shows neither secret.
async fn swapped_rows_are_refused(app: &TestApp) {
    let a = submit(app, "row-a-secret-0001").await;
    let b = submit(app, "row-b-secret-0002").await;
    swap_envelopes(&app.db, &a, &b).await;
    for id in [&a, &b] {
        let resp = app.reveal(id).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = resp.text().await.unwrap();
        assert!(!text.contains("secret-000"), "no secret in the answer");
    }
}

#[sqlx::test]
async fn a_credential_wrapped_by_transit_is_revealed_and_the_reveal_names_the_kms_request(
    db: PgPool,
) {
    let bao = Bao::start().await;
    let token = bao.token_for(&["encrypt", "decrypt"]).await;
    let app = spawn(&db, &new_kek("ring-a"), &bao.env(&token)).await;
    let id = submit(&app, "transit-secret-0001").await;

    let (kek, wrapped) = row_key(&db, &id).await;
    assert_eq!(kek, "vault:transit/keydrop");
    assert!(wrapped.starts_with(b"vault:v1:"), "a Transit ciphertext");
    assert_eq!(revealed_secret(&app, &id).await, "transit-secret-0001");

    let detail = revealed_detail(&db, &id).await;
    assert_eq!(detail["kms"]["key"], "vault:transit/keydrop");
    let request_id = detail["kms"]["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 36, "Vault's request id: {request_id}");

    let ready: Value = app.get("/readyz", "").await.json().await.unwrap();
    assert_eq!(ready["kms"]["status"], "ok", "{ready}");
    assert_eq!(ready["kms"]["backend"], "vault-transit");
    assert_eq!(ready["kms"]["key"], "vault:transit/keydrop");
    assert!(ready["kms"]["latency_ms"].is_u64());
}

#[sqlx::test]
async fn rotate_moves_local_rows_into_transit_then_to_the_newest_key_version(db: PgPool) {
    let bao = Bao::start().await;
    let token = bao.token_for(&["encrypt", "decrypt"]).await;
    let kek = new_kek("ring-a");
    let local = spawn(&db, &kek, &[]).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(submit(&local, &format!("local-secret-000{i}")).await);
    }
    let payload_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM secrets ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    drop(local);

    let summary = rotate_with(&db, &kek, &bao.env(&token)).await;
    assert_eq!(
        (summary.rewrapped, summary.remaining),
        (3, 0),
        "{summary:?}"
    );
    assert!(summary.complete && summary.failures.is_empty());
    for id in &ids {
        assert_eq!(row_key(&db, id).await.0, "vault:transit/keydrop");
    }

    // A new Transit key version: rotate rewraps every row under it.
    bao.root_call("transit/keys/keydrop/rotate", serde_json::json!({}))
        .await;
    let again = rotate_with(&db, &kek, &bao.env(&token)).await;
    assert_eq!((again.rewrapped, again.remaining), (3, 0), "{again:?}");
    for id in &ids {
        assert!(row_key(&db, id).await.1.starts_with(b"vault:v2:"));
    }
    let payload_after: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM secrets ORDER BY id")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        payload_before, payload_after,
        "payloads are never re-encrypted"
    );

    let app = spawn(&db, &kek, &bao.env(&token)).await;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            revealed_secret(&app, id).await,
            format!("local-secret-000{i}")
        );
    }
    let nothing = rotate_with(&db, &kek, &bao.env(&token)).await;
    assert_eq!((nothing.rewrapped, nothing.already_current), (0, 3));
}

#[sqlx::test]
async fn a_stopped_openbao_fails_closed_with_503s_loses_nothing_and_recovers(db: PgPool) {
    let bao = Bao::start().await;
    let token = bao.token_for(&["encrypt", "decrypt"]).await;
    let mut env = bao.env(&token);
    env.push(("KEYDROP_KMS_TIMEOUT", "1s".into()));
    let app = spawn(&db, &new_kek("ring-a"), &env).await;
    let (_, first_link) = app.create_link("greenhouse").await;
    let receipt = app
        .submit_greenhouse(&first_link, "before-the-outage-1")
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let receipt = receipt.text().await.unwrap();
    let stored = reference_from(&receipt);
    let (_, link) = app.create_link("greenhouse").await;

    signal(&bao.child, "STOP");
    let resp = app.submit_greenhouse(&link, "during-the-outage-2").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Nothing was stored") && !html.contains("during-the-outage-2"));
    assert_eq!(app.count("secrets").await, 1, "nothing half-written");

    let resp = app.reveal(&stored).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "kms_unavailable");
    let resp = app
        .post(&format!("/api/v1/secrets/{stored}/check"), &app.admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "kms_unavailable");
    // The receipt's "check again": the credential is stored, only the check
    // cannot run; the page must not claim that nothing was stored.
    let resp = app
        .submit(
            &first_link,
            &[
                ("csrf_token", &csrf_from(&receipt)),
                ("reference", &stored),
                ("recheck", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = resp.text().await.unwrap();
    assert!(html.contains("is stored encrypted"), "{html}");
    assert!(!html.contains("Nothing was stored") && !html.contains("before-the-outage-1"));
    assert_eq!(
        status_of(&db, &stored).await,
        "received",
        "the refused reveal changed nothing"
    );
    let ready = app.get("/readyz", "").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["kms"]["status"], "unavailable");

    signal(&bao.child, "CONT");
    eventually("reveals to work again", || async {
        app.reveal(&stored).await.status() == StatusCode::OK
    })
    .await;
    assert_eq!(revealed_secret(&app, &stored).await, "before-the-outage-1");
    // The same link still works: the refused submission did not use it up.
    let resp = app.submit_greenhouse(&link, "after-the-outage-3").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = reference_from(&resp.text().await.unwrap());
    assert_eq!(revealed_secret(&app, &id).await, "after-the-outage-3");
}

#[sqlx::test]
async fn an_approle_login_serves_and_logs_in_again_after_its_token_expires(db: PgPool) {
    let bao = Bao::start().await;
    let dir = std::env::temp_dir().join(format!("keydrop-approle-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ttl = Duration::from_secs(3);
    let env = bao.approle(&["encrypt", "decrypt"], 3, &dir).await;
    let started = std::time::Instant::now();
    let app = spawn(&db, &new_kek("ring-a"), &env).await;
    let id = submit(&app, "approle-secret-0001").await;
    // Past the first token's lifetime, calls still work: Keydrop logged in again.
    eventually("the first AppRole token to expire", || async {
        started.elapsed() > ttl + Duration::from_millis(500)
    })
    .await;
    assert_eq!(revealed_secret(&app, &id).await, "approle-secret-0001");
    let id = submit(&app, "approle-secret-0002").await;
    assert_eq!(revealed_secret(&app, &id).await, "approle-secret-0002");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[sqlx::test]
async fn a_token_without_decrypt_is_refused_at_start_naming_the_policy_path(db: PgPool) {
    let bao = Bao::start().await;
    let token = bao.token_for(&["encrypt"]).await;
    let env = bao.env(&token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ring = Keyring::parse(&new_kek("ring-a")).unwrap();
    let err = Application::build(test_config(&env), ring, db)
        .await
        .err()
        .expect("start-up must be refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("transit/decrypt/keydrop"), "{msg}");
    assert!(msg.contains("capabilities"), "{msg}");
    assert!(!msg.contains(&token), "the token never appears in errors");
}

#[sqlx::test]
async fn a_transit_wrapped_key_moved_to_another_row_is_refused_by_openbao(db: PgPool) {
    let bao = Bao::start().await;
    let token = bao.token_for(&["encrypt", "decrypt"]).await;
    let app = spawn(&db, &new_kek("ring-a"), &bao.env(&token)).await;
    swapped_rows_are_refused(&app).await;
}

#[cfg(feature = "aws-kms")]
#[sqlx::test]
async fn aws_kms_submits_reveals_and_rotates_from_the_ring_and_between_keys(db: PgPool) {
    let moto = Moto::start().await;
    let (key_a, key_b) = (moto.create_key().await, moto.create_key().await);
    let kek = new_kek("ring-a");
    let local = spawn(&db, &kek, &[]).await;
    let old = submit(&local, "local-before-aws-1").await;
    drop(local);

    let app = spawn(&db, &kek, &moto.env(&key_a)).await;
    let new = submit(&app, "under-aws-key-a-2").await;
    assert_eq!(row_key(&db, &new).await.0, format!("aws:{key_a}"));
    // The ring stays configured beside the KMS: the old row still opens.
    assert_eq!(revealed_secret(&app, &old).await, "local-before-aws-1");
    assert_eq!(revealed_secret(&app, &new).await, "under-aws-key-a-2");
    let detail = revealed_detail(&db, &new).await;
    assert_eq!(detail["kms"]["key"], format!("aws:{key_a}"));
    assert!(!detail["kms"]["request_id"].as_str().unwrap().is_empty());
    drop(app);

    let to_a = rotate_with(&db, &kek, &moto.env(&key_a)).await;
    assert_eq!((to_a.rewrapped, to_a.already_current), (1, 1), "{to_a:?}");
    let to_b = rotate_with(&db, &kek, &moto.env(&key_b)).await;
    assert_eq!((to_b.rewrapped, to_b.remaining), (2, 0), "{to_b:?}");
    let app = spawn(&db, &kek, &moto.env(&key_b)).await;
    for (id, secret) in [(&old, "local-before-aws-1"), (&new, "under-aws-key-a-2")] {
        assert_eq!(row_key(&db, id).await.0, format!("aws:{key_b}"));
        assert_eq!(revealed_secret(&app, id).await, secret);
    }
}

#[cfg(feature = "aws-kms")]
#[sqlx::test]
async fn an_aws_wrapped_key_moved_to_another_row_fails_its_encryption_context(db: PgPool) {
    let moto = Moto::start().await;
    let key = moto.create_key().await;
    let app = spawn(&db, &new_kek("ring-a"), &moto.env(&key)).await;
    swapped_rows_are_refused(&app).await;
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'secret.revealed' AND outcome = 'failure'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(failures, 2, "each refused reveal is on record");
}

#[sqlx::test]
async fn the_console_answers_a_503_page_while_openbao_is_stopped_and_changes_nothing(db: PgPool) {
    let transit = Bao::start().await;
    let token = transit.token_for(&["encrypt", "decrypt"]).await;
    let mut env: Vec<(String, String)> = transit
        .env(&token)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("KEYDROP_KMS_TIMEOUT".into(), "1s".into()));
    let Some(c) = spawn_console_with(db, env).await else {
        return;
    };
    let id = submit(&c.app, "console-outage-secret-1").await;
    assert!(row_key(&c.app.db, &id)
        .await
        .0
        .starts_with("vault:transit/"));
    let staff = c.login(&INGESTION).await;
    let (status, page) = c.page(&staff, &format!("/secrets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf(&page);
    let check_before = check_of(&c.app.db, &id).await;

    // Transit frozen: every console action that opens the secret is a 503
    // page saying nothing changed, never a 500, and never the secret.
    signal(&transit.child, "STOP");
    for (path, fields) in [
        (
            format!("/secrets/{id}/reveal"),
            vec![("reason", "ticket ING-9")],
        ),
        (format!("/secrets/{id}/check"), vec![]),
    ] {
        let resp = c.post(&staff, &path, &token, &fields).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Key service unavailable"), "{path}: {html}");
        assert!(html.contains("Nothing was changed"), "{path}: {html}");
        assert!(!html.contains("console-outage-secret-1"));
    }
    assert_eq!(status_of(&c.app.db, &id).await, "received", "not revealed");
    assert_eq!(
        check_of(&c.app.db, &id).await,
        check_before,
        "no new result"
    );
    let revealed = c.events("secret.revealed").await;
    assert_eq!(revealed.len(), 1, "the refused reveal is on record");
    assert_eq!(revealed[0].1, "failure");
    assert!(c.events("check.completed").await.is_empty(), "no check ran");

    signal(&transit.child, "CONT");
    let path = format!("/secrets/{id}/reveal");
    eventually("the console to reveal again", || async {
        c.post(&staff, &path, &token, &[("reason", "ticket ING-9")])
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    let resp = c
        .post(&staff, &path, &token, &[("reason", "ticket ING-9")])
        .await;
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("console-outage-secret-1"));
}
