//! The invariants' bookkeeping: the world feeds the checker facts as they happen, and the checker
//! records the first violation. Each fact is one method; each invariant's exact definition is in
//! `docs/invariants.md`.

use std::collections::{BTreeMap, BTreeSet};

use podwarden_core::{label, PodView, ReportedState, TaskKey};

use crate::roster::Roster;
use crate::scenario::Scenario;
use crate::summary::{OwnerChange, OwnerChanges};
use crate::time::{secs, Ms};
use crate::world::sched_state::PROBE_PERIOD;

/// Incremental bookkeeping for the invariants.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// `pod_launch_failure_retries` of the policy under test (`-1` unlimited).
    budget: i64,
    prestart_budget: u32,
    stall_grace_ms: Ms,
    alive: BTreeSet<String>,
    /// Stalled schedulers: index → since.
    stalled: BTreeMap<u32, Ms>,
    /// Worker pods that could start (or run) their try's main container: not terminal, not
    /// being deleted, main container not terminated; per try.
    live: BTreeMap<TaskKey, BTreeSet<String>>,
    /// The try of each pod in `live`.
    live_key: BTreeMap<String, TaskKey>,
    /// Requeues in the current submission of each try.
    requeues: BTreeMap<TaskKey, u32>,
    /// Failed pods already answered by a requeue.
    requeued_pods: BTreeSet<String>,
    /// Tries whose pod spec the API server refused (400, 403, 422 to a create): the only
    /// failures without a start that may be charged to the user.
    refused: BTreeSet<TaskKey>,
    /// The first report of each try: who, what, when.
    reports: BTreeMap<TaskKey, (String, ReportedState, Ms)>,
    /// Pods that ended while their task instance waited on their try, not answered yet.
    unanswered: BTreeMap<String, (TaskKey, Ms)>,
    fired: Option<(&'static str, String)>,
    /// Every job of every scheduler: how messages name a scheduler.
    pub(crate) roster: Roster,
    /// Owner relabels applied, by whether the old owner was alive (the one home of that
    /// judgement: `no_thrash`'s).
    pub(crate) owner_changes: OwnerChanges,
}

impl Checker {
    /// A checker for the scenario's policy and expectations.
    #[must_use]
    pub(crate) fn new(scenario: &Scenario) -> Self {
        let config = scenario.executor_config().unwrap_or_default();
        Self {
            budget: config.pod_launch_failure_retries,
            prestart_budget: scenario.expect.prestart_budget,
            stall_grace_ms: secs(config.scheduler_health_check_threshold) + PROBE_PERIOD,
            ..Self::default()
        }
    }

    pub(crate) fn fire(&mut self, name: &'static str, detail: String) {
        if self.fired.is_none() {
            self.fired = Some((name, detail));
        }
    }

    /// The first violation seen, if any, taken out.
    pub(crate) fn take(&mut self) -> Option<(&'static str, String)> {
        self.fired.take()
    }

    /// A scheduler id is alive (running and making progress) or not.
    pub(crate) fn set_alive(&mut self, id: &str, alive: bool) {
        if alive {
            self.alive.insert(id.to_string());
        } else {
            self.alive.remove(id);
        }
    }

    /// Scheduler `index` started (or restarted) as job `id`: alive.
    pub(crate) fn scheduler_started(&mut self, index: u32, id: &str, now: Ms) {
        self.roster.started(index, id, now);
        self.set_alive(id, true);
    }

    /// Job `id` stopped (crashed, killed externally, restarted by the probe): dead.
    pub(crate) fn scheduler_stopped(&mut self, id: &str, now: Ms) {
        self.roster.stopped(id, now);
        self.set_alive(id, false);
    }

    /// `no_thrash`: `patcher` relabels `pod` with `labels`. Also counts the owner change as an
    /// adoption from a dead (or stalled) owner or a relabel of a live owner's pod.
    pub(crate) fn label_patch(
        &mut self,
        patcher: &str,
        pod: &PodView,
        labels: &BTreeMap<String, String>,
        now: Ms,
    ) {
        let Some(new_owner) = labels.get(label::AIRFLOW_WORKER) else {
            return;
        };
        let Some(old) = pod.labels.get(label::AIRFLOW_WORKER) else {
            return;
        };
        if old == new_owner || old == patcher {
            return;
        }
        let owner_alive = self.alive.contains(old);
        self.owner_changes.record(OwnerChange {
            at_ms: now,
            pod: pod.name.clone(),
            owner_alive,
        });
        if owner_alive {
            // A served world does not know who patched (no authentication): "".
            let who = if patcher.is_empty() {
                "a scheduler".to_string()
            } else {
                self.roster.name(patcher)
            };
            let detail = format!(
                "{who} relabelled pod {} from live {} at {now} ms",
                pod.name,
                self.roster.name(old)
            );
            self.fire("no_thrash", detail);
        }
    }

    /// `no_double_execution`: worker pod `name` of `key` now could (`could_start`) or could not
    /// start its try's main container. Two such pods of one try at once fire it, whatever the
    /// task runner would then do.
    pub(crate) fn worker_pod_state(&mut self, name: &str, key: &TaskKey, could_start: bool) {
        if could_start == self.live_key.contains_key(name) {
            return;
        }
        if !could_start {
            self.pod_gone(name);
            return;
        }
        self.live_key.insert(name.to_string(), key.clone());
        let set = self.live.entry(key.clone()).or_default();
        set.insert(name.to_string());
        if set.len() > 1 {
            let pods: Vec<&String> = set.iter().collect();
            let detail = format!(
                "try {key} has {} pods that could start its task at once: {pods:?}",
                pods.len()
            );
            self.fire("no_double_execution", detail);
        }
    }

    /// A worker pod left the store.
    pub(crate) fn pod_gone(&mut self, name: &str) {
        if let Some(key) = self.live_key.remove(name) {
            if let Some(set) = self.live.get_mut(&key) {
                set.remove(name);
                if set.is_empty() {
                    self.live.remove(&key);
                }
            }
        }
    }

    /// A new submission of `key` (the scheduler queued the try again after revoking it) starts
    /// a fresh requeue budget and a fresh account: the earlier submission was abandoned.
    pub(crate) fn submitted(&mut self, key: &TaskKey) {
        self.requeues.remove(key);
        self.reports.remove(key);
    }

    /// `requeue_bounded`: `key` was requeued because `failed_pod` failed. Also answers that
    /// pod's end (`exactly_once_accounting`).
    pub(crate) fn requeued(&mut self, key: &TaskKey, failed_pod: &str) {
        self.unanswered.remove(failed_pod);
        let n = self.requeues.entry(key.clone()).or_default();
        *n += 1;
        let n = *n;
        if self.budget >= 0 && i64::from(n) > self.budget {
            self.fire(
                "requeue_bounded",
                format!(
                    "try {key} requeued {n} times with a budget of {}",
                    self.budget
                ),
            );
        }
        if !self.requeued_pods.insert(failed_pod.to_string()) {
            self.fire(
                "requeue_bounded",
                format!("try {key} requeued twice for the failure of pod {failed_pod}"),
            );
        }
    }

    /// The API server refused the pod spec of `key` (400, 403 or 422 to its create).
    pub(crate) fn spec_refused(&mut self, key: &TaskKey) {
        self.refused.insert(key.clone());
    }

    /// `no_retry_for_prestart_failure`: the scheduler charged a failure of `key` to the user (a
    /// retry consumed, or the task failed for good), however it came about (an executor's
    /// report, the stuck-in-queued check, the zombie check). It fires when the try's task never
    /// started, the API server did not refuse its pod spec, and it had fewer than
    /// `prestart_budget` requeues.
    pub(crate) fn retry_consumed(&mut self, key: &TaskKey, never_started: bool, now: Ms) {
        let requeues = self.requeues.get(key).copied().unwrap_or(0);
        if never_started && !self.refused.contains(key) && requeues < self.prestart_budget {
            self.fire(
                "no_retry_for_prestart_failure",
                format!("try {key} was charged to the user (a retry, or the task failed) at {now} ms although its task never started ({requeues} requeues)"),
            );
        }
    }

    /// `exactly_once_accounting`: scheduler `by` reported the end of `key`. A second report of
    /// one submission of a try, by anyone, fires it.
    pub(crate) fn reported(&mut self, by: &str, key: &TaskKey, state: ReportedState, now: Ms) {
        if !self.unanswered.is_empty() {
            self.unanswered.retain(|_, (k, _)| k != key);
        }
        match self.reports.get(key) {
            Some((first_by, first_state, at)) => {
                let detail = format!(
                    "try {key} reported twice: {first_state:?} by {} at {at} ms, then {state:?} by {} at {now} ms",
                    self.roster.name(first_by),
                    self.roster.name(by)
                );
                self.fire("exactly_once_accounting", detail);
            }
            None => {
                self.reports
                    .insert(key.clone(), (by.to_string(), state, now));
            }
        }
    }

    /// `exactly_once_accounting`: pod `name` of `key` ended while its task instance waited on
    /// that try (QUEUED or RUNNING at it): some scheduler must answer (report or requeue).
    /// An answer given before the pod ended (the executor decides on a failed pod that is still
    /// being deleted) counts.
    pub(crate) fn pod_ended_while_awaited(&mut self, name: &str, key: &TaskKey, now: Ms) {
        if self.requeued_pods.contains(name) || self.reports.contains_key(key) {
            return;
        }
        self.unanswered.insert(name.to_string(), (key.clone(), now));
    }

    /// The scheduler took `key` out of the executors' hands (revoked, reset, failed as a
    /// zombie): no executor answer is due for it any more.
    pub(crate) fn abandoned(&mut self, key: &TaskKey) {
        if !self.unanswered.is_empty() {
            self.unanswered.retain(|_, (k, _)| k != key);
        }
    }

    /// `exactly_once_accounting` at the end: every pod that ended while its try was awaited was
    /// answered.
    pub(crate) fn check_answered(&mut self) {
        if let Some((pod, (key, at))) = self.unanswered.iter().next() {
            let detail = format!(
                "{} ended pods of awaited tries were never answered, e.g. pod {pod} of try {key} (ended at {at} ms): no report, no requeue",
                self.unanswered.len()
            );
            self.fire("exactly_once_accounting", detail);
        }
    }

    /// A scheduler stalled.
    pub(crate) fn stalled(&mut self, index: u32, id: &str, since: Ms) {
        self.stalled.insert(index, since);
        self.set_alive(id, false);
    }

    /// A stalled scheduler's loop runs again (its stall ended by itself): no longer judged by
    /// `stall_detected`, and alive again unless its job was declared dead meanwhile
    /// (`job_running` false: it exits at its next heartbeat, as Airflow's scheduler does).
    pub(crate) fn resumed(&mut self, index: u32, id: &str, job_running: bool) {
        self.stalled.remove(&index);
        self.set_alive(id, job_running);
    }

    /// `stall_detected`: the probe read a stalled scheduler's health.
    pub(crate) fn stall_probe(&mut self, index: u32, healthy: bool, now: Ms) {
        let Some(&since) = self.stalled.get(&index) else {
            return;
        };
        if healthy && now.saturating_sub(since) > self.stall_grace_ms {
            let detail = format!(
                "{} stalled at {since} ms and still reports healthy at {now} ms",
                self.roster.name_of_index(index)
            );
            self.fire("stall_detected", detail);
        }
        if !healthy {
            self.stalled.remove(&index);
        }
    }

    /// `bounded_core_state`: an executor tracks `tracked` tries where at most `bound` can be
    /// justified (`why` says what the bound counts).
    pub(crate) fn core_state(&mut self, scheduler: &str, tracked: usize, bound: usize, why: &str) {
        if tracked > bound {
            let detail = format!(
                "{} tracks {tracked} tries, only {bound} justified ({why})",
                self.roster.name(scheduler)
            );
            self.fire("bounded_core_state", detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(budget: i64) -> Checker {
        Checker {
            budget,
            prestart_budget: 1,
            stall_grace_ms: 40_000,
            ..Checker::default()
        }
    }

    fn pod(name: &str, owner: &str) -> PodView {
        let mut p = PodView::new("default", name);
        p.labels.insert(label::AIRFLOW_WORKER.into(), owner.into());
        p
    }

    fn owner(id: &str) -> BTreeMap<String, String> {
        [(label::AIRFLOW_WORKER.to_string(), id.to_string())].into()
    }

    fn key() -> TaskKey {
        TaskKey::new("d", "t", "r", 1)
    }

    /// Negative controls: each checker fires on a deliberately wrong input, and stays quiet on
    /// the right one. (World-level controls, through the core's decisions, are in
    /// `sim/tests/negative_controls.rs`.)
    #[test]
    fn no_thrash_fires_only_for_a_live_owner() {
        let mut c = checker(1);
        c.scheduler_started(0, "5", 0);
        c.scheduler_started(1, "7", 0);
        c.scheduler_started(2, "9", 0);
        c.scheduler_stopped("9", 1);
        c.label_patch("5", &pod("p", "9"), &owner("5"), 1);
        assert_eq!(c.take(), None, "9 is dead: adoption is fine");
        c.label_patch("5", &pod("p", "7"), &owner("5"), 2);
        let (name, detail) = c.take().expect("a live owner's pod taken");
        assert_eq!(name, "no_thrash");
        assert_eq!(
            detail,
            "scheduler 0 (job 5) relabelled pod p from live scheduler 1 (job 7) at 2 ms"
        );
        c.label_patch("5", &pod("p", "5"), &owner("5"), 3);
        assert_eq!(
            (
                c.owner_changes.from_dead_owner,
                c.owner_changes.from_live_owner
            ),
            (1, 1),
            "one of each; a pod already its own is no change"
        );
    }

    #[test]
    fn no_double_execution_fires_on_two_pods_that_could_start() {
        let mut c = checker(1);
        let k = key();
        c.worker_pod_state("a", &k, true);
        c.worker_pod_state("a", &k, true);
        c.worker_pod_state("a", &k, false);
        c.worker_pod_state("b", &k, true);
        assert_eq!(c.take(), None, "one after the other is fine");
        c.pod_gone("b");
        c.worker_pod_state("c", &k, true);
        assert_eq!(c.take(), None, "a removed pod no longer counts");
        c.worker_pod_state("d", &TaskKey::new("d", "t", "r", 2), true);
        assert_eq!(c.take(), None, "another try of the task is fine");
        c.worker_pod_state("e", &k, true);
        assert_eq!(c.take().map(|v| v.0), Some("no_double_execution"));
    }

    #[test]
    fn requeue_bounded_fires_over_budget_and_twice_per_pod() {
        let k = key();
        let mut c = checker(1);
        c.requeued(&k, "a");
        assert_eq!(c.take(), None);
        c.requeued(&k, "b");
        assert_eq!(
            c.take().map(|v| v.0),
            Some("requeue_bounded"),
            "over the budget"
        );
        let mut c = checker(5);
        c.requeued(&k, "a");
        c.requeued(&k, "a");
        assert_eq!(
            c.take().map(|v| v.0),
            Some("requeue_bounded"),
            "twice for one pod"
        );
        let mut c = checker(1);
        c.requeued(&k, "a");
        c.submitted(&k);
        c.requeued(&k, "b");
        assert_eq!(c.take(), None, "a new submission has a new budget");
    }

    #[test]
    fn prestart_retry_fires_before_the_budget_is_used_whatever_the_cause() {
        let k = key();
        let mut c = checker(1);
        c.retry_consumed(&k, false, 1);
        assert_eq!(c.take(), None, "the task ran: a real failure");
        c.retry_consumed(&k, true, 2);
        assert_eq!(
            c.take().map(|v| v.0),
            Some("no_retry_for_prestart_failure"),
            "no pod is needed: a try revoked while stuck in queued counts"
        );
        c.requeued(&k, "a");
        c.retry_consumed(&k, true, 3);
        assert_eq!(
            c.take(),
            None,
            "after the requeue budget, a retry is expected"
        );
        let mut c = checker(1);
        c.spec_refused(&k);
        c.retry_consumed(&k, true, 4);
        assert_eq!(c.take(), None, "the API refused the pod spec itself");
    }

    #[test]
    fn exactly_once_fires_on_a_second_report_and_on_an_unanswered_end() {
        let k = key();
        let mut c = checker(1);
        c.scheduler_started(0, "5", 0);
        c.scheduler_started(0, "7", 900_000);
        c.reported("5", &k, ReportedState::Failed, 1);
        assert_eq!(c.take(), None);
        c.reported("7", &k, ReportedState::Failed, 2);
        let (name, detail) = c.take().expect("a second report");
        assert_eq!(name, "exactly_once_accounting");
        assert!(
            detail.contains("by scheduler 0 (job 5) at")
                && detail.contains("by scheduler 0 (job 7, restarted at 900 s) at"),
            "{detail}"
        );

        let mut c = checker(1);
        c.pod_ended_while_awaited("a", &k, 1);
        c.requeued(&k, "a");
        c.pod_ended_while_awaited("b", &k, 2);
        c.reported("5", &k, ReportedState::Succeeded, 3);
        c.pod_ended_while_awaited("c", &TaskKey::new("d", "u", "r", 1), 4);
        c.abandoned(&TaskKey::new("d", "u", "r", 1));
        c.check_answered();
        assert_eq!(
            c.take(),
            None,
            "answered by a requeue, a report, or abandoned"
        );
        c.pod_ended_while_awaited("d", &TaskKey::new("d", "v", "r", 1), 5);
        c.check_answered();
        assert_eq!(c.take().map(|v| v.0), Some("exactly_once_accounting"));
    }

    #[test]
    fn stall_detected_fires_when_health_stays_green() {
        let mut c = checker(1);
        c.stalled(0, "5", 1_000);
        c.stall_probe(0, true, 30_000);
        assert_eq!(c.take(), None, "within the grace");
        c.stall_probe(0, true, 50_000);
        assert_eq!(c.take().map(|v| v.0), Some("stall_detected"));
    }

    #[test]
    fn bounded_core_state_fires_on_a_leak() {
        let mut c = checker(1);
        c.core_state("5", 2, 2, "test");
        assert_eq!(c.take(), None);
        c.core_state("5", 3, 2, "test");
        assert_eq!(c.take().map(|v| v.0), Some("bounded_core_state"));
    }
}
