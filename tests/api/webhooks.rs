//! Outgoing webhooks against a local receiver that checks Standard Webhooks
//! signatures, fails at first, and is sometimes not even there.

use crate::audit_trail::submit_generic;
use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use keydrop::webhooks::{self, Event};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Default)]
struct Inbox {
    /// Requests to answer with 500 before answering 200.
    fail_first: usize,
    seen: usize,
    /// webhook-id → (type, body) of requests answered 200.
    accepted: Vec<(String, String, Value)>,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<Inbox>>;

/// Verifies like a receiver would: HMAC-SHA256 over "id.timestamp.body" with the decoded secret.
fn signature_ok(headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 || !id.starts_with("msg_") {
        return false;
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &B64.decode(SECRET.trim_start_matches("whsec_")).unwrap(),
    );
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    sig.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| B64.decode(b).ok())
            .is_some_and(|mac| ring::hmac::verify(&key, &signed, &mac).is_ok())
    })
}

async fn receive(
    State(inbox): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut inbox = inbox.lock().unwrap();
    inbox.seen += 1;
    if !signature_ok(&headers, &body) {
        inbox.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if inbox.seen <= inbox.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    inbox
        .accepted
        .push((id, v["type"].as_str().unwrap_or("").to_owned(), v));
    StatusCode::OK
}

/// Serves the receiver on `listener`; returns its inbox.
fn start_receiver(listener: tokio::net::TcpListener, fail_first: usize) -> Shared {
    let inbox: Shared = Arc::new(Mutex::new(Inbox {
        fail_first,
        ..Inbox::default()
    }));
    let app = Router::new()
        .route("/hook", post(receive))
        .route(
            "/moved",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/hook")]) }),
        )
        .with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    inbox
}

/// An app whose webhooks go to `url`, with retries in milliseconds instead of minutes.
async fn app_with_webhooks(db: PgPool, url: &str) -> TestApp {
    TestApp::builder(db)
        .with_env([
            ("KEYDROP_WEBHOOK_URL", url),
            ("KEYDROP_WEBHOOK_SECRET", SECRET),
        ])
        .with_config(|c| {
            c.webhooks.backoff_base = Duration::from_millis(100);
            c.webhooks.backoff_cap = Duration::from_millis(400);
            c.webhooks.poll = Duration::from_millis(50);
            c.webhooks.expiry_scan = Duration::from_millis(100);
            c.webhooks.timeout = Duration::from_secs(2);
        })
        .spawn()
        .await
}

/// [`eventually`] for a condition on the receiver's inbox (no I/O to await).
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(done())).await
}

/// Every kind of event, each caused the way production causes it.
async fn cause_every_event(app: &TestApp, secret: &str) {
    let (_, link) = app.create_link("generic").await;
    let id = submit_generic(app, &link, secret).await;
    assert_eq!(app.reveal(&id).await.status(), reqwest::StatusCode::OK);
    // check.failed is enqueued by the live-check code; here through the same call it uses.
    let meta: Value = app
        .get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let mut tx = app.db.begin().await.unwrap();
    webhooks::enqueue(
        &mut *tx,
        &Event::CheckFailed {
            secret_id: id.parse().unwrap(),
            request_id: meta["request_id"].as_str().unwrap().parse().unwrap(),
            organization: "Acme Corp",
            provider: "generic",
            status: keydrop::providers::CheckStatus::MissingPermissions,
            missing: &["jobs:read".to_owned()],
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.delete(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await;
    let (expiring, _) = app.create_link("lever").await;
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 minute' WHERE id = $1::uuid")
        .bind(&expiring)
        .execute(&app.db)
        .await
        .unwrap();
}

const ALL_TYPES: [&str; 5] = [
    "check.failed",
    "link.expired",
    "secret.revealed",
    "secret.shredded",
    "submission.received",
];

#[sqlx::test]
async fn every_event_arrives_signed_after_failures_once_per_id_and_without_secrets(db: PgPool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let inbox = start_receiver(listener, 3);
    let app = app_with_webhooks(db.clone(), &url).await;
    cause_every_event(&app, "wh-secret-value-9f8e7d").await;

    wait_for("all five event types", || {
        let i = inbox.lock().unwrap();
        let types: BTreeSet<_> = i.accepted.iter().map(|a| a.1.as_str()).collect();
        types.len() == 5
    })
    .await;
    // Count only once nothing can land late: every delivery is done (so none
    // will be claimed again) and the receiver has seen every attempt the
    // outbox recorded (an attempt is counted when claimed, before it is sent).
    eventually("every delivery done and every attempt received", || async {
        let (rows, pending, attempts): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL), coalesce(sum(attempts), 0)
             FROM webhook_deliveries",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        let seen = inbox.lock().unwrap().seen as i64;
        rows == 5 && pending == 0 && attempts == seen
    })
    .await;
    let (bad_signatures, seen, accepted) = {
        let i = inbox.lock().unwrap();
        (i.bad_signatures, i.seen, i.accepted.clone())
    };
    assert_eq!(bad_signatures, 0);
    assert!(
        seen >= 5 + 3,
        "the first three attempts failed and were retried"
    );
    let by_id: BTreeMap<_, _> = accepted
        .iter()
        .map(|(id, t, v)| (id.clone(), (t.clone(), v.clone())))
        .collect();
    let types: Vec<_> = by_id
        .values()
        .map(|(t, _)| t.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(types, ALL_TYPES);
    assert_eq!(by_id.len(), 5, "one message per event after de-duplication");
    for (t, v) in by_id.values() {
        assert_eq!(v["type"], *t);
        assert!(v["timestamp"].is_string() && v["data"].is_object());
        let body = v.to_string();
        assert!(
            !body.contains("wh-secret-value") && !body.contains("9f8e7d"),
            "{body}"
        );
    }
    let submitted = by_id
        .values()
        .find(|(t, _)| t == "submission.received")
        .unwrap();
    assert_eq!(submitted.1["data"]["organization"], "Acme Corp");
    assert_eq!(submitted.1["data"]["provider"], "generic");
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(pending, 0);
    let stats = keydrop::store::webhooks::stats(&db).await.unwrap();
    assert_eq!((stats.delivered, stats.pending, stats.failed), (5, 0, 0));
}

#[sqlx::test]
async fn a_receiver_that_is_down_loses_nothing_and_gets_everything_later(db: PgPool) {
    // Reserve a port, then close it: connections are refused until the receiver starts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = app_with_webhooks(db.clone(), &url).await;
    cause_every_event(&app, "down-secret-value").await;

    // Several attempts fail while nothing listens; nothing is delivered or dropped.
    let attempts = || async {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT count(*), coalesce(min(attempts), 0)::bigint, count(*) FILTER (WHERE delivered_at IS NULL AND gave_up_at IS NULL) FROM webhook_deliveries",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let start = std::time::Instant::now();
    loop {
        let (n, min_attempts, pending) = attempts().await;
        if n == 5 && min_attempts >= 2 {
            assert_eq!(pending, 5);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no retries: {n} {min_attempts}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error: String = sqlx::query_scalar("SELECT last_error FROM webhook_deliveries LIMIT 1")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(error, "could not connect");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let inbox = start_receiver(listener, 0);
    wait_for("every message after the receiver came up", || {
        let i = inbox.lock().unwrap();
        i.accepted
            .iter()
            .map(|a| a.0.clone())
            .collect::<BTreeSet<_>>()
            .len()
            == 5
    })
    .await;
    let i = inbox.lock().unwrap();
    let types: BTreeSet<_> = i.accepted.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(types.into_iter().collect::<Vec<_>>(), ALL_TYPES);
}

#[sqlx::test]
async fn redirects_are_failures_not_followed(db: PgPool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/moved", listener.local_addr().unwrap());
    let inbox = start_receiver(listener, 0);
    let app = app_with_webhooks(db.clone(), &url).await;
    let (_, link) = app.create_link("generic").await;
    submit_generic(&app, &link, "redirect-secret").await;
    let start = std::time::Instant::now();
    loop {
        let row: Option<(i32, Option<i32>)> = sqlx::query_as(
            "SELECT attempts, last_status FROM webhook_deliveries WHERE delivered_at IS NULL",
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        if let Some((attempts, status)) = row.filter(|r| r.0 >= 2) {
            assert_eq!((attempts >= 2, status), (true, Some(307)));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        inbox.lock().unwrap().accepted.is_empty(),
        "the redirect target never saw it"
    );
}

/// `(undispatched messages, pending deliveries, given-up deliveries)`.
async fn outbox_state(db: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_messages WHERE dispatched_at IS NULL),
                (SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL AND gave_up_at IS NULL),
                (SELECT count(*) FROM webhook_deliveries WHERE gave_up_at IS NOT NULL)",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_replica_without_webhook_settings_leaves_deliveries_to_the_replicas_that_have_them(
    db: PgPool,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    // One configured replica wrote a delivery (its receiver was down then)…
    let configured = app_with_webhooks(db.clone(), &url).await;
    let (_, link) = configured.create_link("generic").await;
    submit_generic(&configured, &link, "first-secret").await;
    let kek = configured.kek.clone();
    drop(configured);
    // …and another message is waiting to be dispatched.
    let bare = TestApp::builder(db.clone()).with_kek(&kek).spawn().await;
    let (_, link) = bare.create_link("generic").await;
    submit_generic(&bare, &link, "second-secret").await;
    sqlx::query("UPDATE webhook_messages SET dispatched_at = NULL WHERE id NOT IN (SELECT message_id FROM webhook_deliveries)")
        .execute(&db)
        .await
        .unwrap();
    let before = outbox_state(&db).await;
    assert!(before.0 >= 1 && before.2 == 0, "{before:?}");

    // A replica without KEYDROP_WEBHOOK_URL runs its delivery rounds: it
    // neither fails the delivery nor dispatches the message to nobody.
    let cfg = keydrop::webhooks::WebhookConfig::default();
    let http = keydrop::webhooks::worker::client(&cfg).unwrap();
    for _ in 0..3 {
        keydrop::webhooks::worker::deliver_due(&db, &cfg, &http)
            .await
            .unwrap();
    }
    assert_eq!(outbox_state(&db).await, before, "nothing given up or lost");

    // A configured replica then delivers everything.
    let inbox = start_receiver(listener, 0);
    let _configured = TestApp::builder(db.clone())
        .with_kek(&kek)
        .with_env([
            ("KEYDROP_WEBHOOK_URL", url.as_str()),
            ("KEYDROP_WEBHOOK_SECRET", SECRET),
        ])
        .spawn()
        .await;
    wait_for("both submissions delivered", || {
        let i = inbox.lock().unwrap();
        i.accepted
            .iter()
            .filter(|a| a.1 == "submission.received")
            .count()
            >= 2
    })
    .await;
}

#[sqlx::test]
async fn without_any_endpoint_messages_are_retired_after_the_retry_window(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("generic").await;
    submit_generic(&app, &link, "quiet-secret").await;
    sqlx::query("INSERT INTO webhook_deliveries (message_id, endpoint) SELECT id, 'gone-endpoint-id' FROM webhook_messages")
        .execute(&db)
        .await
        .unwrap();
    let cfg = keydrop::webhooks::WebhookConfig {
        retry_window: Duration::ZERO,
        ..Default::default()
    };
    let http = keydrop::webhooks::worker::client(&cfg).unwrap();
    keydrop::webhooks::worker::deliver_due(&db, &cfg, &http)
        .await
        .unwrap();
    let (undispatched, pending, given_up) = outbox_state(&db).await;
    assert_eq!((undispatched, pending), (0, 0));
    assert!(given_up >= 1);
    let error: String = sqlx::query_scalar(
        "SELECT last_error FROM webhook_deliveries WHERE endpoint = 'gone-endpoint-id' LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(error, "no replica has this endpoint configured");
}

/// `(type, secret_id)` of every outbox message, oldest first.
async fn outbox(db: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT event_type, payload->'data'->>'secret_id' FROM webhook_messages ORDER BY created_at")
        .fetch_all(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn failed_live_checks_and_retention_shredding_are_announced(db: PgPool) {
    use crate::fakes::*;
    let fake = Fake::start(Behaviour {
        denied: vec!["users".into()],
        ..Default::default()
    })
    .await;
    let app = TestApp::builder(db.clone()).with_fake(&fake).spawn().await;
    let (_, link) = app.create_link("greenhouse").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane"),
                ("submitter_email", "jane@acme.example.com"),
                ("client_id", GH_CLIENT_ID),
                ("client_secret", GH_CLIENT_SECRET),
            ],
        )
        .await;
    let id = reference_from(&resp.text().await.unwrap());
    let s = |t: &str| (t.to_owned(), id.clone());
    assert_eq!(
        outbox(&db).await,
        [s("submission.received"), s("check.failed")]
    );

    // A re-check that still fails announces again; one that passes does not.
    app.post(&format!("/api/v1/secrets/{id}/check"), &app.admin, None)
        .await;
    fake.set(|b| b.denied.clear());
    app.post(&format!("/api/v1/secrets/{id}/check"), &app.admin, None)
        .await;
    assert_eq!(
        outbox(&db).await,
        [
            s("submission.received"),
            s("check.failed"),
            s("check.failed")
        ]
    );
    let all: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM webhook_messages")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(all.iter().all(|p| !p.contains(GH_CLIENT_SECRET)));

    // Retention shreds an unclaimed secret: announced with shredded_by "retention".
    let policy = keydrop::ops::retention::Policy {
        after_ingested: None,
        unclaimed_after: Some(Duration::from_secs(1)),
    };
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let actor = keydrop::store::audit::Actor::cli();
    keydrop::ops::retention::purge(&db, &policy, later, &actor)
        .await
        .unwrap();
    let by: String = sqlx::query_scalar(
        "SELECT payload->'data'->>'shredded_by' FROM webhook_messages WHERE event_type = 'secret.shredded'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(by, "retention");
}
