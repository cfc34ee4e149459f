//! What is at rest: no plaintext anywhere, and blobs bound to their rows.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{PgPool, Row};

const SECRET: &str = "UNIQUE-plaintext-credential-31337";

/// Every column of every row of every table, as raw bytes / text.
pub async fn dump(db: &PgPool) -> Vec<u8> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert!(tables.len() >= 5);
    let mut out = Vec::new();
    for t in tables {
        // row_to_json renders bytea as \x hex; also fetch raw bytea bytes to scan them directly.
        let rows = sqlx::query(&format!("SELECT row_to_json(t)::text AS j FROM {t} t"))
            .fetch_all(db)
            .await
            .unwrap();
        for r in rows {
            out.extend_from_slice(r.get::<String, _>("j").as_bytes());
        }
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 AND data_type = 'bytea'",
        )
        .bind(&t)
        .fetch_all(db)
        .await
        .unwrap();
        for c in cols {
            let blobs: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!("SELECT {c} FROM {t}"))
                .fetch_all(db)
                .await
                .unwrap();
            for b in blobs.into_iter().flatten() {
                out.extend_from_slice(&b);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[sqlx::test]
async fn no_column_of_any_table_holds_the_plaintext_or_a_token(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("greenhouse").await;
    let id = reference_from(
        &app.submit_greenhouse(&link, SECRET)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(app.reveal(&id).await.status(), StatusCode::OK);
    let raw = dump(&app.db).await;
    let token = &link[link.find("/d/").unwrap() + 3..];
    for needle in [
        SECRET,
        &SECRET[..16],
        &SECRET[10..],
        token,
        &app.admin,
        &app.kek[app.kek.find('=').unwrap() + 1..],
    ] {
        assert!(
            !contains(&raw, needle.as_bytes()),
            "found {needle:?} at rest"
        );
        let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !contains(&raw, hex.as_bytes()),
            "found hex of {needle:?} at rest"
        );
    }
    assert!(
        contains(&raw, b"31337"[1..].as_ref()),
        "the fingerprint is stored (sanity check of the dump)"
    );
}

async fn two_secrets(app: &TestApp) -> (String, String) {
    let (_, a) = app.create_link("greenhouse").await;
    let (_, b) = app.create_link("greenhouse").await;
    let a = reference_from(
        &app.submit_greenhouse(&a, "secret-of-row-a")
            .await
            .text()
            .await
            .unwrap(),
    );
    let b = reference_from(
        &app.submit_greenhouse(&b, "secret-of-row-b")
            .await
            .text()
            .await
            .unwrap(),
    );
    (a, b)
}

#[sqlx::test]
async fn swapping_the_payload_between_rows_makes_reveal_fail(db: PgPool) {
    let app = spawn_app(db).await;
    let (a, b) = two_secrets(&app).await;
    sqlx::query(
        "UPDATE secrets SET payload = CASE id WHEN $1::uuid THEN (SELECT payload FROM secrets WHERE id = $2::uuid)
                                              ELSE (SELECT payload FROM secrets WHERE id = $1::uuid) END
         WHERE id IN ($1::uuid, $2::uuid)",
    )
    .bind(&a)
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    for id in [&a, &b] {
        let resp = app.reveal(id).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = resp.text().await.unwrap();
        assert!(!body.contains("secret-of-row"), "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal");
    }
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'secret.revealed' AND outcome = 'failure'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(failures, 2);
}

#[sqlx::test]
async fn swapping_the_wrapped_dek_or_whole_envelope_between_rows_makes_reveal_fail(db: PgPool) {
    let app = spawn_app(db).await;
    let (a, b) = two_secrets(&app).await;
    sqlx::query("UPDATE secrets SET wrapped_dek = (SELECT wrapped_dek FROM secrets WHERE id = $2::uuid) WHERE id = $1::uuid")
        .bind(&a)
        .bind(&b)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.reveal(&a).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    sqlx::query(
        "UPDATE secrets SET payload = s.payload, wrapped_dek = s.wrapped_dek FROM (SELECT payload, wrapped_dek FROM secrets WHERE id = $2::uuid) s WHERE id = $1::uuid",
    )
    .bind(&a)
    .bind(&b)
    .execute(&app.db)
    .await
    .unwrap();
    let resp = app.reveal(&a).await;
    assert_eq!(
        resp.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "B's envelope on A's row never reveals B's secret"
    );
    assert!(!resp.text().await.unwrap().contains("secret-of-row-b"));
    assert_eq!(
        app.reveal(&b).await.status(),
        StatusCode::OK,
        "the untouched row still reveals"
    );
}

#[sqlx::test]
async fn a_secret_under_an_unconfigured_kek_answers_kek_unavailable(db: PgPool) {
    let old = new_kek("old-kek");
    let first = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
    let (_, link) = first.create_link("lever").await;
    let csrf = first.open_form(&link).await;
    let id = reference_from(
        &first
            .submit(
                &link,
                &[
                    ("csrf_token", &csrf),
                    ("submitter_name", "A"),
                    ("submitter_email", "a@b.co"),
                    ("api_key", "kk"),
                ],
            )
            .await
            .text()
            .await
            .unwrap(),
    );
    drop(first);
    let second = TestApp::builder(db)
        .with_kek(&new_kek("new-kek"))
        .spawn()
        .await;
    let resp = second.reveal(&id).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "kek_unavailable");
    assert!(v["error"]["message"].as_str().unwrap().contains("old-kek"));
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'secret.revealed' AND outcome = 'failure' AND detail->>'error' LIKE '%old-kek%'",
    )
    .fetch_one(&second.db)
    .await
    .unwrap();
    assert_eq!(failed, 1, "the failed reveal is audited");
    // The replica is not ready: it cannot open every secret it stores.
    let resp = second
        .api
        .get(format!("{}/readyz", second.internal))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["keks"]["missing"][0], "old-kek");
    assert_eq!(ready["keks"]["status"], "missing");
}

#[sqlx::test]
async fn a_kek_that_wraps_secrets_but_lost_its_canary_is_refused_until_adopted(db: PgPool) {
    use keydrop::crypto::Keyring;
    use keydrop::store::canary::{self, Adopted};
    let kek = new_kek("lost-canary");
    let first = TestApp::builder(db.clone()).with_kek(&kek).spawn().await;
    let (_, link) = first.create_link("lever").await;
    let csrf = first.open_form(&link).await;
    let id = reference_from(
        &first
            .submit(
                &link,
                &[
                    ("csrf_token", &csrf),
                    ("submitter_name", "A"),
                    ("submitter_email", "a@b.co"),
                    ("api_key", "kk"),
                ],
            )
            .await
            .text()
            .await
            .unwrap(),
    );
    drop(first);
    let canaries = |db: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM kek_canaries WHERE kek_id = 'lost-canary'",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    sqlx::query("DELETE FROM kek_canaries WHERE kek_id = 'lost-canary'")
        .execute(&db)
        .await
        .unwrap();

    // Whatever key is configured under that id, a start no longer trusts it.
    let refused = keydrop::startup::Application::build(
        test_config(&[]),
        Keyring::parse(&kek).unwrap(),
        db.clone(),
    )
    .await
    .err()
    .expect("a KEK id wrapping secrets without a canary is refused");
    let msg = format!("{refused:#}");
    assert!(
        msg.contains("lost-canary") && msg.contains("keydrop keks adopt"),
        "{msg}"
    );
    assert_eq!(
        canaries(db.clone()).await,
        0,
        "no canary from an unproven key"
    );

    // Adopting with another key under the same id is refused and records nothing.
    let wrong = Keyring::parse(&new_kek("lost-canary")).unwrap();
    let err = canary::adopt(&db, &wrong, "lost-canary").await.unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err}");
    assert_eq!(canaries(db.clone()).await, 0);

    // The key the secret was written with is proven and adopted; the server starts and reveals.
    let right = Keyring::parse(&kek).unwrap();
    assert_eq!(
        canary::adopt(&db, &right, "lost-canary").await.unwrap(),
        Adopted::Recorded { checked: 1 }
    );
    assert_eq!(
        canary::adopt(&db, &right, "lost-canary").await.unwrap(),
        Adopted::AlreadyRegistered
    );
    let second = TestApp::builder(db).with_kek(&kek).spawn().await;
    assert_eq!(second.reveal(&id).await.status(), StatusCode::OK);
}
