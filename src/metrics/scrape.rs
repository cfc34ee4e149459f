//! The HTTP side of the metrics: a middleware counting and timing every
//! request by its matched route, and the `GET /metrics` route, which
//! refreshes the database gauges (within a deadline) and renders everything.

use super::{KekLabels, Metrics, PoolLabels, RequestLabels, RouteLabels, StatusLabels};
use crate::store::maintenance;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::prometheus_text;
use sqlx::PgPool;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// See [`Metrics::layer`].
#[derive(Clone)]
pub struct TrackLayer {
    metrics: Metrics,
    listener: &'static str,
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.metrics.clone(),
            listener: self.listener,
        }
    }
}

/// See [`Metrics::layer`].
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Metrics,
    listener: &'static str,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str)
            .to_owned();
        let (m, listener) = (self.metrics.clone(), self.listener);
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
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
            Ok(resp)
        })
    }
}

impl Metrics {
    /// A layer counting and timing every request by its matched route. Goes
    /// into the listener's one layer stack (`http::outer_layers`) rather than
    /// a `Router::layer` of its own, which would box every route once more,
    /// and is a plain `tower` service: no clone of the inner stack and no
    /// boxed `Next` per request, as `middleware::from_fn` has (issue 16).
    pub fn layer(&self, listener: &'static str) -> TrackLayer {
        TrackLayer {
            metrics: self.clone(),
            listener,
        }
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
