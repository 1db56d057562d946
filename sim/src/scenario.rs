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
    /// A value is out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
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
            config.pod_launch_failure_dedupe = RequeueDedupe::LastPod;
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

    /// Checks ranges and the embedded executor configuration.
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] or [`ScenarioError::UnknownPolicy`].
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.schedulers == 0 || self.schedulers > 16 {
            return bad(format!(
                "schedulers must be 1..=16, got {}",
                self.schedulers
            ));
        }
        if self.cluster.nodes == 0 || self.cluster.node_capacity == 0 {
            return bad("cluster needs at least one node with capacity".into());
        }
        if !(self.duration_s.is_finite()
            && self.duration_s > 0.0
            && self.duration_s <= 30.0 * 86_400.0)
        {
            return bad(format!(
                "duration_s must be in (0, 30 days], got {}",
                self.duration_s
            ));
        }
        if !(self.load.runtime_min_s > 0.0
            && self.load.runtime_min_s <= self.load.runtime_max_s
            && self.load.runtime_max_s <= 30.0 * 86_400.0)
        {
            return bad("load needs 0 < runtime_min_s <= runtime_max_s <= 30 days".into());
        }
        let r = &self.random_faults;
        for (name, rate) in [
            ("random_faults.sigterms_per_hour", r.sigterms_per_hour),
            (
                "random_faults.watch_expiries_per_hour",
                r.watch_expiries_per_hour,
            ),
            ("random_faults.preemptions_per_hour", r.preemptions_per_hour),
        ] {
            if !(rate.is_finite() && (0.0..=100_000.0).contains(&rate)) {
                return bad(format!("{name} must be between 0 and 100000, got {rate}"));
            }
        }
        if !(self.expect.lost_task_bound_s.is_finite() && self.expect.lost_task_bound_s >= 0.0) {
            return bad("expect.lost_task_bound_s must be >= 0".into());
        }
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
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} must be a probability, got {p}"));
            }
        }
        if self.scheduler_loop_ms == 0 || self.heartbeat_ms == 0 || self.parallelism == 0 {
            return bad("scheduler_loop_ms, heartbeat_ms and parallelism must be positive".into());
        }
        if !(self.heal_s.is_finite() && self.heal_s >= 0.0 && self.heal_s <= 30.0 * 86_400.0) {
            return bad(format!(
                "heal_s must be in [0, 30 days], got {}",
                self.heal_s
            ));
        }
        if self.expect.lost_task_bound_s > 30.0 * 86_400.0 {
            return bad("expect.lost_task_bound_s must be at most 30 days".into());
        }
        for f in &self.faults {
            if !(f.at_s().is_finite() && f.at_s() >= 0.0 && f.at_s() <= self.heal_s) {
                return bad(format!(
                    "a fault must start between 0 and heal_s ({} s): {f:?}",
                    self.heal_s
                ));
            }
            let finite = |x: f64| x.is_finite() && x >= 0.0;
            let ok = match f {
                Fault::CrashScheduler {
                    restart_after_s, ..
                } => finite(*restart_after_s),
                Fault::Partition { duration_s, .. } | Fault::DbOutage { duration_s, .. } => {
                    finite(*duration_s)
                }
                Fault::ApiErrors {
                    duration_s, rate, ..
                } => finite(*duration_s) && (0.0..=1.0).contains(rate),
                _ => true,
            };
            if !ok {
                return bad(format!(
                    "fault has a negative, infinite or out-of-range value: {f:?}"
                ));
            }
        }
        if let Some(mine) = self.extensions.policy() {
            if POLICIES.contains(&mine.name()) {
                return bad(format!(
                    "a policy of your own cannot take a preset's name ({:?})",
                    mine.name()
                ));
            }
        }
        self.executor_config()?
            .validate()
            .map_err(|e| ScenarioError::Invalid(format!("config: {e}")))
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
        assert!(matches!(bad.validate(), Err(ScenarioError::Invalid(_))));
        let bad = Scenario {
            policy: "yolo".into(),
            ..Scenario::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ScenarioError::UnknownPolicy(_))
        ));
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
