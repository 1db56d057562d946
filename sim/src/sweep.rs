//! Seed sweeps: many seeds of one scenario on every core, optionally in swarm mode (every knob
//! drawn from the seed), split into shards for a batch system, and merged back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::scenario::{Fault, Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::{stream, World};

/// Which part of a seed range this process runs: seeds `s` with `(s - first) % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u64,
    /// How many shards in all.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard must be i/n, got {s:?}"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("bad shard index {i:?}"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard index must be below the count, got {index}/{count}"
            ));
        }
        Ok(Self { index, count })
    }
}

/// One failing seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The invariant that fired.
    pub invariant: String,
    /// What happened.
    pub detail: String,
    /// The command that reproduces it.
    pub reproduce: String,
    /// In swarm mode: the knobs drawn for this seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<String>,
}

/// The result of a sweep (or of merged shards).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SweepReport {
    /// Scenario name.
    pub scenario: String,
    /// Policy preset.
    pub policy: String,
    /// Swarm mode.
    pub swarm: bool,
    /// Seeds run.
    pub seeds_run: u64,
    /// Violations per invariant.
    pub violations: BTreeMap<String, u64>,
    /// Every failing seed, by seed.
    pub failures: Vec<Failure>,
    /// Tasks run, succeeded, failed (sums).
    pub tasks: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// Transparent requeues (sum).
    pub requeues: u64,
    /// User retries consumed (sum).
    pub retries_consumed: u64,
    /// API calls (creates, patches, deletes, lists) per scheduler per run, p50 and p99.
    pub api_calls_per_scheduler_p50: u64,
    /// See `api_calls_per_scheduler_p50`.
    pub api_calls_per_scheduler_p99: u64,
    /// Every scheduler's API call count, kept so shards merge exactly.
    #[serde(default)]
    pub api_calls_samples: Vec<u64>,
    /// Task latency (arrival to SUCCESS or FAILED) over every run, p50 in milliseconds.
    #[serde(default)]
    pub task_latency_p50_ms: u64,
    /// See `task_latency_p50_ms`.
    #[serde(default)]
    pub task_latency_p99_ms: u64,
    /// Every run's latencies, bucketed, so shards merge exactly.
    #[serde(default)]
    pub task_latency: crate::summary::LatencyHistogram,
}

impl SweepReport {
    /// Adds another report (a shard) into this one.
    pub fn merge(&mut self, other: Self) {
        if self.scenario.is_empty() {
            self.scenario = other.scenario.clone();
            self.policy = other.policy.clone();
            self.swarm = other.swarm;
        }
        self.seeds_run += other.seeds_run;
        for (k, v) in other.violations {
            *self.violations.entry(k).or_default() += v;
        }
        self.failures.extend(other.failures);
        self.failures.sort_by_key(|f| f.seed);
        self.tasks += other.tasks;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.requeues += other.requeues;
        self.retries_consumed += other.retries_consumed;
        self.api_calls_samples.extend(other.api_calls_samples);
        self.api_calls_samples.sort_unstable();
        self.api_calls_per_scheduler_p50 = percentile(&self.api_calls_samples, 50);
        self.api_calls_per_scheduler_p99 = percentile(&self.api_calls_samples, 99);
        self.task_latency.merge(&other.task_latency);
        self.task_latency_p50_ms = self.task_latency.percentile(50);
        self.task_latency_p99_ms = self.task_latency.percentile(99);
    }

    /// The report as a text table.
    #[must_use]
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {} (policy {}{})",
            "scenario",
            self.scenario,
            self.policy,
            if self.swarm { ", swarm" } else { "" }
        );
        let _ = writeln!(out, "{:<28} {}", "seeds run", self.seeds_run);
        let _ = writeln!(
            out,
            "{:<28} {} ({} succeeded, {} failed)",
            "tasks", self.tasks, self.succeeded, self.failed
        );
        let _ = writeln!(
            out,
            "{:<28} p50 {:.1} s p99 {:.1} s",
            "task latency",
            self.task_latency_p50_ms as f64 / 1000.0,
            self.task_latency_p99_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "{:<28} {}", "requeues", self.requeues);
        let _ = writeln!(
            out,
            "{:<28} {}",
            "user retries consumed", self.retries_consumed
        );
        let _ = writeln!(
            out,
            "{:<28} p50 {} p99 {}",
            "API calls per scheduler",
            self.api_calls_per_scheduler_p50,
            self.api_calls_per_scheduler_p99
        );
        for name in crate::invariants::INVARIANTS {
            let n = self.violations.get(name).copied().unwrap_or(0);
            let _ = writeln!(out, "{:<28} {n} violations", name);
        }
        for f in self.failures.iter().take(20) {
            let _ = writeln!(out, "seed {} {}: {}", f.seed, f.invariant, f.detail);
            let _ = writeln!(out, "  reproduce: {}", f.reproduce);
            if let Some(s) = &f.swarm {
                let _ = writeln!(out, "  swarm: {s}");
            }
        }
        if self.failures.len() > 20 {
            let _ = writeln!(out, "… and {} more failing seeds", self.failures.len() - 20);
        }
        out
    }
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = (sorted.len() * p)
        .div_ceil(100)
        .saturating_sub(1)
        .min(sorted.len() - 1);
    sorted[i]
}

/// Draws every knob of the world from `seed` (VOPR's swarm testing): scheduler count, nodes,
/// churn, fault kinds and rates, latencies and policy options. Returns the scenario and a line
/// describing the draw.
#[must_use]
pub fn swarm(base: &Scenario, seed: u64) -> (Scenario, String) {
    let mut rng = stream(seed, "swarm");
    let mut s = base.clone();
    s.name = format!("{}-swarm", base.name);
    s.schedulers = rng.random_range(1..=5);
    s.cluster.nodes = rng.random_range(2..=8);
    s.cluster.node_capacity = rng.random_range(20..=80);
    s.duration_s = f64::from(rng.random_range(5u32..=20)) * 60.0;
    s.heal_s = s.duration_s;
    s.load.tasks = rng.random_range(50..=600);
    s.load.runtime_min_s = f64::from(rng.random_range(5u32..=30));
    s.load.runtime_max_s = s.load.runtime_min_s + f64::from(rng.random_range(10u32..=200));
    s.load.failure_rate = f64::from(rng.random_range(0u32..=5)) / 100.0;
    s.load.retries = rng.random_range(0..=3);
    // Size the cluster for the load (1.5x the expected concurrency), so that the liveness
    // invariants judge the policy rather than a cluster that cannot run the work.
    let concurrency = f64::from(s.load.tasks) / s.duration_s
        * (s.load.runtime_min_s + s.load.runtime_max_s)
        / 2.0;
    let needed = (concurrency * 1.5).ceil() as u32 + 1;
    s.cluster.node_capacity = s
        .cluster
        .node_capacity
        .max(needed.div_ceil(s.cluster.nodes.saturating_sub(1).max(1)));
    s.parallelism = s.parallelism.max(needed);
    s.load.kpo_fraction = if rng.random_bool(0.3) { 0.3 } else { 0.0 };
    s.load.sidecar_stuck_rate = if s.load.kpo_fraction > 0.0 { 0.3 } else { 0.0 };
    s.cluster.image_pull_transient_failure_rate = f64::from(rng.random_range(0u32..=10)) / 100.0;
    s.cluster.image_pull_permanent_failure_rate = f64::from(rng.random_range(0u32..=2)) / 100.0;
    s.cluster.admission_rejection_rate = f64::from(rng.random_range(0u32..=5)) / 100.0;
    s.cluster.oom_kill_rate = f64::from(rng.random_range(0u32..=2)) / 100.0;
    s.latency.api_ms = rng.random_range(1..=30);
    s.latency.watch_ms = rng.random_range(5..=100);
    s.latency.db_ms = rng.random_range(1..=20);
    s.random_faults.sigterms_per_hour = f64::from(rng.random_range(0u32..=30));
    s.random_faults.watch_expiries_per_hour = f64::from(rng.random_range(0u32..=30));
    s.random_faults.preemptions_per_hour = f64::from(rng.random_range(0u32..=10));
    s.config.pod_launch_failure_retries = i64::from(rng.random_range(0u32..=3));
    s.config.worker_pods_creation_batch_size = rng.random_range(1..=8);
    s.config.task_publish_max_retries = i64::from(rng.random_range(0u32..=2));
    s.config.orphaned_tasks_check_interval = f64::from(rng.random_range(1u32..=5)) * 60.0;
    s.config.delete_worker_pods = rng.random_bool(0.8);
    s.config.kpo_zombie_pod_cleanup_enabled = s.load.kpo_fraction > 0.0;
    s.expect.prestart_budget = u32::try_from(s.config.pod_launch_failure_retries)
        .unwrap_or(0)
        .min(1);
    let mut faults = Vec::new();
    let end = s.heal_s * 0.8;
    if s.schedulers > 1 && rng.random_bool(0.4) {
        let at_s = rng.random_range(30.0..end);
        let scheduler = rng.random_range(0..s.schedulers);
        faults.push(if rng.random_bool(0.5) {
            Fault::CrashScheduler {
                at_s,
                scheduler,
                restart_after_s: f64::from(rng.random_range(5u32..=120)),
            }
        } else {
            Fault::StallScheduler {
                at_s,
                scheduler,
                duration_s: None,
            }
        });
    }
    if rng.random_bool(0.4) {
        faults.push(Fault::DrainNode {
            at_s: rng.random_range(30.0..end),
            node: rng.random_range(0..s.cluster.nodes),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::SigtermStorm {
            at_s: rng.random_range(30.0..end),
            pods: rng.random_range(1..=30),
        });
    }
    if rng.random_bool(0.2) {
        let at_s = rng.random_range(30.0..end);
        faults.push(Fault::Partition {
            at_s,
            scheduler: rng.random_range(0..s.schedulers),
            duration_s: f64::from(rng.random_range(5u32..=60)),
        });
    }
    if s.schedulers > 1 && rng.random_bool(0.2) {
        faults.push(Fault::ClockSkew {
            at_s: 0.0,
            scheduler: rng.random_range(0..s.schedulers),
            offset_ms: rng.random_range(-60_000..=60_000),
        });
    }
    s.faults = faults;
    let line = format!(
        "schedulers {} nodes {}x{} tasks {} over {:.0} s, runtime {:.0}-{:.0} s, faults {:?}, requeue budget {}, batch {}, latencies api {} watch {} db {} ms",
        s.schedulers,
        s.cluster.nodes,
        s.cluster.node_capacity,
        s.load.tasks,
        s.duration_s,
        s.load.runtime_min_s,
        s.load.runtime_max_s,
        s.faults,
        s.config.pod_launch_failure_retries,
        s.config.worker_pods_creation_batch_size,
        s.latency.api_ms,
        s.latency.watch_ms,
        s.latency.db_ms
    );
    (s, line)
}

/// One seed's run: the seed, the outcome, and the swarm knobs drawn for it.
type SeedResult = (
    u64,
    Result<crate::world::Outcome, ScenarioError>,
    Option<String>,
);

/// Sweep settings.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// First seed (inclusive).
    pub first: u64,
    /// Last seed (exclusive).
    pub end: u64,
    /// Worker threads.
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

/// Runs the sweep.
///
/// # Errors
/// [`ScenarioError`] if the scenario (or a policy) is invalid.
pub fn sweep(mut base: Scenario, spec: &SweepSpec) -> Result<SweepReport, ScenarioError> {
    if let Some(p) = &spec.policy {
        p.clone_into(&mut base.policy);
    }
    base.validate()?;
    let seeds: Vec<u64> = (spec.first..spec.end)
        .filter(|s| {
            spec.shard
                .is_none_or(|sh| (s - spec.first) % sh.count == sh.index)
        })
        .collect();
    let bar = if spec.progress {
        let b = indicatif::ProgressBar::new(seeds.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {msg} ({eta})")
        {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    let violations = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..spec.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i as usize) else {
                    break;
                };
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
                if let Ok(mut r) = results.lock() {
                    r.push((seed, outcome, knobs));
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(seed, _, _)| *seed);
    let mut report = SweepReport {
        scenario: base.name.clone(),
        policy: base.policy.clone(),
        swarm: spec.swarm,
        ..SweepReport::default()
    };
    for (seed, outcome, knobs) in results {
        let outcome = outcome?;
        report.seeds_run += 1;
        let s = &outcome.summary;
        report.tasks += s.tasks as u64;
        report.succeeded += s.succeeded as u64;
        report.failed += s.failed as u64;
        report.requeues += s.requeues();
        report.retries_consumed += s.retries_consumed;
        report.task_latency.merge(&s.task_latency);
        for c in s.per_scheduler.values() {
            report
                .api_calls_samples
                .push(c.creates + c.patches + c.deletes + c.lists);
        }
        if let Some(v) = outcome.violation {
            *report.violations.entry(v.invariant.clone()).or_default() += 1;
            let reproduce = if spec.swarm {
                format!(
                    "{} run {} --swarm --seed {seed} --policy {} --trace trace.jsonl",
                    base.extensions.program(),
                    base.source.clone().unwrap_or_default(),
                    base.policy
                )
            } else {
                v.reproduce.clone()
            };
            report.failures.push(Failure {
                seed,
                invariant: v.invariant,
                detail: v.detail,
                reproduce,
                swarm: knobs,
            });
        }
    }
    report.api_calls_samples.sort_unstable();
    report.api_calls_per_scheduler_p50 = percentile(&report.api_calls_samples, 50);
    report.api_calls_per_scheduler_p99 = percentile(&report.api_calls_samples, 99);
    report.task_latency_p50_ms = report.task_latency.percentile(50);
    report.task_latency_p99_ms = report.task_latency.percentile(99);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_a_range_exactly() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        let base = Scenario {
            duration_s: 60.0,
            heal_s: 60.0,
            load: crate::scenario::Load {
                tasks: 5,
                ..Default::default()
            },
            ..Scenario::default()
        };
        let spec = |shard| SweepSpec {
            first: 10,
            end: 20,
            jobs: 2,
            shard,
            swarm: false,
            policy: None,
            progress: false,
        };
        let whole = sweep(base.clone(), &spec(None)).unwrap();
        let mut merged = SweepReport::default();
        for i in 0..3 {
            merged.merge(sweep(base.clone(), &spec(Some(Shard { index: i, count: 3 }))).unwrap());
        }
        assert_eq!(merged.seeds_run, 10);
        assert_eq!(merged, whole);
    }

    #[test]
    fn swarm_draws_are_seeded_and_valid() {
        let base = Scenario::default();
        for seed in 0..200 {
            let (s, line) = swarm(&base, seed);
            s.validate()
                .unwrap_or_else(|e| panic!("seed {seed}: {e} ({line})"));
            assert_eq!(swarm(&base, seed).1, line);
        }
        assert_ne!(swarm(&base, 1).1, swarm(&base, 2).1);
    }
}
