//! Relisting after the watch expired (410 Gone) or at start: the list reconciles what the lost
//! events would have said, and the watch resumes from its resource version.

use crate::command::{ApiCall, Notice};
use std::collections::BTreeSet;

use super::awaiting::Awaiting;
use super::pod_table::PodRecord;
use super::Executor;
use crate::command::ApiOutcome;
use crate::pod::{EventType, PodPhase, PodRef, PodView};
use crate::time::{retry_backoff_ms, TimerKind};

impl Executor {
    pub(super) fn start_relist(&mut self) {
        if self.watch.relisting {
            return;
        }
        self.watch.relisting = true;
        self.timers.stop(TimerKind::Relist);
        // What the list must show: every pod known to exist now. A pod created but never seen
        // (its events were lost with the watch) counts: missing from the list, it was deleted.
        self.pods.for_each_mut(|r| r.listable = r.seen || r.created);
        let kind = ApiCall::ListPods {
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
        self.emit(Notice::WatchPods {
            namespace: self.config.namespace.clone(),
            label_selector: self.watch_selector(),
            resource_version,
        });
    }
}
