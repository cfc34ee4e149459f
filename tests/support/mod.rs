//! Test support shared by both test binaries (`tests/api` and
//! `tests/browser`): the [`helpers::TestApp`] builder and the local
//! [`fakes`] of the provider APIs. It lives beside the binaries rather than
//! inside one of them, so neither binary reaches into the other's modules;
//! each includes this directory as its `support` module.

pub mod console;
pub mod fakes;
pub mod helpers;
pub mod openbao;
