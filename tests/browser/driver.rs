//! A headless Chromium driven through ChromeDriver (WebDriver), one per test.
//!
//! Each test starts its own `chromedriver` on a free port with a fresh
//! profile directory, so tests stay independent under nextest (one process
//! per test) and `cargo test` (threads) alike. Everything is torn down on
//! drop, including when a test panics.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flags this machine's Chromium needs: headless, as root (no sandbox),
/// and no background traffic (the network is closed, and tests must not
/// depend on Google's hosts).
const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// Where ChromeDriver is: `KEYDROP_TEST_CHROMEDRIVER` (set by `scripts/test`,
/// which installs it), else Debian's `/usr/bin/chromedriver`. Missing, the
/// test fails: a browser test that passes without a browser proves nothing.
pub fn chromedriver_path() -> PathBuf {
    let path = std::env::var_os("KEYDROP_TEST_CHROMEDRIVER")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    assert!(
        path.exists(),
        "chromedriver not found at {}: run scripts/test (it installs Debian's chromium and \
         chromium-driver), or set KEYDROP_TEST_CHROMEDRIVER to a chromedriver binary",
        path.display()
    );
    path
}

/// Screen the browser pretends to have.
#[derive(Clone, Copy, Debug)]
pub enum Screen {
    Desktop,
    /// A 375 px wide phone (iPhone-sized viewport, touch, device pixel ratio 2).
    Phone,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    profile: PathBuf,
    http: reqwest::Client,
}

impl Browser {
    /// Starts chromedriver and a Chromium session (failing the test when
    /// chromedriver is not installed).
    pub async fn start(screen: Screen) -> Self {
        let chromedriver = chromedriver_path();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile =
            std::env::temp_dir().join(format!("keydrop-browser-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile).unwrap();
        let http = reqwest::Client::new();
        let browser = Self {
            client: wait_and_connect(port, &http, &profile, screen).await,
            driver,
            port,
            profile,
            http,
        };
        // Desktop: a common laptop viewport. Phone: set by mobile emulation.
        if let Screen::Desktop = screen {
            browser.client.set_window_size(1280, 900).await.unwrap();
        }
        browser
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} on the page: {e}"))
    }

    /// The text of an element. Retries while a navigation replaces the page
    /// between finding the element and reading it (a stale element).
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..40 {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    return t;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.find(css).await.text().await.unwrap()
    }

    /// The `value` property of an input.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Runs a script (WebDriver executes it even though CSP forbids page scripts).
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Presses keys through the WebDriver actions API, as a keyboard would:
    /// each char is a key (use `fantoccini::key::Key::Tab` etc. for special keys).
    pub async fn keys(&self, keys: &str) {
        let mut seq = KeyActions::new("keyboard".into());
        for c in keys.chars() {
            seq = seq
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(seq).await.unwrap();
    }

    /// The id of the focused element (empty for `<body>`), or its tag name when it has none.
    pub async fn focused(&self) -> String {
        self.eval("const e = document.activeElement; return e.id || e.tagName.toLowerCase();")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let session = self.client.session_id().await.unwrap().unwrap();
        let url = format!(
            "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
            self.port
        );
        let resp: Value = self
            .http
            .post(url)
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(resp["value"].get("error").is_none(), "{cmd}: {resp}");
        resp["value"].clone()
    }

    /// Pastes `text` into the field found by `css`, as the user's own input
    /// (CDP `Input.insertText`): unlike setting `.value` from a script, the
    /// browser applies everything it applies to a paste, such as `maxlength`
    /// and an `<input>`'s removal of line breaks. Much faster than typing
    /// thousands of characters key by key.
    pub async fn paste(&self, css: &str, text: &str) {
        self.eval(&format!(
            "const e = document.querySelector({}); e.focus(); e.select();",
            serde_json::to_string(css).unwrap()
        ))
        .await;
        self.cdp("Input.insertText", json!({ "text": text })).await;
    }

    /// Emulates a screen `width` CSS pixels wide (narrower than a desktop
    /// window may be made).
    pub async fn emulate_width(&self, width: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
    }

    /// Browser console entries (errors, warnings, CSP violations) since the last call.
    pub async fn console(&self) -> Vec<LogEntry> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let url = format!("http://127.0.0.1:{}/session/{session}/se/log", self.port);
        let resp: Value = self
            .http
            .post(url)
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log from chromedriver: {resp}"))
            .iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Asserts that the browser logged nothing at warning level or above
    /// (CSP violations are logged as errors), and that the page's stylesheets
    /// loaded and applied. `expected_status` allows the one "failed to load
    /// resource" entry Chromium logs for a page served with that status (422, 410, …).
    pub async fn assert_clean_console(&self, page: &str, expected_status: Option<u16>) {
        let entries = self.console().await;
        let bad: Vec<&LogEntry> = entries
            .iter()
            .filter(|e| e.level == "SEVERE" || e.level == "WARNING")
            .filter(|e| {
                !expected_status.is_some_and(|s| {
                    e.source == "network"
                        && e.message
                            .contains(&format!("the server responded with a status of {s}"))
                })
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{page}: console errors or CSP violations: {bad:#?}"
        );
        let sheets = self
            .eval(
                "return Array.from(document.styleSheets)
                    .map(s => { try { return s.cssRules.length } catch (e) { return -1 } });",
            )
            .await;
        let rules: Vec<i64> = serde_json::from_value(sheets).unwrap();
        assert!(
            // keydrop.css and the brand's colour sheet (/brand/theme-….css).
            !rules.is_empty() && rules.iter().all(|r| *r > 0),
            "{page}: a stylesheet did not load or apply: {rules:?}"
        );
    }

    /// Saves a PNG of the viewport (or the whole page, see `full_page`) under
    /// `target/browser-artifacts/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.full_page_png().await;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// A screenshot of the whole page: the window is grown to the document
    /// height first (desktop only; on the phone, the viewport is what a user sees first).
    async fn full_page_png(&self) -> Vec<u8> {
        let height = self
            .eval("return document.documentElement.scrollHeight;")
            .await
            .as_u64()
            .unwrap_or(900);
        let (w, h) = self.client.get_window_size().await.unwrap();
        let is_phone = self.eval("return window.innerWidth;").await.as_u64() == Some(375);
        if is_phone {
            return self.client.screenshot().await.unwrap();
        }
        let target = u32::try_from(height.clamp(300, 4000) + 120).unwrap();
        self.client
            .set_window_size(u32::try_from(w).unwrap(), target)
            .await
            .unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client
            .set_window_size(u32::try_from(w).unwrap(), u32::try_from(h).unwrap())
            .await
            .unwrap();
        png
    }

    /// Ends the session cleanly (the driver is killed on drop either way).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver takes its Chromium down with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[derive(Debug)]
#[allow(dead_code)] // fields are read through Debug in assertion messages
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// `target/browser-artifacts/` (respects `CARGO_TARGET_DIR`).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-artifacts")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn capabilities(profile: &Path, screen: Screen) -> serde_json::Map<String, Value> {
    let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| (*s).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut options = json!({ "args": args });
    let binary =
        std::env::var("KEYDROP_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&binary).exists() {
        options["binary"] = json!(binary);
    }
    if let Screen::Phone = screen {
        options["mobileEmulation"] = json!({
            "deviceMetrics": { "width": 375, "height": 812, "pixelRatio": 2.0, "touch": true, "mobile": true }
        });
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// Waits for chromedriver to listen, then opens a session.
async fn wait_and_connect(
    port: u16,
    http: &reqwest::Client,
    profile: &Path,
    screen: Screen,
) -> Client {
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http
            .get(format!("{base}/status"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        if ready.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities(profile, screen))
        .connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"))
}
