//! Logging setup: one subscriber, pretty for people or JSON for machines.
//!
//! Nothing that holds a secret implements `Display` or un-redacted `Debug`,
//! and handlers never record request bodies, so secrets cannot reach the logs.

use std::io::IsTerminal as _;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the global subscriber. Logs go to stderr; stdout is for results.
/// `filter` was checked by [`crate::config::log_filter`]; should it still not
/// parse, the default filter is used (the caller has already refused it).
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter)
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    // Requests have one span: the list would repeat it on every line.
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            // Colours only for a person at a terminal: files and pipes get plain text.
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
