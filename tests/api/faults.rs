//! Bad luck: a killed server, a read-only or exhausted database.

use crate::binary::{database_url, keydrop, serve};
use crate::helpers::*;
use keydrop::config::Config;
use keydrop::crypto::Keyring;
use keydrop::startup::Application;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[sqlx::test]
async fn sigkill_during_a_burst_of_submissions_loses_no_receipted_secret_and_leaves_no_partial_row(
    db: PgPool,
) {
    let url = database_url(&db);
    let keks = new_kek("crash");
    let (ok, token, _) = crate::binary::run(
        keydrop(&url, &keks).args(["token", "create", "--name", "ops", "--scope", "admin"]),
    );
    assert!(ok);
    let token = token.trim().to_owned();
    let (child, public, internal, _logs) = serve(keydrop(&url, &keks));
    let pid = child.id();
    let api = reqwest::Client::new();
    let created: Value = api
        .post(format!("{internal}/api/v1/requests"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"organization": "Crash Co", "provider": "generic", "max_uses": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let u = created["url"].as_str().unwrap();
    let link = format!("{public}{}", &u[u.find("/d/").unwrap()..]);

    // 8 clients submitting as fast as they can; the server is killed under
    // them once some receipts are out (counted as they arrive).
    let receipts_out = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let link = link.clone();
        let receipts_out = receipts_out.clone();
        clients.push(tokio::spawn(async move {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let Ok(page) = browser.get(&link).send().await else {
                return Vec::new();
            };
            let csrf = csrf_from(&page.text().await.unwrap());
            let mut receipts = Vec::new();
            for i in 0..200 {
                let secret = format!("crash-secret-{c}-{i}");
                let form = [
                    ("csrf_token", csrf.as_str()),
                    ("submitter_name", "C"),
                    ("submitter_email", "c@example.com"),
                    ("label", "L"),
                    ("secret", secret.as_str()),
                ];
                match browser.post(&link).form(&form).send().await {
                    Ok(r) if r.status() == StatusCode::OK => match r.text().await {
                        Ok(html) => {
                            receipts.push((reference_from(&html), secret));
                            receipts_out.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(_) => break,
                    },
                    _ => break,
                }
            }
            receipts
        }));
    }
    eventually("the first receipts of the burst", || {
        std::future::ready(receipts_out.load(std::sync::atomic::Ordering::SeqCst) >= 20)
    })
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let mut receipted = Vec::new();
    for c in clients {
        receipted.extend(c.await.unwrap());
    }
    let mut child = child;
    let _ = child.wait();
    assert!(
        receipted.len() >= 20 && receipted.len() < 1000,
        "the kill came during the burst (the link takes 1000): {} receipts",
        receipted.len()
    );

    // Restart on the same database: every receipted secret reveals, exactly.
    let (child, _, internal, _logs) = serve(keydrop(&url, &keks));
    for (id, secret) in &receipted {
        let v: Value = api
            .post(format!("{internal}/api/v1/secrets/{id}/reveal"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["fields"]["secret"], secret.as_str(), "{id}");
    }
    crate::binary::stop(child);

    // No partial rows: every secret has its ciphertext and its audit event, and
    // the link's use count equals the secrets stored through it.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM secrets s WHERE s.payload IS NULL
            OR NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.secret_id = s.id AND a.action = 'secret.submitted')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    let (uses, stored): (i32, i64) = sqlx::query_as(
        "SELECT r.use_count, (SELECT count(*) FROM secrets s WHERE s.request_id = r.id) FROM drop_requests r",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(i64::from(uses), stored);
    assert!(stored >= receipted.len() as i64);
}

#[sqlx::test]
async fn a_read_only_database_answers_clear_503s_and_stores_nothing(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    let (_, link) = app.create_link("generic").await;
    let csrf = app.open_form(&link).await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" SET default_transaction_read_only = on"
    ))
    .execute(&db)
    .await
    .unwrap();
    // Drop every other connection so the app's pool reconnects, read-only. Termination is
    // asynchronous: wait until only the old (writable) sessions are gone.
    let mut me = db.acquire().await.unwrap();
    let my_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *me)
        .await
        .unwrap();
    let old: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1",
    )
    .bind(my_pid)
    .fetch_all(&mut *me)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p")
        .bind(&old)
        .execute(&mut *me)
        .await
        .unwrap();
    for _ in 0..100 {
        let alive: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&old)
                .fetch_one(&mut *me)
                .await
                .unwrap();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // This session predates the setting too: close it rather than hand it back to the
    // pool the app shares, where it would serve a writable connection.
    sqlx::Connection::close(me.detach()).await.unwrap();

    let resp = app
        .submit(
            &link,
            &[
                ("csrf_token", &csrf),
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("label", "l"),
                ("secret", "read-only-secret"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Nothing was stored") && !html.contains("read-only-secret"));
    let resp = app
        .post(
            "/api/v1/requests",
            &app.admin,
            Some(serde_json::json!({"organization": "X", "provider": "lever"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable");

    let mut conn = db.acquire().await.unwrap();
    sqlx::query("SET default_transaction_read_only = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" RESET default_transaction_read_only"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    assert_eq!(app.count("secrets").await, 0);
}

#[sqlx::test]
async fn an_exhausted_connection_pool_answers_503_quickly_instead_of_hanging(db: PgPool) {
    let small = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let kek = new_kek("pool");
    let config: Config = test_config(&[]);
    let app = Application::build(config, Keyring::parse(&kek).unwrap(), small.clone())
        .await
        .unwrap();
    let internal = format!("http://{}", app.internal_addr());
    let public = format!("http://{}", app.public_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let token = create_token(&db, "pool-admin", "admin").await;

    let _held = (
        small.acquire().await.unwrap(),
        small.acquire().await.unwrap(),
    );
    let api = reqwest::Client::new();
    let started = Instant::now();
    let resp = api
        .get(format!("{internal}/api/v1/secrets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    let page = api
        .get(format!("{public}/d/kdl_{}", "A".repeat(43)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let ready = api.get(format!("{internal}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
