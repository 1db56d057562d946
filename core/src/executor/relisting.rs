//! Relisting after a watch expired (410 Gone) or at start: the list of the watch's scope
//! reconciles what the lost events would have said, and the watch resumes from its resource
//! version. Each watch (one per scope of [`crate::Config::watch_scopes`]) relists on its own.

use crate::command::{ApiCall, Notice};
use std::collections::BTreeSet;

use super::awaiting::Awaiting;
use super::pod_table::PodRecord;
use super::watch_state::Scope;
use super::Executor;
use crate::command::ApiOutcome;
use crate::pod::{EventType, PodPhase, PodRef, PodView};
use crate::time::{retry_backoff_ms, TimerKind};

/// Whether a pod in `namespace` is in `scope`.
fn in_scope(scope: &Scope, namespace: &str) -> bool {
    scope.as_deref().is_none_or(|ns| ns == namespace)
}

impl Executor {
    /// Relists every watch's scope (at start, or when the host lost every watch).
    pub(super) fn start_relists(&mut self) {
        for scope in self.watch.scopes() {
            self.start_relist(scope);
        }
    }

    /// A watch expired (410) or the host lost it: `namespace` names it, `None` every watch; a
    /// namespace that names no watch of this executor (a host mistake) is taken as every watch,
    /// so that no expired watch is left without a restart. Each is relisted, or, under
    /// Airflow's rule (`relist_after_watch_expiry = false`), restarted from resource version
    /// `"0"` without a list.
    pub(super) fn on_watch_expired(&mut self, namespace: Option<String>) {
        let named = namespace.filter(|ns| self.watch.get_mut(&Some(ns.clone())).is_some());
        let scopes = match named {
            None => self.watch.scopes(),
            Some(ns) => vec![Some(ns)],
        };
        for scope in scopes {
            if self.config.relist_after_watch_expiry {
                self.start_relist(scope);
            } else {
                self.restart_watch_from_zero(scope);
            }
        }
    }

    /// Airflow's restart after a 410: a new watch from `"0"`, which the API server answers with
    /// an ADDED event for every pod the selector matches (each applied as any replay is), then
    /// live changes. Nothing is reconciled: a pod deleted meanwhile is never seen gone.
    fn restart_watch_from_zero(&mut self, scope: Scope) {
        let Some(watch) = self.watch.get_mut(&scope) else {
            return;
        };
        "0".clone_into(&mut watch.resource_version);
        self.emit(Notice::WatchPods {
            namespace: scope,
            label_selector: self.watch_selector(),
            resource_version: "0".to_string(),
        });
    }

    /// Relists the scopes whose failed relist is due.
    pub(super) fn retry_relists(&mut self) {
        for scope in self.watch.relists_due(self.clock.now()) {
            self.start_relist(scope);
        }
    }

    /// Relists one watch's scope (its watch expired); a scope the executor does not watch is
    /// ignored.
    pub(super) fn start_relist(&mut self, scope: Scope) {
        let Some(watch) = self.watch.get_mut(&scope) else {
            return;
        };
        if watch.relisting {
            return;
        }
        watch.relisting = true;
        watch.relist_retry_at = None;
        self.arm_relist_timer();
        // What the list must show: every pod known to exist now in the scope. A pod created
        // but never seen (its events were lost with the watch) counts: missing from the list,
        // it was deleted.
        self.pods.for_each_mut(|pod, r| {
            if in_scope(&scope, pod.namespace()) {
                r.listable = r.seen || r.created;
            }
        });
        let kind = ApiCall::ListPods {
            namespace: scope.clone(),
            label_selector: self.watch_selector(),
            field_selector: None,
        };
        self.emit_api(kind, Awaiting::Relist { scope });
    }

    /// The relist timer at the earliest failed relist's retry.
    fn arm_relist_timer(&mut self) {
        match self.watch.next_relist_retry() {
            Some(at) => self.timers.set(TimerKind::Relist, at),
            None => self.timers.stop(TimerKind::Relist),
        }
    }

    pub(super) fn on_relist_result(&mut self, scope: Scope, outcome: ApiOutcome) {
        let now = self.clock.now();
        let Some(watch) = self.watch.get_mut(&scope) else {
            return;
        };
        watch.relisting = false;
        let (listed, resource_version) = match outcome {
            ApiOutcome::Listed {
                pods,
                resource_version,
            } => (pods, resource_version),
            ApiOutcome::Ok | ApiOutcome::Failed { .. } => {
                watch.relist_failures = watch.relist_failures.saturating_add(1);
                watch.relist_retry_at = Some(now.plus_ms(retry_backoff_ms(watch.relist_failures)));
                self.arm_relist_timer();
                return;
            }
        };
        watch.relist_failures = 0;
        self.last_watch_progress = now;
        let present: BTreeSet<(&str, &str)> = listed
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str()))
            .collect();
        for pod in &listed {
            // A listed pod that names no task cannot be one of ours; skipping it is all a
            // relist can do (the watch reports it with an error when it changes).
            let _ = self.on_pod_event(EventType::Added, pod, false);
        }
        // Tracked pods of the scope the list no longer has are gone: apply what their deletion
        // means.
        let vanished: Vec<(PodRef, PodRecord)> = self
            .pods
            .sorted()
            .into_iter()
            .filter(|(pod, record)| {
                record.listable
                    && in_scope(&scope, pod.namespace())
                    && !present.contains(&(pod.namespace(), pod.name()))
            })
            .map(|(pod, record)| (pod.to_pod_ref(), record.clone()))
            .collect();
        for (pod_ref, record) in vanished {
            let mut view = PodView::new(pod_ref.namespace, pod_ref.name);
            view.uid = record.uid.to_string();
            view.annotations = record.key.to_annotations();
            // A pod never seen (created while the watch was down) was, as far as anyone here
            // knows, Pending: its deletion is decided as a deletion before it started.
            view.phase = record.last_phase.or(Some(PodPhase::Pending));
            view.deletion_timestamp = Some(now);
            let _ = self.on_pod_event(EventType::Deleted, &view, true);
        }
        if let Some(watch) = self.watch.get_mut(&scope) {
            resource_version.clone_into(&mut watch.resource_version);
        }
        self.emit(Notice::WatchPods {
            namespace: scope,
            label_selector: self.watch_selector(),
            resource_version,
        });
    }
}
