//! The staff console's sign-in, sessions and forms against a real OpenID
//! Provider (OpenBao, started per test by `support::console`).

use crate::support::console::{browser, csrf, location, spawn_console};
use crate::support::openbao::{ADMIN, INGESTION, OUTSIDER};
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test]
async fn an_admin_signs_in_through_openbao_and_the_login_is_audited_with_their_identity(
    db: PgPool,
) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = c.login(&ADMIN).await;
    let (status, html) = c.page(&browser, "/links").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("ada"), "the header names the person");
    let logins = c.events("console.login").await;
    assert_eq!(logins.len(), 1);
    let (kind, outcome, name, detail) = &logins[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("oidc", "success"));
    assert_eq!(name.as_deref(), Some(ADMIN.email));
    assert_eq!(detail["actor"]["issuer"], c.bao.issuer.as_str());
    assert!(detail["actor"]["subject"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(detail["scopes"], serde_json::json!(["admin"]));
}

#[sqlx::test]
async fn a_person_in_no_mapped_group_is_refused_with_a_clear_page_and_no_session(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = browser();
    let to_provider = c.start_login(&browser).await;
    let callback = c.provider_login(&OUTSIDER, &to_provider).await;
    let resp = browser.get(callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let html = resp.text().await.unwrap();
    assert!(html.contains("none of your groups grants access"), "{html}");
    assert!(html.contains(OUTSIDER.email));
    assert_eq!(c.app.count("console_sessions").await, 0);
    let refused = c.events("console.login").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].1, "denied");
    assert_eq!(refused[0].3["reason"], "no_mapped_group");
    assert_eq!(refused[0].3["groups"], serde_json::json!(["marketing"]));
    let (status, to) = c.page(&browser, "/links").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Flinks")
    );
}

#[sqlx::test]
async fn a_replayed_callback_is_refused_and_creates_no_second_session(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = browser();
    let to_provider = c.start_login(&browser).await;
    let callback = c.provider_login(&ADMIN, &to_provider).await;
    let first = browser.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let again = browser.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await.unwrap().contains("already finished"));
    assert_eq!(c.app.count("console_sessions").await, 1);
    let denied: Vec<_> = c
        .events("console.login")
        .await
        .into_iter()
        .filter(|e| e.1 == "denied")
        .collect();
    assert_eq!(denied[0].3["reason"], "state_unknown");
}

#[sqlx::test]
async fn a_forged_state_or_a_callback_in_another_browser_is_refused(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let forged =
        browser()
            .get(c.app.url(
                "/auth/callback?code=abc&state=kdo_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let junk = browser()
        .get(c.app.url("/auth/callback?code=abc&state=<x>"))
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    // Started in one browser, finished in another (login CSRF).
    let victim = browser();
    let to_provider = c.start_login(&browser()).await;
    let callback = c.provider_login(&ADMIN, &to_provider).await;
    let resp = victim.get(callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("another browser"));
    assert_eq!(c.app.count("console_sessions").await, 0);
    let reasons: Vec<_> = c
        .events("console.login")
        .await
        .into_iter()
        .map(|e| e.3["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        ["state_unknown", "state_invalid", "state_not_bound"]
    );
}

#[sqlx::test]
async fn an_id_token_with_another_logins_nonce_is_refused(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = browser();
    let first = url::Url::parse(&c.start_login(&browser).await).unwrap();
    let second = url::Url::parse(&c.start_login(&browser).await).unwrap();
    let other_nonce = second
        .query_pairs()
        .find(|(k, _)| k == "nonce")
        .unwrap()
        .1
        .into_owned();
    // The first login's request, with the second login's nonce: the provider
    // signs that nonce into the ID token; the callback expects the first's.
    let mut mixed = first.clone();
    let pairs: Vec<(String, String)> = first
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                other_nonce.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    mixed.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = c.provider_login(&ADMIN, mixed.as_str()).await;
    let resp = browser.get(callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(html.contains("ID token was refused"), "{html}");
    assert_eq!(c.app.count("console_sessions").await, 0);
    let refused = c.events("console.login").await;
    assert_eq!(refused[0].3["reason"], "id_token_invalid");
}

#[sqlx::test]
async fn after_logout_the_old_session_cookie_leads_back_to_login(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = c.login(&INGESTION).await;
    let (_, html) = c.page(&browser, "/secrets").await;
    let token = csrf(&html);
    let cookie: String =
        sqlx::query_scalar("SELECT count(*)::text FROM console_sessions WHERE ended_at IS NULL")
            .fetch_one(&c.app.db)
            .await
            .unwrap();
    assert_eq!(cookie, "1");
    let resp = c.post(&browser, "/logout", &token, &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/login?logged_out=1");
    let (status, to) = c.page(&browser, "/secrets").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fsecrets")
    );
    assert_eq!(c.events("console.logout").await.len(), 1);
}

#[sqlx::test]
async fn console_forms_need_the_sessions_form_token_and_the_right_scope(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let ingestion = c.login(&INGESTION).await;
    let (_, html) = c.page(&ingestion, "/links").await;
    let token = csrf(&html);
    let fields = [("organization", "Acme"), ("provider", "greenhouse")];
    let forged = c.post(&ingestion, "/links", "not-the-token", &fields).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let cross = ingestion
        .post(c.app.url("/links"))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", token.as_str()),
            ("organization", "Acme"),
            ("provider", "greenhouse"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // `reveal` does not include `request`.
    let scoped = c.post(&ingestion, "/links", &token, &fields).await;
    assert_eq!(scoped.status(), StatusCode::FORBIDDEN);
    // Another session's token does not fit this session.
    let admin = c.login(&ADMIN).await;
    let wrong = c.post(&admin, "/links", &token, &fields).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(c.app.count("drop_requests").await, 0);
    let (status, _) = c.page(&ingestion, "/tokens").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "API tokens are for admins");
}

#[sqlx::test]
async fn an_admin_creates_a_link_in_the_console_as_themselves(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let admin = c.login(&ADMIN).await;
    let (_, html) = c.page(&admin, "/links").await;
    let resp = c
        .post(
            &admin,
            "/links",
            &csrf(&html),
            &[
                ("organization", "Acme Corp"),
                ("provider", "lever"),
                ("contact_email", "it@acme.example"),
                ("expires_in", "48h"),
                ("max_uses", "2"),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.contains("/d/kdl_"), "the URL is shown once");
    let created = c.events("link.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, "oidc");
    assert_eq!(created[0].2.as_deref(), Some(ADMIN.email));
    let (_, list) = c.page(&admin, "/links?status=pending&q=acme").await;
    assert!(list.contains("Acme Corp") && list.contains("0 / 2"));
    assert!(
        !list.contains("/d/kdl_"),
        "the list never shows a link's URL"
    );
    let bad = c
        .post(
            &admin,
            "/links",
            &csrf(&list),
            &[("organization", ""), ("provider", "nope")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("organization"));
}

#[sqlx::test]
async fn an_admin_revokes_another_session_which_is_then_signed_out(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let ingestion = c.login(&INGESTION).await;
    let admin = c.login(&ADMIN).await;
    let (status, html) = c.page(&admin, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM console_sessions WHERE email = $1")
        .bind(INGESTION.email)
        .fetch_one(&c.app.db)
        .await
        .unwrap();
    let resp = c
        .post(&admin, &format!("/sessions/{id}/revoke"), &csrf(&html), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, to) = c.page(&ingestion, "/secrets").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fsecrets")
    );
    assert_eq!(c.events("console.session_revoked").await.len(), 1);
}

#[sqlx::test]
async fn console_pages_carry_the_drop_pages_security_headers_and_none_is_on_the_public_listener(
    db: PgPool,
) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let admin = c.login(&ADMIN).await;
    let resp = admin.get(c.app.url("/audit")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    for path in [
        "/",
        "/login",
        "/auth/callback?code=a&state=b",
        "/links",
        "/secrets",
        "/audit",
        "/sessions",
    ] {
        let resp = admin
            .get(format!("{}{path}", c.app.public))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{path} on the public listener"
        );
    }
    let js = admin
        .get(c.app.url("/static/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
}

#[sqlx::test]
async fn the_session_cookie_is_http_only_same_site_lax_and_holds_no_stored_value(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let browser = browser();
    let to_provider = c.start_login(&browser).await;
    let callback = c.provider_login(&ADMIN, &to_provider).await;
    let resp = browser.get(callback).send().await.unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("keydrop_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM console_sessions WHERE token_hash = sha256($1::bytea)",
    )
    .bind(value.as_bytes())
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert_eq!(stored, 1, "only the hash of the cookie is stored");
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM console_sessions WHERE position($1::bytea in token_hash) > 0",
    )
    .bind(value.as_bytes())
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert_eq!(plain, 0);
}

#[sqlx::test]
async fn a_session_idle_past_its_limit_or_past_its_lifetime_leads_back_to_login(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let idle = c.login(&ADMIN).await;
    let (status, _) = c.page(&idle, "/links").await;
    assert_eq!(status, StatusCode::OK);
    // Age the session in the database instead of waiting 30 minutes.
    sqlx::query("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'")
        .execute(&c.app.db)
        .await
        .unwrap();
    let (status, to) = c.page(&idle, "/links").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Flinks")
    );
    let busy = c.login(&INGESTION).await;
    sqlx::query(
        "UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE email = $1",
    )
    .bind(INGESTION.email)
    .execute(&c.app.db)
    .await
    .unwrap();
    let (status, to) = c.page(&busy, "/secrets").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fsecrets")
    );
}

#[sqlx::test]
async fn a_signed_out_person_lands_on_the_page_they_opened_after_signing_in(db: PgPool) {
    let Some(c) = spawn_console(db).await else {
        return;
    };
    let id = uuid::Uuid::new_v4();
    // The console link of a staff email, opened signed out.
    let person = browser();
    let resp = person
        .get(c.app.url(&format!("/secrets/{id}?from=mail")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to_login = location(&resp);
    assert_eq!(
        to_login,
        format!("/login?next=%2Fsecrets%2F{id}%3Ffrom%3Dmail")
    );
    let resp = person.get(c.app.url(&to_login)).send().await.unwrap();
    let callback = c.provider_login(&ADMIN, &location(&resp)).await;
    let resp = person.get(callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("/secrets/{id}?from=mail"));

    // Another site, the sign-in pages themselves or junk never become the
    // destination: the person lands on the links page.
    for next in [
        "//evil.example/x",
        "/%2F/evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/logout",
        "/auth/callback?code=x",
        "secrets",
    ] {
        let fresh = browser();
        let login = format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let resp = fresh.get(c.app.url(&login)).send().await.unwrap();
        let callback = c.provider_login(&ADMIN, &location(&resp)).await;
        let resp = fresh.get(callback).send().await.unwrap();
        let landed = location(&resp);
        let expected = if next == "/%2F/evil.example" {
            next
        } else {
            "/links"
        };
        assert_eq!(landed, expected, "next={next}");
    }
}
