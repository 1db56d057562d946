//! The executor's own health verdict, from progress rather than process existence.
//!
//! A scheduler whose process lives but whose loop is stuck (memory pressure, a blocking call)
//! passes an exec probe that only checks the process, or fails to fork one at all (Airflow
//! discussion #53662). The verdict here is computed from timestamps the executor already keeps:
//! O(1), no allocation, so a host can serve it from an in-process HTTP handler.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Why the executor is unhealthy; every flag false means healthy.
///
/// A struct of flags rather than a `Vec` so that computing it never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnhealthyReasons {
    /// The host has not driven the executor (`handle_input` / `handle_timeout`) for longer
    /// than `scheduler_health_check_threshold`: the loop is stuck.
    pub not_driven: bool,
    /// Pods are tracked but the watch has made no progress (no event, bookmark or relist) for
    /// longer than `health_watch_stall_threshold`: the watch is stuck (Airflow #12644, #36998).
    pub watch_stalled: bool,
    /// Tries wait for a pod but no create has been sent for longer than
    /// `scheduler_health_check_threshold`: the launch backlog only grows (rate limited, or the
    /// API server refuses).
    pub launch_stalled: bool,
}

/// A health verdict at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// When the executor was last driven.
    pub last_driven: Timestamp,
    /// Milliseconds since then.
    pub idle_ms: u64,
    /// What is wrong, if anything.
    pub reasons: UnhealthyReasons,
}

impl Health {
    /// Whether no reason applies.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.reasons == UnhealthyReasons::default()
    }
}
