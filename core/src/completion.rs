//! Completion path: what happens to a pod and its try once the watch says the try ended
//! (Airflow's `_change_state`; `docs/decisions.md`, "Completion").
//!
//! The order is Airflow's: dispose of the pod (delete, or label it done), then report. Two
//! departures, both so that an API error can never turn into a loop: a pod already gone (the
//! event is a DELETED) is not deleted again, and a failed clean-up is retried on a bounded
//! exponential back-off (`time::retry_backoff_ms`) instead of being re-put on the result queue at once.

use crate::config::Config;
use crate::watch::{FailureDetails, PodOutcome, Rule};

/// What to do with a finished pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposal {
    /// `DELETE` it (404 counts as done).
    Delete,
    /// Patch `airflow_executor_done=True`, which takes it out of the watch selector.
    MarkDone,
}

/// Where the pod is when its outcome is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodState {
    /// Already deleted (the event is a DELETED): nothing to dispose of.
    Gone,
    /// Its containers have all exited (phase Succeeded or Failed).
    Terminal,
    /// Terminal and already being deleted (`deletionTimestamp` set): it goes away on its own,
    /// so a done label would be a wasted call.
    TerminalDeleting,
    /// Still Pending or Running: it may yet start or keep running the task.
    Live,
}

/// Step 4 of the completion path: `delete_worker_pods` deletes unless the try failed and
/// `delete_worker_pods_on_failure` is off (failed pods are kept for debugging); without
/// `delete_worker_pods` every finished pod is labelled done. `None` when the pod is already gone.
///
/// **Where we differ on purpose:**
/// - a failed pod that is still live (Pending with a fatal waiting reason, or `ProviderFailed`)
///   is deleted (`delete_live_failed_pods`). Airflow keeps it, but its kubelet keeps pulling the
///   image and may start the task later, next to the try's next pod;
/// - a failed pod kept for debugging (`delete_worker_pods_on_failure` off) is labelled done
///   (unless `label_kept_failed_pods_done` is off).
///   Airflow makes no call for it, so it still matches every adoption selector: when its
///   scheduler dies after requeueing it, an adopter takes the same failure again and spends a
///   second requeue on it (swarm seed 1993 of `steady-ha`). The label marks the outcome as
///   taken; the pod itself stays for `kubectl logs`.
pub(crate) fn disposal(config: &Config, outcome: &PodOutcome, pod: PodState) -> Option<Disposal> {
    let failed = matches!(outcome, PodOutcome::Failed { .. });
    if pod == PodState::Gone
        || !matches!(outcome, PodOutcome::Failed { .. } | PodOutcome::Succeeded)
    {
        return None;
    }
    if failed && pod == PodState::Live && config.delete_live_failed_pods {
        return Some(Disposal::Delete);
    }
    if !config.delete_worker_pods {
        Some(Disposal::MarkDone)
    } else if !failed || config.delete_worker_pods_on_failure {
        Some(Disposal::Delete)
    } else {
        (config.label_kept_failed_pods_done && pod != PodState::TerminalDeleting)
            .then_some(Disposal::MarkDone)
    }
}

/// How the executor learnt that a pod ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evidence {
    /// A watch event (or a listed pod) classified by `rule`.
    Event(Rule),
    /// A tracked pod missing from a relist: it was deleted while the watch was down.
    Vanished,
    /// The pod stayed Pending longer than `worker_pods_pending_timeout`; the executor deleted it.
    PendingTimeout,
    /// The pod could not be created (a transient API error after every publish retry).
    PublishFailed,
}

/// The reason reported with a failed try: what happened, then every cause the pod shows.
pub(crate) fn failure_reason(details: &FailureDetails, evidence: Evidence) -> String {
    if evidence == Evidence::PublishFailed {
        // The pod never existed: the API's answer is all there is to say.
        let answer = details.pod_message.as_deref().unwrap_or("unknown error");
        return format!("pod creation failed: {answer}");
    }
    let headline = match evidence {
        Evidence::Vanished => "Pod vanished while the watch was down",
        Evidence::PendingTimeout => "Pod pending longer than worker_pods_pending_timeout",
        Evidence::PublishFailed => "Pod creation failed",
        Evidence::Event(Rule::DeletedWhileRunning) => "Pod deleted while running",
        Evidence::Event(Rule::DeletedWhilePending) => "Pod deleted before it started",
        Evidence::Event(Rule::ProviderFailed) => "Pod provider failed",
        Evidence::Event(_) => "Pod failed",
    };
    details.describe(headline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> PodOutcome {
        PodOutcome::Failed {
            details: FailureDetails::default(),
        }
    }

    #[test]
    fn disposal_follows_airflow_options() {
        let default = Config::default();
        assert_eq!(
            disposal(&default, &PodOutcome::Succeeded, PodState::Terminal),
            Some(Disposal::Delete)
        );
        assert_eq!(
            disposal(&default, &failed(), PodState::Terminal),
            Some(Disposal::MarkDone)
        );
        let on_failure = Config {
            delete_worker_pods_on_failure: true,
            ..Config::default()
        };
        assert_eq!(
            disposal(&on_failure, &failed(), PodState::Terminal),
            Some(Disposal::Delete)
        );
        let keep = Config {
            delete_worker_pods: false,
            delete_worker_pods_on_failure: true,
            ..Config::default()
        };
        assert_eq!(
            disposal(&keep, &failed(), PodState::Terminal),
            Some(Disposal::MarkDone)
        );
        assert_eq!(
            disposal(&keep, &PodOutcome::Succeeded, PodState::Terminal),
            Some(Disposal::MarkDone)
        );
        assert_eq!(
            disposal(&default, &PodOutcome::Succeeded, PodState::Gone),
            None
        );
        assert_eq!(
            disposal(&default, &PodOutcome::Adopted, PodState::Terminal),
            None
        );
        assert_eq!(
            disposal(&keep, &PodOutcome::Ignore, PodState::Terminal),
            None
        );
    }

    #[test]
    fn a_live_failed_pod_is_always_deleted() {
        let keep = Config {
            delete_worker_pods: false,
            ..Config::default()
        };
        for cfg in [Config::default(), keep] {
            assert_eq!(
                disposal(&cfg, &failed(), PodState::Live),
                Some(Disposal::Delete)
            );
        }
        assert_eq!(
            disposal(&Config::default(), &failed(), PodState::Terminal),
            Some(Disposal::MarkDone)
        );
    }

    #[test]
    fn a_kept_failed_pod_is_labelled_done_unless_it_is_going_away() {
        let cfg = Config::default();
        assert_eq!(disposal(&cfg, &failed(), PodState::TerminalDeleting), None);
        assert_eq!(
            disposal(&cfg, &PodOutcome::Succeeded, PodState::TerminalDeleting),
            Some(Disposal::Delete),
            "Airflow's delete of a finished pod stays"
        );
        let airflow = Config {
            label_kept_failed_pods_done: false,
            ..Config::default()
        };
        assert_eq!(disposal(&airflow, &failed(), PodState::Terminal), None);
    }

    #[test]
    fn failure_reasons_name_what_happened() {
        let none = FailureDetails::default();
        assert_eq!(
            failure_reason(&none, Evidence::Event(Rule::PhaseFailed)),
            "Pod failed"
        );
        assert_eq!(
            failure_reason(&none, Evidence::Vanished),
            "Pod vanished while the watch was down"
        );
        assert_eq!(
            failure_reason(&none, Evidence::Event(Rule::DeletedWhileRunning)),
            "Pod deleted while running"
        );
        let pending = FailureDetails {
            pending_reason: Some("ImagePullBackOff".into()),
            ..FailureDetails::default()
        };
        assert_eq!(
            failure_reason(&pending, Evidence::PendingTimeout),
            "Pod pending longer than worker_pods_pending_timeout: pending ImagePullBackOff"
        );
    }
}
