//! The customer admin never loses a credential to the form (issue 17):
//! repeats of one form store it once and answer the same receipt, and the
//! receipt is reached by Post/Redirect/Get.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

/// The value of hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("page has the field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Opens the drop page and returns the generic form a browser would send.
async fn generic_form(app: &TestApp, link: &str, secret: &str) -> Vec<(&'static str, String)> {
    let html = app
        .browser
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    vec![
        ("csrf_token", hidden(&html, "csrf_token")),
        ("submission_id", hidden(&html, "submission_id")),
        ("submitter_name", "Jane Admin".into()),
        ("submitter_email", "jane@acme.example.com".into()),
        ("label", "Payroll export".into()),
        ("secret", secret.into()),
    ]
}

fn borrowed<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[sqlx::test]
async fn two_simultaneous_posts_of_one_form_store_one_secret_and_answer_one_receipt(db: PgPool) {
    let app = spawn_app(db).await;
    for max_uses in [1, 3] {
        let (link_id, link) = app
            .create_link_with(
                json!({"organization": "Acme", "provider": "generic", "max_uses": max_uses}),
            )
            .await;
        let form = generic_form(&app, &link, "double-click-secret-value").await;
        let fields = borrowed(&form);
        let (a, b) = tokio::join!(app.post_form(&link, &fields), app.post_form(&link, &fields));
        assert_eq!(a.status(), StatusCode::SEE_OTHER, "max_uses {max_uses}");
        assert_eq!(b.status(), StatusCode::SEE_OTHER, "max_uses {max_uses}");
        let (la, lb) = (
            a.headers()["location"].clone(),
            b.headers()["location"].clone(),
        );
        assert_eq!(la, lb, "one receipt for both");
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM secrets WHERE request_id = $1::uuid")
                .bind(&link_id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(stored, 1, "one secret stored (max_uses {max_uses})");
        let uses: i32 =
            sqlx::query_scalar("SELECT use_count FROM drop_requests WHERE id = $1::uuid")
                .bind(&link_id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(uses, 1, "one use counted");
        let receipt = app.follow(&link, a).await;
        assert_eq!(receipt.status(), StatusCode::OK);
        let html = receipt.text().await.unwrap();
        assert!(la.to_str().unwrap().ends_with(&reference_from(&html)));
    }
}

#[sqlx::test]
async fn a_repeat_after_success_answers_the_same_receipt_and_the_receipt_reloads(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    let form = generic_form(&app, &link, "Zq9!-short").await;
    let first = app.submit(&link, &borrowed(&form)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let receipt_url = first.url().clone();
    let first = first.text().await.unwrap();
    assert!(receipt_url.path().starts_with("/r/"));
    // The link is used up; the same form again (refresh, retry) is the same receipt, not 410.
    let again = app.submit(&link, &borrowed(&form)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.url(), &receipt_url);
    let again = again.text().await.unwrap();
    assert_eq!(reference_from(&again), reference_from(&first));
    let fp = |h: &str| h[h.find("<dt>Fingerprint</dt>").unwrap()..][..80].to_owned();
    assert_eq!(fp(&again), fp(&first));
    assert_eq!(app.count("secrets").await, 1);
    // Reloading the receipt is a GET: it shows the receipt again.
    let reload = app.browser.get(receipt_url.clone()).send().await.unwrap();
    assert_eq!(reload.status(), StatusCode::OK);
    let reload = reload.text().await.unwrap();
    assert_eq!(reference_from(&reload), reference_from(&first));
    // The receipt page never carries the link's token.
    let token = &link[link.find("/d/").unwrap() + 3..];
    assert!(!first.contains(token) && !reload.contains(token));
    // Another browser cannot open it, and learns nothing of it.
    let stranger = reqwest::get(receipt_url.clone()).await.unwrap();
    assert_eq!(stranger.status(), StatusCode::NOT_FOUND);
    let stranger = stranger.text().await.unwrap();
    assert!(!stranger.contains(&reference_from(&first)) && !stranger.contains("Payroll"));
    // The same browser opening the used link reads when it arrived and its reference.
    let reopened = app.browser.get(&link).send().await.unwrap();
    assert_eq!(reopened.status(), StatusCode::OK);
    let reopened = reopened.text().await.unwrap();
    assert!(reopened.contains("We received this on"), "{reopened}");
    assert!(reopened.contains(&reference_from(&first)));
    assert_eq!(
        reqwest::get(&link).await.unwrap().status(),
        StatusCode::GONE
    );
}

#[sqlx::test]
async fn a_forged_or_foreign_submission_id_gets_no_receipt(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, a) = app.create_link("generic").await;
    let (_, b) = app.create_link("generic").await;
    let form_a = generic_form(&app, &a, "secret-sent-through-link-a").await;
    assert_eq!(
        app.submit(&a, &borrowed(&form_a)).await.status(),
        StatusCode::OK
    );
    // Link A's submission id on link B's form is not a repeat: B stores its own.
    let mut form_b = generic_form(&app, &b, "secret-sent-through-link-b").await;
    form_b[1].1 = form_a[1].1.clone();
    let resp = app.submit(&b, &borrowed(&form_b)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.count("secrets").await,
        2,
        "B's secret was stored, not answered with A's receipt"
    );
    let html = resp.text().await.unwrap();
    let a_ref: String = sqlx::query_scalar(
        "SELECT id::text FROM secrets WHERE submission_id IS NOT NULL ORDER BY created_at LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_ne!(reference_from(&html), a_ref);
}

#[sqlx::test]
async fn a_post_without_the_cookie_gets_the_form_back_with_values_kept_and_then_goes_through(
    db: PgPool,
) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    // The form was served to a browser that then lost its cookie (page open too long, cookie cleared).
    let form = generic_form(&app, &link, "pasted-before-the-cookie-was-gone").await;
    let cookieless = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = cookieless
        .post(&link)
        .form(&borrowed(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("allow cookies") && html.contains("paste the secret again"),
        "{html}"
    );
    assert!(
        html.contains("value=\"Jane Admin\"") && html.contains("value=\"jane@acme.example.com\"")
    );
    assert!(
        html.contains("value=\"Payroll export\""),
        "the label is kept"
    );
    assert!(
        !html.contains("pasted-before-the-cookie-was-gone"),
        "the secret is never echoed"
    );
    assert_eq!(app.count("secrets").await, 0);
    // Sending from that page (it set the cookie) goes through.
    let again = vec![
        ("csrf_token", hidden(&html, "csrf_token")),
        ("submission_id", hidden(&html, "submission_id")),
        ("submitter_name", "Jane Admin".to_owned()),
        ("submitter_email", "jane@acme.example.com".to_owned()),
        ("label", "Payroll export".to_owned()),
        ("secret", "pasted-before-the-cookie-was-gone".to_owned()),
    ];
    let resp = cookieless
        .post(&link)
        .form(&borrowed(&again))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("secrets").await, 1);
    // A forged token (another page's) also gets the form back, not a dead end.
    let (_, other) = app.create_link("generic").await;
    let mut forged = generic_form(&app, &other, "another-secret-value").await;
    let (_, third) = app.create_link("generic").await;
    forged[0].1 = generic_form(&app, &third, "x").await[0].1.clone();
    let resp = app.post_form(&other, &borrowed(&forged)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let html = resp.text().await.unwrap();
    assert!(html.contains("open for a long time") && html.contains("value=\"Jane Admin\""));
    assert!(!html.contains("another-secret-value"));
}

/// Polls the database clock until `link` is at least `past` beyond its expiry.
async fn wait_until_expired(db: &PgPool, link_id: &str, past: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let done: bool = sqlx::query_scalar(&format!(
            "SELECT now() > expires_at + interval '{past}' FROM drop_requests WHERE id = $1::uuid"
        ))
        .bind(link_id)
        .fetch_one(db)
        .await
        .unwrap();
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the link never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn a_form_loaded_before_expiry_is_accepted_within_the_grace_period_and_after_it_gets_a_clear_page(
    db: PgPool,
) {
    // A grace of 2 seconds, so the test can outlast it.
    let app = TestApp::builder(db)
        .with_env([("KEYDROP_LINK_GRACE", "2s")])
        .spawn()
        .await;
    let short = json!({"organization": "Acme", "provider": "generic", "expires_in": "1s"});
    let (link_id, link) = app.create_link_with(short.clone()).await;
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
        page.contains("This link expires in"),
        "less than an hour left is announced"
    );
    let form = generic_form(&app, &link, "sent-just-after-expiry").await;
    wait_until_expired(&app.db, &link_id, "0 seconds").await;
    assert_eq!(
        reqwest::get(&link).await.unwrap().status(),
        StatusCode::GONE,
        "new visitors: expired"
    );
    let resp = app.post_form(&link, &borrowed(&form)).await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "within the grace period"
    );
    assert_eq!(app.count("secrets").await, 1);

    // Another form, posted after the grace period: a clear page, typed values kept.
    let (other_id, other) = app.create_link_with(short).await;
    let form = generic_form(&app, &other, "sent-after-the-grace-period").await;
    wait_until_expired(&app.db, &other_id, "3 seconds").await;
    let resp = app.post_form(&other, &borrowed(&form)).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Ask the person who sent you the link for a new one"),
        "{html}"
    );
    assert!(html.contains("value=\"Jane Admin\"") && html.contains("value=\"Payroll export\""));
    assert!(!html.contains("sent-after-the-grace-period"));
    assert_eq!(app.count("secrets").await, 1);
}
