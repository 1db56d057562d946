//! Pods stuck Pending (`docs/decisions.md`, "Pending timeout and revoke"): failed after `worker_pods_pending_timeout`; and the scheduler's
//! revoke of a try stuck in queued, whose pods are deleted.

use super::pod_address::PodUid;
use crate::command::ApiCall;
use std::collections::BTreeMap;

use super::awaiting::{Awaiting, Cleanup};
use super::tries::TaskPhase;
use super::Executor;
use crate::command::ApiOutcome;
use crate::completion::{Disposal, Evidence};
use crate::key::TaskKey;
use crate::label;
use crate::pod::PodRef;
use crate::selector::LabelSelector;
use crate::time::{TimerKind, Timestamp};
use crate::watch::FailureDetails;

impl Executor {
    pub(super) fn check_pending(&mut self, now: Timestamp) {
        self.timers.set(
            TimerKind::PendingCheck,
            now.plus_ms(self.settings.pending_check_ms),
        );
        let Some(timeout) = self.settings.pending_timeout_ms else {
            return;
        };
        let batch = usize::try_from(self.config.worker_pods_pending_timeout_batch_size)
            .unwrap_or(usize::MAX);
        let expired: Vec<(PodRef, TaskKey, String, Option<String>)> = self
            .pods
            .sorted()
            .into_iter()
            .filter(|(pod, r)| {
                !r.finishing
                    && r.pending
                        .as_ref()
                        .is_some_and(|p| now.since(p.since) >= timeout)
                    && self.is_current_pod(&r.key, *pod)
            })
            .take(batch)
            .map(|(pod, r)| {
                (
                    pod.to_pod_ref(),
                    TaskKey::clone(&r.key),
                    r.uid.to_string(),
                    r.pending.as_ref().and_then(|p| p.waiting_reason.clone()),
                )
            })
            .collect();
        for (pod, key, uid, waiting_reason) in expired {
            if let Some(record) = self.pods.get_mut(&pod) {
                record.finishing = true;
            }
            self.expect_deletion(&key, &pod);
            self.start_cleanup(Cleanup {
                pod: pod.clone(),
                disposal: Disposal::Delete,
                attempt: 0,
            });
            let details = FailureDetails {
                pending_reason: Some(waiting_reason.unwrap_or_else(|| "Pending".to_string())),
                main_container_never_started: Some(true),
                ..FailureDetails::default()
            };
            self.on_try_failed(key, pod, uid, details, Evidence::PendingTimeout);
        }
    }

    pub(super) fn on_revoke(&mut self, key: TaskKey) {
        match self.tasks.remove(&key) {
            Some(task) => match task.phase {
                TaskPhase::Launched { pod } | TaskPhase::Deciding { pod } => {
                    self.revoke_pod(pod.to_pod_ref(), key)
                }
                TaskPhase::Queued => {}
            },
            None => {
                // Not tracked here (a restart, or a pod left from an earlier hand-over): find its
                // pod by identity, as Airflow does (try number not compared).
                let mut selector = LabelSelector::new()
                    .eq(label::AIRFLOW_WORKER, self.scheduler_id.clone())
                    .eq(label::DAG_ID, label::safe_value(&key.dag_id))
                    .eq(label::TASK_ID, label::safe_value(&key.task_id))
                    .eq(label::RUN_ID, label::safe_value(&key.run_id));
                if key.map_index >= 0 {
                    selector = selector.eq(label::MAP_INDEX, key.map_index.to_string());
                }
                for scope in self.watch.scopes() {
                    let kind = ApiCall::ListPods {
                        namespace: scope,
                        label_selector: selector.clone(),
                        field_selector: None,
                    };
                    self.emit_api(kind, Awaiting::RevokeList { key: key.clone() });
                }
            }
        }
    }

    pub(super) fn on_revoke_list(&mut self, key: TaskKey, outcome: ApiOutcome) {
        let ApiOutcome::Listed { pods, .. } = outcome else {
            return;
        };
        let same_task = |k: &TaskKey| {
            k.dag_id == key.dag_id
                && k.task_id == key.task_id
                && k.run_id == key.run_id
                && k.map_index == key.map_index
        };
        for pod in pods {
            if pod.task_key().is_ok_and(|k| same_task(&k)) && !self.tasks.contains_key(&key) {
                self.revoke_pod(pod.pod_ref(), key.clone());
            }
        }
    }

    /// Labels the pod revoked (so every watch ignores it), then deletes it. The try (which the
    /// scheduler may queue again) gets no new pod until the deletion is confirmed.
    pub(super) fn revoke_pod(&mut self, pod: PodRef, key: TaskKey) {
        self.expect_deletion(&key, &pod);
        let record = self.pods.get_or_insert_with(&pod, || {
            super::pod_table::PodRecord::new(std::sync::Arc::new(key), PodUid::Unknown, true, true)
        });
        record.finishing = true;
        let labels = BTreeMap::from([(label::POD_REVOKED.to_string(), label::TRUE.to_string())]);
        self.emit_api(
            ApiCall::PatchLabels {
                pod: pod.clone(),
                labels,
                precondition: None,
            },
            Awaiting::Revoke,
        );
        self.start_cleanup(Cleanup {
            pod,
            disposal: Disposal::Delete,
            attempt: 0,
        });
    }
}
