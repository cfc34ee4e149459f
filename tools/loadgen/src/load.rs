//! Closed-loop HTTP load: C clients, each on its own keep-alive connection,
//! sending the next request as soon as the previous answer is read.

use crate::stats::{summary, Recorder};
use crate::LoadArgs;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// When a client records (after the warm-up) and when it stops: after the
/// duration, or, with `--requests`, after its share of a fixed count (then
/// everything is recorded: the instruction-count runs need exact counts).
#[derive(Clone, Copy)]
struct Window {
    record_from: Instant,
    end: Instant,
    /// Requests per client in `--requests` mode.
    share: Option<u64>,
}

impl Window {
    fn new(a: LoadArgs) -> Self {
        let now = Instant::now();
        match a.requests {
            Some(n) => Self {
                record_from: now,
                end: now + Duration::from_secs(86_400),
                share: Some(n.div_ceil(a.concurrency as u64)),
            },
            None => {
                let record_from = now + Duration::from_secs_f64(a.warmup);
                Self {
                    record_from,
                    end: record_from + Duration::from_secs_f64(a.duration),
                    share: None,
                }
            }
        }
    }

    /// Whether a client that has sent `sent` requests sends another.
    fn more(&self, sent: u64) -> bool {
        match self.share {
            Some(n) => sent < n,
            None => Instant::now() < self.end,
        }
    }
}

fn client(cookies: bool, follow: bool) -> reqwest::Result<reqwest::Client> {
    let redirects = if follow {
        reqwest::redirect::Policy::limited(2)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .cookie_store(cookies)
        .redirect(redirects)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
}

/// Runs `n` clients made by `spawn` and merges their recorders.
async fn gather(
    mode: &str,
    args: LoadArgs,
    tasks: Vec<tokio::task::JoinHandle<Recorder>>,
) -> anyhow::Result<Value> {
    let start = Instant::now();
    let mut all = Recorder::new();
    for t in tasks {
        all.merge(t.await?);
    }
    // A fixed count is timed by the wall clock; a duration run by its window.
    let seconds = match args.requests {
        Some(_) => start.elapsed().as_secs_f64(),
        None => args.duration,
    };
    Ok(summary(mode, args.concurrency, seconds, &all))
}

/// Sends `req`, reads the whole body, and records against `expect`.
async fn timed(rec: &mut Recorder, w: Window, req: reqwest::RequestBuilder, expect: u16) {
    let start = Instant::now();
    let outcome = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(_) if status == expect => Ok(()),
                Ok(body) => Err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )),
                Err(e) => Err(format!("reading body: {e}")),
            }
        }
        Err(e) => Err(format!("request: {e}")),
    };
    if start < w.record_from {
        return;
    }
    match outcome {
        Ok(()) => rec.ok(start.elapsed()),
        Err(e) => rec.error(e),
    }
}

/// The hidden `csrf_token` value on a drop page.
fn csrf_token(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\"")?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + "value=\"".len();
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_owned())
}

/// A client of the drop form: its CSRF token per link (from one GET each).
async fn form_client(
    urls: &[String],
    follow: bool,
) -> Result<(reqwest::Client, Vec<String>), String> {
    let c = client(true, follow).map_err(|e| e.to_string())?;
    let mut tokens = Vec::with_capacity(urls.len());
    for url in urls {
        let page = c.get(url).send().await.map_err(|e| e.to_string())?;
        let html = page.text().await.map_err(|e| e.to_string())?;
        tokens.push(csrf_token(&html).ok_or("no csrf_token on the drop page")?);
    }
    Ok((c, tokens))
}

/// Submissions spread over `urls` (drop links): client `i` takes links
/// `i, i + C, i + 2C, …` in turn (all of them when there are fewer links than
/// clients: then clients share links, and queue on their row locks). Each is
/// its POST (`303` to the receipt), or with `follow` the POST and the receipt
/// page (`200`).
pub async fn submit(urls: Vec<String>, follow: bool, args: LoadArgs) -> anyhow::Result<Value> {
    let expect = if follow { 200 } else { 303 };
    anyhow::ensure!(!urls.is_empty(), "no drop links given");
    let w = Window::new(args);
    let n = args.concurrency;
    let tasks = (0..n)
        .map(|i| {
            let mine: Vec<String> = if urls.len() >= n {
                urls.iter().skip(i).step_by(n).cloned().collect()
            } else {
                vec![urls[i % urls.len()].clone()]
            };
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                let (c, tokens) = match form_client(&mine, follow).await {
                    Ok(x) => x,
                    Err(e) => {
                        rec.error(format!("client {i} setup: {e}"));
                        return rec;
                    }
                };
                // A complete generic submission, about the size of a real API key.
                let forms: Vec<_> = tokens
                    .into_iter()
                    .map(|token| {
                        [
                            ("csrf_token", token),
                            ("submitter_name", format!("Bench Client {i}")),
                            ("submitter_email", format!("bench{i}@example.com")),
                            ("label", "Harvest API key".to_owned()),
                            (
                                "secret",
                                format!("bench-secret-{i:02}-0123456789abcdef0123456789abcdef"),
                            ),
                        ]
                    })
                    .collect();
                let mut sent = 0u64;
                while w.more(sent) {
                    let k = sent as usize % mine.len();
                    timed(&mut rec, w, c.post(&mine[k]).form(&forms[k]), expect).await;
                    sent += 1;
                }
                rec
            })
        })
        .collect();
    gather("submit", args, tasks).await
}

/// A plain form POST in a loop (the peer: Snappass's "store a secret" form).
pub async fn form(
    url: String,
    fields: Vec<(String, String)>,
    args: LoadArgs,
) -> anyhow::Result<Value> {
    let w = Window::new(args);
    let (url, fields) = (Arc::new(url), Arc::new(fields));
    let tasks = (0..args.concurrency)
        .map(|_| {
            let (url, fields) = (url.clone(), fields.clone());
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                let c = match client(false, false) {
                    Ok(c) => c,
                    Err(e) => {
                        rec.error(e.to_string());
                        return rec;
                    }
                };
                let mut sent = 0u64;
                while w.more(sent) {
                    timed(&mut rec, w, c.post(url.as_str()).form(&*fields), 200).await;
                    sent += 1;
                }
                rec
            })
        })
        .collect();
    gather("form", args, tasks).await
}

pub async fn reveal(
    base: String,
    token: String,
    ids_file: &std::path::Path,
    args: LoadArgs,
) -> anyhow::Result<Value> {
    let ids: Vec<String> = std::fs::read_to_string(ids_file)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|id| format!("{}/api/v1/secrets/{id}/reveal", base.trim_end_matches('/')))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "no secret ids in {}", ids_file.display());
    let ids = Arc::new(ids);
    let token = Arc::new(token);
    let w = Window::new(args);
    let n = args.concurrency;
    let tasks = (0..n)
        .map(|i| {
            let (ids, token) = (ids.clone(), token.clone());
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                let c = match client(false, false) {
                    Ok(c) => c,
                    Err(e) => {
                        rec.error(e.to_string());
                        return rec;
                    }
                };
                // Clients walk the pool interleaved, so two rarely wait on one row.
                let (mut k, mut sent) = (i, 0u64);
                while w.more(sent) {
                    let url = &ids[k % ids.len()];
                    k += n;
                    timed(&mut rec, w, c.post(url).bearer_auth(token.as_str()), 200).await;
                    sent += 1;
                }
                rec
            })
        })
        .collect();
    gather("reveal", args, tasks).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_csrf_token_in_a_form() {
        let html = r#"<form><input type="hidden" name="csrf_token" value="abc-_1"></form>"#;
        assert_eq!(super::csrf_token(html).as_deref(), Some("abc-_1"));
    }
}
