//! What the host tells the executor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adoption::OrphanTask;
use crate::command::{ApiOutcome, CommandId};
use crate::db::DbOutcome;
use crate::key::{KeyError, TaskKey};
use crate::liveness::{HeartbeatRecord, HeartbeatsUnavailable};
use crate::pod::{PodRef, WatchEvent};

/// The per-task part of a worker pod that the scheduler decides (Airflow's workload and
/// `executor_config`). Identity labels and annotations are added by the executor and win over
/// these: unlike Airflow, a template cannot overwrite `airflow-worker`, because a pod that
/// escapes its owner's selector is a leaked pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodTemplate {
    /// Image override; `None` uses the configured worker image, then the driver's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The task command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra labels (values must be valid label values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One input to [`crate::Executor::handle_input`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Input {
    /// The scheduler queued a task try on this executor (Airflow's `execute_async`).
    Submit {
        /// The try.
        key: TaskKey,
        /// What its pod runs.
        #[serde(default)]
        template: PodTemplate,
    },
    /// One event from the pod watch started by [`crate::CommandKind::WatchPods`].
    Watch {
        /// The event.
        event: WatchEvent,
    },
    /// The watch ended with 410 Gone (its resource version is too old), or the host lost it and
    /// cannot resume: the executor relists and reconciles.
    WatchExpired,
    /// The answer to an API command.
    ApiResult {
        /// The command answered.
        id: CommandId,
        /// Its outcome.
        outcome: ApiOutcome,
    },
    /// The answer to a DB query command.
    DbResult {
        /// The command answered.
        id: CommandId,
        /// Its outcome.
        outcome: DbOutcome,
    },
    /// A read of every scheduler job's heartbeat (send one per scheduler heartbeat, e.g. every
    /// `scheduler_heartbeat_sec`), or the read's failure.
    Heartbeats {
        /// The records, or why they could not be read.
        snapshot: Result<Vec<HeartbeatRecord>, HeartbeatsUnavailable>,
    },
    /// The scheduler hands over task instances queued by schedulers it found dead (Airflow's
    /// `try_adopt_task_instances`). Answered by a [`crate::CommandKind::OrphansResolved`] once
    /// every list and relabel is answered.
    AdoptOrphans {
        /// The task instances.
        tis: Vec<OrphanTask>,
    },
    /// The scheduler revokes a queued try (Airflow's `revoke_task`, used by the stuck-in-queued
    /// check): its pod is labelled revoked and deleted, and its bookkeeping freed; nothing is
    /// reported.
    Revoke {
        /// The try.
        key: TaskKey,
    },
}

/// Why an input was rejected. The executor's state is unchanged by a rejected input, except
/// that a watch event's resource version is still recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The try is already queued or running on this executor.
    #[error("task {0} is already tracked by this executor")]
    DuplicateTask(TaskKey),
    /// A template label value Kubernetes would reject.
    #[error("template label {key:?} has an invalid value {value:?}")]
    InvalidTemplateLabel {
        /// The label key.
        key: String,
        /// The rejected value.
        value: String,
    },
    /// An answer for a command this executor did not send, or already got an answer for.
    #[error("no command {0} is waiting for an answer")]
    UnknownCommand(CommandId),
    /// An answer of the wrong shape (a pod list for a delete, no list for a list, a DB answer
    /// for an API command or the reverse).
    #[error("command {id} expected {expected}, got another kind of answer")]
    UnexpectedOutcome {
        /// The command answered.
        id: CommandId,
        /// What it expected.
        expected: &'static str,
    },
    /// A watch event for a pod whose annotations do not name a task try. The event is
    /// otherwise ignored (Airflow's watcher would crash and replay it forever).
    #[error("pod {pod} does not identify a task try: {error}")]
    PodIdentity {
        /// The pod.
        pod: PodRef,
        /// What is wrong with its annotations.
        error: KeyError,
    },
}
