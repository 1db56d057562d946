//! The world's side of the invariants: the facts it feeds the checker as they happen, the
//! scans at the probe and at the end, the invariants of your own, and the [`Violation`] with its
//! reproduce command.

use podwarden_core::db::TaskState;
use podwarden_core::PodPhase;

use super::cluster::{PodKind, SimPod};
use super::sched_state::Status;
use super::World;
use crate::custom::{Invariant, WorldView};
use crate::invariants::{could_start, is_revoked, is_terminal, Violation};
use crate::time::Ms;

/// How long an executor whose watch is up may keep a try after its pod left the store: the
/// DELETED event's delivery (at most 100 ms in any scenario), a relist after a failed one (its
/// back-off), and the loop. A minute is far above any of them.
const CORE_STATE_LAG_MS: Ms = 60_000;
/// How long after the DB is back an executor may still hold a failed pod's DB question: its
/// retry back-off is at most 60 s, the answer a round trip; two minutes is twice that.
const CORE_STATE_DB_LAG_MS: Ms = 120_000;

impl World {
    fn violation(&mut self, invariant: &str, detail: String) -> Violation {
        Violation {
            invariant: invariant.to_string(),
            at_ms: self.now,
            seed: self.seed,
            detail,
            recent_trace: self.trace.recent(),
            reproduce: self.reproduce_command(),
        }
    }

    /// The command that reproduces this run ([`crate::reproduce::command`]). A world built in
    /// code (a proptest draw) is first saved to a file the command can name; rules given with
    /// `World::with_policies` are flagged, since no command line knows them.
    fn reproduce_command(&self) -> String {
        let mut line =
            if self.scenario.source.is_some() || self.scenario.extensions.is_shrink_candidate() {
                crate::reproduce::command(&self.scenario, self.seed)
            } else {
                let mut named = self.scenario.clone();
                named.source = Some(
                    self.save_generated()
                        .unwrap_or_else(|e| format!("<not saved: {e}>")),
                );
                crate::reproduce::command(&named, self.seed)
            };
        if !self.policies.is_empty() && self.scenario.extensions.policy().is_none() {
            line.push_str(
                "  # plus rules set with World::with_policies, which no command line knows: \
                 name them with a CustomPolicy (Lab) to rerun this",
            );
        }
        line
    }

    /// Writes a world that came from no file to the temp directory, as a scenario file (only
    /// what differs from the defaults, the seed included); returns its path.
    fn save_generated(&self) -> Result<String, String> {
        let mut scenario = self.scenario.clone();
        scenario.seed = self.seed;
        let toml = crate::shrink::to_minimal_toml(&scenario).map_err(|e| e.to_string())?;
        let path = std::env::temp_dir().join(format!(
            "podwarden-{}-seed-{}.toml",
            self.scenario.name, self.seed
        ));
        std::fs::write(&path, toml).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.display().to_string())
    }

    /// Safety invariants, after every event.
    pub(crate) fn check_step(&mut self) {
        if self.served.is_some() {
            self.collect_findings();
        } else if let Some((name, detail)) = self.checker.take() {
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
            if p.kind != PodKind::Worker {
                continue;
            }
            let waited = self.db.find(&p.key).is_some_and(|i| {
                let t = &self.db.tis[i];
                t.key.try_number == p.key.try_number
                    && matches!(t.state(), Some(TaskState::Queued | TaskState::Running))
            });
            if !waited {
                pods_not_in_flight += 1;
            }
        }
        self.recent_removals
            .retain(|at| now.saturating_sub(*at) <= CORE_STATE_LAG_MS);
        let bound = in_flight + pods_not_in_flight + self.recent_removals.len();
        for (i, s) in self.scheds.iter().enumerate() {
            let watching = s.status == Status::Up
                && self.api.watches_of(i as u32).count() == self.config.watch_scopes().len()
                && self.api.watches_of(i as u32).all(|w| {
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
        if p.kind != PodKind::Worker {
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
        if pod.kind != PodKind::Worker {
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
                && matches!(t.state(), Some(TaskState::Queued | TaskState::Running))
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
        self.fire_lost_and_leaked(true);
        self.checker.check_answered();
        if let Some((name, detail)) = self.checker.take() {
            if self.violation.is_none() {
                self.violation = Some(self.violation(name, detail));
            }
        }
        self.check_custom_end();
    }

    /// `no_lost_task` and `no_leaked_pod`, at the end: tasks not terminal, pods the policy
    /// should have removed. With `arrived_only`, a task that never arrived is not lost.
    pub(crate) fn fire_lost_and_leaked(&mut self, arrived_only: bool) {
        let lost: Vec<String> = (0..self.db.tis.len())
            .filter(|&i| {
                (!arrived_only || self.db.tis[i].state().is_some()) && !self.db.is_terminal(i)
            })
            .map(|i| format!("{}={:?}", self.db.tis[i].key, self.db.tis[i].state()))
            .collect();
        if !lost.is_empty() {
            let first: Vec<&String> = lost.iter().take(5).collect();
            let detail = format!(
                "{} tasks not terminal at the end, e.g. {first:?}",
                lost.len()
            );
            self.checker.fire("no_lost_task", detail);
        }
        // A served world keeps every finding (the checker holds one until taken).
        if self.served.is_some() {
            self.collect_findings();
        }
        let leaked = self.leaked_pods();
        if !leaked.is_empty() {
            let first: Vec<&String> = leaked.iter().take(5).collect();
            self.checker.fire(
                "no_leaked_pod",
                format!("{} pods left at the end, e.g. {first:?}", leaked.len()),
            );
        }
    }

    /// Pods the policy should have removed by the end.
    pub(crate) fn leaked_pods(&self) -> Vec<String> {
        let delete_succeeded = self.config.delete_worker_pods;
        let sweep = self.config.kpo_zombie_pod_cleanup_enabled;
        self.api
            .pods
            .values()
            .filter(|p| {
                let ti = self.db.find(&p.key).map(|i| &self.db.tis[i]);
                let finished = ti.is_none_or(|t| {
                    t.key.try_number != p.key.try_number
                        || !t.state().is_some_and(TaskState::is_unfinished)
                });
                match p.kind {
                    PodKind::Worker => match p.view.phase {
                        Some(PodPhase::Succeeded) => delete_succeeded,
                        Some(PodPhase::Failed) => {
                            delete_succeeded && self.config.delete_worker_pods_on_failure
                        }
                        _ => finished && p.view.deletion_timestamp.is_none(),
                    },
                    PodKind::Kpo { .. } => sweep && finished,
                }
            })
            .map(|p| format!("{} ({:?})", p.view.name, p.view.phase))
            .collect()
    }

    /// Registers an invariant of your own, checked with the built-in ones.
    #[must_use]
    pub fn with_invariant(mut self, invariant: Box<dyn Invariant>) -> Self {
        self.custom.invariants.push(invariant);
        self.custom.reached.push(false);
        self
    }

    /// What your invariants see of the world now.
    fn view(&self) -> WorldView<'_> {
        WorldView {
            now: self.now,
            pods: &self.api.pods,
            tis: &self.db.tis,
            schedulers: self.scenario.schedulers,
            config: &self.config,
        }
    }

    /// After every event: `Always` and `Sometimes` invariants.
    pub(crate) fn check_custom_step(&mut self) {
        if self.custom.invariants.is_empty() {
            return;
        }
        let mut custom = std::mem::take(&mut self.custom);
        let broken = custom.check_step(&self.view());
        self.custom = custom;
        if let Some((name, detail)) = broken {
            self.custom_violation(&name, detail);
        }
    }

    /// At the end: `Eventually` invariants, and `Sometimes` ones never reached.
    pub(crate) fn check_custom_end(&mut self) {
        let mut custom = std::mem::take(&mut self.custom);
        let broken = custom.check_end(&self.view());
        self.custom = custom;
        if let Some((name, detail)) = broken {
            self.custom_violation(&name, detail);
        }
    }
}
