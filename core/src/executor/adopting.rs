//! Peer liveness and adoption: orphan hand-overs and completed pods of dead schedulers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::awaiting::{Awaiting, Cleanup, OrphanClaim};
use super::pod_table::PodRecord;
use super::tries::{Task, TaskPhase};
use super::Executor;
use crate::adoption::{
    self, OrphanRound, OrphanTask, COMPLETED_FIELD_SELECTOR, LEFTOVER_FIELD_SELECTOR,
    ORPHAN_FIELD_SELECTOR,
};
use crate::command::{ApiOutcome, CommandKind, Precondition, ReportedState};
use crate::completion;
use crate::completion::Disposal;
use crate::db::DbOutcome;
use crate::key::TaskKey;
use crate::label;
use crate::liveness::{AliveSet, HeartbeatRecord, HeartbeatsUnavailable, Observation};
use crate::pod::PodPhase;
use crate::pod::{PodRef, PodView};
use crate::policy::{AdoptionCandidate, AdoptionPath};
use crate::requeue::LAUNCH_ATTEMPT_ANNOTATION;
use crate::watch::Outcome;

impl Executor {
    pub(super) fn on_heartbeats(
        &mut self,
        snapshot: Result<Vec<HeartbeatRecord>, HeartbeatsUnavailable>,
    ) {
        let obs = Observation {
            now: self.clock.now(),
            now_host: self.clock.host_now(),
            // Regular reads are every `scheduler_heartbeat_sec` (5 s by default); a gap of
            // half the threshold means we were not watching (see `liveness`).
            max_gap_ms: self.config.health_threshold_ms() / 2,
            clock_steps: self.clock.steps(),
        };
        match &snapshot {
            Ok(records) => self.peers.observe(obs, Ok(records)),
            Err(_) => self.peers.observe(obs, Err(())),
        }
        self.last_heartbeats_at = Some(self.clock.now());
        self.check_fence(snapshot.as_ref().ok());
        // Owners that turned out to be known (a scheduler that had just started) are forgotten.
        let peers = &self.peers;
        self.unknown_owners
            .retain(|owner, _| !peers.is_known(owner));
        if self.completed_adoption_waiting {
            self.start_completed_adoption();
        }
    }

    /// After a stall, reports wait for a snapshot that shows our own job (see
    /// `fence_reports_after_stall`): running, they go out; declared dead, they are dropped.
    fn check_fence(&mut self, records: Option<&Vec<HeartbeatRecord>>) {
        let (Some(held), Some(records)) = (self.fenced_reports.as_mut(), records) else {
            return;
        };
        let Some(own) = records.iter().find(|r| r.scheduler_id == self.scheduler_id) else {
            return;
        };
        if own.state == crate::liveness::JobState::Running {
            let held = std::mem::take(held);
            self.fenced_reports = None;
            for report in held {
                self.emit(report);
            }
        } else {
            held.clear();
        }
    }

    fn alive_set(&self) -> AliveSet {
        self.peers.alive_others(
            &self.scheduler_id,
            self.config.scheduler_liveness_rule,
            self.config.health_threshold_ms(),
        )
    }

    /// The conditional relabel that makes this executor a pod's owner.
    fn adopt_patch(&self, pod: &PodView) -> CommandKind {
        CommandKind::PatchLabels {
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

    // ---- orphan hand-over (§4.2) ------------------------------------------------------------

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
        round.outstanding = owners.len();
        self.orphan_rounds.insert(round_id, round);
        for owner in owners {
            let kind = CommandKind::ListPods {
                namespace: self.config.namespace.clone(),
                label_selector: adoption::orphan_selector(&owner),
                field_selector: Some(ORPHAN_FIELD_SELECTOR.to_string()),
            };
            self.emit_api(kind, Awaiting::OrphanList { round: round_id });
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
            // A try can have several pods left (a failed one already requeued, and its
            // successor): only the newest is its current pod. Adopting an older one would
            // answer its failure a second time.
            let mut newest: BTreeMap<TaskKey, (u32, Option<crate::time::Timestamp>, PodView)> =
                BTreeMap::new();
            for pod in pods {
                let Ok(key) = pod.task_key() else { continue };
                if !round.candidates.contains_key(&key)
                    || pod.labels.get(label::AIRFLOW_WORKER) == Some(&self.scheduler_id)
                {
                    continue;
                }
                let requeues = launch_attempt(&pod);
                let rank = (requeues, pod.creation_timestamp);
                match newest.get(&key) {
                    Some((r, c, p)) if (*r, *c, &p.name) >= (rank.0, rank.1, &pod.name) => {}
                    _ => {
                        newest.insert(key, (rank.0, rank.1, pod));
                    }
                }
            }
            // The host's rule may decline a pod: its try stays a candidate and is reset.
            let (policies, now) = (&self.policies, self.clock.now());
            let patches: Vec<(TaskKey, PodView)> = newest
                .into_iter()
                .map(|(k, (_, _, p))| (k, p))
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
                let requeues = launch_attempt(&pod);
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
    fn adopt_candidate(&mut self, claim: OrphanClaim) {
        let Some(round) = self.orphan_rounds.get_mut(&claim.round) else {
            return;
        };
        let Some(ti) = round.candidates.remove(&claim.key) else {
            return;
        };
        round.adopted.push(claim.key.clone());
        if !self.tasks.contains_key(&claim.key) {
            let phase = TaskPhase::Launched {
                pod: claim.pod.clone(),
            };
            let key = Arc::new(claim.key);
            // A template that `Submit` would refuse is never launched: kept as none.
            let template = ti.template.filter(|t| t.validate().is_ok());
            self.tasks
                .insert(Arc::clone(&key), Task::new(template, claim.requeues, phase));
            let mut record = PodRecord::new(key, claim.uid, true, false);
            record.last_phase = claim.phase;
            self.pods.insert(claim.pod, record);
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

    fn maybe_resolve_round(&mut self, round_id: u64) {
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
        self.emit(CommandKind::OrphansResolved {
            adopted: round.adopted,
            reset,
        });
        for report in round.held_reports {
            self.emit(report);
        }
    }

    /// Emits a try's end, or holds it while the try's hand-over is still open (in Airflow the
    /// hand-over is one transaction and the scheduler reads executor events after it commits).
    pub(super) fn emit_report(
        &mut self,
        key: TaskKey,
        state: ReportedState,
        reason: Option<String>,
    ) {
        let report = CommandKind::Report { key, state, reason };
        if let Some(held) = self.fenced_reports.as_mut() {
            held.push(report);
        } else if let Some(round) = self
            .orphan_rounds
            .values_mut()
            .find(|r| matches!(&report, CommandKind::Report { key, .. } if r.adopted.contains(key)))
        {
            round.held_reports.push(report);
        } else {
            self.emit(report);
        }
    }

    // ---- completed pods of dead schedulers (§4.3) -------------------------------------------

    /// Lists completed pods of dead schedulers. The periodic timer is re-armed by its caller,
    /// so a hand-over's extra run does not postpone the next periodic one (as in Airflow).
    pub(super) fn start_completed_adoption(&mut self) {
        if self.completed_adoption_in_flight {
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
        self.completed_adoption_in_flight = true;
        let kind = CommandKind::ListPods {
            namespace: self.config.namespace.clone(),
            label_selector: selector.clone(),
            field_selector: Some(COMPLETED_FIELD_SELECTOR.to_string()),
        };
        self.emit_api(kind, Awaiting::CompletedList);
        if self.config.adopt_leftover_pods
            && self.config.adoption_scope != adoption::AdoptionScope::AllOthers
        {
            let kind = CommandKind::ListPods {
                namespace: self.config.namespace.clone(),
                label_selector: selector,
                field_selector: Some(LEFTOVER_FIELD_SELECTOR.to_string()),
            };
            self.emit_api(kind, Awaiting::LeftoverList);
        }
    }

    /// Whether a pod owned by `owner` (and not by us or a tracked try) may be taken: any
    /// owner under the legacy scope; under `dead_only`, an owner not alive; under
    /// `declared_dead`, one also declared dead in the last readable snapshot (its job no longer
    /// running); under both, one no row has named for a threshold.
    fn may_take_from(&mut self, owner: Option<&String>, alive: &AliveSet) -> bool {
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
            // at least one newer snapshot.
            self.unknown_owner_is_dead(owner)
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
                CommandKind::QueryUnfinishedTasks,
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
            let failed = Outcome::Failed {
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
    fn take_dead_owners_pod(&mut self, pod: &PodView, key: TaskKey, disposal: Disposal) {
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
        self.completed_adoption_in_flight = false;
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
                &Outcome::Succeeded,
                completion::PodState::Terminal,
            ) {
                self.take_dead_owners_pod(&pod, key, disposal);
            }
        }
    }

    /// Whether `owner`, absent from the heartbeat table, has been absent long enough to be
    /// dead (within the current stretch of regular reads, as for any peer); remembers when it
    /// was first missed.
    fn unknown_owner_is_dead(&mut self, owner: &str) -> bool {
        let now = self.clock.now();
        let first = *self.unknown_owners.entry(owner.to_string()).or_insert(now);
        let first = first.max(self.peers.stretch_start().unwrap_or(now));
        let threshold = self.config.health_threshold_ms();
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
        self.pods.insert(
            pod.clone(),
            PodRecord::new(Arc::new(key), String::new(), true, true),
        );
        self.start_cleanup(Cleanup {
            pod,
            disposal,
            attempt: 0,
        });
    }
}

/// The requeues a pod says its try had used when it was launched.
fn launch_attempt(pod: &PodView) -> u32 {
    pod.annotations
        .get(LAUNCH_ATTEMPT_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
