//! The orphan hand-over (Airflow's `try_adopt_task_instances`): the dead schedulers'
//! pods listed, relabelled to this executor under a precondition, and the tries not adopted
//! reset.

use super::pod_address::PodUid;
use crate::command::{ApiCall, Notice};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::awaiting::{Awaiting, OrphanClaim};
use super::pod_table::PodRecord;
use super::tries::{Task, TaskPhase};
use super::Executor;
use crate::adoption::{self, OrphanRound, OrphanTask, ORPHAN_FIELD_SELECTOR};
use crate::command::{ApiOutcome, Precondition};
use crate::key::TaskKey;
use crate::label;
use crate::launch;
use crate::pod::PodView;
use crate::policy::{AdoptionCandidate, AdoptionPath};

impl Executor {
    /// The conditional relabel that makes this executor a pod's owner.
    pub(super) fn adopt_patch(&self, pod: &PodView) -> ApiCall {
        ApiCall::PatchLabels {
            pod: pod.pod_ref(),
            labels: BTreeMap::from([(
                label::AIRFLOW_WORKER.to_string(),
                self.scheduler_id.clone(),
            )]),
            precondition: Some(Precondition {
                resource_version: Some(pod.resource_version.clone()).filter(|rv| !rv.is_empty()),
                label: pod
                    .labels
                    .get(label::AIRFLOW_WORKER)
                    .map(|owner| (label::AIRFLOW_WORKER.to_string(), owner.clone())),
            }),
        }
    }

    pub(super) fn on_adopt_orphans(&mut self, tis: Vec<OrphanTask>) {
        let round_id = self.next_command_id().0;
        let mut round = OrphanRound::default();
        let mut owners = BTreeSet::new();
        for ti in tis {
            match &ti.queued_by {
                None => round.reset_now.push(ti.key),
                Some(owner) => {
                    owners.insert(owner.clone());
                    round.candidates.insert(ti.key.clone(), ti);
                }
            }
        }
        let scopes = self.watch.scopes();
        round.outstanding = owners.len() * scopes.len();
        self.orphan_rounds.insert(round_id, round);
        // One list per owner and watched scope (each namespace of a multi-namespace list), as
        // Airflow's `_list_pods` does.
        for owner in owners {
            for scope in &scopes {
                let kind = ApiCall::ListPods {
                    namespace: scope.clone(),
                    label_selector: adoption::orphan_selector(&owner),
                    field_selector: Some(ORPHAN_FIELD_SELECTOR),
                };
                self.emit_api(kind, Awaiting::OrphanList { round: round_id });
            }
        }
        // Airflow adopts completed pods on every hand-over too.
        self.start_completed_adoption();
        self.maybe_resolve_round(round_id);
    }

    pub(super) fn on_orphan_list(&mut self, round_id: u64, outcome: ApiOutcome) {
        let Some(round) = self.orphan_rounds.get_mut(&round_id) else {
            return;
        };
        round.outstanding = round.outstanding.saturating_sub(1);
        if let ApiOutcome::Listed { pods, .. } = outcome {
            let me = self.scheduler_id.as_str();
            let newest =
                adoption::newest_pod_per_try(pods, me, |key| round.candidates.contains_key(key));
            // The host's rule may decline a pod: its try stays a candidate and is reset.
            let (policies, now) = (&self.policies, self.clock.now());
            let patches: Vec<(TaskKey, PodView)> = newest
                .into_iter()
                .filter(|(key, pod)| {
                    policies.may_adopt(&AdoptionCandidate::new(
                        AdoptionPath::Orphan,
                        pod,
                        key,
                        pod.labels.get(label::AIRFLOW_WORKER).map(String::as_str),
                        now,
                    ))
                })
                .collect();
            round.outstanding += patches.len();
            for (key, pod) in patches {
                let requeues = launch::requeues_used_at_launch(&pod);
                let awaiting = Awaiting::OrphanPatch(OrphanClaim {
                    round: round_id,
                    key,
                    pod: pod.pod_ref(),
                    uid: pod.uid.clone(),
                    phase: pod.phase,
                    requeues,
                });
                let kind = self.adopt_patch(&pod);
                let pod_ref = pod.pod_ref();
                let id = self.emit_api(kind, awaiting);
                self.orphan_patches.insert(pod_ref, id);
            }
        }
        self.maybe_resolve_round(round_id);
    }

    /// The watch shows `pod` with our owner label while its orphan relabel's reply is still
    /// on the way (watch and reply travel on different connections): the relabel applied, so
    /// the try is adopted now, before the event is applied. The reply changes nothing after.
    pub(super) fn adopt_from_watch(&mut self, pod: &PodView) {
        if pod.labels.get(label::AIRFLOW_WORKER) != Some(&self.scheduler_id) {
            return;
        }
        let Some(id) = self.orphan_patches.get(&pod.pod_ref()).copied() else {
            return;
        };
        if let Some(Awaiting::OrphanPatch(claim)) = self.outbox.awaiting(id).cloned() {
            self.adopt_candidate(claim);
        }
    }

    /// Moves a handed-over try from the round's candidates to the tracked tries.
    pub(super) fn adopt_candidate(&mut self, claim: OrphanClaim) {
        let Some(round) = self.orphan_rounds.get_mut(&claim.round) else {
            return;
        };
        let Some(ti) = round.candidates.remove(&claim.key) else {
            return;
        };
        round.adopted.push(claim.key.clone());
        if !self.tasks.contains_key(&claim.key) {
            let pod = self.pods.shared(&claim.pod);
            let phase = TaskPhase::Launched {
                pod: Arc::clone(&pod),
            };
            let key = Arc::new(claim.key);
            // A template that `Submit` would refuse is never launched: kept as none.
            let template = ti.template.filter(|t| self.check_template(t).is_ok());
            self.tasks
                .insert(Arc::clone(&key), Task::new(template, claim.requeues, phase));
            let mut record = PodRecord::new(key, PodUid::new(&claim.uid), true, false);
            record.last_phase = claim.phase;
            self.pods.insert(pod, record);
        }
    }

    pub(super) fn on_orphan_patch(&mut self, claim: OrphanClaim, outcome: ApiOutcome) {
        self.orphan_patches.remove(&claim.pod);
        let round_id = claim.round;
        if matches!(outcome, ApiOutcome::Ok) {
            self.adopt_candidate(claim);
        }
        if let Some(round) = self.orphan_rounds.get_mut(&round_id) {
            round.outstanding = round.outstanding.saturating_sub(1);
        }
        self.maybe_resolve_round(round_id);
    }

    pub(super) fn maybe_resolve_round(&mut self, round_id: u64) {
        if self
            .orphan_rounds
            .get(&round_id)
            .is_none_or(|r| r.outstanding > 0)
        {
            return;
        }
        let Some(round) = self.orphan_rounds.remove(&round_id) else {
            return;
        };
        let mut reset = round.reset_now;
        // A try this executor already runs is not reset (a re-run hand-over, Airflow #39406).
        reset.extend(
            round
                .candidates
                .into_keys()
                .filter(|k| !self.tasks.contains_key(k)),
        );
        self.emit(Notice::OrphansResolved {
            adopted: round.adopted,
            reset,
        });
        for report in round.held_reports {
            self.emit(report);
        }
    }
}
