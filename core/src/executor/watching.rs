//! The pod watch: each event classified by Airflow's table, a finished pod's outcome taken once
//! (reported, requeued or failed) and its disposal started.

use super::awaiting::Cleanup;
use super::pod_address::PodUid;
use super::pod_table::{PendingSince, PodRecord};
use super::tries::TaskPhase;
use super::Executor;
use crate::command::ReportedState;
use crate::completion::{self, Disposal, Evidence, PodState};
use crate::input::InputError;
use crate::key::TaskKey;
use crate::pod::{ContainerState, EventType, PodPhase, PodRef, PodView, WatchEvent};
use crate::requeue::RequeueDedupe;
use crate::watch::{self, PodOutcome, Rule};

impl Executor {
    pub(super) fn on_watch(&mut self, event: WatchEvent) -> Result<(), InputError> {
        self.last_watch_progress = self.clock.now();
        let watch = match &event {
            WatchEvent::Added { pod }
            | WatchEvent::Modified { pod }
            | WatchEvent::Deleted { pod } => self.watch.of_namespace(&pod.namespace),
            WatchEvent::Bookmark { namespace, .. } => self.watch.of_bookmark(namespace.as_deref()),
        };
        if let Some(watch) = watch {
            event
                .resource_version()
                .clone_into(&mut watch.resource_version);
        }
        match event.pod() {
            Some((kind, pod)) => self.on_pod_event(kind, pod, false),
            None => Ok(()),
        }
    }

    /// Applies one pod event; `vanished` marks a deletion inferred from a relist.
    pub(super) fn on_pod_event(
        &mut self,
        kind: EventType,
        pod: &PodView,
        vanished: bool,
    ) -> Result<(), InputError> {
        if !self.orphan_patches.is_empty() && !self.pods.contains_by(&pod.namespace, &pod.name) {
            self.adopt_from_watch(pod);
        }
        if !self.unconfirmed_deletes.is_empty()
            && (kind == EventType::Deleted
                || pod.deletion_timestamp.is_some()
                || matches!(pod.phase, Some(PodPhase::Succeeded | PodPhase::Failed)))
        {
            // Gone, being deleted or terminal: it can no longer start the task.
            self.confirm_deleting(&pod.pod_ref());
        }
        if kind == EventType::Deleted && !self.disposing.is_empty() {
            // Gone (or out of our watch once labelled done): nothing more to mark.
            self.disposal_confirmed(&pod.pod_ref());
        }
        let now = self.clock.now();
        let gone = kind == EventType::Deleted;
        let classification = watch::classify(
            kind,
            pod,
            &self.config.worker_pod_pending_fatal_container_state_reasons,
        );
        // The hot path: most events (Pending, Running, replays) change nothing but the record.
        // They are applied without allocating.
        let quiet = classification.outcome == PodOutcome::Ignore && !gone;
        let key = match self.pods.get_mut_by(&pod.namespace, &pod.name) {
            Some(record) => {
                if !pod.uid.is_empty() && !record.uid.is(&pod.uid) {
                    if !record.uid.is_unknown() {
                        // Same name, new pod: what we knew about the old one no longer applies.
                        record.finishing = false;
                    }
                    record.uid = PodUid::new(&pod.uid);
                }
                record.last_phase = pod.phase;
                record.seen = true;
                if pod.phase == Some(PodPhase::Pending) {
                    let pending = record.pending.get_or_insert_with(|| {
                        Box::new(PendingSince {
                            since: now,
                            waiting_reason: None,
                        })
                    });
                    if let Some(ContainerState::Waiting {
                        reason: Some(r), ..
                    }) = pod.containers.first().map(|c| &c.state)
                    {
                        if pending.waiting_reason.as_ref() != Some(r) {
                            pending.waiting_reason = Some(r.clone());
                        }
                    }
                } else {
                    record.pending = None;
                }
                if quiet {
                    return Ok(());
                }
                TaskKey::clone(&record.key)
            }
            None => pod.task_key().map_err(|error| InputError::PodIdentity {
                pod: pod.pod_ref(),
                error,
            })?,
        };
        if quiet {
            return Ok(());
        }
        let pod_ref = pod.pod_ref();
        match classification.outcome {
            PodOutcome::Ignore => {
                if gone {
                    self.pods.remove(&pod_ref);
                    // Row 4: Airflow waits for task_queued_timeout to revoke the try; its pod is
                    // gone before the task started, which is a pre-start failure: decide now
                    // (requeue while QUEUED, else fail), or the try is tracked with no pod.
                    // With `requeue_pods_deleted_while_pending` off (Airflow), the try stays
                    // tracked with no pod until the scheduler revokes it.
                    if classification.rule == Rule::DeletedWhilePending
                        && self.config.requeue_pods_deleted_while_pending
                        && self.is_current_pod(&key, &pod_ref)
                    {
                        let details = watch::failure_details(pod);
                        let evidence = if vanished {
                            Evidence::Vanished
                        } else {
                            Evidence::Event(classification.rule)
                        };
                        self.on_try_failed(key, pod_ref, pod.uid.clone(), details, evidence);
                    }
                }
            }
            PodOutcome::Adopted => {
                self.pods.remove(&pod_ref);
                if self.is_current_pod(&key, &pod_ref) {
                    self.tasks.remove(&key);
                }
            }
            outcome @ (PodOutcome::Failed { .. } | PodOutcome::Succeeded) => {
                let evidence = if vanished {
                    Evidence::Vanished
                } else {
                    Evidence::Event(classification.rule)
                };
                let pod_state = if gone {
                    PodState::Gone
                } else if matches!(pod.phase, Some(PodPhase::Succeeded | PodPhase::Failed)) {
                    if pod.deletion_timestamp.is_some() {
                        PodState::TerminalDeleting
                    } else {
                        PodState::Terminal
                    }
                } else {
                    PodState::Live
                };
                self.finish(key, pod_ref, pod.uid.clone(), outcome, evidence, pod_state);
            }
        }
        Ok(())
    }

    /// The completion path (`docs/decisions.md`, "Completion"): dispose of the pod, then decide for the try (requeue or report), once per pod.
    pub(super) fn finish(
        &mut self,
        key: TaskKey,
        pod: PodRef,
        uid: String,
        outcome: PodOutcome,
        evidence: Evidence,
        pod_state: PodState,
    ) {
        let gone = pod_state == PodState::Gone;
        if self.pods.get(&pod).is_some_and(|r| r.finishing) {
            if gone {
                self.pods.remove(&pod);
            }
            return;
        }
        match completion::disposal(&self.config, &outcome, pod_state) {
            Some(disposal) => {
                self.pods.insert_at(
                    &pod,
                    PodRecord::new(self.shared_key(&key), PodUid::new(&uid), true, true),
                );
                if disposal == Disposal::Delete && pod_state == PodState::Live {
                    self.expect_deletion(&key, &pod);
                }
                if matches!(outcome, PodOutcome::Failed { .. }) {
                    self.disposing.insert(pod.clone());
                }
                self.start_cleanup(Cleanup {
                    pod: pod.clone(),
                    disposal,
                    attempt: 0,
                });
                self.gate_reports_on_cleanup(&key, &pod);
            }
            None => {
                self.pods.remove(&pod);
            }
        }
        match outcome {
            PodOutcome::Failed { details } if self.failure_concerns_try(&key, &pod) => {
                self.on_try_failed(key, pod, uid, details, evidence);
            }
            PodOutcome::Succeeded if self.is_current_pod(&key, &pod) => {
                self.tasks.remove(&key);
                self.emit_report(key, ReportedState::Succeeded, None);
            }
            _ => {}
        }
    }

    /// Whether a failure of `pod` is a failure of the try `key`: its current pod, or, with
    /// Airflow's `last_pod` dedupe, any of its pods while it is not already being decided.
    pub(super) fn failure_concerns_try(&self, key: &TaskKey, pod: &PodRef) -> bool {
        match self.config.pod_launch_failure_dedupe {
            RequeueDedupe::EveryPod => self.is_current_pod(key, pod),
            RequeueDedupe::LastPod => self
                .tasks
                .get(key)
                .is_some_and(|t| !matches!(t.phase, TaskPhase::Deciding { .. })),
        }
    }
}
