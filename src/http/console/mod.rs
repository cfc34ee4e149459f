//! The staff console: server-rendered pages on the internal listener, behind
//! single sign-on with the company's OpenID Provider.
//!
//! Only mounted when `KEYDROP_OIDC_ISSUER` is set, and only on the internal
//! router: the public listener answers 404 for every console path. Pages call
//! the same service functions as the API and CLI, so every action writes the
//! same audit events; the actor is the signed-in person (`oidc`).

mod actions;
mod admin;
mod audit;
mod auth;
mod error;
mod links;
pub mod oidc;
mod secrets;
mod session;

pub use error::ConsoleError;
pub use session::ConsoleUser;

use super::AppState;
use crate::config::OidcConfig;
use axum::routing::{get, post};
use axum::Router;
use ring::hmac;

/// What the console keeps for its lifetime: the relying party and the key
/// its form tokens are signed with.
pub struct Console {
    pub oidc: oidc::Oidc,
    csrf: hmac::Key,
    secure: bool,
}

impl Console {
    pub fn new(config: OidcConfig, csrf: hmac::Key) -> anyhow::Result<Self> {
        let secure = config.is_https();
        Ok(Self {
            oidc: oidc::Oidc::new(config)?,
            csrf,
            secure,
        })
    }

    pub fn config(&self) -> &OidcConfig {
        self.oidc.config()
    }

    /// A cookie's name: `__Host-` on https pins it to this host and path `/`.
    fn cookie_name(&self, base: &'static str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// `Set-Cookie` for `name=value` (HttpOnly, SameSite=Lax so the IdP's
    /// redirect back carries it, Secure on https); `max_age` 0 deletes it.
    fn set_cookie(&self, base: &'static str, value: &str, max_age: i64) -> String {
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.cookie_name(base),
            if self.secure { "; Secure" } else { "" }
        )
    }

    fn cookie(&self, headers: &axum::http::HeaderMap, base: &'static str) -> Option<String> {
        let name = self.cookie_name(base);
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// The console's routes; merged into the internal router when SSO is configured.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(links::home))
        .route("/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .route("/links", get(links::list).post(links::create))
        .route("/links/{id}/revoke", post(links::revoke))
        .route("/links/{id}/resend", post(links::resend))
        .route("/secrets", get(secrets::list))
        .route("/secrets/{id}", get(secrets::show))
        .route("/secrets/{id}/check", post(secrets::check))
        .route("/secrets/{id}/reveal", post(actions::reveal))
        .route("/secrets/{id}/ingested", post(actions::ingested))
        .route("/secrets/{id}/shred", post(actions::shred))
        .route("/audit", get(audit::search))
        .route("/audit/export", get(audit::export))
        .route("/tokens", get(admin::tokens).post(admin::create_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/sessions", get(admin::sessions))
        .route("/sessions/{id}/revoke", post(admin::revoke_session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(url: &str) -> Console {
        let env = |k: &str| {
            let v = match k {
                "KEYDROP_OIDC_ISSUER" => "http://127.0.0.1:1/x",
                "KEYDROP_OIDC_CLIENT_ID" => "keydrop",
                "KEYDROP_OIDC_CLIENT_SECRET" => "secret",
                "KEYDROP_OIDC_ROLES" => "admins=admin",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let url = url::Url::parse(url).unwrap();
        let config = OidcConfig::from_lookup(&env, Some(&url)).unwrap().unwrap();
        Console::new(config, hmac::Key::new(hmac::HMAC_SHA256, &[7; 32])).unwrap()
    }

    #[test]
    fn cookies_are_host_prefixed_and_secure_on_https_only() {
        let tls = console("https://keydrop.corp.example").set_cookie("keydrop_session", "v", 60);
        assert_eq!(
            tls,
            "__Host-keydrop_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let plain = console("http://127.0.0.1:8081").set_cookie("keydrop_session", "v", 60);
        assert_eq!(
            plain,
            "keydrop_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
    }
}
