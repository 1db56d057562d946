//! Who ran as each scheduler: the one numbering a user reads. A scheduler is its index in the
//! world (`0..schedulers`, what trace lines call `"sched"`); each start of its process is a job
//! with a new id (what pods' `airflow-worker` label and the executor call the scheduler id). The
//! summary, violation messages and plots all name a scheduler by its index, with the job it ran
//! as and when that job was a restart: `scheduler 2 (job 7, restarted at 900 s)`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::Ms;

/// One start of a scheduler's process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// The scheduler's index (`"sched"` in trace lines).
    pub scheduler: u32,
    /// The job id it ran as (its scheduler id, its pods' `airflow-worker` label).
    pub job: String,
    /// When it started, simulated milliseconds.
    pub started_ms: Ms,
    /// Whether it replaced an earlier job of the same scheduler.
    pub restart: bool,
    /// When it stopped, if it did (crash, killed externally, restarted by the probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_ms: Option<Ms>,
}

/// Every job of every scheduler, in start order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Roster {
    jobs: BTreeMap<String, Job>,
}

impl Roster {
    /// Scheduler `index` started as `job` at `now`.
    pub(crate) fn started(&mut self, index: u32, job: &str, now: Ms) {
        let restart = self.jobs.values().any(|j| j.scheduler == index);
        self.jobs.insert(
            job.to_string(),
            Job {
                scheduler: index,
                job: job.to_string(),
                started_ms: now,
                restart,
                stopped_ms: None,
            },
        );
    }

    /// `job` stopped at `now`.
    pub(crate) fn stopped(&mut self, job: &str, now: Ms) {
        if let Some(j) = self.jobs.get_mut(job) {
            j.stopped_ms.get_or_insert(now);
        }
    }

    /// The job `job`, if this run started it.
    #[must_use]
    pub fn job(&self, job: &str) -> Option<&Job> {
        self.jobs.get(job)
    }

    /// Every job, ordered by scheduler index, then start time.
    #[must_use]
    pub fn jobs(&self) -> Vec<&Job> {
        let mut all: Vec<&Job> = self.jobs.values().collect();
        all.sort_by_key(|j| (j.scheduler, j.started_ms, j.job.parse::<u64>().unwrap_or(0)));
        all
    }

    /// How a user reads job `job`: `scheduler 2 (job 5)`, or `scheduler 2 (job 7, restarted at
    /// 900 s)` for a restart; a job this run did not start is `job ID`.
    #[must_use]
    pub fn name(&self, job: &str) -> String {
        match self.jobs.get(job) {
            Some(j) => j.to_string(),
            None => format!("job {job}"),
        }
    }

    /// How a user reads the job scheduler `index` runs (or last ran).
    #[must_use]
    pub fn name_of_index(&self, index: u32) -> String {
        self.jobs()
            .into_iter()
            .rev()
            .find(|j| j.scheduler == index)
            .map_or_else(|| format!("scheduler {index}"), ToString::to_string)
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.restart {
            write!(
                f,
                "scheduler {} (job {}, restarted at {} s)",
                self.scheduler,
                self.job,
                crate::time::secs_text(self.started_ms)
            )
        } else {
            write!(f, "scheduler {} (job {})", self.scheduler, self.job)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduler_is_its_index_with_its_job_and_restarts_are_marked() {
        let mut r = Roster::default();
        r.started(0, "1", 0);
        r.started(1, "2", 0);
        r.stopped("1", 100_000);
        r.started(0, "3", 900_000);
        assert_eq!(r.name("2"), "scheduler 1 (job 2)");
        assert_eq!(r.name("3"), "scheduler 0 (job 3, restarted at 900 s)");
        assert_eq!(r.name("9"), "job 9");
        assert_eq!(
            r.name_of_index(0),
            "scheduler 0 (job 3, restarted at 900 s)"
        );
        assert_eq!(r.name_of_index(5), "scheduler 5");
        let order: Vec<&str> = r.jobs().iter().map(|j| j.job.as_str()).collect();
        assert_eq!(order, ["1", "3", "2"]);
        assert_eq!(r.job("1").and_then(|j| j.stopped_ms), Some(100_000));
    }
}
