//! One run's identity and result: what `run`, `compare`, the pictures and the sweeps report on.
//! A leaf, so the files that print or draw a run need not import the runner that makes it.

use serde::Serialize;

use crate::world::RunOutcome;

/// One run's identity and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Policy preset used.
    pub policy: String,
    /// What happened.
    pub outcome: RunOutcome,
}
