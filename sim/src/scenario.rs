//! Scenario files: the world to build, its load, its faults, and the policy under test.
//!
//! A scenario is TOML (or JSON) read with unknown keys rejected, so a typo is an error rather than
//! a silently ignored knob. Every field has a default; `docs/scenarios.md` lists them all.

use serde::{Deserialize, Serialize};

use podwarden_core::Config;

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("invalid scenario {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (line and column included).
        message: String,
    },
    /// The scenario is invalid for a reason other than one field's range (a policy of your own
    /// named like a preset, an invalid `[config]`, …).
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// A field is out of its allowed range: `field` names it with its position
    /// (`faults[1].duration_s`, `cluster.nodes`), `allowed` says what it may be.
    #[error("invalid scenario: {field} is {value}, allowed {allowed}")]
    OutOfRange {
        /// The field, with its position.
        field: String,
        /// Its value, as written.
        value: String,
        /// What it may be (`1..=16`, `0 to 2592000 (30 days)`, …).
        allowed: String,
    },
    /// An output file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An unknown policy preset.
    #[error("unknown policy {0:?} (presets: {known}; a policy of your own is known only to the program that registers it)", known = POLICIES.join(", "))]
    UnknownPolicy(String),
}

/// Network and DB latencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// One way, scheduler ↔ API server.
    pub api_ms: u64,
    /// API server → watcher.
    pub watch_ms: u64,
    /// One way, scheduler ↔ metadata DB.
    pub db_ms: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            api_ms: 5,
            watch_ms: 20,
            db_ms: 3,
        }
    }
}

/// The load: task instances arriving over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Load {
    /// Task instances arriving, evenly spread over `duration_s`.
    pub tasks: u32,
    /// Shortest task run time.
    pub runtime_min_s: f64,
    /// Longest task run time.
    pub runtime_max_s: f64,
    /// Probability that a task's own code fails (exit 1).
    pub failure_rate: f64,
    /// User retries per task (a failure with retries left makes a new try).
    pub retries: u32,
    /// Fraction of tasks that are KubernetesPodOperator tasks (their pods are created by the
    /// task, not the executor).
    pub kpo_fraction: f64,
    /// Probability that a KPO pod's sidecar never exits.
    pub sidecar_stuck_rate: f64,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            tasks: 100,
            runtime_min_s: 20.0,
            runtime_max_s: 120.0,
            failure_rate: 0.02,
            retries: 2,
            kpo_fraction: 0.0,
            sidecar_stuck_rate: 0.0,
        }
    }
}

/// The nodes and what their kubelets do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Worker nodes.
    pub nodes: u32,
    /// Pods per node.
    pub node_capacity: u32,
    /// Image pull time.
    pub image_pull_ms: u64,
    /// Probability that a pull fails transiently (ErrImagePull, back-off, then success).
    pub image_pull_transient_failure_rate: f64,
    /// Probability that a pull fails for good (the image does not exist).
    pub image_pull_permanent_failure_rate: f64,
    /// Time from container start to the task process writing RUNNING.
    pub task_startup_ms: u64,
    /// Probability that a task is OOM-killed while it runs.
    pub oom_kill_rate: f64,
    /// Probability that the kubelet rejects a pod at admission (phase Failed, reason `OutOfcpu`;
    /// the pod stays until someone deletes it).
    pub admission_rejection_rate: f64,
    /// Kubernetes minor version (1.x). From 1.27 the kubelet moves a deleted pod to a terminal
    /// phase (Failed or Succeeded) before it disappears; before 1.27 a gracefully deleted pod
    /// ends `DELETED` with its phase still Running (or Pending), and pod GC does not set Failed.
    #[serde(skip_serializing_if = "is_default_kubernetes_minor")]
    pub kubernetes_minor: u32,
    /// `node-monitor-grace-period`: seconds without kubelet heartbeats before a node is
    /// NotReady and tainted unreachable.
    #[serde(skip_serializing_if = "is_default_node_monitor_grace_s")]
    pub node_monitor_grace_s: f64,
    /// `tolerationSeconds` of the `node.kubernetes.io/unreachable` taint (the
    /// DefaultTolerationSeconds admission plugin's 300): seconds a NotReady node's pods stay
    /// before the taint manager evicts them.
    #[serde(skip_serializing_if = "is_default_toleration_s")]
    pub toleration_s: f64,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nodes: 4,
            node_capacity: 50,
            image_pull_ms: 2_000,
            image_pull_transient_failure_rate: 0.0,
            image_pull_permanent_failure_rate: 0.0,
            task_startup_ms: 3_000,
            oom_kill_rate: 0.0,
            admission_rejection_rate: 0.0,
            kubernetes_minor: 31,
            node_monitor_grace_s: 40.0,
            toleration_s: 300.0,
        }
    }
}

/// A fault at a given time. Times are seconds of simulated time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Cordon a node and evict its pods through the Eviction API.
    DrainNode {
        /// When.
        at_s: f64,
        /// Node index (0-based).
        node: u32,
    },
    /// Delete `pods` worker pods gracefully at once (SIGTERM), chosen from the seed.
    SigtermStorm {
        /// When.
        at_s: f64,
        /// How many pods.
        pods: u32,
    },
    /// A node stops (its VM crashed or lost the network): its kubelet stops reporting and its
    /// task processes die. After `cluster.node_monitor_grace_s` the node is NotReady and tainted
    /// `node.kubernetes.io/unreachable`; after `cluster.toleration_s` more the taint manager
    /// evicts its pods (`DisruptionTarget` `DeletionByTaintManager`, then a deletion that no
    /// kubelet confirms: the pods stay Terminating). After `duration_s` the node comes back
    /// (`returns`: its kubelet finishes what was asked) or its Node object is deleted and pod GC
    /// force-deletes its pods (`DeletionByPodGC`); a replacement node then joins, empty.
    NodeLoss {
        /// When.
        at_s: f64,
        /// Node index.
        node: u32,
        /// How long the node stays lost.
        #[serde(
            default = "default_node_loss_s",
            skip_serializing_if = "is_default_node_loss_s"
        )]
        duration_s: f64,
        /// The node comes back (true) or its Node object is deleted (false, the default).
        #[serde(default, skip_serializing_if = "is_false")]
        returns: bool,
    },
    /// The scheduler preempts `pods` pending or running worker pods.
    Preempt {
        /// When.
        at_s: f64,
        /// How many pods.
        pods: u32,
    },
    /// A scheduler process dies; a new one (new id) starts after `restart_after_s`.
    CrashScheduler {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// Delay before the replacement starts.
        restart_after_s: f64,
    },
    /// A scheduler's loop stops while its process lives (memory pressure, a GC pause, a slow
    /// disk). Its progress-based health endpoint turns unhealthy and the liveness probe restarts
    /// it, unless the stall ends first (`duration_s`): then it resumes with the state it had,
    /// possibly after its peers judged it dead and adopted its work.
    StallScheduler {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// How long the loop stays stuck; without it, until the probe restarts the scheduler.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
    },
    /// A scheduler loses the API server for a while (requests time out, its watch is lost).
    Partition {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// For how long.
        duration_s: f64,
    },
    /// A scheduler's watch ends with 410 Gone.
    WatchExpiry {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
    },
    /// A scheduler's clock is off by `offset_ms` from then on (negative: behind), as a clock
    /// that was never synchronised. Same mechanism as `clock_step`.
    ClockSkew {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// Offset added to its clock.
        offset_ms: i64,
    },
    /// A scheduler's host clock steps by `offset_ms` mid-run (an NTP step, a VM migration):
    /// forward (positive) or back (negative). The executor is driven with the stepped clock.
    ClockStep {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// The step.
        offset_ms: i64,
    },
    /// The metadata DB is unreachable for a while.
    DbOutage {
        /// When.
        at_s: f64,
        /// For how long.
        duration_s: f64,
    },
    /// The API server answers `code` to a fraction of requests for a while.
    ApiErrors {
        /// When.
        at_s: f64,
        /// For how long.
        duration_s: f64,
        /// HTTP status: 429, 500, 503…
        code: u16,
        /// Fraction of requests affected.
        rate: f64,
    },
}

impl Fault {
    /// The fault's kind, as scenario files name it (`node_loss`, `clock_step`, …).
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::DrainNode { .. } => "drain_node",
            Self::SigtermStorm { .. } => "sigterm_storm",
            Self::NodeLoss { .. } => "node_loss",
            Self::Preempt { .. } => "preempt",
            Self::CrashScheduler { .. } => "crash_scheduler",
            Self::StallScheduler { .. } => "stall_scheduler",
            Self::Partition { .. } => "partition",
            Self::WatchExpiry { .. } => "watch_expiry",
            Self::ClockSkew { .. } => "clock_skew",
            Self::ClockStep { .. } => "clock_step",
            Self::DbOutage { .. } => "db_outage",
            Self::ApiErrors { .. } => "api_errors",
        }
    }

    /// When the fault starts.
    #[must_use]
    pub fn at_s(&self) -> f64 {
        match self {
            Self::DrainNode { at_s, .. }
            | Self::SigtermStorm { at_s, .. }
            | Self::NodeLoss { at_s, .. }
            | Self::Preempt { at_s, .. }
            | Self::CrashScheduler { at_s, .. }
            | Self::StallScheduler { at_s, .. }
            | Self::Partition { at_s, .. }
            | Self::WatchExpiry { at_s, .. }
            | Self::ClockSkew { at_s, .. }
            | Self::ClockStep { at_s, .. }
            | Self::DbOutage { at_s, .. }
            | Self::ApiErrors { at_s, .. } => *at_s,
        }
    }
}

fn default_node_loss_s() -> f64 {
    600.0
}

// Fields added after traces were first written are left out of a file when they hold their
// default, so older traces and scenario files still read (and replay) the same.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_node_loss_s(s: &f64) -> bool {
    *s == default_node_loss_s()
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_kubernetes_minor(m: &u32) -> bool {
    *m == Cluster::default().kubernetes_minor
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_node_monitor_grace_s(s: &f64) -> bool {
    *s == Cluster::default().node_monitor_grace_s
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_toleration_s(s: &f64) -> bool {
    *s == Cluster::default().toleration_s
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_zombie_task_threshold_s(s: &f64) -> bool {
    *s == Scenario::default().zombie_task_threshold_s
}

/// Faults drawn from the seed, per hour of simulated time, before `heal_s`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomFaults {
    /// Graceful deletions of single pods.
    pub sigterms_per_hour: f64,
    /// Watch expiries (410) of a random scheduler.
    pub watch_expiries_per_hour: f64,
    /// Preemptions of single pods.
    pub preemptions_per_hour: f64,
}

/// What the invariants expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectations {
    /// Pre-start failures a try may absorb without costing a user retry. `no_retry_for_prestart_failure`
    /// fires when a retry is consumed by such a failure before this many requeues.
    pub prestart_budget: u32,
    /// Seconds after `max(duration_s, heal_s)` by which every task must be terminal
    /// (`no_lost_task`); the run ends then.
    pub lost_task_bound_s: f64,
}

impl Default for Expectations {
    fn default() -> Self {
        Self {
            prestart_budget: 1,
            lost_task_bound_s: 1_800.0,
        }
    }
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Short name (the file name without extension, for shipped scenarios).
    pub name: String,
    /// One line on what it shows.
    pub description: String,
    /// Master seed (overridden by `--seed`).
    pub seed: u64,
    /// Seconds over which tasks arrive.
    pub duration_s: f64,
    /// No new fault starts after this time.
    pub heal_s: f64,
    /// Schedulers (each hosts one executor).
    pub schedulers: u32,
    /// Scheduler loop period.
    pub scheduler_loop_ms: u64,
    /// Scheduler heartbeat period (`scheduler_heartbeat_sec`).
    pub heartbeat_ms: u64,
    /// Tries one scheduler's executor runs at once (Airflow's `[core] parallelism`).
    pub parallelism: u32,
    /// Airflow's `scheduler_zombie_task_threshold` (`task_instance_heartbeat_timeout` in
    /// Airflow 3): a RUNNING task instance whose task process has sent no heartbeat for this
    /// many seconds is failed by the scheduler (a user retry, if any is left).
    #[serde(skip_serializing_if = "is_default_zombie_task_threshold_s")]
    pub zombie_task_threshold_s: f64,
    /// The policy preset (`podwarden-sim list` shows them).
    pub policy: String,
    /// Executor configuration (podwarden / Airflow options) on top of the preset.
    pub config: Config,
    /// Load.
    pub load: Load,
    /// Nodes and kubelets.
    pub cluster: Cluster,
    /// Latencies.
    pub latency: Latency,
    /// Scheduled faults.
    pub faults: Vec<Fault>,
    /// Random faults.
    pub random_faults: RandomFaults,
    /// What the invariants expect.
    pub expect: Expectations,
    /// The file this scenario was loaded from (set by [`Scenario::load`]), for reproduction
    /// commands.
    #[serde(skip)]
    pub source: Option<String>,
    /// Code of your own its worlds run with (a policy named by `policy`, invariants); never
    /// read from or written to files.
    #[serde(skip)]
    pub extensions: crate::extensions::Extensions,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "unnamed".into(),
            description: String::new(),
            seed: 0,
            duration_s: 600.0,
            heal_s: 600.0,
            schedulers: 1,
            scheduler_loop_ms: 1_000,
            heartbeat_ms: 5_000,
            parallelism: 32,
            zombie_task_threshold_s: 300.0,
            policy: "default".into(),
            config: Config::default(),
            load: Load::default(),
            cluster: Cluster::default(),
            latency: Latency::default(),
            faults: Vec::new(),
            random_faults: RandomFaults::default(),
            expect: Expectations::default(),
            source: None,
            extensions: crate::extensions::Extensions::default(),
        }
    }
}

/// The policy presets `--policy` accepts.
pub const POLICIES: [&str; 6] = [
    "default",
    "airflow",
    "legacy-adoption",
    "legacy-dedupe",
    "no-requeue",
    "timestamp-liveness",
];

/// Applies a policy preset to a configuration: `default` is podwarden's; the others switch one
/// (or, for `airflow`, every) decision back to Airflow's behaviour.
///
/// # Errors
/// [`ScenarioError::UnknownPolicy`].
pub fn apply_policy(name: &str, mut config: Config) -> Result<Config, ScenarioError> {
    use podwarden_core::adoption::AdoptionScope;
    use podwarden_core::liveness::LivenessRule;
    use podwarden_core::requeue::RequeueDedupe;
    match name {
        "default" => {}
        "legacy-adoption" => config.adoption_scope = AdoptionScope::AllOthers,
        "legacy-dedupe" => {
            config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
            config.label_kept_failed_pods_done = false;
        }
        "no-requeue" => config.pod_launch_failure_retries = 0,
        "timestamp-liveness" => config.scheduler_liveness_rule = LivenessRule::WrittenTimestamp,
        "airflow" => {
            config.adoption_scope = AdoptionScope::AllOthers;
            config.adoption_without_heartbeats =
                podwarden_core::adoption::AdoptionFallback::ExcludeSelf;
            config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
            config.pod_launch_failure_db_retry_timeout = 0.0;
            config.task_publish_retry_timeout = 0.0;
            config.adopt_leftover_pods = false;
            config.delete_live_failed_pods = false;
            config.fence_reports_after_stall = false;
            config.label_kept_failed_pods_done = false;
            config.scheduler_liveness_rule = LivenessRule::WrittenTimestamp;
        }
        other => return Err(ScenarioError::UnknownPolicy(other.to_string())),
    }
    Ok(config)
}

impl Scenario {
    /// The configuration its executors run with: `config` under the policy's preset (a custom
    /// policy's preset, when `policy` names the one in `extensions`).
    ///
    /// # Errors
    /// [`ScenarioError::UnknownPolicy`].
    pub fn executor_config(&self) -> Result<Config, ScenarioError> {
        let (preset, _) = self.extensions.resolve(&self.policy);
        apply_policy(preset, self.config.clone())
    }

    /// Reads a scenario file (TOML, or JSON if the name ends in `.json`).
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file and what is wrong.
    pub fn load(path: &str) -> Result<Self, ScenarioError> {
        Self::load_with(path, |_| {})
    }

    /// Reads a scenario file like [`Scenario::load`], letting `attach` change it before it is
    /// validated: to add code of your own to its [`Scenario::extensions`] (a file can name a
    /// policy of yours, which only your code makes valid) or override its policy.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file and what is wrong.
    pub fn load_with(path: &str, attach: impl FnOnce(&mut Self)) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.into(),
            source,
        })?;
        let parsed: Self = if path.ends_with(".json") {
            serde_json::from_str(&text).map_err(|e| ScenarioError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| ScenarioError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        let mut scenario = Self {
            source: Some(path.to_string()),
            ..parsed
        };
        attach(&mut scenario);
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every field's range, the fault indices and the embedded executor configuration.
    /// The ranges are in [`limits`] and in `docs/scenarios.md`.
    ///
    /// # Errors
    /// [`ScenarioError::OutOfRange`] naming the first field out of range (with its position,
    /// e.g. `faults[1].duration_s`) and its allowed range; [`ScenarioError::UnknownPolicy`];
    /// [`ScenarioError::Invalid`] for an invalid `[config]` or a policy of your own named like a
    /// preset.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        use limits::{
            HEARTBEAT_MS, KUBELET_MS, KUBERNETES_MINOR, LATENCY_MS, LOOP_MS, MAX_NODES,
            MAX_NODE_CAPACITY, MAX_OFFSET_MS, MAX_PARALLELISM, MAX_PRESTART_BUDGET,
            MAX_RANDOM_FAULTS, MAX_RANDOM_RATE, MAX_RETRIES, MAX_SCHEDULERS, MAX_SPAN_S,
            MAX_STORM_PODS, MAX_TASKS,
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
        for (i, f) in self.faults.iter().enumerate() {
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

/// The ranges [`Scenario::validate`] enforces (`docs/scenarios.md` lists them with their
/// reasons). Every span of simulated time is at most [`MAX_SPAN_S`](limits::MAX_SPAN_S), which
/// keeps every time the world computes far inside `u64` milliseconds: a run ends by 60 days,
/// and a fault, which starts by `heal_s`, ends by then too.
pub mod limits {
    use std::ops::RangeInclusive;

    /// Longest span of simulated time any `_s` field may hold: 30 days, in seconds.
    pub const MAX_SPAN_S: f64 = 2_592_000.0;
    /// Largest clock offset (`clock_skew`, `clock_step`), either way: 30 days, in milliseconds.
    pub const MAX_OFFSET_MS: i64 = 2_592_000_000;
    /// Most schedulers.
    pub const MAX_SCHEDULERS: u32 = 16;
    /// Most nodes: Kubernetes' documented scalability limit (5,000 nodes).
    pub const MAX_NODES: u32 = 5_000;
    /// Most pods per node: far above any kubelet's `maxPods` (110 by default), so a few nodes can
    /// stand for a large cluster.
    pub const MAX_NODE_CAPACITY: u32 = 10_000;
    /// Most task instances: twice the million-task scenario; every task instance is allocated
    /// when the world is built.
    pub const MAX_TASKS: u32 = 2_000_000;
    /// Most tries one executor tracks: more than the most task instances means nothing.
    pub const MAX_PARALLELISM: u32 = MAX_TASKS;
    /// Most user retries per task instance.
    pub const MAX_RETRIES: u32 = 1_000;
    /// Largest `expect.prestart_budget`.
    pub const MAX_PRESTART_BUDGET: u32 = 1_000;
    /// Most pods one `sigterm_storm` or `preempt` names.
    pub const MAX_STORM_PODS: u32 = MAX_TASKS;
    /// Scheduler loop period, milliseconds: no real loop turns faster than 10 ms (smaller values
    /// only make runs slow), and a loop slower than an hour is a stall (`stall_scheduler`).
    pub const LOOP_MS: RangeInclusive<u64> = 10..=3_600_000;
    /// Heartbeat period, milliseconds (up to an hour).
    pub const HEARTBEAT_MS: RangeInclusive<u64> = 1..=3_600_000;
    /// One-way latencies (`latency.*_ms`), milliseconds: above a minute it is an outage, which
    /// the `partition` and `db_outage` faults model.
    pub const LATENCY_MS: RangeInclusive<u64> = 0..=60_000;
    /// `cluster.image_pull_ms` and `cluster.task_startup_ms`, milliseconds (up to an hour).
    pub const KUBELET_MS: RangeInclusive<u64> = 0..=3_600_000;
    /// Kubernetes minor versions (1.x) the model knows how to behave as.
    pub const KUBERNETES_MINOR: RangeInclusive<u32> = 20..=40;
    /// Highest random-fault rate, per hour.
    pub const MAX_RANDOM_RATE: f64 = 100_000.0;
    /// Most random faults of one kind in one run (rate × heal hours), all drawn when the world is
    /// built.
    pub const MAX_RANDOM_FAULTS: f64 = 1_000_000.0;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scenario_with_faults_and_rejects_typos() {
        let s: Scenario = toml::from_str(
            r#"
            name = "x"
            schedulers = 3
            [load]
            tasks = 10
            [config]
            pod_launch_failure_retries = 2
            [[faults]]
            kind = "drain_node"
            at_s = 60
            node = 1
            [[faults]]
            kind = "crash_scheduler"
            at_s = 30
            scheduler = 0
            restart_after_s = 10
            "#,
        )
        .unwrap();
        s.validate().unwrap();
        assert_eq!(s.faults.len(), 2);
        assert_eq!(s.config.pod_launch_failure_retries, 2);
        assert!(toml::from_str::<Scenario>("schedulerz = 3").is_err());
        assert!(toml::from_str::<Scenario>("[[faults]]\nkind = \"meteor\"\nat_s = 1").is_err());
        let bad = Scenario {
            schedulers: 0,
            ..Scenario::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ScenarioError::OutOfRange { .. })
        ));
        let bad = Scenario {
            policy: "yolo".into(),
            ..Scenario::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ScenarioError::UnknownPolicy(_))
        ));
    }

    /// `(TOML, field, allowed)`: each hostile value is refused, naming the field with its
    /// position and the allowed range.
    const HOSTILE: &[(&str, &str, &str)] = &[
        ("schedulers = 17", "schedulers", "1..=16"),
        ("[cluster]\nnodes = 0", "cluster.nodes", "1..=5000"),
        ("[cluster]\nnodes = 4294967295", "cluster.nodes", "1..=5000"),
        ("[cluster]\nnode_capacity = 100000", "cluster.node_capacity", "1..=10000"),
        ("[load]\ntasks = 4294967295", "load.tasks", "0..=2000000"),
        ("[load]\nretries = 4294967295", "load.retries", "0..=1000"),
        ("[load]\nruntime_min_s = 0", "load.runtime_min_s", "above 0"),
        ("[load]\nruntime_max_s = nan", "load.runtime_max_s", "30 days"),
        ("[load]\nfailure_rate = nan", "load.failure_rate", "0 to 1"),
        ("duration_s = inf", "duration_s", "30 days"),
        ("heal_s = 1e300", "heal_s", "0 to 2592000"),
        ("zombie_task_threshold_s = -1", "zombie_task_threshold_s", "above 0"),
        ("scheduler_loop_ms = 0", "scheduler_loop_ms", "10..=3600000"),
        ("heartbeat_ms = 0", "heartbeat_ms", "1..=3600000"),
        ("parallelism = 0", "parallelism", "1..=2000000"),
        ("[cluster]\nimage_pull_ms = 9223372036854775807", "cluster.image_pull_ms", "0..=3600000"),
        ("[cluster]\ntask_startup_ms = 3600001", "cluster.task_startup_ms", "0..=3600000"),
        ("[cluster]\nkubernetes_minor = 19", "cluster.kubernetes_minor", "20..=40"),
        ("[cluster]\nnode_monitor_grace_s = -1", "cluster.node_monitor_grace_s", "0 to 2592000"),
        ("[cluster]\ntoleration_s = 1e17", "cluster.toleration_s", "0 to 2592000"),
        ("[latency]\napi_ms = 9223372036854775807", "latency.api_ms", "0..=60000"),
        ("[latency]\nwatch_ms = 60001", "latency.watch_ms", "0..=60000"),
        ("[latency]\ndb_ms = 100000", "latency.db_ms", "0..=60000"),
        ("[expect]\nprestart_budget = 4294967295", "expect.prestart_budget", "0..=1000"),
        ("[expect]\nlost_task_bound_s = 1e17", "expect.lost_task_bound_s", "30 days"),
        ("[random_faults]\nsigterms_per_hour = inf", "random_faults.sigterms_per_hour", "0 to 100000"),
        (
            "heal_s = 2592000\n[random_faults]\npreemptions_per_hour = 100000",
            "random_faults.preemptions_per_hour",
            "at most 1000000 random faults",
        ),
        (
            "[config]\norphaned_tasks_check_interval = 1e300",
            "config.orphaned_tasks_check_interval",
            "30 days",
        ),
        (
            "[[faults]]\nkind = \"partition\"\nat_s = 10\nscheduler = 0\nduration_s = 1e17",
            "faults[0].duration_s",
            "0 to 2592000 (30 days)",
        ),
        (
            "[[faults]]\nkind = \"db_outage\"\nat_s = 10\nduration_s = 1\n[[faults]]\nkind = \"db_outage\"\nat_s = 10\nduration_s = -1",
            "faults[1].duration_s",
            "0 to 2592000",
        ),
        (
            "schedulers = 3\n[[faults]]\nkind = \"drain_node\"\nat_s = 1\nnode = 0\n[[faults]]\nkind = \"watch_expiry\"\nat_s = 1\nscheduler = 0\n[[faults]]\nkind = \"crash_scheduler\"\nat_s = 10\nscheduler = 5\nrestart_after_s = 1",
            "faults[2].scheduler is 5",
            "0..=2 (the scenario has 3 schedulers)",
        ),
        (
            "[[faults]]\nkind = \"drain_node\"\nat_s = 1\nnode = 4",
            "faults[0].node is 4",
            "0..=3 (the scenario has 4 nodes)",
        ),
        (
            "[[faults]]\nkind = \"node_loss\"\nat_s = 1\nnode = 0\nduration_s = inf\nreturns = true",
            "faults[0].duration_s",
            "30 days",
        ),
        (
            "[[faults]]\nkind = \"stall_scheduler\"\nat_s = 1\nscheduler = 0\nduration_s = -5",
            "faults[0].duration_s",
            "0 to 2592000",
        ),
        (
            "[[faults]]\nkind = \"crash_scheduler\"\nat_s = 1\nscheduler = 0\nrestart_after_s = 1e17",
            "faults[0].restart_after_s",
            "30 days",
        ),
        (
            "[[faults]]\nkind = \"clock_skew\"\nat_s = 1\nscheduler = 0\noffset_ms = -9223372036854775808",
            "faults[0].offset_ms is -9223372036854775808",
            "-2592000000..=2592000000",
        ),
        (
            "[[faults]]\nkind = \"clock_step\"\nat_s = 1\nscheduler = 0\noffset_ms = 2592000001",
            "faults[0].offset_ms",
            "-2592000000..=2592000000",
        ),
        (
            "[[faults]]\nkind = \"sigterm_storm\"\nat_s = 1\npods = 0",
            "faults[0].pods",
            "1..=2000000",
        ),
        (
            "[[faults]]\nkind = \"preempt\"\nat_s = 1\npods = 4294967295",
            "faults[0].pods",
            "1..=2000000",
        ),
        (
            "[[faults]]\nkind = \"api_errors\"\nat_s = 1\nduration_s = 10\ncode = 42\nrate = 0.5",
            "faults[0].code is 42",
            "100..=599",
        ),
        (
            "[[faults]]\nkind = \"api_errors\"\nat_s = 1\nduration_s = 10\ncode = 503\nrate = 1.5",
            "faults[0].rate",
            "0 to 1",
        ),
        (
            "[[faults]]\nkind = \"watch_expiry\"\nat_s = 700\nscheduler = 0",
            "faults[0].at_s is 700",
            "0 to heal_s (600)",
        ),
    ];

    #[test]
    fn every_hostile_value_is_refused_naming_the_field_and_its_range() {
        for (text, field, allowed) in HOSTILE {
            let s: Scenario =
                toml::from_str(text).unwrap_or_else(|e| panic!("{text:?} parses: {e}"));
            let err = s.validate().expect_err(text);
            let message = err.to_string();
            assert!(
                matches!(err, ScenarioError::OutOfRange { .. }),
                "{text:?}: {message}"
            );
            assert!(
                message.contains(field) && message.contains(allowed),
                "{text:?}: {message} should name {field:?} and {allowed:?}"
            );
        }
    }

    #[test]
    fn the_edges_of_every_range_are_allowed() {
        let s: Scenario = toml::from_str(
            r#"
            schedulers = 16
            duration_s = 2592000
            heal_s = 2592000
            scheduler_loop_ms = 10
            heartbeat_ms = 3600000
            parallelism = 2000000
            zombie_task_threshold_s = 2592000
            [load]
            tasks = 0
            retries = 1000
            runtime_min_s = 2592000
            runtime_max_s = 2592000
            [cluster]
            nodes = 5000
            node_capacity = 10000
            image_pull_ms = 3600000
            task_startup_ms = 0
            kubernetes_minor = 40
            node_monitor_grace_s = 0
            toleration_s = 2592000
            [latency]
            api_ms = 60000
            watch_ms = 0
            db_ms = 60000
            [random_faults]
            sigterms_per_hour = 1388.8
            [expect]
            prestart_budget = 1000
            lost_task_bound_s = 2592000
            [[faults]]
            kind = "clock_skew"
            at_s = 2592000
            scheduler = 15
            offset_ms = -2592000000
            [[faults]]
            kind = "node_loss"
            at_s = 0
            node = 4999
            duration_s = 2592000
            [[faults]]
            kind = "api_errors"
            at_s = 0
            duration_s = 0
            code = 599
            rate = 1
            "#,
        )
        .unwrap();
        s.validate().unwrap();
    }

    #[test]
    fn every_shipped_and_regression_scenario_is_within_the_ranges() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for dir in ["scenarios", "tests/regressions"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    Scenario::load(&path.display().to_string())
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    n += 1;
                }
            }
        }
        assert!(n >= 13, "{n} scenarios");
    }

    #[test]
    fn presets_switch_the_decisions_back_to_airflows() {
        use podwarden_core::adoption::AdoptionScope;
        for p in POLICIES {
            apply_policy(p, Config::default()).unwrap();
        }
        assert_eq!(
            apply_policy("legacy-adoption", Config::default())
                .unwrap()
                .adoption_scope,
            AdoptionScope::AllOthers
        );
        assert_eq!(
            apply_policy("no-requeue", Config::default())
                .unwrap()
                .pod_launch_failure_retries,
            0
        );
    }
}
