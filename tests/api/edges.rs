//! Exact at every edge (issue 19): every API error in the documented shape
//! and words a person can act on, filters that filter or refuse, text that is
//! stored as shown, and a link's history that revoking cannot rewrite.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Asserts `{"error":{"code","message"}}` and returns (code, message).
async fn api_error(resp: reqwest::Response, status: StatusCode) -> (String, String) {
    assert_eq!(resp.status(), status);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: Value = resp.json().await.unwrap();
    let code = v["error"]["code"].as_str().expect("error.code").to_owned();
    let message = v["error"]["message"]
        .as_str()
        .expect("error.message")
        .to_owned();
    assert!(!message.is_empty());
    (code, message)
}

#[sqlx::test]
async fn wrong_methods_and_content_types_answer_405_and_415_in_the_error_shape(db: PgPool) {
    let app = spawn_app(db).await;
    let put = app
        .api
        .put(app.url("/api/v1/secrets"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert!(put.headers().contains_key("allow"));
    let (code, _) = api_error(put, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(code, "method_not_allowed");
    let patch = app
        .api
        .patch(app.url("/api/v1/requests/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    api_error(patch, StatusCode::METHOD_NOT_ALLOWED).await;
    // Outside /api/v1 on the internal listener too.
    let post = app.api.post(app.url("/healthz")).send().await.unwrap();
    api_error(post, StatusCode::METHOD_NOT_ALLOWED).await;
    // On the public listener, the HTML error page.
    let (_, link) = app.create_link("lever").await;
    let put = app.api.put(&link).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(put.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(put.text().await.unwrap().contains("<h1>"));

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = app
            .api
            .post(app.url("/api/v1/requests"))
            .bearer_auth(&app.admin)
            .body(r#"{"organization":"Acme","provider":"lever"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (code, message) = api_error(
            req.send().await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert_eq!(code, "unsupported_media_type");
        assert!(message.contains("application/json"), "{message}");
    }
    // A JSON subtype with parameters is still JSON.
    let ok = app
        .api
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&app.admin)
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"organization":"Acme","provider":"lever"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[sqlx::test]
async fn body_errors_name_the_field_in_words_not_rust_types(db: PgPool) {
    let app = spawn_app(db).await;
    let cases = [
        (
            json!({"organization": "A", "provider": "lever", "max_uses": "three"}),
            "max_uses must be a whole number",
        ),
        (json!([1, 2, 3, 4, 5, 6]), "JSON object"),
        (json!("text"), "JSON object"),
        (json!({"provider": "lever"}), "organization is required"),
        (
            json!({"organization": ["A"], "provider": "lever"}),
            "organization must be text",
        ),
        (
            json!({"organization": "A", "provider": "lever", "surprise": 1}),
            "there is no field \"surprise\"",
        ),
    ];
    for (body, needle) in cases {
        let resp = app
            .post("/api/v1/requests", &app.admin, Some(body.clone()))
            .await;
        let (code, message) = api_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(code, "invalid");
        assert!(message.contains(needle), "{body}: {message}");
        for internal in [
            "i64",
            "i32",
            "struct",
            "CreateBody",
            "elements",
            "line 1",
            "`",
        ] {
            assert!(!message.contains(internal), "{body}: {message}");
        }
    }
    let resp = app
        .api
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(r#"{"organization": "A", "provider": "lever"} trailing"#)
        .send()
        .await
        .unwrap();
    let (code, message) = api_error(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "malformed_json");
    assert!(message.contains("not valid JSON"), "{message}");
    assert_eq!(app.count("drop_requests").await, 0);
}

#[sqlx::test]
async fn control_characters_are_refused_with_4xx_never_a_500(db: PgPool) {
    let app = spawn_app(db).await;
    for (field, value) in [
        ("note", "a\u{0}b"),
        ("note", "colour \u{1b}[31mred\u{1b}[0m"),
        ("note", "ding\u{7}"),
        ("note", "over\rwrite"),
        ("organization", "Acme\u{0}"),
        ("organization", "Acme\u{1b}]0;title\u{7}"),
    ] {
        let mut body = json!({"organization": "Acme", "provider": "lever"});
        body[field] = json!(value);
        let resp = app.post("/api/v1/requests", &app.admin, Some(body)).await;
        let (_, message) = api_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            message.contains(field) && message.contains("control"),
            "{message}"
        );
    }
    assert_eq!(app.count("drop_requests").await, 0);
    // A note may span lines.
    let (id, _) = app
        .create_link_with(
            json!({"organization": "Acme", "provider": "lever", "note": "line one\r\n\tline two"}),
        )
        .await;
    let note: Option<String> =
        sqlx::query_scalar("SELECT note FROM drop_requests WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(note.as_deref(), Some("line one\r\n\tline two"));

    for path in [
        "/api/v1/secrets?organization=a%00b",
        "/api/v1/secrets?provider=lever%00",
        "/api/v1/requests?organization=%00",
        "/api/v1/audit?actor=%00",
        "/api/v1/audit?action=link.%00created",
        "/api/v1/audit?cursor=%1b",
    ] {
        let resp = app.get(path, &app.admin).await;
        let (code, _) = api_error(resp, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_filter", "{path}");
    }
}

#[sqlx::test]
async fn formatting_characters_are_refused_in_organizations_and_names(db: PgPool) {
    let app = spawn_app(db).await;
    for org in ["Ali\u{202e}gnp.exe", "Acme\u{200b}Corp", "\u{2067}Acme"] {
        let resp = app
            .post(
                "/api/v1/requests",
                &app.admin,
                Some(json!({"organization": org, "provider": "generic"})),
            )
            .await;
        let (_, message) = api_error(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            message.contains("organization") && message.contains("formatting"),
            "{message}"
        );
    }
    let (_, link) = app.create_link("generic").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "Ali\u{202e}gnp.exe"),
                ("submitter_email", "ali@example.com"),
                ("label", "prod"),
                ("secret", "s3cr3t"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("invisible formatting"));
    assert_eq!(app.count("secrets").await, 0);
    // Letters of any script are fine.
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "عليّ Zoë 田中"),
                ("submitter_email", "ali@example.com"),
                ("label", "prod"),
                ("secret", "s3cr3t"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Creates `n` links for `provider` and returns their ids, oldest first.
async fn links(app: &TestApp, provider: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(app.create_link(provider).await.0);
    }
    ids
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test]
async fn link_lists_filter_by_status_provider_and_organization_and_honour_limit(db: PgPool) {
    let app = spawn_app(db).await;
    let lever = links(&app, "lever", 4).await;
    let generic = links(&app, "generic", 1).await;
    // One revoked, one used, one expired, the rest pending.
    app.delete(&format!("/api/v1/requests/{}", lever[0]), &app.admin)
        .await;
    sqlx::query("UPDATE drop_requests SET use_count = 1, used_at = now() WHERE id = $1::uuid")
        .bind(&lever[1])
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&lever[2])
        .execute(&app.db)
        .await
        .unwrap();
    let app = &app;
    let list = |q: &'static str| async move {
        let resp = app.get(&format!("/api/v1/requests{q}"), &app.admin).await;
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
        resp.json::<Value>().await.unwrap()
    };
    let mut pending = ids(&list("?status=pending").await);
    pending.sort();
    let mut want = vec![lever[3].clone(), generic[0].clone()];
    want.sort();
    assert_eq!(pending, want);
    assert_eq!(ids(&list("?status=revoked").await), vec![lever[0].clone()]);
    assert_eq!(ids(&list("?status=used").await), vec![lever[1].clone()]);
    assert_eq!(ids(&list("?status=expired").await), vec![lever[2].clone()]);
    for item in list("?status=pending").await["items"].as_array().unwrap() {
        assert_eq!(item["status"], "pending");
    }
    assert_eq!(ids(&list("?provider=generic").await), generic);
    assert_eq!(list("?organization=Nobody").await["items"], json!([]));
    assert_eq!(ids(&list("?limit=2").await).len(), 2);
    assert_eq!(ids(&list("").await).len(), 5);

    for (q, needle) in [
        ("?status=bogus", "pending, used, expired, revoked"),
        ("?provider=bogus", "unknown provider"),
        ("?limit=0", "1 to 1000"),
        ("?limit=1001", "1 to 1000"),
        ("?limit=ten", "1 to 1000"),
        ("?stauts=pending", "there is no field \"stauts\""),
        ("?status=pending&status=used", "more than once"),
    ] {
        let resp = app.get(&format!("/api/v1/requests{q}"), &app.admin).await;
        let (code, message) = api_error(resp, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_filter");
        assert!(message.contains(needle), "{q}: {message}");
    }
}

#[sqlx::test]
async fn secret_and_audit_lists_refuse_unknown_providers_and_out_of_range_limits(db: PgPool) {
    let app = spawn_app(db).await;
    for _ in 0..3 {
        let (_, link) = app.create_link("lever").await;
        let resp = app
            .open_and_submit(
                &link,
                &[
                    ("submitter_name", "A"),
                    ("submitter_email", "a@b.co"),
                    ("api_key", "k-unverified"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let items = |v: Value| v["items"].as_array().unwrap().len();
    let app = &app;
    let get = |q: String| async move {
        let resp = app.get(&q, &app.admin).await;
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
        resp.json::<Value>().await.unwrap()
    };
    assert_eq!(items(get("/api/v1/secrets?limit=2".into()).await), 2);
    assert_eq!(items(get("/api/v1/secrets".into()).await), 3);
    assert_eq!(items(get("/api/v1/secrets?provider=lever".into()).await), 3);
    assert_eq!(items(get("/api/v1/secrets?provider=ashby".into()).await), 0);
    assert_eq!(items(get("/api/v1/audit?limit=1".into()).await), 1);
    let events = app.count("audit_events").await as usize;
    assert!(events > 2);
    assert_eq!(items(get("/api/v1/audit?limit=1000".into()).await), events);

    for q in [
        "/api/v1/secrets?provider=bogus",
        "/api/v1/secrets?status=bogus",
        "/api/v1/secrets?limit=0",
        "/api/v1/secrets?limit=-1",
        "/api/v1/audit?limit=0",
        "/api/v1/audit?limit=-1",
        "/api/v1/audit?limit=5000",
        "/api/v1/audit?limit=1.5",
        "/api/v1/audit?secret=x",
    ] {
        let (code, message) =
            api_error(app.get(q, &app.admin).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_filter", "{q}");
        for internal in ["invalid digit", "i64", "`"] {
            assert!(!message.contains(internal), "{q}: {message}");
        }
    }
}

#[sqlx::test]
async fn revoking_a_used_or_expired_link_is_409_and_keeps_its_history(db: PgPool) {
    let app = spawn_app(db).await;
    let (used, link) = app.create_link("lever").await;
    let receipt = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "k-used"),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let resp = app
        .delete(&format!("/api/v1/requests/{used}"), &app.admin)
        .await;
    let (code, message) = api_error(resp, StatusCode::CONFLICT).await;
    assert_eq!(code, "link_used");
    assert!(message.contains("used"), "{message}");
    let listed = app
        .get("/api/v1/requests?status=used", &app.admin)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(ids(&listed), vec![used.clone()]);
    // The customer who submitted reads that it arrived, not "nothing was submitted":
    // their own browser gets the date and reference, another browser the 410 page.
    let own = app.browser.get(&link).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("We received this on"));
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("already been used") && page.contains("arrived"),
        "{page}"
    );
    assert!(
        !page.to_lowercase().contains("nothing was submitted"),
        "{page}"
    );

    let (expired, _) = app.create_link("lever").await;
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&expired)
        .execute(&app.db)
        .await
        .unwrap();
    let resp = app
        .delete(&format!("/api/v1/requests/{expired}"), &app.admin)
        .await;
    let (code, _) = api_error(resp, StatusCode::CONFLICT).await;
    assert_eq!(code, "link_expired");
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM drop_requests WHERE revoked_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(revoked, 0);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'link.revoked'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited, 0);
}

#[sqlx::test]
async fn a_partly_used_link_can_be_revoked_and_then_says_what_was_received(db: PgPool) {
    let app = spawn_app(db).await;
    let (id, link) = app
        .create_link_with(json!({"organization": "Acme", "provider": "lever", "max_uses": 2}))
        .await;
    let receipt = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "k-first"),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let resp = app
        .delete(&format!("/api/v1/requests/{id}"), &app.admin)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("withdrawn") && page.contains("was received"),
        "{page}"
    );
    assert!(
        !page.to_lowercase().contains("nothing was submitted"),
        "{page}"
    );
}

#[sqlx::test]
async fn the_authorization_scheme_is_case_insensitive(db: PgPool) {
    let app = spawn_app(db).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = app
            .api
            .get(app.url("/api/v1/secrets"))
            .header("authorization", format!("{scheme} {}", app.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
    }
    let resp = app
        .api
        .get(app.url("/api/v1/secrets"))
        .header("authorization", format!("Basic {}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn impossible_lifecycle_moves_are_worded_for_a_person(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let receipt = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "k-life"),
            ],
        )
        .await;
    let id = reference_from(&receipt.text().await.unwrap());
    assert_eq!(app.reveal(&id).await.status(), StatusCode::OK);
    let ingest = format!("/api/v1/secrets/{id}/ingested");
    assert_eq!(
        app.post(&ingest, &app.admin, None).await.status(),
        StatusCode::OK
    );
    let (code, message) = api_error(
        app.post(&ingest, &app.admin, None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "invalid_transition");
    assert_eq!(message, "this secret was already marked ingested");
}

#[sqlx::test]
async fn the_openapi_document_names_exactly_the_catalog_providers_and_link_states(db: PgPool) {
    let app = spawn_app(db).await;
    let spec: Value = app
        .get("/api/v1/openapi.json", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let schemas = &spec["components"]["schemas"];
    let catalog: Vec<&str> = keydrop::providers::PROVIDERS.iter().map(|p| p.id).collect();
    assert_eq!(schemas["ProviderId"]["enum"], json!(catalog));
    assert_eq!(
        schemas["LinkStatus"]["enum"],
        json!(["pending", "used", "expired", "revoked"])
    );
}

/// Reasons of the `secret.rejected` audit events, oldest first.
async fn rejections(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT detail->>'reason' FROM audit_events WHERE action = 'secret.rejected' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[sqlx::test]
async fn malformed_escapes_and_wrong_content_types_are_refused_and_audited(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    let csrf = app.open_form(&link).await;
    let body = format!(
        "csrf_token={csrf}&submitter_name=A&submitter_email=a%40b.co&label=l&secret=100%zz"
    );
    let resp = app
        .browser
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("%25"));
    let resp = app
        .browser
        .post(&link)
        .header("content-type", "text/plain")
        .body(format!("csrf_token={csrf}&secret=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("<h1>"));
    assert_eq!(app.count("secrets").await, 0);
    assert_eq!(rejections(&app).await, ["malformed_form", "content_type"]);
}

#[sqlx::test]
async fn a_form_sent_without_its_cookie_asks_to_allow_cookies(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    // A browser that blocks cookies: it reads the page but never sends the cookie back.
    let page = app
        .api
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&page);
    let resp = app
        .api
        .post(&link)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("submitter_name", "A"),
            ("submitter_email", "a@b.co"),
            ("api_key", "k-no-cookie"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains("allow cookies for this site"), "{page}");
    assert_eq!(app.count("secrets").await, 0);
    assert_eq!(rejections(&app).await, ["csrf"]);
}

#[sqlx::test]
async fn the_generic_page_says_credential_once_and_isolates_the_organization(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("generic").await;
    let page = app
        .browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("credential credential"), "{page}");
    assert!(page.contains("<h1>Share your credential</h1>"), "{page}");
    assert!(page.contains("<bdi>Acme Corp</bdi>"), "{page}");
    assert!(
        page.contains(r#"name="submitter_name" value="" dir="auto""#),
        "{page}"
    );
    let (_, link) = app.create_link("lever").await;
    let page = app
        .browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Share your Lever"), "{page}");
}

#[sqlx::test]
async fn an_oversized_check_again_answers_the_html_error_page(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "k-oversized-recheck"),
            ],
        )
        .await;
    assert!(resp.status().is_redirection() || resp.status().is_success());
    let id: String = sqlx::query_scalar("SELECT id::text FROM secrets")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let resp = app
        .browser
        .post(format!("{}/r/{id}", app.public))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("reference={id}&pad={}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("too much text"));
}
