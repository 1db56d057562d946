//! The try table: each tracked try by its key, where it is, what its pods run, and what it
//! remembers of their failures.
//!
//! Found by hash: every watch event, answer and launch looks its try up here, and an ordered map
//! of keys (three strings and two numbers) compared its strings at every level of the tree, the
//! top cost of a whole lifecycle at 100,000 tracked tries (`benches/core_lifecycle.rs`). Nothing
//! iterates the table, so its order can never reach a command; its hasher has no seed all the
//! same ([`FixedHasher`]).

use std::collections::hash_map::HashMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::pod_table::{give_back_memory, FixedHasher, SharedPod};
use crate::input::PodTemplate;
use crate::key::TaskKey;
use crate::time::Timestamp;

/// Tracked tries by key; the key is shared with the try's pod records (one copy of its strings).
#[derive(Debug, Clone, Default)]
pub(super) struct TryTable {
    map: HashMap<Arc<TaskKey>, Task, FixedHasher>,
}

impl TryTable {
    pub(super) fn get(&self, key: &TaskKey) -> Option<&Task> {
        self.map.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &TaskKey) -> Option<&mut Task> {
        self.map.get_mut(key)
    }

    /// The table's shared copy of `key`, if it tracks the try.
    pub(super) fn shared_key(&self, key: &TaskKey) -> Option<Arc<TaskKey>> {
        self.map.get_key_value(key).map(|(k, _)| Arc::clone(k))
    }

    pub(super) fn contains_key(&self, key: &TaskKey) -> bool {
        self.map.contains_key(key)
    }

    pub(super) fn insert(&mut self, key: Arc<TaskKey>, task: Task) -> Option<Task> {
        self.map.insert(key, task)
    }

    /// Removes a try; the table gives memory back as the pod table does ([`give_back_memory`]).
    pub(super) fn remove(&mut self, key: &TaskKey) -> Option<Task> {
        let removed = self.map.remove(key);
        give_back_memory(&mut self.map);
        removed
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Where a tracked try is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TaskPhase {
    /// Waiting in the launch queue.
    Queued,
    /// Its current pod (created, its create in flight, or adopted); the address is the pod
    /// table's own copy.
    Launched { pod: SharedPod },
    /// Its current pod failed; the DB is being asked whether the try is still QUEUED.
    Deciding { pod: SharedPod },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Task {
    /// What its pods run; `None` for a try adopted without a template (it cannot be relaunched).
    /// Boxed: it is read once per launch, and inline it would make every tracked try 88 bytes
    /// bigger (see `docs/performance.md`, memory per tracked try).
    pub(super) template: Option<Box<PodTemplate>>,
    /// The launch number of the current pod plus one, `0` for none ([`Task::launch`]): 8 bytes
    /// where an `Option<u64>` takes 16.
    launch_plus_one: u64,
    /// The current pod's failed creates, once one failed; boxed, as most creates succeed.
    pub(super) publish: Option<Box<PublishRetries>>,
    /// Transparent requeues used (`pod_launch_failure_retries`), carried on the pods.
    pub(super) requeues: u32,
    /// What the try remembers of its pods' failures; boxed, and only once a pod failed: most
    /// tries never fail, and inline it would make every tracked try 40 bytes bigger.
    pub(super) failures: Option<Box<FailureMemory>>,
    pub(super) phase: TaskPhase,
}

/// A try's failed creates of its current pod, for `task_publish_max_retries` and
/// `task_publish_retry_timeout`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PublishRetries {
    /// Transient create errors retried so far.
    pub(super) retries: u32,
    /// When the first create failed.
    pub(super) first_failure: Timestamp,
}

/// A try's memory of its pods' failures, for one decision per pod failure.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct FailureMemory {
    /// Uids of this try's pods whose failure was already counted.
    pub(super) failed_pods: BTreeSet<String>,
    /// Name of the pod of the last requeue (Airflow's dedupe memory, for `last_pod`).
    pub(super) last_requeued_pod: Option<String>,
}

impl Task {
    pub(super) fn new(template: Option<PodTemplate>, requeues: u32, phase: TaskPhase) -> Self {
        Self {
            template: template.map(Box::new),
            launch_plus_one: 0,
            publish: None,
            requeues,
            failures: None,
            phase,
        }
    }

    /// The launch number of the current pod, part of its name; kept across publish retries so
    /// a retried create is idempotent, fresh for every new pod.
    pub(super) fn launch(&self) -> Option<u64> {
        self.launch_plus_one.checked_sub(1)
    }

    /// Sets the launch number (`None`: the next pod takes a fresh one). Saturating: the number
    /// 2^64 - 1 would read back one lower, after 2^64 - 1 launches by one executor.
    pub(super) fn set_launch(&mut self, launch: Option<u64>) {
        self.launch_plus_one = launch.map_or(0, |n| n.saturating_add(1));
    }
}
