//! Drop links through the internal API.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn a_new_link_defaults_to_seven_days_and_one_use_and_stores_only_a_hash(db: PgPool) {
    let app = spawn_app(db).await;
    let resp = app
        .post("/api/v1/requests", &app.admin, Some(json!({"organization": "Acme", "provider": "greenhouse", "contact_email": "it@acme.com", "note": "Q4 import"})))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["max_uses"], 1);
    assert_eq!(v["status"], "pending");
    assert_eq!(v["created_by"], "test-admin");
    let created: chrono::DateTime<chrono::Utc> = v["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = v["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_hours(), 7 * 24);
    let url = v["url"].as_str().unwrap();
    let token = &url[url.find("/d/").unwrap() + 3..];
    assert!(
        token.starts_with("kdl_") && token.len() == 47,
        "256-bit token"
    );

    let dump: String = sqlx::query_scalar("SELECT row_to_json(r)::text FROM drop_requests r")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        !dump.contains(token) && !dump.contains(&token[4..]),
        "only the hash is stored"
    );

    let list: Value = app
        .get("/api/v1/requests", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("url").is_none() && list["items"][0].get("token").is_none());

    let audit: Value = app
        .get("/api/v1/audit", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["action"], "link.created");
}

#[sqlx::test]
async fn invalid_link_requests_get_clear_json_errors(db: PgPool) {
    let app = spawn_app(db).await;
    let cases = [
        (
            json!({"organization": "A", "provider": "oracle-taleo"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown provider",
        ),
        (
            json!({"organization": "", "provider": "lever"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization",
        ),
        (
            json!({"organization": "A", "provider": "lever", "expires_in": "soon"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "expires_in",
        ),
        (
            json!({"organization": "A", "provider": "lever", "max_uses": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_uses",
        ),
        (
            json!({"organization": "A", "provider": "lever", "contact_email": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contact_email",
        ),
        (
            json!({"organization": 5, "provider": "lever"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization",
        ),
        (
            json!({"provider": "lever"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization",
        ),
        (
            json!({"organization": "A", "provider": "lever", "surprise": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "surprise",
        ),
    ];
    for (body, status, needle) in cases {
        let resp = app
            .post("/api/v1/requests", &app.admin, Some(body.clone()))
            .await;
        assert_eq!(resp.status(), status, "{body}");
        let v: Value = resp.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let resp = app
        .api
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");
    assert_eq!(app.count("drop_requests").await, 0);
}

#[sqlx::test]
async fn revoking_twice_or_an_unknown_link_is_a_clear_error(db: PgPool) {
    let app = spawn_app(db).await;
    let (id, _) = app.create_link("lever").await;
    let first = app
        .delete(&format!("/api/v1/requests/{id}"), &app.admin)
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let v: Value = first.json().await.unwrap();
    assert_eq!(v["status"], "revoked");
    assert_eq!(
        app.delete(&format!("/api/v1/requests/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::CONFLICT
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.delete(&format!("/api/v1/requests/{unknown}"), &app.admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete("/api/v1/requests/not-a-uuid", &app.admin)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn whole_numbers_written_as_decimals_and_null_options_are_read_as_the_contract_says(
    db: PgPool,
) {
    let app = spawn_app(db).await;
    // JSON Schema counts 198.0 as an integer: the server reads it as 198.
    let resp = app
        .post(
            "/api/v1/requests",
            &app.admin,
            Some(
                json!({"organization": "A", "provider": "lever", "max_uses": 198.0,
                        "expires_in": null, "contact_email": null, "note": null}),
            ),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["max_uses"], 198);
    assert_eq!(v["status"], "pending");
    // `null` means the default, as leaving it out does.
    let created = chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_days(), 7);
    // A fraction is still refused, in words.
    let resp = app
        .post(
            "/api/v1/requests",
            &app.admin,
            Some(json!({"organization": "A", "provider": "lever", "max_uses": 2.5})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "max_uses must be a whole number");
}
