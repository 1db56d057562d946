//! A try's pod failed: requeue it transparently if it never started, or report the failure.

use super::{Awaiting, Executor, PendingDecision, TaskPhase};
use crate::command::{CommandKind, ReportedState};
use crate::completion::{self, Evidence};
use crate::db::{DbOutcome, TaskState};
use crate::key::TaskKey;
use crate::pod::PodRef;
use crate::requeue::{self, Gate, RequeueCause, RequeueDedupe};
use crate::watch::{FailureDetails, Rule};

impl Executor {
    /// The try `key` lost its pod `pod` to a failure.
    pub(super) fn on_try_failed(
        &mut self,
        key: TaskKey,
        pod: PodRef,
        uid: String,
        details: FailureDetails,
        evidence: Evidence,
    ) {
        let dedupe = self.config.pod_launch_failure_dedupe;
        let Some(task) = self.tasks.get_mut(&key) else {
            return;
        };
        // One pod failure is one decision, however many Failed events Kubernetes sends.
        let memory = task.failures.get_or_insert_with(Box::default);
        let duplicate = match dedupe {
            RequeueDedupe::EveryPod => !uid.is_empty() && !memory.failed_pods.insert(uid),
            RequeueDedupe::LastPod => {
                memory.last_requeued_pod.as_deref() == Some(pod.name.as_str())
            }
        };
        if duplicate {
            return;
        }
        let deleted_pending = evidence == Evidence::Event(Rule::DeletedWhilePending)
            || (evidence == Evidence::Vanished
                && details.pod_status.is_none()
                && details.container.is_none());
        let gate = requeue::gate(
            &self.config,
            task.template.is_some(),
            task.requeues,
            &details,
        );
        let cause = match evidence {
            Evidence::PendingTimeout => RequeueCause::PendingTimeout(
                details
                    .pending_reason
                    .clone()
                    .unwrap_or_else(|| "Pending".to_string()),
            ),
            Evidence::PublishFailed => {
                RequeueCause::PublishFailed(details.pod_message.clone().unwrap_or_default())
            }
            Evidence::Event(_) | Evidence::Vanished => requeue::cause_of(&details),
        };
        // The host's own rule can only veto a requeue podwarden's rules allow.
        let vetoed = gate == Gate::AskDb
            && !self
                .policies
                .may_requeue(&crate::policy::FailureContext::new(
                    &details,
                    task.requeues,
                    &cause,
                ));
        let gate = if vetoed { Gate::Fail } else { gate };
        // A pod deleted while Pending always asks: whether the try is QUEUED decides between
        // requeue (or waiting for the scheduler's revoke) and forgetting a try that moved on.
        match if deleted_pending { Gate::AskDb } else { gate } {
            Gate::Fail => self.fail_try(key, &details, evidence),
            Gate::AskDb => {
                task.phase = TaskPhase::Deciding { pod: pod.clone() };
                let decision = PendingDecision {
                    key: key.clone(),
                    pod,
                    details,
                    evidence,
                    cause,
                    deleted_pending,
                    vetoed,
                };
                self.emit_query(
                    CommandKind::QueryTaskStates { keys: vec![key] },
                    Awaiting::TaskState(Box::new(decision)),
                );
            }
        }
    }

    /// The DB answered whether a failed try is still QUEUED.
    pub(super) fn on_task_state(&mut self, d: PendingDecision, outcome: DbOutcome) {
        let Some(task) = self.tasks.get_mut(&d.key) else {
            return;
        };
        if task.phase != (TaskPhase::Deciding { pod: d.pod.clone() }) {
            return;
        }
        // No answer for the try, or no DB: fail normally, never requeue blindly.
        let outcome_unavailable = matches!(outcome, DbOutcome::Unavailable { .. });
        let state = match outcome {
            DbOutcome::TaskStates { states } => states
                .into_iter()
                .find(|(k, _)| *k == d.key)
                .and_then(|(_, s)| s),
            DbOutcome::UnfinishedTasks { .. } | DbOutcome::Unavailable { .. } => None,
        };
        let excluded = &self.config.pod_launch_failure_excluded_container_reasons;
        let budget_left = !d.vetoed
            && requeue::gate(
                &self.config,
                task.template.is_some(),
                task.requeues,
                &d.details,
            ) == Gate::AskDb;
        if d.deleted_pending && !(budget_left && state == Some(TaskState::Queued)) {
            match (state, outcome_unavailable) {
                // Still QUEUED with no requeue left, or no answer: the try waits for the
                // scheduler's stuck-in-queued revoke, as in Airflow.
                (_, true) | (Some(TaskState::Queued), false) => {
                    task.phase = TaskPhase::Launched { pod: d.pod }
                }
                // The task had started in that pod (its events were missed): it died with it.
                (Some(TaskState::Running), false) => self.fail_try(d.key, &d.details, d.evidence),
                // The try moved on (finished, or a new try): nothing is left to do or report.
                _ => {
                    self.tasks.remove(&d.key);
                }
            }
            return;
        }
        if budget_left && requeue::is_pre_execution_failure(state, &d.details, excluded) {
            task.requeues += 1;
            task.failures
                .get_or_insert_with(Box::default)
                .last_requeued_pod = Some(d.pod.name.clone());
            task.phase = TaskPhase::Queued;
            task.launch = None;
            task.publish_retries = 0;
            let attempt = task.requeues;
            self.launch.push(d.key.clone());
            self.emit(CommandKind::Requeue {
                key: d.key,
                attempt,
                cause: d.cause,
                failed_pod: d.pod,
            });
        } else {
            self.fail_try(d.key, &d.details, d.evidence);
        }
    }

    /// Reports the try failed and forgets it.
    pub(super) fn fail_try(&mut self, key: TaskKey, details: &FailureDetails, evidence: Evidence) {
        self.tasks.remove(&key);
        let reason = completion::failure_reason(details, evidence);
        self.emit_report(key, ReportedState::Failed, Some(reason));
    }
}
