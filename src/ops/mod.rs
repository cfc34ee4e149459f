//! Operations that keep Keydrop healthy over years: KEK rotation and
//! retention (crypto-shredding). Both are safe to run on several replicas at
//! once and beside serving traffic.

pub mod fingerprints;
pub mod retention;
pub mod rotate;
