//! The verdict of a served run: every invariant judged from the cluster's and the DB's history,
//! and the ones a server cannot judge (they need to see inside the schedulers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use podwarden_core::db::TaskState;

use crate::time::Ms;
use crate::world::World;

/// The invariants a server judges, each with what it judges from.
pub const JUDGED: [(&str, &str); 6] = [
    (
        "no_thrash",
        "a pod's airflow-worker label changed away from a scheduler whose job was running with a fresh heartbeat",
    ),
    (
        "requeue_bounded",
        "more pods created for one try than pod_launch_failure_retries allows",
    ),
    (
        "no_double_execution",
        "two pods of one try could start its task at once",
    ),
    (
        "no_retry_for_prestart_failure",
        "a try charged to the user (up_for_retry or failed) whose task never started",
    ),
    ("no_lost_task", "a task instance not finished at the end"),
    (
        "no_leaked_pod",
        "a pod left at the end that the scenario's policy removes",
    ),
];

/// The invariants judged only at the end (after the scenario's end, or once idle).
const END_CHECKS: [&str; 2] = ["no_lost_task", "no_leaked_pod"];

/// The invariants a server cannot judge, and why.
pub const NOT_JUDGED: [(&str, &str); 3] = [
    (
        "exactly_once_accounting",
        "reports stay inside the schedulers",
    ),
    (
        "bounded_core_state",
        "the executors' tables are inside the schedulers",
    ),
    ("stall_detected", "each scheduler serves its own health"),
];

/// What happened in a served run, beside the findings.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Worker pods created by the schedulers.
    pub creates: u64,
    /// Deletes asked by the schedulers.
    pub deletes: u64,
    /// Label patches that changed a pod's owner.
    pub owner_changes: u64,
    /// Tries charged to the user (up_for_retry or failed).
    pub retries_charged: u64,
    /// Requests refused with an error the fault plan injected.
    pub injected_errors: u64,
    /// Watches ended by the fault plan.
    pub watches_expired: u64,
    /// Every scheduler job seen in the DB.
    pub schedulers: BTreeSet<String>,
    /// Reads of the DB that failed.
    pub db_errors: Vec<String>,
    /// How long it served.
    pub served_for: Duration,
    /// Whether the end checks (`no_lost_task`, `no_leaked_pod`) were judged: not when the run
    /// was stopped before the scenario's end with tasks unfinished.
    pub end_judged: bool,
    /// When (simulated) every task was last seen finished.
    pub(crate) finished_at: Option<Ms>,
}

/// A served run's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The first finding of each invariant that fired.
    pub findings: BTreeMap<&'static str, String>,
    /// Task instances by state at the end (`None`: never arrived).
    pub tasks: BTreeMap<Option<TaskState>, usize>,
    /// Pods still in the store.
    pub pods_left: usize,
    /// Simulated time at the end, ms.
    pub simulated_ms: u64,
    /// What happened.
    pub tally: Tally,
}

impl Verdict {
    pub(crate) fn of(world: &World, tally: Tally) -> Self {
        Self {
            findings: world
                .served
                .as_ref()
                .map(|s| s.findings.clone())
                .unwrap_or_default(),
            tasks: world.task_states(),
            pods_left: world.pod_count(),
            simulated_ms: world.now().0,
            tally,
        }
    }

    /// Whether every judged invariant held.
    #[must_use]
    pub fn held(&self) -> bool {
        self.findings.is_empty()
    }

    /// The verdict as the command prints it.
    #[must_use]
    pub fn render(&self) -> String {
        let t = &self.tally;
        let mut out = String::new();
        let tasks: Vec<String> = self
            .tasks
            .iter()
            .map(|(s, n)| {
                let name = s.map_or_else(|| "not arrived".to_string(), super::metadata::state_name);
                format!("{n} {name}")
            })
            .collect();
        let _ = writeln!(
            out,
            "served {:.1} s ({:.1} s simulated); schedulers seen: {}",
            t.served_for.as_secs_f64(),
            self.simulated_ms as f64 / 1000.0,
            t.schedulers.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        let _ = writeln!(out, "task instances: {}", tasks.join(", "));
        let _ = writeln!(
            out,
            "pods: {} created, {} deletes asked, {} left; {} owner changes; {} tries charged to the user; faults: {} watches expired, {} requests refused",
            t.creates, t.deletes, self.pods_left, t.owner_changes, t.retries_charged, t.watches_expired, t.injected_errors
        );
        for e in t.db_errors.iter().take(3) {
            let _ = writeln!(out, "metadata DB read failed: {e}");
        }
        let _ = writeln!(out, "verdict:");
        for (name, _) in JUDGED {
            let cut_short = !t.end_judged && END_CHECKS.contains(&name);
            match self.findings.get(name) {
                Some(detail) => {
                    let _ = writeln!(out, "  VIOLATED  {name}: {detail}");
                }
                None if cut_short => {
                    let _ = writeln!(
                        out,
                        "  -         {name}: not judged (stopped before the scenario's end with tasks unfinished)"
                    );
                }
                None => {
                    let _ = writeln!(out, "  held      {name}");
                }
            }
        }
        for (name, detail) in &self.findings {
            if !JUDGED.iter().any(|(n, _)| n == name) {
                let _ = writeln!(out, "  VIOLATED  {name}: {detail}");
            }
        }
        for (name, why) in NOT_JUDGED {
            let _ = writeln!(out, "  -         {name}: not judged ({why})");
        }
        out
    }
}
