//! Operations against the real binary: killed rotations, two servers purging
//! one database, SIGTERM with requests in flight, and a Postgres restart
//! under a running server.

use crate::binary::{database_url, keydrop, run, serve, stop};
use crate::helpers::*;
use crate::ops_support::*;
use keydrop::crypto::Keyring;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn count(db_rows: &[(String, i64)], kek: &str) -> i64 {
    db_rows
        .iter()
        .find(|(k, _)| k == kek)
        .map_or(0, |(_, n)| *n)
}

async fn rows_per_kek(db: &PgPool) -> Vec<(String, i64)> {
    keydrop::store::maintenance::rows_per_kek(db).await.unwrap()
}

#[sqlx::test]
async fn a_rotation_killed_part_way_completes_when_run_again(db: PgPool) {
    let url = database_url(&db);
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let app = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    let seeded = seed(&app, &Keyring::parse(&a).unwrap(), 600).await;
    drop(app);
    let ring = format!("{b},{a}");

    let mut child = keydrop(&url, &ring)
        .args(["rotate", "--batch", "1", "--force"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut progress = 0;
    for line in lines.by_ref() {
        if line.unwrap().starts_with("rotate: batch") {
            progress += 1;
            if progress == 3 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // Its sessions may still be finishing a COMMIT it sent: count only once
    // Postgres has let them go.
    eventually("the killed run's sessions to end", || async {
        let sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keydrop'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        sessions == 0
    })
    .await;
    let after_kill = rows_per_kek(&db).await;
    let left = count(&after_kill, "kek-a");
    assert!(
        left > 0 && count(&after_kill, "kek-b") >= 3,
        "killed part-way: {after_kill:?}"
    );
    assert_eq!(
        count(&after_kill, "kek-a") + count(&after_kill, "kek-b"),
        600
    );

    let (ok, stdout, stderr) =
        run(keydrop(&url, &ring).args(["rotate", "--batch", "50", "--json"]));
    assert!(ok, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["rewrapped"], left);
    assert_eq!(summary["already_current"], 600 - left);
    assert!(stderr.contains("rotate: done"), "{stderr}");
    assert_eq!(rows_per_kek(&db).await, [("kek-b".to_owned(), 600)]);

    let only_b = TestApp::builder(db.clone()).with_kek(&b).spawn().await;
    for (id, secret) in seeded.iter().step_by(20) {
        assert_eq!(&revealed_secret(&only_b, *id).await, secret);
    }
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'kek.rotated'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        runs, 1,
        "the killed run recorded nothing; the finished one did"
    );
}

#[sqlx::test]
async fn keydrop_purge_prints_what_it_shredded(db: PgPool) {
    let url = database_url(&db);
    let app = spawn_app(db.clone()).await;
    seed(&app, &Keyring::parse(&app.kek).unwrap(), 3).await;
    age_secrets(&db, 2).await; // older than the 1s rule below
    let (ok, stdout, stderr) = run(keydrop(&url, &app.kek)
        .args(["purge"])
        .env("KEYDROP_SHRED_UNCLAIMED_AFTER", "1s")
        .env("KEYDROP_ALLOW_SHORT_RETENTION", "true"));
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "shredded 3 secret(s): 0 ingested more than 7d ago, 3 never revealed within 1s"
    );
    let (ok, stdout, _) = run(keydrop(&url, &app.kek).args(["purge", "--json"]));
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!({"shredded_ingested": 0, "shredded_unclaimed": 0})
    );
}

#[sqlx::test]
async fn two_servers_running_retention_on_one_database_shred_each_secret_once(db: PgPool) {
    let url = database_url(&db);
    let app = spawn_app(db.clone()).await;
    let seeded = seed(&app, &Keyring::parse(&app.kek).unwrap(), 300).await;
    let server = || {
        let mut cmd = keydrop(&url, &app.kek);
        cmd.env("KEYDROP_SHRED_UNCLAIMED_AFTER", "1s")
            .env("KEYDROP_ALLOW_SHORT_RETENTION", "true")
            .env("KEYDROP_PURGE_INTERVAL", "1s");
        serve(cmd)
    };
    let (one, ..) = server();
    let (two, ..) = server();
    eventually("every secret shredded", || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM secrets WHERE status <> 'shredded'")
                .fetch_one(&db)
                .await
                .unwrap();
        left == 0
    })
    .await;
    stop(one);
    stop(two);
    let per_secret: Vec<(uuid::Uuid, i64, String)> = sqlx::query_as(
        "SELECT secret_id, count(*), min(actor_kind) FROM audit_events
         WHERE action = 'secret.shredded' GROUP BY secret_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(per_secret.len(), seeded.len());
    assert!(per_secret
        .iter()
        .all(|(_, n, kind)| *n == 1 && kind == "system"));
}

/// Holds a row lock on one secret so a reveal of it stays in flight.
async fn lock_secret(db: &PgPool, id: uuid::Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A started `keydrop serve` with an admin token and one stored secret.
async fn server_with_a_secret(db: &PgPool, timeout: &str) -> (Child, String, String, uuid::Uuid) {
    let url = database_url(db);
    let app = spawn_app(db.clone()).await;
    let id = seed(&app, &Keyring::parse(&app.kek).unwrap(), 1).await[0].0;
    let kek = app.kek.clone();
    drop(app);
    let (ok, token, _) =
        run(keydrop(&url, &kek).args(["token", "create", "--name", "ops", "--scope", "admin"]));
    assert!(ok);
    let mut cmd = keydrop(&url, &kek);
    cmd.env("KEYDROP_SHUTDOWN_TIMEOUT", timeout);
    let (child, _, internal, _) = serve(cmd);
    (child, internal, token.trim().to_owned(), id)
}

#[sqlx::test]
async fn sigterm_stops_accepting_but_lets_in_flight_requests_finish(db: PgPool) {
    let (mut child, internal, token, id) = server_with_a_secret(&db, "20s").await;
    let lock = lock_secret(&db, id).await;
    let reveal = tokio::spawn({
        let url = format!("{internal}/api/v1/secrets/{id}/reveal");
        let token = token.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
        }
    });
    eventually("the reveal to wait on the row lock", || async {
        lock_waiters(&db).await >= 1
    })
    .await;
    sigterm(&child);
    let healthz = format!("{internal}/healthz");
    eventually("the listener to stop accepting after SIGTERM", || async {
        reqwest::Client::new().get(&healthz).send().await.is_err()
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "no longer accepting, but still finishing the reveal"
    );

    lock.commit().await.unwrap();
    let resp = reveal.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after the request");
    assert!(status.success());
    assert_eq!(audit_count(&db, "secret.revealed", id).await, 1);
}

#[sqlx::test]
async fn the_shutdown_timeout_bounds_requests_that_never_finish(db: PgPool) {
    let (mut child, internal, token, id) = server_with_a_secret(&db, "1s").await;
    let lock = lock_secret(&db, id).await;
    let reveal = tokio::spawn({
        let url = format!("{internal}/api/v1/secrets/{id}/reveal");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
        }
    });
    eventually("the reveal to wait on the row lock", || async {
        lock_waiters(&db).await >= 1
    })
    .await;
    let signalled = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits at the timeout");
    let took = signalled.elapsed();
    assert!(status.success());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        reveal.await.unwrap().is_err(),
        "the unfinished request was cut off"
    );
    // The server is gone; its statement, queued on our lock, must be
    // cancelled by Postgres (client_connection_check_interval) rather than
    // run and commit once the lock is released.
    eventually(
        "the dead server's statement to stop waiting on the row lock",
        || async { lock_waiters(&db).await == 0 },
    )
    .await;
    lock.commit().await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM secrets WHERE id = $1")
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        (
            audit_count(&db, "secret.revealed", id).await,
            status.as_str()
        ),
        (0, "received"),
        "nothing written: the cut-off reveal never committed"
    );
}

/// A throwaway Postgres cluster of our own, to stop and start at will.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    user: Option<&'static str>,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        // initdb and postgres refuse to run as root.
        let user = (run(Command::new("id").arg("-u")).1.trim() == "0").then_some("postgres");
        let dir = std::env::temp_dir().join(format!("keydrop-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(u) = user {
            assert!(Command::new("chown")
                .arg(u)
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            bin,
            dir,
            port,
            user,
        };
        let data = pg.dir.join("data");
        let (ok, _, err) = run(pg.cmd("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-instructions",
            "-E",
            "UTF8",
            "--no-locale",
        ]));
        assert!(ok, "initdb: {err}");
        use std::io::Write as _;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off"
        )
        .unwrap();
        pg.ctl("start");
        Some(pg)
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut cmd = match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(self.bin.join(tool));
                c
            }
            None => Command::new(self.bin.join(tool)),
        };
        cmd.current_dir("/");
        cmd
    }

    fn ctl(&self, action: &str) {
        let (ok, _, err) = run(self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-m", "fast", action])
            .stdin(Stdio::null()));
        assert!(ok, "pg_ctl {action}: {err}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_postgres_restart_gives_fast_503s_then_the_server_recovers_by_itself() {
    let Some(pg) = PrivatePostgres::start() else {
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let kek = new_kek("outage");
    let (ok, token, err) = run(keydrop(&pg.url(), &kek).arg("migrate"));
    assert!(ok, "{err}{token}");
    let (ok, token, _) = run(
        keydrop(&pg.url(), &kek).args(["token", "create", "--name", "ops", "--scope", "admin"])
    );
    assert!(ok);
    let token = token.trim().to_owned();
    let (child, public, internal, _) = serve(keydrop(&pg.url(), &kek));
    let client = reqwest::Client::new();
    let link: Value = client
        .post(format!("{internal}/api/v1/requests"))
        .bearer_auth(&token)
        .json(&json!({"organization": "Outage Co", "provider": "lever"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_url = link["url"].as_str().unwrap();
    let drop_page = format!("{public}{}", &link_url[link_url.find("/d/").unwrap()..]);
    let secrets = || {
        client
            .get(format!("{internal}/api/v1/secrets"))
            .bearer_auth(&token)
            .send()
    };
    let ready = || client.get(format!("{internal}/readyz")).send();
    assert_eq!(secrets().await.unwrap().status(), StatusCode::OK);
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);

    pg.ctl("stop");
    let started = Instant::now();
    let resp = secrets().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    eprintln!("outage: 503 after {took:?}");
    assert!(took < Duration::from_secs(4), "fails fast, took {took:?}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    let page = client.get(&drop_page).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Temporarily unavailable"));
    let r = ready().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "not_ready");
    let alive = client
        .get(format!("{internal}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), StatusCode::OK, "the process itself is fine");

    pg.ctl("start");
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = secrets().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "outage: recovered {:?} after Postgres was back",
        restarted.elapsed()
    );
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client.get(&drop_page).send().await.unwrap().status(),
        StatusCode::OK
    );
    stop(child);
}

#[sqlx::test]
async fn keydrop_healthcheck_passes_against_a_running_server_and_fails_without_one(db: PgPool) {
    let url = database_url(&db);
    let kek = new_kek("hc");
    let (child, _, internal, _) = serve(keydrop(&url, &kek));
    let addr = internal.trim_start_matches("http://").to_owned();
    let (ok, _, stderr) = run(keydrop(&url, &kek).args(["healthcheck", "--addr", &addr]));
    assert!(ok, "{stderr}");
    let (ok, _, stderr) =
        run(keydrop(&url, &kek).args(["healthcheck", "--addr", &addr, "--path", "/readyz"]));
    assert!(ok, "{stderr}");
    stop(child);
    let (ok, _, stderr) = run(keydrop(&url, &kek).args(["healthcheck", "--addr", &addr]));
    assert!(!ok && stderr.contains("cannot reach"), "{stderr}");
}
