//! The cluster's objects as the simulator keeps them: nodes, and pods with what their kubelet
//! knows about them.

use podwarden_core::{PodView, TaskKey};

/// A worker node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) capacity: u32,
    pub(crate) used: u32,
    pub(crate) cordoned: bool,
    /// Its kubelet does not report (the node is lost).
    pub(crate) lost: bool,
    /// Numbers the node's losses, so the steps of an earlier loss are ignored.
    pub(crate) epoch: u32,
}

impl Node {
    pub(crate) fn new(index: u32, capacity: u32) -> Self {
        Self {
            name: format!("node-{index}"),
            capacity,
            used: 0,
            cordoned: false,
            lost: false,
            epoch: 0,
        }
    }
}

/// What kind of pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodKind {
    /// An executor worker pod.
    Worker,
    /// A KubernetesPodOperator pod; `stuck`: its sidecar never exits.
    Kpo { stuck: bool },
}

/// A pod in the store: its API object and what the kubelet knows about it.
#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub(crate) view: PodView,
    pub(crate) key: TaskKey,
    pub(crate) kind: PodKind,
    pub(crate) node: Option<usize>,
    /// The task process runs now.
    pub(crate) running_task: bool,
    /// The task process started at some point.
    pub(crate) task_started: bool,
    /// Bumped when the pod's plan changes (deletion), so stale kubelet steps are dropped.
    pub(crate) gen: u64,
    /// Pull outcome decided at creation.
    pub(crate) pull: Pull,
    /// Holds a slot of its node (until its containers have all exited).
    pub(crate) slot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pull {
    Ok,
    Transient,
    Permanent,
}
