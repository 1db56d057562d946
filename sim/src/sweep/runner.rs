//! Running a sweep: seeds handed out to worker threads, each run added to the report as it ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::scenario::{Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;

use super::report::{percentile, Failure, Shard, SweepIdentity, SweepReport};
use super::swarm::{swarm, swarm_over};

/// Sweep settings.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// First seed (inclusive).
    pub first: u64,
    /// Last seed (exclusive).
    pub end: u64,
    /// Worker threads (0 acts as 1; never more than there are seeds to run).
    pub jobs: usize,
    /// This process's shard, if the range is split.
    pub shard: Option<Shard>,
    /// Swarm mode.
    pub swarm: bool,
    /// Policy override.
    pub policy: Option<String>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl SweepSpec {
    /// How many seeds this process runs: the range, or this shard's part of it. Computed, not
    /// listed, so a range of any size costs nothing up front.
    #[must_use]
    pub fn seed_count(&self) -> u64 {
        let len = self.end.saturating_sub(self.first);
        match self.shard {
            None => len,
            Some(Shard { index, count }) if len > index => (len - index - 1) / count.max(1) + 1,
            Some(_) => 0,
        }
    }

    /// The `i`-th seed this process runs (`i < seed_count()`).
    pub(super) fn seed(&self, i: u64) -> u64 {
        match self.shard {
            None => self.first + i,
            Some(Shard { index, count }) => self.first + index + i * count,
        }
    }
}

/// What the workers add up as seeds finish: the report, and the first error by seed.
struct Tally {
    report: SweepReport,
    error: Option<(u64, ScenarioError)>,
}

/// Runs the sweep. Seeds are handed out one at a time and each run is added to the report as
/// it ends, so memory does not grow with the number of seeds (beyond the report's samples).
///
/// # Errors
/// [`ScenarioError`] if the scenario (or a policy) is invalid, or a seed's world cannot be
/// built (the lowest such seed's error).
pub fn sweep(mut base: Scenario, spec: &SweepSpec) -> Result<SweepReport, ScenarioError> {
    if let Some(p) = &spec.policy {
        p.clone_into(&mut base.policy);
    }
    base.validate()?;
    let count = spec.seed_count();
    let bar = if spec.progress {
        let b = indicatif::ProgressBar::new(count);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {msg} ({eta})")
        {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut hash = crate::trace::Fnv64::default();
    hash.write(
        serde_json::to_string(&base)
            .map_err(|e| ScenarioError::Invalid(format!("cannot serialize: {e}")))?
            .as_bytes(),
    );
    let tally = Mutex::new(Tally {
        report: SweepReport {
            scenario: base.name.clone(),
            policy: base.policy.clone(),
            swarm: spec.swarm,
            swarm_over: spec.swarm.then(|| swarm_over(&base)),
            identity: Some(SweepIdentity {
                scenario_hash: format!("{:016x}", hash.value()),
                first_seed: spec.first,
                end_seed: spec.end,
                shard_count: spec.shard.map_or(1, |s| s.count),
                shards: vec![spec.shard.map_or(0, |s| s.index)],
            }),
            ..SweepReport::default()
        },
        error: None,
    });
    let next = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    let threads = u64::try_from(spec.jobs.max(1))
        .unwrap_or(u64::MAX)
        .min(count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let seed = spec.seed(i);
                let (scenario, knobs) = if spec.swarm {
                    let (s, line) = swarm(&base, seed);
                    (s, Some(line))
                } else {
                    (base.clone(), None)
                };
                let outcome = World::new(scenario, Some(seed), Trace::hashing()).map(World::run);
                if outcome.as_ref().is_ok_and(|o| o.violation.is_some()) {
                    let n = violations.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("{n} violations"));
                }
                bar.inc(1);
                if let Ok(mut t) = tally.lock() {
                    match outcome {
                        Ok(o) => add_run(&mut t.report, seed, o, knobs),
                        Err(e) => {
                            if t.error.as_ref().is_none_or(|(s, _)| seed < *s) {
                                t.error = Some((seed, e));
                            }
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let tally = tally.into_inner().map_err(|_| {
        ScenarioError::Invalid("a sweep worker panicked while adding its result".into())
    })?;
    if let Some((_, e)) = tally.error {
        return Err(e);
    }
    let mut report = tally.report;
    report.failures.sort_by_key(|f| f.seed);
    report.api_calls_samples.sort_unstable();
    report.api_calls_per_scheduler_p50 = percentile(&report.api_calls_samples, 50);
    report.api_calls_per_scheduler_p99 = percentile(&report.api_calls_samples, 99);
    report.task_latency_p50_ms = report.task_latency.percentile(50);
    report.task_latency_p99_ms = report.task_latency.percentile(99);
    Ok(report)
}

/// Adds one seed's run to the report.
fn add_run(
    report: &mut SweepReport,
    seed: u64,
    outcome: crate::world::RunOutcome,
    knobs: Option<String>,
) {
    report.seeds_run += 1;
    if report.custom_invariants.is_empty() {
        report
            .custom_invariants
            .clone_from(&outcome.custom_invariants);
    }
    let s = &outcome.summary;
    report.tasks += s.tasks as u64;
    report.succeeded += s.succeeded as u64;
    report.failed += s.failed as u64;
    report.requeues += s.requeues();
    report.retries_consumed += s.retries_consumed;
    report.task_latency.merge(&s.task_latency);
    report.coverage.add_run(&s.coverage);
    for c in s.per_scheduler.values() {
        report
            .api_calls_samples
            .push(c.creates + c.patches + c.deletes + c.lists);
    }
    if let Some(v) = outcome.violation {
        *report.violations.entry(v.invariant.clone()).or_default() += 1;
        report.failures.push(Failure {
            seed,
            invariant: v.invariant,
            detail: v.detail,
            reproduce: v.reproduce,
            swarm: knobs,
        });
    }
}
