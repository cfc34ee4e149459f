//! Every action writes exactly its audit event; the audit API filters and pages;
//! `keydrop audit export` prints JSON lines.

use crate::helpers::*;
use keydrop::webhooks::worker::announce_expired_links;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Submits a `generic` credential (no live check); returns the reference id.
pub async fn submit_generic(app: &TestApp, link: &str, secret: &str) -> String {
    let csrf = app.open_form(link).await;
    let resp = app
        .submit(
            link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("label", "Production"),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    reference_from(&resp.text().await.unwrap())
}

/// `(action, outcome)` of every event after `after`, oldest first.
async fn actions_after(db: &PgPool, after: i64) -> Vec<(String, String)> {
    sqlx::query_as("SELECT action, outcome FROM audit_events WHERE id > $1 ORDER BY id")
        .bind(after)
        .fetch_all(db)
        .await
        .unwrap()
}

async fn last_id(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM audit_events")
        .fetch_one(db)
        .await
        .unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, o)| (a.to_string(), o.to_string()))
        .collect()
}

#[sqlx::test]
async fn each_action_writes_exactly_its_event(db: PgPool) {
    let app = spawn_app(db.clone()).await;

    let mark = last_id(&db).await;
    let (link_id, link) = app.create_link("generic").await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("link.created", "success")])
    );

    let mark = last_id(&db).await;
    app.open_form(&link).await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[]),
        "viewing the form is not an action"
    );

    let mark = last_id(&db).await;
    let id = submit_generic(&app, &link, "trail-secret-value-1").await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("secret.submitted", "success")])
    );

    let mark = last_id(&db).await;
    assert_eq!(app.reveal(&id).await.status(), StatusCode::OK);
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("secret.revealed", "success")])
    );

    let mark = last_id(&db).await;
    app.post(&format!("/api/v1/secrets/{id}/ingested"), &app.admin, None)
        .await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("secret.ingested", "success")])
    );

    let mark = last_id(&db).await;
    app.delete(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("secret.shredded", "success")])
    );

    let mark = last_id(&db).await;
    let (other, _) = app.create_link("lever").await;
    app.delete(&format!("/api/v1/requests/{other}"), &app.admin)
        .await;
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("link.created", "success"), ("link.revoked", "success")])
    );

    let mark = last_id(&db).await;
    assert_eq!(
        app.get("/api/v1/audit", "kd_not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("token.rejected", "denied")])
    );

    // A forged form: CSRF rejection, nothing stored.
    let (_, link2) = app.create_link("generic").await;
    let mark = last_id(&db).await;
    let resp = app
        .submit(
            &link2,
            &[
                ("csrf_token", "forged"),
                ("submitter_name", "x"),
                ("label", "l"),
                ("secret", "never-stored-secret"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        actions_after(&db, mark).await,
        pairs(&[("secret.rejected", "denied")])
    );

    // The events name their subjects and never hold the secret.
    let rows: Vec<(String, Option<uuid::Uuid>, Option<uuid::Uuid>, Value)> = sqlx::query_as(
        "SELECT action, secret_id, request_id, detail FROM audit_events ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let submitted = rows.iter().find(|r| r.0 == "secret.submitted").unwrap();
    assert_eq!(submitted.1.unwrap().to_string(), id);
    assert_eq!(submitted.2.unwrap().to_string(), link_id);
    let all = serde_json::to_string(&rows.iter().map(|r| &r.3).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains("trail-secret-value-1") && !all.contains("never-stored-secret"));
}

#[sqlx::test]
async fn a_link_that_expires_unused_is_announced_once(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (id, _) = app.create_link("generic").await;
    let (used, used_link) = app.create_link("generic").await;
    submit_generic(&app, &used_link, "s3cret-used-up").await;
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 hour'")
        .execute(&db)
        .await
        .unwrap();
    let mark = last_id(&db).await;
    // The server's worker may get there first; either way, exactly one event per link.
    announce_expired_links(&db).await.unwrap();
    announce_expired_links(&db).await.unwrap();
    let rows: Vec<(String, uuid::Uuid, String)> = sqlx::query_as(
        "SELECT action, request_id, actor_kind FROM audit_events WHERE id > $1 ORDER BY id",
    )
    .bind(mark)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].0.as_str(),
            rows[0].1.to_string(),
            rows[0].2.as_str()
        ),
        ("link.expired", id.clone(), "system")
    );
    assert_ne!(
        rows[0].1.to_string(),
        used,
        "a used-up link did not expire unused"
    );
}

#[sqlx::test]
async fn the_audit_api_filters_by_link_actor_action_and_time(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (link_id, link) = app.create_link("generic").await;
    let id = submit_generic(&app, &link, "filter-secret").await;
    app.reveal(&id).await;
    let (other, _) = app.create_link("lever").await;

    let get = |q: String| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/audit?{q}"), &app.admin).await;
            assert_eq!(r.status(), StatusCode::OK, "{q}");
            r.json::<Value>().await.unwrap()
        }
    };
    let actions = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };

    let v = get(format!("link_id={link_id}")).await;
    assert_eq!(
        actions(&v),
        ["secret.revealed", "secret.submitted", "link.created"]
    );
    assert_eq!(
        actions(&get(format!("request_id={other}")).await),
        ["link.created"]
    );
    assert_eq!(
        actions(&get(format!("secret_id={id}")).await),
        ["secret.revealed", "secret.submitted"]
    );
    assert_eq!(
        actions(&get("action=secret.revealed".into()).await),
        ["secret.revealed"]
    );
    assert_eq!(
        actions(&get("action=secret.*".into()).await),
        ["secret.revealed", "secret.submitted"]
    );
    assert_eq!(
        actions(&get("actor=public".into()).await),
        ["secret.submitted"]
    );
    assert_eq!(
        actions(&get("actor=test-admin".into()).await),
        ["link.created", "secret.revealed", "link.created"]
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(actions(&get(format!("since={future}")).await).len(), 0);
    assert_eq!(actions(&get(format!("until={future}")).await).len(), 4);
    let item = &v["items"][0];
    for field in [
        "id",
        "occurred_at",
        "actor_kind",
        "actor_name",
        "client_ip",
        "outcome",
        "detail",
        "chain_seq",
        "chain_hash",
    ] {
        assert!(item.get(field).is_some(), "{field}");
    }

    for bad in [
        "secret_id=nope",
        "since=yesterday",
        "cursor=abc",
        "link_id=x",
    ] {
        let r = app.get(&format!("/api/v1/audit?{bad}"), &app.admin).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["code"].as_str().unwrap().starts_with("invalid_"));
    }
    let reader = create_token(&db, "reader", "read").await;
    assert_eq!(
        app.get("/api/v1/audit", &reader).await.status(),
        StatusCode::OK
    );
    let requester = create_token(&db, "requester", "request").await;
    assert_eq!(
        app.get("/api/v1/audit", &requester).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test]
async fn the_audit_api_pages_with_a_cursor_without_gaps_or_repeats(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    for i in 0..7 {
        app.create_link_with(json!({ "organization": format!("Org {i}"), "provider": "lever" }))
            .await;
    }
    let total = app.count("audit_events").await as usize;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=3&cursor={c}"),
            None => "/api/v1/audit?limit=3".to_owned(),
        };
        let v: Value = app.get(&q, &app.admin).await.json().await.unwrap();
        seen.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no repeats");
    assert_eq!(seen.len(), total);
}

#[sqlx::test]
async fn keydrop_audit_export_prints_json_lines_for_a_siem(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("generic").await;
    submit_generic(&app, &link, "export-secret-value").await;
    let name = db.connect_options().get_database().unwrap().to_owned();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&name);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keydrop"))
        .env_clear()
        .env("DATABASE_URL", url.as_str())
        .args(["audit", "export", "--since", "1h"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("export-secret-value"));
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, app.count("audit_events").await);
    assert_eq!(lines[0]["action"], "link.created");
    assert_eq!(lines[1]["action"], "secret.submitted");
    let later = std::process::Command::new(env!("CARGO_BIN_EXE_keydrop"))
        .env_clear()
        .env("DATABASE_URL", url.as_str())
        .args(["audit", "export", "--since", "2099-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(later.status.success() && later.stdout.is_empty());
}
