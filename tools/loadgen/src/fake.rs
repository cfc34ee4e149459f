//! A fake Greenhouse: `POST /token` hands out a bearer token, every other path
//! (Harvest v1/v3 resources) answers `200 [{"id":1}]`, all after a fixed delay
//! that stands for the network and the provider's own work.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::time::Duration;

async fn handle(State(delay): State<Duration>, req: Request) -> Response {
    tokio::time::sleep(delay).await;
    if req.uri().path() == "/token" {
        return axum::Json(serde_json::json!({
            "access_token": "fake-bearer-token",
            "token_type": "bearer",
            "expires_in": 3600
        }))
        .into_response();
    }
    axum::Json(serde_json::json!([{ "id": 1 }])).into_response()
}

/// Serves until killed; prints `{"url": …}` once listening.
pub async fn serve(addr: &str, delay: Duration) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("{}", serde_json::json!({ "url": url }));
    let app = Router::new().fallback(handle).with_state(delay);
    axum::serve(listener, app).await?;
    Ok(())
}
