//! The HTTP side of the metrics: a middleware counting and timing every
//! request by its matched route, and the `GET /metrics` route, which
//! refreshes the database gauges (within a deadline) and renders everything.

use super::{KekLabels, Metrics, PoolLabels, RequestLabels, RouteLabels, StatusLabels};
use crate::store::maintenance;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::prometheus_text;
use sqlx::PgPool;
use std::time::{Duration, Instant};

impl Metrics {
    /// Counts and times every request of `router` by its matched route.
    pub fn track(&self, router: Router, listener: &'static str) -> Router {
        let metrics = self.clone();
        router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let m = metrics.clone();
                async move {
                    let method = method_label(req.method());
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str)
                        .to_owned();
                    let started = Instant::now();
                    let resp = next.run(req).await;
                    let elapsed = started.elapsed().as_secs_f64();
                    let status = resp.status().as_u16();
                    m.0.latency
                        .get_or_create(&RouteLabels {
                            listener,
                            method,
                            route: route.clone(),
                        })
                        .observe(elapsed);
                    m.0.requests
                        .get_or_create(&RequestLabels {
                            listener,
                            method,
                            route,
                            status,
                        })
                        .inc();
                    resp
                }
            },
        ))
    }

    /// `GET /metrics`, reading the database gauges from `db`; merged into the
    /// internal router (whatever its state type).
    pub fn router<S: Clone + Send + Sync + 'static>(&self, db: PgPool) -> Router<S> {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state((self.clone(), db))
    }

    /// Reads the gauges about stored data and the pool from the database.
    async fn refresh(&self, db: &PgPool) {
        let m = &self.0;
        m.pool_max
            .set(i64::from(db.options().get_max_connections()));
        let size = i64::from(db.size());
        let idle = db.num_idle() as i64;
        m.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        m.pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set((size - idle).max(0));
        let counts = tokio::time::timeout(Duration::from_secs(2), async {
            let kek = maintenance::rows_per_kek(db).await?;
            let status = maintenance::rows_per_status(db).await?;
            Ok::<_, sqlx::Error>((kek, status))
        })
        .await;
        m.rows_per_kek.clear();
        m.secrets.clear();
        match counts {
            Ok(Ok((kek, status))) => {
                m.database_up.set(1);
                for (kek_id, n) in kek {
                    m.rows_per_kek.get_or_create(&KekLabels { kek_id }).set(n);
                }
                for (status, n) in status {
                    m.secrets.get_or_create(&StatusLabels { status }).set(n);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: database query failed");
                m.database_up.set(0);
            }
            Err(_) => {
                m.database_up.set(0);
            }
        }
    }
}

/// Methods outside the standard set share one label value, bounding cardinality.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn scrape(State((metrics, db)): State<(Metrics, PgPool)>) -> Response {
    metrics.refresh(&db).await;
    let mut body = metrics.encode();
    // The audit chain's head and webhook deliveries (issue 5).
    body.push_str(&crate::chain::metrics::render(&db).await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}
