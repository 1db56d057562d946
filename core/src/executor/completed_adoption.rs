//! Completed pods and leftover pods of dead schedulers (Airflow's `_adopt_completed_pods`): listed every
//! `orphaned_tasks_check_interval`, taken only from owners declared dead, relabelled under a
//! precondition and disposed of.

use super::pod_address::PodUid;
use crate::command::{ApiCall, DbQuery};
use std::collections::BTreeSet;
use std::sync::Arc;

use super::awaiting::{Awaiting, Cleanup};
use super::pod_table::PodRecord;
use super::Executor;
use crate::adoption::{self, COMPLETED_FIELD_SELECTOR, LEFTOVER_FIELD_SELECTOR};
use crate::command::ApiOutcome;
use crate::completion;
use crate::completion::Disposal;
use crate::db::DbOutcome;
use crate::key::TaskKey;
use crate::label;
use crate::liveness::AliveSet;
use crate::pod::PodPhase;
use crate::pod::{PodRef, PodView};
use crate::policy::{AdoptionCandidate, AdoptionPath};
use crate::watch::PodOutcome;

impl Executor {
    /// Lists completed pods of dead schedulers. The periodic timer is re-armed by its caller,
    /// so a hand-over's extra run does not postpone the next periodic one (as in Airflow).
    pub(super) fn start_completed_adoption(&mut self) {
        if self.completed_lists_in_flight > 0 {
            return;
        }
        let Some(selector) = adoption::completed_adoption_selector(
            &self.scheduler_id,
            &self.alive_set(),
            self.config.adoption_scope,
            self.config.adoption_without_heartbeats,
        ) else {
            // Nothing is known about peers yet, or the heartbeats cannot be read: adopt once a
            // readable snapshot arrives.
            self.completed_adoption_waiting = true;
            return;
        };
        self.completed_adoption_waiting = false;
        let leftovers = self.config.adopt_leftover_pods
            && self.config.adoption_scope != adoption::AdoptionScope::AllOthers;
        // One list per watched scope (each namespace of a multi-namespace list).
        for scope in self.watch.scopes() {
            self.completed_lists_in_flight += 1;
            let kind = ApiCall::ListPods {
                namespace: scope.clone(),
                label_selector: selector.clone(),
                field_selector: Some(COMPLETED_FIELD_SELECTOR),
            };
            self.emit_api(kind, Awaiting::CompletedList);
            if leftovers {
                let kind = ApiCall::ListPods {
                    namespace: scope,
                    label_selector: selector.clone(),
                    field_selector: Some(LEFTOVER_FIELD_SELECTOR),
                };
                self.emit_api(kind, Awaiting::LeftoverList);
            }
        }
    }

    /// Whether a pod owned by `owner` (and not by us or a tracked try) may be taken: any
    /// owner under the legacy scope; under `dead_only`, an owner not alive; under
    /// `declared_dead`, one also declared dead in the last readable snapshot (its job no longer
    /// running); under both, one no row has named for a threshold.
    pub(super) fn may_take_from(&mut self, owner: Option<&String>, alive: &AliveSet) -> bool {
        let scope = self.config.adoption_scope;
        if scope == adoption::AdoptionScope::AllOthers {
            return true;
        }
        let AliveSet::Known(alive) = alive else {
            // The heartbeats became unreadable since the list was sent: wait, unless the
            // fallback is Airflow's.
            return self.config.adoption_without_heartbeats != adoption::AdoptionFallback::Wait;
        };
        // A pod without an owner label has no owner to wait for.
        let Some(owner) = owner else {
            return true;
        };
        // The list may be older than the last snapshot: never take a live peer's pod.
        if alive.contains(owner) {
            return false;
        }
        if self.peers.is_known(owner) {
            if scope == adoption::AdoptionScope::DeadOnly {
                return true;
            }
            // Stale but not declared dead: the hand-over that declares it (marks its job
            // failed, which makes it exit if it ever resumes) comes first, so a scheduler whose
            // stall ends by itself never finds its pods taken while it lives again.
            self.peers.is_declared_dead(owner)
        } else {
            // An owner no heartbeat row names may be a scheduler that has just started (peers
            // learn of it at their next read), or one whose row was purged long ago. Only the
            // second is dead: wait until it has stayed unknown for a whole threshold, across
            // at least one newer snapshot (Airflow takes it at once).
            !self.config.wait_for_unknown_owners || self.unknown_owner_is_dead(owner)
        }
    }

    /// Leftover pods of dead schedulers (`adopt_leftover_pods`): those whose try may be over
    /// go to the DB question; the others wait for the hand-over.
    pub(super) fn on_leftover_list(&mut self, outcome: ApiOutcome) {
        let ApiOutcome::Listed { pods, .. } = outcome else {
            return;
        };
        let alive = self.alive_set();
        let mut candidates = Vec::new();
        for pod in pods {
            let owner = pod.labels.get(label::AIRFLOW_WORKER);
            if owner == Some(&self.scheduler_id)
                || self.pods.contains_key(&pod.pod_ref())
                || pod.task_key().is_err()
                || !self.may_take_from(owner, &alive)
            {
                continue;
            }
            candidates.push(pod);
        }
        if !candidates.is_empty() {
            self.emit_query(
                DbQuery::QueryUnfinishedTasks,
                Awaiting::LeftoverQuery { candidates },
            );
        }
    }

    /// The DB answered which tries are unfinished: a leftover pod of a try that is over is
    /// relabelled (conditionally, as any adoption), then disposed of like a finished pod.
    pub(super) fn on_leftover_unfinished(&mut self, candidates: Vec<PodView>, outcome: DbOutcome) {
        // No DB answer, no disposal: the next sweep asks again.
        let DbOutcome::UnfinishedTasks { tasks } = outcome else {
            return;
        };
        let unfinished: BTreeSet<&TaskKey> = tasks.iter().collect();
        for pod in candidates {
            let Ok(key) = pod.task_key() else { continue };
            if !adoption::leftover_try_is_over(&key, &unfinished)
                || self.pods.contains_key(&pod.pod_ref())
            {
                continue;
            }
            let failed = PodOutcome::Failed {
                details: Default::default(),
            };
            let state = match pod.phase {
                Some(PodPhase::Failed) if pod.deletion_timestamp.is_some() => {
                    completion::PodState::TerminalDeleting
                }
                Some(PodPhase::Failed) => completion::PodState::Terminal,
                _ if pod.deletion_timestamp.is_some() => continue,
                _ => completion::PodState::Live,
            };
            if let Some(disposal) = completion::disposal(&self.config, &failed, state) {
                self.take_dead_owners_pod(&pod, key, disposal);
            }
        }
    }

    /// Relabels a dead scheduler's pod to us (conditionally), to dispose of it as `disposal`
    /// once it is ours, unless the host's adoption rule declines it (it is then left for the
    /// next interval).
    pub(super) fn take_dead_owners_pod(&mut self, pod: &PodView, key: TaskKey, disposal: Disposal) {
        let candidate = AdoptionCandidate::new(
            AdoptionPath::Completed,
            pod,
            &key,
            pod.labels.get(label::AIRFLOW_WORKER).map(String::as_str),
            self.clock.now(),
        );
        if !self.policies.may_adopt(&candidate) {
            return;
        }
        let kind = self.adopt_patch(pod);
        self.emit_api(
            kind,
            Awaiting::CompletedPatch {
                pod: pod.pod_ref(),
                key,
                disposal,
            },
        );
    }

    pub(super) fn on_completed_list(&mut self, outcome: ApiOutcome) {
        self.completed_lists_in_flight = self.completed_lists_in_flight.saturating_sub(1);
        let ApiOutcome::Listed { pods, .. } = outcome else {
            return;
        };
        let alive = self.alive_set();
        for pod in pods {
            let Ok(key) = pod.task_key() else { continue };
            let owner = pod.labels.get(label::AIRFLOW_WORKER);
            if owner == Some(&self.scheduler_id) || self.pods.contains_key(&pod.pod_ref()) {
                continue;
            }
            if !self.may_take_from(owner, &alive) {
                continue;
            }
            if let Some(disposal) = completion::disposal(
                &self.config,
                &PodOutcome::Succeeded,
                completion::PodState::Terminal,
            ) {
                self.take_dead_owners_pod(&pod, key, disposal);
            }
        }
    }

    /// Whether `owner`, absent from the heartbeat table, has been absent long enough to be
    /// dead (within the current stretch of regular reads, as for any peer); remembers when it
    /// was first missed.
    pub(super) fn unknown_owner_is_dead(&mut self, owner: &str) -> bool {
        let now = self.clock.now();
        let first = *self.unknown_owners.entry(owner.to_string()).or_insert(now);
        let first = first.max(self.peers.stretch_start().unwrap_or(now));
        let threshold = self.settings.health_threshold_ms;
        now.since(first) >= threshold
            && self
                .peers
                .last_read_at()
                .is_some_and(|t| t.since(first) >= threshold)
    }

    pub(super) fn on_completed_patch(
        &mut self,
        pod: PodRef,
        key: TaskKey,
        disposal: Disposal,
        outcome: ApiOutcome,
    ) {
        // 409: another adopter won, or the pod changed; 404: gone. Both are normal.
        if !matches!(outcome, ApiOutcome::Ok) || self.pods.get(&pod).is_some_and(|r| r.finishing) {
            return;
        }
        self.pods.insert_at(
            &pod,
            PodRecord::new(Arc::new(key), PodUid::Unknown, true, true),
        );
        self.start_cleanup(Cleanup {
            pod,
            disposal,
            attempt: 0,
        });
    }
}
