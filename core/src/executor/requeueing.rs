//! A try's pod failed: requeue it transparently if it never started, or report the failure.

use super::awaiting::{Awaiting, PendingDecision};
use super::tries::TaskPhase;
use super::Executor;
use crate::command::ReportedState;
use crate::command::{DbQuery, Notice};
use crate::completion::{self, Evidence};
use crate::db::DbOutcome;
use crate::key::TaskKey;
use crate::pod::PodRef;
use crate::requeue::{self, DeletedPending, Gate, RequeueCause, RequeueDedupe};
use crate::time::{retry_backoff_ms, Timestamp};
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
            self.settings.launch_failure_retries,
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
                task.phase = TaskPhase::Deciding {
                    pod: self.pods.shared(&pod),
                };
                let decision = PendingDecision {
                    key,
                    pod,
                    details,
                    evidence,
                    cause,
                    deleted_pending,
                    vetoed,
                    first_asked: self.clock.now(),
                    unanswered: 0,
                };
                self.ask_task_state(decision);
            }
        }
    }

    fn ask_task_state(&mut self, decision: PendingDecision) {
        let keys = vec![decision.key.clone()];
        self.emit_query(
            DbQuery::QueryTaskStates { keys },
            Awaiting::TaskState(Box::new(decision)),
        );
    }

    /// Asks again the DB questions whose back-off is over (the DB could not answer them).
    pub(super) fn fire_db_retries(&mut self, now: Timestamp) {
        while let Some(entry) = self.db_retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let decision = entry.remove();
            if self.is_deciding(&decision.key, &decision.pod) {
                self.ask_task_state(decision);
            }
        }
    }

    fn is_deciding(&self, key: &TaskKey, pod: &PodRef) -> bool {
        self.tasks
            .get(key)
            .is_some_and(|t| matches!(&t.phase, TaskPhase::Deciding { pod: p } if **p == *pod))
    }

    /// The DB answered whether a failed try is still QUEUED.
    pub(super) fn on_task_state(&mut self, mut d: PendingDecision, outcome: DbOutcome) {
        if !self.is_deciding(&d.key, &d.pod) {
            return;
        }
        // No DB: ask again with back-off while `pod_launch_failure_db_retry_timeout` allows;
        // the decision needs the answer (requeue only a try that never started), and so does
        // the scheduler, which cannot record a failure without its DB either.
        let outcome_unavailable = matches!(outcome, DbOutcome::Unavailable { .. });
        let waited = self.clock.now().since(d.first_asked);
        if outcome_unavailable && waited < self.settings.db_retry_timeout_ms {
            d.unanswered = d.unanswered.saturating_add(1);
            let at = self.clock.now().plus_ms(retry_backoff_ms(d.unanswered));
            let seq = self.next_command_id().0;
            self.db_retries.insert((at, seq), d);
            return;
        }
        let Some(task) = self.tasks.get_mut(&d.key) else {
            return;
        };
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
                self.settings.launch_failure_retries,
                task.template.is_some(),
                task.requeues,
                &d.details,
            ) == Gate::AskDb;
        if d.deleted_pending {
            match requeue::after_deleted_pending(state, outcome_unavailable, budget_left) {
                DeletedPending::Requeue => {}
                DeletedPending::WaitForRevoke => {
                    task.phase = TaskPhase::Launched {
                        pod: self.pods.shared(&d.pod),
                    };
                    return;
                }
                DeletedPending::Fail => {
                    self.fail_try(d.key, &d.details, d.evidence);
                    return;
                }
                DeletedPending::Forget => {
                    self.tasks.remove(&d.key);
                    return;
                }
            }
        }
        if outcome_unavailable {
            // The DB stayed unreachable for the whole retry window: fail, saying why.
            let reason = format!(
                "{}; the metadata DB could not be asked whether the task had started \
                 (unreachable for {} s)",
                completion::failure_reason(&d.details, d.evidence),
                waited / 1000
            );
            self.tasks.remove(&d.key);
            self.emit_report(d.key, ReportedState::Failed, Some(reason));
            return;
        }
        if budget_left && requeue::is_pre_execution_failure(state, &d.details, excluded) {
            if self.disposing.contains(&d.pod) {
                // The failed pod's done label (or deletion) is not confirmed yet: the requeue is
                // announced once it is, so that a scheduler dying in between leaves an unmarked
                // failure for its adopter to requeue once, not a requeue that never happened.
                self.requeue_after_disposal.insert(d.pod.clone(), d);
            } else {
                self.requeue_now(d);
            }
        } else {
            self.fail_try(d.key, &d.details, d.evidence);
        }
    }

    /// Requeues the try of a failed pod: a new pod (a new name) for the same try, announced.
    fn requeue_now(&mut self, d: PendingDecision) {
        let Some(task) = self.tasks.get_mut(&d.key) else {
            return;
        };
        task.requeues += 1;
        task.failures
            .get_or_insert_with(Box::default)
            .last_requeued_pod = Some(d.pod.name.clone());
        task.phase = TaskPhase::Queued;
        task.set_launch(None);
        task.publish = None;
        let attempt = task.requeues;
        self.launch.push(d.key.clone());
        self.emit(Notice::Requeue {
            key: d.key,
            attempt,
            cause: d.cause,
            failed_pod: d.pod,
        });
    }

    /// The disposal of failed pod `pod` (done label or deletion) is confirmed, or the pod is
    /// gone: a requeue waiting for it goes out, if its try still waits for it.
    pub(super) fn disposal_confirmed(&mut self, pod: &PodRef) {
        if !self.disposing.remove(pod) {
            return;
        }
        if let Some(d) = self.requeue_after_disposal.remove(pod) {
            if self.is_deciding(&d.key, &d.pod) {
                self.requeue_now(d);
            }
        }
    }

    /// Reports the try failed and forgets it.
    pub(super) fn fail_try(&mut self, key: TaskKey, details: &FailureDetails, evidence: Evidence) {
        self.tasks.remove(&key);
        let reason = completion::failure_reason(details, evidence);
        self.emit_report(key, ReportedState::Failed, Some(reason));
    }
}
