//! The audit trail in the console: search by secret, link, actor, action
//! and time; the chain's sealed head and, on request, a full verification;
//! export of the matching events as JSON lines.

use super::secrets::{timeline, TimelineEntry};
use super::{ConsoleError, ConsoleUser};
use crate::domain::Scope;
use crate::http::pages::render;
use crate::http::AppState;
use crate::store::{audit, audit_chain};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    secret_id: String,
    #[serde(default)]
    link_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// `YYYY-MM-DD` or RFC 3339; inclusive.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD` or RFC 3339; exclusive.
    #[serde(default)]
    until: String,
    verify: Option<String>,
}

impl Search {
    fn query(&self, ascending: bool) -> Result<audit::Query, ConsoleError> {
        let uuid = |v: &str, name: &str| -> Result<Option<Uuid>, ConsoleError> {
            let v = v.trim();
            (!v.is_empty())
                .then(|| {
                    v.parse().map_err(|_| {
                        ConsoleError::BadRequest(format!("{name} must be an id (UUID)"))
                    })
                })
                .transpose()
        };
        let text = |v: &str| Some(v.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(audit::Query {
            secret_id: uuid(&self.secret_id, "secret")?,
            request_id: uuid(&self.link_id, "link")?,
            actor: text(&self.actor),
            action: text(&self.action),
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            cursor: None,
            ascending,
        })
    }
}

fn time(v: &str, name: &str) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            ConsoleError::BadRequest(format!(
                "{name} must be a date (2026-11-28) or a time (2026-11-28T09:00:00Z)"
            ))
        })
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    user: &'a ConsoleUser,
    f: &'a Search,
    events: Vec<TimelineEntry>,
    head: String,
    verdict: Option<(bool, String)>,
    export: String,
}

pub async fn search(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(f): Query<Search>,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Read)?;
    let q = f.query(false)?;
    let events = audit::list(&state.db, &q, 200).await?;
    let head = match audit_chain::head(&state.db).await? {
        Some(h) => format!("seal #{} · {}", h.seq, crate::chain::hex(&h.hash)),
        None => "no events sealed yet".into(),
    };
    let verdict = match f.verify {
        Some(_) => Some(match crate::chain::verify::verify(&state.db, &[]).await {
            Ok(v) => (
                true,
                format!(
                    "intact: {} sealed events check out ({} not sealed yet)",
                    v.events, v.unsealed
                ),
            ),
            Err(crate::chain::verify::VerifyError::Broken(b)) => (false, b.to_string()),
            Err(crate::chain::verify::VerifyError::Db(e)) => return Err(e.into()),
        }),
        None => None,
    };
    let export = serde_urlencoded::to_string([
        ("secret_id", f.secret_id.as_str()),
        ("link_id", &f.link_id),
        ("actor", &f.actor),
        ("action", &f.action),
        ("since", &f.since),
        ("until", &f.until),
    ])
    .unwrap_or_default();
    Ok(render(&AuditPage {
        user: &user,
        f: &f,
        events: timeline(events),
        head,
        verdict,
        export,
    }))
}

/// The matching events, oldest first, one JSON object per line.
pub async fn export(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(f): Query<Search>,
) -> Result<Response, ConsoleError> {
    user.require(Scope::Read)?;
    let mut q = f.query(true)?;
    let mut out = String::new();
    loop {
        let page = audit::list(&state.db, &q, 1000).await?;
        for e in &page {
            out.push_str(&serde_json::to_string(e).map_err(|e| ConsoleError::Internal(e.into()))?);
            out.push('\n');
        }
        match page.last() {
            Some(last) if page.len() == 1000 => q.cursor = Some(last.id),
            _ => break,
        }
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"keydrop-audit.jsonl\""),
            ),
        ],
        out,
    )
        .into_response())
}
