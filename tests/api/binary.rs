//! The `keydrop` binary itself: start-up refusals and what it logs.

use crate::helpers::{assert_loopback_only, closed_upstreams, new_kek};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A URL for the test's own database, derived from DATABASE_URL.
pub fn database_url(db: &PgPool) -> String {
    let name = db.connect_options().get_database().unwrap().to_owned();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// The binary with a clean environment: ephemeral ports, no rate limit and
/// every provider upstream on a closed loopback port (tests add fakes).
pub fn keydrop(db_url: &str, keks: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keydrop"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("KEYDROP_KEKS", keks)
        .env("KEYDROP_PUBLIC_ADDR", "127.0.0.1:0")
        .env("KEYDROP_INTERNAL_ADDR", "127.0.0.1:0")
        .env("KEYDROP_RATE_LIMIT", "off")
        .envs(closed_upstreams());
    cmd
}

/// Fails the test when the command's environment names a host beyond loopback.
pub fn assert_command_loopback_only(cmd: &Command) {
    let env: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .filter(|(k, _)| k != "PATH")
        .collect();
    assert_loopback_only(
        "keydrop command",
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
}

pub fn run(cmd: &mut Command) -> (bool, String, String) {
    assert_command_loopback_only(cmd);
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `keydrop serve`, waits for its listening line; returns the child, its
/// public and internal base URLs, and a reader thread's handle to all it printed.
pub fn serve(cmd: Command) -> (Child, String, String, std::sync::mpsc::Receiver<String>) {
    serve_with(cmd, &[])
}

/// [`serve`] with flags after `serve` (e.g. `--no-migrate`).
pub fn serve_with(
    mut cmd: Command,
    flags: &[&str],
) -> (Child, String, String, std::sync::mpsc::Receiver<String>) {
    assert_command_loopback_only(&cmd);
    let mut child = cmd
        .arg("serve")
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        let _ = tx2.send(s);
    });
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("keydrop listening") {
                let _ = addr_tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tx.send(all);
    });
    let line = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    // A JSON line (KEYDROP_LOG_FORMAT=json) or a pretty one.
    if let Ok(v) = serde_json::from_str::<Value>(&line) {
        let addr = |key: &str| format!("http://{}", v[key].as_str().unwrap());
        return (child, addr("public"), addr("internal"), rx);
    }
    let plain = strip_ansi(&line);
    let find = |key: &str| {
        let start = plain.find(key).unwrap() + key.len();
        let rest = &plain[start..];
        format!("http://{}", rest.split_whitespace().next().unwrap())
    };
    (child, find("public="), find("internal="), rx)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_esc = false;
    for c in s.chars() {
        match (in_esc, c) {
            (false, '\x1b') => in_esc = true,
            (true, 'm') => in_esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[sqlx::test]
async fn serve_refuses_to_start_when_a_kek_id_has_a_different_key(db: PgPool) {
    let url = database_url(&db);
    let good = new_kek("prod");
    let (child, _, _, _) = serve(keydrop(&url, &good));
    stop(child);
    let impostor = new_kek("prod");
    let started = Instant::now();
    let (ok, _, stderr) = run(keydrop(&url, &impostor).arg("serve"));
    assert!(!ok, "must refuse to start");
    assert!(
        stderr.contains("prod") && stderr.contains("different key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&impostor[5..]) && !stderr.contains(&good[5..]),
        "no key material in the message"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn malformed_kek_rings_exit_non_zero_naming_the_problem_without_the_key() {
    let short = "k=QUJDREVGR0hJSktMTU5PUA==";
    let dup = format!("{},{}", new_kek("a"), new_kek("a"));
    let cases: [(&str, &str); 4] = [
        (short, "32 bytes"),
        ("k=%%%notbase64", "base64"),
        (&dup, "more than once"),
        (" ", "empty"),
    ];
    for (keks, needle) in cases {
        let (ok, stdout, stderr) = run(keydrop("postgres://127.0.0.1:1/none", keks).arg("serve"));
        assert!(!ok, "{keks}");
        assert!(stderr.contains(needle), "{keks}: {stderr}");
        assert!(stdout.is_empty());
        if keks.len() > 10 {
            let key_part = &keks[keks.find('=').unwrap() + 1..];
            assert!(!stderr.contains(key_part), "{stderr}");
        }
    }
}

#[test]
fn keygen_prints_an_id_and_a_32_byte_key() {
    let (ok, stdout, _) = run(keydrop("x", "x").args(["keygen", "--id", "kek-2027"]));
    assert!(ok);
    let line = stdout.trim();
    let key = line.strip_prefix("kek-2027=").unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len(),
        32
    );
    let (ok, _, stderr) = run(keydrop("x", "x").args(["keygen", "--id", "bad id!"]));
    assert!(!ok && stderr.contains("invalid KEK id"));
}

pub fn stop(mut child: Child) {
    // SIGTERM for a graceful stop.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[sqlx::test]
async fn a_trace_level_log_of_the_whole_flow_contains_no_secret_or_token(db: PgPool) {
    let url = database_url(&db);
    let keks = new_kek("logkek");
    let kek_material = keks[keks.find('=').unwrap() + 1..].to_owned();
    let (ok, token, _) =
        run(keydrop(&url, &keks).args(["token", "create", "--name", "ops", "--scope", "admin"]));
    assert!(ok);
    let token = token.trim().to_owned();
    // Live checks go to a fake Greenhouse, so its bearer token passes through the server too.
    let fake = crate::fakes::Fake::start(crate::fakes::Behaviour {
        denied: vec!["offers".into()],
        ..Default::default()
    })
    .await;
    let mut cmd = keydrop(&url, &keks);
    cmd.env("KEYDROP_LOG", "trace");
    for (k, v) in fake.env() {
        cmd.env(k, v);
    }
    // The email path too: a link sent through a real SMTP server.
    let smtp = crate::smtp::SmtpServer::start(&[]);
    for (k, v) in smtp.env() {
        cmd.env(k, v);
    }
    let (child, public, internal, output) = serve(cmd);

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    // Every response's status line, headers and body, except the reveal's body.
    let mut responses = String::new();
    async fn keep(all: &mut String, resp: reqwest::Response) -> (StatusCode, String) {
        let status = resp.status();
        for (k, v) in resp.headers() {
            all.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        let body = resp.text().await.unwrap();
        all.push_str(&body);
        (status, body)
    }
    let mut links = Vec::new();
    for _ in 0..2 {
        let resp = client
            .post(format!("{internal}/api/v1/requests"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"organization": "Log Co", "provider": "greenhouse"}))
            .send()
            .await
            .unwrap();
        let (_, body) = keep(&mut responses, resp).await;
        let created: Value = serde_json::from_str(&body).unwrap();
        let u = created["url"].as_str().unwrap().to_owned();
        let t = u[u.find("/d/").unwrap() + 3..].to_owned();
        links.push((format!("{public}/d/{t}"), t, u));
    }
    let (link, link_token, link_url) = links[0].clone();
    let (_, html) = keep(&mut responses, client.get(&link).send().await.unwrap()).await;
    let csrf = crate::helpers::csrf_from(&html);
    let secret = crate::fakes::GH_CLIENT_SECRET;
    let client_id = crate::fakes::GH_CLIENT_ID;
    let form = |email: &'static str, secret: &'static str, csrf: String| {
        vec![
            ("csrf_token", csrf),
            ("submitter_name", "N".to_owned()),
            ("submitter_email", email.to_owned()),
            ("client_id", client_id.to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    // A failing submission first (bad email), then the real one.
    let (status, _) = keep(
        &mut responses,
        client
            .post(&link)
            .form(&form("bad", secret, csrf.clone()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, receipt) = keep(
        &mut responses,
        client
            .post(&link)
            .form(&form("n@example.com", secret, csrf.clone()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        receipt.contains("<code>Offers → List offers</code>"),
        "the live check ran"
    );
    let id = crate::helpers::reference_from(&receipt);
    let reveal = client
        .post(format!("{internal}/api/v1/secrets/{id}/reveal"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    for (k, v) in reveal.headers() {
        responses.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
    }
    let revealed: Value = reveal.json().await.unwrap();
    assert_eq!(revealed["fields"]["client_secret"], secret);
    let (_, meta) = keep(
        &mut responses,
        client
            .get(format!("{internal}/api/v1/secrets/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(meta.contains("missing_permissions"));
    keep(
        &mut responses,
        client
            .get(format!("{internal}/api/v1/audit"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // A wrong secret: rejected by the fake; the rejected value must not show up anywhere either.
    let (link2, _, _) = links[1].clone();
    let (_, page2) = keep(&mut responses, client.get(&link2).send().await.unwrap()).await;
    let csrf2 = crate::helpers::csrf_from(&page2);
    let rejected_secret = "REJECTED-secret-value-0000";
    let (status, _) = keep(
        &mut responses,
        client
            .post(&link2)
            .form(&form("n@example.com", rejected_secret, csrf2))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = format!("kds_{}", "Z".repeat(43));
    let (status, _) = keep(
        &mut responses,
        client
            .get(format!("{internal}/api/v1/secrets"))
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Unknown paths, a forged form, a bad JSON body: error pages must not echo anything secret.
    keep(
        &mut responses,
        client
            .get(format!("{public}/d/{link_token}x"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    keep(
        &mut responses,
        client
            .post(&link)
            .form(&form("n@example.com", secret, "forged".into()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    keep(
        &mut responses,
        client
            .post(format!("{internal}/api/v1/requests"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!("{{\"organization\": \"{secret}\""))
            .send()
            .await
            .unwrap(),
    )
    .await;

    let resp = client
        .post(format!("{internal}/api/v1/requests"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"organization": "Log Co", "provider": "generic", "send_to": "it@logco.example"}))
        .send()
        .await
        .unwrap();
    let (status, created) = keep(&mut responses, resp).await;
    assert_eq!(status, StatusCode::CREATED);
    let emailed = smtp.wait_for(1).await.remove(0).link().unwrap();
    let mail_token = emailed[emailed.find("/d/").unwrap() + 3..].to_owned();
    // And sent again (the first email must have left the queue: 409 until then).
    let link_id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resend = format!("{internal}/api/v1/requests/{link_id}/resend");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client
            .post(&resend)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = keep(&mut responses, resp).await;
        if status == StatusCode::ACCEPTED {
            break;
        }
        assert!(body.contains("email_queued"), "{status} {body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the first email stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = smtp.wait_for(2).await.remove(1).link().unwrap();
    assert_eq!(again, emailed, "the same link, sent again");

    stop(child);
    let mut logs = String::new();
    for _ in 0..2 {
        logs.push_str(&output.recv_timeout(Duration::from_secs(10)).unwrap());
    }
    assert!(
        logs.contains("TRACE") || logs.contains("trace"),
        "trace logging was on"
    );
    assert!(logs.contains("credential received"), "the flow was logged");
    let bearer = crate::fakes::GH_BEARER;
    for needle in [
        secret,
        client_id,
        rejected_secret,
        bearer,
        &token,
        &token[4..],
        &link_token,
        &link_token[4..],
        &mail_token,
        &mail_token[4..],
        &kek_material,
        &csrf,
        &wrong,
    ] {
        assert!(!logs.contains(needle), "log leaks {needle:?}");
    }
    // A link token may appear only in the link URL itself (the create response).
    let responses = responses
        .replace(&link_url, "<link url>")
        .replace(&links[1].2, "<link url>");
    for needle in [
        secret,
        rejected_secret,
        bearer,
        &token,
        &link_token,
        &link_token[4..],
        &mail_token,
        &kek_material,
        &wrong,
    ] {
        assert!(
            !responses.contains(needle),
            "an HTTP response leaks {needle:?}"
        );
    }
    // And at rest: the whole database.
    let dump = crate::storage::dump(&db).await;
    for needle in [
        secret,
        rejected_secret,
        bearer,
        &token,
        &link_token,
        &mail_token,
        &kek_material,
    ] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the database holds {needle:?}"
        );
    }
}
