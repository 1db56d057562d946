//! # podwarden
//!
//! Facade over [`podwarden_core`]: the sans-IO executor core. Depend on this crate to drive an
//! executor from your own host; see the core's crate documentation for the drive rule.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use podwarden_core::*;
