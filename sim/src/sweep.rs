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
    /// Which sweep this report is (or which shards of it): what `--merge` checks before it
    /// adds reports up. `None` in reports written before it existed, which `--merge` refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<SweepIdentity>,
    /// The faults and decisions the seeds reached, with how many seeds reached each.
    #[serde(default)]
    pub coverage: crate::coverage::Coverage,
}

/// What identifies a sweep's report, so that only shards of one sweep are merged, each once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SweepIdentity {
    /// FNV-1a (hex) of the scenario swept, serialized as JSON with its policy: two files of the
    /// same name but different contents do not merge.
    pub scenario_hash: String,
    /// First seed of the range (inclusive).
    pub first_seed: u64,
    /// End of the range (exclusive).
    pub end_seed: u64,
    /// Shards the range is split into (1: not split).
    pub shard_count: u64,
    /// The shards this report holds, ascending: one for a shard's own report, several once
    /// merged.
    pub shards: Vec<u64>,
}

impl SweepIdentity {
    /// How many shards of `0..shard_count` this report does not hold, and the first `at_most`
    /// of them (found from the gaps between the shards it holds, so a huge count costs
    /// nothing).
    #[must_use]
    pub fn missing(&self, at_most: usize) -> (u64, Vec<u64>) {
        let held = self
            .shards
            .iter()
            .filter(|&&s| s < self.shard_count)
            .count() as u64;
        let mut first = Vec::new();
        let mut next = 0u64;
        for &s in self.shards.iter().chain([&self.shard_count]) {
            let mut i = next;
            while i < s.min(self.shard_count) && first.len() < at_most {
                first.push(i);
                i += 1;
            }
            next = next.max(s.saturating_add(1));
        }
        (self.shard_count.saturating_sub(held), first)
    }
}

/// The most seeds one `sweep` process runs (its shard of the range): ten times the
/// million-seed sweep of `docs/scale-out.md`, weeks of one machine's time. Split a larger range
/// with `--shard`.
pub const MAX_SEEDS_PER_PROCESS: u64 = 10_000_000;

impl SweepReport {
    /// Adds another report (a shard) into this one.
    pub fn merge(&mut self, other: Self) {
        if self.scenario.is_empty() {
            self.scenario = other.scenario.clone();
            self.policy = other.policy.clone();
            self.swarm = other.swarm;
        }
        match (&mut self.identity, other.identity) {
            (Some(mine), Some(theirs)) => {
                mine.shards.extend(theirs.shards);
                mine.shards.sort_unstable();
                mine.shards.dedup();
            }
            (mine @ None, theirs) if self.seeds_run == 0 => *mine = theirs,
            _ => {}
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
        self.coverage.merge(&other.coverage);
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
        match self.identity.as_ref() {
            Some(id) if id.shard_count > 1 && id.shards.len() == 1 => {
                let _ = writeln!(
                    out,
                    "{:<28} {}/{} (seeds {}..{})",
                    "shard", id.shards[0], id.shard_count, id.first_seed, id.end_seed
                );
            }
            Some(id) if id.shard_count > 1 => {
                let missing = id.missing(10);
                let _ = writeln!(
                    out,
                    "{:<28} {} of {} (seeds {}..{}){}",
                    "shards",
                    id.shards.len(),
                    id.shard_count,
                    id.first_seed,
                    id.end_seed,
                    if missing.0 == 0 {
                        String::new()
                    } else {
                        format!(", missing: {}", list_shards(missing, id.shard_count))
                    }
                );
            }
            _ => {}
        }
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
        // The built-in invariants, the livelock guard, then invariants of your own.
        let livelock = crate::world::livelock::LIVELOCK;
        let builtin = crate::invariants::INVARIANTS.iter().chain([&livelock]);
        for name in builtin {
            let n = self.violations.get(*name).copied().unwrap_or(0);
            let _ = writeln!(out, "{name:<28} {n} violations");
        }
        for (name, n) in &self.violations {
            if !crate::invariants::INVARIANTS.contains(&name.as_str()) && name != livelock {
                let _ = writeln!(out, "{name:<28} {n} violations");
            }
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
        out.push_str(&self.coverage.to_text(self.seeds_run));
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

/// `3/8, 5/8` from [`SweepIdentity::missing`]'s answer: the first ones, then how many more.
fn list_shards((total, first): (u64, Vec<u64>), count: u64) -> String {
    let mut parts: Vec<String> = first.iter().map(|i| format!("{i}/{count}")).collect();
    let more = total.saturating_sub(first.len() as u64);
    if more > 0 {
        parts.push(format!("and {more} more"));
    }
    parts.join(", ")
}

/// One report given to [`merge_reports`]: where it came from (a file name, for messages) and
/// the report.
pub type NamedReport = (String, SweepReport);

/// The result of [`merge_reports`]: the merged report and, when shards are missing and that was
/// allowed, a warning that says which.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Every report added up.
    pub report: SweepReport,
    /// Which shards are missing, if any (only with `allow_partial`).
    pub warning: Option<String>,
}

/// Checks that `reports` are shards of one sweep (same scenario and contents, policy, swarm
/// flag, seed range and shard count), each given once, and adds them up. A missing shard is an
/// error unless `allow_partial`, when it is a warning.
///
/// # Errors
/// A message naming the files: a report without identity (written by an older version), two
/// reports of different sweeps, a shard given twice, or missing shards.
pub fn merge_reports(reports: Vec<NamedReport>, allow_partial: bool) -> Result<Merged, String> {
    let mut merged = SweepReport::default();
    let mut first: Option<(String, SweepIdentity)> = None;
    // Which file gave each shard.
    let mut given: BTreeMap<u64, String> = BTreeMap::new();
    for (file, report) in reports {
        let Some(id) = report.identity.clone() else {
            return Err(format!(
                "{file}: this report does not say which sweep and shard it is (it was written \
                 before reports carried their scenario hash, seed range and shard); run that \
                 shard again with this version"
            ));
        };
        if let Some((first_file, want)) = &first {
            let differs = [
                ("scenario", merged.scenario.clone(), report.scenario.clone()),
                ("policy", merged.policy.clone(), report.policy.clone()),
                ("swarm", merged.swarm.to_string(), report.swarm.to_string()),
                (
                    "seeds",
                    format!("{}..{}", want.first_seed, want.end_seed),
                    format!("{}..{}", id.first_seed, id.end_seed),
                ),
                (
                    "shard count",
                    want.shard_count.to_string(),
                    id.shard_count.to_string(),
                ),
                (
                    "scenario contents (hash)",
                    want.scenario_hash.clone(),
                    id.scenario_hash.clone(),
                ),
            ]
            .into_iter()
            .find(|(_, a, b)| a != b);
            if let Some((what, a, b)) = differs {
                return Err(format!(
                    "{file} and {first_file} are not shards of one sweep: {what} {b} in {file}, \
                     {a} in {first_file}"
                ));
            }
        } else {
            first = Some((file.clone(), id.clone()));
        }
        for &shard in &id.shards {
            if shard >= id.shard_count {
                return Err(format!(
                    "{file}: shard {shard}/{} is out of range",
                    id.shard_count
                ));
            }
            if let Some(earlier) = given.insert(shard, file.clone()) {
                let which = if id.shard_count == 1 {
                    format!("the sweep of seeds {}..{}", id.first_seed, id.end_seed)
                } else {
                    format!("shard {shard}/{}", id.shard_count)
                };
                return Err(format!("{which} given twice: {earlier} and {file}"));
            }
        }
        merged.merge(report);
    }
    let mut warning = None;
    if let Some(id) = &merged.identity {
        let missing = id.missing(10);
        let total = missing.0;
        if total > 0 {
            let message = format!(
                "{} of {} shards missing: {} (seeds {}..{}, {} seeds run)",
                total,
                id.shard_count,
                list_shards(missing, id.shard_count),
                id.first_seed,
                id.end_seed,
                merged.seeds_run
            );
            if !allow_partial {
                return Err(format!(
                    "{message}; give every shard's report, or --allow-partial to merge these"
                ));
            }
            warning = Some(message);
        }
    }
    Ok(Merged {
        report: merged,
        warning,
    })
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
    // From 10 s (hand-overs within a stall's length: the split-brain case) to Airflow's 300 s.
    s.config.orphaned_tasks_check_interval = f64::from(rng.random_range(1u32..=30)) * 10.0;
    // The pending timeout (off in Airflow today) in a fifth of the seeds.
    if rng.random_bool(0.2) {
        s.config.worker_pods_pending_timeout = f64::from(rng.random_range(60u32..=300));
        s.config.worker_pods_pending_timeout_check_interval = 30.0;
    }
    s.config.delete_worker_pods = rng.random_bool(0.8);
    s.config.kpo_zombie_pod_cleanup_enabled = s.load.kpo_fraction > 0.0;
    s.expect.prestart_budget = u32::try_from(s.config.pod_launch_failure_retries)
        .unwrap_or(0)
        .min(1);
    let mut faults = Vec::new();
    let end = s.heal_s * 0.8;
    if s.schedulers > 1 && rng.random_bool(0.3) {
        faults.push(Fault::CrashScheduler {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            restart_after_s: f64::from(rng.random_range(5u32..=120)),
        });
    }
    if rng.random_bool(0.4) {
        // A stall the probe ends, one shorter than the liveness threshold (nobody notices),
        // or one past it that ends by itself (peers took its work: the split-brain case).
        let duration_s = match rng.random_range(0u32..3) {
            0 => None,
            1 => Some(f64::from(rng.random_range(5u32..=25))),
            _ => Some(f64::from(rng.random_range(35u32..=50))),
        };
        faults.push(Fault::StallScheduler {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            duration_s,
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
    if rng.random_bool(0.25) {
        let at_s = rng.random_range(30.0..end);
        faults.push(Fault::Partition {
            at_s,
            scheduler: rng.random_range(0..s.schedulers),
            duration_s: f64::from(rng.random_range(5u32..=400)),
        });
    }
    if s.schedulers > 1 && rng.random_bool(0.2) {
        faults.push(Fault::ClockSkew {
            at_s: 0.0,
            scheduler: rng.random_range(0..s.schedulers),
            offset_ms: rng.random_range(-60_000..=60_000),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::NodeLoss {
            at_s: rng.random_range(30.0..end),
            node: rng.random_range(0..s.cluster.nodes),
            duration_s: f64::from(rng.random_range(60u32..=900)),
            returns: rng.random_bool(0.5),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::DbOutage {
            at_s: rng.random_range(30.0..end),
            duration_s: f64::from(rng.random_range(10u32..=300)),
        });
    }
    if rng.random_bool(0.3) {
        let code = [429, 500, 503][rng.random_range(0..3usize)];
        faults.push(Fault::ApiErrors {
            at_s: rng.random_range(30.0..end),
            duration_s: f64::from(rng.random_range(10u32..=300)),
            code,
            rate: f64::from(rng.random_range(10u32..=80)) / 100.0,
        });
    }
    if rng.random_bool(0.3) {
        // An NTP step or a VM migration, either way: up to two hours.
        let magnitude = rng.random_range(1_000i64..=7_200_000);
        faults.push(Fault::ClockStep {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            offset_ms: if rng.random_bool(0.5) {
                magnitude
            } else {
                -magnitude
            },
        });
    }
    // Both termination behaviours: before 1.27 a deleted pod goes with its phase unchanged.
    s.cluster.kubernetes_minor = if rng.random_bool(0.3) { 26 } else { 31 };
    s.faults = faults;
    let line = format!(
        "schedulers {} nodes {}x{} (Kubernetes 1.{}) tasks {} over {:.0} s, runtime {:.0}-{:.0} s, faults {:?}, requeue budget {}, batch {}, latencies api {} watch {} db {} ms",
        s.schedulers,
        s.cluster.nodes,
        s.cluster.node_capacity,
        s.cluster.kubernetes_minor,
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
    fn seed(&self, i: u64) -> u64 {
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
                        Ok(o) => add_run(&mut t.report, &base, spec, seed, o, knobs),
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
    base: &Scenario,
    spec: &SweepSpec,
    seed: u64,
    outcome: crate::world::Outcome,
    knobs: Option<String>,
) {
    report.seeds_run += 1;
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
        let shards: Vec<NamedReport> = (0..3)
            .map(|i| {
                let r = sweep(base.clone(), &spec(Some(Shard { index: i, count: 3 }))).unwrap();
                (format!("shard-{i}.json"), r)
            })
            .collect();
        let mut merged = merge_reports(shards, false).unwrap().report;
        assert_eq!(merged.seeds_run, 10);
        let id = merged.identity.take().unwrap();
        assert_eq!((id.shard_count, id.shards), (3, vec![0, 1, 2]));
        assert_eq!(
            (id.first_seed, id.end_seed, &id.scenario_hash),
            (10, 20, &whole.identity.as_ref().unwrap().scenario_hash)
        );
        // Apart from which shards it holds, the merge is the whole sweep, figure for figure.
        assert_eq!(
            merged,
            SweepReport {
                identity: None,
                ..whole
            }
        );
    }

    fn tiny() -> Scenario {
        Scenario {
            duration_s: 30.0,
            heal_s: 30.0,
            load: crate::scenario::Load {
                tasks: 2,
                ..Default::default()
            },
            expect: crate::scenario::Expectations {
                lost_task_bound_s: 300.0,
                ..Default::default()
            },
            ..Scenario::default()
        }
    }

    fn spec(first: u64, end: u64, shard: Option<Shard>) -> SweepSpec {
        SweepSpec {
            first,
            end,
            jobs: 2,
            shard,
            swarm: false,
            policy: None,
            progress: false,
        }
    }

    #[test]
    fn seeds_are_computed_not_listed_so_a_huge_range_costs_nothing_up_front() {
        let all = spec(0, u64::MAX, None);
        assert_eq!(all.seed_count(), u64::MAX);
        assert_eq!(all.seed(u64::MAX - 1), u64::MAX - 1);
        let shard = spec(
            0,
            u64::MAX,
            Some(Shard {
                index: 3,
                count: 1 << 40,
            }),
        );
        assert_eq!(shard.seed_count(), 16_777_216);
        assert_eq!(shard.seed(0), 3);
        assert_eq!(shard.seed(16_777_215), 3 + 16_777_215 * (1 << 40));
        for (first, end, index, count) in
            [(10, 20, 0, 3), (10, 20, 2, 3), (0, 2, 3, 4), (5, 6, 0, 1)]
        {
            let s = spec(first, end, Some(Shard { index, count }));
            let listed: Vec<u64> = (first..end)
                .filter(|x| (x - first) % count == index)
                .collect();
            let computed: Vec<u64> = (0..s.seed_count()).map(|i| s.seed(i)).collect();
            assert_eq!(computed, listed, "{first}..{end} shard {index}/{count}");
        }
        // A shard of a huge range runs only its own seeds.
        let report = sweep(tiny(), &spec(u64::MAX - 3, u64::MAX, None)).unwrap();
        assert_eq!(report.seeds_run, 3);
        assert_eq!(spec(5, 5, None).seed_count(), 0);
        assert_eq!(sweep(tiny(), &spec(5, 6, None)).unwrap().seeds_run, 1);
    }

    #[test]
    fn merge_refuses_duplicates_other_sweeps_old_reports_and_missing_shards() {
        let shard = |i: u64, n: u64, s: &Scenario, end: u64| {
            sweep(s.clone(), &spec(0, end, Some(Shard { index: i, count: n }))).unwrap()
        };
        let base = tiny();
        let a = ("a.json".to_string(), shard(0, 3, &base, 6));
        let b = ("b.json".to_string(), shard(1, 3, &base, 6));
        let c = ("c.json".to_string(), shard(2, 3, &base, 6));
        let err = |reports: Vec<NamedReport>| merge_reports(reports, false).unwrap_err();

        let e = err(vec![a.clone(), b.clone(), ("b2.json".into(), b.1.clone())]);
        assert_eq!(e, "shard 1/3 given twice: b.json and b2.json");

        let mut other = base.clone();
        other.load.tasks = 3;
        let e = err(vec![a.clone(), ("x.json".into(), shard(1, 3, &other, 6))]);
        assert!(
            e.starts_with("x.json and a.json are not shards of one sweep: scenario contents"),
            "{e}"
        );

        let mut airflow = base.clone();
        airflow.policy = "airflow".into();
        let e = err(vec![a.clone(), ("p.json".into(), shard(1, 3, &airflow, 6))]);
        assert!(
            e.contains("policy airflow in p.json, default in a.json"),
            "{e}"
        );

        let e = err(vec![a.clone(), ("r.json".into(), shard(1, 3, &base, 9))]);
        assert!(e.contains("seeds 0..9 in r.json, 0..6 in a.json"), "{e}");

        let e = err(vec![a.clone(), ("n.json".into(), shard(1, 4, &base, 6))]);
        assert!(e.contains("shard count 4 in n.json, 3 in a.json"), "{e}");

        let old = SweepReport {
            identity: None,
            ..a.1.clone()
        };
        let e = err(vec![("old.json".into(), old)]);
        assert!(
            e.starts_with("old.json: this report does not say which sweep"),
            "{e}"
        );

        let e = err(vec![a.clone(), c.clone()]);
        assert!(
            e.starts_with("1 of 3 shards missing: 1/3 (seeds 0..6, 4 seeds run)"),
            "{e}"
        );
        assert!(e.contains("--allow-partial"), "{e}");
        let partial = merge_reports(vec![a.clone(), c.clone()], true).unwrap();
        assert_eq!(partial.report.seeds_run, 4);
        assert!(partial.warning.unwrap().contains("missing: 1/3"));
        assert!(partial
            .report
            .to_text()
            .contains("2 of 3 (seeds 0..6), missing: 1/3"));

        // A merged report merges on (a merge of merges), and the whole sweep twice is refused.
        let ab = merge_reports(vec![a.clone(), b.clone()], true)
            .unwrap()
            .report;
        let all = merge_reports(vec![("ab.json".into(), ab), c.clone()], false).unwrap();
        assert_eq!((all.report.seeds_run, all.warning), (6, None));
        let whole = sweep(base.clone(), &spec(0, 6, None)).unwrap();
        let e = err(vec![
            ("w.json".into(), whole.clone()),
            ("w2.json".into(), whole),
        ]);
        assert_eq!(e, "the sweep of seeds 0..6 given twice: w.json and w2.json");
    }

    #[test]
    fn swarm_draws_over_every_shipped_scenario_are_within_the_ranges() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path().display().to_string();
            if !path.ends_with(".toml") {
                continue;
            }
            let base = Scenario::load(&path).unwrap();
            for seed in 0..300 {
                let (s, line) = swarm(&base, seed);
                s.validate()
                    .unwrap_or_else(|e| panic!("{path} seed {seed}: {e} ({line})"));
            }
        }
    }

    #[test]
    fn missing_shards_are_found_from_the_gaps() {
        let id = |count, shards: Vec<u64>| SweepIdentity {
            shard_count: count,
            shards,
            ..SweepIdentity::default()
        };
        assert_eq!(id(3, vec![0, 2]).missing(10), (1, vec![1]));
        assert_eq!(id(3, vec![0, 1, 2]).missing(10), (0, vec![]));
        assert_eq!(id(5, vec![]).missing(2), (5, vec![0, 1]));
        assert_eq!(id(6, vec![1, 4]).missing(10), (4, vec![0, 2, 3, 5]));
        assert_eq!(
            id(u64::MAX, vec![0, 7]).missing(3),
            (u64::MAX - 2, vec![1, 2, 3])
        );
        assert_eq!(
            list_shards(id(1000, vec![5]).missing(2), 1000),
            "0/1000, 1/1000, and 997 more"
        );
    }

    #[test]
    fn the_text_report_has_a_livelock_row_and_rows_for_your_invariants() {
        let mut r = SweepReport::default();
        r.violations.insert("livelock".into(), 2);
        r.violations.insert("my_rule".into(), 1);
        let text = r.to_text();
        assert!(
            text.contains("livelock                     2 violations"),
            "{text}"
        );
        assert!(
            text.contains("my_rule                      1 violations"),
            "{text}"
        );
        assert!(
            text.contains("no_thrash                    0 violations"),
            "{text}"
        );
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
