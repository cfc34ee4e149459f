//! Domain types that can't be invalid: parsed once at the edge, trusted inside.

pub mod actor;
pub mod brand;
mod duration;
mod email;
mod hosts;
pub mod net;
mod rate_limit;
mod reason;
pub mod retry;
mod scope;
mod status;
pub mod text;
mod token;

pub use actor::{Actor, OidcIdentity};
pub use duration::HumanDuration;
pub use email::Email;
pub use hosts::InternalHosts;
pub use net::{IpNet, ProxyConfig};
pub use rate_limit::RateLimit;
pub use reason::{Reason, ReasonError};
pub use scope::{Scope, Scopes};
pub use status::SecretStatus;
pub use token::{drop_url, DropToken, LoginSecret, SessionSecret, StaffSecret, TokenHash};
