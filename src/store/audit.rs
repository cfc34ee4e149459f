//! The append-only audit trail.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Who did something.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<Uuid>,
    pub name: Option<String>,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn public(ip: Option<String>) -> Self {
        Self {
            kind: "public",
            id: None,
            name: None,
            client_ip: ip,
        }
    }

    pub fn cli() -> Self {
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
        Self {
            kind: "cli",
            id: None,
            name: Some(format!("cli:{}", user.as_deref().unwrap_or("unknown"))),
            client_ip: None,
        }
    }

    pub fn staff(id: Uuid, name: String, ip: Option<String>) -> Self {
        Self {
            kind: "staff",
            id: Some(id),
            name: Some(name),
            client_ip: ip,
        }
    }
}

/// One event to record. `detail` must never hold secret material.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub actor: &'a Actor,
    pub action: &'static str,
    pub outcome: &'static str,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub detail: Value,
}

impl<'a> NewEvent<'a> {
    pub fn success(actor: &'a Actor, action: &'static str) -> Self {
        Self {
            actor,
            action,
            outcome: "success",
            secret_id: None,
            request_id: None,
            detail: Value::Object(Default::default()),
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
        self.detail = detail;
        self
    }
}

/// Appends an event; callers pass their transaction so action and record commit together.
pub async fn record(db: impl PgExecutor<'_>, e: NewEvent<'_>) -> sqlx::Result<i64> {
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
        e.detail,
    )
    .fetch_one(db)
    .await
}

/// A stored event, as the API shows it.
#[derive(Debug, Serialize)]
pub struct Event {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub client_ip: Option<String>,
    pub action: String,
    pub outcome: String,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub detail: Value,
}

/// Newest first, optionally for one secret or link.
pub async fn list(
    db: impl PgExecutor<'_>,
    secret_id: Option<Uuid>,
    request_id: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as!(
        Event,
        r#"SELECT id, occurred_at, actor_kind, actor_id, actor_name, client_ip, action, outcome,
                  secret_id, request_id, detail
           FROM audit_events
           WHERE ($1::uuid IS NULL OR secret_id = $1) AND ($2::uuid IS NULL OR request_id = $2)
           ORDER BY id DESC LIMIT $3"#,
        secret_id,
        request_id,
        limit
    )
    .fetch_all(db)
    .await
}
