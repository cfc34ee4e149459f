//! The `keydrop` CLI for staff, talking to a running server's internal API
//! (`KEYDROP_API_URL`, `KEYDROP_API_TOKEN`) with no database in its
//! environment.

use crate::binary::run;
use crate::helpers::{create_token, spawn_app, TestApp};
use keydrop::http::api::views::{CreatedLink, LinkList, SecretList, SecretView};
use serde_json::Value;
use sqlx::PgPool;
use std::process::Command;

/// The binary with only the API's address and a token: no DATABASE_URL, no KEKs.
fn staff_cli(app: &TestApp, token: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keydrop"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYDROP_API_URL", &app.internal)
        .env("KEYDROP_API_TOKEN", token);
    cmd
}

/// Runs the command off the test's runtime, which serves the API meanwhile.
async fn run_cli(mut cmd: Command, args: &[&str]) -> (bool, String, String) {
    cmd.args(args);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

async fn submit_generic(app: &TestApp, secret: &str) -> String {
    let (id, link) = app.create_link("generic").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("label", "warehouse"),
                ("secret", secret),
            ],
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    id
}

#[sqlx::test]
async fn staff_create_links_and_fetch_secrets_through_the_api_without_a_database(db: PgPool) {
    let app = spawn_app(db).await;
    let cli = || staff_cli(&app, &app.admin);

    let (ok, url, err) = run_cli(
        cli(),
        &["request", "create", "--org", "Acme", "--provider", "lever"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(url.lines().count(), 1, "the URL alone on stdout");
    assert!(url.trim().contains("/d/"), "{url}");
    let (ok, out, err) = run_cli(
        cli(),
        &[
            "request",
            "create",
            "--org",
            "Beta",
            "--provider",
            "generic",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let created: CreatedLink = serde_json::from_str(&out).unwrap();
    assert_eq!(created.link.organization, "Beta");
    let (ok, out, _) = run_cli(cli(), &["request", "list", "--json"]).await;
    assert!(ok);
    let list: LinkList = serde_json::from_str(&out).unwrap();
    assert_eq!(list.items.len(), 2);
    let raw: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(raw["items"][0]["status"], "pending", "the API's spelling");

    let secret = "wh-0123456789abcdefghij-SECRET";
    submit_generic(&app, secret).await;
    let (ok, out, _) = run_cli(cli(), &["secret", "list", "--json"]).await;
    assert!(ok);
    let secrets: SecretList = serde_json::from_str(&out).unwrap();
    let id = secrets.items[0].id.to_string();
    assert!(!out.contains(secret));

    let (ok, out, err) = run_cli(cli(), &["secret", "reveal", &id]).await;
    assert!(ok, "{err}");
    let fields: Value = serde_json::from_str(&out).expect("stdout is exactly one JSON value");
    assert_eq!(
        fields,
        serde_json::json!({"label": "warehouse", "secret": secret})
    );
    assert!(err.is_empty(), "nothing else is printed: {err}");

    let (ok, out, _) = run_cli(cli(), &["secret", "ingested", &id, "--json"]).await;
    assert!(ok);
    let meta: SecretView = serde_json::from_str(&out).unwrap();
    assert_eq!(meta.status, "ingested");

    let (ok, out, _) = run_cli(cli(), &["audit", "export", "--action", "secret.*"]).await;
    assert!(ok);
    let actions: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        ["secret.submitted", "secret.revealed", "secret.ingested"],
        "oldest first"
    );

    let (ok, out, err) = run_cli(
        cli(),
        &["request", "revoke", &created.link.id.to_string(), "--json"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "revoked"
    );
}

#[sqlx::test]
async fn a_token_without_the_scope_gets_the_apis_code_and_message_and_a_failing_exit(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    submit_generic(&app, "wh-0123456789abcdefghij-SECRET").await;
    let reader = create_token(&db, "reader", "read").await;
    let (ok, out, _) = run_cli(staff_cli(&app, &reader), &["secret", "list", "--json"]).await;
    assert!(ok);
    let id = serde_json::from_str::<SecretList>(&out).unwrap().items[0]
        .id
        .to_string();

    let (ok, out, err) = run_cli(staff_cli(&app, &reader), &["secret", "reveal", &id]).await;
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("403") && err.contains("forbidden"), "{err}");
    assert!(
        err.contains("reveal"),
        "the API's message names the scope: {err}"
    );

    let (ok, _, err) = run_cli(staff_cli(&app, "kds_not-a-token"), &["request", "list"]).await;
    assert!(!ok);
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");
}

#[sqlx::test]
async fn the_token_can_come_from_a_file_and_the_api_wins_over_a_database_url(db: PgPool) {
    let app = spawn_app(db).await;
    app.create_link("lever").await;
    let dir = std::env::temp_dir().join(format!("keydrop-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", app.admin)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keydrop"));
    cmd.env_clear()
        .env("KEYDROP_API_URL", &app.internal)
        .env("KEYDROP_API_TOKEN_FILE", &file)
        // Nothing listens here: the command works only if it uses the API.
        .env("DATABASE_URL", "postgres://keydrop@127.0.0.1:1/keydrop");
    let (ok, out, err) = run_cli(cmd, &["request", "list", "--json"]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<LinkList>(&out).unwrap().items.len(),
        1
    );
}

#[sqlx::test]
async fn commands_that_need_the_database_say_so_when_only_the_api_is_configured(db: PgPool) {
    let app = spawn_app(db).await;
    for args in [
        &["migrate"][..],
        &["rotate"],
        &["purge"],
        &["audit", "verify"],
        &["token", "create", "--name", "x", "--scope", "read"],
    ] {
        let (ok, _, err) = run_cli(staff_cli(&app, &app.admin), args).await;
        assert!(!ok, "{args:?}");
        assert!(
            err.contains("DATABASE_URL") && err.contains("does not offer"),
            "{args:?}: {err}"
        );
    }
    let mut bare = Command::new(env!("CARGO_BIN_EXE_keydrop"));
    bare.env_clear();
    let (ok, _, err) = run_cli(bare, &["secret", "list"]).await;
    assert!(!ok);
    assert!(err.contains("KEYDROP_API_URL"), "{err}");
}

#[sqlx::test]
async fn staff_reveal_and_shred_with_a_reason_that_the_audit_event_records(db: PgPool) {
    let app = spawn_app(db).await;
    let cli = || staff_cli(&app, &app.admin);
    let secret = "wh-reason-0123456789abcdef-SECRET";
    submit_generic(&app, secret).await;
    let list: SecretList = app
        .get("/api/v1/secrets", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let id = list.items[0].id.to_string();
    let detail = |action: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, Value>(
                "SELECT detail FROM audit_events WHERE action = $1 ORDER BY id",
            )
            .bind(action)
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };

    // A reason the CLI refuses never reaches the API.
    let (ok, _, err) = run_cli(cli(), &["secret", "reveal", &id, "--reason", "ab"]).await;
    assert!(!ok);
    assert!(err.contains("3 to 500 characters"), "{err}");
    assert!(detail("secret.revealed").await.is_empty());

    let (ok, out, err) = run_cli(
        cli(),
        &["secret", "reveal", &id, "--reason", "ticket CLI-3"],
    )
    .await;
    assert!(ok, "{err}");
    let fields: Value = serde_json::from_str(&out).expect("stdout is exactly one JSON value");
    assert_eq!(fields["secret"], secret);
    assert_eq!(detail("secret.revealed").await[0]["reason"], "ticket CLI-3");

    let (ok, out, err) = run_cli(
        cli(),
        &[
            "secret",
            "shred",
            &id,
            "--reason",
            "customer left",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let meta: SecretView = serde_json::from_str(&out).unwrap();
    assert_eq!(meta.status, "shredded");
    let shredded = detail("secret.shredded").await;
    assert_eq!(shredded[0]["reason"], "customer left");
    assert_eq!(shredded[0]["from"], "revealed");

    // Without --reason, no body: as before.
    submit_generic(&app, "wh-second-0123456789abcdef-SECRET").await;
    let list: SecretList = app
        .get("/api/v1/secrets?status=received", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let second = list.items[0].id.to_string();
    let (ok, _, err) = run_cli(cli(), &["secret", "shred", &second]).await;
    assert!(ok, "{err}");
    let shredded = detail("secret.shredded").await;
    assert_eq!(shredded.len(), 2);
    assert!(shredded[1].get("reason").is_none(), "{}", shredded[1]);
}
