//! Why tries failed, and what each fault did: the failed tries with their cause, user retries by
//! cause, and per fault the pods it hit and the tries it cost.
//!
//! A failed try is charged to a fault when the fault hit one of its pods (a drain, a SIGTERM, a
//! preemption, a lost node), else to the latest fault whose window holds the failure: from its
//! start to its end (a partition's or an outage's duration, a crash's restart delay) plus
//! [`FAULT_GRACE_MS`], when a scheduler decided the failure (for a fault of one scheduler, that
//! scheduler) and the try's task never started. A failure no fault explains (a task that ran and
//! failed by itself: exit code 1, OOMKilled) is charged to none.

use std::collections::BTreeMap;

use serde::Serialize;

use podwarden_core::TaskKey;

use crate::scenario::Fault;
use crate::time::{secs, secs_text, Ms};

/// Failed tries listed in the text summary (JSON has all).
pub const FAILED_TRIES_SHOWN: usize = 10;
/// Faults listed in the text summary (JSON has all).
pub const FAULTS_SHOWN: usize = 10;
/// How long after a fault's end a failure is still charged to it: an executor's decision on a
/// pod, its DB question's retries (up to 60 s) and the scheduler's next loop take that long.
pub const FAULT_GRACE_MS: Ms = 120_000;

/// One failed try: a user retry consumed, or the task failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTry {
    /// When, simulated milliseconds.
    pub at_ms: Ms,
    /// The task (`dag.task`).
    pub task: String,
    /// Its try number.
    pub try_number: u32,
    /// Why, in full (the executor's reason, or the scheduler's).
    pub cause: String,
    /// The cause's headline, before any `;` or `(` (what `retries_by_cause` counts by).
    pub cause_kind: String,
    /// Whether a user retry followed (else the task failed for good).
    pub retried: bool,
    /// Who decided it, when a scheduler did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The fault it is charged to (index into `fault_effects`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<usize>,
}

/// What one fault did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultEffect {
    /// When it started, simulated milliseconds.
    pub at_ms: Ms,
    /// What it was: its kind and target (`partition of scheduler 0 for 120 s`).
    pub fault: String,
    /// The scheduler it hit, if it hit one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<u32>,
    /// Worker pods it deleted or lost.
    pub pods_hit: u64,
    /// Failed tries charged to it.
    pub tries_cost: u64,
    /// When its window closes (end plus [`FAULT_GRACE_MS`]); `None` for a fault that acts
    /// only through the pods it hits.
    #[serde(skip)]
    pub(crate) window_end: Option<Ms>,
}

/// The cause's headline: the text before its first `;` or `(`.
#[must_use]
pub fn cause_kind(cause: &str) -> String {
    let end = cause.find([';', '(']).unwrap_or(cause.len());
    cause[..end].trim().to_string()
}

/// How a user reads a fault and when it starts: `200 s: drain_node of node 1` (list them with
/// `; ` between: a fault's own text may hold a comma).
pub(crate) fn fault_text(fault: &Fault) -> String {
    format!("{} s: {}", secs_text(secs(fault.at_s())), describe(fault).0)
}

/// How a user reads a fault, the scheduler it hits, and how long it lasts (`None` for a fault
/// that acts only through the pods it hits).
fn describe(fault: &Fault) -> (String, Option<u32>, Option<Ms>) {
    let kind = fault.kind_name();
    match *fault {
        Fault::DrainNode { node, .. } => (format!("{kind} of node {node}"), None, None),
        Fault::NodeLoss {
            node, duration_s, ..
        } => (
            format!(
                "{kind} of node {node} for {} s",
                secs_text(secs(duration_s))
            ),
            None,
            Some(secs(duration_s)),
        ),
        Fault::SigtermStorm { pods, .. } | Fault::Preempt { pods, .. } => {
            (format!("{kind} of {pods} pods"), None, None)
        }
        Fault::CrashScheduler {
            scheduler,
            restart_after_s,
            ..
        } => (
            format!(
                "{kind} of scheduler {scheduler}, restart after {} s",
                secs_text(secs(restart_after_s))
            ),
            Some(scheduler),
            Some(secs(restart_after_s)),
        ),
        Fault::StallScheduler {
            scheduler,
            duration_s,
            ..
        } => match duration_s {
            Some(d) => (
                format!(
                    "{kind} of scheduler {scheduler} for {} s",
                    secs_text(secs(d))
                ),
                Some(scheduler),
                Some(secs(d)),
            ),
            None => (
                format!("{kind} of scheduler {scheduler}"),
                Some(scheduler),
                Some(0),
            ),
        },
        Fault::Partition {
            scheduler,
            duration_s,
            ..
        } => (
            format!(
                "{kind} of scheduler {scheduler} for {} s",
                secs_text(secs(duration_s))
            ),
            Some(scheduler),
            Some(secs(duration_s)),
        ),
        Fault::WatchExpiry { scheduler, .. } => (
            format!("{kind} of scheduler {scheduler}"),
            Some(scheduler),
            Some(0),
        ),
        Fault::ClockSkew {
            scheduler,
            offset_ms,
            ..
        }
        | Fault::ClockStep {
            scheduler,
            offset_ms,
            ..
        } => (
            format!("{kind} of scheduler {scheduler} by {offset_ms} ms"),
            Some(scheduler),
            Some(0),
        ),
        Fault::DbOutage { duration_s, .. } => (
            format!("{kind} for {} s", secs_text(secs(duration_s))),
            None,
            Some(secs(duration_s)),
        ),
        Fault::ApiErrors {
            duration_s, code, ..
        } => (
            format!("{kind} {code} for {} s", secs_text(secs(duration_s))),
            None,
            Some(secs(duration_s)),
        ),
    }
}

/// A failed try, as the world knows it when it happens.
pub(crate) struct Failure {
    /// The try.
    pub(crate) key: TaskKey,
    /// Why, in full.
    pub(crate) cause: String,
    /// Whether a user retry followed (else the task failed for good).
    pub(crate) retried: bool,
    /// Whether the try's task had started.
    pub(crate) started: bool,
    /// The scheduler index that decided it and how a user reads it, if one did.
    pub(crate) decided_by: Option<(u32, String)>,
    /// When.
    pub(crate) now: Ms,
}

/// The parts of a run's summary that failures and faults are summed into (borrowed from
/// [`crate::summary::Summary`], so this file need not know the summary).
#[derive(Debug)]
pub(crate) struct Tally<'a> {
    /// The summary's `failed_tries`.
    pub(crate) failed_tries: &'a mut Vec<FailedTry>,
    /// The summary's `retries_by_cause`.
    pub(crate) retries_by_cause: &'a mut BTreeMap<String, u64>,
    /// The summary's `fault_effects`.
    pub(crate) fault_effects: &'a mut Vec<FaultEffect>,
}

/// The world's record of faults and failed tries, summed into the summary's [`Tally`] as they
/// happen.
#[derive(Debug, Default)]
pub(crate) struct FaultLog {
    /// The fault that hit a pod of each try.
    hit_tries: BTreeMap<TaskKey, usize>,
}

impl FaultLog {
    /// `fault` starts at `now`; returns its index.
    pub(crate) fn fault(&mut self, summary: Tally<'_>, fault: &Fault, now: Ms) -> usize {
        let (text, scheduler, lasts) = describe(fault);
        summary.fault_effects.push(FaultEffect {
            at_ms: now,
            fault: text,
            scheduler,
            pods_hit: 0,
            tries_cost: 0,
            window_end: lasts.map(|l| now.saturating_add(l).saturating_add(FAULT_GRACE_MS)),
        });
        summary.fault_effects.len() - 1
    }

    /// Fault `index` deleted or lost a worker pod of try `key`.
    pub(crate) fn hit(&mut self, summary: Tally<'_>, index: usize, key: &TaskKey) {
        if let Some(f) = summary.fault_effects.get_mut(index) {
            f.pods_hit += 1;
        }
        self.hit_tries.entry(key.clone()).or_insert(index);
    }

    /// A try failed ([`Failure`]): listed with its cause, counted by cause if a retry followed,
    /// and charged to the fault that explains it, if one does.
    pub(crate) fn failed(&mut self, summary: Tally<'_>, failure: Failure) {
        let Failure {
            key,
            cause,
            retried,
            started,
            decided_by,
            now,
        } = failure;
        let key = &key;
        let fault = self.hit_tries.remove(key).or_else(|| {
            summary.fault_effects.iter().rposition(|f| {
                let by = decided_by.as_ref().map(|(d, _)| *d);
                !started
                    && by.is_some()
                    && f.at_ms <= now
                    && f.window_end.is_some_and(|end| now <= end)
                    && f.scheduler.is_none_or(|s| by == Some(s))
            })
        });
        if let Some(f) = fault.and_then(|i| summary.fault_effects.get_mut(i)) {
            f.tries_cost += 1;
        }
        let kind = cause_kind(&cause);
        if retried {
            *summary.retries_by_cause.entry(kind.clone()).or_default() += 1;
        }
        summary.failed_tries.push(FailedTry {
            at_ms: now,
            task: format!("{}.{}", key.dag_id, key.task_id),
            try_number: key.try_number,
            cause,
            cause_kind: kind,
            retried,
            decided_by: decided_by.map(|(_, name)| name),
            fault,
        });
    }
}

/// The summary's lines about failed tries, retries by cause and faults' effects.
pub(crate) fn lines(
    failed_tries: &[FailedTry],
    retries_by_cause: &BTreeMap<String, u64>,
    fault_effects: &[FaultEffect],
    v: &mut Vec<(String, String)>,
) {
    let retried = failed_tries.iter().filter(|f| f.retried).count();
    v.push((
        "failed tries".into(),
        format!(
            "{} ({retried} cost a user retry, {} failed the task)",
            failed_tries.len(),
            failed_tries.len() - retried
        ),
    ));
    for (n, f) in failed_tries.iter().take(FAILED_TRIES_SHOWN).enumerate() {
        let by = f
            .decided_by
            .as_ref()
            .map_or_else(String::new, |d| format!("; by {d}"));
        let fault = f
            .fault
            .and_then(|i| fault_effects.get(i))
            .map_or_else(String::new, |e| format!("; fault: {}", e.fault));
        v.push((
            format!("  failed try {}", n + 1),
            format!(
                "{} s {} try {}: {}{by}{fault}",
                secs_text(f.at_ms),
                f.task,
                f.try_number,
                f.cause
            ),
        ));
    }
    if failed_tries.len() > FAILED_TRIES_SHOWN {
        v.push((
            "  more failed tries".into(),
            format!(
                "{} more (all in --format json)",
                failed_tries.len() - FAILED_TRIES_SHOWN
            ),
        ));
    }
    v.push((
        "user retries by cause".into(),
        retries_by_cause.values().sum::<u64>().to_string(),
    ));
    // The cause goes in the value: a label as long as a cause would push every row's value
    // (and `compare`'s second column) far to the right.
    for (i, (cause, n)) in retries_by_cause.iter().enumerate() {
        v.push((format!("  cause {}", i + 1), format!("{n} {cause}")));
    }
    for (n, f) in fault_effects.iter().take(FAULTS_SHOWN).enumerate() {
        v.push((
            format!("fault {}", n + 1),
            format!(
                "{} s {}: {} pods hit, {} tries cost",
                secs_text(f.at_ms),
                f.fault,
                f.pods_hit,
                f.tries_cost
            ),
        ));
    }
    if fault_effects.len() > FAULTS_SHOWN {
        v.push((
            "  more faults".into(),
            format!(
                "{} more faults (all in --format json)",
                fault_effects.len() - FAULTS_SHOWN
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three parts of a summary that failures are summed into.
    #[derive(Default)]
    struct Sums {
        failed_tries: Vec<FailedTry>,
        retries_by_cause: BTreeMap<String, u64>,
        fault_effects: Vec<FaultEffect>,
    }

    impl Sums {
        fn tally(&mut self) -> Tally<'_> {
            Tally {
                failed_tries: &mut self.failed_tries,
                retries_by_cause: &mut self.retries_by_cause,
                fault_effects: &mut self.fault_effects,
            }
        }
    }

    #[test]
    fn a_failure_is_charged_to_the_fault_that_hit_its_pod_else_to_the_one_whose_window_holds_it() {
        let mut s = Sums::default();
        let mut log = FaultLog::default();
        let key = |t: &str| TaskKey::new("d", t, "r", 1);
        let storm = log.fault(
            s.tally(),
            &Fault::SigtermStorm {
                at_s: 10.0,
                pods: 1,
            },
            10_000,
        );
        log.hit(s.tally(), storm, &key("a"));
        let partition = Fault::Partition {
            at_s: 20.0,
            scheduler: 1,
            duration_s: 120.0,
        };
        log.fault(s.tally(), &partition, 20_000);
        let by = |i: u32| Some((i, format!("scheduler {i} (job {})", i + 1)));
        // (try, cause, retried, started, decided by, when)
        for (t, cause, retried, started, decided, at) in [
            ("a", "Pod failed (exit 143)", true, true, None, 300_000),
            (
                "b",
                "pod creation failed: timeout",
                false,
                false,
                by(1),
                100_000,
            ),
            (
                "c",
                "pod creation failed: timeout",
                true,
                false,
                by(0),
                100_000,
            ),
            (
                "d",
                "pod creation failed: timeout",
                true,
                false,
                by(1),
                900_000,
            ),
            ("e", "task failed: exit code 1", true, true, by(1), 100_000),
        ] {
            let failure = Failure {
                key: key(t),
                cause: cause.into(),
                retried,
                started,
                decided_by: decided,
                now: at,
            };
            log.failed(s.tally(), failure);
        }
        let cost: Vec<(u64, u64)> = s
            .fault_effects
            .iter()
            .map(|f| (f.pods_hit, f.tries_cost))
            .collect();
        assert_eq!(
            cost,
            [(1, 1), (0, 1)],
            "the hit pod's try, and the partitioned scheduler's failure"
        );
        assert_eq!(
            s.failed_tries[2].fault, None,
            "another scheduler's failure is not the partition's"
        );
        assert_eq!(s.failed_tries[3].fault, None, "after the window");
        assert_eq!(
            s.failed_tries[4].fault, None,
            "a task that ran and failed by itself"
        );
        assert_eq!(
            s.retries_by_cause,
            [
                ("Pod failed".to_string(), 1),
                ("pod creation failed: timeout".to_string(), 2),
                ("task failed: exit code 1".to_string(), 1)
            ]
            .into()
        );
        let mut v = Vec::new();
        lines(
            &s.failed_tries,
            &s.retries_by_cause,
            &s.fault_effects,
            &mut v,
        );
        let text: Vec<String> = v.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert!(
            text.contains(&"failed tries 5 (4 cost a user retry, 1 failed the task)".to_string()),
            "{text:?}"
        );
        assert!(
            text.contains(&"  failed try 2 100 s d.b try 1: pod creation failed: timeout; by scheduler 1 (job 2); fault: partition of scheduler 1 for 120 s".to_string()),
            "{text:?}"
        );
        assert!(
            text.contains(
                &"fault 1 10 s sigterm_storm of 1 pods: 1 pods hit, 1 tries cost".to_string()
            ),
            "{text:?}"
        );
    }
}
