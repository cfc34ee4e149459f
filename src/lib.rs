//! Keydrop: a secure key drop for API credentials.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod domain;
pub mod providers;
pub mod config;
pub mod telemetry;
pub mod store;
pub mod http;
pub mod service;
pub mod startup;
pub mod cli;
