//! The metadata DB: task instances and scheduler jobs, as Airflow's scheduler and workers see
//! them.

use std::collections::{BTreeMap, BTreeSet};

use podwarden_core::db::TaskState;
use podwarden_core::liveness::{HeartbeatRecord, JobState};
use podwarden_core::{TaskKey, Timestamp};

use crate::time::Ms;

/// One task instance; `key.try_number` is its current try.
#[derive(Debug, Clone)]
pub(crate) struct Ti {
    pub(crate) key: TaskKey,
    /// `None` until it arrives.
    pub(crate) state: Option<TaskState>,
    pub(crate) queued_by: Option<String>,
    pub(crate) queued_at: Ms,
    pub(crate) retries_left: u32,
    /// A KubernetesPodOperator task: its worker creates a KPO pod.
    pub(crate) kpo: bool,
    pub(crate) runtime_ms: Ms,
    /// Tries whose task process started (wrote RUNNING).
    pub(crate) started: BTreeSet<u32>,
    /// Stuck-in-queued reschedules of the current try.
    pub(crate) stuck_resets: u32,
    /// Retries consumed (failed tries that made a new one).
    pub(crate) retries_consumed: u32,
    /// When it arrived (simulated time), and when it reached SUCCESS or FAILED: its latency.
    pub(crate) arrived_at: Ms,
    pub(crate) done_at: Option<Ms>,
    /// A scheduler is handing this task instance to its executor (Airflow holds the row lock
    /// for the whole adoption transaction; other schedulers skip it).
    pub(crate) adopting_by: Option<String>,
    /// The current try's task process died without writing its state (its VM was lost, it was
    /// OOM-killed or force-deleted): its heartbeats stopped then.
    pub(crate) process_died_at: Option<Ms>,
    /// What happened to each try, with times (for invariants of your own).
    pub(crate) tries: crate::history::Tries,
}

/// A scheduler job row.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) state: JobState,
    /// Written by the scheduler with its own (possibly skewed) clock.
    pub(crate) heartbeat: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Db {
    pub(crate) tis: Vec<Ti>,
    by_identity: BTreeMap<(String, String, String, i64), usize>,
    /// SCHEDULED task instances by the time they may be queued.
    pub(crate) schedulable: BTreeSet<(Ms, usize)>,
    pub(crate) jobs: BTreeMap<String, Job>,
    pub(crate) outage: bool,
    /// The outage lasts until this time (overlapping outages extend it).
    pub(crate) outage_until: Ms,
}

pub(crate) fn identity(key: &TaskKey) -> (String, String, String, i64) {
    (
        key.dag_id.clone(),
        key.task_id.clone(),
        key.run_id.clone(),
        key.map_index,
    )
}

impl Db {
    pub(crate) fn add(&mut self, ti: Ti) -> usize {
        let idx = self.tis.len();
        self.by_identity.insert(identity(&ti.key), idx);
        self.tis.push(ti);
        idx
    }

    /// The task instance of `key` (any try).
    pub(crate) fn find(&self, key: &TaskKey) -> Option<usize> {
        self.by_identity.get(&identity(key)).copied()
    }

    pub(crate) fn make_schedulable(&mut self, idx: usize, now: Ms) {
        if let Some(ti) = self.tis.get_mut(idx) {
            ti.state = Some(TaskState::Scheduled);
            ti.queued_by = None;
            self.schedulable.insert((now, idx));
        }
    }

    /// State of the try `key`, or `None` if the task instance is on another try.
    pub(crate) fn state_of(&self, key: &TaskKey) -> Option<TaskState> {
        let ti = &self.tis[self.find(key)?];
        (ti.key.try_number == key.try_number)
            .then_some(ti.state)
            .flatten()
    }

    pub(crate) fn heartbeat_records(&self) -> Vec<HeartbeatRecord> {
        self.jobs
            .iter()
            .map(|(id, j)| HeartbeatRecord {
                scheduler_id: id.clone(),
                state: j.state,
                latest_heartbeat: j.heartbeat,
            })
            .collect()
    }

    pub(crate) fn is_terminal(&self, idx: usize) -> bool {
        matches!(
            self.tis[idx].state,
            Some(
                TaskState::Success
                    | TaskState::Failed
                    | TaskState::Skipped
                    | TaskState::UpstreamFailed
                    | TaskState::Removed
            )
        )
    }

    /// The task process of try `key` died without a word at `now`: if it is the task instance's
    /// current try and RUNNING, its heartbeats stop.
    pub(crate) fn process_died(&mut self, key: &TaskKey, now: Ms) {
        if let Some(idx) = self.find(key) {
            let ti = &mut self.tis[idx];
            if ti.key.try_number == key.try_number && ti.state == Some(TaskState::Running) {
                ti.process_died_at = Some(now);
            }
        }
    }

    /// Task instances RUNNING whose task process has sent no heartbeat for `threshold` (Airflow's
    /// zombie task instances, `scheduler_zombie_task_threshold`).
    pub(crate) fn zombie_tasks(&self, now: Ms, threshold: Ms) -> Vec<usize> {
        self.tis
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.state == Some(TaskState::Running)
                    && t.process_died_at
                        .is_some_and(|at| now.saturating_sub(at) >= threshold)
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.tis
            .iter()
            .filter(|t| matches!(t.state, Some(TaskState::Queued | TaskState::Running)))
            .count()
    }
}
