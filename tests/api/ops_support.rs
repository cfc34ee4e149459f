//! Shared by the operations tests: seeding many secrets fast, and reading
//! what is stored.

use crate::helpers::TestApp;
use keydrop::crypto::{self, Context, Fingerprint, FingerprintKind, Keyring};
use keydrop::store::secrets::{self, NewSecret};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Inserts `n` sealed `generic` secrets under one new drop link, straight
/// through the store (the HTTP path is covered elsewhere; rotation and
/// retention tests need volume). Returns (id, plaintext secret) pairs.
pub async fn seed(app: &TestApp, ring: &Keyring, n: usize) -> Vec<(Uuid, String)> {
    let (request_id, _) = app.create_link("generic").await;
    let request_id = Uuid::parse_str(&request_id).unwrap();
    let mut out = Vec::with_capacity(n);
    let mut conn = app.db.acquire().await.unwrap();
    for i in 0..n {
        let id = Uuid::new_v4();
        let secret = format!("seeded-secret-{i}-{id}");
        let fields = json!({ "label": format!("key {i}"), "secret": secret });
        let ctx = Context {
            secret_id: id,
            provider: "generic",
        };
        let envelope = crypto::seal(ring, ctx, fields.to_string().as_bytes()).unwrap();
        secrets::insert(
            &mut conn,
            NewSecret {
                id,
                request_id,
                organization: "Acme Corp",
                provider: "generic",
                submitter_name: "Seed",
                submitter_email: "seed@example.com",
                // Seeded secrets are long: their last four characters may show.
                fingerprint: &Fingerprint {
                    kind: FingerprintKind::Tail,
                    text: secret[secret.len() - 4..].to_owned(),
                },
                fingerprint_key: 0,
                secret_length: Some(secret.chars().count() as i32),
                envelope: &envelope,
                check_result: keydrop::store::json_text(&json!({ "status": "unverified" })),
                submission_id: None,
                browser_hash: None,
            },
        )
        .await
        .unwrap();
        out.push((id, secret));
    }
    out
}

/// KEK id per secret id, for rows that still hold ciphertext.
pub async fn kek_of(db: &PgPool, id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT kek_id FROM secrets WHERE id = $1 AND payload IS NOT NULL")
        .bind(id)
        .fetch_optional(db)
        .await
        .unwrap()
        .flatten()
}

/// (payload, wrapped_dek) of a row.
pub async fn blobs(db: &PgPool, id: Uuid) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    sqlx::query_as("SELECT payload, wrapped_dek FROM secrets WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Reveals through the API and returns the `secret` field.
pub async fn revealed_secret(app: &TestApp, id: Uuid) -> String {
    let resp = app.reveal(&id.to_string()).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "reveal {id}");
    let v: Value = resp.json().await.unwrap();
    v["fields"]["secret"].as_str().unwrap().to_owned()
}

/// Audit events with `action` for one secret.
pub async fn audit_count(db: &PgPool, action: &str, secret: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1 AND secret_id = $2")
        .bind(action)
        .bind(secret)
        .fetch_one(db)
        .await
        .unwrap()
}

/// A second, independent pool on the same database (another "replica").
pub async fn second_pool(db: &PgPool) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap()
}

/// Makes every stored secret `seconds` older, as if time had passed (what
/// retention compares against), instead of sleeping until it has.
pub async fn age_secrets(db: &PgPool, seconds: i64) {
    sqlx::query("UPDATE secrets SET created_at = created_at - make_interval(secs => $1)")
        .bind(seconds as f64)
        .execute(db)
        .await
        .unwrap();
}
