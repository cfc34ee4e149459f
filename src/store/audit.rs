//! The append-only audit trail.

use super::{json_text, JsonText};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

pub use crate::domain::actor::{set_cli_actor, Actor, OidcIdentity};

/// One event to record. `detail` must never hold secret material.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub actor: &'a Actor,
    pub action: &'static str,
    pub outcome: &'static str,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    detail: Detail,
}

/// An event's detail: a `Value` (most callers, `json!`), or JSON the hot
/// actions serialised straight from their data ([`NewEvent::detail_of`]).
#[derive(Debug)]
enum Detail {
    Value(Value),
    Text(JsonText),
}

impl<'a> NewEvent<'a> {
    pub fn success(actor: &'a Actor, action: &'static str) -> Self {
        Self {
            actor,
            action,
            outcome: "success",
            secret_id: None,
            request_id: None,
            detail: Detail::Value(Value::Object(Default::default())),
        }
    }

    pub fn failure(actor: &'a Actor, action: &'static str, outcome: &'static str) -> Self {
        Self {
            outcome,
            ..Self::success(actor, action)
        }
    }

    pub fn secret(mut self, id: Uuid) -> Self {
        self.secret_id = Some(id);
        self
    }

    pub fn request(mut self, id: Uuid) -> Self {
        self.request_id = Some(id);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Detail::Value(detail);
        self
    }

    /// The detail, serialised from `detail` (a struct of the event's fields)
    /// without a `Value` in between; it must serialise as a JSON object.
    pub fn detail_of(mut self, detail: &impl Serialize) -> Self {
        self.detail = Detail::Text(json_text(detail));
        self
    }
}

impl NewEvent<'_> {
    /// The detail as stored: a person signed in through SSO is named under
    /// `actor` (issuer, subject, email, session). Every writer of an event
    /// (`record` and the one-statement actions in `store::actions`) stores
    /// this, so the trail names the person whichever path wrote it. Takes
    /// the detail out of the event (it is stored once).
    pub fn stored_detail(&mut self) -> JsonText {
        let detail = std::mem::replace(&mut self.detail, Detail::Value(Value::Null));
        let Some(who) = &self.actor.oidc else {
            return match detail {
                Detail::Text(t) => t,
                Detail::Value(v) => json_text(&v),
            };
        };
        let mut detail = match detail {
            Detail::Value(v) => v,
            Detail::Text(t) => serde_json::from_str(t.as_str()).unwrap_or(Value::Null),
        };
        if let Value::Object(map) = &mut detail {
            map.insert(
                "actor".into(),
                serde_json::to_value(who).unwrap_or(Value::Null),
            );
        }
        json_text(&detail)
    }
}

/// Appends an event; callers pass their transaction so action and record commit together.
pub async fn record(db: impl PgExecutor<'_>, mut e: NewEvent<'_>) -> sqlx::Result<i64> {
    let detail = e.stored_detail();
    sqlx::query_scalar!(
        r#"INSERT INTO audit_events (actor_kind, actor_id, actor_name, client_ip, action, outcome, secret_id, request_id, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"#,
        e.actor.kind,
        e.actor.id,
        e.actor.name,
        e.actor.client_ip,
        e.action,
        e.outcome,
        e.secret_id,
        e.request_id,
        detail as _,
    )
    .fetch_one(db)
    .await
}

/// A stored event, as the API and `keydrop audit export` show it (the API's
/// `AuditEvent`: the row is the view, field for field).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct Event {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// Who acted: `staff` (a token), `public` (a customer), `cli`, `system`,
    /// `oidc` (a person signed in to the console).
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub client_ip: Option<String>,
    /// Such as `link.created`, `secret.submitted`, `secret.revealed`.
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    /// What happened, by action; never secret material.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Position in the hash chain; `null` until the sealer reaches the event.
    pub chain_seq: Option<i64>,
    /// The event's seal (hex SHA-256); see docs/audit.md and `crate::chain`.
    pub chain_hash: Option<String>,
}

/// Filters for [`list`]; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    /// A token name, token id, or actor kind (`public`, `cli`, `system`, `staff`).
    pub actor: Option<String>,
    /// An exact action, or a prefix ending in `.*` (`secret.*`).
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Newest first: only ids below this. Oldest first: only ids above it.
    pub cursor: Option<i64>,
    /// Oldest first (exports) instead of newest first (the API).
    pub ascending: bool,
}

/// Events matching `q`, at most `limit`, ordered by id.
pub async fn list(db: impl PgExecutor<'_>, q: &Query, limit: i64) -> sqlx::Result<Vec<Event>> {
    let (action_exact, action_prefix) = match q.action.as_deref() {
        Some(a) => match a.strip_suffix('*') {
            Some(prefix) => (
                None,
                Some(format!(
                    "{}%",
                    prefix
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )),
            ),
            None => (Some(a.to_owned()), None),
        },
        None => (None, None),
    };
    // Two statements rather than dynamic SQL, so both stay compile-checked.
    if q.ascending {
        sqlx::query_as!(
            Event,
            r#"SELECT e.id, e.occurred_at, e.actor_kind, e.actor_id, e.actor_name, e.client_ip, e.action,
                      e.outcome, e.secret_id, e.request_id, e.detail,
                      s.seq AS "chain_seq?", encode(s.hash, 'hex') AS "chain_hash?"
               FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id
               WHERE ($1::uuid IS NULL OR e.secret_id = $1) AND ($2::uuid IS NULL OR e.request_id = $2)
                 AND ($3::text IS NULL OR e.actor_name = $3 OR e.actor_kind = $3 OR e.actor_id::text = $3)
                 AND ($4::text IS NULL OR e.action = $4) AND ($5::text IS NULL OR e.action LIKE $5)
                 AND ($6::timestamptz IS NULL OR e.occurred_at >= $6)
                 AND ($7::timestamptz IS NULL OR e.occurred_at < $7)
                 AND ($8::bigint IS NULL OR e.id > $8)
               ORDER BY e.id ASC LIMIT $9"#,
            q.secret_id,
            q.request_id,
            q.actor,
            action_exact,
            action_prefix,
            q.since,
            q.until,
            q.cursor,
            limit
        )
        .fetch_all(db)
        .await
    } else {
        sqlx::query_as!(
            Event,
            r#"SELECT e.id, e.occurred_at, e.actor_kind, e.actor_id, e.actor_name, e.client_ip, e.action,
                      e.outcome, e.secret_id, e.request_id, e.detail,
                      s.seq AS "chain_seq?", encode(s.hash, 'hex') AS "chain_hash?"
               FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id
               WHERE ($1::uuid IS NULL OR e.secret_id = $1) AND ($2::uuid IS NULL OR e.request_id = $2)
                 AND ($3::text IS NULL OR e.actor_name = $3 OR e.actor_kind = $3 OR e.actor_id::text = $3)
                 AND ($4::text IS NULL OR e.action = $4) AND ($5::text IS NULL OR e.action LIKE $5)
                 AND ($6::timestamptz IS NULL OR e.occurred_at >= $6)
                 AND ($7::timestamptz IS NULL OR e.occurred_at < $7)
                 AND ($8::bigint IS NULL OR e.id < $8)
               ORDER BY e.id DESC LIMIT $9"#,
            q.secret_id,
            q.request_id,
            q.actor,
            action_exact,
            action_prefix,
            q.since,
            q.until,
            q.cursor,
            limit
        )
        .fetch_all(db)
        .await
    }
}
