//! What each command awaiting an answer is for: the work in flight, one entry per command id.
//! The outbox pairs an answer with its entry and refuses an answer of the wrong kind.

use crate::completion::{Disposal, Evidence};
use crate::key::TaskKey;
use crate::pod::{PodPhase, PodRef, PodView};
use crate::requeue::RequeueCause;
use crate::time::Timestamp;
use crate::watch::FailureDetails;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cleanup {
    pub(super) pod: PodRef,
    pub(super) disposal: Disposal,
    /// Retries already made.
    pub(super) attempt: u32,
}

/// A failed pod waiting for the DB's answer on its try.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PendingDecision {
    pub(super) key: TaskKey,
    pub(super) pod: PodRef,
    pub(super) details: FailureDetails,
    pub(super) evidence: Evidence,
    pub(super) cause: RequeueCause,
    /// The pod was deleted while Pending (row 4): without a requeue the try waits for the
    /// scheduler's stuck-in-queued revoke, as in Airflow, instead of failing.
    pub(super) deleted_pending: bool,
    /// The host's requeue policy said no: the DB is asked only for a pod deleted while Pending,
    /// which then waits for the revoke as when the budget is used up.
    pub(super) vetoed: bool,
    /// When the DB was first asked (`pod_launch_failure_db_retry_timeout`).
    pub(super) first_asked: Timestamp,
    /// Times the DB could not answer so far.
    pub(super) unanswered: u32,
}

/// A handed-over try's pod being relabelled to this executor.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OrphanClaim {
    pub(super) round: u64,
    pub(super) key: TaskKey,
    pub(super) pod: PodRef,
    pub(super) uid: String,
    pub(super) phase: Option<PodPhase>,
    /// Requeues used, from the pod's `podwarden/launch-attempt` annotation.
    pub(super) requeues: u32,
}

/// What an answer is for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Awaiting {
    Create {
        key: TaskKey,
        pod: PodRef,
    },
    Cleanup(Cleanup),
    /// The relist of one watch's scope.
    Relist {
        scope: super::watch_state::Scope,
    },
    TaskState(Box<PendingDecision>),
    OrphanList {
        round: u64,
    },
    OrphanPatch(OrphanClaim),
    CompletedList,
    /// A relabel of a dead scheduler's pod, to be disposed of as `disposal` once it is ours.
    CompletedPatch {
        pod: PodRef,
        key: TaskKey,
        disposal: Disposal,
    },
    LeftoverList,
    LeftoverQuery {
        candidates: Vec<PodView>,
    },
    ZombieList,
    ZombieQuery {
        candidates: Vec<PodView>,
    },
    ZombieDelete {
        pod: PodRef,
    },
    RevokeList {
        key: TaskKey,
    },
    Revoke,
}

impl Awaiting {
    pub(super) fn wants_db(&self) -> bool {
        matches!(
            self,
            Self::TaskState(_) | Self::ZombieQuery { .. } | Self::LeftoverQuery { .. }
        )
    }

    pub(super) fn wants_list(&self) -> bool {
        matches!(
            self,
            Self::Relist { .. }
                | Self::OrphanList { .. }
                | Self::CompletedList
                | Self::LeftoverList
                | Self::ZombieList
                | Self::RevokeList { .. }
        )
    }
}
