//! A scenario's data: the world to build, its load, its faults, the policy under test and what
//! the run must show, as a scenario file spells them (serde, with defaults).

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
    /// Problems of a scenario file, each at its line and column where it can be told (every bad
    /// fault, not only the first), with what to change where it can be said.
    #[error("{}", super::diagnostics::Listed { path, problems })]
    InFile {
        /// The file.
        path: String,
        /// What is wrong, in file order of the checks.
        problems: Vec<super::diagnostics::Problem>,
    },
    /// Several problems [`Scenario::validate`] found (every bad fault, not only the first).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Self>),
    /// A scenario that is neither a file nor a shipped scenario's name.
    #[error(
        "cannot read {path}: {source}; it is not a shipped scenario's name either ({})",
        super::shipped::names_hint(path)
    )]
    NotFound {
        /// What was given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An unknown policy preset.
    #[error("unknown policy {0:?} (presets: {known}; a policy of your own is known only to the program that registers it){renamed}", known = POLICIES.join(", "), renamed = if .0 == RENAMED_AIRFLOW_PRESET { RENAMED_AIRFLOW_NOTE } else { "" })]
    UnknownPolicy(String),
}

/// The preset name the release presets replaced.
pub(crate) const RENAMED_AIRFLOW_PRESET: &str = "airflow";
/// What a scenario or command line that still names it is told.
const RENAMED_AIRFLOW_NOTE: &str = ". The preset `airflow` was renamed by the release it \
     reproduces: `airflow-10.25` (today's provider: dead-only adoption, one requeue of a pod \
     that failed before start) or `airflow-10.15` (adoption from every other scheduler, no \
     requeue); the old `airflow` had 10.15's adoption with 10.25's requeue";

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
    /// Namespaces the task instances' pod templates name, in turn (task instance `i` gets
    /// `namespaces[i % len]`); each must be watched by the executor's configuration
    /// (`[config] multi_namespace_mode`, `multi_namespace_mode_namespace_list`). Empty (the
    /// default): templates name none, and pods go to the configuration's `namespace`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
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
            namespaces: Vec::new(),
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
    #[serde(alias = "drain-node")]
    DrainNode {
        /// When.
        at_s: f64,
        /// Node index (0-based).
        node: u32,
    },
    /// Delete `pods` worker pods gracefully at once (SIGTERM), chosen from the seed.
    #[serde(alias = "sigterm-storm")]
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
    #[serde(alias = "node-loss")]
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
    #[serde(alias = "crash-scheduler")]
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
    #[serde(alias = "stall-scheduler")]
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
    #[serde(alias = "watch-expiry")]
    WatchExpiry {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
    },
    /// A scheduler's clock is off by `offset_ms` from then on (negative: behind), as a clock
    /// that was never synchronised. Same mechanism as `clock_step`.
    #[serde(alias = "clock-skew")]
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
    #[serde(alias = "clock-step")]
    ClockStep {
        /// When.
        at_s: f64,
        /// Scheduler index.
        scheduler: u32,
        /// The step.
        offset_ms: i64,
    },
    /// The metadata DB is unreachable for a while.
    #[serde(alias = "db-outage")]
    DbOutage {
        /// When.
        at_s: f64,
        /// For how long.
        duration_s: f64,
    },
    /// The API server answers `code` to a fraction of requests for a while.
    #[serde(alias = "api-errors")]
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

/// The policy presets `--policy` accepts. `airflow-10.25` and `airflow-10.15` are the core's
/// release presets ([`podwarden_core::config::Preset`]).
pub const POLICIES: [&str; 7] = [
    "default",
    "airflow-10.25",
    "airflow-10.15",
    "legacy-adoption",
    "legacy-dedupe",
    "no-requeue",
    "timestamp-liveness",
];
