//! Launch, watch, completion and relist: the life of a try's pods.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::awaiting::{Awaiting, Cleanup};
use super::pod_table::{PendingSince, PodRecord};
use super::tries::{Task, TaskPhase};
use super::Executor;
use crate::command::{ApiFailure, ApiOutcome, CommandKind, ReportedState};
use crate::completion::{self, Disposal, Evidence, PodState};
use crate::input::{InputError, PodTemplate};
use crate::key::TaskKey;
use crate::label;
use crate::launch::{self, PublishDecision};
use crate::pod::{ContainerState, EventType, PodPhase, PodRef, PodView, WatchEvent};
use crate::requeue::RequeueDedupe;
use crate::time::{retry_backoff_ms, TimerKind, Timestamp};
use crate::watch::{self, FailureDetails, Outcome, Rule};

impl Executor {
    // ---- launch ---------------------------------------------------------------------------

    pub(super) fn on_submit(
        &mut self,
        key: TaskKey,
        template: PodTemplate,
    ) -> Result<(), InputError> {
        if self.tasks.contains_key(&key) {
            return Err(InputError::DuplicateTask(key));
        }
        template.validate()?;
        self.tasks.insert(
            Arc::new(key.clone()),
            Task::new(Some(template), 0, TaskPhase::Queued),
        );
        self.launch.push(key);
        Ok(())
    }

    pub(super) fn launch_ready(&mut self, now: Timestamp) {
        while let Some(key) = self.launch.next_ready(now, &self.config) {
            if self.has_unconfirmed_delete(&key) {
                // An earlier pod of this try could still start: wait until its deletion is
                // confirmed (`confirm_deleting`).
                self.launch.park(key);
                continue;
            }
            let shared = self.shared_key(&key);
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            let Some(template) = task
                .template
                .as_deref()
                .filter(|_| task.phase == TaskPhase::Queued)
            else {
                continue;
            };
            let launch = match task.launch {
                Some(n) => n,
                None => {
                    let n = self.next_launch;
                    self.next_launch += 1;
                    task.launch = Some(n);
                    n
                }
            };
            let manifest = launch::manifest(
                &self.config,
                &self.scheduler_id,
                &key,
                template,
                launch,
                task.requeues,
            );
            let pod = manifest.pod.clone();
            task.phase = TaskPhase::Launched { pod: pod.clone() };
            self.pods.insert(
                pod.clone(),
                PodRecord::new(shared, String::new(), false, false),
            );
            self.emit_api(
                CommandKind::CreatePod { manifest },
                Awaiting::Create { key, pod },
            );
        }
    }

    pub(super) fn on_create_result(&mut self, key: TaskKey, pod: PodRef, outcome: ApiOutcome) {
        let Some(task) = self.tasks.get_mut(&key) else {
            return;
        };
        if task.phase != (TaskPhase::Launched { pod: pod.clone() }) {
            return;
        }
        let failure = match outcome {
            ApiOutcome::Failed { failure } => failure,
            ApiOutcome::Ok | ApiOutcome::Listed { .. } => {
                task.publish_retries = 0;
                task.publish_first_failure = None;
                if let Some(record) = self.pods.get_mut(&pod) {
                    record.created = true;
                }
                return;
            }
        };
        // The watch already showed the pod (its record is marked seen, or was dropped because
        // the pod is already gone): whatever the reply says, it was created.
        if self.pods.get(&pod).is_none_or(|r| r.seen) {
            task.publish_retries = 0;
            task.publish_first_failure = None;
            return;
        }
        let now = self.clock.now();
        let first_failure = *task.publish_first_failure.get_or_insert(now);
        match launch::on_publish_error(
            &self.config,
            &failure,
            task.publish_retries,
            now.since(first_failure),
        ) {
            PublishDecision::AlreadyCreated => {
                task.publish_retries = 0;
                task.publish_first_failure = None;
                if let Some(record) = self.pods.get_mut(&pod) {
                    record.created = true;
                }
            }
            PublishDecision::Retry {
                backoff_ms,
                retry_in_ms,
            } => {
                task.publish_retries = task.publish_retries.saturating_add(1);
                task.phase = TaskPhase::Queued;
                self.pods.remove(&pod);
                if retry_in_ms == 0 {
                    self.launch.push(key);
                } else {
                    self.launch.push_at(key, now.plus_ms(retry_in_ms));
                }
                if let Some(ms) = backoff_ms {
                    self.launch.back_off_until(now.plus_ms(ms));
                }
            }
            PublishDecision::Fail => {
                self.pods.remove(&pod);
                // A create that timed out may still have made the pod: remove it, or it would
                // run a try that is requeued under another pod name, or already failed.
                if matches!(failure, ApiFailure::Timeout | ApiFailure::Connection { .. }) {
                    self.pods.insert(
                        pod.clone(),
                        PodRecord::new(Arc::new(key.clone()), String::new(), false, true),
                    );
                    self.expect_deletion(&key, &pod);
                    self.start_cleanup(Cleanup {
                        pod: pod.clone(),
                        disposal: Disposal::Delete,
                        attempt: 0,
                    });
                }
                let details = FailureDetails {
                    pod_message: Some(failure.to_string()),
                    ..FailureDetails::default()
                };
                if launch::is_transient(&failure) {
                    // Differs on purpose: the task never started, so this is a launch failure
                    // (requeued while QUEUED and within budget), not a charge to the user.
                    self.on_try_failed(key, pod, String::new(), details, Evidence::PublishFailed);
                } else {
                    // The API refused the pod itself (invalid, forbidden): a new pod would be
                    // refused too.
                    self.fail_try(key, &details, Evidence::PublishFailed);
                }
            }
        }
    }

    // ---- watch and completion -------------------------------------------------------------

    pub(super) fn on_watch(&mut self, event: WatchEvent) -> Result<(), InputError> {
        self.last_watch_progress = self.clock.now();
        event
            .resource_version()
            .clone_into(&mut self.watch.resource_version);
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
        let quiet = classification.outcome == Outcome::Ignore && !gone;
        let key = match self.pods.get_mut_by(&pod.namespace, &pod.name) {
            Some(record) => {
                if !pod.uid.is_empty() && !record.uid.is_empty() && pod.uid != record.uid {
                    // Same name, new pod: what we knew about the old one no longer applies.
                    record.finishing = false;
                }
                if !pod.uid.is_empty() {
                    pod.uid.clone_into(&mut record.uid);
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
            Outcome::Ignore => {
                if gone {
                    self.pods.remove(&pod_ref);
                    // Row 4: Airflow waits for task_queued_timeout to revoke the try; its pod is
                    // gone before the task started, which is a pre-start failure: decide now
                    // (requeue while QUEUED, else fail), or the try is tracked with no pod.
                    if classification.rule == Rule::DeletedWhilePending
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
            Outcome::Adopted => {
                self.pods.remove(&pod_ref);
                if self.is_current_pod(&key, &pod_ref) {
                    self.tasks.remove(&key);
                }
            }
            outcome @ (Outcome::Failed { .. } | Outcome::Succeeded) => {
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

    /// §3: dispose of the pod, then decide for the try (requeue or report), once per pod.
    pub(super) fn finish(
        &mut self,
        key: TaskKey,
        pod: PodRef,
        uid: String,
        outcome: Outcome,
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
                self.pods.insert(
                    pod.clone(),
                    PodRecord::new(self.shared_key(&key), uid.clone(), true, true),
                );
                if disposal == Disposal::Delete && pod_state == PodState::Live {
                    self.expect_deletion(&key, &pod);
                }
                if matches!(outcome, Outcome::Failed { .. }) {
                    self.disposing.insert(pod.clone());
                }
                self.start_cleanup(Cleanup {
                    pod: pod.clone(),
                    disposal,
                    attempt: 0,
                });
            }
            None => {
                self.pods.remove(&pod);
            }
        }
        match outcome {
            Outcome::Failed { details } if self.failure_concerns_try(&key, &pod) => {
                self.on_try_failed(key, pod, uid, details, evidence);
            }
            Outcome::Succeeded if self.is_current_pod(&key, &pod) => {
                self.tasks.remove(&key);
                self.emit_report(key, ReportedState::Succeeded, None);
            }
            _ => {}
        }
    }

    /// Whether a failure of `pod` is a failure of the try `key`: its current pod, or, with
    /// Airflow's `last_pod` dedupe, any of its pods while it is not already being decided.
    fn failure_concerns_try(&self, key: &TaskKey, pod: &PodRef) -> bool {
        match self.config.pod_launch_failure_dedupe {
            RequeueDedupe::EveryPod => self.is_current_pod(key, pod),
            RequeueDedupe::LastPod => self
                .tasks
                .get(key)
                .is_some_and(|t| !matches!(t.phase, TaskPhase::Deciding { .. })),
        }
    }

    pub(super) fn start_cleanup(&mut self, cleanup: Cleanup) {
        let kind = match cleanup.disposal {
            Disposal::Delete => CommandKind::DeletePod {
                pod: cleanup.pod.clone(),
                grace_period_seconds: None,
            },
            Disposal::MarkDone => CommandKind::PatchLabels {
                pod: cleanup.pod.clone(),
                labels: BTreeMap::from([(
                    label::EXECUTOR_DONE.to_string(),
                    label::TRUE.to_string(),
                )]),
                precondition: None,
            },
        };
        self.emit_api(kind, Awaiting::Cleanup(cleanup));
    }

    pub(super) fn on_cleanup_result(&mut self, cleanup: Cleanup, outcome: ApiOutcome) {
        let ApiOutcome::Failed { failure } = outcome else {
            // Done; the record goes when the watch shows the pod leave.
            if cleanup.disposal == Disposal::Delete {
                self.confirm_deleting(&cleanup.pod);
            }
            self.disposal_confirmed(&cleanup.pod);
            return;
        };
        if failure.code() == Some(404) {
            self.pods.remove(&cleanup.pod);
            self.confirm_deleting(&cleanup.pod);
            self.disposal_confirmed(&cleanup.pod);
            return;
        }
        if !self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
            return;
        }
        if self.config.may_retry_cleanup(cleanup.attempt) {
            let attempt = cleanup.attempt.saturating_add(1);
            let at = self.clock.now().plus_ms(retry_backoff_ms(attempt));
            let seq = self.next_command_id().0;
            self.cleanup_retries
                .insert((at, seq), Cleanup { attempt, ..cleanup });
        } else {
            // Give up (only with a finite `pod_cleanup_max_retries`); a later event of this pod
            // starts a new round.
            self.pods.remove(&cleanup.pod);
            self.confirm_deleting(&cleanup.pod);
            self.disposal_confirmed(&cleanup.pod);
        }
    }

    /// The try `key` asks for the deletion of its pod `pod`, which could still start the task:
    /// the try gets no new pod until the deletion is confirmed.
    pub(super) fn expect_deletion(&mut self, key: &TaskKey, pod: &PodRef) {
        self.unconfirmed_deletes.insert(pod.clone(), key.clone());
    }

    fn has_unconfirmed_delete(&self, key: &TaskKey) -> bool {
        !self.unconfirmed_deletes.is_empty() && self.unconfirmed_deletes.values().any(|k| k == key)
    }

    /// `pod` is deleted, being deleted or terminal: its try may get a new pod.
    fn confirm_deleting(&mut self, pod: &PodRef) {
        if let Some(key) = self.unconfirmed_deletes.remove(pod) {
            if !self.has_unconfirmed_delete(&key) {
                self.launch.unpark(&key);
            }
        }
    }

    pub(super) fn fire_cleanups(&mut self, now: Timestamp) {
        while let Some(entry) = self.cleanup_retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let cleanup = entry.remove();
            if self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
                self.start_cleanup(cleanup);
            }
        }
    }

    // ---- relist ---------------------------------------------------------------------------

    pub(super) fn start_relist(&mut self) {
        if self.watch.relisting {
            return;
        }
        self.watch.relisting = true;
        self.timers.stop(TimerKind::Relist);
        // What the list must show: every pod known to exist now. A pod created but never seen
        // (its events were lost with the watch) counts: missing from the list, it was deleted.
        self.pods.for_each_mut(|r| r.listable = r.seen || r.created);
        let kind = CommandKind::ListPods {
            namespace: self.config.namespace.clone(),
            label_selector: self.watch_selector(),
            field_selector: None,
        };
        self.emit_api(kind, Awaiting::Relist);
    }

    pub(super) fn on_relist_result(&mut self, outcome: ApiOutcome) {
        self.watch.relisting = false;
        let (listed, resource_version) = match outcome {
            ApiOutcome::Listed {
                pods,
                resource_version,
            } => (pods, resource_version),
            ApiOutcome::Ok | ApiOutcome::Failed { .. } => {
                self.watch.relist_failures = self.watch.relist_failures.saturating_add(1);
                let at = self
                    .clock
                    .now()
                    .plus_ms(retry_backoff_ms(self.watch.relist_failures));
                self.timers.set(TimerKind::Relist, at);
                return;
            }
        };
        self.last_watch_progress = self.clock.now();
        self.watch.relist_failures = 0;
        let present: BTreeSet<PodRef> = listed.iter().map(PodView::pod_ref).collect();
        for pod in &listed {
            // A listed pod that names no task cannot be one of ours; skipping it is all a
            // relist can do (the watch reports it with an error when it changes).
            let _ = self.on_pod_event(EventType::Added, pod, false);
        }
        // Tracked pods the list no longer has are gone: apply what their deletion means.
        let vanished: Vec<(PodRef, PodRecord)> = self
            .pods
            .sorted()
            .into_iter()
            .filter(|(pod, record)| record.listable && !present.contains(*pod))
            .map(|(pod, record)| (pod.clone(), record.clone()))
            .collect();
        for (pod_ref, record) in vanished {
            let mut view = PodView::new(pod_ref.namespace, pod_ref.name);
            view.uid = record.uid;
            view.annotations = record.key.to_annotations();
            // A pod never seen (created while the watch was down) was, as far as anyone here
            // knows, Pending: its deletion is decided as a deletion before it started.
            view.phase = record.last_phase.or(Some(PodPhase::Pending));
            view.deletion_timestamp = Some(self.clock.now());
            let _ = self.on_pod_event(EventType::Deleted, &view, true);
        }
        resource_version.clone_into(&mut self.watch.resource_version);
        self.emit(CommandKind::WatchPods {
            namespace: self.config.namespace.clone(),
            label_selector: self.watch_selector(),
            resource_version,
        });
    }
}
