//! The staff console in headless Chromium, signing in through OpenBao's own
//! login page (its web UI, served by `bao server -dev`): create a link, the
//! customer submits through the drop page, staff see the check badge,
//! reveal with a reason, mark ingested, log out; and a person whose groups
//! map to no scope is refused. Screenshots of every console page land in
//! `target/browser-artifacts/console-*.png`.

use crate::driver::{Browser, Screen};
use crate::drop_pages::{fill, h1_after_submit};
use crate::fakes::{Behaviour, Fake, GH_CLIENT_ID, GH_CLIENT_SECRET};
use crate::support::console::{spawn_console_with, Console};
use crate::support::openbao::{User, ADMIN, OUTSIDER};
use fantoccini::Locator;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Waits until the page's `<h1>` satisfies `ok`; returns it.
async fn wait_h1(b: &Browser, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = b.client.find(Locator::Css("h1")).await {
            if let Ok(h1) = e.text().await {
                if ok(&h1) {
                    return h1;
                }
            }
        }
        if Instant::now() > deadline {
            let url = b.client.current_url().await.unwrap();
            b.screenshot(&format!("console-timeout-{what}")).await;
            panic!("waited 30 s for {what} at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// OpenBao's login page: choose "Userpass", type the credentials, sign in.
async fn sign_in_at_openbao(b: &Browser, user: &User, shot: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let select = loop {
        if let Ok(s) = b
            .client
            .find(Locator::Css("[data-test-select=auth-method]"))
            .await
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "OpenBao's login page did not appear"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    select.select_by_value("userpass").await.unwrap();
    let username = loop {
        if let Ok(u) = b.client.find(Locator::Css("input[name=username]")).await {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "no username field after choosing userpass"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    username.send_keys(user.name).await.unwrap();
    b.find("input[name=password]")
        .await
        .send_keys(user.password)
        .await
        .unwrap();
    if let Some(name) = shot {
        b.screenshot(name).await;
    }
    b.find("#auth-submit").await.click().await.unwrap();
}

/// No console errors or CSP violations, and both console stylesheets
/// (keydrop.css, console.css) loaded and applied.
async fn assert_clean(b: &Browser, page: &str) {
    let bad: Vec<_> = b
        .console()
        .await
        .into_iter()
        .filter(|e| e.level == "SEVERE" || e.level == "WARNING")
        .collect();
    assert!(
        bad.is_empty(),
        "{page}: console errors or CSP violations: {bad:#?}"
    );
    let sheets = b
        .eval("return Array.from(document.styleSheets).map(s => s.cssRules.length);")
        .await;
    let rules: Vec<i64> = serde_json::from_value(sheets).unwrap();
    assert!(
        rules.len() == 2 && rules.iter().all(|n| *n > 0),
        "{page}: stylesheets {rules:?}"
    );
}

async fn setup(db: PgPool) -> Option<(Console, Fake, Browser)> {
    let fake = Fake::start(Behaviour::default()).await;
    let env = fake
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let console = spawn_console_with(db, env).await?;
    let browser = Browser::start(Screen::Desktop).await;
    Some((console, fake, browser))
}

#[sqlx::test]
async fn staff_sign_in_create_a_link_see_the_check_badge_reveal_ingest_and_log_out(db: PgPool) {
    let Some((c, _fake, b)) = setup(db).await else {
        return;
    };
    let started = Instant::now();
    b.goto(&c.app.url("/links")).await;
    sign_in_at_openbao(&b, &ADMIN, Some("console-01-openbao-login")).await;
    wait_h1(&b, "the links page", |h| h == "Drop links").await;
    b.screenshot("console-02-links").await;

    fill(&b, "organization", "Acme Corp").await;
    b.find("select[name=provider]")
        .await
        .select_by_value("greenhouse")
        .await
        .unwrap();
    b.find("form.grid button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_h1(&b, "the created link", |h| h == "Link created").await;
    let url = b.text("#drop-url").await;
    assert!(url.contains("/d/kdl_"), "{url}");
    b.screenshot("console-03-link-created").await;

    // The customer admin, in the same browser, on the public drop page.
    b.goto(&c.app.local(&url)).await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    fill(&b, "client_id", GH_CLIENT_ID).await;
    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
    let h1 = b.text("h1").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    h1_after_submit(&b, &h1).await;

    b.goto(&c.app.url("/secrets")).await;
    wait_h1(&b, "the secrets page", |h| h == "Secrets").await;
    assert_eq!(b.text("#secrets tbody .badge").await, "verified");
    b.screenshot("console-04-secrets").await;
    b.find("#secrets tbody a").await.click().await.unwrap();
    wait_h1(&b, "the secret", |h| h.contains("Acme Corp")).await;
    assert_eq!(b.text("#check").await, "verified");
    assert_eq!(b.text("#status").await, "received");
    b.screenshot("console-05-secret").await;

    fill(&b, "reveal-reason", "ingestion ticket ING-42").await;
    b.find("form.reveal button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_h1(&b, "the revealed secret", |h| h.starts_with("Revealed")).await;
    let masked = b.text("#field-client_secret").await;
    assert!(!masked.contains(GH_CLIENT_SECRET), "masked until shown");
    b.find("[data-show=field-client_secret]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(b.text("#field-client_secret").await, GH_CLIENT_SECRET);
    b.screenshot("console-06-revealed").await;
    let reason: String = sqlx::query_scalar(
        "SELECT detail->>'reason' FROM audit_events WHERE action = 'secret.revealed' AND actor_kind = 'oidc'",
    )
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert_eq!(reason, "ingestion ticket ING-42");

    b.find("#back-to-secret").await.click().await.unwrap();
    wait_h1(&b, "the secret again", |h| h.contains("Acme Corp")).await;
    b.find("form.ingested button").await.click().await.unwrap();
    wait_h1(&b, "the secret after ingesting", |h| {
        h.contains("Acme Corp")
    })
    .await;
    assert_eq!(b.text("#status").await, "ingested");

    for (path, h1, shot) in [
        ("/audit", "Audit trail", "console-07-audit"),
        ("/tokens", "API tokens", "console-08-tokens"),
        ("/sessions", "Console sessions", "console-09-sessions"),
    ] {
        b.goto(&c.app.url(path)).await;
        wait_h1(&b, path, |h| h == h1).await;
        assert_clean(&b, path).await;
        b.screenshot(shot).await;
    }

    b.find("nav form button").await.click().await.unwrap();
    wait_h1(&b, "the signed-out page", |h| h == "Keydrop console").await;
    assert!(b.text(".lead").await.contains("signed out"));
    b.screenshot("console-10-signed-out").await;
    let ended: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT ended_by FROM console_sessions ORDER BY created_at")
            .fetch_all(&c.app.db)
            .await
            .unwrap();
    assert_eq!(ended, [(Some("logout".to_owned()),)]);
    // The old cookie is dead: the console sends the browser through the
    // provider again. OpenBao has no end-session endpoint, so its own sign-in
    // is still alive and it answers at once: a new Keydrop session.
    b.goto(&c.app.url("/links")).await;
    wait_h1(&b, "the links page after signing in again", |h| {
        h == "Drop links"
    })
    .await;
    let logins: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'console.login' AND outcome = 'success'",
    )
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert_eq!(logins, 2);
    eprintln!("console browser flow took {:?}", started.elapsed());
    b.close().await;
}

#[sqlx::test]
async fn a_person_whose_groups_map_to_no_scope_is_refused_with_a_clear_page(db: PgPool) {
    let Some((c, _fake, b)) = setup(db).await else {
        return;
    };
    b.goto(&c.app.url("/login")).await;
    sign_in_at_openbao(&b, &OUTSIDER, None).await;
    wait_h1(&b, "the refusal", |h| h == "No access to Keydrop").await;
    assert!(b.text(".lead").await.contains(OUTSIDER.email));
    b.screenshot("console-11-refused").await;
    assert_eq!(c.app.count("console_sessions").await, 0);
    b.close().await;
}
