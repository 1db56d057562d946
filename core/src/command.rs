//! What the executor asks its host to do, and what the host answers.
//!
//! Every command carries a [`CommandId`]. Commands that call the API server (create, patch,
//! delete, list) must be answered exactly once with [`crate::Input::ApiResult`] carrying the
//! same id; a timeout or a lost reply is an answer too ([`ApiFailure::Timeout`]). The other
//! commands (watch, report) need no answer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::TaskKey;
use crate::pod::{PodRef, PodView};
use crate::reason::{AdmissionReason, DisruptionReason, ImagePullReason};
use crate::selector::{FieldSelector, LabelSelector};

/// Identifies a command; unique for the life of one executor, increasing in emission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The worker pod to create, reduced to what the executor decides. A driver merges it into its
/// pod template (image, resources, volumes); the identity fields here must win over the
/// template, or adoption and the watch selector break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodManifest {
    /// Namespace and name.
    pub pod: PodRef,
    /// Labels: the template's, then the executor's identity labels on top.
    pub labels: BTreeMap<String, String>,
    /// Annotations: the template's, then the task key on top.
    pub annotations: BTreeMap<String, String>,
    /// The `base` container's image; `None` keeps the driver's template image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The `base` container's args (the task command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The `base` container's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A condition the API server must check before applying a patch (a JSON-patch `test` or a
/// `metadata.resourceVersion` in a merge patch). It lets two adopters race safely: the loser
/// gets 409 Conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precondition {
    /// Apply only if the pod is still at this resource version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Apply only if this label still has this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<(String, String)>,
}

/// The terminal state reported to the scheduler for a task try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportedState {
    /// The try failed; the scheduler applies its retry policy.
    Failed,
    /// The pod exited 0. As in Airflow, the task's own final state (success, deferred, …) is
    /// what the task wrote to the metadata DB; the scheduler reads it there.
    Succeeded,
}

/// Why a pod failed before its task started, as far as the pod tells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause", content = "reason")]
#[non_exhaustive]
pub enum RequeueCause {
    /// Kubernetes marked the pod with a `DisruptionTarget` condition: `EvictionByEvictionAPI`
    /// (drain), `PreemptionByScheduler`, `DeletionByTaintManager` (node loss),
    /// `TerminationByKubelet` (node pressure, shutdown), `DeletionByPodGC`.
    Disruption(DisruptionReason),
    /// The image could not be pulled (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`, …).
    ImagePull(ImagePullReason),
    /// The kubelet rejected the pod at admission (`OutOfcpu`, `OutOfmemory`, `NodeAffinity`, …).
    AdmissionRejected(AdmissionReason),
    /// The pod was Pending longer than `worker_pods_pending_timeout`.
    PendingTimeout(String),
    /// The pod could not be created: a transient API error (timeout, lost connection, 429,
    /// 5xx, quota) outlasted `task_publish_max_retries`.
    PublishFailed(String),
    /// The main container never started, with no more specific cause.
    ContainerNeverStarted,
    /// Nothing more specific is known (the DB still says QUEUED).
    Unknown,
}

impl fmt::Display for RequeueCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disruption(r) => write!(f, "disruption {r}"),
            Self::ImagePull(r) => write!(f, "image pull {r}"),
            Self::AdmissionRejected(r) => write!(f, "admission rejected {r}"),
            Self::PendingTimeout(r) => write!(f, "pending timeout {r}"),
            Self::PublishFailed(r) => write!(f, "pod creation failed {r}"),
            Self::ContainerNeverStarted => f.write_str("container never started"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// What to do, grouped by who answers it: a Kubernetes API call is answered with
/// [`crate::Input::ApiResult`], a metadata DB query with [`crate::Input::DbResult`], and a notice
/// is not answered. A host routes on the group, and cannot mistake one kind of answer for another.
///
/// Written as one flat object (`{"command": "create_pod", ...}`): the group is not spelled out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandKind {
    /// Call the Kubernetes API. Answer: [`crate::Input::ApiResult`] with an [`ApiOutcome`].
    Api(ApiCall),
    /// Query the metadata DB. Answer: [`crate::Input::DbResult`] with a
    /// [`crate::db::DbOutcome`].
    Db(DbQuery),
    /// No answer: restart the watch, or tell the scheduler.
    Notice(Notice),
}

/// A Kubernetes API call. Every one must be answered exactly once with
/// [`crate::Input::ApiResult`]; a timeout or a lost reply is an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ApiCall {
    /// Create a worker pod. Answer: [`ApiOutcome::Ok`] or a failure.
    CreatePod {
        /// The pod.
        manifest: PodManifest,
    },
    /// Merge-patch labels onto a pod. Answer: [`ApiOutcome::Ok`] or a failure (404 if gone,
    /// 409 if the precondition no longer holds).
    PatchLabels {
        /// Which pod.
        pod: PodRef,
        /// Labels to set.
        labels: BTreeMap<String, String>,
        /// Checked by the API server before applying.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precondition: Option<Precondition>,
    },
    /// Delete a pod. Answer: [`ApiOutcome::Ok`] or a failure; 404 counts as success.
    DeletePod {
        /// Which pod.
        pod: PodRef,
        /// `gracePeriodSeconds`; `None` uses the pod's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_period_seconds: Option<u32>,
    },
    /// List pods. Answer: [`ApiOutcome::Listed`] or a failure.
    ListPods {
        /// Namespace to list in; `None` lists every namespace (`list_pod_for_all_namespaces`,
        /// `multi_namespace_mode` without a namespace list). Under `multi_namespace_mode` with
        /// a list, the executor sends one list per listed namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Label selector.
        label_selector: LabelSelector,
        /// Field selector, e.g. `status.phase!=Succeeded`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field_selector: Option<FieldSelector>,
    },
}

/// A metadata DB query. Every one must be answered exactly once with [`crate::Input::DbResult`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum DbQuery {
    /// Ask the metadata DB for the state of these tries. Answer: [`crate::Input::DbResult`]
    /// with [`crate::db::DbOutcome::TaskStates`] or `Unavailable`.
    QueryTaskStates {
        /// The tries.
        keys: Vec<TaskKey>,
    },
    /// Ask the metadata DB for every unfinished task instance (one query). Answer:
    /// [`crate::Input::DbResult`] with [`crate::db::DbOutcome::UnfinishedTasks`] or
    /// `Unavailable`.
    QueryUnfinishedTasks,
}

/// An instruction that needs no answer: the watch to (re)start, or news for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Notice {
    /// (Re)start the pod watch of `namespace` from this resource version, replacing any
    /// previous watch of the same `namespace`. No answer; if the watch later ends with 410
    /// Gone, send [`crate::Input::WatchExpired { namespace: None }`] naming it. The executor runs one watch per
    /// scope of [`crate::Config::watch_scopes`].
    WatchPods {
        /// Namespace to watch; `None` watches every namespace (`multi_namespace_mode` without a
        /// namespace list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Label selector.
        label_selector: LabelSelector,
        /// Resource version to start from (from the list that preceded it).
        resource_version: String,
    },
    /// A try's pod failed before the task started and the try is being launched again: no
    /// failure is reported and no user retry is consumed. A `CreatePod` for the same try
    /// follows. No answer.
    Requeue {
        /// The try.
        key: TaskKey,
        /// Which transparent requeue this is (1 for the first).
        attempt: u32,
        /// Why the pod failed.
        cause: RequeueCause,
        /// The pod whose failure this requeue answers (one requeue per failed pod, ever).
        failed_pod: PodRef,
    },
    /// The outcome of an [`crate::Input::AdoptOrphans`] hand-over (Airflow's return value of
    /// `try_adopt_task_instances`): the scheduler records `adopted` as queued by this scheduler
    /// and resets `reset` (a new try). No answer.
    OrphansResolved {
        /// Tries whose pods this executor now owns and tracks.
        adopted: Vec<TaskKey>,
        /// Tries to reset.
        reset: Vec<TaskKey>,
    },
    /// Tell the scheduler that a try ended (Airflow's `event_buffer` write). No answer.
    Report {
        /// The try.
        key: TaskKey,
        /// How it ended.
        state: ReportedState,
        /// Why, for failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl From<ApiCall> for CommandKind {
    fn from(call: ApiCall) -> Self {
        Self::Api(call)
    }
}

impl From<DbQuery> for CommandKind {
    fn from(query: DbQuery) -> Self {
        Self::Db(query)
    }
}

impl From<Notice> for CommandKind {
    fn from(notice: Notice) -> Self {
        Self::Notice(notice)
    }
}

impl CommandKind {
    /// Whether the host must answer this command: API commands with
    /// [`crate::Input::ApiResult`], DB queries with [`crate::Input::DbResult`].
    #[must_use]
    pub fn expects_reply(&self) -> bool {
        self.is_api_call() || self.is_db_query()
    }

    /// Whether this command calls the Kubernetes API (answered with [`crate::Input::ApiResult`]).
    #[must_use]
    pub fn is_api_call(&self) -> bool {
        matches!(self, Self::Api(_))
    }

    /// Whether this command queries the metadata DB (answered with [`crate::Input::DbResult`]).
    #[must_use]
    pub fn is_db_query(&self) -> bool {
        matches!(self, Self::Db(_))
    }

    /// The pod this command acts on, if it acts on exactly one existing pod.
    #[must_use]
    pub fn target_pod(&self) -> Option<&PodRef> {
        match self {
            Self::Api(ApiCall::PatchLabels { pod, .. } | ApiCall::DeletePod { pod, .. }) => {
                Some(pod)
            }
            Self::Api(ApiCall::CreatePod { manifest }) => Some(&manifest.pod),
            _ => None,
        }
    }
}

/// One instruction to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Quote it in the answer.
    pub id: CommandId,
    /// What to do.
    #[serde(flatten)]
    pub kind: CommandKind,
}

/// The answer to an API command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApiOutcome {
    /// Create, patch or delete succeeded.
    Ok,
    /// A list succeeded.
    Listed {
        /// The pods, with the same [`PodView`] fields as watch events.
        pods: Vec<PodView>,
        /// The list's resource version, to start the watch from.
        resource_version: String,
    },
    /// The call failed.
    Failed {
        /// How.
        failure: ApiFailure,
    },
}

impl ApiOutcome {
    /// Shorthand for an HTTP error.
    #[must_use]
    pub fn status(code: u16, reason: &str, message: &str) -> Self {
        Self::Failed {
            failure: ApiFailure::Status {
                code,
                reason: reason.to_string(),
                message: message.to_string(),
                retry_after_secs: None,
            },
        }
    }
}

/// How an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApiFailure {
    /// The server answered with an error status.
    Status {
        /// HTTP status: 400, 403, 404, 409, 410, 422, 429, 5xx…
        code: u16,
        /// The Status object's `reason`, e.g. `AlreadyExists`, `Conflict`, `Forbidden`.
        reason: String,
        /// The Status object's `message` (Airflow matches "exceeded quota", "object has been
        /// modified", "too old resource version" in it).
        message: String,
        /// The `Retry-After` header, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// No answer in time; the call may or may not have taken effect.
    Timeout,
    /// The connection failed before an answer.
    Connection {
        /// What the client said.
        message: String,
    },
}

impl ApiFailure {
    /// The HTTP status, if the server answered.
    #[must_use]
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Status { code, .. } => Some(*code),
            Self::Timeout | Self::Connection { .. } => None,
        }
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                code,
                reason,
                message,
                ..
            } => write!(f, "({code}) {reason}: {message}"),
            Self::Timeout => f.write_str("request timed out"),
            Self::Connection { message } => write!(f, "connection error: {message}"),
        }
    }
}
