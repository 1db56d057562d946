//! What a run did, in numbers: the summary `podwarden-sim run` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use podwarden_core::db::TaskState;

use crate::world::{ApiServer, Db, Ms, Sched, SchedCounts};

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
    /// Schedulers that exited because a peer marked their job failed.
    pub killed_externally: u64,
    /// Force deletions (grace 0): the zombie sweep's.
    pub force_deletes: u64,
    /// Faults applied.
    pub faults: u64,
    /// API and DB calls per scheduler id.
    pub per_scheduler: BTreeMap<String, SchedCounts>,
}

impl Summary {
    pub(crate) fn finish(&mut self, now: Ms, db: &Db, api: &ApiServer, scheds: &[Sched]) {
        self.simulated_ms = now;
        self.tasks = db.tis.len();
        self.succeeded = db
            .tis
            .iter()
            .filter(|t| t.state == Some(TaskState::Success))
            .count();
        self.failed = db
            .tis
            .iter()
            .filter(|t| t.state == Some(TaskState::Failed))
            .count();
        self.unfinished = self.tasks - self.succeeded - self.failed;
        self.pods_left = api.pods.len();
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
            (
                "zombie force-deletes".into(),
                self.force_deletes.to_string(),
            ),
            ("faults".into(), self.faults.to_string()),
            ("owner relabels".into(), self.owner_patches().to_string()),
        ]);
        for (id, c) in &self.per_scheduler {
            v.push((
                format!("scheduler {id}"),
                format!(
                    "creates {} patches {} (owner {}) deletes {} lists {} db {}",
                    c.creates, c.patches, c.owner_patches, c.deletes, c.lists, c.db_queries
                ),
            ));
        }
        v
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
