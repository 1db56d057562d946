//! Pre-execution requeue: a pod that failed before the task process started does not cost the
//! user a retry (Airflow PR #69058; `docs/decisions.md`, "Pre-execution requeue").
//!
//! The authoritative signal is the task instance still being QUEUED in the DB (the task process
//! writes RUNNING when it starts); the container reason is only an opt-out. Three departures from
//! Airflow, each closing a hole it leaves:
//!
//! - **dedupe by pod uid, for every pod of the try**: Airflow remembers only the last requeued
//!   pod, so a watch replay of an *older* failed pod requeues again (with a budget above 1, one
//!   pod failure can create several pods);
//! - **the budget travels on the pod** ([`LAUNCH_ATTEMPT_ANNOTATION`]): an executor that adopts
//!   the try after a failover continues it instead of starting over;
//! - **the cause is recorded** ([`RequeueCause`]): eviction, preemption, node loss, a main
//!   container that never started, an image pull failure, an admission rejection;
//! - **a create that keeps failing on a transient API error is a launch failure too**: Airflow
//!   fails the try once `task_publish_max_retries` is used, which charges the user a retry for a
//!   task that never started (an API server partition at the wrong moment). Here the try takes
//!   the same path as a pod that failed before its task started: requeued while QUEUED and
//!   within `pod_launch_failure_retries`, failed otherwise.

pub use crate::command::RequeueCause;
pub use crate::config::RequeueDedupe;
use crate::config::{Config, RetryLimit};
use crate::db::TaskState;
pub use crate::label::LAUNCH_ATTEMPT_ANNOTATION;
use crate::watch::FailureDetails;

const IMAGE_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ImageInspectError",
    "ErrImageNeverPull",
];

fn is_admission_reason(r: &str) -> bool {
    r.starts_with("OutOf")
        || matches!(
            r,
            "NodeAffinity"
                | "NodeSelectorMismatching"
                | "UnexpectedAdmissionError"
                | "InvalidNodeInfo"
                | "PodOSNotSupported"
                | "NodePorts"
        )
}

/// The most specific cause the pod shows.
#[must_use]
pub(crate) fn cause_of(details: &FailureDetails) -> RequeueCause {
    if let Some(r) = &details.disruption_reason {
        return RequeueCause::Disruption(r.as_str().into());
    }
    let waiting = details
        .pending_reason
        .as_deref()
        .or_else(|| details.container_reason());
    if let Some(r) = waiting.filter(|r| IMAGE_REASONS.contains(r)) {
        return RequeueCause::ImagePull(r.into());
    }
    if let Some(r) = details
        .pod_reason
        .as_deref()
        .filter(|r| is_admission_reason(r))
    {
        return RequeueCause::AdmissionRejected(r.into());
    }
    if details.main_container_never_started == Some(true) {
        return RequeueCause::ContainerNeverStarted;
    }
    RequeueCause::Unknown
}

/// Airflow's `_is_pre_execution_failure` for a failed pod: the task instance is still QUEUED and
/// the container reason is not excluded.
#[must_use]
pub fn is_pre_execution_failure(
    ti_state: Option<TaskState>,
    details: &FailureDetails,
    excluded: &[String],
) -> bool {
    if ti_state != Some(TaskState::Queued) {
        return false;
    }
    !details
        .container_reason()
        .is_some_and(|r| !r.is_empty() && excluded.iter().any(|e| e == r))
}

/// What to do with a try whose current pod failed, before asking the DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Fail the try normally (no DB question).
    Fail,
    /// Ask the DB whether the try is still QUEUED.
    AskDb,
}

/// What becomes of a try whose pod was deleted while Pending (watch row 4), once the DB
/// answered (or could not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeletedPending {
    /// Still QUEUED with a requeue left: requeue, as for any pre-start failure.
    Requeue,
    /// Still QUEUED with no requeue left, or no answer: the try waits for the scheduler's
    /// stuck-in-queued revoke, as in Airflow.
    WaitForRevoke,
    /// The task had started in that pod (its events were missed): it died with it.
    Fail,
    /// The try moved on (finished, or a new try): nothing is left to do or report.
    Forget,
}

/// The rule for a pod deleted while Pending, from the try's state in the DB (`None` when the DB
/// does not know it), whether the DB could answer at all, and whether the requeue rules (gate
/// and the host's rule) leave a requeue.
pub(crate) fn after_deleted_pending(
    state: Option<TaskState>,
    db_unavailable: bool,
    requeue_left: bool,
) -> DeletedPending {
    match (state, db_unavailable) {
        (_, true) => DeletedPending::WaitForRevoke,
        (Some(TaskState::Queued), false) if requeue_left => DeletedPending::Requeue,
        (Some(TaskState::Queued), false) => DeletedPending::WaitForRevoke,
        (Some(TaskState::Running), false) => DeletedPending::Fail,
        _ => DeletedPending::Forget,
    }
}

/// Checks everything that can be checked without the DB, in Airflow's order (a retained job
/// spec, the feature switch, the excluded reason, the budget). The uid dedupe happens before.
pub(crate) fn gate(
    config: &Config,
    retries: RetryLimit,
    has_template: bool,
    requeues_used: u32,
    details: &FailureDetails,
) -> Gate {
    if !has_template || retries.is_off() {
        return Gate::Fail;
    }
    let excluded = &config.pod_launch_failure_excluded_container_reasons;
    if details
        .container_reason()
        .is_some_and(|r| excluded.iter().any(|e| e == r))
    {
        return Gate::Fail;
    }
    if !retries.allows(requeues_used) {
        return Gate::Fail;
    }
    Gate::AskDb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::{AdmissionReason, DisruptionReason, ImagePullReason};
    use crate::watch::{ContainerFailure, ContainerType};

    fn with_reason(reason: &str) -> FailureDetails {
        FailureDetails {
            container: Some(ContainerFailure {
                container_state: "terminated".into(),
                container_reason: Some(reason.into()),
                container_message: None,
                exit_code: Some(1),
                container_type: ContainerType::Main,
                container_name: "base".into(),
            }),
            ..FailureDetails::default()
        }
    }

    /// Airflow's `test_is_pre_execution_failure`, the rows that apply to a failed
    /// pod (the SUCCESS row cannot reach this function: only failed outcomes do).
    #[test]
    fn test_is_pre_execution_failure() {
        let excluded = vec!["Error".to_string()];
        let none = FailureDetails::default();
        assert!(is_pre_execution_failure(
            Some(TaskState::Queued),
            &none,
            &excluded
        ));
        assert!(is_pre_execution_failure(
            Some(TaskState::Queued),
            &with_reason("ContainerStatusUnknown"),
            &excluded
        ));
        assert!(is_pre_execution_failure(
            Some(TaskState::Queued),
            &with_reason("ImagePullBackOff"),
            &excluded
        ));
        assert!(!is_pre_execution_failure(
            Some(TaskState::Queued),
            &with_reason("Error"),
            &excluded
        ));
        assert!(!is_pre_execution_failure(
            Some(TaskState::Running),
            &with_reason("ContainerStatusUnknown"),
            &excluded
        ));
        assert!(!is_pre_execution_failure(None, &none, &excluded));
        assert!(is_pre_execution_failure(
            Some(TaskState::Queued),
            &with_reason("Error"),
            &[]
        ));
    }

    #[test]
    fn gate_follows_airflow_order() {
        let d = FailureDetails::default();
        let cfg = Config::default();
        assert_eq!(
            gate(
                &cfg,
                cfg.settings().unwrap().launch_failure_retries,
                true,
                0,
                &d
            ),
            Gate::AskDb
        );
        assert_eq!(
            gate(
                &cfg,
                cfg.settings().unwrap().launch_failure_retries,
                true,
                1,
                &d
            ),
            Gate::Fail,
            "budget 1 used"
        );
        assert_eq!(
            gate(
                &cfg,
                cfg.settings().unwrap().launch_failure_retries,
                false,
                0,
                &d
            ),
            Gate::Fail,
            "no job spec"
        );
        assert_eq!(
            gate(
                &cfg,
                cfg.settings().unwrap().launch_failure_retries,
                true,
                0,
                &with_reason("Error")
            ),
            Gate::Fail,
            "excluded"
        );
        let off = Config {
            pod_launch_failure_retries: 0,
            ..Config::default()
        };
        assert_eq!(
            gate(
                &off,
                off.settings().unwrap().launch_failure_retries,
                true,
                0,
                &d
            ),
            Gate::Fail,
            "disabled skips the DB"
        );
        let unlimited = Config {
            pod_launch_failure_retries: -1,
            ..Config::default()
        };
        assert_eq!(
            gate(
                &unlimited,
                unlimited.settings().unwrap().launch_failure_retries,
                true,
                10_000,
                &d
            ),
            Gate::AskDb
        );
    }

    #[test]
    fn causes_from_the_pod() {
        let d = FailureDetails {
            disruption_reason: Some("EvictionByEvictionAPI".into()),
            ..with_reason("Error")
        };
        assert_eq!(
            cause_of(&d),
            RequeueCause::Disruption(DisruptionReason::EvictionByEvictionAPI)
        );
        let d = FailureDetails {
            pending_reason: Some("ErrImagePull".into()),
            ..FailureDetails::default()
        };
        assert_eq!(
            cause_of(&d),
            RequeueCause::ImagePull(ImagePullReason::ErrImagePull)
        );
        let d = FailureDetails {
            pod_reason: Some("OutOfcpu".into()),
            ..FailureDetails::default()
        };
        assert_eq!(
            cause_of(&d),
            RequeueCause::AdmissionRejected(AdmissionReason::OutOfcpu)
        );
        let d = FailureDetails {
            main_container_never_started: Some(true),
            ..FailureDetails::default()
        };
        assert_eq!(cause_of(&d), RequeueCause::ContainerNeverStarted);
        assert_eq!(cause_of(&FailureDetails::default()), RequeueCause::Unknown);
        assert_eq!(
            RequeueCause::Disruption("X".into()).to_string(),
            "disruption X"
        );
    }

    #[test]
    fn a_pod_deleted_while_pending_follows_the_db() {
        use TaskState::{Queued, Running, Success};
        assert_eq!(
            after_deleted_pending(Some(Queued), false, true),
            DeletedPending::Requeue
        );
        assert_eq!(
            after_deleted_pending(Some(Queued), false, false),
            DeletedPending::WaitForRevoke,
            "no requeue left: the scheduler's revoke decides"
        );
        assert_eq!(
            after_deleted_pending(None, true, true),
            DeletedPending::WaitForRevoke,
            "no answer: wait, never guess"
        );
        assert_eq!(
            after_deleted_pending(Some(Running), false, true),
            DeletedPending::Fail
        );
        assert_eq!(
            after_deleted_pending(Some(Success), false, true),
            DeletedPending::Forget
        );
        assert_eq!(
            after_deleted_pending(None, false, true),
            DeletedPending::Forget
        );
    }
}
