//! Email through a real SMTP server (aiosmtpd, STARTTLS): drop links sent to
//! the customer, reminders, staff notes, retries and refusals.

use crate::helpers::TestApp;
use crate::smtp::{env_for, free_port, SmtpServer};
use keydrop::config::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// An app sending through `smtp` with `extra` set, polling and retrying quickly.
pub async fn mail_app(
    db: PgPool,
    smtp: Vec<(&'static str, String)>,
    extra: &[(&str, &str)],
) -> TestApp {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TestApp::builder(db)
        .with_env(smtp)
        .with_env(extra)
        .with_config(|c: &mut Config| {
            c.mail.poll = Duration::from_millis(100);
            c.mail.reminder_scan = Duration::from_millis(100);
            c.mail.backoff_base = Duration::from_millis(300);
            c.mail.backoff_cap = Duration::from_secs(1);
        })
        .spawn()
        .await
}

/// The link's `email` and `email_error` as the API lists them.
pub async fn email_state(app: &TestApp, id: &str) -> (Value, Value) {
    let list: Value = app
        .get("/api/v1/requests", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .expect("the link is listed")
        .clone();
    (item["email"].clone(), item["email_error"].clone())
}

/// Polls the link until its email state is `want` (30 s deadline).
pub async fn wait_email(app: &TestApp, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (state, error) = email_state(app, id).await;
        if state == want {
            return error;
        }
        assert!(Instant::now() < deadline, "email stayed {state} ({error})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn send_link(app: &TestApp, body: Value) -> Value {
    let resp = app.post("/api/v1/requests", &app.admin, Some(body)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

#[sqlx::test]
async fn a_link_sent_by_email_arrives_over_starttls_and_opens_the_drop_page(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(
        db,
        smtp.env(),
        &[
            ("KEYDROP_BRAND_NAME", "Acme Data"),
            ("KEYDROP_SUPPORT_EMAIL", "help@acme.example"),
        ],
    )
    .await;
    let created = send_link(
        &app,
        json!({"organization": "Globex", "provider": "greenhouse", "note": "For the Q3 ingest.", "send_to": "admin@globex.example"}),
    )
    .await;
    // The answer says only that it was queued: the token is in the email alone.
    assert_eq!(created["email"], "queued");
    assert!(created.get("url").is_none(), "{created}");
    assert_eq!(created["contact_email"], "admin@globex.example");
    let id = created["id"].as_str().unwrap();

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.rcpt_to, ["admin@globex.example"]);
    assert!(
        mail.subject.contains("Acme Data") && mail.subject.contains("Globex"),
        "{}",
        mail.subject
    );
    for part in [&mail.text, &mail.html] {
        assert!(
            part.contains("For the Q3 ingest."),
            "the note is in the email"
        );
        assert!(
            part.contains("help@acme.example"),
            "the support address is in the email"
        );
    }
    assert!(mail.raw.contains("Reply-To:"), "replies go to support");
    let link = mail.link().expect("the email holds the drop link");
    assert!(
        mail.html.contains(&link),
        "the HTML part holds the same link"
    );
    let page = app.browser.get(app.local(&link)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Globex"));
    wait_email(&app, id, "sent").await;

    // The token is nowhere in the database in clear.
    let token = &link[link.find("/d/").unwrap() + 3..];
    let dump: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT row_to_json(m)::text AS t FROM mail_messages m UNION ALL SELECT encode(sealed_token, 'escape') FROM mail_link_tokens UNION ALL SELECT row_to_json(d)::text FROM drop_requests d UNION ALL SELECT row_to_json(a)::text FROM audit_events a) x",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!dump.contains(token));
}

#[sqlx::test]
async fn with_smtp_down_the_email_stays_queued_and_is_delivered_when_it_returns(db: PgPool) {
    let dir = SmtpServer::new_dir();
    let port = free_port();
    let app = mail_app(db, env_for(&dir, port), &[]).await;
    let created = send_link(
        &app,
        json!({"organization": "Initech", "provider": "generic", "send_to": "it@initech.example"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    // A failed attempt is recorded and the email stays queued for a retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (state, error) = email_state(&app, id).await;
        assert_eq!(state, "queued");
        if error.is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let smtp = SmtpServer::start_in(dir, port, &[]);
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.rcpt_to, ["it@initech.example"]);
    assert_eq!(wait_email(&app, id, "sent").await, Value::Null);
}

#[sqlx::test]
async fn a_refused_recipient_fails_with_the_reason_visible_on_the_link(db: PgPool) {
    let smtp = SmtpServer::start(&["nobody@globex.example"]);
    let app = mail_app(db, smtp.env(), &[]).await;
    let created = send_link(
        &app,
        json!({"organization": "Globex", "provider": "lever", "send_to": "nobody@globex.example"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let error = wait_email(&app, id, "failed").await;
    let error = error.as_str().expect("the reason is shown");
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{error}"
    );
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM mail_messages WHERE kind = 'link'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "a permanent refusal is not retried");
}

#[sqlx::test]
async fn addresses_with_line_breaks_or_that_are_not_emails_are_refused_naming_send_to(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(db, smtp.env(), &[]).await;
    for bad in [
        "admin@globex.example\r\nBcc: thief@evil.example",
        "admin@globex.example\nSubject: hi",
        "not an email",
        "",
    ] {
        let resp = app
            .post(
                "/api/v1/requests",
                &app.admin,
                Some(json!({"organization": "Globex", "provider": "generic", "send_to": bad})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("send_to"),
            "{body}"
        );
    }
    let resp = app
        .post(
            "/api/v1/requests",
            &app.admin,
            Some(json!({"organization": "Globex", "provider": "generic", "send_to": "a@globex.example", "note": "x".repeat(2001)})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("drop_requests").await, 0);
    assert_eq!(app.count("mail_messages").await, 0);
}

#[sqlx::test]
async fn without_smtp_send_to_is_refused_and_says_email_is_off(db: PgPool) {
    let app = TestApp::builder(db).spawn().await;
    let resp = app
        .post(
            "/api/v1/requests",
            &app.admin,
            Some(json!({"organization": "Globex", "provider": "generic", "send_to": "a@globex.example"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("send_to") && msg.contains("KEYDROP_SMTP_URL"),
        "{msg}"
    );
    assert_eq!(app.count("drop_requests").await, 0);
}

#[sqlx::test]
async fn the_reminder_arrives_once_and_never_after_the_link_is_used(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    // Links live an hour; the reminder is due 10 seconds after they are made.
    let app = mail_app(db, smtp.env(), &[("KEYDROP_REMINDER_BEFORE", "3590s")]).await;
    // First a link that is used before its reminder is due...
    let used = send_link(
        &app,
        json!({"organization": "Used Co", "provider": "generic", "expires_in": "1h", "send_to": "used@used.example"}),
    )
    .await;
    let mail = smtp.wait_for(1).await.remove(0);
    let link = app.local(&mail.link().unwrap());
    let receipt = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Una"),
                ("submitter_email", "una@used.example"),
                ("label", "db"),
                ("secret", "s3cret-value-for-the-reminder-test"),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    // ...then one that stays unused. Its reminder is due after the first one's.
    let unused = send_link(
        &app,
        json!({"organization": "Waiting Co", "provider": "generic", "expires_in": "1h", "send_to": "wait@waiting.example"}),
    )
    .await;
    let all = smtp.wait_for(3).await;
    let reminders: Vec<_> = all
        .iter()
        .filter(|m| m.subject.starts_with("Reminder"))
        .collect();
    assert_eq!(
        reminders.len(),
        1,
        "{:?}",
        all.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_eq!(reminders[0].rcpt_to, ["wait@waiting.example"]);
    assert!(
        reminders[0].link().is_some(),
        "the reminder carries the link"
    );
    // Several more scans later there is still one reminder per link, and none for the used one.
    let scans = Instant::now();
    while scans.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reminded: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT request_id FROM mail_messages WHERE kind = 'reminder'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(reminded.len(), 1);
    assert_eq!(reminded[0].0.to_string(), unused["id"].as_str().unwrap());
    assert_ne!(reminded[0].0.to_string(), used["id"].as_str().unwrap());
    assert_eq!(smtp.messages().len(), 3, "nothing else was sent");
}

#[sqlx::test]
async fn staff_are_told_of_a_submission_without_any_secret_token_or_link(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(
        db,
        smtp.env(),
        &[
            (
                "KEYDROP_NOTIFY_EMAIL",
                "ops@acme.example, lead@acme.example",
            ),
            ("KEYDROP_INTERNAL_URL", "http://127.0.0.1:9"),
        ],
    )
    .await;
    let created = send_link(
        &app,
        json!({"organization": "Hooli", "provider": "generic", "send_to": "admin@hooli.example"}),
    )
    .await;
    let link = smtp.wait_for(1).await.remove(0).link().unwrap();
    let token = link[link.find("/d/").unwrap() + 3..].to_owned();
    let secret = "hooli-SUPER-secret-value-42";
    let receipt = app
        .open_and_submit(
            &app.local(&link),
            &[
                ("submitter_name", "Gavin"),
                ("submitter_email", "gavin@hooli.example"),
                ("label", "warehouse"),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let reference = crate::helpers::reference_from(&receipt.text().await.unwrap());
    let all = smtp.wait_for(2).await;
    let staff = &all[1];
    let mut rcpt = staff.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(rcpt, ["lead@acme.example", "ops@acme.example"]);
    assert!(staff.text.contains("Hooli") && staff.text.contains("generic"));
    assert_eq!(
        staff.subject, "Keydrop: A credential for Hooli received (not verified yet)",
        "the brand, what arrived and the check in words"
    );
    assert!(
        staff.text.contains(&reference),
        "the reference names the secret"
    );
    assert!(staff
        .text
        .contains(&format!("http://127.0.0.1:9/secrets/{reference}")));
    for bad in [secret, token.as_str(), "/d/", "warehouse"] {
        assert!(!staff.raw.contains(bad), "the staff email holds {bad:?}");
    }
    let _ = created;
}

#[sqlx::test]
async fn every_public_page_carries_the_brand_and_the_svg_logo_has_its_own_policy(db: PgPool) {
    let dir = std::env::temp_dir().join(format!("keydrop-brand-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let logo = dir.join("logo.svg");
    std::fs::write(
        &logo,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#0b5394"/></svg>"##,
    )
    .unwrap();
    let app = TestApp::builder(db)
        .with_env([
            ("KEYDROP_BRAND_NAME", "Acme Data".to_owned()),
            ("KEYDROP_BRAND_LOGO_FILE", logo.display().to_string()),
            ("KEYDROP_BRAND_COLOR", "#0b5394".to_owned()),
            ("KEYDROP_SUPPORT_EMAIL", "help@acme.example".to_owned()),
            (
                "KEYDROP_PRIVACY_URL",
                "http://127.0.0.1:9/privacy".to_owned(),
            ),
        ])
        .spawn()
        .await;
    let (_, link) = app.create_link("generic").await;
    let drop = app
        .browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let missing = app
        .browser
        .get(format!("{}/nowhere", app.public))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for page in [&drop, &missing] {
        assert!(page.contains("· Acme Data</title>"), "{page}");
        assert!(page.contains("help@acme.example") && page.contains("http://127.0.0.1:9/privacy"));
        assert!(page.contains("Secure key drop by Keydrop"));
    }
    let src = &drop[drop.find("/brand/logo-").unwrap()..];
    let src = &src[..src.find('"').unwrap()];
    let resp = app
        .browser
        .get(format!("{}{src}", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        resp.headers()["content-security-policy"],
        "default-src 'none'"
    );
    let css = &drop[drop.find("/brand/theme-").unwrap()..];
    let css = &css[..css.find('"').unwrap()];
    let body = app
        .browser
        .get(format!("{}{css}", app.public))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("#0b5394"));
}

#[test]
fn a_pale_colour_or_a_logo_that_is_no_image_stops_start_up_naming_the_variable() {
    let pale = keydrop::config::Config::from_lookup(&|k| match k {
        "DATABASE_URL" => Some("postgres://127.0.0.1:1/x".into()),
        "KEYDROP_BRAND_COLOR" => Some("#ffdd00".into()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        pale.contains("KEYDROP_BRAND_COLOR") && pale.contains("4.5"),
        "{pale}"
    );
    let path = std::env::temp_dir().join(format!("keydrop-notalogo-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, b"GIF89a not an svg or png").unwrap();
    let bad = keydrop::config::Config::from_lookup(&|k| match k {
        "DATABASE_URL" => Some("postgres://127.0.0.1:1/x".into()),
        "KEYDROP_BRAND_LOGO_FILE" => Some(path.display().to_string()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    assert!(bad.contains("KEYDROP_BRAND_LOGO_FILE"), "{bad}");
}
