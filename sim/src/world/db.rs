//! The metadata DB: task instances and scheduler jobs, as Airflow's scheduler and workers see
//! them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use rustc_hash::{FxBuildHasher, FxHasher};

use podwarden_core::db::TaskState;
use podwarden_core::liveness::{HeartbeatRecord, JobState};
use podwarden_core::{TaskKey, Timestamp};

use crate::time::Ms;

/// One task instance; `key.try_number` is its current try.
#[derive(Debug, Clone)]
pub(crate) struct Ti {
    pub(crate) key: TaskKey,
    /// `None` until it arrives. Written only through [`Db::set_state`], which keeps the index
    /// of task instances in flight.
    state: Option<TaskState>,
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

impl Ti {
    /// A task instance that has not arrived yet (no state).
    pub(crate) fn new(
        key: TaskKey,
        retries_left: u32,
        kpo: bool,
        runtime_ms: Ms,
        arrived_at: Ms,
    ) -> Self {
        Self {
            key,
            state: None,
            queued_by: None,
            queued_at: 0,
            retries_left,
            kpo,
            runtime_ms,
            started: BTreeSet::new(),
            stuck_resets: 0,
            retries_consumed: 0,
            adopting_by: None,
            process_died_at: None,
            arrived_at,
            done_at: None,
            tries: crate::history::Tries::default(),
        }
    }

    /// Its state now; `None` until it arrives.
    pub(crate) fn state(&self) -> Option<TaskState> {
        self.state
    }
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
    /// Task instances by the hash of their identity (dag, task, run, map index: every try),
    /// looked up from a borrowed key without copying its strings. Never iterated, so its order
    /// reaches nothing.
    by_identity: HashMap<u64, Vec<usize>, FxBuildHasher>,
    /// SCHEDULED task instances by the time they may be queued.
    pub(crate) schedulable: BTreeSet<(Ms, usize)>,
    /// The task instances QUEUED or RUNNING, by index: what the periodic checks (stuck in
    /// queued, zombies, orphans, the core-state bound) scan, so their cost follows the work in
    /// flight and not every task instance the world ever had.
    in_flight: BTreeSet<usize>,
    pub(crate) jobs: BTreeMap<String, Job>,
    pub(crate) outage: bool,
    /// The outage lasts until this time (overlapping outages extend it).
    pub(crate) outage_until: Ms,
}

/// The hash of a task instance's identity: its key without the try number.
fn identity_hash(key: &TaskKey) -> u64 {
    let mut h = FxHasher::default();
    key.dag_id.hash(&mut h);
    key.task_id.hash(&mut h);
    key.run_id.hash(&mut h);
    key.map_index.hash(&mut h);
    h.finish()
}

/// Whether two keys name the same task instance (any try).
fn same_identity(a: &TaskKey, b: &TaskKey) -> bool {
    a.map_index == b.map_index
        && a.task_id == b.task_id
        && a.dag_id == b.dag_id
        && a.run_id == b.run_id
}

impl Db {
    /// Adds a task instance; one of the same identity added before is no longer found.
    pub(crate) fn add(&mut self, ti: Ti) -> usize {
        let idx = self.tis.len();
        let bucket = self.by_identity.entry(identity_hash(&ti.key)).or_default();
        bucket.retain(|&i| !same_identity(&self.tis[i].key, &ti.key));
        bucket.push(idx);
        self.tis.push(ti);
        idx
    }

    /// The task instance of `key` (any try).
    pub(crate) fn find(&self, key: &TaskKey) -> Option<usize> {
        self.by_identity
            .get(&identity_hash(key))?
            .iter()
            .copied()
            .find(|&i| same_identity(&self.tis[i].key, key))
    }

    pub(crate) fn make_schedulable(&mut self, idx: usize, now: Ms) {
        if idx < self.tis.len() {
            self.set_state(idx, Some(TaskState::Scheduled));
            self.tis[idx].queued_by = None;
            self.schedulable.insert((now, idx));
        }
    }

    /// Sets task instance `idx`'s state, keeping the in-flight index.
    pub(crate) fn set_state(&mut self, idx: usize, state: Option<TaskState>) {
        let Some(ti) = self.tis.get_mut(idx) else {
            return;
        };
        ti.state = state;
        if matches!(state, Some(TaskState::Queued | TaskState::Running)) {
            self.in_flight.insert(idx);
        } else {
            self.in_flight.remove(&idx);
        }
    }

    /// The task instances QUEUED or RUNNING, in index order (the order a scan of every task
    /// instance would meet them in).
    pub(crate) fn in_flight_tis(&self) -> impl Iterator<Item = (usize, &Ti)> + '_ {
        self.in_flight.iter().map(|&i| (i, &self.tis[i]))
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
        self.in_flight_tis()
            .filter(|(_, t)| {
                t.state == Some(TaskState::Running)
                    && t.process_died_at
                        .is_some_and(|at| now.saturating_sub(at) >= threshold)
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
