//! Who did something, as the audit trail records it (`actor_kind`,
//! `actor_id`, `actor_name`, `client_ip`). Every service function takes one,
//! so the API, the CLI, the drop pages and background jobs write the same
//! events. Kinds today: `public`, `cli`, `staff`, `system`; a person signed
//! in through the staff console's OIDC login gets a kind of its own (`oidc`).

use serde::Serialize;
use uuid::Uuid;

/// Who did something.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<Uuid>,
    pub name: Option<String>,
    pub client_ip: Option<String>,
    /// Who a person signed in through single sign-on is (`kind` `oidc`).
    pub oidc: Option<OidcIdentity>,
}

/// A person as the identity provider named them: recorded under `actor` in
/// the detail of every event they cause, so the trail names them even after
/// their session is gone.
#[derive(Debug, Clone, Serialize)]
pub struct OidcIdentity {
    /// The console session the action came through (`console_sessions.id`);
    /// `None` for a refused login.
    pub session_id: Option<Uuid>,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
}

/// The name `--actor` gave for this process. A process-wide value rather than
/// a parameter: one CLI invocation has one operator, and every command
/// (tokens, links, rotation, audit) records it without threading it through.
static CLI_ACTOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the CLI actor's name (once per process; later calls are ignored).
pub fn set_cli_actor(name: &str) {
    let _ = CLI_ACTOR.set(name.to_owned());
}

impl Actor {
    pub fn public(ip: Option<String>) -> Self {
        Self {
            kind: "public",
            id: None,
            name: None,
            client_ip: ip,
            oidc: None,
        }
    }

    /// The person running a `keydrop` command, as [`set_cli_actor`] named
    /// them (`--actor`, `KEYDROP_ACTOR` or `$USER`).
    pub fn cli() -> Self {
        Self {
            kind: "cli",
            id: None,
            name: Some(format!(
                "cli:{}",
                CLI_ACTOR.get().map_or("unknown", String::as_str)
            )),
            client_ip: None,
            oidc: None,
        }
    }

    /// Keydrop itself (`retention`, `webhooks`): background work no person started.
    pub fn system(name: &str) -> Self {
        Self {
            kind: "system",
            id: None,
            name: Some(name.to_owned()),
            client_ip: None,
            oidc: None,
        }
    }

    pub fn staff(id: Uuid, name: String, ip: Option<String>) -> Self {
        Self {
            kind: "staff",
            id: Some(id),
            name: Some(name),
            client_ip: ip,
            oidc: None,
        }
    }

    /// A person signed in to the console: `name` is their email (or subject
    /// when the provider gave no email); issuer, subject and session travel in
    /// `oidc`. `id` stays empty: it names staff tokens (links reference it).
    pub fn oidc(who: OidcIdentity, ip: Option<String>) -> Self {
        Self {
            kind: "oidc",
            id: None,
            name: Some(who.email.clone().unwrap_or_else(|| who.subject.clone())),
            client_ip: ip,
            oidc: Some(who),
        }
    }
}
