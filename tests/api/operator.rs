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
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
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
    assert!(
        !logs.contains('\x1b'),
        "no colour codes when stderr is not a terminal: {logs}"
    );
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
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
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
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
    seed(&app, &Keyring::parse(&old).unwrap(), 2).await;
    drop(app);
    let ring = format!("{},{old}", new_kek("kek-new"));
    let (child, _, _, _) = serve(keydrop(&url, &ring));
    let (ok, _, stderr) = run(keydrop(&url, &ring).arg("rotate"));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("rotate: done"), "{stderr}");
    stop(child);
}

#[sqlx::test]
async fn retention_below_an_hour_is_refused_unless_overridden_and_the_first_purge_waits(
    db: PgPool,
) {
    let url = database_url(&db);
    let app = spawn_app(db.clone()).await;
    let seeded = seed(&app, &Keyring::parse(&app.kek).unwrap(), 3).await;
    // "6m" meant as six months is six minutes: refused, nothing shredded.
    for cmd in ["serve", "purge"] {
        let (ok, _, stderr) = run(keydrop(&url, &app.kek)
            .arg(cmd)
            .env("KEYDROP_SHRED_UNCLAIMED_AFTER", "6m"));
        assert!(!ok, "{cmd}");
        assert!(
            stderr.contains("KEYDROP_SHRED_UNCLAIMED_AFTER")
                && stderr.contains("shorter than an hour")
                && stderr.contains("KEYDROP_ALLOW_SHORT_RETENTION"),
            "{stderr}"
        );
    }
    // Overridden: start-up says how many secrets are due, and shreds none of
    // them before the first interval has passed.
    age_secrets(&db, 2).await; // the seeded rows must be older than 1s
    let mut cmd = keydrop(&url, &app.kek);
    cmd.env("KEYDROP_SHRED_UNCLAIMED_AFTER", "1s")
        .env("KEYDROP_ALLOW_SHORT_RETENTION", "true")
        .env("KEYDROP_PURGE_INTERVAL", "1h");
    let (child, ..) = serve(cmd);
    let (ok, stdout, stderr) = run(keydrop(&url, &app.kek)
        .args(["purge", "--dry-run"])
        .env("KEYDROP_SHRED_UNCLAIMED_AFTER", "1s")
        .env("KEYDROP_ALLOW_SHORT_RETENTION", "true"));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "would shred 3 secret(s): 0 ingested more than 7d ago, 3 never revealed within 1s"
    );
    stop(child);
    for (id, _) in &seeded {
        assert!(
            kek_of(&db, *id).await.is_some(),
            "nothing shredded at start-up"
        );
    }
}

#[sqlx::test]
async fn rotate_exits_non_zero_whenever_rows_remain_and_130_after_ctrl_c(db: PgPool) {
    use std::io::{BufRead, BufReader};
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
    seed(&app, &Keyring::parse(&old).unwrap(), 300).await;
    drop(app);
    let ring = format!("{},{old}", new_kek("kek-new"));
    let rotate = |args: &[&str]| {
        let mut cmd = keydrop(&url, &ring);
        cmd.arg("rotate")
            .args(["--force", "--workers", "1"])
            .args(args);
        cmd
    };

    // Capped by --max-batches with rows left: non-zero, and says why.
    let out = rotate(&["--batch", "10", "--max-batches", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--max-batches") && stderr.contains("280 row(s)"),
        "{stderr}"
    );
    assert!(!stderr.contains("rotate: done"), "{stderr}");

    // Ctrl-C part-way: 130, as a shell reports an interrupted command.
    let mut child = rotate(&["--batch", "1"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("rotate: batch") {
            break;
        }
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped early")), "{rest:?}");

    // Finished: 0; and a run with nothing to do is not "stopped early".
    let (ok, _, stderr) = run(&mut rotate(&[]));
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run(&mut rotate(&["--max-batches", "0"]));
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("stopped early"), "{stderr}");
    assert!(stderr.contains("rotate: done"), "{stderr}");
}

#[sqlx::test]
async fn start_up_logs_in_json_say_what_an_operator_needs_and_end_with_stopped(db: PgPool) {
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
    seed(&app, &Keyring::parse(&old).unwrap(), 2).await;
    drop(app);
    let new = new_kek("kek-new");
    let webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut cmd = keydrop(&url, &format!("{new},{old}"));
    cmd.env("KEYDROP_LOG_FORMAT", "json")
        .env(
            "KEYDROP_WEBHOOK_URL",
            "http://127.0.0.1:1/hooks/path-token-123",
        )
        .env("KEYDROP_WEBHOOK_SECRET", webhook_secret)
        .env("KEYDROP_SHRED_UNCLAIMED_AFTER", "90d");
    let (child, _, _, output) = serve(cmd);
    stop(child);
    let logs = logs_of(output);
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().unwrap_or("").starts_with(message))
            .unwrap_or_else(|| panic!("no {message:?} line: {logs}"))
            .clone()
    };
    let ring = find("KEK ring loaded");
    assert_eq!(ring["active"], "kek-new");
    assert_eq!(ring["ring"], "kek-new,kek-old");
    assert_eq!(ring["canaries_registered"], "kek-new");
    let schema = find("database migrations");
    assert!(
        schema["message"].as_str().unwrap().contains("current"),
        "{schema}"
    );
    let retention = find("retention policy");
    assert_eq!(retention["shred_unclaimed_after"], "90d");
    assert_eq!(retention["shred_after_ingested"], "7d");
    assert_eq!(retention["purge_interval"], "5m");
    let hooks = find("webhooks");
    assert_eq!(hooks["endpoints"], 1);
    assert_eq!(hooks["origins"], "http://127.0.0.1:1");
    find("keydrop listening");
    assert_eq!(
        lines.last().unwrap()["message"],
        "keydrop stopped",
        "{logs}"
    );
    for secret in [
        "path-token-123",
        webhook_secret,
        &new[new.find('=').unwrap() + 1..],
        &old[old.find('=').unwrap() + 1..],
    ] {
        assert!(!logs.contains(secret), "{secret} logged: {logs}");
    }

    // Fatal start-up errors are JSON too.
    let (ok, _, stderr) = run(keydrop(&url, &new)
        .env("KEYDROP_LOG_FORMAT", "json")
        .env("KEYDROP_PUBLIC_ADDR", "nope")
        .arg("serve"));
    assert!(!ok);
    let line: Value = serde_json::from_str(stderr.trim()).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("KEYDROP_PUBLIC_ADDR"),
        "{line}"
    );
}

#[sqlx::test]
async fn missing_kek_lines_in_json_carry_the_id_and_the_row_count_as_fields(db: PgPool) {
    let url = database_url(&db);
    let old = new_kek("kek-old");
    let app = TestApp::builder(db.clone()).with_kek(&old).spawn().await;
    seed(&app, &Keyring::parse(&old).unwrap(), 3).await;
    drop(app);
    let mut cmd = keydrop(&url, &new_kek("kek-new"));
    cmd.env("KEYDROP_LOG_FORMAT", "json");
    let (child, _, _, output) = serve(cmd);
    stop(child);
    let logs = logs_of(output);
    let missing: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("KEK missing")
        })
        .unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(missing["kek_id"], "kek-old");
    assert_eq!(missing["rows"], 3);
    assert_eq!(missing["level"], "ERROR");
}

#[test]
fn database_errors_name_the_host_and_the_real_cause() {
    let kek = new_kek("k");
    let (ok, _, stderr) =
        run(keydrop("mysql://root@127.0.0.1/keydrop", &kek).args(["token", "list"]));
    assert!(!ok);
    assert!(stderr.contains("must be a Postgres URL"), "{stderr}");
    let (ok, _, stderr) = run(keydrop("postgres://keydrop@127.0.0.1:1/none", &kek).arg("serve"));
    assert!(!ok);
    assert!(
        stderr.contains("127.0.0.1:1/none") && stderr.to_lowercase().contains("refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

#[sqlx::test(migrations = false)]
async fn an_unmigrated_database_says_to_run_keydrop_migrate(db: PgPool) {
    let url = database_url(&db);
    let kek = new_kek("k");
    for args in [
        &["serve", "--no-migrate"][..],
        &["token", "list"],
        &["rotate"],
    ] {
        let (ok, _, stderr) = run(keydrop(&url, &kek).args(args));
        assert!(!ok, "{args:?}");
        assert!(
            stderr.contains("run `keydrop migrate`"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("does not exist"), "{stderr}");
    }
    let (ok, _, stderr) = run(keydrop(&url, &kek).arg("migrate"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("applied 4 migration(s)") || stderr.contains("applied"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(keydrop(&url, &kek).arg("migrate"));
    assert!(ok);
    assert!(stderr.contains("nothing to apply"), "{stderr}");
}

#[sqlx::test]
async fn keydrop_actor_names_the_operator_unless_the_actor_flag_does(db: PgPool) {
    let url = database_url(&db);
    let kek = new_kek("k");
    let create = |env_actor: &str, flag: Option<&str>| {
        let mut cmd = keydrop(&url, &kek);
        cmd.env("KEYDROP_ACTOR", env_actor);
        if let Some(name) = flag {
            cmd.args(["--actor", name]);
        }
        cmd.args([
            "request",
            "create",
            "--org",
            "Acme",
            "--provider",
            "generic",
        ]);
        run(&mut cmd)
    };
    let (ok, _, stderr) = create("bea", None);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = create("bea", Some("ana"));
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = create("bad\u{7}name", None);
    assert!(!ok);
    assert!(stderr.contains("KEYDROP_ACTOR"), "{stderr}");
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor_name FROM audit_events WHERE action = 'link.created' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(actors, ["cli:bea", "cli:ana"]);
}

#[sqlx::test]
async fn the_cli_names_link_ids_flags_and_actors_warns_about_local_links_and_revokes_by_url(
    db: PgPool,
) {
    let url = database_url(&db);
    let kek = new_kek("k");
    let cli = |args: &[&str]| {
        let mut cmd = keydrop(&url, &kek);
        cmd.args(args);
        run(&mut cmd)
    };
    let (ok, link, stderr) = cli(&[
        "--actor",
        "ana",
        "request",
        "create",
        "--org",
        "Acme",
        "--provider",
        "generic",
    ]);
    assert!(ok, "{stderr}");
    let link = link.trim().to_owned();
    assert!(
        stderr.contains("warning") && stderr.contains("KEYDROP_PUBLIC_URL is not set"),
        "staff are told a localhost link is useless to a customer: {stderr}"
    );
    let id: String = sqlx::query_scalar("SELECT id::text FROM drop_requests")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(stderr.contains(&id), "the link id is printed: {stderr}");
    let (ok, _, stderr) = cli(&[
        "request",
        "create",
        "--org",
        "Acme",
        "--provider",
        "generic",
        "--expires-in",
        "soon",
    ]);
    assert!(!ok && stderr.contains("--expires-in"), "{stderr}");

    let (ok, _, stderr) = cli(&["--actor", "ana", "request", "revoke", &link]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("revoked drop link {id}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(link.rsplit('/').next().unwrap()),
        "no token echoed"
    );
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor_name FROM audit_events WHERE action IN ('link.created', 'link.revoked') ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(actors, ["cli:ana", "cli:ana"]);

    let (ok, _, _) = cli(&["token", "create", "--name", "ops", "--scope", "read"]);
    assert!(ok);
    let (ok, list, _) = cli(&["token", "list"]);
    assert!(
        ok && list.contains("CREATED") && list.contains("EXPIRES"),
        "{list}"
    );
    let token_id: String = sqlx::query_scalar("SELECT id::text FROM staff_tokens")
        .fetch_one(&db)
        .await
        .unwrap();
    let (ok, _, stderr) = cli(&["token", "revoke", &token_id]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("\"ops\""), "{stderr}");

    let (ok, help, _) = cli(&["serve", "--help"]);
    assert!(
        ok && help.contains("DATABASE_URL") && help.contains("KEYDROP_KEKS"),
        "{help}"
    );
}
