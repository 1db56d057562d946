//! What happens in the world: the events of its queue, and the steps of a pod's or a lost node's
//! life that the kubelet and the control plane schedule.

use serde::Serialize;

use podwarden_core::{ApiOutcome, Command, CommandId, WatchEvent};

use crate::scenario::Fault;

/// Something that happens at a point in simulated time.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub(crate) enum Ev {
    /// A task instance becomes schedulable.
    TaskArrives { ti: usize },
    /// A scheduler's loop iteration (of one incarnation).
    SchedLoop { sched: u32, inc: u32 },
    /// An executor's `poll_timeout` deadline.
    ExecTimer { sched: u32, inc: u32, gen: u64 },
    /// A request reaches the API server.
    ApiRequest {
        sched: u32,
        inc: u32,
        command: Command,
    },
    /// The API server's answer reaches the scheduler.
    ApiReply {
        sched: u32,
        inc: u32,
        id: CommandId,
        outcome: ApiOutcome,
    },
    /// A DB query is answered (the answer is computed on arrival).
    DbAnswer {
        sched: u32,
        inc: u32,
        command: Command,
    },
    /// A watch event reaches a scheduler.
    WatchDeliver {
        sched: u32,
        inc: u32,
        event: WatchEvent,
    },
    /// A scheduler's watch ends with 410 Gone.
    WatchGone {
        sched: u32,
        inc: u32,
        /// The watch's namespace, as the executor's `WatchExpired` names it: only where it
        /// runs one watch per namespace (`multi_namespace_mode` with a list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// A kubelet step of one pod.
    Pod {
        name: String,
        gen: u64,
        step: PodStep,
    },
    /// A step of a lost node (the control plane's, or its return).
    Node {
        node: u32,
        epoch: u32,
        step: NodeStep,
    },
    /// A scheduled or random fault starts.
    Fault { fault: Fault },
    /// A stall that ends by itself is over (of one incarnation).
    StallEnds { sched: u32, inc: u32 },
    /// A fault's effect ends.
    PartitionHeals { sched: u32 },
    /// The DB comes back.
    DbRecovers,
    /// Injected API errors stop.
    ApiErrorsEnd,
    /// A drained node is back in service.
    Uncordon { node: u32 },
    /// A crashed or killed scheduler's replacement starts.
    Restart { sched: u32 },
    /// The liveness probe polls every scheduler's health endpoint.
    Probe,
}

/// One step of a pod's life, scheduled by the kubelet (or the control plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PodStep {
    Schedule,
    PullDone,
    PullBackOff,
    Start,
    TaskStarts,
    TaskEnds {
        code: i32,
    },
    /// SIGTERM took effect (graceful deletion).
    Terminate,
    /// A duplicate status update of a terminating pod.
    StatusEcho,
    Remove,
}

/// A step of a node's loss, scheduled by the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeStep {
    /// The node monitor grace period is over: NotReady, tainted unreachable.
    NotReady,
    /// `tolerationSeconds` are over: the taint manager evicts the node's pods.
    TaintEviction,
    /// The node comes back.
    Returns,
    /// The Node object is deleted: pod GC force-deletes its pods.
    Deleted,
}
