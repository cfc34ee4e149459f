//! Secret actions in the console: reveal with a reason (no-store, audited
//! with the reason and the person), mark ingested, shred (admin, confirmed),
//! each refused clearly when the input or the scope is wrong.

use crate::support::console::{csrf, location, spawn_console, Console};
use crate::support::openbao::{ADMIN, INGESTION};
use reqwest::{Client, StatusCode};
use sqlx::PgPool;

/// A stored generic secret; returns its id.
async fn stored_secret(c: &Console) -> String {
    let (_, link) = c.app.create_link("generic").await;
    let resp = c
        .app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("label", "Warehouse API"),
                ("secret", "s3cr3t-value-that-is-long-enough"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM secrets")
        .fetch_one(&c.app.db)
        .await
        .unwrap()
        .to_string()
}

async fn token_on(c: &Console, browser: &Client, path: &str) -> String {
    let (status, html) = c.page(browser, path).await;
    assert_eq!(status, StatusCode::OK);
    csrf(&html)
}

#[sqlx::test]
async fn a_reveal_needs_a_reason_is_no_store_and_is_audited_as_the_person(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let id = stored_secret(&c).await;
    let staff = c.login(&INGESTION).await;
    // The page says what the secret is in people's words: the provider's
    // name and what the fingerprint is.
    let (_, page) = c.page(&staff, &format!("/secrets/{id}")).await;
    assert!(page.contains("· Other credential</h1>"), "{page}");
    assert!(
        page.contains("the last characters of the credential"),
        "{page}"
    );
    let token = token_on(&c, &staff, &format!("/secrets/{id}")).await;
    let path = format!("/secrets/{id}/reveal");
    let no_reason = c.post(&staff, &path, &token, &[("reason", " ")]).await;
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);
    assert!(no_reason.text().await.unwrap().contains("reason"));
    assert!(
        c.events("secret.revealed").await.is_empty(),
        "nothing revealed without a reason"
    );
    let resp = c
        .post(&staff, &path, &token, &[("reason", "ticket ING-7")])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("s3cr3t-value-that-is-long-enough"));
    let events = c.events("secret.revealed").await;
    assert_eq!(events.len(), 1);
    let (kind, outcome, name, detail) = &events[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("oidc", "success"));
    assert_eq!(name.as_deref(), Some(INGESTION.email));
    assert_eq!(detail["reason"], "ticket ING-7");
    assert_eq!(detail["actor"]["email"], INGESTION.email);
    // The webhook names the person too.
    let payload: String = sqlx::query_scalar(
        "SELECT payload::text FROM webhook_messages WHERE event_type = 'secret.revealed'",
    )
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert!(payload.contains(INGESTION.email), "{payload}");
}

#[sqlx::test]
async fn marking_ingested_follows_the_lifecycle_and_shredding_is_for_admins_who_confirm(
    db: PgPool,
) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let id = stored_secret(&c).await;
    let staff = c.login(&INGESTION).await;
    let token = token_on(&c, &staff, &format!("/secrets/{id}")).await;
    let early = c
        .post(&staff, &format!("/secrets/{id}/ingested"), &token, &[])
        .await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert!(early
        .text()
        .await
        .unwrap()
        .contains("reveal the secret before"));
    c.post(
        &staff,
        &format!("/secrets/{id}/reveal"),
        &token,
        &[("reason", "ticket ING-8")],
    )
    .await;
    let done = c
        .post(&staff, &format!("/secrets/{id}/ingested"), &token, &[])
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), format!("/secrets/{id}"));
    let shred = format!("/secrets/{id}/shred");
    let not_admin = c
        .post(
            &staff,
            &shred,
            &token,
            &[("reason", "done"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(not_admin.status(), StatusCode::FORBIDDEN);
    let admin = c.login(&ADMIN).await;
    let admin_token = token_on(&c, &admin, &format!("/secrets/{id}")).await;
    let unconfirmed = c
        .post(&admin, &shred, &admin_token, &[("reason", "customer left")])
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    let shredded = c
        .post(
            &admin,
            &shred,
            &admin_token,
            &[("reason", "customer left"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(shredded.status(), StatusCode::SEE_OTHER);
    let status: String = sqlx::query_scalar("SELECT status::text FROM secrets")
        .fetch_one(&c.app.db)
        .await
        .unwrap();
    assert_eq!(status, "shredded");
    let events = c.events("secret.shredded").await;
    assert_eq!(events[0].3["reason"], "customer left");
    let again = c
        .post(
            &admin,
            &format!("/secrets/{id}/reveal"),
            &admin_token,
            &[("reason", "late")],
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}
