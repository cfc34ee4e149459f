//! Use cases shared by the HTTP handlers and the CLI.

pub mod checks;
pub mod links;
pub mod secrets;
pub mod sessions;
pub mod submission;
pub mod tokens;
