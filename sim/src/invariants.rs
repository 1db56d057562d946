//! Named invariants, checked as the world runs (safety) and at the end (liveness).
//!
//! | invariant | fires when |
//! |---|---|
//! | `no_thrash` | an owner relabel takes a pod from a scheduler that is alive (running, not stalled) |
//! | `requeue_bounded` | a try is requeued more often than `pod_launch_failure_retries` in one submission, or twice for one failed pod |
//! | `no_retry_for_prestart_failure` | a user retry is consumed by a try whose task never started, before it had `prestart_budget` requeues |
//! | `no_double_execution` | two pods run task code for one try at once |
//! | `bounded_core_state` | an executor tracks more tries than are in flight, or anything once all work is done |
//! | `stall_detected` | a stalled scheduler still reports healthy a threshold (plus a probe period) after it stalled |
//! | `no_lost_task` | a task is not terminal at the end (heal time plus `lost_task_bound_s`) |
//! | `no_leaked_pod` | a pod is left at the end that the policy should have removed |

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use podwarden_core::db::TaskState;
use podwarden_core::{PodPhase, PodView, TaskKey};

use crate::scenario::Scenario;
use crate::world::{Ms, World};

/// Every invariant's name.
pub const INVARIANTS: [&str; 8] = [
    "no_thrash",
    "requeue_bounded",
    "no_retry_for_prestart_failure",
    "no_double_execution",
    "bounded_core_state",
    "stall_detected",
    "no_lost_task",
    "no_leaked_pod",
];

/// A broken invariant, with what is needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: String,
    /// Simulated time, milliseconds.
    pub at_ms: u64,
    /// The seed of the run.
    pub seed: u64,
    /// What exactly went wrong.
    pub detail: String,
    /// The last trace lines before it.
    pub recent_trace: Vec<String>,
    /// The command that reproduces it.
    pub reproduce: String,
}

/// Incremental bookkeeping for the invariants. The world feeds it facts as they happen.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// `pod_launch_failure_retries` of the policy under test (`-1` unlimited).
    budget: i64,
    prestart_budget: u32,
    stall_grace_ms: Ms,
    alive: BTreeSet<String>,
    /// Stalled schedulers: index → since.
    stalled: BTreeMap<u32, Ms>,
    /// Pods running task code, per try.
    running: BTreeMap<TaskKey, BTreeSet<String>>,
    /// Requeues in the current submission of each try.
    requeues: BTreeMap<TaskKey, u32>,
    /// Failed pods already answered by a requeue.
    requeued_pods: BTreeSet<String>,
    /// Pods created per try.
    pods_created: BTreeMap<TaskKey, u32>,
    fired: Option<(&'static str, String)>,
}

impl Checker {
    /// A checker for the scenario's policy and expectations.
    #[must_use]
    pub(crate) fn new(scenario: &Scenario) -> Self {
        let config = scenario.executor_config().unwrap_or_default();
        Self {
            budget: config.pod_launch_failure_retries,
            prestart_budget: scenario.expect.prestart_budget,
            stall_grace_ms: crate::world::secs(config.scheduler_health_check_threshold)
                + crate::world::PROBE_PERIOD,
            ..Self::default()
        }
    }

    fn fire(&mut self, name: &'static str, detail: String) {
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

    /// `no_thrash`: `patcher` relabels `pod` with `labels`.
    pub(crate) fn label_patch(
        &mut self,
        patcher: &str,
        pod: &PodView,
        labels: &BTreeMap<String, String>,
        now: Ms,
    ) {
        let Some(new_owner) = labels.get("airflow-worker") else {
            return;
        };
        let old = pod.labels.get("airflow-worker");
        if let Some(old) = old {
            if old != new_owner && old != patcher && self.alive.contains(old) {
                self.fire("no_thrash", format!("scheduler {patcher} relabelled pod {} from live scheduler {old} at {now} ms", pod.name));
            }
        }
    }

    /// A pod entered the store.
    pub(crate) fn pod_created(&mut self, pod: &crate::world::SimPod) {
        if pod.kind == crate::world::PodKind::Worker {
            self.pod_created_for(&pod.key);
        }
    }

    /// A pod left the store.
    pub(crate) fn pod_removed(&mut self, pod: &crate::world::SimPod) {
        if pod.running_task {
            self.task_stopped(&pod.view.name);
        }
    }

    /// A pod was created for `key`.
    pub(crate) fn pod_created_for(&mut self, key: &TaskKey) {
        *self.pods_created.entry(key.clone()).or_default() += 1;
    }

    /// `no_double_execution`: the pod's task process started.
    pub(crate) fn task_started(&mut self, pod: &str, key: &TaskKey) {
        let set = self.running.entry(key.clone()).or_default();
        set.insert(pod.to_string());
        if set.len() > 1 {
            let pods: Vec<&String> = set.iter().collect();
            let detail = format!("try {key} runs in {} pods at once: {pods:?}", pods.len());
            self.fire("no_double_execution", detail);
        }
    }

    /// The pod's task process ended (exit, kill, node loss).
    pub(crate) fn task_stopped(&mut self, pod: &str) {
        self.running.retain(|_, pods| {
            pods.remove(pod);
            !pods.is_empty()
        });
    }

    /// A new submission of `key` starts a fresh requeue budget.
    pub(crate) fn submitted(&mut self, key: &TaskKey) {
        self.requeues.remove(key);
    }

    /// `requeue_bounded`: `key` was requeued because `failed_pod` failed.
    pub(crate) fn requeued(&mut self, key: &TaskKey, failed_pod: &str) {
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

    /// `no_retry_for_prestart_failure`: the scheduler charged a failure of `key` to the user
    /// (a retry consumed, or the task failed for good).
    pub(crate) fn retry_consumed(&mut self, key: &TaskKey, never_started: bool, now: Ms) {
        let requeues = self.requeues.get(key).copied().unwrap_or(0);
        let had_pod = self.pods_created.get(key).is_some_and(|n| *n > 0);
        if never_started && had_pod && requeues < self.prestart_budget {
            self.fire(
                "no_retry_for_prestart_failure",
                format!("try {key} was charged to the user (a retry, or the task failed) at {now} ms although its task never started ({requeues} requeues)"),
            );
        }
    }

    /// A scheduler stalled.
    pub(crate) fn stalled(&mut self, index: u32, id: &str, since: Ms) {
        self.stalled.insert(index, since);
        self.set_alive(id, false);
    }

    /// `stall_detected`: the probe read a stalled scheduler's health.
    pub(crate) fn stall_probe(&mut self, index: u32, healthy: bool, now: Ms) {
        let Some(&since) = self.stalled.get(&index) else {
            return;
        };
        if healthy && now.saturating_sub(since) > self.stall_grace_ms {
            self.fire(
                "stall_detected",
                format!(
                    "scheduler {index} stalled at {since} ms and still reports healthy at {now} ms"
                ),
            );
        }
        if !healthy {
            self.stalled.remove(&index);
        }
    }

    /// `bounded_core_state`: an executor tracks `tracked` tries while `in_flight` are queued or
    /// running anywhere.
    pub(crate) fn core_state(&mut self, scheduler: &str, tracked: usize, in_flight: usize) {
        if tracked > in_flight {
            self.fire(
                "bounded_core_state",
                format!(
                    "scheduler {scheduler} tracks {tracked} tries, only {in_flight} are in flight"
                ),
            );
        }
    }
}

impl World {
    fn violation(&mut self, invariant: &str, detail: String) -> Violation {
        Violation {
            invariant: invariant.to_string(),
            at_ms: self.now,
            seed: self.seed,
            detail,
            recent_trace: self.trace.recent(),
            reproduce: format!(
                "{} run {} --seed {} --policy {} --trace trace.jsonl",
                self.scenario.extensions.program(),
                self.scenario_path_hint(),
                self.seed,
                self.scenario.policy
            ),
        }
    }

    /// The scenario file to name in the reproduce command: as given, but a shipped scenario is
    /// named relative to the workspace so the command works from any checkout.
    fn scenario_path_hint(&self) -> String {
        match &self.scenario.source {
            Some(path) => match path.find("sim/scenarios/") {
                Some(i) => path[i..].to_string(),
                None => path.clone(),
            },
            None => format!("sim/scenarios/{}.toml", self.scenario.name),
        }
    }

    /// Safety invariants, after every event.
    pub(crate) fn check_step(&mut self) {
        // bounded_core_state, cheaply: an executor never tracks more tries than exist.
        let total = self.db.tis.len();
        for s in &self.scheds {
            if let Some(ex) = s.exec.as_ref() {
                let tracked = ex.state_size().tasks;
                if tracked > total {
                    self.checker.core_state(&s.id, tracked, total);
                }
            }
        }
        if let Some((name, detail)) = self.checker.take() {
            if self.violation.is_none() {
                self.violation = Some(self.violation(name, detail));
            }
        }
        self.check_custom_step();
    }

    /// A registered invariant broke: reported like a built-in one (unless one broke first).
    pub(crate) fn custom_violation(&mut self, name: &str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(self.violation(name, detail));
        }
    }

    /// Liveness invariants, at the end of the run.
    pub(crate) fn check_end(&mut self) {
        // The strong form of bounded_core_state: with nothing in flight, nothing is tracked.
        let in_flight = self.db.in_flight();
        for s in &self.scheds {
            if let Some(ex) = s.exec.as_ref() {
                self.checker
                    .core_state(&s.id, ex.state_size().tasks, in_flight);
            }
        }
        let lost: Vec<String> = (0..self.db.tis.len())
            .filter(|&i| self.db.tis[i].state.is_some() && !self.db.is_terminal(i))
            .map(|i| format!("{}={:?}", self.db.tis[i].key, self.db.tis[i].state))
            .collect();
        if !lost.is_empty() {
            let first: Vec<&String> = lost.iter().take(5).collect();
            let detail = format!(
                "{} tasks not terminal at the end, e.g. {first:?}",
                lost.len()
            );
            self.checker.fire_end("no_lost_task", detail);
        }
        let leaked = self.leaked_pods();
        if !leaked.is_empty() {
            let first: Vec<&String> = leaked.iter().take(5).collect();
            self.checker.fire_end(
                "no_leaked_pod",
                format!("{} pods left at the end, e.g. {first:?}", leaked.len()),
            );
        }
        if let Some((name, detail)) = self.checker.take() {
            if self.violation.is_none() {
                self.violation = Some(self.violation(name, detail));
            }
        }
        self.check_custom_end();
    }

    /// Pods the policy should have removed by the end.
    fn leaked_pods(&self) -> Vec<String> {
        let delete_succeeded = self.config.delete_worker_pods;
        let sweep = self.config.kpo_zombie_pod_cleanup_enabled;
        self.api
            .pods
            .values()
            .filter(|p| {
                let ti = self.db.find(&p.key).map(|i| &self.db.tis[i]);
                let finished = ti.is_none_or(|t| {
                    t.key.try_number != p.key.try_number
                        || !t.state.is_some_and(TaskState::is_unfinished)
                });
                match p.kind {
                    crate::world::PodKind::Worker => match p.view.phase {
                        Some(PodPhase::Succeeded) => delete_succeeded,
                        Some(PodPhase::Failed) => {
                            delete_succeeded && self.config.delete_worker_pods_on_failure
                        }
                        _ => finished && p.view.deletion_timestamp.is_none(),
                    },
                    crate::world::PodKind::Kpo { .. } => sweep && finished,
                }
            })
            .map(|p| format!("{} ({:?})", p.view.name, p.view.phase))
            .collect()
    }
}

impl Checker {
    fn fire_end(&mut self, name: &'static str, detail: String) {
        self.fire(name, detail);
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
        p.labels.insert("airflow-worker".into(), owner.into());
        p
    }

    fn owner(id: &str) -> BTreeMap<String, String> {
        [("airflow-worker".to_string(), id.to_string())].into()
    }

    /// Negative controls: each checker fires on a deliberately wrong input, and stays quiet on
    /// the right one.
    #[test]
    fn no_thrash_fires_only_for_a_live_owner() {
        let mut c = checker(1);
        c.set_alive("7", true);
        c.label_patch("5", &pod("p", "9"), &owner("5"), 1);
        assert_eq!(c.take(), None, "9 is dead: adoption is fine");
        c.label_patch("5", &pod("p", "7"), &owner("5"), 2);
        assert_eq!(c.take().map(|v| v.0), Some("no_thrash"));
    }

    #[test]
    fn no_double_execution_fires_on_two_running_pods() {
        let mut c = checker(1);
        let k = TaskKey::new("d", "t", "r", 1);
        c.task_started("a", &k);
        c.task_stopped("a");
        c.task_started("b", &k);
        assert_eq!(c.take(), None, "one after the other is fine");
        c.task_started("c", &k);
        assert_eq!(c.take().map(|v| v.0), Some("no_double_execution"));
    }

    #[test]
    fn requeue_bounded_fires_over_budget_and_twice_per_pod() {
        let k = TaskKey::new("d", "t", "r", 1);
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
    fn prestart_retry_fires_before_the_budget_is_used() {
        let k = TaskKey::new("d", "t", "r", 1);
        let mut c = checker(1);
        c.pod_created_for(&k);
        c.retry_consumed(&k, false, 1);
        assert_eq!(c.take(), None, "the task ran: a real failure");
        c.retry_consumed(&k, true, 2);
        assert_eq!(c.take().map(|v| v.0), Some("no_retry_for_prestart_failure"));
        c.requeued(&k, "a");
        c.retry_consumed(&k, true, 3);
        assert_eq!(
            c.take(),
            None,
            "after the requeue budget, a retry is expected"
        );
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
        c.core_state("5", 2, 2);
        assert_eq!(c.take(), None);
        c.core_state("5", 3, 2);
        assert_eq!(c.take().map(|v| v.0), Some("bounded_core_state"));
    }
}
