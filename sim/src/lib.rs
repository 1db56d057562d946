//! # podwarden-sim
//!
//! A seeded discrete-event world that drives several schedulers, each hosting one
//! [`podwarden_core::Executor`], through node drains, SIGTERM storms, scheduler crashes and
//! stalls, and checks named invariants at every step ([`invariants`]). Build one from a
//! [`scenario::Scenario`] (or with [`WorldBuilder`]) and run it:
//!
//! ```
//! use podwarden_sim::{scenario::Scenario, trace::Trace, World};
//!
//! let scenario = Scenario { schedulers: 2, duration_s: 120.0, heal_s: 120.0, ..Scenario::default() };
//! let outcome = World::new(scenario, Some(7), Trace::hashing()).unwrap().run();
//! assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
//! assert_eq!(outcome.summary.unfinished, 0);
//! ```
//!
//! The same seed gives the same trace, byte for byte ([`World::run`] returns its hash). Also
//! here: [`classify`], which runs the watch classification table over a recorded watch stream.
//! The `podwarden-sim` binary is a thin command-line front end over these.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod builder;
pub mod classify;
pub mod cli;
pub mod comparison;
pub mod coverage;
pub mod custom;
pub mod extensions;
pub mod failures;
pub mod history;
pub mod invariants;
pub mod kube_replay;
pub mod plot;
pub mod replay;
pub mod reproduce;
pub mod roster;
mod run_report;
pub mod runner;
pub mod scenario;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shrink;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod summary;
pub mod sweep;
mod time;
pub mod trace;
pub mod watch_stream;
pub mod world;

pub use builder::WorldBuilder;
pub use world::{RunOutcome, World};
