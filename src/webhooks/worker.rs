//! Delivering the outbox: fan out, claim due deliveries, send, record, retry.
//! Also announces expired links (`link.expired`), since that event has no
//! request to hang off.

use super::{message_id, Endpoint, Event, Format, WebhookConfig};
use crate::store::audit::{self, Actor, NewEvent};
use crate::store::webhooks as store;
use chrono::Utc;
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Deliveries attempted per round.
const BATCH: i64 = 32;
/// Expired links are announced only if they expired this recently, so a first
/// deploy does not announce years of old links.
const EXPIRY_WINDOW_DAYS: i32 = 7;
/// Finished messages are kept this long, for inspection.
const KEEP_DAYS: i32 = 30;

/// The delay before attempt `attempts + 1` (`domain::retry`), with this
/// configuration's base and cap.
pub fn backoff(cfg: &WebhookConfig, attempts: i32, random: u64) -> Duration {
    crate::domain::retry::backoff(cfg.backoff_base, cfg.backoff_cap, attempts, random)
}

use crate::domain::retry::random_u64;

/// The HTTP client for deliveries: no redirects (a redirect is a failure), a timeout.
pub fn client(cfg: &WebhookConfig) -> reqwest::Result<Client> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .user_agent(concat!("keydrop-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub dispatched: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// Fans out new messages, then attempts every due delivery once.
///
/// Only endpoints this process is configured for are touched. Replicas may
/// disagree for a while (a rolling change of `KEYDROP_WEBHOOK_URL`, one
/// replica started without it): a replica without an endpoint leaves its
/// deliveries to the replicas that have it, and a replica without any
/// endpoint leaves new messages undispatched for them. Only once the retry
/// window has passed without anyone delivering are such messages and
/// deliveries retired, so the outbox cannot grow without bound.
pub async fn deliver_due(db: &PgPool, cfg: &WebhookConfig, http: &Client) -> anyhow::Result<Round> {
    // The outbox names endpoints by keyed hash: a webhook URL can be a credential.
    let urls: Vec<String> = cfg.endpoints.iter().map(|e| e.stored_id()).collect();
    // Deliveries may name an endpoint by an id under an older KEK.
    let known: Vec<String> = cfg.endpoints.iter().flat_map(|e| e.stored_ids()).collect();
    let window = cfg.retry_window.as_secs_f64();
    let min_age = if urls.is_empty() { window } else { 0.0 };
    let mut round = Round::default();
    loop {
        let n = store::dispatch(db, &urls, 500, min_age).await?;
        round.dispatched += n;
        if n < 500 {
            break;
        }
    }
    let retired = store::give_up_unknown(db, &known, window).await?;
    if retired > 0 {
        tracing::warn!(
            deliveries = retired,
            "webhook deliveries to an endpoint no replica has configured were given up after the retry window"
        );
    }
    if urls.is_empty() {
        return Ok(round);
    }
    let lease = cfg.timeout.as_secs_f64() + 30.0;
    let claimed = store::claim_due(db, &known, BATCH, lease).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for c in claimed {
        // Claimed only for configured endpoints, so this finds one.
        let Some(endpoint) = cfg.endpoint(&c.endpoint).cloned() else {
            continue;
        };
        let http = http.clone();
        tasks.spawn(async move {
            let result = send(&http, &endpoint, c.message_id, &c.payload).await;
            (c, endpoint.origin(), result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (c, origin, result) = joined?;
        match result {
            Ok(status) => {
                store::mark_delivered(db, c.message_id, &c.endpoint, status).await?;
                round.delivered += 1;
            }
            Err((status, error)) => {
                let age = (Utc::now() - c.created_at).to_std().unwrap_or_default();
                let wait = backoff(cfg, c.attempts, random_u64());
                let retry = (age + wait < cfg.retry_window).then_some(wait.as_secs_f64());
                if retry.is_some() {
                    tracing::warn!(webhook_id = %message_id(c.message_id), endpoint = %origin, attempt = c.attempts, %error, retry_in_secs = wait.as_secs(), "webhook delivery failed; will retry");
                } else {
                    tracing::error!(webhook_id = %message_id(c.message_id), endpoint = %origin, attempt = c.attempts, %error, "webhook delivery failed; giving up");
                }
                store::mark_failed(db, c.message_id, &c.endpoint, status, &error, retry).await?;
                round.failed += 1;
            }
        }
    }
    Ok(round)
}

/// One attempt. `Ok(status)` on any 2xx; otherwise the status (if any) and why.
async fn send(
    http: &Client,
    ep: &Endpoint,
    id: uuid::Uuid,
    payload: &Value,
) -> Result<i32, (Option<i32>, String)> {
    let msg_id = message_id(id);
    let body = match ep.format {
        Format::Standard => serde_json::to_vec(payload),
        Format::Slack => serde_json::to_vec(&json!({ "text": slack_text(payload) })),
    }
    .map_err(|e| (None, e.to_string()))?;
    let timestamp = Utc::now().timestamp();
    let mut req = http
        .post(ep.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(sig) = ep.signature(&msg_id, timestamp, &body) {
        req = req.header("webhook-signature", sig);
    }
    let resp = req.body(body).send().await.map_err(|e| {
        // reqwest errors can include the full URL; keep only the kind.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        (None, kind.to_owned())
    })?;
    let status = resp.status();
    if status.is_success() {
        Ok(status.as_u16().into())
    } else {
        Err((Some(status.as_u16().into()), format!("answered {status}")))
    }
}

/// A one-line summary for Slack. Only ids and metadata, like the payload.
pub fn slack_text(payload: &Value) -> String {
    let d = &payload["data"];
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_owned();
    match payload["type"].as_str().unwrap_or("") {
        "submission.received" => format!(
            "Keydrop: {} submitted a {} credential for {} (check: {}). Secret {}",
            s("submitter_email"),
            s("provider"),
            s("organization"),
            s("check_status"),
            s("secret_id")
        ),
        "check.failed" => format!(
            "Keydrop: the {} credential for {} failed its check ({}). Secret {}",
            s("provider"),
            s("organization"),
            s("status"),
            s("secret_id")
        ),
        "secret.revealed" => format!(
            "Keydrop: {} revealed the {} credential for {}. Secret {}",
            s("revealed_by"),
            s("provider"),
            s("organization"),
            s("secret_id")
        ),
        "secret.shredded" => format!(
            "Keydrop: the {} credential for {} was shredded by {}. Secret {}",
            s("provider"),
            s("organization"),
            s("shredded_by"),
            s("secret_id")
        ),
        "link.expired" => format!(
            "Keydrop: the {} drop link for {} expired unused. Link {}",
            s("provider"),
            s("organization"),
            s("request_id")
        ),
        other => format!("Keydrop: {other}"),
    }
}

/// The actor for things Keydrop does on its own.
fn system() -> Actor {
    Actor::system("keydrop")
}

/// Announces links that expired unused: one `link.expired` audit event and
/// webhook each, in one transaction with the notice that marks them done.
pub async fn announce_expired_links(db: &PgPool) -> sqlx::Result<usize> {
    let mut tx = db.begin().await?;
    let links = store::claim_expired_links(&mut tx, EXPIRY_WINDOW_DAYS).await?;
    let actor = system();
    for l in &links {
        audit::record(
            &mut *tx,
            NewEvent::success(&actor, "link.expired")
                .request(l.id)
                .detail(json!({
                    "organization": l.organization,
                    "provider": l.provider,
                    "expires_at": l.expires_at,
                    "use_count": l.use_count,
                    "max_uses": l.max_uses,
                })),
        )
        .await?;
        super::enqueue(
            &mut *tx,
            &Event::LinkExpired {
                request_id: l.id,
                organization: &l.organization,
                provider: &l.provider,
                expires_at: l.expires_at,
                use_count: l.use_count,
                max_uses: l.max_uses,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(links.len())
}

/// Runs until `stop` fires: deliveries every `cfg.poll`, expiry scans every
/// `cfg.expiry_scan`, pruning of old finished messages hourly.
pub async fn run(db: PgPool, cfg: Arc<WebhookConfig>, mut stop: watch::Receiver<()>) {
    let http = match client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are off");
            return;
        }
    };
    let urls: Vec<String> = cfg.endpoints.iter().flat_map(|e| e.stored_ids()).collect();
    match store::left_to_others(&db, &urls).await {
        Ok((deliveries, undispatched)) if urls.is_empty() && undispatched + deliveries > 0 => {
            tracing::warn!(
                undispatched,
                deliveries,
                "webhooks: KEYDROP_WEBHOOK_URL is not set on this replica; pending webhook messages are left to replicas that have it (retired after the retry window if none does)"
            )
        }
        Ok((deliveries, _)) if deliveries > 0 => tracing::warn!(
            deliveries,
            "webhooks: pending deliveries to endpoints this replica does not have configured are left to replicas that have them"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "webhooks: cannot count pending deliveries"),
    }
    let mut tick = tokio::time::interval(cfg.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_scan: Option<Instant> = None;
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        if last_scan.is_none_or(|t| t.elapsed() >= cfg.expiry_scan) {
            last_scan = Some(Instant::now());
            match announce_expired_links(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(links = n, "announced expired drop links"),
                Err(e) => tracing::warn!(error = %e, "expired-link scan failed; retrying"),
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(3600) {
            last_prune = Instant::now();
            if let Err(e) = store::prune(&db, KEEP_DAYS).await {
                tracing::warn!(error = %e, "pruning old webhook messages failed");
            }
        }
        match deliver_due(&db, &cfg, &http).await {
            Ok(r) if r.delivered + r.failed > 0 => {
                tracing::debug!(delivered = r.delivered, failed = r.failed, "webhook round")
            }
            Ok(_) => {}
            // The pool closes at shutdown: stop quietly, not with a warning
            // logged after the process said it stopped.
            Err(_) if db.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "webhook round failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let cfg = WebhookConfig::default();
        for (attempt, full) in [(1, 5u64), (2, 10), (3, 20), (4, 40)] {
            for r in [0, 499_999, 999_999] {
                let d = backoff(&cfg, attempt, r);
                assert!(
                    d >= Duration::from_secs(full) / 2 && d <= Duration::from_secs(full),
                    "{attempt} {d:?}"
                );
            }
        }
        assert!(backoff(&cfg, 40, 999_999) <= cfg.backoff_cap);
        assert!(backoff(&cfg, 40, 0) >= cfg.backoff_cap / 2);
    }

    #[test]
    fn the_default_schedule_retries_for_more_than_a_day() {
        let cfg = WebhookConfig::default();
        assert!(cfg.retry_window >= Duration::from_secs(24 * 3600));
        // Worst case (minimum jitter) still keeps trying at least hourly-ish after the ramp.
        let mut t = Duration::ZERO;
        let mut attempts = 0;
        while t < Duration::from_secs(24 * 3600) {
            attempts += 1;
            t += backoff(&cfg, attempts, 0);
        }
        assert!(attempts > 20, "{attempts}");
    }

    #[test]
    fn slack_text_carries_metadata_only() {
        let p = json!({"type": "secret.revealed", "data": {"revealed_by": "ana", "provider": "greenhouse", "organization": "Acme", "secret_id": "s1"}});
        assert_eq!(
            slack_text(&p),
            "Keydrop: ana revealed the greenhouse credential for Acme. Secret s1"
        );
    }
}
