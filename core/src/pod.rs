//! [`PodView`]: the part of a Kubernetes Pod the decisions need, and the watch events that carry
//! it.
//!
//! Keeping only these fields (not the whole Pod) keeps the core independent of any Kubernetes
//! client library and keeps traces small; [`crate::k8s_json`] reads them from the JSON the API
//! server sends.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::key::{KeyError, TaskKey};
use crate::time::Timestamp;

/// `status.phase` of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, not all containers running yet (scheduling, image pull, init containers).
    Pending,
    /// Bound to a node, at least one container running or restarting.
    Running,
    /// Every container terminated with success.
    Succeeded,
    /// Every container terminated, at least one in failure.
    Failed,
    /// The state could not be obtained (node lost), or a phase this version does not know.
    Unknown,
}

impl PodPhase {
    /// Reads the phase as Kubernetes spells it; unknown spellings are `Unknown`, which the
    /// classifier ignores, as Airflow does.
    #[must_use]
    pub fn from_k8s(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "Running" => Self::Running,
            "Succeeded" => Self::Succeeded,
            "Failed" => Self::Failed,
            _ => Self::Unknown,
        }
    }

    /// The Kubernetes spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodCondition {
    /// `PodScheduled`, `Initialized`, `Ready`, `DisruptionTarget`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, e.g. `EvictionByEvictionAPI` on a `DisruptionTarget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The current state of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ContainerState {
    /// Not running yet (image pull, creation) or backing off between restarts.
    Waiting {
        /// e.g. `ErrImagePull`, `ContainerCreating`, `CrashLoopBackOff`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Human-readable detail, e.g. `pull QPS exceeded`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Running since `started_at`.
    Running {
        /// When the container process started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
    },
    /// Exited.
    Terminated {
        /// e.g. `Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`, `StartError`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Human-readable detail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// The process exit code (128+signal for signals: 137 SIGKILL, 143 SIGTERM).
        exit_code: i32,
        /// When the process started; absent when it never did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<Timestamp>,
    },
    /// The status carries no state (it happens right after scheduling).
    Unknown,
}

/// One entry of `status.containerStatuses` or `status.initContainerStatuses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// Its current state.
    #[serde(flatten)]
    pub state: ContainerState,
    /// How often the kubelet restarted it.
    #[serde(default)]
    pub restart_count: u32,
    /// `lastState`: the previous state, which the kubelet keeps after a restart, and where it
    /// notes "The container used to be Running" when it lost track of a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<ContainerState>,
}

/// A start time that proves a start: containerd reports 1970-01-01 for a process that never ran.
fn real_start(t: Option<Timestamp>) -> bool {
    t.is_some_and(|t| t.0 > 0)
}

fn state_shows_a_start(state: &ContainerState) -> bool {
    match state {
        ContainerState::Running { started_at } => started_at.is_none_or(|t| t.0 > 0),
        ContainerState::Terminated {
            started_at,
            reason,
            message,
            ..
        } => {
            let never = matches!(reason.as_deref(), Some("ContainerCannotRun" | "StartError"));
            let used_to_run = message
                .as_deref()
                .is_some_and(|m| m.contains("used to be Running"));
            used_to_run || (real_start(*started_at) && !never)
        }
        ContainerState::Waiting { .. } | ContainerState::Unknown => false,
    }
}

impl ContainerStatus {
    /// A container status that was never restarted and has no previous state.
    #[must_use]
    pub fn new(name: impl Into<String>, state: ContainerState) -> Self {
        Self {
            name: name.into(),
            state,
            restart_count: 0,
            last_state: None,
        }
    }

    /// Whether this container's process has started at some point: it is running, it has
    /// restarted, or it terminated after a recorded start. Pre-execution decisions depend on it.
    #[must_use]
    pub fn ever_started(&self) -> bool {
        self.restart_count > 0
            || state_shows_a_start(&self.state)
            || self.last_state.as_ref().is_some_and(state_shows_a_start)
    }
}

/// `(namespace, name)`: how the API server addresses a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodRef {
    /// The namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

impl PodRef {
    /// Builds a reference.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The fields of a Pod the executor's decisions read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodView {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`: distinguishes two pods that reuse a name.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `status.phase`; absent on a pod the API server has not reported on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PodPhase>,
    /// `status.reason`, e.g. `Evicted`, `ProviderFailed`, `Preempting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `status.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `metadata.deletionTimestamp`: set when graceful deletion started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.creationTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// `status.conditions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    /// `status.initContainerStatuses`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerStatus>,
    /// `status.containerStatuses`, in order (the first is the main container).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatus>,
    /// `spec.nodeName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

impl PodView {
    /// An empty pod with a name, for building test inputs field by field.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            ..Self::default()
        }
    }

    /// The pod's address.
    #[must_use]
    pub fn pod_ref(&self) -> PodRef {
        PodRef::new(self.namespace.clone(), self.name.clone())
    }

    /// The task try this pod runs, from its annotations.
    ///
    /// # Errors
    /// [`KeyError`] when the annotations do not name a task try.
    pub fn task_key(&self) -> Result<TaskKey, KeyError> {
        TaskKey::from_annotations(&self.annotations)
    }

    /// The reason of the `DisruptionTarget` condition, if Kubernetes set one (eviction,
    /// preemption, taint manager, kubelet termination, pod GC).
    #[must_use]
    pub fn disruption_reason(&self) -> Option<&str> {
        self.conditions
            .iter()
            .find(|c| c.kind == "DisruptionTarget" && c.status == "True")
            .and_then(|c| c.reason.as_deref())
    }

    /// Whether the main container (the first container status) never ran the task process.
    /// `None` when the pod reports no container status at all.
    #[must_use]
    pub fn main_container_never_started(&self) -> Option<bool> {
        self.containers.first().map(|c| !c.ever_started())
    }
}

/// The kind of a pod watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// The pod entered the watch (created, relabelled in, or replayed on a fresh watch).
    Added,
    /// The pod changed.
    Modified,
    /// The pod left the watch: deleted, or relabelled out of the selector.
    Deleted,
}

impl EventType {
    /// The Kubernetes spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One event of a pod watch.
///
/// The pod is shared (`Arc`): a host or a simulator that hands the same pod state to several
/// executors (or keeps it, as a watch cache does) clones a pointer, not the pod with its label
/// and annotation maps. The wire form is the pod's own. Build one with [`WatchEvent::new`],
/// which takes a `PodView` or an `Arc<PodView>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WatchEvent {
    /// See [`EventType::Added`].
    Added {
        /// The pod as it is now.
        pod: Arc<PodView>,
    },
    /// See [`EventType::Modified`].
    Modified {
        /// The pod as it is now.
        pod: Arc<PodView>,
    },
    /// See [`EventType::Deleted`].
    Deleted {
        /// The pod's last state.
        pod: Arc<PodView>,
    },
    /// The watch is alive and has reached this resource version; nothing changed.
    Bookmark {
        /// The resource version to resume from.
        resource_version: String,
        /// The `namespace` of the [`crate::command::Notice::WatchPods`] whose watch sent it,
        /// needed only where the executor runs one watch per namespace (`multi_namespace_mode`
        /// with a namespace list; a bookmark carries no pod to tell which watch sent it). In
        /// the other modes `None` names the executor's one watch; in that mode a bookmark
        /// without it advances no resource version (it still counts as watch progress).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

impl WatchEvent {
    /// Builds an event of the given type, from a `PodView` or a shared `Arc<PodView>`.
    #[must_use]
    pub fn new(kind: EventType, pod: impl Into<Arc<PodView>>) -> Self {
        let pod = pod.into();
        match kind {
            EventType::Added => Self::Added { pod },
            EventType::Modified => Self::Modified { pod },
            EventType::Deleted => Self::Deleted { pod },
        }
    }

    /// The event type and pod, or `None` for a bookmark.
    #[must_use]
    pub fn pod(&self) -> Option<(EventType, &PodView)> {
        match self {
            Self::Added { pod } => Some((EventType::Added, pod)),
            Self::Modified { pod } => Some((EventType::Modified, pod)),
            Self::Deleted { pod } => Some((EventType::Deleted, pod)),
            Self::Bookmark { .. } => None,
        }
    }

    /// The resource version this event brings the watch to.
    #[must_use]
    pub fn resource_version(&self) -> &str {
        match self {
            Self::Added { pod } | Self::Modified { pod } | Self::Deleted { pod } => {
                &pod.resource_version
            }
            Self::Bookmark {
                resource_version, ..
            } => resource_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main(state: ContainerState, restarts: u32) -> ContainerStatus {
        ContainerStatus {
            name: "base".into(),
            state,
            restart_count: restarts,
            last_state: None,
        }
    }

    #[test]
    fn last_state_and_epoch_start_times() {
        // The kubelet lost a running container: current state waiting, lastState notes it ran.
        let mut lost = main(
            ContainerState::Waiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            },
            0,
        );
        lost.last_state = Some(ContainerState::Terminated {
            reason: Some("ContainerStatusUnknown".into()),
            message: Some("The container could not be located when the pod was deleted.  The container used to be Running".into()),
            exit_code: 137,
            started_at: None,
        });
        assert!(lost.ever_started());
        // containerd's "never ran" start time.
        let epoch = main(
            ContainerState::Terminated {
                reason: Some("Error".into()),
                message: None,
                exit_code: 128,
                started_at: Some(Timestamp(0)),
            },
            0,
        );
        assert!(!epoch.ever_started());
    }

    #[test]
    fn never_started_covers_waiting_and_start_errors() {
        let waiting = main(
            ContainerState::Waiting {
                reason: Some("ErrImagePull".into()),
                message: None,
            },
            0,
        );
        assert!(!waiting.ever_started());
        let start_error = main(
            ContainerState::Terminated {
                reason: Some("StartError".into()),
                message: None,
                exit_code: 128,
                started_at: Some(Timestamp(0)),
            },
            0,
        );
        assert!(!start_error.ever_started());
        let ran = main(
            ContainerState::Terminated {
                reason: Some("Error".into()),
                message: None,
                exit_code: 1,
                started_at: Some(Timestamp(5)),
            },
            0,
        );
        assert!(ran.ever_started());
        assert!(main(ContainerState::Running { started_at: None }, 0).ever_started());
        assert!(main(ContainerState::Unknown, 2).ever_started());
        let mut pod = PodView::new("ns", "p");
        assert_eq!(pod.main_container_never_started(), None);
        pod.containers.push(waiting);
        assert_eq!(pod.main_container_never_started(), Some(true));
    }

    #[test]
    fn disruption_reason_reads_only_true_conditions() {
        let mut pod = PodView::new("ns", "p");
        pod.conditions.push(PodCondition {
            kind: "DisruptionTarget".into(),
            status: "False".into(),
            reason: Some("EvictionByEvictionAPI".into()),
            message: None,
        });
        assert_eq!(pod.disruption_reason(), None);
        pod.conditions[0].status = "True".into();
        assert_eq!(pod.disruption_reason(), Some("EvictionByEvictionAPI"));
    }
}
