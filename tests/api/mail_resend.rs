//! Sending a drop link's email again (`POST /api/v1/requests/{id}/resend`,
//! `keydrop request resend`) through a real SMTP server (aiosmtpd, STARTTLS):
//! one more email with the same link, only for a link that can still be used.

use crate::binary::{database_url, keydrop, run};
use crate::helpers::{create_token, TestApp};
use crate::mail::{mail_app, send_link, wait_email};
use crate::smtp::{env_for, free_port, SmtpServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::process::Command;

async fn resend(app: &TestApp, id: &str) -> (StatusCode, Value) {
    let resp = app
        .post(&format!("/api/v1/requests/{id}/resend"), &app.admin, None)
        .await;
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn audited(app: &TestApp, action: &str) -> Vec<(String, Option<String>, Value)> {
    sqlx::query_as(
        "SELECT actor_kind, actor_name, detail FROM audit_events WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_resent_link_arrives_once_more_with_the_same_working_link_and_is_audited(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(db, smtp.env(), &[]).await;
    let created = send_link(
        &app,
        json!({"organization": "Globex", "provider": "generic", "send_to": "admin@globex.example"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let first = smtp.wait_for(1).await.remove(0).link().unwrap();
    wait_email(&app, id, "sent").await;

    let (status, link) = resend(&app, id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{link}");
    assert_eq!(link["email"], "queued");
    assert_eq!(link["status"], "pending");
    assert!(
        link.get("url").is_none(),
        "the answer holds no link: {link}"
    );

    let second = smtp.wait_for(2).await.remove(1);
    assert_eq!(second.rcpt_to, ["admin@globex.example"]);
    assert_eq!(second.link().unwrap(), first, "the same link again");
    let page = app
        .browser
        .get(app.local(&second.link().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Globex"));
    wait_email(&app, id, "sent").await;

    let events = audited(&app, "link.resent").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "staff");
    assert_eq!(events[0].2["previous_email"], "sent");
    let token = &first[first.find("/d/").unwrap() + 3..];
    assert!(!events[0].2.to_string().contains(token));
    assert_eq!(smtp.messages().len(), 2, "one more email, no more");
}

#[sqlx::test]
async fn only_a_link_that_can_still_be_used_and_was_emailed_is_sent_again(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(db, smtp.env(), &[]).await;
    // Used: its one use was spent.
    let used = send_link(
        &app,
        json!({"organization": "Used Co", "provider": "generic", "send_to": "it@used.example"}),
    )
    .await;
    let used_id = used["id"].as_str().unwrap();
    let link = smtp.wait_for(1).await.remove(0).link().unwrap();
    wait_email(&app, used_id, "sent").await;
    let receipt = app
        .open_and_submit(
            &app.local(&link),
            &[
                ("submitter_name", "Una"),
                ("submitter_email", "una@used.example"),
                ("label", "db"),
                ("secret", "s3cret-value-for-the-resend-test"),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let (status, body) = resend(&app, used_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "link_used");
    assert!(body["error"]["message"].as_str().unwrap().contains("used"));

    // Revoked.
    let revoked = send_link(
        &app,
        json!({"organization": "Gone Co", "provider": "generic", "send_to": "it@gone.example"}),
    )
    .await;
    let revoked_id = revoked["id"].as_str().unwrap();
    wait_email(&app, revoked_id, "sent").await;
    let resp = app
        .delete(&format!("/api/v1/requests/{revoked_id}"), &app.admin)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = resend(&app, revoked_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "link_revoked");

    // Never emailed: Keydrop holds only its hash.
    let (plain_id, _) = app.create_link("generic").await;
    let (status, body) = resend(&app, &plain_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_emailed");

    // Unknown, malformed, and a token without the `request` scope.
    let (status, _) = resend(&app, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = resend(&app, "not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let reader = create_token(&app.db, "reader", "read").await;
    let resp = app
        .post(&format!("/api/v1/requests/{used_id}/resend"), &reader, None)
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    assert_eq!(smtp.messages().len(), 2, "nothing was sent again");
    assert!(audited(&app, "link.resent").await.is_empty());
}

#[sqlx::test]
async fn while_the_first_email_is_still_queued_a_resend_is_refused(db: PgPool) {
    // The relay is down: the first email stays queued, retrying.
    let dir = SmtpServer::new_dir();
    let app = mail_app(db, env_for(&dir, free_port()), &[]).await;
    let created = send_link(
        &app,
        json!({"organization": "Initech", "provider": "generic", "send_to": "it@initech.example"}),
    )
    .await;
    let (status, body) = resend(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "email_queued");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("it@initech.example"));
    assert_eq!(app.count("mail_messages").await, 1);
}

/// The binary on the app's database (local mode), with `env` added.
fn local_cli(app: &TestApp, env: &[(&'static str, String)]) -> Command {
    let mut cmd = keydrop(&database_url(&app.db), &app.kek);
    cmd.env("KEYDROP_PUBLIC_URL", &app.public);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn run_cli(mut cmd: Command, args: &[&str]) -> (bool, String, String) {
    cmd.args(args);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

#[sqlx::test]
async fn request_resend_works_on_the_database_and_through_the_api(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let app = mail_app(db, smtp.env(), &[]).await;
    let created = send_link(
        &app,
        json!({"organization": "Hooli", "provider": "generic", "send_to": "admin@hooli.example"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let link = smtp.wait_for(1).await.remove(0).link().unwrap();
    wait_email(&app, id, "sent").await;

    // Local mode without SMTP settings: it says email is off and queues nothing.
    let (ok, _, err) = run_cli(local_cli(&app, &[]), &["request", "resend", id]).await;
    assert!(!ok);
    assert!(err.contains("KEYDROP_SMTP_URL"), "{err}");

    // Local mode: queued in the database; the server's worker sends it.
    let (ok, _, err) = run_cli(
        local_cli(&app, &smtp.env()),
        &["--actor", "ops-ana", "request", "resend", id],
    )
    .await;
    assert!(ok, "{err}");
    assert!(err.contains("admin@hooli.example"), "{err}");
    assert_eq!(smtp.wait_for(2).await.remove(1).link().unwrap(), link);
    wait_email(&app, id, "sent").await;

    // Through the API, as JSON.
    let mut remote = Command::new(env!("CARGO_BIN_EXE_keydrop"));
    remote
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYDROP_API_URL", &app.internal)
        .env("KEYDROP_API_TOKEN", &app.admin);
    let (ok, out, err) = run_cli(remote, &["request", "resend", id, "--json"]).await;
    assert!(ok, "{err}");
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["email"], "queued");
    assert_eq!(smtp.wait_for(3).await.remove(2).link().unwrap(), link);

    let events = audited(&app, "link.resent").await;
    let actors: Vec<_> = events.iter().map(|e| e.1.clone().unwrap()).collect();
    assert_eq!(actors, ["cli:ops-ana", "test-admin"], "{events:?}");
    // Neither the CLI's output nor its errors hold the link.
    let token = &link[link.find("/d/").unwrap() + 3..];
    assert!(!out.contains(token) && !err.contains(token));
}
