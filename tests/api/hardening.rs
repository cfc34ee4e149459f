//! Issue 11, hardening from an outside review: what the internet can reach,
//! throttles that hold under IPv6 and floods, audit that comes first.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgPool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    eventually("the flood to get going", || async {
        flooded.load(Ordering::Relaxed) > 200
    })
    .await;

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
    eventually(
        "public /readyz turns ready again once the database answers",
        || {
            let url = format!("{public}/readyz");
            async move {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            }
        },
    )
    .await;
    let v: Value = reqwest::get(format!("{}/readyz", app.public))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({ "status": "ready" }));
}

/// Resident memory of this test process in KiB (nextest runs each test in its own process).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_million_distinct_client_addresses_keep_the_throttles_bounded() {
    use keydrop::http::client_ip::{IpNet, ProxyConfig};
    use keydrop::http::throttle::{FailureThrottle, OncePerWindow, MAX_TRACKED};
    let proxies = ProxyConfig {
        trusted: vec![IpNet::parse("10.0.0.0/8").unwrap()],
        ..Default::default()
    };
    let limit = keydrop::config::RateLimit::parse("20/min").unwrap();
    let failures = FailureThrottle::new(limit, proxies.ipv6_prefix);
    let once = OncePerWindow::new(Duration::from_secs(60), proxies.ipv6_prefix);
    let peer: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let before = rss_kib();
    let started = Instant::now();
    let mut headers = reqwest::header::HeaderMap::new();
    let mut max_tracked = 0;
    for i in 0u32..1_000_000 {
        // Every address distinct: half IPv4 (one budget each), half IPv6 in
        // 7000 /64 networks (one budget per network).
        let addr = if i % 2 == 0 {
            std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string()
        } else {
            format!(
                "2001:db8:{:x}:{:x}::{:x}:{:x}",
                i % 1000,
                (i / 1000) % 7,
                i >> 16,
                i & 0xffff
            )
        };
        headers.insert(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_str(&format!("{addr}, 10.0.0.9")).unwrap(),
        );
        let client = proxies.client_ip(peer, &headers);
        assert_ne!(client, peer);
        if failures.blocked(client).is_none() {
            failures.failed(client);
        }
        once.first(client);
        if i % 50_000 == 0 {
            max_tracked = max_tracked.max(failures.tracked() + once.tracked());
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) as f64 / 1024.0;
    max_tracked = max_tracked.max(failures.tracked() + once.tracked());
    eprintln!(
        "address flood: 1,000,000 distinct addresses in {:?}; at most {max_tracked} clients tracked; resident memory grew {grown_mib:.1} MiB",
        started.elapsed()
    );
    // Two tables (budgets + blocks) in the throttle, one in the window.
    assert!(max_tracked <= 3 * MAX_TRACKED + 1000, "{max_tracked}");
    assert!(grown_mib < 64.0, "resident memory grew {grown_mib:.1} MiB");
    // Still per /64 after the flood: twenty distinct addresses in one network
    // spend its budget, a fresh address there is blocked, the next network is not.
    for n in 1..=20u32 {
        let ip: std::net::IpAddr = format!("2001:db8:ffff:1::{n:x}").parse().unwrap();
        assert!(
            failures.failed(ip).is_none(),
            "failure {n} is within the budget"
        );
    }
    let spent: std::net::IpAddr = "2001:db8:ffff:1:dead:beef:0:1".parse().unwrap();
    assert!(
        failures.failed(spent).is_some(),
        "the /64's budget is spent"
    );
    assert!(failures
        .blocked("2001:db8:ffff:1::abcd".parse().unwrap())
        .is_some());
    assert!(failures
        .blocked("2001:db8:ffff:2::1".parse().unwrap())
        .is_none());
    failures.prune();
    once.prune();
}

#[sqlx::test]
async fn the_drop_page_limit_holds_per_ipv6_64_behind_a_trusted_proxy(db: PgPool) {
    let app = TestApp::builder(db)
        .with_env([
            ("KEYDROP_RATE_LIMIT", "3/min"),
            ("KEYDROP_TRUSTED_PROXIES", "127.0.0.1"),
        ])
        .spawn()
        .await;
    let page = format!("{}/d/kdl_{}", app.public, "A".repeat(43));
    let get = |from: String| {
        let page = page.clone();
        let api = app.api.clone();
        async move {
            api.get(&page)
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Three fresh addresses in one /64 spend its budget; the fourth is refused.
    for n in 1..=3 {
        assert_ne!(
            get(format!("2001:db8:1:2::{n}")).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        get("2001:db8:1:2:ffff:eeee:dddd:cccc".into()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "another address in the same /64 shares the budget"
    );
    // The next /64 has a budget of its own.
    assert_ne!(
        get("2001:db8:1:3::1".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test]
async fn the_internal_listener_refuses_foreign_host_names_and_metrics_can_require_a_token(
    db: PgPool,
) {
    let app = TestApp::builder(db)
        .with_env([("KEYDROP_METRICS_TOKEN", "metrics-token-for-tests")])
        // The default list with KEYDROP_INTERNAL_URL set (built here: the test
        // configuration refuses URLs beyond loopback, even ones never called).
        .with_config(|c| {
            let url = url::Url::parse("https://keydrop.corp.example").unwrap();
            c.internal_hosts = keydrop::http::internal_guard::InternalHosts::default_for(
                c.internal_addr,
                Some(&url),
            );
        })
        .spawn()
        .await;
    let port = app.internal.rsplit(':').next().unwrap().to_owned();
    let get = |path: &str, host: String, token: Option<&str>| {
        let mut req = app.api.get(app.url(path)).header("host", host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // DNS rebinding: a page on evil.example re-pointed at the internal address.
    for path in ["/metrics", "/readyz", "/healthz", "/api/v1/secrets"] {
        let resp = get(
            path,
            format!("evil.example:{port}"),
            Some("metrics-token-for-tests"),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unknown_host");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "keydrop.corp.example".to_owned(),
    ] {
        let resp = get("/readyz", host.clone(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{host}");
    }
    // /metrics wants its token; the rest of the listener does not.
    let local = format!("localhost:{port}");
    let resp = get("/metrics", local.clone(), None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = get("/metrics", local.clone(), Some("wrong")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = get("/metrics", local, Some("metrics-token-for-tests"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("keydrop_http_requests_total"));
    // The public listener knows nothing of this (it serves any host name).
    let resp = app
        .api
        .get(format!("{}/healthz", app.public))
        .header("host", "drop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[sqlx::test]
async fn a_slack_webhook_url_is_never_stored_in_clear(db: PgPool) {
    // A local stand-in for Slack: the path is the credential.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/services/T0KEYDROP/B0KEYDROP/SlackPathSecret42",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let receiver = axum::Router::new().route(
        "/services/T0KEYDROP/B0KEYDROP/SlackPathSecret42",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let app = TestApp::builder(db.clone())
        .with_env([
            ("KEYDROP_WEBHOOK_URL", hook.as_str()),
            ("KEYDROP_WEBHOOK_FORMAT", "slack"),
        ])
        .with_config(|c| c.webhooks.poll = Duration::from_millis(50))
        .spawn()
        .await;
    let (_, link) = app.create_link("generic").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane Admin"),
                ("submitter_email", "jane@acme.example.com"),
                ("label", "hook"),
                ("secret", "s3cret-for-the-webhook-test"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    eventually("the Slack stand-in got the notification", || async {
        hits.load(Ordering::Relaxed) >= 1
    })
    .await;
    let delivered: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT endpoint, delivered_at FROM webhook_deliveries")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(!delivered.is_empty());
    for (endpoint, _) in &delivered {
        assert!(endpoint.starts_with("h1:"), "{endpoint}");
        for part in ["SlackPathSecret42", "services", "127.0.0.1", "://"] {
            assert!(!endpoint.contains(part), "{endpoint} holds {part}");
        }
    }
    eventually(
        "deliveries are recorded as delivered against the hashed endpoint",
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL",
            )
            .fetch_one(&db)
            .await
            .unwrap()
                == 0
        },
    )
    .await;
    // And the schema refuses a URL there, whatever code tries.
    let msg: uuid::Uuid = sqlx::query_scalar("SELECT message_id FROM webhook_deliveries LIMIT 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let e = sqlx::query("INSERT INTO webhook_deliveries (message_id, endpoint) VALUES ($1, $2)")
        .bind(msg)
        .bind(&hook)
        .execute(&db)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("webhook_deliveries_endpoint_is_no_url"),
        "{e}"
    );
}

#[sqlx::test]
async fn parallel_public_rechecks_make_at_most_the_allowed_provider_calls_and_each_is_audited_first(
    db: PgPool,
) {
    use crate::fakes::{Behaviour, Fake, GH_CLIENT_ID, GH_CLIENT_SECRET};
    use keydrop::crypto::Keyring;
    use keydrop::service::checks::{recheck, recheck_within, RecheckError};
    use keydrop::store::audit::Actor;
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db.clone()).with_fake(&fake).spawn().await;
    let before_submit = fake.requests().len();
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
    assert_eq!(resp.status(), StatusCode::OK);
    let id: uuid::Uuid = reference_from(&resp.text().await.unwrap()).parse().unwrap();
    let per_check = fake.requests().len() - before_submit;
    assert!(per_check > 0);

    let fake_env = fake.env();
    let env: Vec<(&str, &str)> = fake_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = test_config(&env);
    let metrics = keydrop::metrics::Metrics::new();
    let checker = keydrop::providers::live::Checker::new(
        config.upstreams.clone(),
        Duration::from_secs(10),
        Vec::new(),
        metrics.clone(),
    )
    .unwrap();
    let ring = Arc::new(keydrop::kms::Keys::local(Arc::new(
        Keyring::parse(&app.kek).unwrap(),
    )));
    let limit = 3;
    let before = fake.requests().len();
    let mut posts = Vec::new();
    for _ in 0..12 {
        let (db, ring, checker) = (db.clone(), ring.clone(), checker.clone());
        posts.push(tokio::spawn(async move {
            let actor = Actor::public(Some("192.0.2.10".into()));
            recheck_within(&db, &ring, &checker, &actor, id, limit)
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut ran = 0;
    for p in posts {
        ran += i64::from(p.await.unwrap());
    }
    assert_eq!(ran, limit, "exactly the allowed number of re-checks ran");
    assert_eq!(
        sample(
            &metrics.encode(),
            r#"keydrop_check_outcomes_total{provider="greenhouse",status="verified"}"#
        ),
        limit as f64,
        "the checker counted each check it ran"
    );
    assert_eq!(
        fake.requests().len() - before,
        per_check * limit as usize,
        "the provider saw only the allowed checks"
    );
    let count = |action: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM audit_events WHERE secret_id = $1 AND action = $2 AND actor_kind = 'public'",
            )
            .bind(id)
            .bind(action)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(count("check.run").await, limit);
    assert_eq!(count("check.completed").await, limit);

    // check.run is written before the decryption: a ring without the key
    // cannot decrypt, yet the attempt is on record.
    let other = keydrop::kms::Keys::local(Arc::new(
        Keyring::parse(&new_kek("some-other-kek")).unwrap(),
    ));
    let staff = Actor::cli();
    let e = recheck(&db, &other, &checker, &staff, id)
        .await
        .unwrap_err();
    assert!(matches!(e, RecheckError::KekUnavailable(_)), "{e:?}");
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE secret_id = $1 AND action = 'check.run' AND actor_kind <> 'public'",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(runs, 1, "the attempt that never decrypted is audited");
}

#[sqlx::test]
async fn every_rotation_batch_commits_with_its_own_audit_event(db: PgPool) {
    use crate::ops_support::seed;
    use keydrop::crypto::Keyring;
    use keydrop::ops::rotate::{self, Options};
    let a = new_kek("kek-a");
    let b = new_kek("kek-b");
    let app = TestApp::builder(db.clone()).with_kek(&a).spawn().await;
    seed(&app, &Keyring::parse(&a).unwrap(), 5).await;
    let both = Keyring::parse(&format!("{b},{a}")).unwrap();
    // Stopped after two batches, as a killed run would be: what committed is on record.
    let summary = rotate::rotate(
        &db,
        &both,
        &keydrop::store::audit::Actor::cli(),
        Options {
            batch: 2,
            max_batches: Some(2),
            workers: 1,
        },
        &AtomicBool::new(false),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.rewrapped, 4);
    let batches: Vec<Value> = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = 'kek.rewrapped' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(batches.len(), 2, "{batches:?}");
    for batch in &batches {
        assert_eq!(batch["to"], "kek-b");
        assert_eq!(batch["rows"], 2);
        assert_eq!(batch["from"]["kek-a"], 2);
    }
    // Rows now under kek-b and rows the batch events account for agree.
    let under_b: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets WHERE kek_id = 'kek-b'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(under_b, 4);
}

#[sqlx::test]
async fn one_client_address_cannot_hold_more_than_its_connection_cap(db: PgPool) {
    use tokio::io::AsyncReadExt;
    let app = TestApp::builder(db)
        .with_env([("KEYDROP_MAX_CONNECTIONS_PER_CLIENT", "5")])
        .spawn()
        .await;
    let addr: std::net::SocketAddr = app.public.trim_start_matches("http://").parse().unwrap();
    let connect_from = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(std::net::SocketAddr::new(ip, 0)).unwrap();
            socket.connect(addr).await.unwrap()
        }
    };
    // Five idle connections from 127.0.0.1 (the server waits for their heads).
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from("127.0.0.1").await);
    }
    // Until the server accepted all five, a sixth could still slip in: wait for
    // them to count by retrying until one is refused.
    let mut refused = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !refused {
        let mut extra = connect_from("127.0.0.1").await;
        let mut buf = [0u8; 1];
        // Closed by the server at once: EOF (or a reset) well before the header deadline.
        refused = matches!(
            tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        );
    }
    assert!(
        refused,
        "a sixth connection from the same address is closed"
    );
    // Another client address is served meanwhile.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let resp = other
        .get(format!("{}/healthz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Once the first client lets go, it is served again.
    drop(held);
    let public = app.public.clone();
    eventually("the first client's slot to be freed", || {
        let url = format!("{public}/healthz");
        async move {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
}

#[sqlx::test]
async fn staff_tokens_expire_in_90_days_unless_never_is_said(db: PgPool) {
    use crate::binary::{database_url, keydrop, run};
    let url = database_url(&db);
    let keks = new_kek("tokkek");
    let (ok, _, err) = run(keydrop(&url, &keks).args(["migrate"]));
    assert!(ok, "{err}");
    let (ok, _, err) =
        run(keydrop(&url, &keks).args(["token", "create", "--name", "default", "--scope", "read"]));
    assert!(ok, "{err}");
    let (ok, _, err) = run(keydrop(&url, &keks).args([
        "token",
        "create",
        "--name",
        "forever",
        "--scope",
        "read",
        "--expires-in",
        "never",
    ]));
    assert!(ok, "{err}");
    let days = |name: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, Option<f64>>(
                "SELECT extract(epoch FROM expires_at - created_at)::float8 / 86400 FROM staff_tokens WHERE name = $1",
            )
            .bind(name)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let d = days("default").await.expect("a default token expires");
    assert!((89.9..90.1).contains(&d), "{d}");
    assert_eq!(days("forever").await, None);
}

#[sqlx::test]
async fn a_client_request_id_is_echoed_only_when_sane(db: PgPool) {
    let app = spawn_app(db).await;
    let echo = |id: &'static str| {
        let url = format!("{}/healthz", app.public);
        let api = app.api.clone();
        async move {
            let resp = api
                .get(url)
                .header("x-request-id", id)
                .send()
                .await
                .unwrap();
            resp.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(echo("trace-123_a.b").await, "trace-123_a.b");
    for bad in ["<script>alert(1)</script>", "has space", "semi;colon"] {
        let got = echo(bad).await;
        assert_ne!(got, bad);
        assert!(
            uuid::Uuid::parse_str(&got).is_ok(),
            "a fresh id replaces {bad:?}: {got}"
        );
    }
    let long: &'static str = Box::leak("x".repeat(65).into_boxed_str());
    assert!(uuid::Uuid::parse_str(&echo(long).await).is_ok());
}
