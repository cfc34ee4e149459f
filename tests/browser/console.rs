//! The staff console in headless Chromium, signing in through OpenBao's own
//! login page (its web UI, served by `bao server -dev`): create a link, the
//! customer submits through the drop page, staff see the check badge,
//! reveal with a reason, mark ingested, log out; and a person whose groups
//! map to no scope is refused. Screenshots of every console page land in
//! `target/browser-artifacts/console-*.png`.

use crate::driver::{Browser, Screen};
use crate::fakes::{Behaviour, Fake};
use crate::support::console::{spawn_console_with, Console};
use crate::support::openbao::{User, OUTSIDER};
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
