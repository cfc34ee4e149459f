//! The CLI as a client of the internal API (`KEYDROP_API_URL` and
//! `KEYDROP_API_TOKEN` or `KEYDROP_API_TOKEN_FILE`): staff commands that need
//! no database credentials and no KEK ring, only a staff token. Answers are
//! read into the API's own view types (`http::api::views`), so what `--json`
//! prints is what the API answers.

use crate::http::api::views::ErrorBody;
use anyhow::{bail, Context as _};
use clap::Args;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use url::Url;

/// Where the internal API is and the token to call it with (global flags;
/// each reads its environment variable when not given).
#[derive(Args)]
pub struct ApiArgs {
    /// The internal listener's base URL, e.g. https://keydrop.internal:8081.
    /// When set, link, secret and audit-export commands go through the API
    /// (even if DATABASE_URL is set too).
    #[arg(long, global = true, env = "KEYDROP_API_URL", value_name = "URL")]
    pub api_url: Option<Url>,
    /// The staff token (prefer the environment or --api-token-file: a flag
    /// shows in the process list).
    #[arg(
        long,
        global = true,
        env = "KEYDROP_API_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    api_token: Option<SecretString>,
    /// A file holding the staff token.
    #[arg(
        long,
        global = true,
        env = "KEYDROP_API_TOKEN_FILE",
        value_name = "PATH"
    )]
    api_token_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiArgs")
            .field("api_url", &self.api_url.as_ref().map(Url::as_str))
            .field("api_token", &self.api_token.as_ref().map(|_| "[redacted]"))
            .field("api_token_file", &self.api_token_file)
            .finish()
    }
}

/// An error the API answered: its status, code and message.
#[derive(Debug, thiserror::Error)]
#[error("the API refused ({status}, {code}): {message}")]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

/// A client of one Keydrop internal API.
pub struct Remote {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// The client, when `KEYDROP_API_URL` is set; an error when it is set
    /// without a token.
    pub fn from_args(args: &ApiArgs) -> anyhow::Result<Option<Self>> {
        let Some(mut base) = args.api_url.clone() else {
            return Ok(None);
        };
        // `…/keydrop` and `…/keydrop/` both mean the directory the API is under.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        if !matches!(base.scheme(), "http" | "https") {
            bail!("KEYDROP_API_URL must be an http:// or https:// URL");
        }
        let token = match (&args.api_token, &args.api_token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => {
                let raw = std::fs::read_to_string(path).with_context(|| {
                    format!("reading KEYDROP_API_TOKEN_FILE {}", path.display())
                })?;
                SecretString::from(raw.trim().to_owned())
            }
            (None, None) => bail!(
                "KEYDROP_API_URL is set but no token: set KEYDROP_API_TOKEN or \
                 KEYDROP_API_TOKEN_FILE (a staff token from `keydrop token create`)"
            ),
        };
        if token.expose_secret().is_empty() {
            bail!("the API token is empty");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("keydrop-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self { http, base, token }))
    }

    /// Calls `path` (under `/api/v1`) and reads the answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<T> {
        let url = self
            .base
            .join(&format!("api/v1/{}", path.trim_start_matches('/')))
            .context("building the API URL")?;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .query(query);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow::anyhow!("cannot reach the API at {}: {}", self.base, e.without_url())
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the API's answer")?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => ApiFailure {
                    status,
                    code: e.error.code,
                    message: e.error.message,
                }
                .into(),
                Err(_) => anyhow::anyhow!(
                    "the API answered {status} without an error body; is KEYDROP_API_URL the \
                     internal listener?"
                ),
            });
        }
        serde_json::from_slice(&bytes).context("the API's answer is not what this keydrop expects")
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.call(Method::GET, path, query, None::<&()>).await
    }
}
