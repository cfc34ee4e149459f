//! Staff tokens and scopes on the internal API; the public listener never serves it.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn missing_wrong_expired_and_revoked_tokens_get_401(db: PgPool) {
    let app = spawn_app(db).await;
    let resp = app
        .api
        .get(app.url("/api/v1/secrets"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let wrong = format!("kds_{}", "B".repeat(43));
    assert_eq!(
        app.get("/api/v1/secrets", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/secrets", "garbage").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let basic = app
        .api
        .get(app.url("/api/v1/secrets"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    let expiring = create_token(&app.db, "soon", "read").await;
    assert_eq!(
        app.get("/api/v1/secrets", &expiring).await.status(),
        StatusCode::OK
    );
    sqlx::query(
        "UPDATE staff_tokens SET expires_at = now() - interval '1 second' WHERE name = 'soon'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(
        app.get("/api/v1/secrets", &expiring).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let revoked = create_token(&app.db, "gone", "admin").await;
    keydrop::store::tokens::revoke_by_name(&app.db, "gone")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.get("/api/v1/secrets", &revoked).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Presented bearer tokens that failed are audited (wrong, malformed, expired, revoked);
    // requests without a bearer token are not token uses.
    let failures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'token.rejected'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(failures, 4);
}

#[sqlx::test]
async fn each_scope_allows_its_endpoints_and_nothing_more(db: PgPool) {
    let app = spawn_app(db).await;
    let (_, link) = app.create_link("lever").await;
    let resp = app
        .open_and_submit(
            &link,
            &[
                ("submitter_name", "A"),
                ("submitter_email", "a@b.co"),
                ("api_key", "key-1"),
            ],
        )
        .await;
    let id = reference_from(&resp.text().await.unwrap());

    let read = create_token(&app.db, "reader", "read").await;
    let request = create_token(&app.db, "am", "request").await;
    let reveal = create_token(&app.db, "ingest", "reveal").await;
    let new_link = json!({"organization": "X", "provider": "lever"});

    assert_eq!(
        app.get("/api/v1/secrets", &read).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{id}"), &read)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/audit", &read).await.status(),
        StatusCode::OK
    );
    let denied = app
        .post(&format!("/api/v1/secrets/{id}/reveal"), &read, None)
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        app.post("/api/v1/requests", &read, Some(new_link.clone()))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.post("/api/v1/requests", &request, Some(new_link.clone()))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.get("/api/v1/requests", &request).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/secrets", &request).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&format!("/api/v1/secrets/{id}/reveal"), &request, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.get("/api/v1/secrets", &reveal).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post(&format!("/api/v1/secrets/{id}/reveal"), &reveal, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post(&format!("/api/v1/secrets/{id}/ingested"), &reveal, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post("/api/v1/requests", &reveal, Some(new_link))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/api/v1/secrets/{id}"), &reveal)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/api/v1/secrets/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn the_internal_api_is_not_served_on_the_public_listener(db: PgPool) {
    let app = spawn_app(db).await;
    for path in ["/api/v1/secrets", "/api/v1/requests", "/api/v1/audit"] {
        let resp = app
            .api
            .get(format!("{}{path}", app.public))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = app
        .api
        .post(format!("{}/api/v1/requests", app.public))
        .bearer_auth(&app.admin)
        .json(&json!({"organization": "X", "provider": "lever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // And the drop pages are not on the internal listener.
    let (_, link) = app.create_link("lever").await;
    let internal_link = link.replace(&app.public, &app.internal);
    assert_eq!(
        app.api.get(internal_link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn health_and_readiness_answer_on_both_listeners(db: PgPool) {
    let app = spawn_app(db).await;
    for base in [&app.public, &app.internal] {
        let h: Value = app
            .api
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(h["status"], "ok");
        let resp = app.api.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let r: Value = resp.json().await.unwrap();
        assert_eq!(r["status"], "ready");
        if base == &app.internal {
            assert_eq!(r["database"], "ok");
            assert_eq!(r["keks"]["active"], "test-kek");
        } else {
            // The internet learns ready or not, nothing about keys or schema.
            assert_eq!(r, serde_json::json!({ "status": "ready" }));
        }
    }
}

#[sqlx::test]
async fn the_openapi_document_lists_every_operation_and_each_one_exists(db: PgPool) {
    let app = spawn_app(db).await;
    let resp = app
        .api
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let spec: Value = resp.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, ops) in paths {
        if path.ends_with("openapi.json") {
            continue;
        }
        let url = app.url(&path.replace("{id}", &uuid::Uuid::new_v4().to_string()));
        for method in ops.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Without a token, an existing operation answers 401 (a missing one 404 or 405).
            let status = app
                .api
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            operations += 1;
        }
    }
    assert_eq!(
        operations, 11,
        "every operation of the contract is described"
    );
    // And it is not served on the public listener.
    let public = app
        .api
        .get(format!("{}/api/v1/openapi.json", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
}
