//! The operator's day against the real binary: upgrades and rollbacks, KEKs
//! missing from the ring, rotation's guard rails and exit codes, retention
//! guard rails, and what start-up logs.

use crate::binary::{database_url, keydrop, run, serve, serve_with, stop};
use crate::helpers::*;
use crate::ops_support::*;
use keydrop::crypto::Keyring;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

/// A migration only a newer Keydrop knows.
const FUTURE: i64 = 29_990_101_000_001;

async fn add_future_migration(db: &PgPool) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from a newer keydrop', true, '\\x00', 0)",
    )
    .bind(FUTURE)
    .execute(db)
    .await
    .unwrap();
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

/// All the server wrote to stderr, once it has stopped.
fn logs_of(rx: std::sync::mpsc::Receiver<String>) -> String {
    let mut all = String::new();
    while let Ok(part) = rx.recv_timeout(Duration::from_secs(10)) {
        all.push_str(&part);
    }
    all
}

#[sqlx::test]
async fn a_server_starts_on_a_database_a_newer_keydrop_migrated_and_stays_ready(db: PgPool) {
    let url = database_url(&db);
    add_future_migration(&db).await;
    let kek = new_kek("kek-a");

    for no_migrate in [false, true] {
        let flags: &[&str] = if no_migrate { &["--no-migrate"] } else { &[] };
        let (child, public, internal, output) = serve_with(keydrop(&url, &kek), flags);
        let (status, body) = get_json(&format!("{internal}/readyz")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["migrations"]["status"], "ahead", "{body}");
        assert_eq!(body["migrations"]["ahead"][0], FUTURE, "{body}");
        let (status, _) = get_json(&format!("{public}/readyz")).await;
        assert_eq!(status, StatusCode::OK);
        stop(child);
        let logs = logs_of(output);
        assert!(
            logs.contains("newer Keydrop") && logs.contains(&FUTURE.to_string()),
            "the warning names the newer versions: {logs}"
        );
    }

    let (ok, _, stderr) = run(keydrop(&url, &kek).arg("migrate"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("belongs to a newer Keydrop") && stderr.contains(&FUTURE.to_string()),
        "{stderr}"
    );
}

#[sqlx::test]
async fn a_database_that_lacks_this_versions_migrations_and_has_newer_ones_is_not_migrated_out_of_order(
    db: PgPool,
) {
    let url = database_url(&db);
    add_future_migration(&db).await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations WHERE version < $1)",
    )
    .bind(FUTURE)
    .execute(&db)
    .await
    .unwrap();
    let (ok, _, stderr) = run(keydrop(&url, &new_kek("k")).arg("migrate"));
    assert!(!ok);
    assert!(stderr.contains("newer Keydrop"), "{stderr}");
    assert!(!stderr.contains("previously applied"), "{stderr}");
}

#[sqlx::test]
async fn rows_under_a_kek_missing_from_the_ring_fail_readiness_and_are_named_at_start_up(
    db: PgPool,
) {
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = spawn_app_with(db.clone(), &old, None).await;
    seed(&app, &Keyring::parse(&old).unwrap(), 5).await;
    drop(app);
    let new = new_kek("kek-new");

    let (child, public, internal, output) = serve(keydrop(&url, &new));
    let (status, body) = get_json(&format!("{internal}/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["keks"]["status"], "missing");
    assert_eq!(body["keks"]["missing"][0], "kek-old");
    let (status, _) = get_json(&format!("{public}/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let addr = internal.trim_start_matches("http://").to_owned();
    let (ok, _, stderr) =
        run(keydrop(&url, &new).args(["healthcheck", "--addr", &addr, "--path", "/readyz"]));
    assert!(!ok, "the Docker health check fails too: {stderr}");
    stop(child);
    let logs = logs_of(output);
    let line = logs
        .lines()
        .find(|l| l.contains("KEK missing from the ring"))
        .unwrap_or_else(|| panic!("no missing-KEK line: {logs}"));
    assert!(
        line.contains("kek-old") && line.contains("rows=5"),
        "names the KEK and its rows: {line}"
    );

    // The operator may accept it knowingly.
    let mut cmd = keydrop(&url, &new);
    cmd.env("KEYDROP_ALLOW_MISSING_KEKS", "true");
    let (child, _, internal, _) = serve(cmd);
    let (status, body) = get_json(&format!("{internal}/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["keks"]["status"], "degraded");
    stop(child);
}

#[sqlx::test]
async fn rotate_refuses_a_kek_no_server_has_loaded_unless_forced(db: PgPool) {
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = spawn_app_with(db.clone(), &old, None).await;
    let seeded = seed(&app, &Keyring::parse(&old).unwrap(), 4).await;
    drop(app);
    let ring = format!("{},{old}", new_kek("kek-new"));

    let (ok, _, stderr) = run(keydrop(&url, &ring).arg("rotate"));
    assert!(!ok);
    assert!(
        stderr.contains("no server has loaded KEK \"kek-new\"")
            && stderr.contains("keks.ring")
            && stderr.contains("--force"),
        "{stderr}"
    );
    for (id, _) in &seeded {
        assert_eq!(kek_of(&db, *id).await.as_deref(), Some("kek-old"));
    }

    let (ok, _, stderr) = run(keydrop(&url, &ring).args(["rotate", "--force"]));
    assert!(ok, "{stderr}");
    for (id, _) in &seeded {
        assert_eq!(kek_of(&db, *id).await.as_deref(), Some("kek-new"));
    }
}

#[sqlx::test]
async fn rotate_goes_ahead_once_a_server_has_loaded_the_new_ring(db: PgPool) {
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = spawn_app_with(db.clone(), &old, None).await;
    seed(&app, &Keyring::parse(&old).unwrap(), 2).await;
    drop(app);
    let ring = format!("{},{old}", new_kek("kek-new"));
    let (child, _, _, _) = serve(keydrop(&url, &ring));
    let (ok, _, stderr) = run(keydrop(&url, &ring).arg("rotate"));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("rotate: done"), "{stderr}");
    stop(child);
}
