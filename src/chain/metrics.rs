//! Metrics for accountability: the audit chain's head and webhook deliveries.
//! Read from the database at scrape time, so every replica reports the same
//! global numbers; appended to `GET /metrics` by `crate::metrics`.

use super::hex;
use crate::store::{audit_chain, webhooks};
use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeadLabels {
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Renders the gauges in the Prometheus text format; empty if the database
/// does not answer within two seconds (the main scrape reports that).
pub async fn render(db: &PgPool) -> String {
    let read = async {
        let head = audit_chain::head(db).await?;
        let (txid, id) = head.as_ref().map_or((0, 0), |h| (h.txid, h.event_id));
        let unsealed = audit_chain::count_after(db, txid, id).await?;
        let deliveries = webhooks::stats(db).await?;
        Ok::<_, sqlx::Error>((head, unsealed, deliveries))
    };
    let (head, unsealed, deliveries) =
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: audit chain query failed");
                return String::new();
            }
            Err(_) => return String::new(),
        };
    let mut r = Registry::with_prefix("keydrop");
    let length = Gauge::<i64>::default();
    length.set(head.as_ref().map_or(0, |h| h.seq));
    r.register(
        "audit_chain_length",
        "Sealed audit events: the length of the hash chain",
        length,
    );
    let head_family = Family::<HeadLabels, Gauge>::default();
    if let Some(h) = &head {
        head_family
            .get_or_create(&HeadLabels { hash: hex(&h.hash) })
            .set(h.seq);
    }
    r.register(
        "audit_chain_head",
        "The hash chain's head: the value is its position, the label its SHA-256; record it elsewhere to detect a rewritten or truncated trail",
        head_family,
    );
    let pending = Gauge::<i64>::default();
    pending.set(unsealed);
    r.register(
        "audit_events_unsealed",
        "Audit events written but not sealed yet",
        pending,
    );
    let wh = Family::<StateLabels, Gauge>::default();
    wh.get_or_create(&StateLabels { state: "delivered" })
        .set(deliveries.delivered);
    wh.get_or_create(&StateLabels { state: "failed" })
        .set(deliveries.failed);
    wh.get_or_create(&StateLabels { state: "pending" })
        .set(deliveries.pending);
    r.register(
        "webhook_deliveries",
        "Webhook deliveries by state: delivered, failed (retries exhausted), pending (waiting or retrying)",
        wh,
    );
    let mut out = String::new();
    if let Err(e) = prometheus_text::encode(&mut out, &r) {
        tracing::error!(error = %e, "metrics: encoding the audit gauges failed");
        return String::new();
    }
    out
}
