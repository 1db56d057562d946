//! [`StateSize`]: how much an executor holds, by kind.

/// Counts of what the executor holds, for hosts, tests and the simulator's bounded-state check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StateSize {
    /// Tries queued, running, or waiting for a requeue decision.
    pub tasks: usize,
    /// Failed pods whose DB question waits to be asked again (the DB could not answer).
    #[serde(default)]
    pub db_retries: usize,
    /// Pods tracked (current pods of tries, and finished pods whose clean-up is under way).
    pub pods: usize,
    /// Commands sent (or held) and not yet answered.
    pub awaiting_replies: usize,
    /// Commands waiting for the API budget.
    pub held_commands: usize,
    /// Clean-ups waiting for their retry time.
    pub cleanup_retries: usize,
    /// Orphan hand-overs in progress.
    pub orphan_rounds: usize,
    /// Peer schedulers whose heartbeats are remembered.
    pub peers: usize,
}
