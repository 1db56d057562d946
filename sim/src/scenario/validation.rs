//! Checking a scenario: every field's range, the fault indices and the embedded executor
//! configuration.

use super::data::POLICIES;
use super::data::{Fault, Scenario, ScenarioError};
use super::limits;

impl Scenario {
    /// Checks every field's range, the fault indices and the embedded executor configuration.
    /// The ranges are in [`limits`] and in `docs/scenarios.md`.
    ///
    /// # Errors
    /// [`ScenarioError::OutOfRange`] naming the first field out of range (with its position,
    /// e.g. `faults[1].duration_s`) and its allowed range; [`ScenarioError::UnknownPolicy`];
    /// [`ScenarioError::Invalid`] for an invalid `[config]` or a policy of your own named like a
    /// preset. Every bad fault is reported, not only the first: several problems are
    /// [`ScenarioError::Several`].
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut problems: Vec<ScenarioError> = self.check_world().err().into_iter().collect();
        for (i, f) in self.faults.iter().enumerate() {
            problems.extend(self.check_fault(i, f).err());
        }
        problems.extend(self.check_executors().err());
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(ScenarioError::Several(problems)),
        }
    }

    /// The world's own fields (everything but the faults and the executors' configuration).
    fn check_world(&self) -> Result<(), ScenarioError> {
        use limits::{
            HEARTBEAT_MS, KUBELET_MS, KUBERNETES_MINOR, LATENCY_MS, LOOP_MS, MAX_NODES,
            MAX_NODE_CAPACITY, MAX_PARALLELISM, MAX_PRESTART_BUDGET, MAX_RANDOM_FAULTS,
            MAX_RANDOM_RATE, MAX_RETRIES, MAX_SCHEDULERS, MAX_TASKS,
        };
        int("schedulers", self.schedulers, 1, MAX_SCHEDULERS)?;
        int("cluster.nodes", self.cluster.nodes, 1, MAX_NODES)?;
        int(
            "cluster.node_capacity",
            self.cluster.node_capacity,
            1,
            MAX_NODE_CAPACITY,
        )?;
        span_positive("duration_s", self.duration_s)?;
        span("heal_s", self.heal_s)?;
        span("expect.lost_task_bound_s", self.expect.lost_task_bound_s)?;
        int("load.tasks", self.load.tasks, 0, MAX_TASKS)?;
        span_positive("load.runtime_max_s", self.load.runtime_max_s)?;
        if !(self.load.runtime_min_s > 0.0 && self.load.runtime_min_s <= self.load.runtime_max_s) {
            return Err(out_of_range(
                "load.runtime_min_s",
                self.load.runtime_min_s,
                format!(
                    "above 0 and at most load.runtime_max_s ({})",
                    self.load.runtime_max_s
                ),
            ));
        }
        int("load.retries", self.load.retries, 0, MAX_RETRIES)?;
        for (name, p) in [
            ("load.failure_rate", self.load.failure_rate),
            ("load.kpo_fraction", self.load.kpo_fraction),
            ("load.sidecar_stuck_rate", self.load.sidecar_stuck_rate),
            (
                "cluster.image_pull_transient_failure_rate",
                self.cluster.image_pull_transient_failure_rate,
            ),
            (
                "cluster.image_pull_permanent_failure_rate",
                self.cluster.image_pull_permanent_failure_rate,
            ),
            ("cluster.oom_kill_rate", self.cluster.oom_kill_rate),
            (
                "cluster.admission_rejection_rate",
                self.cluster.admission_rejection_rate,
            ),
        ] {
            probability(name, p)?;
        }
        int(
            "cluster.image_pull_ms",
            self.cluster.image_pull_ms,
            *KUBELET_MS.start(),
            *KUBELET_MS.end(),
        )?;
        int(
            "cluster.task_startup_ms",
            self.cluster.task_startup_ms,
            *KUBELET_MS.start(),
            *KUBELET_MS.end(),
        )?;
        int(
            "cluster.kubernetes_minor",
            self.cluster.kubernetes_minor,
            *KUBERNETES_MINOR.start(),
            *KUBERNETES_MINOR.end(),
        )?;
        span(
            "cluster.node_monitor_grace_s",
            self.cluster.node_monitor_grace_s,
        )?;
        span("cluster.toleration_s", self.cluster.toleration_s)?;
        for (name, ms) in [
            ("latency.api_ms", self.latency.api_ms),
            ("latency.watch_ms", self.latency.watch_ms),
            ("latency.db_ms", self.latency.db_ms),
        ] {
            int(name, ms, *LATENCY_MS.start(), *LATENCY_MS.end())?;
        }
        int(
            "scheduler_loop_ms",
            self.scheduler_loop_ms,
            *LOOP_MS.start(),
            *LOOP_MS.end(),
        )?;
        int(
            "heartbeat_ms",
            self.heartbeat_ms,
            *HEARTBEAT_MS.start(),
            *HEARTBEAT_MS.end(),
        )?;
        int("parallelism", self.parallelism, 1, MAX_PARALLELISM)?;
        span_positive("zombie_task_threshold_s", self.zombie_task_threshold_s)?;
        int(
            "expect.prestart_budget",
            self.expect.prestart_budget,
            0,
            MAX_PRESTART_BUDGET,
        )?;
        // A rate is per hour of heal time; all of a kind's faults are drawn when the world is
        // built, so the rate times the heal time is bounded too.
        let hours = self.heal_s / 3_600.0;
        let max_rate = if hours > 0.0 {
            MAX_RANDOM_RATE.min(MAX_RANDOM_FAULTS / hours)
        } else {
            MAX_RANDOM_RATE
        };
        let r = &self.random_faults;
        for (name, rate) in [
            ("random_faults.sigterms_per_hour", r.sigterms_per_hour),
            (
                "random_faults.watch_expiries_per_hour",
                r.watch_expiries_per_hour,
            ),
            ("random_faults.preemptions_per_hour", r.preemptions_per_hour),
        ] {
            if !(rate.is_finite() && (0.0..=max_rate).contains(&rate)) {
                let allowed = if max_rate < MAX_RANDOM_RATE {
                    format!(
                        "0 to {max_rate:.2} with heal_s = {} (at most {MAX_RANDOM_FAULTS} random faults of one kind per run)",
                        self.heal_s
                    )
                } else {
                    format!("0 to {MAX_RANDOM_RATE}")
                };
                return Err(out_of_range(name, rate, allowed));
            }
        }
        Ok(())
    }

    /// The `i`-th fault: its start, its indices and its spans.
    fn check_fault(&self, i: usize, f: &Fault) -> Result<(), ScenarioError> {
        use limits::{MAX_OFFSET_MS, MAX_STORM_PODS};
        {
            let at = f.at_s();
            if !(at.is_finite() && at >= 0.0 && at <= self.heal_s) {
                return Err(out_of_range(
                    format!("faults[{i}].at_s"),
                    at,
                    format!("0 to heal_s ({})", self.heal_s),
                ));
            }
            let field = |name: &str| format!("faults[{i}].{name}");
            match f {
                Fault::DrainNode { node, .. } | Fault::NodeLoss { node, .. } => {
                    index(&field("node"), *node, self.cluster.nodes, "nodes")?;
                }
                Fault::SigtermStorm { pods, .. } | Fault::Preempt { pods, .. } => {
                    int(&field("pods"), *pods, 1, MAX_STORM_PODS)?;
                }
                Fault::CrashScheduler { scheduler, .. }
                | Fault::StallScheduler { scheduler, .. }
                | Fault::Partition { scheduler, .. }
                | Fault::WatchExpiry { scheduler, .. }
                | Fault::ClockSkew { scheduler, .. }
                | Fault::ClockStep { scheduler, .. } => {
                    index(
                        &field("scheduler"),
                        *scheduler,
                        self.schedulers,
                        "schedulers",
                    )?;
                }
                Fault::DbOutage { .. } | Fault::ApiErrors { .. } => {}
            }
            match f {
                Fault::NodeLoss { duration_s, .. }
                | Fault::Partition { duration_s, .. }
                | Fault::DbOutage { duration_s, .. }
                | Fault::StallScheduler {
                    duration_s: Some(duration_s),
                    ..
                } => span(&field("duration_s"), *duration_s)?,
                Fault::CrashScheduler {
                    restart_after_s, ..
                } => span(&field("restart_after_s"), *restart_after_s)?,
                Fault::ClockSkew { offset_ms, .. } | Fault::ClockStep { offset_ms, .. }
                    if offset_ms.unsigned_abs() > MAX_OFFSET_MS.unsigned_abs() =>
                {
                    return Err(out_of_range(
                        field("offset_ms"),
                        offset_ms,
                        format!("-{MAX_OFFSET_MS}..={MAX_OFFSET_MS} (30 days either way)"),
                    ));
                }
                Fault::ApiErrors {
                    duration_s,
                    code,
                    rate,
                    ..
                } => {
                    span(&field("duration_s"), *duration_s)?;
                    int(&field("code"), *code, 100, 599)?;
                    probability(&field("rate"), *rate)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The policy and the executors' configuration.
    fn check_executors(&self) -> Result<(), ScenarioError> {
        use limits::MAX_SPAN_S;
        if let Some(mine) = self.extensions.policy() {
            if POLICIES.contains(&mine.name()) {
                return Err(ScenarioError::Invalid(format!(
                    "a policy of your own cannot take a preset's name ({:?})",
                    mine.name()
                )));
            }
        }
        let config = self.executor_config()?;
        config
            .validate()
            .map_err(|e| ScenarioError::Invalid(format!("config: {e}")))?;
        // Each task namespace must be one the executors watch: the core refuses the `Submit`
        // of a template in another, and the run would only show input errors.
        for (i, ns) in self.load.namespaces.iter().enumerate() {
            if !config.watches_namespace(ns) {
                return Err(ScenarioError::Invalid(format!(
                    "load.namespaces[{i}] is {ns:?}, which the executors do not watch: set \
                     [config] multi_namespace_mode = true and list it in \
                     multi_namespace_mode_namespace_list (or leave the list empty to watch \
                     every namespace)"
                )));
            }
            if !podwarden_core::config::is_valid_namespace(ns) {
                return Err(ScenarioError::Invalid(format!(
                    "load.namespaces[{i}] is {ns:?}, not a valid Kubernetes namespace (1 to 63 \
                     lowercase letters, digits and '-', starting and ending with a letter or digit)"
                )));
            }
        }
        // The world schedules with these, so beyond the core's own checks (finite, not
        // negative) they are bounded like every other span of simulated time.
        for (name, value) in [
            (
                "config.orphaned_tasks_check_interval",
                config.orphaned_tasks_check_interval,
            ),
            (
                "config.scheduler_health_check_threshold",
                config.scheduler_health_check_threshold,
            ),
            (
                "config.scheduler_idle_sleep_time",
                config.scheduler_idle_sleep_time,
            ),
            (
                "config.kpo_zombie_pod_cleanup_interval",
                config.kpo_zombie_pod_cleanup_interval,
            ),
            (
                "config.worker_pods_pending_timeout",
                config.worker_pods_pending_timeout,
            ),
            (
                "config.worker_pods_pending_timeout_check_interval",
                config.worker_pods_pending_timeout_check_interval,
            ),
            (
                "config.health_watch_stall_threshold",
                config.health_watch_stall_threshold,
            ),
        ] {
            if value > MAX_SPAN_S {
                return Err(out_of_range(
                    name,
                    value,
                    "at most 2592000 (30 days) in the simulator",
                ));
            }
        }
        Ok(())
    }
}

fn out_of_range(
    field: impl Into<String>,
    value: impl std::fmt::Display,
    allowed: impl Into<String>,
) -> ScenarioError {
    ScenarioError::OutOfRange {
        field: field.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// An integer in `lo..=hi`.
fn int<T: Into<u64> + Copy + std::fmt::Display>(
    field: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), ScenarioError> {
    if (lo.into()..=hi.into()).contains(&value.into()) {
        Ok(())
    } else {
        Err(out_of_range(field, value, format!("{lo}..={hi}")))
    }
}

/// A 0-based index into `count` things.
fn index(field: &str, value: u32, count: u32, things: &str) -> Result<(), ScenarioError> {
    if value < count {
        Ok(())
    } else {
        Err(out_of_range(
            field,
            value,
            format!(
                "0..={} (the scenario has {count} {things})",
                count.saturating_sub(1)
            ),
        ))
    }
}

/// A span of simulated time in seconds: finite, 0 to 30 days.
fn span(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && (0.0..=limits::MAX_SPAN_S).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(field, value, "0 to 2592000 (30 days)"))
    }
}

/// A span of simulated time in seconds: above 0, at most 30 days.
fn span_positive(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 && value <= limits::MAX_SPAN_S {
        Ok(())
    } else {
        Err(out_of_range(
            field,
            value,
            "above 0 and at most 2592000 (30 days)",
        ))
    }
}

/// A probability: 0 to 1 (`nan` is not).
fn probability(field: &str, value: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(out_of_range(field, value, "0 to 1"))
    }
}
