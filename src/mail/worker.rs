//! Sending the outbox: claim due messages, build each one now, hand it to the
//! relay, record the outcome, retry with backoff; schedule reminders.
//!
//! Claims use `SKIP LOCKED` and a lease (`store::mail::claim_due`), so several
//! replicas share the work and a crashed worker's claims come due again.

use super::compose::{LinkMail, StaffMail};
use super::config::{MailConfig, Security, Smtp};
use crate::crypto::Keyring;
use crate::domain::brand::Brand;
use crate::domain::retry::{backoff, random_u64};
use crate::providers::{self, CheckStatus};
use crate::store::mail::{self as store, Claimed, Kind};
use crate::store::requests::{self, LinkState};
use chrono::Utc;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use url::Url;

/// Messages attempted per round.
const BATCH: i64 = 16;
/// Finished messages are kept this long, for inspection.
const KEEP_DAYS: i32 = 30;

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Builds the SMTP transport for `smtp` (TLS as configured, credentials).
pub fn transport(smtp: &Smtp) -> Result<Transport, lettre::transport::smtp::Error> {
    let tls = || {
        let mut p = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.ca_pem {
            p = p.add_root_certificate(Certificate::from_pem(pem)?);
        }
        p.build_rustls()
    };
    let mut b = Transport::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(smtp.timeout));
    b = match smtp.security {
        Security::StartTls => b.tls(Tls::Required(tls()?)),
        Security::Tls => b.tls(Tls::Wrapper(tls()?)),
        Security::None => b.tls(Tls::None),
    };
    if let (Some(user), Some(pw)) = (&smtp.user, &smtp.password) {
        b = b.credentials(Credentials::new(
            user.clone(),
            pw.expose_secret().to_owned(),
        ));
    }
    Ok(b.build())
}

/// What the worker works with.
pub struct Mailer {
    pub db: PgPool,
    pub keyring: Arc<Keyring>,
    pub cfg: Arc<MailConfig>,
    pub brand: Arc<Brand>,
    /// Base of drop links (`KEYDROP_PUBLIC_URL`).
    pub public_url: Url,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub failed: usize,
}

/// Why one message was not sent, and whether trying again can help.
struct Failure {
    reason: String,
    retry: bool,
}

impl Failure {
    fn final_(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry: false,
        }
    }
}

impl Mailer {
    /// Attempts every due message once.
    pub async fn deliver_due(&self, smtp: &Transport, from: &Mailbox) -> anyhow::Result<Round> {
        let lease = self
            .cfg
            .smtp
            .as_ref()
            .map_or(60.0, |s| s.timeout.as_secs_f64() * 3.0 + 30.0);
        let mut round = Round::default();
        for c in store::claim_due(&self.db, BATCH, lease).await? {
            let outcome = match self.build(&c, from).await {
                Ok(msg) => smtp.send(msg).await.map(drop).map_err(|e| Failure {
                    retry: !e.is_permanent(),
                    reason: e.to_string(),
                }),
                Err(f) => Err(f),
            };
            match outcome {
                Ok(()) => {
                    store::mark_sent(&self.db, c.id).await?;
                    tracing::info!(mail_id = %c.id, kind = %c.kind, attempt = c.attempts, "email sent");
                    round.sent += 1;
                }
                Err(f) => {
                    let age = (Utc::now() - c.created_at).to_std().unwrap_or_default();
                    let wait = backoff(
                        self.cfg.backoff_base,
                        self.cfg.backoff_cap,
                        c.attempts,
                        random_u64(),
                    );
                    let retry = (f.retry && age + wait < self.cfg.retry_window)
                        .then_some(wait.as_secs_f64());
                    if f.reason.starts_with("not sent:") {
                        // Nothing is wrong: the message is no longer wanted.
                        tracing::info!(mail_id = %c.id, kind = %c.kind, reason = %f.reason, "email dropped");
                    } else if retry.is_some() {
                        tracing::warn!(mail_id = %c.id, kind = %c.kind, attempt = c.attempts, error = %f.reason, retry_in_secs = wait.as_secs(), "email not sent; will retry");
                    } else {
                        tracing::error!(mail_id = %c.id, kind = %c.kind, attempt = c.attempts, error = %f.reason, "email not sent; giving up");
                    }
                    store::mark_failed(&self.db, c.id, &f.reason, retry).await?;
                    round.failed += 1;
                }
            }
        }
        Ok(round)
    }

    /// Builds a claimed message from what the database holds now.
    async fn build(&self, c: &Claimed, from: &Mailbox) -> Result<Message, Failure> {
        let db_err = |e: sqlx::Error| Failure {
            reason: format!("database: {e}"),
            retry: true,
        };
        match Kind::parse(&c.kind) {
            Some(kind @ (Kind::Link | Kind::Reminder)) => {
                let (Some(rid), Some(to)) = (c.request_id, c.recipient.as_deref()) else {
                    return Err(Failure::final_("the message names no link or recipient"));
                };
                let link = requests::get(&self.db, rid)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Failure::final_("the link no longer exists"))?;
                let state = link.state(Utc::now());
                if state != LinkState::Pending || (kind == Kind::Reminder && link.use_count > 0) {
                    return Err(Failure::final_(format!(
                        "not sent: the link is {} now",
                        if link.use_count > 0 && state == LinkState::Pending {
                            "used"
                        } else {
                            state.as_str()
                        }
                    )));
                }
                let sealed = store::token(&self.db, rid)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Failure::final_("the link's sealed token is gone"))?;
                let token = super::open_token(&self.keyring, rid, &sealed).map_err(|e| {
                    Failure::final_(format!("the link's sealed token cannot be opened: {e}"))
                })?;
                let url =
                    zeroize::Zeroizing::new(crate::domain::drop_url(&self.public_url, &token));
                let provider = providers::find(&link.provider);
                let mail = LinkMail {
                    brand: &self.brand,
                    logo_url: self.brand.logo.as_ref().map(|l| {
                        format!(
                            "{}{}",
                            self.public_url.as_str().trim_end_matches('/'),
                            l.path()
                        )
                    }),
                    reminder: kind == Kind::Reminder,
                    organization: &link.organization,
                    provider_name: provider.map_or(link.provider.as_str(), |p| p.name),
                    short_name: provider.map_or(link.provider.as_str(), |p| p.short_name),
                    credential: provider.map_or("API credential", |p| p.credential),
                    note: link.note.as_deref(),
                    asked_by: &link.created_by_name,
                    url: &url,
                    expires: link
                        .expires_at
                        .format("%A %-d %B %Y, %H:%M UTC")
                        .to_string(),
                    max_uses: link.max_uses,
                };
                mail.message(from, to)
                    .map_err(|e| Failure::final_(e.to_string()))
            }
            Some(kind @ (Kind::Submission | Kind::CheckFailed)) => {
                // NULL recipient: KEYDROP_NOTIFY_EMAIL as configured now; an
                // address: the link's creator, unless the staff note reaches
                // them already.
                let to: Vec<&str> = match c.recipient.as_deref() {
                    None => self.cfg.notify.iter().map(|e| e.as_str()).collect(),
                    Some(creator) => {
                        if self
                            .cfg
                            .notify
                            .iter()
                            .any(|e| e.as_str().eq_ignore_ascii_case(creator))
                        {
                            return Err(Failure::final_(
                                "not sent: the link's creator is in KEYDROP_NOTIFY_EMAIL and gets the staff note",
                            ));
                        }
                        vec![creator]
                    }
                };
                if to.is_empty() {
                    return Err(Failure::final_(
                        "no staff address is configured (KEYDROP_NOTIFY_EMAIL)",
                    ));
                }
                let d = &c.detail;
                let s = |k: &str| d[k].as_str().unwrap_or("?");
                let missing: Vec<String> = d["missing"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let secret_id = c.secret_id.unwrap_or_default();
                // For people: the provider's short name and the status in
                // words ("Greenhouse credential for Acme received (not verified
                // yet)"); the table below keeps the stored names.
                let provider_id: &str = d["provider"].as_str().unwrap_or("?");
                let status_name: &str = d["check_status"].as_str().unwrap_or("?");
                let what = match providers::find(provider_id) {
                    Some(p) if p.id != "generic" => format!("{} credential", p.short_name),
                    _ => "A credential".to_owned(),
                };
                let status =
                    CheckStatus::from_name(status_name).map_or(status_name, |s| s.in_words());
                let headline = match kind {
                    Kind::Submission => {
                        format!("{what} for {} received ({status})", s("organization"),)
                    }
                    _ => format!(
                        "{what} for {} failed its re-check ({status})",
                        s("organization"),
                    ),
                };
                let mail = StaffMail {
                    brand: &self.brand,
                    headline,
                    organization: s("organization"),
                    provider: s("provider"),
                    check_status: s("check_status"),
                    missing,
                    submitter_email: d["submitter_email"].as_str(),
                    secret_id,
                    console_url: self.cfg.console_url.as_ref().map(|u| {
                        format!("{}/secrets/{secret_id}", u.as_str().trim_end_matches('/'))
                    }),
                };
                mail.message(from, &to)
                    .map_err(|e| Failure::final_(e.to_string()))
            }
            None => Err(Failure::final_(format!("unknown kind {:?}", c.kind))),
        }
    }
}

/// Runs until `stop` fires: sends due messages every `poll`, schedules
/// reminders every `reminder_scan`, prunes hourly. Without SMTP settings it
/// only retires what no replica sent within the retry window.
pub async fn run(mailer: Mailer, mut stop: watch::Receiver<()>) {
    let cfg = mailer.cfg.clone();
    let ready = match (&cfg.smtp, &cfg.from) {
        (Some(smtp), Some(from)) => match transport(smtp) {
            Ok(t) => Some((t, from.clone())),
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the SMTP transport; email is off");
                None
            }
        },
        _ => None,
    };
    let mut tick = tokio::time::interval(if ready.is_some() {
        cfg.poll
    } else {
        Duration::from_secs(600)
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_scan: Option<Instant> = None;
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let result = async {
            if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                last_prune = Some(Instant::now());
                store::prune(&mailer.db, KEEP_DAYS).await?;
                if ready.is_none() {
                    store::give_up_old(&mailer.db, cfg.retry_window.as_secs_f64()).await?;
                }
            }
            let Some((smtp, from)) = &ready else {
                return Ok(());
            };
            if let Some(before) = cfg.reminder_before {
                if last_scan.is_none_or(|t| t.elapsed() >= cfg.reminder_scan) {
                    last_scan = Some(Instant::now());
                    let n = store::schedule_reminders(&mailer.db, before.as_secs_f64()).await?;
                    if n > 0 {
                        tracing::info!(links = n, "reminders queued");
                    }
                }
            }
            mailer.deliver_due(smtp, from).await.map(drop)
        }
        .await;
        match result {
            Ok(()) => {}
            // The pool closes at shutdown: stop quietly.
            Err(_) if mailer.db.is_closed() => return,
            Err(e) => tracing::warn!(error = %e, "email round failed; retrying"),
        }
    }
}
