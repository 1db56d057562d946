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
    /// than `scheduler_health_check_threshold`: the loop is stuck. Also set while the host's
    /// clock reads earlier than at the last drive (it stepped back and the executor has not been
    /// driven since): idleness cannot be measured then, and a running loop drives the executor
    /// again within a loop, so a probe that sees it several times in a row sees a stuck loop.
    pub not_driven: bool,
    /// Pods are tracked but the watch has made no progress (no event, bookmark or relist) for
    /// longer than `health_watch_stall_threshold`: the watch is stuck (Airflow #12644, #36998).
    pub watch_stalled: bool,
    /// Tries wait for a pod but no create has been sent for longer than
    /// `scheduler_health_check_threshold`: the launch backlog only grows (rate limited, or the
    /// API server refuses).
    pub launch_stalled: bool,
    /// The host's clock stepped (back, or forward by more than
    /// `scheduler_health_check_threshold` between two drives) within the last threshold. The
    /// executor keeps working through it (its own time stays monotonic), but a host that passes
    /// a wall clock as `now` should pass a monotonic one (see the crate documentation). A long
    /// forward gap also shows here: the core cannot tell a jump from a pause it was not told
    /// about. Meanwhile no peer is judged dead (see [`crate::liveness`]). Not a reason to
    /// restart the scheduler: a liveness probe should restart on `not_driven` only.
    pub clock_step: bool,
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
