//! The staff console under test: Keydrop with single sign-on against a real
//! OpenID Provider (OpenBao, started per test; see `openbao.rs`), and a
//! browser-like client that signs in. The provider's login step is its
//! documented API: the user's userpass token on the authorization endpoint,
//! with the query Keydrop's redirect carried.

use super::helpers::TestApp;
use super::openbao::{OpenBao, User, ADMIN, INGESTION, OUTSIDER};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

pub struct Console {
    pub app: TestApp,
    pub bao: OpenBao,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Keydrop with the console on, signing in through a fresh OpenBao; `None`
/// (the test skips, loudly) when `bao` is not installed.
pub async fn spawn_console(db: PgPool) -> Option<Console> {
    spawn_console_with(db, Vec::new()).await
}

/// [`spawn_console`] with more environment (e.g. a provider fake's).
pub async fn spawn_console_with(db: PgPool, extra: Vec<(String, String)>) -> Option<Console> {
    let port = free_port();
    let internal = format!("http://127.0.0.1:{port}");
    let bao = OpenBao::start(
        &format!("{internal}/auth/callback"),
        &[&ADMIN, &INGESTION, &OUTSIDER],
    )
    .await?;
    let mut env: Vec<(&str, String)> = bao.env();
    env.push(("KEYDROP_INTERNAL_ADDR", format!("127.0.0.1:{port}")));
    env.push(("KEYDROP_INTERNAL_URL", internal));
    let app = TestApp::builder(db)
        .with_env(env)
        .with_env(extra)
        .spawn()
        .await;
    Some(Console { app, bao })
}

/// A browser: keeps cookies, follows no redirects.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

impl Console {
    /// `GET /login` in `browser`: the provider URL Keydrop redirects to.
    pub async fn start_login(&self, browser: &Client) -> String {
        let resp = browser.get(self.app.url("/login")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        location(&resp)
    }

    /// The callback URL the provider sends the browser to after `user` signs in.
    pub async fn provider_login(&self, user: &User, to_provider: &str) -> String {
        let answer = self.bao.authorize(user, to_provider).await;
        let code = answer["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {answer}"));
        let state = answer["state"].as_str().unwrap();
        self.app
            .url(&format!("/auth/callback?code={code}&state={state}"))
    }

    /// Signs `user` in; the browser then holds the session cookie.
    pub async fn login(&self, user: &User) -> Client {
        let browser = browser();
        let to_provider = self.start_login(&browser).await;
        let callback = self.provider_login(user, &to_provider).await;
        let resp = browser.get(callback).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "{}",
            resp.text().await.unwrap()
        );
        assert_eq!(location(&resp), "/links");
        browser
    }

    pub async fn page(&self, browser: &Client, path: &str) -> (StatusCode, String) {
        let resp = browser.get(self.app.url(path)).send().await.unwrap();
        let status = resp.status();
        let body = if status == StatusCode::SEE_OTHER {
            location(&resp)
        } else {
            resp.text().await.unwrap()
        };
        (status, body)
    }

    /// Posts a console form with the page's form token.
    pub async fn post(
        &self,
        browser: &Client,
        path: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("csrf_token", csrf)];
        form.extend_from_slice(fields);
        browser
            .post(self.app.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn events(&self, action: &str) -> Vec<(String, String, Option<String>, Value)> {
        sqlx::query_as(
            "SELECT actor_kind, outcome, actor_name, detail FROM audit_events WHERE action = $1 ORDER BY id",
        )
        .bind(action)
        .fetch_all(&self.app.db)
        .await
        .unwrap()
    }
}

/// The form token in a console page.
pub fn csrf(html: &str) -> String {
    super::helpers::csrf_from(html)
}
