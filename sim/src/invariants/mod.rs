//! Named invariants, checked as the world runs (safety) and at the end (liveness).
//!
//! | invariant | fires when |
//! |---|---|
//! | `no_thrash` | an owner relabel takes a pod from a scheduler that is alive (running, not stalled) |
//! | `requeue_bounded` | a try is requeued more often than `pod_launch_failure_retries` in one submission, or twice for one failed pod |
//! | `no_retry_for_prestart_failure` | a user retry is consumed by a try whose task never started, before it had `prestart_budget` requeues |
//! | `no_double_execution` | two pods of one try could both start its task at once (both not terminal, neither being deleted, main container not ended) |
//! | `bounded_core_state` | an executor whose watch is up tracks more tries than are in flight or still have a pod, or anything once all work is done |
//! | `stall_detected` | a stalled scheduler still reports healthy a threshold (plus a probe period) after it stalled |
//! | `no_lost_task` | a task is not terminal at the end (heal time plus `lost_task_bound_s`) |
//! | `no_leaked_pod` | a pod is left at the end that the policy should have removed |
//! | `exactly_once_accounting` | a try's end is reported twice (by anyone), or a pod that ended while its try was awaited is never answered (no report, no requeue) |

mod checker;

use serde::Serialize;

use podwarden_core::{ContainerState, PodPhase, PodView};

pub(crate) use checker::Checker;

/// Every invariant's name.
pub const INVARIANTS: [&str; 9] = [
    "no_thrash",
    "requeue_bounded",
    "no_retry_for_prestart_failure",
    "no_double_execution",
    "bounded_core_state",
    "stall_detected",
    "no_lost_task",
    "no_leaked_pod",
    "exactly_once_accounting",
];

/// A broken invariant, with what is needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: String,
    /// Simulated time, milliseconds.
    pub at_ms: u64,
    /// The seed of the run.
    pub seed: u64,
    /// What exactly went wrong.
    pub detail: String,
    /// The last trace lines before it.
    pub recent_trace: Vec<String>,
    /// The command that reproduces it.
    pub reproduce: String,
}

pub(crate) fn is_revoked(view: &PodView) -> bool {
    view.labels
        .get(podwarden_core::label::POD_REVOKED)
        .is_some_and(|v| v == podwarden_core::label::TRUE)
}

pub(crate) fn is_terminal(view: &PodView) -> bool {
    matches!(view.phase, Some(PodPhase::Succeeded | PodPhase::Failed))
}

/// The pod could yet start (or is running) its main container: not terminal, not being deleted,
/// main container not ended (a pod deleted on a cluster before 1.27 keeps its phase).
pub(crate) fn could_start(view: &PodView) -> bool {
    !is_terminal(view)
        && view.deletion_timestamp.is_none()
        && !matches!(
            view.containers.first().map(|c| &c.state),
            Some(ContainerState::Terminated { .. })
        )
}
