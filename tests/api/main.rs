//! Integration tests: the real server on port 0 against a fresh Postgres
//! database per test (`#[sqlx::test]`).

mod audit_chain;
mod audit_trail;
mod auth;
mod binary;
mod checks;
mod console;
mod console_actions;
mod console_tokens;
mod drop_flow;
mod edges;
mod faults;
mod fingerprints;
mod hardening;
mod hermetic;
mod hostile;
mod kms;
mod kms_support;
mod lifecycle;
mod links;
mod mail;
mod mail_console;
mod mail_resend;
mod operations;
mod operator;
mod ops_support;
mod processes;
mod providers;
mod reasons;
mod resubmission;
mod retention;
mod rotation;
mod smtp;
mod staff_cli;
mod storage;
#[path = "../support/mod.rs"]
mod support;
mod webhooks;

// Tests name the shared support as `crate::helpers` and `crate::fakes`.
use support::{fakes, helpers};
