//! # podwarden
//!
//! Facade over [`podwarden_core`]: the sans-IO executor core. Depend on this crate to drive an
//! executor from your own host; see the core's crate documentation for the drive rule.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use podwarden_core::*;

/// `docs/testing-your-policy.md`, whose Rust snippets `cargo test --workspace` compiles and runs
/// as doctests of this crate (so the tutorial cannot drift from the kit's API).
#[cfg(doctest)]
#[doc = include_str!("../docs/testing-your-policy.md")]
pub struct TestingYourPolicy;
