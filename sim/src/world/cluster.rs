//! The cluster's objects as the simulator keeps them: nodes, and pods with what their kubelet
//! knows about them.

use std::cmp::Reverse;
use std::collections::BTreeSet;

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

impl Node {
    /// Its place in [`Nodes`]' schedulable index: free slots, then lower index first; `None`
    /// when no pod can be scheduled on it (cordoned, lost or full).
    fn schedulable_key(&self, index: usize) -> Option<(u32, Reverse<usize>)> {
        (!self.cordoned && !self.lost && self.used < self.capacity)
            .then(|| (self.capacity - self.used, Reverse(index)))
    }
}

/// The worker nodes, with an index of the schedulable ones by free slots, so placing a pod
/// costs a lookup instead of a scan of every node. Read them as a slice; change one only
/// through [`Nodes::update`], which keeps the index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    schedulable: BTreeSet<(u32, Reverse<usize>)>,
}

impl Nodes {
    /// `count` empty nodes of `capacity` slots each.
    pub(crate) fn new(count: u32, capacity: u32) -> Self {
        let mut nodes = Self::default();
        for i in 0..count {
            let node = Node::new(i, capacity);
            if let Some(key) = node.schedulable_key(nodes.nodes.len()) {
                nodes.schedulable.insert(key);
            }
            nodes.nodes.push(node);
        }
        nodes
    }

    /// The schedulable node with the most free slots (the lowest index among equals), as the
    /// scheduler's spreading would place a pod.
    pub(crate) fn most_free(&self) -> Option<usize> {
        self.schedulable.last().map(|(_, Reverse(i))| *i)
    }

    /// Changes node `i` (nothing if there is none) and re-indexes it.
    pub(crate) fn update<R>(&mut self, i: usize, change: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let node = self.nodes.get_mut(i)?;
        if let Some(key) = node.schedulable_key(i) {
            self.schedulable.remove(&key);
        }
        let r = change(node);
        if let Some(key) = node.schedulable_key(i) {
            self.schedulable.insert(key);
        }
        Some(r)
    }
}

impl std::ops::Deref for Nodes {
    type Target = [Node];

    fn deref(&self) -> &[Node] {
        &self.nodes
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
