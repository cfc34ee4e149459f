//! End-to-end tests in a real headless Chromium, driven over WebDriver
//! (`chromedriver`) with `fantoccini`: what a customer admin sees and does.
//!
//! A separate test binary from `tests/api`, so the API suite never needs a
//! browser. When chromedriver is missing, each test fails (a browser test
//! that passes without a browser proves nothing); `scripts/test` installs it.
//! Screenshots of every page land in `target/browser-artifacts/`.

mod branded;
mod console;
mod driver;
mod drop_pages;
mod exact;
mod phone;
// The browser tests use only part of the shared support (fakes, TestApp).
#[allow(dead_code, unused_imports)]
#[path = "../support/mod.rs"]
mod support;

use support::{fakes, helpers};
