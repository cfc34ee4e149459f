//! End-to-end tests in a real headless Chromium, driven over WebDriver
//! (`chromedriver`) with `fantoccini`: what a customer admin sees and does.
//!
//! A separate test binary from `tests/api`, so the API suite never needs a
//! browser. When chromedriver is missing, each test says so loudly and passes;
//! `scripts/test` installs it first, so CI always runs them. Screenshots of
//! every page land in `target/browser-artifacts/`.

mod driver;
mod drop_pages;
mod exact;
#[allow(dead_code, unused_imports)] // the browser tests use only part of the API fakes
#[path = "../api/fakes/mod.rs"]
mod fakes;
#[allow(dead_code)] // ... and of the API test helpers
#[path = "../api/helpers.rs"]
mod helpers;
mod phone;
