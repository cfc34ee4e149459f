//! Fingerprints never give a secret away (issue 18): short secrets get a keyed
//! fingerprint everywhere it is carried, long ones at most "ends in …" four
//! characters; `keydrop fingerprints refresh` fixes rows written before.

use crate::audit_trail::submit_generic;
use crate::binary::{database_url, keydrop, run};
use crate::helpers::*;
use crate::storage::dump;
use keydrop::crypto::{self, Context, Keyring};
use keydrop::ops::rotate::{self, Options};
use keydrop::store::audit::Actor;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::atomic::AtomicBool;
use uuid::Uuid;

/// Tails with `!`/`#`, which neither hex nor base64 contain, so a match in
/// the dump cannot be a chance hit inside a hash or a blob.
const FOUR: &str = "Zq9!";
const TWELVE: &str = "pW7x-Lk2#Qz!";
const FORTY: &str = "sk_live_9fQ2xLmP4rT8vW1yZ3bC6dE0gH5j3WK3";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn tail(s: &str, n: usize) -> &str {
    &s[s.len() - n..]
}

async fn meta(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap()
}

#[sqlx::test]
async fn short_secrets_and_their_last_four_characters_appear_nowhere_and_long_ones_only_as_ends_in(
    db: PgPool,
) {
    let app = spawn_app(db).await;
    assert_eq!(FORTY.len(), 40);
    let mut receipts = String::new();
    let mut ids = Vec::new();
    for secret in [FOUR, TWELVE, FORTY] {
        let (_, link) = app.create_link("generic").await;
        let html = app
            .open_and_submit(
                &link,
                &[
                    ("submitter_name", "Jane Admin"),
                    ("submitter_email", "jane@acme.example.com"),
                    ("label", "Office Wi-Fi"),
                    ("secret", secret),
                ],
            )
            .await
            .text()
            .await
            .unwrap();
        let id = reference_from(&html);
        let m = meta(&app, &id).await;
        if secret.len() < 20 {
            assert_eq!(m["fingerprint_kind"], "keyed", "{secret}");
            let fp = m["fingerprint"].as_str().unwrap();
            assert!(
                html.contains(&format!("fingerprint {fp}")),
                "the receipt names the kind"
            );
        } else {
            assert_eq!(m["fingerprint_kind"], "tail");
            assert_eq!(m["fingerprint"], tail(FORTY, 4));
            assert!(html.contains(&format!("ends in …{}", tail(FORTY, 4))));
        }
        receipts.push_str(&html);
        ids.push(id);
    }
    let audit = app
        .get("/api/v1/audit?limit=500", &app.admin)
        .await
        .text()
        .await
        .unwrap();
    let secrets_api = app
        .get("/api/v1/secrets", &app.admin)
        .await
        .text()
        .await
        .unwrap();
    let raw = dump(&app.db).await;
    // Sanity: the places scanned really hold the submissions and their webhook messages.
    for id in &ids {
        assert!(audit.contains(id.as_str()) && secrets_api.contains(id.as_str()));
        assert!(contains(&raw, id));
    }
    let messages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_messages WHERE event_type = 'submission.received'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(messages, 3, "webhook payloads are part of the dump");

    let places: [(&str, &[u8]); 4] = [
        ("database dump", &raw),
        ("audit API", audit.as_bytes()),
        ("secrets API", secrets_api.as_bytes()),
        ("receipts", receipts.as_bytes()),
    ];
    for (place, text) in places {
        for short in [FOUR, TWELVE] {
            assert!(!contains(text, short), "{short:?} in the {place}");
            assert!(
                !contains(text, tail(short, 4)),
                "tail of {short:?} in the {place}"
            );
            assert!(
                !contains(text, tail(short, 3)),
                "tail of {short:?} in the {place}"
            );
        }
        assert!(!contains(text, FORTY), "the long secret in the {place}");
        assert!(
            !contains(text, tail(FORTY, 5)),
            "more than four characters in the {place}"
        );
        assert!(!contains(text, &FORTY[..8]), "its start in the {place}");
    }
}

#[sqlx::test]
async fn the_same_value_gives_the_same_keyed_fingerprint_also_after_a_kek_rotation(db: PgPool) {
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let app = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    let mut fingerprints = Vec::new();
    for secret in [TWELVE, TWELVE, "another-pass"] {
        let (_, link) = app.create_link("generic").await;
        let id = submit_generic(&app, &link, secret).await;
        fingerprints.push(
            meta(&app, &id).await["fingerprint"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        fingerprints[0], fingerprints[1],
        "same value, same fingerprint"
    );
    assert_ne!(fingerprints[0], fingerprints[2]);
    drop(app);

    // Rotate to B, then run with B alone: the fingerprint key moved with the data keys.
    let summary = rotate::rotate(
        &db,
        &Keyring::parse(&format!("{b},{a}")).unwrap(),
        &Actor::cli(),
        Options::default(),
        &AtomicBool::new(false),
        |_| {},
    )
    .await
    .unwrap();
    assert!(summary.complete);
    let app = TestApp::builder(db.clone()).with_kek(&b).spawn().await;
    let (_, link) = app.create_link("generic").await;
    let id = submit_generic(&app, &link, TWELVE).await;
    assert_eq!(
        meta(&app, &id).await["fingerprint"],
        fingerprints[0].as_str()
    );
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM fingerprint_keys WHERE kek_id = 'kek-b'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(keys, 1, "one fingerprint key, now wrapped by the new KEK");
}

#[sqlx::test]
async fn a_label_equal_to_the_secret_is_refused_and_the_page_suggests_a_longer_secret(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    let page = app
        .browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("at least 16 characters"),
        "a suggested minimum length"
    );
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("label", TWELVE),
                ("secret", TWELVE),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("The label is the same as the secret"),
        "{html}"
    );
    assert!(
        !html.contains(TWELVE),
        "neither field echoes the secret back"
    );
    assert_eq!(app.count("secrets").await, 0);
}

/// Inserts a secret the way the code before this change did: the fingerprint
/// column holds the last four characters whatever the length.
async fn legacy_row(app: &TestApp, ring: &Keyring, request_id: Uuid, secret: &str) -> Uuid {
    let id = Uuid::new_v4();
    let fields = json!({ "label": "old", "secret": secret });
    let env = crypto::seal(
        ring,
        Context {
            secret_id: id,
            provider: "generic",
        },
        fields.to_string().as_bytes(),
    )
    .unwrap();
    sqlx::query(
        "INSERT INTO secrets (id, request_id, organization, provider, submitter_name, submitter_email,
                              fingerprint, payload, wrapped_dek, kek_id, format_version, check_result)
         VALUES ($1, $2, 'Acme Corp', 'generic', 'Old', 'old@example.com', $3, $4, $5, $6, $7, '{}')",
    )
    .bind(id)
    .bind(request_id)
    .bind(&secret[secret.len().saturating_sub(4)..])
    .bind(env.payload)
    .bind(env.wrapped_dek)
    .bind(env.kek_id)
    .bind(env.format_version)
    .execute(&app.db)
    .await
    .unwrap();
    id
}

async fn fingerprint_of(db: &PgPool, id: Uuid) -> (String, String) {
    sqlx::query_as("SELECT fingerprint, fingerprint_kind FROM secrets WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn fingerprints_refresh_fixes_rows_written_before_the_change_and_resumes(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let ring = Keyring::parse(&app.kek).unwrap();
    let (request_id, link) = app
        .create_link_with(json!({
            "organization": "Acme Corp", "provider": "generic", "max_uses": 10
        }))
        .await;
    let request_id = Uuid::parse_str(&request_id).unwrap();
    let short = ["Zq9!", "pW7x-Lk2#Qz!", "r2D2#", "88!7"];
    let mut old = Vec::new();
    for s in short {
        old.push(legacy_row(&app, &ring, request_id, s).await);
    }
    let long = legacy_row(&app, &ring, request_id, FORTY).await;
    let shredded = legacy_row(&app, &ring, request_id, "gone#1").await;
    let resp = app
        .delete(&format!("/api/v1/secrets/{shredded}"), &app.admin)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // A new submission of the same value, for comparison after the refresh.
    let fresh = submit_generic(&app, &link, short[1]).await;
    let fresh_fp = meta(&app, &fresh).await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();

    let url = database_url(&db);
    let (ok, _, stderr) = run(keydrop(&url, &app.kek).args([
        "fingerprints",
        "refresh",
        "--batch",
        "2",
        "--max-batches",
        "1",
    ]));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("stopped early"), "{stderr}");
    let stale: i64 =
        sqlx::query_scalar("SELECT count(*) FROM secrets WHERE fingerprint_kind = 'legacy'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stale, 4, "one batch of two rows was done");

    let (ok, stdout, stderr) =
        run(keydrop(&url, &app.kek).args(["fingerprints", "refresh", "--json"]));
    assert!(ok, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let done = summary["refreshed"].as_u64().unwrap() + summary["erased"].as_u64().unwrap();
    assert_eq!(done, 4, "the four rows the first run left: {summary}");
    assert_eq!(summary["complete"], true);
    for (id, s) in old.iter().zip(short) {
        let (fp, kind) = fingerprint_of(&db, *id).await;
        assert_eq!(kind, "keyed", "{s}");
        assert!(!fp.contains(tail(s, 3)), "{s}: {fp}");
    }
    assert_eq!(
        fingerprint_of(&db, old[1]).await.0,
        fresh_fp,
        "same value, same fingerprint"
    );
    assert_eq!(
        fingerprint_of(&db, long).await,
        (tail(FORTY, 4).to_owned(), "tail".to_owned())
    );
    assert_eq!(
        fingerprint_of(&db, shredded).await,
        (String::new(), "none".to_owned())
    );
    // Nothing left: a third run changes nothing and says so.
    let (ok, stdout, _) = run(keydrop(&url, &app.kek).args(["fingerprints", "refresh", "--json"]));
    assert!(ok);
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["refreshed"], 0);
    assert_eq!(summary["batches"], 0);
}
