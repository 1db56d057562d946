//! The world served to schedulers outside it (`podwarden-sim serve`): no scheduler runs inside,
//! the task processes record their tries in a metadata DB the outside schedulers share
//! ([`TaskRecords`]), every change of the store is kept for the server's watches, and every
//! invariant the checker can judge without seeing inside the schedulers is collected, not only
//! the first.
// Only `serve` (a default feature) builds a served world.
#![cfg_attr(not(feature = "serve"), allow(dead_code))]

use std::collections::BTreeMap;

use podwarden_core::db::TaskState;
use podwarden_core::TaskKey;

use super::store::Change;
use super::World;
use crate::scenario::{Scenario, ScenarioError};
use crate::time::Ms;
use crate::trace::Trace;

/// The metadata DB as the served task processes see it: what Airflow's task runner writes.
pub(crate) trait TaskRecords {
    /// Task instance `key` (its first try) arrives: a row in state `scheduled`, with `max_tries`
    /// retries and the namespace its pod template names.
    fn arrived(&mut self, key: &TaskKey, max_tries: u32, namespace: Option<&str>);
    /// The task process of try `key` starts: `queued` → `running` if that try is the current
    /// one and queued. Whether it may run.
    fn try_starts(&mut self, key: &TaskKey) -> bool;
    /// The task process of try `key` exited on its own: `running` → `success`, or (the task's
    /// own failure) `up_for_retry` or `failed`.
    fn try_ends(&mut self, key: &TaskKey, succeeded: bool);
}

/// What the world keeps for its server: the DB link, the change feed, the findings.
pub(crate) struct Served {
    pub(crate) records: Box<dyn TaskRecords>,
    /// Every change of the store since the server last took them, oldest first.
    pub(crate) feed: Vec<Change>,
    /// Watch expiries drawn by the fault plan since the server last looked: each ends every
    /// watch the server has open with 410.
    pub(crate) watch_expiries: u32,
    /// The first finding of each invariant that fired.
    pub(crate) findings: BTreeMap<&'static str, String>,
    /// When the load is over and every task should be done: the run's own end.
    pub(crate) deadline: Ms,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("feed", &self.feed.len())
            .field("findings", &self.findings)
            .finish_non_exhaustive()
    }
}

impl World {
    /// The world of `scenario` served to outside schedulers: its cluster, load and faults, no
    /// scheduler of its own, task processes that write to `records`. It runs until told to stop.
    ///
    /// # Errors
    /// [`ScenarioError`] if the scenario is invalid.
    pub(crate) fn serving(
        scenario: Scenario,
        seed: Option<u64>,
        records: Box<dyn TaskRecords>,
    ) -> Result<Self, ScenarioError> {
        let mut world = Self::build(scenario, seed, Trace::hashing(), false)?;
        world.keep_going = true;
        world.served = Some(Served {
            records,
            feed: Vec::new(),
            watch_expiries: 0,
            findings: BTreeMap::new(),
            deadline: world.end,
        });
        world.end = Ms::MAX;
        Ok(world)
    }

    /// Runs every event due by `t`, then sets the clock to `t` (never backwards).
    pub(crate) fn advance_to(&mut self, t: Ms) {
        while self
            .queue
            .peek()
            .is_some_and(|std::cmp::Reverse(next)| next.at <= t)
        {
            if !self.step() {
                break;
            }
        }
        self.now = self.now.max(t);
    }

    /// The changes of the store since the last call, oldest first.
    pub(crate) fn take_changes(&mut self) -> Vec<Change> {
        self.served
            .as_mut()
            .map(|s| std::mem::take(&mut s.feed))
            .unwrap_or_default()
    }

    /// Sets task instance `key`'s current try and state as the shared DB now holds them (the
    /// outside schedulers write there), so the kubelet and the end checks see them.
    pub(crate) fn mirror_task(&mut self, key: &TaskKey, state: TaskState) {
        let Some(idx) = self.db.find(key) else {
            return;
        };
        if self.db.tis[idx].key.try_number != key.try_number
            || self.db.tis[idx].state() != Some(state)
        {
            self.db.tis[idx].key.try_number = key.try_number;
            self.db.set_state(idx, Some(state));
            if !state.is_unfinished() {
                self.db.tis[idx].done_at.get_or_insert(self.now);
            }
        }
    }

    /// Whether the task of try `key` ever started (its task process said RUNNING).
    pub(crate) fn try_started(&self, key: &TaskKey) -> bool {
        self.db
            .find(key)
            .is_some_and(|i| self.db.tis[i].started.contains(&key.try_number))
    }

    /// Whether every task instance of the load has arrived and finished (as the shared DB
    /// says).
    pub(crate) fn all_tasks_finished(&self) -> bool {
        (0..self.db.tis.len()).all(|i| self.db.is_terminal(i))
    }

    /// Whether the pods left are only ones the policy keeps: ended, and not to be removed
    /// (Airflow keeps failed worker pods by default, `delete_worker_pods_on_failure = false`).
    pub(crate) fn only_kept_pods_left(&self) -> bool {
        self.api
            .pods
            .values()
            .all(|p| crate::invariants::is_terminal(&p.view))
            && self.leaked_pods().is_empty()
    }

    /// Records an invariant's finding (the first of each invariant is kept).
    pub(crate) fn served_finding(&mut self, name: &'static str, detail: String) {
        if let Some(s) = self.served.as_mut() {
            s.findings.entry(name).or_insert(detail);
        }
    }

    /// The end checks a served world can make: every task finished, no pod the policy should
    /// have removed left. Findings go with the others. Before the scenario's end, with tasks
    /// still unfinished, neither can be judged (the run was cut short): returns whether they
    /// were.
    pub(crate) fn served_end_checks(&mut self) -> bool {
        let deadline = self.served.as_ref().map_or(0, |s| s.deadline);
        if self.now <= deadline && !self.all_tasks_finished() {
            self.collect_findings();
            return false;
        }
        self.fire_lost_and_leaked(false);
        self.collect_findings();
        true
    }

    /// Moves the checker's pending finding into the served findings.
    pub(crate) fn collect_findings(&mut self) {
        while let Some((name, detail)) = self.checker.take() {
            self.served_finding(name, detail);
        }
    }

    /// Tells the checker which schedulers are alive (the served DB's judgement), for
    /// `no_thrash`.
    pub(crate) fn set_alive(&mut self, id: &str, alive: bool) {
        self.checker.set_alive(id, alive);
    }
}
