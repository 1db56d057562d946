//! Scenario files: the world to build, its load, its faults, and the policy under test.
//!
//! A scenario is TOML (or JSON) read with unknown keys rejected, so a typo is an error rather than
//! a silently ignored knob. Every field has a default; `docs/scenarios.md` lists them all.
//!
//! The data types are in `data`, reading a file and the policy presets in `loading`, the
//! checks in `validation`, their ranges in [`limits`].

mod data;
pub mod diagnostics;
pub mod limits;
mod loading;
pub mod shipped;
#[cfg(test)]
mod tests;
mod validation;

pub use self::data::{
    Cluster, Expectations, Fault, Latency, Load, RandomFaults, Scenario, ScenarioError, POLICIES,
};
pub use self::loading::apply_policy;
