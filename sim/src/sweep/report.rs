//! A sweep's report: what its seeds did, added up; its text; shards and merging their JSON
//! reports back into one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// In swarm mode: what the draws keep from the scenario file and what they draw
    /// ([`swarm_over`](crate::sweep::swarm_over)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_over: Option<String>,
    /// Seeds run.
    pub seeds_run: u64,
    /// Violations per invariant.
    pub violations: BTreeMap<String, u64>,
    /// Invariants of your own every seed checked, by name (a row each in the text, violated or
    /// not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_invariants: Vec<String>,
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
            self.swarm_over = other.swarm_over.clone();
        }
        if self.custom_invariants.is_empty() {
            self.custom_invariants.clone_from(&other.custom_invariants);
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
        if let Some(over) = &self.swarm_over {
            let _ = writeln!(out, "{:<28} {over}", "swarm");
        }
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
        for name in &self.custom_invariants {
            let n = self.violations.get(name).copied().unwrap_or(0);
            let _ = writeln!(out, "{name:<28} {n} violations (yours)");
        }
        for (name, n) in &self.violations {
            if !crate::invariants::INVARIANTS.contains(&name.as_str())
                && name != livelock
                && !self.custom_invariants.contains(name)
            {
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

pub(super) fn percentile(sorted: &[u64], p: usize) -> u64 {
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
pub(super) fn list_shards((total, first): (u64, Vec<u64>), count: u64) -> String {
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
