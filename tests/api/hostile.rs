//! A hostile internet: slow clients, oversized and malformed requests,
//! injection payloads, token guessing, spoofed client addresses.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

#[sqlx::test]
async fn slow_clients_are_cut_off_and_cannot_starve_others(db: PgPool) {
    let app = spawn_app(db).await;
    // Fifty clients that send half a request head and then stall.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(host(&app.public)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    // Everyone else is still served at once.
    let resp = app
        .api
        .get(format!("{}/healthz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // And the stalled connections are closed by the server after the header deadline.
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(20), slow[0].read(&mut buf)).await;
    assert!(closed.is_ok(), "the server closes a stalled connection");
    assert!(started.elapsed() <= Duration::from_secs(15));
}

#[sqlx::test]
async fn oversized_headers_and_unexpected_methods_get_clear_errors(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let big = "a".repeat(40 * 1024);
    let resp = app.api.get(&link).header("x-big", &big).send().await;
    // hyper answers 431, or closes the connection on a head this large.
    if let Ok(r) = resp {
        assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    assert_eq!(
        app.api.put(&link).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        app.api.delete(&link).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let resp = app
        .api
        .put(app.url("/api/v1/secrets"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let long_token = format!("kds_{}", "x".repeat(8000));
    assert_eq!(
        app.get("/api/v1/secrets", &long_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let long_id = "9".repeat(5000);
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{long_id}"), &app.admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn injection_payloads_are_stored_verbatim_and_rendered_escaped(db: PgPool) {
    let app = spawn_app(db).await;
    let org = r#"<img src=x onerror=alert(1)> "Acme" & Co'; DROP TABLE secrets; --"#;
    let (_, link) = app.create_link_with(json!({"organization": org, "provider": "generic", "note": "</script><script>alert(2)</script>"})).await;
    let page = app
        .browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<img src=x"), "organization is escaped");
    let csrf = csrf_from(&page);
    let name = "Robert'); DROP TABLE secrets;-- <b>bold</b>";
    let label = "label with \"quotes\" and <tags> and \\backslashes\\ and 'single'";
    let secret = "s3cr3t' OR '1'='1 <script>";
    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", name),
                ("submitter_email", "x@example.com"),
                ("label", label),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let receipt = resp.text().await.unwrap();
    assert!(!receipt.contains("<img src=x") && !receipt.contains("<b>bold</b>"));
    let id = reference_from(&receipt);
    let meta: Value = app
        .get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["organization"], org);
    assert_eq!(meta["submitter_name"], name);
    let revealed: Value = app.reveal(&id).await.json().await.unwrap();
    assert_eq!(revealed["fields"]["label"], label);
    assert_eq!(revealed["fields"]["secret"], secret);
    assert_eq!(app.count("secrets").await, 1, "the table is still there");
}

#[sqlx::test]
async fn look_alike_characters_in_an_email_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    // "аdmin@exаmple.com" with Cyrillic а.
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "\u{430}dmin@ex\u{430}mple.com"),
                ("label", "l"),
                ("secret", "s"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("look-alike"));
    assert_eq!(app.count("secrets").await, 0);
}

fn behind_proxy(db: PgPool, failure_limit: &str) -> TestAppBuilder {
    TestApp::builder(db).with_env([
        ("KEYDROP_TRUSTED_PROXIES", "127.0.0.1"),
        ("KEYDROP_AUTH_FAILURE_LIMIT", failure_limit),
    ])
}

#[sqlx::test]
async fn guessing_drop_link_tokens_is_throttled_per_client_and_audited(db: PgPool) {
    let app = behind_proxy(db, "3/min").spawn().await;
    let (_, link) = app.create_link("lever").await;
    let guess = |n: usize, ip: &'static str| {
        let url = format!("{}/d/kdl_{n:0>43}", app.public);
        app.api.get(url).header("x-forwarded-for", ip).send()
    };
    for n in 0..3 {
        assert_eq!(
            guess(n, "198.51.100.7").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    let blocked = guess(3, "198.51.100.7").await.unwrap();
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Blocked before any lookup: even a real link answers 429 for this client for now…
    let real = app
        .api
        .get(&link)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(real.status(), StatusCode::TOO_MANY_REQUESTS);
    // …while another client is unaffected.
    let other = app
        .api
        .get(&link)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let (ip, detail): (Option<String>, String) = sqlx::query_as(
        "SELECT client_ip, detail::text FROM audit_events WHERE action = 'rate_limited'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(ip.as_deref(), Some("198.51.100.7"));
    assert!(detail.contains("drop_token_failures"));
}

#[sqlx::test]
async fn guessing_staff_tokens_is_throttled_with_retry_after(db: PgPool) {
    let app = behind_proxy(db, "2/min").spawn().await;
    let wrong = format!("kds_{}", "Q".repeat(43));
    let get = |token: String, ip: &'static str| {
        app.api
            .get(app.url("/api/v1/secrets"))
            .bearer_auth(token)
            .header("x-forwarded-for", ip)
            .send()
    };
    assert_eq!(
        get(wrong.clone(), "192.0.2.50").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(wrong.clone(), "192.0.2.50").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let limited = get(wrong.clone(), "192.0.2.50").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        get(app.admin.clone(), "192.0.2.51").await.unwrap().status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(db: PgPool) {
    // No trusted proxies: the header is the client's own claim and is ignored.
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("lever").await;
    let csrf = app.open_form(&link).await;
    app.browser
        .post(&link)
        .header("x-forwarded-for", "6.6.6.6")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("submitter_name", "A"),
            ("submitter_email", "a@b.co"),
            ("api_key", "k1"),
        ])
        .send()
        .await
        .unwrap();
    let ip: Option<String> =
        sqlx::query_scalar("SELECT client_ip FROM audit_events WHERE action = 'secret.submitted'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    let kek = app.kek.clone();
    drop(app);

    // Behind a trusted proxy, the right-most untrusted hop is the client.
    let app = behind_proxy(db, "20/min").with_kek(&kek).spawn().await;
    let (_, link) = app.create_link("lever").await;
    let csrf = app.open_form(&link).await;
    app.browser
        .post(&link)
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.23")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("submitter_name", "A"),
            ("submitter_email", "a@b.co"),
            ("api_key", "k2"),
        ])
        .send()
        .await
        .unwrap();
    let ips: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT client_ip FROM audit_events WHERE action = 'secret.submitted' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(ips[1].as_deref(), Some("198.51.100.23"));
}

#[sqlx::test]
async fn with_the_failure_limit_off_wrong_tokens_are_only_ever_401(db: PgPool) {
    let app = TestApp::builder(db)
        .with_env([("KEYDROP_AUTH_FAILURE_LIMIT", "off")])
        .spawn()
        .await;
    let wrong = format!("kds_{}", "W".repeat(43));
    for _ in 0..30 {
        assert_eq!(
            app.get("/api/v1/secrets", &wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
