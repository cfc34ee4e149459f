//! Keydrop: a secure key drop for API credentials.
#![forbid(unsafe_code)]

pub mod chain;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod kms;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod providers;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;
