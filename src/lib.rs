//! Keydrop: a secure key drop for API credentials.
#![forbid(unsafe_code)]

pub mod crypto;
