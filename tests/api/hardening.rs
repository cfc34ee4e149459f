//! Issue 11, hardening from an outside review: what the internet can reach,
//! throttles that hold under IPv6 and floods, audit that comes first.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgPool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls `f` until it returns true or `deadline` passes.
async fn wait_until<F, Fut>(deadline: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[sqlx::test]
async fn a_flood_of_public_health_requests_leaves_submissions_succeeding(db: PgPool) {
    let app = spawn_app(db.clone()).await;
    // The readiness queries are made slow (a lock held by another session
    // stands in for a loaded database): answered per request, 40 flooding
    // clients would then hold all 16 pooled connections and submissions wait
    // out the 2 s acquire timeout (503).
    let mut blocker = sqlx::PgConnection::connect_with(&db.connect_options())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE kek_canaries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for i in 0..40 {
        let (stop, flooded) = (stop.clone(), flooded.clone());
        let url = format!(
            "{}/{}",
            app.public,
            if i % 4 == 0 { "healthz" } else { "readyz" }
        );
        flood.push(tokio::spawn(async move {
            let client = reqwest::Client::new(); // keep-alive, like a flood would
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = client.get(&url).send().await {
                    let _ = r.bytes().await;
                    flooded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Let the flood get going before the first submission.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            flooded.load(Ordering::Relaxed) > 200
        })
        .await
    );

    let attempts = 12;
    let mut succeeded = 0;
    let started = Instant::now();
    for _ in 0..attempts {
        let (_, link) = app.create_link("generic").await;
        let resp = app
            .open_and_submit(
                &link,
                &[
                    ("submitter_name", "Jane Admin"),
                    ("submitter_email", "jane@acme.example.com"),
                    ("label", "flood"),
                    ("secret", "s3cret-under-flood"),
                ],
            )
            .await;
        if resp.status() == StatusCode::OK {
            succeeded += 1;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let n = flooded.load(Ordering::Relaxed);
    eprintln!(
        "health flood: {n} public health requests; submissions {succeeded}/{attempts} succeeded ({:.0} %) in {elapsed:?}",
        100.0 * f64::from(succeeded) / f64::from(attempts)
    );
    assert_eq!(
        succeeded, attempts,
        "every submission succeeds beside the flood"
    );

    // The public answer is the cached verdict and tells nothing about keys or schema.
    let resp = app
        .api
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    for leak in ["kek", "migration", "pending", "rows", "test-kek"] {
        assert!(!body.contains(leak), "public /readyz says {leak:?}: {body}");
    }
    // The cached verdict follows the database: with the slow queries it turned
    // not ready; once they are fast again it turns ready within a few refreshes.
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let public = app.public.clone();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let url = format!("{public}/readyz");
            async move {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            }
        })
        .await,
        "public /readyz turns ready again once the database answers"
    );
    let v: Value = reqwest::get(format!("{}/readyz", app.public))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({ "status": "ready" }));
}
