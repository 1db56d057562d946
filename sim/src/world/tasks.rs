//! The world's side of the metadata DB: the load of task instances, a try failing for good, and
//! the answers to the executors' DB questions.

use podwarden_core::command::DbQuery;

use rand::Rng;

use podwarden_core::db::{DbOutcome, TaskState};
use podwarden_core::{CommandKind, ReportedState, TaskKey};

use super::db::Ti;
use super::World;
use crate::time::secs;

impl World {
    pub(crate) fn generate_load(&mut self) {
        let load = self.scenario.load.clone();
        let span = secs(self.scenario.duration_s);
        let first = self.db.tis.len();
        for i in 0..load.tasks {
            let key = TaskKey::new(
                format!("dag_{:02}", i % 20),
                format!("task_{i:05}"),
                "scheduled__2026-11-23T00:00:00+00:00",
                1,
            );
            let runtime_s = self
                .rng_load
                .random_range(load.runtime_min_s..=load.runtime_max_s);
            let kpo = self.rng_load.random_bool(load.kpo_fraction);
            self.db.add(Ti::new(
                key,
                load.retries,
                kpo,
                secs(runtime_s),
                span * u64::from(i) / u64::from(load.tasks.max(1)),
            ));
        }
        self.queue_arrivals(first..self.db.tis.len());
    }

    /// Task instance `ti` arrives: schedulable, and (served) a row in the shared DB.
    pub(crate) fn task_arrives(&mut self, ti: usize) {
        self.queue_next_arrival();
        self.db.make_schedulable(ti, self.now);
        if let Some(served) = self.served.as_mut() {
            let t = &self.db.tis[ti];
            let namespace = super::scheduler::task_namespace(&self.scenario.load.namespaces, ti);
            served
                .records
                .arrived(&t.key, t.retries_left, namespace.as_deref());
        }
    }

    /// A try failed for good in the scheduler's eyes, because of `cause` (decided by scheduler
    /// `decided_by`, when one did): a new try if retries remain, else FAILED. Returns whether a
    /// user retry was consumed.
    pub(crate) fn fail_try(&mut self, idx: usize, cause: String, decided_by: Option<u32>) -> bool {
        let now = self.now;
        let retried = self.db.tis[idx].retries_left > 0;
        let key = self.db.tis[idx].key.clone();
        let started = self.db.tis[idx].started.contains(&key.try_number);
        self.db.tis[idx]
            .tries
            .ended(key.try_number, now, false, &cause);
        self.failed_try_cause(&key, cause, retried, started, decided_by);
        let ti = &mut self.db.tis[idx];
        ti.process_died_at = None;
        if ti.retries_left > 0 {
            ti.retries_left -= 1;
            ti.retries_consumed += 1;
            ti.key.try_number += 1;
            ti.stuck_resets = 0;
            self.summary.retries_consumed += 1;
            self.db.make_schedulable(idx, now + 5_000);
            true
        } else {
            ti.queued_by = None;
            ti.done_at = Some(now);
            self.db.set_state(idx, Some(TaskState::Failed));
            false
        }
    }

    /// The scheduler reads a try's end (Airflow's `process_executor_events`): a failure of a try
    /// that is still queued or running by this scheduler costs a user retry.
    pub(super) fn on_report(
        &mut self,
        i: u32,
        id: &str,
        key: &TaskKey,
        state: ReportedState,
        reason: Option<String>,
    ) {
        let Some(idx) = self.db.find(key) else { return };
        let ti = &self.db.tis[idx];
        if state != ReportedState::Failed || ti.key.try_number != key.try_number {
            return;
        }
        if !matches!(ti.state(), Some(TaskState::Queued | TaskState::Running))
            || ti.queued_by.as_deref() != Some(id)
        {
            return;
        }
        let never_started = !ti.started.contains(&key.try_number);
        self.summary.failures_reported += 1;
        // Whether it costs a retry or fails the task outright, a failure is charged to the user.
        self.checker.retry_consumed(key, never_started, self.now);
        let cause = reason.unwrap_or_else(|| "reported failed without a reason".into());
        self.fail_try(idx, cause, Some(i));
    }

    /// Records a failed try of `key` and its cause in the summary.
    pub(crate) fn failed_try_cause(
        &mut self,
        key: &TaskKey,
        cause: String,
        retried: bool,
        started: bool,
        decided_by: Option<u32>,
    ) {
        let decided_by = decided_by.map(|i| (i, self.checker.roster.name_of_index(i)));
        let failure = crate::failures::Failure {
            key: key.clone(),
            cause,
            retried,
            started,
            decided_by,
            now: self.now,
        };
        self.fault_log.failed(self.summary.failure_tally(), failure);
    }

    /// Answers a DB query when it arrives.
    pub(crate) fn db_answer(&mut self, sched: u32, inc: u32, command: podwarden_core::Command) {
        if self.db.outage
            && matches!(
                command.kind,
                CommandKind::Db(DbQuery::QueryTaskStates { .. })
            )
        {
            self.summary.coverage.count("DB question asked again");
        }
        let outcome = if self.db.outage {
            DbOutcome::Unavailable {
                reason: "metadata DB unreachable".into(),
            }
        } else {
            match &command.kind {
                CommandKind::Db(DbQuery::QueryTaskStates { keys }) => DbOutcome::TaskStates {
                    states: keys
                        .iter()
                        .map(|k| (k.clone(), self.db.state_of(k)))
                        .collect(),
                },
                CommandKind::Db(DbQuery::QueryUnfinishedTasks) => DbOutcome::UnfinishedTasks {
                    tasks: self
                        .db
                        .tis
                        .iter()
                        .filter(|t| t.state().is_some_and(TaskState::is_unfinished))
                        .map(|t| t.key.clone())
                        .collect(),
                },
                _ => return,
            }
        };
        self.deliver(
            sched,
            inc,
            podwarden_core::Input::DbResult {
                id: command.id,
                outcome,
            },
        );
    }
}
