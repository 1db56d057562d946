//! The try table's entries: where each tracked try is, what its pods run, and what it remembers
//! of their failures.

use std::collections::BTreeSet;

use crate::input::PodTemplate;
use crate::pod::PodRef;
use crate::time::Timestamp;

/// Where a tracked try is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TaskPhase {
    /// Waiting in the launch queue.
    Queued,
    /// Its current pod (created, its create in flight, or adopted).
    Launched { pod: PodRef },
    /// Its current pod failed; the DB is being asked whether the try is still QUEUED.
    Deciding { pod: PodRef },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Task {
    /// What its pods run; `None` for a try adopted without a template (it cannot be relaunched).
    /// Boxed: it is read once per launch, and inline it would make every tracked try 88 bytes
    /// bigger (see `docs/performance.md`, memory per tracked try).
    pub(super) template: Option<Box<PodTemplate>>,
    /// The launch number of the current pod, part of its name; kept across publish retries so a
    /// retried create is idempotent, fresh for every new pod.
    pub(super) launch: Option<u64>,
    /// Transient create errors retried so far (`task_publish_max_retries`).
    pub(super) publish_retries: u32,
    /// When the current pod's first create failed (`task_publish_retry_timeout`).
    pub(super) publish_first_failure: Option<Timestamp>,
    /// Transparent requeues used (`pod_launch_failure_retries`), carried on the pods.
    pub(super) requeues: u32,
    /// What the try remembers of its pods' failures; boxed, and only once a pod failed: most
    /// tries never fail, and inline it would make every tracked try 40 bytes bigger.
    pub(super) failures: Option<Box<FailureMemory>>,
    pub(super) phase: TaskPhase,
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
            launch: None,
            publish_retries: 0,
            publish_first_failure: None,
            requeues,
            failures: None,
            phase,
        }
    }
}
