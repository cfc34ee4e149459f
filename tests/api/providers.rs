//! Every provider against its fake: valid, invalid, deactivated (where the
//! API tells it apart), each missing permission by its UI name, rate limited
//! then verified, and upstream down → unverified.

use crate::fakes::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

type Fields = Vec<(&'static str, &'static str)>;

/// One provider's cases.
struct Case {
    id: &'static str,
    good: Fields,
    /// Wrong secret → refused (422) naming this field.
    bad: Fields,
    bad_field: &'static str,
    /// `denied` name in the fake → the UI label that must be reported.
    missing: &'static [(&'static str, &'static str)],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "greenhouse",
            good: vec![
                ("client_id", GH_CLIENT_ID),
                ("client_secret", GH_CLIENT_SECRET),
            ],
            bad: vec![("client_id", GH_CLIENT_ID), ("client_secret", "nope")],
            bad_field: "client_secret",
            missing: &[
                ("interviews", "Interviews → List interviews"),
                ("candidates", "Candidates → List candidates"),
            ],
        },
        Case {
            id: "greenhouse-legacy",
            good: vec![("api_key", LEGACY_KEY)],
            bad: vec![("api_key", "nope")],
            bad_field: "api_key",
            missing: &[(
                "scheduled_interviews",
                "Scheduled Interviews → GET: List Interviews",
            )],
        },
        Case {
            id: "lever",
            good: vec![("api_key", LEVER_KEY)],
            bad: vec![("api_key", "nope")],
            bad_field: "api_key",
            missing: &[
                ("postings", "Find all postings"),
                ("stages", "Find all stages"),
            ],
        },
        Case {
            id: "ashby",
            good: vec![("api_key", ASHBY_KEY)],
            bad: vec![("api_key", "nope")],
            bad_field: "api_key",
            missing: &[("job.list", "Jobs: Read"), ("offer.list", "Offers: Read")],
        },
        Case {
            id: "bamboohr",
            good: vec![("company_domain", BAMBOO_DOMAIN), ("api_key", BAMBOO_KEY)],
            bad: vec![("company_domain", BAMBOO_DOMAIN), ("api_key", "nope")],
            bad_field: "api_key",
            missing: &[],
        },
        Case {
            id: "workday",
            good: vec![
                ("host", WD_HOST),
                ("tenant", WD_TENANT),
                ("client_id", WD_CLIENT_ID),
                ("client_secret", WD_CLIENT_SECRET),
                ("refresh_token", WD_REFRESH),
            ],
            bad: vec![
                ("host", WD_HOST),
                ("tenant", WD_TENANT),
                ("client_id", WD_CLIENT_ID),
                ("client_secret", WD_CLIENT_SECRET),
                ("refresh_token", "nope"),
            ],
            bad_field: "refresh_token",
            missing: &[("workers", "API client scope (Functional Areas): Staffing")],
        },
        Case {
            id: "hibob",
            good: vec![
                ("service_user_id", HIBOB_ID),
                ("service_user_token", HIBOB_TOKEN),
            ],
            bad: vec![
                ("service_user_id", HIBOB_ID),
                ("service_user_token", "nope"),
            ],
            bad_field: "service_user_token",
            missing: &[(
                "people/search",
                "People's data: Whose data can members access?",
            )],
        },
        Case {
            id: "personio",
            good: vec![
                ("client_id", PERSONIO_ID),
                ("client_secret", PERSONIO_SECRET),
            ],
            bad: vec![("client_id", PERSONIO_ID), ("client_secret", "nope")],
            bad_field: "client_secret",
            missing: &[("persons", "Access rights: Employees → Read")],
        },
        Case {
            id: "workable",
            good: vec![
                ("subdomain", WORKABLE_SUBDOMAIN),
                ("api_token", WORKABLE_TOKEN),
            ],
            bad: vec![("subdomain", WORKABLE_SUBDOMAIN), ("api_token", "nope")],
            bad_field: "api_token",
            missing: &[("r_candidates", "r_candidates")],
        },
        Case {
            id: "smartrecruiters",
            good: vec![("api_key", SR_KEY)],
            bad: vec![("api_key", "nope")],
            bad_field: "api_key",
            missing: &[("users", "Users")],
        },
        Case {
            id: "rippling",
            good: vec![("api_token", RIPPLING_TOKEN)],
            bad: vec![("api_token", "nope")],
            bad_field: "api_token",
            missing: &[
                ("workers", "Worker: workers.read"),
                ("companies", "Company: companies.read"),
            ],
        },
    ]
}

/// Submits `fields` on a fresh link; (status, stored check or Null, html).
async fn submit(app: &TestApp, provider: &str, fields: &Fields) -> (StatusCode, Value, String) {
    let (_, link) = app.create_link(provider).await;
    let mut form = vec![("submitter_name", "J"), ("submitter_email", "j@acme.com")];
    form.extend(fields.iter().copied());
    let resp = app.open_and_submit(&link, &form).await;
    let status = resp.status();
    let html = resp.text().await.unwrap();
    let check = if status == StatusCode::OK {
        let id = reference_from(&html);
        app.get(&format!("/api/v1/secrets/{id}"), &app.admin)
            .await
            .json::<Value>()
            .await
            .unwrap()["check"]
            .clone()
    } else {
        Value::Null
    };
    (status, check, html)
}

#[sqlx::test]
async fn every_provider_reports_valid_invalid_and_each_missing_permission_by_its_ui_name(
    db: PgPool,
) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    let all = cases();
    assert_eq!(
        all.len(),
        keydrop::providers::PROVIDERS.len() - 1,
        "every checked provider has cases"
    );
    for case in all {
        let id = case.id;
        fake.set(|b| b.denied.clear());
        let (status, check, _) = submit(&app, id, &case.good).await;
        assert_eq!(
            (status, &check["status"]),
            (StatusCode::OK, &Value::from("verified")),
            "{id} valid: {check}"
        );

        let (status, _, html) = submit(&app, id, &case.bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id} invalid");
        // The message sits on the field the check named, not guessed from its words.
        let marker = format!("id=\"{}-error\"", case.bad_field);
        assert!(
            html.contains(&marker),
            "{id}: error not on {}: {html}",
            case.bad_field
        );
        assert!(!html.contains("nope"), "{id}: the secret is never echoed");

        for (denied, label) in case.missing {
            fake.set(|b| b.denied = vec![(*denied).to_owned()]);
            let (status, check, html) = submit(&app, id, &case.good).await;
            assert_eq!(
                (status, &check["status"]),
                (StatusCode::OK, &Value::from("missing_permissions")),
                "{id} missing {denied}: {check}"
            );
            let missing: Vec<String> = serde_json::from_value(check["missing"].clone()).unwrap();
            assert!(
                missing.iter().any(|m| m.starts_with(label)),
                "{id}: {missing:?} lacks {label}"
            );
            assert!(
                html.contains(&html_escape(label)),
                "{id}: the receipt names {label}"
            );
            // Keys that cannot be edited get "make a new one", not "add them".
            let editable = keydrop::providers::find(id).unwrap().permissions_editable;
            assert_eq!(
                html.contains("Add them to the same credential"),
                editable,
                "{id}"
            );
            assert_eq!(
                html.contains("cannot add permissions to an existing key"),
                !editable,
                "{id}"
            );
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&#39;")
        .replace('"', "&quot;")
}

#[sqlx::test]
async fn every_provider_is_unverified_when_its_upstream_is_down_and_verified_after_a_rate_limit(
    db: PgPool,
) {
    // No fake: every upstream is a closed loopback port.
    let app = spawn_app(db.clone()).await;
    for case in cases() {
        let (status, check, _) = submit(&app, case.id, &case.good).await;
        assert_eq!(
            (status, &check["status"]),
            (StatusCode::OK, &Value::from("unverified")),
            "{} down",
            case.id
        );
    }
    let kek = app.kek.clone();
    drop(app);
    let fake = Fake::start(Behaviour {
        rate_limit_first: 1,
        ..Default::default()
    })
    .await;
    let mut env = fake.env();
    env.push(("KEYDROP_CHECK_TIMEOUT", "8s".into()));
    let app = TestApp::builder(db)
        .with_kek(&kek)
        .with_env(env)
        .spawn()
        .await;
    for case in cases() {
        let (status, check, _) = submit(&app, case.id, &case.good).await;
        assert_eq!(
            (status, &check["status"]),
            (StatusCode::OK, &Value::from("verified")),
            "{} after 429: {check}",
            case.id
        );
    }
}

#[sqlx::test]
async fn bamboohr_uses_the_field_metadata_with_json_honours_503_and_http_dates_and_reads_its_error_header(
    db: PgPool,
) {
    let date =
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(1));
    let fake = Fake::start(Behaviour {
        rate_limit_first: 1,
        rate_limit_status: Some(503),
        retry_after: Some(date),
        ..Default::default()
    })
    .await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    let good = vec![("company_domain", BAMBOO_DOMAIN), ("api_key", BAMBOO_KEY)];
    let (status, check, _) = submit(&app, "bamboohr", &good).await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("verified")),
        "{check}"
    );
    let requests = fake.requests();
    let probes: Vec<_> = requests
        .iter()
        .filter(|r| r.contains("/api/gateway.php/acme/v1/meta/fields"))
        .collect();
    assert_eq!(probes.len(), 2, "retried once after the 503: {requests:?}");
    assert!(!requests.iter().any(|r| r.contains("directory")));

    // A disabled user's key: 403, not "invalid", with BambooHR's own words.
    let (status, check, _) = submit(
        &app,
        "bamboohr",
        &vec![
            ("company_domain", BAMBOO_DOMAIN),
            ("api_key", BAMBOO_DISABLED_KEY),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check["status"], "unverified");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("You do not have access to this resource"),
        "{check}"
    );
    // An unknown company is never refused as an invalid key.
    let (status, check, _) = submit(
        &app,
        "bamboohr",
        &vec![("company_domain", "nosuchco"), ("api_key", BAMBOO_KEY)],
    )
    .await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("unverified"))
    );
    assert!(
        check["detail"].as_str().unwrap().contains("company domain"),
        "{check}"
    );
    // Invalid key: the header's reason is shown on the key field.
    let (status, _, html) = submit(
        &app,
        "bamboohr",
        &vec![("company_domain", BAMBOO_DOMAIN), ("api_key", "nope")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("Invalid API key") && html.contains("id=\"api_key-error\""),
        "{html}"
    );
    assert!(!html.contains("id=\"company_domain-error\""));
}

#[sqlx::test]
async fn ashby_accepts_a_key_without_api_keys_read_and_refuses_a_deactivated_one(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    // The fake's apiKey.info answers missing_endpoint_permission, as for any
    // key not granted API Keys: Read.
    let (status, check, _) = submit(&app, "ashby", &vec![("api_key", ASHBY_KEY)]).await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("verified")),
        "{check}"
    );
    let (status, _, html) = submit(&app, "ashby", &vec![("api_key", ASHBY_DEACTIVATED_KEY)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("deactivated"), "{html}");
    let headers = fake.seen.headers.lock().unwrap().clone();
    assert!(headers
        .iter()
        .all(|h| h["accept"] == "application/json; version=1"));
}

#[sqlx::test]
async fn greenhouse_token_errors_name_their_real_cause(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    // A malformed client ID: on the client ID field.
    let (status, _, html) = submit(
        &app,
        "greenhouse",
        &vec![
            ("client_id", "notaclient"),
            ("client_secret", GH_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("id=\"client_id-error\"")
            && html.contains("not a complete Greenhouse client ID"),
        "{html}"
    );
    assert!(
        !html.contains("notaclient\" does"),
        "Greenhouse's message quoting the ID is not shown"
    );
    // An unknown user id: not "wrong secret", stored unverified naming the User ID.
    let (status, check, _) = submit(
        &app,
        "greenhouse",
        &vec![
            ("client_id", GH_CLIENT_ID),
            ("client_secret", GH_CLIENT_SECRET),
            ("user_id", "999"),
        ],
    )
    .await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("unverified"))
    );
    assert!(
        check["detail"].as_str().unwrap().contains("User ID"),
        "{check}"
    );
    // A user who is not a Site Admin: every probe 403 → one cause, not sixteen.
    let (status, check, _) = submit(
        &app,
        "greenhouse",
        &vec![
            ("client_id", GH_CLIENT_ID),
            ("client_secret", GH_CLIENT_SECRET),
            ("user_id", GH_NON_ADMIN_USER),
        ],
    )
    .await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("missing_permissions"))
    );
    let missing = check["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{check}");
    assert!(
        missing[0].as_str().unwrap().contains("not a Site Admin"),
        "{check}"
    );
    // A Site Admin's id works.
    let (_, check, _) = submit(
        &app,
        "greenhouse",
        &vec![
            ("client_id", GH_CLIENT_ID),
            ("client_secret", GH_CLIENT_SECRET),
            ("user_id", GH_USER),
        ],
    )
    .await;
    assert_eq!(check["status"], "verified");
}

#[sqlx::test]
async fn greenhouse_v3_counts_a_404_as_undecided_not_as_a_missing_permission(db: PgPool) {
    let fake = Fake::start(Behaviour {
        status: Some(404),
        ..Default::default()
    })
    .await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    let (status, check, _) = submit(
        &app,
        "greenhouse",
        &vec![
            ("client_id", GH_CLIENT_ID),
            ("client_secret", GH_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("unverified")),
        "{check}"
    );
    assert_eq!(check["missing"], serde_json::json!([]));
}

#[sqlx::test]
async fn lever_eu_keys_are_checked_on_the_eu_host_and_a_us_refusal_points_at_the_region(
    db: PgPool,
) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    let (status, check, _) = submit(
        &app,
        "lever",
        &vec![("api_key", LEVER_EU_KEY), ("region", "eu")],
    )
    .await;
    assert_eq!(
        (status, &check["status"]),
        (StatusCode::OK, &Value::from("verified")),
        "{check}"
    );
    let (status, _, html) = submit(&app, "lever", &vec![("api_key", LEVER_EU_KEY)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("choose EU as the region"), "{html}");
    let (status, _, html) = submit(
        &app,
        "lever",
        &vec![("api_key", LEVER_KEY), ("region", "mars")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"region-error\""), "{html}");
}

#[sqlx::test]
async fn hosts_from_the_customer_cannot_point_the_check_elsewhere(db: PgPool) {
    let fake = Fake::start(Behaviour::default()).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    for (provider, fields, field) in [
        (
            "bamboohr",
            vec![("company_domain", "evil.com/x"), ("api_key", BAMBOO_KEY)],
            "company_domain",
        ),
        (
            "workable",
            vec![
                ("subdomain", "acme.evil.com"),
                ("api_token", WORKABLE_TOKEN),
            ],
            "subdomain",
        ),
        (
            "workday",
            vec![
                ("host", "attacker.example"),
                ("tenant", WD_TENANT),
                ("client_id", WD_CLIENT_ID),
                ("client_secret", WD_CLIENT_SECRET),
                ("refresh_token", WD_REFRESH),
            ],
            "host",
        ),
    ] {
        let before = fake.requests().len();
        let (status, _, html) = submit(&app, provider, &fields).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{provider}");
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{provider}: {html}"
        );
        assert_eq!(
            fake.requests().len(),
            before,
            "{provider}: nothing was sent"
        );
    }
}
