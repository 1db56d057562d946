//! Named invariants, checked as the world runs (safety) and at the end (liveness).
//!
//! | invariant | fires when |
//! |---|---|
//! | `no_thrash` | an owner relabel takes a pod from a scheduler that is alive (running, not stalled) |
//! | `requeue_bounded` | a try is requeued more often than `pod_launch_failure_retries` in one submission, or twice for one failed pod |
//! | `no_retry_for_prestart_failure` | a user retry is consumed by a try whose task never started, before it had `prestart_budget` requeues |
//! | `no_double_execution` | two pods of one try could both start its task at once (both not terminal, neither being deleted, main container not ended) |
//! | `bounded_core_state` | an executor whose watch is up tracks more tries than are in flight or still have a pod, or anything once all work is done |
//! | `stall_detected` | a stalled scheduler still reports healthy a threshold (plus a probe period) after it stalled |
//! | `no_lost_task` | a task is not terminal at the end (heal time plus `lost_task_bound_s`) |
//! | `no_leaked_pod` | a pod is left at the end that the policy should have removed |
//! | `exactly_once_accounting` | a try's end is reported twice (by anyone), or a pod that ended while its try was awaited is never answered (no report, no requeue) |

mod checker;

use serde::Serialize;

use podwarden_core::db::TaskState;
use podwarden_core::{ContainerState, PodPhase, PodView};

use crate::world::{Ms, SimPod, World};

pub(crate) use checker::Checker;

/// Every invariant's name.
pub const INVARIANTS: [&str; 9] = [
    "no_thrash",
    "requeue_bounded",
    "no_retry_for_prestart_failure",
    "no_double_execution",
    "bounded_core_state",
    "stall_detected",
    "no_lost_task",
    "no_leaked_pod",
    "exactly_once_accounting",
];

/// How long an executor whose watch is up may keep a try after its pod left the store: the
/// DELETED event's delivery (at most 100 ms in any scenario), a relist after a failed one (its
/// back-off), and the loop. A minute is far above any of them.
const CORE_STATE_LAG_MS: Ms = 60_000;
/// How long after the DB is back an executor may still hold a failed pod's DB question: its
/// retry back-off is at most 60 s, the answer a round trip; two minutes is twice that.
const CORE_STATE_DB_LAG_MS: Ms = 120_000;

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

    /// `bounded_core_state`, at every liveness probe (every 10 s): an executor whose watch has
    /// been up for [`CORE_STATE_LAG_MS`] tracks at most the tries that are in flight (QUEUED or
    /// RUNNING in the DB), plus the tries not in flight that still have a worker pod in the store
    /// (it forgets a try when it sees its pod end), plus the worker pods removed within that lag
    /// (their DELETED may still be on its way). The count scans the DB and the store, which is
    /// why it runs at the probe rather than after every event.
    pub(crate) fn check_core_state(&mut self) {
        let now = self.now;
        // While the DB is down (and shortly after), a try whose pod failed waits for the DB's
        // answer, whatever became of its task instance: not a leak.
        if self.db.outage || now < self.db.outage_until.saturating_add(CORE_STATE_DB_LAG_MS) {
            return;
        }
        let in_flight = self.db.in_flight();
        let mut pods_not_in_flight = 0usize;
        for p in self.api.pods.values() {
            if p.kind != crate::world::PodKind::Worker {
                continue;
            }
            let waited = self.db.find(&p.key).is_some_and(|i| {
                let t = &self.db.tis[i];
                t.key.try_number == p.key.try_number
                    && matches!(t.state, Some(TaskState::Queued | TaskState::Running))
            });
            if !waited {
                pods_not_in_flight += 1;
            }
        }
        self.recent_removals
            .retain(|at| now.saturating_sub(*at) <= CORE_STATE_LAG_MS);
        let bound = in_flight + pods_not_in_flight + self.recent_removals.len();
        for (i, s) in self.scheds.iter().enumerate() {
            let watching = s.status == crate::world::Status::Up
                && self.api.watches.get(&(i as u32)).is_some_and(|w| {
                    w.live && w.inc == s.inc && now.saturating_sub(w.since) >= CORE_STATE_LAG_MS
                });
            if let (Some(ex), true) = (s.exec.as_ref(), watching) {
                let why = format!(
                    "{in_flight} in flight, {pods_not_in_flight} pods of other tries in the store, {} pods removed in the last {} s",
                    self.recent_removals.len(),
                    CORE_STATE_LAG_MS / 1000
                );
                self.checker
                    .core_state(&s.id, ex.state_size().tasks, bound, &why);
            }
        }
    }

    /// What a worker pod now is, for `no_double_execution` and `exactly_once_accounting`:
    /// `was_terminal` is its phase before the change.
    pub(crate) fn observe_pod(&mut self, name: &str, was_terminal: bool) {
        let Some(p) = self.api.pods.get(name) else {
            return;
        };
        if p.kind != crate::world::PodKind::Worker {
            return;
        }
        let could_start = could_start(&p.view);
        let ended = !was_terminal && is_terminal(&p.view);
        let key = p.key.clone();
        let revoked = is_revoked(&p.view);
        self.checker.worker_pod_state(name, &key, could_start);
        if ended {
            self.pod_ended(name, &key, revoked);
        }
    }

    /// A worker pod leaves the store.
    pub(crate) fn pod_leaves(&mut self, pod: &SimPod) {
        if pod.kind != crate::world::PodKind::Worker {
            return;
        }
        self.checker.pod_gone(&pod.view.name);
        self.recent_removals.push_back(self.now);
        if !is_terminal(&pod.view) {
            self.pod_ended(&pod.view.name, &pod.key, is_revoked(&pod.view));
        }
    }

    /// A worker pod of `key` ended (terminal, or gone before): if its task instance still waits
    /// on that try and the pod was not revoked, an executor must answer it.
    fn pod_ended(&mut self, name: &str, key: &podwarden_core::TaskKey, revoked: bool) {
        let awaited = self.db.find(key).is_some_and(|i| {
            let t = &self.db.tis[i];
            t.key.try_number == key.try_number
                && matches!(t.state, Some(TaskState::Queued | TaskState::Running))
        });
        if awaited && !revoked {
            self.checker.pod_ended_while_awaited(name, key, self.now);
        }
    }

    /// Liveness invariants, at the end of the run.
    pub(crate) fn check_end(&mut self) {
        // The strong form of bounded_core_state: with nothing in flight, nothing is tracked.
        let in_flight = self.db.in_flight();
        for s in &self.scheds {
            if let Some(ex) = s.exec.as_ref() {
                self.checker.core_state(
                    &s.id,
                    ex.state_size().tasks,
                    in_flight,
                    "at the end: tries in flight",
                );
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
            self.checker.fire("no_lost_task", detail);
        }
        let leaked = self.leaked_pods();
        if !leaked.is_empty() {
            let first: Vec<&String> = leaked.iter().take(5).collect();
            self.checker.fire(
                "no_leaked_pod",
                format!("{} pods left at the end, e.g. {first:?}", leaked.len()),
            );
        }
        self.checker.check_answered();
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

fn is_revoked(view: &PodView) -> bool {
    view.labels
        .get(podwarden_core::label::POD_REVOKED)
        .is_some_and(|v| v == podwarden_core::label::TRUE)
}

fn is_terminal(view: &PodView) -> bool {
    matches!(view.phase, Some(PodPhase::Succeeded | PodPhase::Failed))
}

/// The pod could yet start (or is running) its main container: not terminal, not being deleted,
/// main container not ended (a pod deleted on a cluster before 1.27 keeps its phase).
fn could_start(view: &PodView) -> bool {
    !is_terminal(view)
        && view.deletion_timestamp.is_none()
        && !matches!(
            view.containers.first().map(|c| &c.state),
            Some(ContainerState::Terminated { .. })
        )
}
