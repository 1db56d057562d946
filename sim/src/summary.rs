//! What a run did, in numbers: the summary `podwarden-sim run` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use podwarden_core::db::TaskState;

use crate::time::Ms;
use crate::world::db::Db;
use crate::world::sched_state::{Sched, SchedCounts};

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Simulated milliseconds run.
    pub simulated_ms: Ms,
    /// Task instances in the load.
    pub tasks: usize,
    /// Ended in success.
    pub succeeded: usize,
    /// Ended failed (retries exhausted).
    pub failed: usize,
    /// Not terminal at the end.
    pub unfinished: usize,
    /// Pods created by executors.
    pub pods_created: u64,
    /// Pods left in the cluster at the end.
    pub pods_left: usize,
    /// Transparent requeues, by cause.
    pub requeues_by_cause: BTreeMap<String, u64>,
    /// User retries consumed (failed tries that made a new one).
    pub retries_consumed: u64,
    /// Failures the executors reported that the scheduler acted on.
    pub failures_reported: u64,
    /// Task instances handed over from dead schedulers.
    pub orphans_handed_over: u64,
    /// Of those, adopted with their pod.
    pub orphans_adopted: u64,
    /// Of those, reset to a new try.
    pub orphans_reset: u64,
    /// Tries revoked because they stayed QUEUED too long.
    pub stuck_revoked: u64,
    /// Schedulers the liveness probe restarted.
    pub probe_restarts: u64,
    /// Stalls that ended by themselves (the scheduler resumed with its old state).
    pub stalls_resumed: u64,
    /// Schedulers that exited because a peer marked their job failed.
    pub killed_externally: u64,
    /// Force deletions (grace 0): the zombie sweep's.
    pub force_deletes: u64,
    /// Faults applied.
    pub faults: u64,
    /// Nodes lost.
    pub node_losses: u64,
    /// Task instances the scheduler failed because their task process stopped heartbeating
    /// (Airflow's zombie task instances).
    pub zombie_tasks_failed: u64,
    /// API and DB calls per scheduler id.
    pub per_scheduler: BTreeMap<String, SchedCounts>,
    /// Task latency (arrival to SUCCESS or FAILED) of the tasks that ended.
    pub task_latency: LatencyHistogram,
    /// The faults and decisions this run reached, by name ([`crate::coverage`]).
    pub coverage: crate::coverage::RunCoverage,
    /// Owner relabels applied, split by whether the old owner was alive.
    pub owner_changes: OwnerChanges,
    /// Every job of every scheduler (job id → scheduler index, start, restart, stop).
    pub schedulers: crate::roster::Roster,
    /// Failed tries (a user retry consumed, or the task failed for good), with their cause, in
    /// order; the text shows the first [`crate::failures::FAILED_TRIES_SHOWN`].
    pub failed_tries: Vec<crate::failures::FailedTry>,
    /// User retries consumed, by cause (the cause's headline).
    pub retries_by_cause: BTreeMap<String, u64>,
    /// What each fault did: pods it hit, tries it cost.
    pub fault_effects: Vec<crate::failures::FaultEffect>,
}

/// Owner relabels applied, split by whether the old owner was alive (as `no_thrash` judges
/// it): adoptions from dead (or stalled) owners are the policy doing its job; relabels of a live
/// owner's pods are thrash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwnerChanges {
    /// Pods taken from a dead or stalled owner (adoptions).
    pub from_dead_owner: u64,
    /// Pods taken from a live owner (thrash).
    pub from_live_owner: u64,
    /// Each change, in order (for the timeline; not in the JSON report).
    #[serde(skip)]
    pub log: Vec<OwnerChange>,
}

/// One owner relabel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChange {
    /// When, simulated milliseconds.
    pub at_ms: Ms,
    /// The pod relabelled.
    pub pod: String,
    /// Whether its old owner was alive.
    pub owner_alive: bool,
}

impl OwnerChanges {
    pub(crate) fn record(&mut self, change: OwnerChange) {
        if change.owner_alive {
            self.from_live_owner += 1;
        } else {
            self.from_dead_owner += 1;
        }
        self.log.push(change);
    }
}

/// Latencies in buckets 2.5 % wide (a log scale), so that sweeps and shards merge percentiles
/// exactly without keeping every sample; a percentile is read as its bucket's upper bound
/// (at most 2.5 % above the true value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Samples per bucket index (sparse).
    pub buckets: BTreeMap<u32, u64>,
    /// Samples in all.
    pub count: u64,
}

/// Width of a bucket: each is 2.5 % above the previous.
const BUCKET_GROWTH: f64 = 1.025;

impl LatencyHistogram {
    /// Adds one latency.
    pub fn record(&mut self, ms: u64) {
        let index = ((ms as f64 + 1.0).ln() / BUCKET_GROWTH.ln()).floor() as u32;
        *self.buckets.entry(index).or_default() += 1;
        self.count += 1;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_default() += n;
        }
        self.count += other.count;
    }

    /// The `p`-th percentile in milliseconds (the upper bound of its bucket); 0 when empty.
    #[must_use]
    pub fn percentile(&self, p: u64) -> u64 {
        let rank = (self.count * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return (BUCKET_GROWTH.powi(i32::try_from(*b + 1).unwrap_or(i32::MAX)) - 1.0).round()
                    as u64;
            }
        }
        0
    }
}

impl Summary {
    pub(crate) fn finish(
        &mut self,
        now: Ms,
        db: &Db,
        pods_left: usize,
        scheds: &[Sched],
        checker: &crate::invariants::Checker,
    ) {
        self.owner_changes = checker.owner_changes.clone();
        self.schedulers = checker.roster.clone();
        self.simulated_ms = now;
        self.tasks = db.tis.len();
        self.succeeded = db
            .tis
            .iter()
            .filter(|t| t.state() == Some(TaskState::Success))
            .count();
        self.failed = db
            .tis
            .iter()
            .filter(|t| t.state() == Some(TaskState::Failed))
            .count();
        self.unfinished = self.tasks - self.succeeded - self.failed;
        for ti in &db.tis {
            if let Some(done) = ti.done_at {
                self.task_latency.record(done.saturating_sub(ti.arrived_at));
            }
        }
        self.pods_left = pods_left;
        for s in scheds {
            for (id, c) in &s.counts {
                self.per_scheduler.insert(id.clone(), *c);
            }
        }
    }

    /// Owner relabels across all schedulers.
    #[must_use]
    pub fn owner_patches(&self) -> u64 {
        self.per_scheduler.values().map(|c| c.owner_patches).sum()
    }

    /// Requeues across all causes.
    #[must_use]
    pub fn requeues(&self) -> u64 {
        self.requeues_by_cause.values().sum()
    }

    /// The summary as aligned text lines (`name  value`).
    #[must_use]
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut v = vec![
            (
                "simulated".to_string(),
                format!("{:.0} s", self.simulated_ms as f64 / 1000.0),
            ),
            (
                "tasks".into(),
                format!(
                    "{} ({} succeeded, {} failed, {} unfinished)",
                    self.tasks, self.succeeded, self.failed, self.unfinished
                ),
            ),
            (
                "task latency".into(),
                format!(
                    "p50 {:.1} s, p99 {:.1} s",
                    self.task_latency.percentile(50) as f64 / 1000.0,
                    self.task_latency.percentile(99) as f64 / 1000.0
                ),
            ),
            ("pods created".into(), self.pods_created.to_string()),
            ("pods left".into(), self.pods_left.to_string()),
            ("requeues".into(), self.requeues().to_string()),
        ];
        for (cause, n) in &self.requeues_by_cause {
            v.push((format!("  {cause}"), n.to_string()));
        }
        v.extend([
            (
                "user retries consumed".to_string(),
                self.retries_consumed.to_string(),
            ),
            (
                "failures reported".into(),
                self.failures_reported.to_string(),
            ),
            (
                "orphans handed over".into(),
                format!(
                    "{} ({} adopted, {} reset)",
                    self.orphans_handed_over, self.orphans_adopted, self.orphans_reset
                ),
            ),
            (
                "stuck-in-queued revokes".into(),
                self.stuck_revoked.to_string(),
            ),
            ("probe restarts".into(), self.probe_restarts.to_string()),
            ("stalls resumed".into(), self.stalls_resumed.to_string()),
            (
                "zombie force-deletes".into(),
                self.force_deletes.to_string(),
            ),
            ("faults".into(), self.faults.to_string()),
            ("nodes lost".into(), self.node_losses.to_string()),
            (
                "zombie task instances".into(),
                self.zombie_tasks_failed.to_string(),
            ),
            ("owner relabels".into(), self.owner_patches().to_string()),
            (
                "  from dead owners".into(),
                format!("{} (adoptions)", self.owner_changes.from_dead_owner),
            ),
            (
                "  from live owners".into(),
                format!("{} (thrash)", self.owner_changes.from_live_owner),
            ),
        ]);
        let mut restarts: BTreeMap<u32, u32> = BTreeMap::new();
        for job in self.schedulers.jobs() {
            let c = self
                .per_scheduler
                .get(&job.job)
                .copied()
                .unwrap_or_default();
            let (key, when) = if job.restart {
                let n = restarts.entry(job.scheduler).or_default();
                *n += 1;
                (
                    format!("scheduler {} restart {n}", job.scheduler),
                    format!(
                        ", restarted at {} s",
                        crate::time::secs_text(job.started_ms)
                    ),
                )
            } else {
                (format!("scheduler {}", job.scheduler), String::new())
            };
            v.push((
                key,
                format!(
                    "job {}{when}: creates {} patches {} (owner {}) deletes {} lists {} db {}",
                    job.job,
                    c.creates,
                    c.patches,
                    c.owner_patches,
                    c.deletes,
                    c.lists,
                    c.db_queries
                ),
            ));
        }
        crate::failures::lines(
            &self.failed_tries,
            &self.retries_by_cause,
            &self.fault_effects,
            &mut v,
        );
        v
    }

    /// The parts failures and faults are summed into, for the world's fault log.
    pub(crate) fn failure_tally(&mut self) -> crate::failures::Tally<'_> {
        crate::failures::Tally {
            failed_tries: &mut self.failed_tries,
            retries_by_cause: &mut self.retries_by_cause,
            fault_effects: &mut self.fault_effects,
        }
    }

    /// The summary as text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.lines() {
            let _ = writeln!(out, "{k:<24} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_are_within_a_bucket_and_merge_exactly() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        for ms in 1..=1000u64 {
            if ms % 2 == 1 {
                a.record(ms * 100);
            } else {
                b.record(ms * 100);
            }
        }
        let mut all = a.clone();
        all.merge(&b);
        assert_eq!(all.count, 1000);
        for (p, exact) in [(50u64, 50_000f64), (99, 99_000.0)] {
            let got = all.percentile(p) as f64;
            assert!(
                got >= exact && got <= exact * 1.026,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(LatencyHistogram::default().percentile(50), 0);
    }
}
