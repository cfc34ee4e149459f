//! Live credential checks against local fake provider APIs.

use crate::fakes::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn app_with(db: PgPool, fake: &Fake, extra: &[(&'static str, &str)]) -> TestApp {
    let mut env = fake.env();
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    TestApp::builder(db).with_env(env).spawn().await
}

/// Opens a fresh Greenhouse link and submits the given client id and secret.
async fn submit_gh(app: &TestApp, id: &str, secret: &str) -> (StatusCode, String) {
    let (_, link) = app.create_link("greenhouse").await;
    submit_gh_to(app, &link, id, secret).await
}

async fn submit_gh_to(app: &TestApp, link: &str, id: &str, secret: &str) -> (StatusCode, String) {
    let resp = app
        .open_and_submit(
            link,
            &[
                ("submitter_name", "Jane"),
                ("submitter_email", "jane@acme.com"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
    (resp.status(), resp.text().await.unwrap())
}

async fn stored_check(app: &TestApp, id: &str) -> Value {
    let v: Value = app
        .get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    v["check"].clone()
}

#[sqlx::test]
async fn a_greenhouse_credential_with_every_permission_is_verified(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = app_with(db, &fake, &[]).await;
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Verified"), "{html}");
    assert!(!html.contains("check again"));
    let id = reference_from(&html);
    let check = stored_check(&app, &id).await;
    assert_eq!(check["status"], "verified");
    assert_eq!(check["missing"], serde_json::json!([]));
    assert!(check["checked_at"].is_string());

    let requests = fake.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("POST /token"))
            .count(),
        1
    );
    let probes: Vec<_> = requests
        .iter()
        .filter(|r| r.starts_with("GET /v3/"))
        .collect();
    assert_eq!(probes.len(), 16, "one probe per needed resource");
    assert!(probes.iter().all(|r| r.ends_with("?per_page=1")));
    for p in keydrop::providers::find("greenhouse").unwrap().permissions {
        let path = p.api.trim_start_matches("GET ");
        assert!(
            probes.iter().any(|r| r.contains(&format!("{path}?"))),
            "{path}"
        );
    }
    assert!(fake
        .seen
        .bodies
        .lock()
        .unwrap()
        .iter()
        .any(|b| b == "grant_type=client_credentials"));
}

#[sqlx::test]
async fn a_user_id_is_sent_as_the_token_subject(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = app_with(db, &fake, &[]).await;
    let (_, link) = app.create_link("greenhouse").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane"),
                ("submitter_email", "jane@acme.com"),
                ("client_id", GH_CLIENT_ID),
                ("client_secret", GH_CLIENT_SECRET),
                ("user_id", "12345"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(fake
        .seen
        .bodies
        .lock()
        .unwrap()
        .iter()
        .any(|b| b == "grant_type=client_credentials&sub=12345"));
}

#[sqlx::test]
async fn an_invalid_credential_is_refused_with_a_plain_message_and_nothing_is_stored(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = app_with(db, &fake, &[]).await;
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, "wrong-secret-value").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("Greenhouse did not accept this client ID and secret"),
        "{html}"
    );
    assert!(!html.contains("wrong-secret-value"));
    assert!(
        html.contains(&format!("value=\"{GH_CLIENT_ID}\"")),
        "the client id is kept"
    );
    assert_eq!(app.count("secrets").await, 0);
    let audit: String = sqlx::query_scalar(
        "SELECT detail::text FROM audit_events WHERE action = 'secret.rejected'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        audit.contains("invalid_credential") && !audit.contains("wrong-secret-value"),
        "{audit}"
    );
    assert!(
        !fake.requests().iter().any(|r| r.starts_with("GET /v3/")),
        "no probes with a rejected credential"
    );
}

#[sqlx::test]
async fn missing_permissions_are_named_with_steps_and_check_again_verifies_after_the_fix(
    db: PgPool,
) {
    let fake = Fake::start(Behaviour {
        denied: vec!["offers".into(), "eeoc".into()],
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[]).await;
    let (_, link) = app.create_link("greenhouse").await;
    let (status, html) = submit_gh_to(&app, &link, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "the credential is stored");
    assert!(html.contains("Some permissions are missing"));
    assert!(
        html.contains("<code>Offers → List offers</code>")
            && html.contains("<code>EEOC → List EEOC</code>"),
        "missing scopes by their UI names"
    );
    assert!(
        !html.contains("<code>Jobs → List jobs</code>"),
        "only the missing ones are listed as missing"
    );
    assert!(html.contains("Manage scopes"), "steps to add them");
    assert!(html.contains("check again"));
    let id = reference_from(&html);
    let check = stored_check(&app, &id).await;
    assert_eq!(check["status"], "missing_permissions");
    assert_eq!(
        check["missing"],
        serde_json::json!(["Offers → List offers", "EEOC → List EEOC"])
    );

    // The admin fixes the permissions in Greenhouse and clicks "check again".
    fake.set(|b| b.denied.clear());
    let csrf = csrf_from(&html);
    let resp = app
        .submit(
            &link,
            &[("csrf_token", &csrf), ("reference", &id), ("recheck", "1")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Verified"), "{html}");
    assert_eq!(stored_check(&app, &id).await["status"], "verified");
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'check.run' AND secret_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(runs, 1);
    assert_eq!(app.count("secrets").await, 1, "no re-submission");

    // A forged reference or one from another link does nothing.
    let other = uuid::Uuid::new_v4().to_string();
    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("reference", &other),
                ("recheck", "1"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Once staff have revealed it, the public button no longer re-runs checks.
    app.reveal(&id).await;
    let resp = app
        .submit(
            &link,
            &[("csrf_token", &csrf), ("reference", &id), ("recheck", "1")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::GONE);
}

#[sqlx::test]
async fn staff_can_re_run_a_check_and_it_is_audited(db: PgPool) {
    let fake = Fake::start(Behaviour {
        denied: vec!["users".into()],
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[]).await;
    let id = reference_from(&submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await.1);
    fake.set(|b| b.denied.clear());
    let reader = create_token(&app.db, "reader", "read").await;
    assert_eq!(
        app.post(&format!("/api/v1/secrets/{id}/check"), &reader, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let resp = app
        .post(&format!("/api/v1/secrets/{id}/check"), &app.admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["check"]["status"], "verified");
    let audit: Value = app
        .get(&format!("/api/v1/audit?secret_id={id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    // check.run (written before the decryption) and check.completed (the result).
    let items = audit["items"].as_array().unwrap();
    for action in ["check.run", "check.completed"] {
        let event = items
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} is audited: {audit}"));
        assert_eq!(event["actor_name"], "test-admin");
    }
}

#[sqlx::test]
async fn a_429_with_retry_after_is_honoured_within_the_time_limit(db: PgPool) {
    let fake = Fake::start(Behaviour {
        rate_limit_first: 1,
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[("KEYDROP_CHECK_TIMEOUT", "8s")]).await;
    let started = Instant::now();
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Verified"), "{html}");
    assert!(started.elapsed() < Duration::from_secs(8));
    let tries = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /v3/candidates"))
        .count();
    assert_eq!(tries, 2, "retried once after Retry-After");
}

#[sqlx::test]
async fn an_unreachable_provider_leaves_the_credential_stored_as_unverified(db: PgPool) {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}");
    let env: Vec<(&str, String)> = vec![
        ("KEYDROP_GREENHOUSE_AUTH_URL", url.clone()),
        ("KEYDROP_GREENHOUSE_HARVEST_URL", url),
    ];
    let app = TestApp::builder(db).with_env(env).spawn().await;
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("not yet verified") && html.contains("could not be reached"),
        "{html}"
    );
    let check = stored_check(&app, &reference_from(&html)).await;
    assert_eq!(check["status"], "unverified");
}

#[sqlx::test]
async fn a_slow_provider_is_cut_off_at_the_time_limit_and_reported_unverified(db: PgPool) {
    let fake = Fake::start(Behaviour {
        delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[("KEYDROP_CHECK_TIMEOUT", "1s")]).await;
    let started = Instant::now();
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("did not answer within 1 second"), "{html}");
    assert!(!html.contains("1 seconds"), "{html}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(
        stored_check(&app, &reference_from(&html)).await["status"],
        "unverified"
    );
}

#[sqlx::test]
async fn probes_run_in_parallel(db: PgPool) {
    // The fake holds every probe until all 16 are in flight together; probes
    // sent one by one would each wait out the barrier alone (and the check's
    // time limit would end them).
    let fake = Fake::start(Behaviour {
        hold_until_in_flight: Some(16),
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[("KEYDROP_CHECK_TIMEOUT", "30s")]).await;
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fake.seen.max_in_flight.load(Ordering::SeqCst),
        16,
        "all 16 probes in flight at once"
    );
    assert!(html.contains("Verified"), "{html}");
}

#[sqlx::test]
async fn an_ip_allowlist_refusal_is_reported_as_such_with_our_addresses(db: PgPool) {
    let fake = Fake::start(Behaviour {
        ip_blocked: true,
        ..Default::default()
    })
    .await;
    let app = app_with(
        db,
        &fake,
        &[("KEYDROP_EGRESS_IPS", "203.0.113.10,203.0.113.11")],
    )
    .await;
    let (_, link) = app.create_link("greenhouse").await;
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
        page.contains("203.0.113.10"),
        "the drop page lists our addresses"
    );
    let (status, html) = submit_gh_to(&app, &link, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "not reported as an invalid credential"
    );
    assert!(
        html.contains("restricted to certain IP addresses") && html.contains("203.0.113.11"),
        "{html}"
    );
    assert_eq!(
        stored_check(&app, &reference_from(&html)).await["status"],
        "unverified"
    );
}

#[sqlx::test]
async fn redirects_to_another_host_are_not_followed(db: PgPool) {
    let elsewhere = Fake::start(Behaviour::default()).await;
    let fake = Fake::start(Behaviour {
        redirect_to: Some(format!(
            "{}/token",
            elsewhere.url.replace("127.0.0.1", "localhost")
        )),
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[]).await;
    let (status, html) = submit_gh(&app, GH_CLIENT_ID, GH_CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored_check(&app, &reference_from(&html)).await["status"],
        "unverified"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the credential never reached another host"
    );
}

#[sqlx::test]
async fn the_legacy_key_is_checked_with_basic_auth_and_missing_endpoints_named(db: PgPool) {
    let fake = Fake::start(Behaviour {
        denied: vec!["scorecards".into()],
        ..Default::default()
    })
    .await;
    let app = app_with(db, &fake, &[]).await;
    let submit = |key: &'static str| {
        let app = &app;
        async move {
            let (_, link) = app.create_link("greenhouse-legacy").await;
            let resp = app
                .open_and_submit(
                    &link,
                    &[
                        ("submitter_name", "J"),
                        ("submitter_email", "j@acme.com"),
                        ("api_key", key),
                    ],
                )
                .await;
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (status, html) = submit("not-the-key").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Greenhouse did not accept this API key"));
    let (status, html) = submit(LEGACY_KEY).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<code>Scorecards → GET: List Scorecards</code>"));
    // Item 3: v1 interviews are /v1/scheduled_interviews, and nothing else is missing.
    assert!(!html.contains("Interviews → GET"), "{html}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /v1/scheduled_interviews?")));
    assert!(fake
        .requests()
        .iter()
        .any(|r| r == "GET /v1/candidates?per_page=1&skip_count=true"));
}

#[sqlx::test]
async fn generic_secrets_are_not_checked_and_the_receipt_says_so(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = app_with(db, &fake, &[]).await;
    let (_, link) = app.create_link("generic").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "J"),
                ("submitter_email", "j@acme.com"),
                ("label", "SFTP"),
                ("secret", "pw"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains("cannot be tested automatically"));
    assert!(!html.contains("check again"));
    assert!(fake.requests().is_empty());
}
