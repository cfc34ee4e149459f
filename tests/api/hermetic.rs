//! The suite never leaves the machine: every configuration a test builds
//! points each provider upstream at a local fake or a closed loopback port,
//! and a configuration naming any other host fails the test that built it.

use crate::binary::{assert_command_loopback_only, keydrop};
use crate::fakes::{Behaviour, Fake};
use crate::helpers::*;
use keydrop::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};

#[test]
fn every_provider_upstream_in_the_default_test_configuration_is_a_closed_loopback_port() {
    let config = test_config(&[]);
    let upstreams = config.upstreams.all();
    assert!(upstreams.len() >= 5, "{upstreams:?}");
    for (var, url) in upstreams {
        let url = url.unwrap_or_else(|| panic!("{var} is left at the customer's production host"));
        assert_eq!(url.as_str(), format!("{CLOSED_UPSTREAM}/"), "{var}");
    }
}

#[test]
fn a_test_configuration_naming_a_provider_host_fails_the_test() {
    let named = std::panic::catch_unwind(|| {
        test_config(&[("KEYDROP_LEVER_BASE_URL", "https://api.lever.co")])
    });
    assert!(named.is_err(), "a real provider host must be refused");
    let webhook = std::panic::catch_unwind(|| {
        test_config(&[("KEYDROP_WEBHOOK_URL", "https://hooks.example.com/in")])
    });
    assert!(webhook.is_err(), "any host beyond loopback must be refused");
    // A name that only resolves to loopback still needs a lookup: refused too.
    assert!(names_remote_host("http://localhost:8080"));
    assert!(!names_remote_host("http://127.0.0.1:8080/x"));
    assert!(!names_remote_host("http://[::1]:8080"));
    assert!(!names_remote_host("127.0.0.1:0"));
    assert!(names_remote_host("203.0.113.9:443"));
    assert!(!names_remote_host("30/min"));
}

#[test]
fn the_production_defaults_would_be_caught_by_the_guard() {
    // Without the test overrides, every upstream is a real provider host; the
    // guard must see that, or it would not protect anything.
    let config = Config::from_lookup(&|k| (k == "DATABASE_URL").then(|| "x".to_owned())).unwrap();
    let remote = std::panic::catch_unwind(|| assert_config_loopback_only(&config));
    assert!(remote.is_err());
    for (var, url) in config.upstreams.all() {
        // None: the customer's own production host (BambooHR, Workday, Workable).
        assert!(
            url.is_none_or(|u| names_remote_host(u.as_str())),
            "{var} default is {url:?}"
        );
    }
}

#[test]
fn the_binary_is_started_with_every_upstream_on_loopback() {
    let cmd = keydrop("postgres://postgres@127.0.0.1:1/x", "k=unused");
    assert_command_loopback_only(&cmd);
    let envs: Vec<String> = cmd
        .get_envs()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    for (var, _) in closed_upstreams() {
        assert!(
            envs.iter().any(|e| e == var),
            "{var} is not set for the binary"
        );
    }
    let mut outside = keydrop("postgres://postgres@127.0.0.1:1/x", "k=unused");
    outside.env("KEYDROP_ASHBY_BASE_URL", "https://api.ashbyhq.com");
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_command_loopback_only(&outside)
    }));
    assert!(refused.is_err());
}

#[tokio::test]
async fn the_fake_points_every_upstream_at_loopback() {
    let fake = Fake::start(Behaviour::default()).await;
    let env = fake.env();
    assert_loopback_only("fake", env.iter().map(|(k, v)| (*k, v.as_str())));
    for (var, _) in closed_upstreams() {
        assert!(
            env.iter().any(|(k, _)| *k == var),
            "the fake does not cover {var}"
        );
    }
}

#[sqlx::test]
async fn a_credential_submitted_without_a_fake_is_unverified_at_once_not_sent_anywhere(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let started = Instant::now();
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Jane"),
                ("submitter_email", "jane@acme.com"),
                ("api_key", "lever-key-never-sent-1234"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    let id = reference_from(&html);
    let check: Value = app
        .get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["check"]["status"], "unverified", "{check}");
    // A refused loopback connection, not a DNS lookup or a timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
}
