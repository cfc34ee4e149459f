//! A reason on an API reveal or shred (`{"reason": …}`): recorded in the
//! audit event as the console records one, read by the same rule, and
//! optional: no body works exactly as before.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn one_secret(app: &TestApp) -> String {
    let (_, link) = app.create_link("greenhouse").await;
    reference_from(
        &app.submit_greenhouse(&link, "reason-secret-of-24-chars")
            .await
            .text()
            .await
            .unwrap(),
    )
}

/// The `detail` of every `action` event of secret `id`, oldest first.
async fn details(app: &TestApp, action: &str, id: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE action = $1 AND secret_id = $2::uuid ORDER BY id",
    )
    .bind(action)
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .api
        .request(method, app.url(path))
        .bearer_auth(&app.admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[sqlx::test]
async fn an_api_reveal_and_shred_record_their_reason_trimmed_in_the_audit_event(db: PgPool) {
    let app = spawn_app(db).await;
    let id = one_secret(&app).await;
    let reveal = format!("/api/v1/secrets/{id}/reveal");
    let resp = send(
        &app,
        reqwest::Method::POST,
        &reveal,
        Some(json!({ "reason": "  ticket OPS-17 " })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let revealed = details(&app, "secret.revealed", &id).await;
    assert_eq!(revealed.len(), 1);
    assert_eq!(revealed[0]["reason"], "ticket OPS-17");
    assert_eq!(revealed[0]["provider"], "greenhouse", "the rest unchanged");

    let shred = format!("/api/v1/secrets/{id}");
    let resp = send(
        &app,
        reqwest::Method::DELETE,
        &shred,
        Some(json!({ "reason": "the customer asked" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "shredded");
    let shredded = details(&app, "secret.shredded", &id).await;
    assert_eq!(shredded.len(), 1);
    assert_eq!(shredded[0]["from"], "revealed");
    assert_eq!(shredded[0]["reason"], "the customer asked");
}

#[sqlx::test]
async fn without_a_body_or_with_no_reason_in_it_nothing_changes(db: PgPool) {
    let app = spawn_app(db).await;
    let ids = [
        one_secret(&app).await,
        one_secret(&app).await,
        one_secret(&app).await,
    ];
    // No body at all, as before reasons existed; then `null`, `{}` and
    // `{"reason": null}`, which mean no reason too.
    let bodies = [
        (None, None),
        (Some(json!(null)), Some(json!({}))),
        (Some(json!({ "reason": null })), Some(json!(null))),
    ];
    for (id, (reveal, shred)) in ids.iter().zip(bodies) {
        let path = format!("/api/v1/secrets/{id}");
        let resp = send(
            &app,
            reqwest::Method::POST,
            &format!("{path}/reveal"),
            reveal,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = send(&app, reqwest::Method::DELETE, &path, shred).await;
        assert_eq!(resp.status(), StatusCode::OK);
        for action in ["secret.revealed", "secret.shredded"] {
            let d = details(&app, action, id).await;
            assert_eq!(d.len(), 1, "{action}");
            assert!(d[0].get("reason").is_none(), "{action}: {}", d[0]);
        }
    }
}

#[sqlx::test]
async fn a_bad_reason_or_body_is_refused_naming_the_field_and_nothing_happens(db: PgPool) {
    let app = spawn_app(db).await;
    let id = one_secret(&app).await;
    let reveal = format!("/api/v1/secrets/{id}/reveal");
    let shred = format!("/api/v1/secrets/{id}");
    for (body, says) in [
        (
            json!({ "reason": "ab" }),
            "reason must be 3 to 500 characters",
        ),
        (json!({ "reason": "  ab   " }), "reason must be 3 to 500"),
        (
            json!({ "reason": "x".repeat(501) }),
            "reason must be 3 to 500",
        ),
        (json!({ "reason": "two\nlines" }), "on one line"),
        (json!({ "reason": "nul\u{0}byte" }), "control characters"),
        (json!({ "reason": 5 }), "reason must be text"),
        (json!({ "why": "because" }), "there is no field \"why\""),
        (json!(["a reason"]), "JSON object"),
        (json!("a reason"), "JSON object"),
    ] {
        for (method, path) in [
            (reqwest::Method::POST, &reveal),
            (reqwest::Method::DELETE, &shred),
        ] {
            let resp = send(&app, method.clone(), path, Some(body.clone())).await;
            assert_eq!(
                resp.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {body}"
            );
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{body}: {message}");
        }
    }
    // A body that is not JSON, or not complete JSON.
    let resp = app
        .api
        .post(app.url(&reveal))
        .bearer_auth(&app.admin)
        .header("content-type", "text/plain")
        .body("because")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = app
        .api
        .delete(app.url(&shred))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{\"reason\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");
    // Nothing was revealed or shredded, and the secret is as it was.
    assert!(details(&app, "secret.revealed", &id).await.is_empty());
    assert!(details(&app, "secret.shredded", &id).await.is_empty());
    let v: Value = app
        .get(&format!("/api/v1/secrets/{id}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "received");
}

#[test]
fn the_contract_describes_the_optional_reason_body() {
    let doc = keydrop::http::api::document();
    let schema = &doc["components"]["schemas"]["Reason"];
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["reason"]["type"],
        json!(["string", "null"])
    );
    for (path, method) in [
        ("/api/v1/secrets/{id}/reveal", "post"),
        ("/api/v1/secrets/{id}", "delete"),
    ] {
        let op = &doc["paths"][path][method];
        let body = &op["requestBody"];
        assert_ne!(
            body["required"], true,
            "{method} {path}: the body is optional"
        );
        assert_eq!(
            body["content"]["application/json"]["schema"]["oneOf"],
            json!([{ "$ref": "#/components/schemas/Reason" }, { "type": "null" }])
        );
        assert!(op["responses"]["422"].is_object(), "{method} {path}");
    }
}
