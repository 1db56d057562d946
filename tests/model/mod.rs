//! The model-based test's parts, split as in Firezone's `tunnel/src/tests/`:
//!
//! - [`reference`]: the reference model of the decision rules, written to be read;
//! - [`sut`]: the system under test, the real `Executor` driven through `tests/support`'s
//!   harness, with the cluster both look at;
//! - [`transition`]: the generated step type and how one step applies to both, then compares;
//! - [`strategies`]: the proptest generators of steps.
//!
//! `tests/model_based.rs` holds the properties and their negative controls. This module holds
//! what both sides share: the fixed configuration the model describes and the decisions they
//! are compared on.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;

use podwarden::Config;

pub mod reference;
pub mod strategies;
pub mod sut;
pub mod transition;

/// This executor's scheduler id.
pub const ME: &str = "5";
/// The requeue budget (`pod_launch_failure_retries`).
pub const REQUEUE_BUDGET: u32 = 2;
/// `task_publish_max_retries`.
pub const PUBLISH_RETRIES: u32 = 1;
/// Seconds between completed-pod adoptions.
pub const ADOPTION_INTERVAL_MS: u64 = 10_000;
/// `scheduler_health_check_threshold`.
pub const LIVENESS_THRESHOLD_MS: u64 = 30_000;
/// `pod_launch_failure_db_retry_timeout` (the default).
pub const DB_RETRY_TIMEOUT_MS: u64 = 600_000;

/// The configuration the model describes: the defaults, with a budget of 2 requeues, one
/// publish retry counted (Airflow's rule: the model has no clock for the timed one, which
/// `tests/completion.rs` covers), a 10 s adoption interval, and room to create every queued try
/// at once.
pub fn model_config() -> Config {
    Config {
        pod_launch_failure_retries: i64::from(REQUEUE_BUDGET),
        task_publish_max_retries: i64::from(PUBLISH_RETRIES),
        task_publish_retry_timeout: 0.0,
        // Not modelled (tests/decisions.rs covers them): the leftover-pod sweep, and the report
        // fence after a stall (the generator's heartbeats come at random, not every loop).
        adopt_leftover_pods: false,
        fence_reports_after_stall: false,
        orphaned_tasks_check_interval: ADOPTION_INTERVAL_MS as f64 / 1000.0,
        scheduler_health_check_threshold: LIVENESS_THRESHOLD_MS as f64 / 1000.0,
        worker_pods_creation_batch_size: 1_000,
        // Creates sent together, not one at a time after each answer (tests/airflow_ported
        // covers the sequential rule).
        async_pod_creation: true,
        api_qps: 1_000_000,
        api_burst: 1_000_000,
        ..Config::default()
    }
}

/// What the executor decided, reduced to what the rules predict. Pod names are the executor's
/// own (hashed); the model learns them from the creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// Create a pod for try `task`.
    Create { task: usize },
    /// Delete pod `pod`.
    Delete { pod: String },
    /// Label pod `pod` `airflow_executor_done=True`.
    MarkDone { pod: String },
    /// Ask the DB whether try `task` is still QUEUED.
    Ask { task: usize },
    /// Requeue try `task` transparently (its `attempt`-th requeue) for the failure of `pod`.
    Requeue {
        task: usize,
        attempt: u32,
        pod: String,
    },
    /// Report try `task` ended.
    Report { task: usize, succeeded: bool },
    /// List completed pods of every scheduler but these.
    AdoptCompleted { excluded: BTreeSet<String> },
}

/// Tries in play.
pub const TASKS: usize = 3;
/// Peer schedulers in heartbeat snapshots (this one is "5").
pub const PEERS: [&str; 2] = ["7", "9"];
