//! Questions to the metadata DB and their answers.
//!
//! The core never reads the DB itself: it emits a query command and waits for
//! [`crate::Input::DbResult`] with the same id. No answer yet means no decision yet; an
//! unavailable DB never leads to a blind decision (a requeue falls back to failing normally, a
//! zombie sweep deletes nothing).

use serde::{Deserialize, Serialize};

use crate::key::TaskKey;

/// A task instance's state, as Airflow stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for dependencies.
    Scheduled,
    /// Handed to an executor; the task process has not started yet.
    Queued,
    /// The task process started and said so.
    Running,
    /// Being restarted.
    Restarting,
    /// Suspended on a trigger.
    Deferred,
    /// Finished successfully.
    Success,
    /// Failed for good.
    Failed,
    /// Failed; a retry will follow.
    UpForRetry,
    /// Rescheduled by a sensor.
    UpForReschedule,
    /// Skipped.
    Skipped,
    /// An upstream task failed.
    UpstreamFailed,
    /// Removed from the DAG.
    Removed,
}

impl TaskState {
    /// Whether the task instance has not reached a final state (Airflow's "unfinished" set):
    /// its pods may legitimately run.
    #[must_use]
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            Self::Scheduled
                | Self::Queued
                | Self::Running
                | Self::Restarting
                | Self::Deferred
                | Self::UpForRetry
                | Self::UpForReschedule
        )
    }
}

/// The answer to a DB query command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DbOutcome {
    /// Answer to [`crate::command::DbQuery::QueryTaskStates`]: the state of each asked try; a try
    /// missing from the list (or `None`) has no task instance row.
    TaskStates {
        /// `(try, state)` pairs.
        states: Vec<(TaskKey, Option<TaskState>)>,
    },
    /// Answer to [`crate::command::DbQuery::QueryUnfinishedTasks`]: every unfinished task instance,
    /// with its current try number.
    UnfinishedTasks {
        /// The task instances' keys (current try).
        tasks: Vec<TaskKey>,
    },
    /// The DB could not be read.
    Unavailable {
        /// What the host saw.
        reason: String,
    },
}
