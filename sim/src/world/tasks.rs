//! The world's side of the metadata DB: the load of task instances, a try failing for good, and
//! the answers to the executors' DB questions.

use podwarden_core::command::DbQuery;
use std::collections::BTreeSet;

use rand::Rng;

use podwarden_core::db::{DbOutcome, TaskState};
use podwarden_core::{CommandKind, TaskKey};

use super::db::Ti;
use super::event::Ev;
use super::World;
use crate::time::secs;

impl World {
    pub(crate) fn generate_load(&mut self) {
        let load = self.scenario.load.clone();
        let span = secs(self.scenario.duration_s);
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
            let idx = self.db.add(Ti {
                key,
                state: None,
                queued_by: None,
                queued_at: 0,
                retries_left: load.retries,
                kpo,
                runtime_ms: secs(runtime_s),
                started: BTreeSet::new(),
                stuck_resets: 0,
                retries_consumed: 0,
                adopting_by: None,
                process_died_at: None,
                arrived_at: span * u64::from(i) / u64::from(load.tasks.max(1)),
                done_at: None,
                tries: Default::default(),
            });
            let at = self.db.tis[idx].arrived_at;
            self.at(at, Ev::TaskArrives { ti: idx });
        }
    }

    /// A try failed for good in the scheduler's eyes: a new try if retries remain, else FAILED.
    /// Returns whether a user retry was consumed. `cause` says why, in the try's history.
    pub(crate) fn fail_try(&mut self, idx: usize, cause: &str) -> bool {
        let now = self.now;
        let ti = &mut self.db.tis[idx];
        ti.tries.ended(ti.key.try_number, now, false, cause);
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
            ti.state = Some(TaskState::Failed);
            ti.queued_by = None;
            ti.done_at = Some(now);
            false
        }
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
                        .filter(|t| t.state.is_some_and(TaskState::is_unfinished))
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
