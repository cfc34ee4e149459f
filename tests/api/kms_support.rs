//! Real KMSs for the KMS tests, started on free loopback ports: OpenBao in
//! dev mode (Transit) and moto_server (AWS KMS). Both come from the private
//! Python venv `scripts/lib.sh ensure_pytools` builds under target/pytools.

use crate::helpers::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A tool from the pytools venv: on PATH (scripts/test puts it there) or in
/// this checkout's target/pytools/bin.
pub fn pytool(name: &str) -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/pytools/bin")
        .join(name);
    if local.exists() {
        return local;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    }) {
        return found;
    }
    panic!("{name} not found: run `source scripts/lib.sh && ensure_pytools` (scripts/test does)");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a signal to a child (`STOP` freezes it: calls to it time out).
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// An OpenBao dev server with Transit mounted and key `keydrop` created.
pub struct Bao {
    pub child: Child,
    pub addr: String,
    root: String,
    http: reqwest::Client,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = signal_quiet(&self.child, "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_quiet(child: &Child, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
}

impl Bao {
    pub async fn start() -> Self {
        let port = free_port();
        let root = uuid::Uuid::new_v4().to_string();
        let addr = format!("http://127.0.0.1:{port}");
        let child = Command::new(pytool("bao"))
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={root}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao");
        let bao = Self {
            child,
            addr,
            root,
            http: reqwest::Client::new(),
        };
        let url = format!("{}/v1/sys/health", bao.addr);
        let http = bao.http.clone();
        eventually("OpenBao to answer", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            }
        })
        .await;
        bao.root_call("sys/mounts/transit", json!({ "type": "transit" }))
            .await;
        bao.root_call("transit/keys/keydrop", json!({})).await;
        bao
    }

    /// A call with the root token (set-up only; Keydrop never gets it).
    pub async fn root_call(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A token whose only policy grants `capabilities` on the key's paths.
    pub async fn token_for(&self, verbs: &[&str]) -> String {
        let name = format!("keydrop-{}", verbs.join("-"));
        let policy: String = verbs
            .iter()
            .map(|v| format!("path \"transit/{v}/keydrop\" {{ capabilities = [\"update\"] }}\n"))
            .collect();
        self.root_call(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": policy }),
        )
        .await;
        let v = self
            .root_call(
                "auth/token/create",
                json!({ "policies": [name], "no_default_policy": true }),
            )
            .await;
        v["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// An AppRole whose tokens carry only `verbs` on the key and live `ttl`
    /// seconds; returns Keydrop's environment (role id, secret id in a file).
    pub async fn approle(
        &self,
        verbs: &[&str],
        ttl: u32,
        dir: &std::path::Path,
    ) -> Vec<(&'static str, String)> {
        let token = self.token_for(verbs).await; // writes the policy
        drop(token);
        let policy = format!("keydrop-{}", verbs.join("-"));
        self.root_call("sys/auth/approle", json!({ "type": "approle" }))
            .await;
        self.root_call(
            "auth/approle/role/keydrop",
            json!({ "token_policies": [policy], "token_ttl": ttl, "token_max_ttl": ttl }),
        )
        .await;
        let role = self.root_get("auth/approle/role/keydrop/role-id").await;
        let secret = self
            .root_call("auth/approle/role/keydrop/secret-id", json!({}))
            .await;
        let file = dir.join("secret-id");
        std::fs::write(&file, secret["data"]["secret_id"].as_str().unwrap()).unwrap();
        vec![
            ("KEYDROP_KMS", "vault-transit".into()),
            ("VAULT_ADDR", self.addr.clone()),
            (
                "VAULT_ROLE_ID",
                role["data"]["role_id"].as_str().unwrap().to_owned(),
            ),
            ("VAULT_SECRET_ID_FILE", file.display().to_string()),
        ]
    }

    async fn root_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Keydrop's environment for this server with `token`.
    pub fn env(&self, token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KEYDROP_KMS", "vault-transit".into()),
            ("VAULT_ADDR", self.addr.clone()),
            ("VAULT_TOKEN", token.to_owned()),
        ]
    }
}

/// moto_server standing in for AWS KMS (its client needs the `aws-kms` feature).
#[cfg(feature = "aws-kms")]
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

#[cfg(feature = "aws-kms")]
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "aws-kms")]
pub const AWS_REGION: &str = "eu-west-1";

#[cfg(feature = "aws-kms")]
impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(pytool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let url = format!("{endpoint}/moto-api/");
        eventually("moto_server to answer", || {
            let (http, url) = (http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok() }
        })
        .await;
        Self { child, endpoint }
    }

    /// An SDK client for set-up (creating keys) in the tests.
    pub async fn client(&self) -> aws_sdk_kms::Client {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let conf = aws_sdk_kms::Config::builder()
            .http_client(http)
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(AWS_REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// Creates a symmetric key; returns its ARN.
    pub async fn create_key(&self) -> String {
        let out = self.client().await.create_key().send().await.unwrap();
        out.key_metadata().unwrap().arn().unwrap().to_owned()
    }

    /// Keydrop's environment for `key`.
    pub fn env(&self, key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KEYDROP_KMS", "aws-kms".into()),
            ("KEYDROP_AWS_KMS_KEY_ID", key.to_owned()),
            ("AWS_REGION", AWS_REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }
}
