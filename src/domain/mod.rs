//! Domain types that can't be invalid: parsed once at the edge, trusted inside.

pub mod brand;
mod duration;
mod email;
pub mod retry;
mod scope;
pub mod text;
mod token;

pub use duration::HumanDuration;
pub use email::Email;
pub use scope::{Scope, Scopes};
pub use token::{DropToken, LoginSecret, SessionSecret, StaffSecret, TokenHash};
