//! Staff console single sign-on: the `KEYDROP_OIDC_*` and session variables.
//!
//! The console is on when `KEYDROP_OIDC_ISSUER` is set; then the client, the
//! console's own URL and the group→scope mapping are required, so a
//! half-configured console stops the process instead of refusing everyone.

use crate::domain::{HumanDuration, Scopes};
use anyhow::{bail, Context as _};
use secrecy::SecretString;
use url::Url;

/// How the console signs staff in and how long their sessions last.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer identifier; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The console's base URL (`KEYDROP_INTERNAL_URL`), without a trailing slash.
    pub internal_url: Url,
    /// Scopes asked for at the authorization endpoint (always with `openid`).
    pub scopes: Vec<String>,
    /// The ID-token claim listing the person's groups.
    pub groups_claim: String,
    /// Group name → scopes it grants.
    pub roles: Vec<(String, Scopes)>,
    /// A session ends after this long without a request.
    pub session_idle: std::time::Duration,
    /// A session ends this long after login, however busy.
    pub session_lifetime: std::time::Duration,
}

impl OidcConfig {
    /// `None` when `KEYDROP_OIDC_ISSUER` is unset (no console).
    pub fn from_lookup(
        env: &dyn Fn(&str) -> Option<String>,
        internal_url: Option<&Url>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(issuer) = env("KEYDROP_OIDC_ISSUER") else {
            return Ok(None);
        };
        let issuer = issuer.trim().to_owned();
        Url::parse(&issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .with_context(|| format!("KEYDROP_OIDC_ISSUER={issuer:?} is not an http(s) URL"))?;
        let client_id = env("KEYDROP_OIDC_CLIENT_ID")
            .context("KEYDROP_OIDC_CLIENT_ID is required with KEYDROP_OIDC_ISSUER")?;
        let client_secret = match (
            env("KEYDROP_OIDC_CLIENT_SECRET"),
            env("KEYDROP_OIDC_CLIENT_SECRET_FILE"),
        ) {
            (Some(s), None) => s,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .with_context(|| format!("KEYDROP_OIDC_CLIENT_SECRET_FILE: cannot read {path}"))?
                .trim()
                .to_owned(),
            (Some(_), Some(_)) => {
                bail!("set KEYDROP_OIDC_CLIENT_SECRET or KEYDROP_OIDC_CLIENT_SECRET_FILE, not both")
            }
            (None, None) => {
                bail!("KEYDROP_OIDC_CLIENT_SECRET (or _FILE) is required with KEYDROP_OIDC_ISSUER")
            }
        };
        let internal_url = internal_url.cloned().context(
            "KEYDROP_INTERNAL_URL is required with KEYDROP_OIDC_ISSUER: the console's base URL, \
             e.g. https://keydrop.corp.example (the redirect URI is {KEYDROP_INTERNAL_URL}/auth/callback)",
        )?;
        let scopes = env("KEYDROP_OIDC_SCOPES").unwrap_or_else(|| "openid email profile".into());
        let scopes: Vec<String> = scopes
            .split([' ', ','])
            .filter(|s| !s.is_empty() && *s != "openid")
            .map(str::to_owned)
            .collect();
        let groups_claim = env("KEYDROP_OIDC_GROUPS_CLAIM").unwrap_or_else(|| "groups".into());
        let roles = parse_roles(&env("KEYDROP_OIDC_ROLES").context(
            "KEYDROP_OIDC_ROLES is required with KEYDROP_OIDC_ISSUER, e.g. \
             keydrop-admins=admin;ingestion=reveal;customer-success=request",
        )?)
        .map_err(|e| anyhow::anyhow!("KEYDROP_OIDC_ROLES: {e}"))?;
        let duration = |key: &str, default: &str| -> anyhow::Result<std::time::Duration> {
            HumanDuration::parse(&env(key).unwrap_or_else(|| default.into()))
                .map(|d| d.as_std())
                .map_err(|e| anyhow::anyhow!("{key}: {e}"))
        };
        let session_idle = duration("KEYDROP_SESSION_IDLE", "30m")?;
        let session_lifetime = duration("KEYDROP_SESSION_LIFETIME", "12h")?;
        if session_idle > session_lifetime {
            bail!("KEYDROP_SESSION_IDLE is longer than KEYDROP_SESSION_LIFETIME");
        }
        Ok(Some(Self {
            issuer,
            client_id,
            client_secret: SecretString::from(client_secret),
            internal_url,
            scopes,
            groups_claim,
            roles,
            session_idle,
            session_lifetime,
        }))
    }

    /// `{KEYDROP_INTERNAL_URL}/auth/callback`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/auth/callback",
            self.internal_url.as_str().trim_end_matches('/')
        )
    }

    /// True when the console is served over TLS (`Secure`, `__Host-` cookies).
    pub fn is_https(&self) -> bool {
        self.internal_url.scheme() == "https"
    }

    /// The scopes `groups` grant together (empty: refused).
    pub fn scopes_for(&self, groups: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (group, scopes) in &self.roles {
            if groups.iter().any(|g| g == group) {
                for s in scopes.names() {
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }
}

/// `group=scope[,scope];group=scope…`
pub fn parse_roles(s: &str) -> Result<Vec<(String, Scopes)>, String> {
    let mut out = Vec::new();
    for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (group, scopes) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not group=scope[,scope]"))?;
        let group = group.trim();
        if group.is_empty() {
            return Err(format!("{entry:?} names no group"));
        }
        out.push((group.to_owned(), Scopes::parse(scopes)?));
    }
    if out.is_empty() {
        return Err("no group is mapped to a scope".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_groups_to_the_union_of_their_scopes() {
        let roles = parse_roles("keydrop-admins=admin; ingestion=reveal;cs=request,read").unwrap();
        assert_eq!(roles.len(), 3);
        assert!(parse_roles("admins").is_err());
        assert!(parse_roles("=admin").is_err());
        assert!(parse_roles("a=root").is_err());
        assert!(parse_roles(" ; ").is_err());
    }

    #[test]
    fn a_half_configured_console_is_a_startup_error() {
        let url = Url::parse("http://127.0.0.1:8081").unwrap();
        let env = |k: &str| (k == "KEYDROP_OIDC_ISSUER").then(|| "http://127.0.0.1:1/x".to_owned());
        let err = OidcConfig::from_lookup(&env, Some(&url)).unwrap_err();
        assert!(err.to_string().contains("KEYDROP_OIDC_CLIENT_ID"), "{err}");
        let none = |_: &str| None;
        assert!(OidcConfig::from_lookup(&none, Some(&url))
            .unwrap()
            .is_none());
    }

    #[test]
    fn debug_output_never_shows_the_client_secret() {
        let url = Url::parse("http://127.0.0.1:8081").unwrap();
        let env = |k: &str| {
            let v = match k {
                "KEYDROP_OIDC_ISSUER" => "http://127.0.0.1:1/x",
                "KEYDROP_OIDC_CLIENT_ID" => "keydrop",
                "KEYDROP_OIDC_CLIENT_SECRET" => "hush-hush-secret",
                "KEYDROP_OIDC_ROLES" => "admins=admin",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let c = OidcConfig::from_lookup(&env, Some(&url)).unwrap().unwrap();
        assert!(!format!("{c:?}").contains("hush-hush"));
        assert_eq!(c.redirect_uri(), "http://127.0.0.1:8081/auth/callback");
        assert_eq!(c.scopes, ["email", "profile"]);
        assert_eq!(c.scopes_for(&["admins".into()]), ["admin"]);
        assert!(c.scopes_for(&["others".into()]).is_empty());
    }
}
