//! The customer admin's path: open a link, submit, get a receipt; staff reveal.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn a_submitted_credential_is_revealed_with_exactly_the_fields_given(db: PgPool) {
    let app = spawn_app(db).await;
    let (link_id, link) = app.create_link("greenhouse").await;

    let page = app.browser.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme Corp"));
    assert!(html.contains("Dev Center"), "Greenhouse steps are shown");
    assert!(
        html.contains("name=\"client_secret\"")
            && html.contains(
                "type=\"text\" id=\"client_secret\" name=\"client_secret\" class=\"secret\""
            )
    );
    // Masked text inputs: no password field for a password manager to save.
    assert!(!html.contains("type=\"password\"") && !html.contains("maxlength"));
    assert!(html.contains("autocomplete=\"off\""));

    let csrf = csrf_from(&html);
    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("client_id", "gh-client-1"),
                ("client_secret", "  s3cret-VALUE-long-7890\n"),
                ("user_id", "4242"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let receipt = resp.text().await.unwrap();
    assert!(
        receipt.contains("ends in …7890"),
        "a 22-character secret shows its last 4 characters"
    );
    assert!(
        !receipt.contains("s3cret-VALUE-long-7890"),
        "the secret is not echoed"
    );
    let reference = reference_from(&receipt);

    let resp = app.reveal(&reference).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "id": reference,
            "provider": "greenhouse",
            "organization": "Acme Corp",
            "fields": { "client_id": "gh-client-1", "client_secret": "s3cret-VALUE-long-7890", "user_id": "4242" }
        })
    );

    let meta: Value = app
        .get(&format!("/api/v1/secrets/{reference}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["status"], "revealed");
    assert_eq!(meta["request_id"], link_id.as_str());
    assert_eq!(meta["submitter_email"], "jane@acme.example.com");
    assert_eq!(meta["fingerprint"], "7890");
    assert_eq!(meta["fingerprint_kind"], "tail");
    assert_eq!(meta["check"]["status"], "unverified");

    let audit: Value = app
        .get(&format!("/api/v1/audit?secret_id={reference}"), &app.admin)
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
    assert_eq!(actions, ["secret.revealed", "secret.submitted"]);
    let reveal = &audit["items"][0];
    assert_eq!(reveal["actor_name"], "test-admin");
    assert_eq!(reveal["client_ip"], "127.0.0.1");
}

#[sqlx::test]
async fn every_provider_shows_its_fields_and_accepts_a_submission(db: PgPool) {
    let app = spawn_app(db).await;
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("greenhouse-legacy", &[("api_key", "legacykey0001")]),
        ("lever", &[("api_key", "leverkey0002")]),
        ("ashby", &[("api_key", "ashbykey0003")]),
        (
            "bamboohr",
            &[("company_domain", "acme"), ("api_key", "bamboo0004")],
        ),
        (
            "generic",
            &[
                ("label", "Workday ISU"),
                ("secret", "pass word with spaces 0005"),
            ],
        ),
    ];
    for (provider, fields) in cases {
        let (_, link) = app.create_link(provider).await;
        let html = app
            .browser
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (name, _) in *fields {
            assert!(
                html.contains(&format!("name=\"{name}\"")),
                "{provider} shows {name}"
            );
        }
        let csrf = csrf_from(&html);
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("submitter_name", "Sam"),
            ("submitter_email", "sam@example.org"),
        ];
        form.extend_from_slice(fields);
        let resp = app.submit(&link, &form).await;
        assert_eq!(resp.status(), StatusCode::OK, "{provider}");
        let id = reference_from(&resp.text().await.unwrap());
        let revealed: Value = app.reveal(&id).await.json().await.unwrap();
        for (name, value) in *fields {
            assert_eq!(revealed["fields"][name], *value, "{provider}.{name}");
        }
    }
    let html = app
        .browser
        .get(app.create_link("greenhouse-legacy").await.1)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("2026"),
        "the legacy page warns about the retirement"
    );
}

#[sqlx::test]
async fn a_used_link_answers_410_and_accepts_nothing_more(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("greenhouse").await;
    let csrf = app.open_form(&link).await;
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("submitter_name", "Jane"),
        ("submitter_email", "jane@example.com"),
        ("client_id", "id"),
        ("client_secret", "secret1"),
    ];
    assert_eq!(app.submit(&link, &fields).await.status(), StatusCode::OK);
    // Anyone else opening the link: 410 (the submitting browser sees its receipt line).
    let again = reqwest::get(&link).await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already been used"));
    // Re-posting the same form (a browser refresh) stores nothing.
    assert_eq!(app.submit(&link, &fields).await.status(), StatusCode::GONE);
    assert_eq!(app.count("secrets").await, 1);
}

#[sqlx::test]
async fn a_link_with_several_uses_takes_that_many_submissions(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app
        .create_link_with(json!({"organization": "Multi", "provider": "greenhouse", "max_uses": 2}))
        .await;
    assert_eq!(
        app.submit_greenhouse(&link, "first-secret").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.submit_greenhouse(&link, "second-secret").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(&link).await.unwrap().status(),
        StatusCode::GONE
    );
    assert_eq!(app.count("secrets").await, 2);
}

#[sqlx::test]
async fn expired_revoked_and_unknown_links_are_refused_with_a_helpful_page(db: PgPool) {
    let app = spawn_app(db).await;
    let (id, link) = app.create_link("lever").await;
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap();
    let resp = app.browser.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.text().await.unwrap().contains("expired"));

    let (id, link) = app.create_link("lever").await;
    let csrf = app.open_form(&link).await;
    assert_eq!(
        app.delete(&format!("/api/v1/requests/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::OK
    );
    let resp = app.browser.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(resp.text().await.unwrap().contains("withdrawn"));
    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "k"),
            ],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::GONE,
        "a form opened before revocation cannot submit"
    );

    let unknown = format!("{}/d/kdl_{}", app.public, "A".repeat(43));
    assert_eq!(
        app.browser.get(&unknown).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let junk = format!("{}/d/{}", app.public, "x".repeat(5000));
    assert_eq!(
        app.browser.get(&junk).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("secrets").await, 0);
}

#[sqlx::test]
async fn a_bad_email_re_renders_the_form_keeping_typed_values_but_never_secrets(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("greenhouse").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane <script>alert(1)</script>"),
                ("submitter_email", "not-an-email"),
                ("client_id", "visible-client-id"),
                ("client_secret", "hidden-secret-value"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Enter an email address like name@example.com."));
    assert!(html.contains("value=\"not-an-email\""));
    assert!(html.contains("value=\"visible-client-id\""));
    assert!(!html.contains("hidden-secret-value"));
    assert!(!html.contains("<script>alert(1)"), "user input is escaped");
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    assert_eq!(app.count("secrets").await, 0);

    // The re-rendered form works, and the link was not used up.
    let csrf = csrf_from(&html);
    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", "Jane"),
                ("submitter_email", "jane@example.com"),
                ("client_id", "visible-client-id"),
                ("client_secret", "hidden-secret-value"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[sqlx::test]
async fn missing_required_fields_are_each_named(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("bamboohr").await;
    let resp = app
        .open_and_submit(&link, &[("company_domain", "acme.bamboohr.com")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    for msg in [
        "Enter the API key.",
        "Enter your name.",
        "Enter your email address.",
        "only the part before .bamboohr.com",
    ] {
        assert!(html.contains(msg), "{msg}");
    }
    assert_eq!(app.count("secrets").await, 0);
}

#[sqlx::test]
async fn csrf_missing_forged_or_cross_site_is_rejected_and_nothing_is_stored(db: PgPool) {
    let app = spawn_app(db).await;
    let (link_id, link) = app.create_link("lever").await;
    let csrf = app.open_form(&link).await;
    let fields = |token: &str| {
        vec![
            ("csrf_token".to_owned(), token.to_owned()),
            ("submitter_name".into(), "Eve".into()),
            ("submitter_email".into(), "eve@example.com".into()),
            ("api_key".into(), "lever-key-123".into()),
        ]
    };
    // No token at all.
    let mut f = fields("");
    f.remove(0);
    assert_eq!(
        app.browser
            .post(&link)
            .form(&f)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    // A forged token.
    let resp = app
        .browser
        .post(&link)
        .form(&fields("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The right token without the cookie (a different browser).
    let stranger = reqwest::Client::new();
    assert_eq!(
        stranger
            .post(&link)
            .form(&fields(&csrf))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    // The right token and cookie, sent from another site.
    let resp = app
        .browser
        .post(&link)
        .header("origin", "https://evil.example")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .browser
        .post(&link)
        .header("sec-fetch-site", "cross-site")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("secrets").await, 0);

    let rejected: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'secret.rejected' AND request_id = $1::uuid")
        .bind(&link_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rejected, 5);
    // The genuine form, with `Origin: null` as browsers send under no-referrer, still works.
    let resp = app
        .browser
        .post(&link)
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "stored: on to the receipt"
    );
}

#[sqlx::test]
async fn malformed_duplicate_and_oversized_forms_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let csrf = app.open_form(&link).await;
    let post = |body: Vec<u8>| {
        app.browser
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let dup = format!(
        "csrf_token={csrf}&submitter_name=A&submitter_email=a%40b.co&api_key=one&api_key=two"
    );
    assert_eq!(
        post(dup.into_bytes()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let bad_utf8 =
        format!("csrf_token={csrf}&submitter_name=%FF&submitter_email=a%40b.co&api_key=k");
    assert_eq!(
        post(bad_utf8.into_bytes()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let huge = format!("csrf_token={csrf}&api_key={}", "a".repeat(200_000));
    assert_eq!(
        post(huge.into_bytes()).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let json = app
        .browser
        .post(&link)
        .json(&json!({"api_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("secrets").await, 0);
}

#[sqlx::test]
async fn every_response_carries_the_security_headers(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    for url in [
        link.clone(),
        format!("{}/nowhere", app.public),
        format!("{}/healthz", app.public),
        app.url("/api/v1/secrets"),
    ] {
        let resp = app.browser.get(&url).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{url}"
        );
        assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["cache-control"], "no-store", "{url}");
        assert!(h.get("x-request-id").is_some(), "{url}");
    }
    let page = reqwest::Client::new().get(&link).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"));
    // One optional same-origin script (issue 17), no inline script; every API
    // test drives the pages without JavaScript, so none needs it.
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"/static/keydrop.js\" defer></script>"));
    let css = app
        .browser
        .get(format!("{}/static/keydrop.css", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    for bad in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/nope.css",
    ] {
        let resp = app
            .browser
            .get(format!("{}{bad}", app.public))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[sqlx::test]
async fn drop_pages_are_rate_limited_per_client_with_retry_after(db: PgPool) {
    let app = TestApp::builder(db)
        .with_env([("KEYDROP_RATE_LIMIT", "3/min")])
        .spawn()
        .await;
    let (_, link) = app.create_link("lever").await;
    for _ in 0..3 {
        assert_eq!(
            app.browser.get(&link).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let limited = app.browser.get(&link).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        app.browser.get(&link).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'rate_limited' AND detail->>'limit' = 'drop_pages'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        audited, 1,
        "audited once per client and window, not per request"
    );
    // Health checks are not limited.
    assert_eq!(
        app.browser
            .get(format!("{}/healthz", app.public))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
