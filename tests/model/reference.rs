//! A reference model of the executor's decision rules, written to be read, not to be fast.
//!
//! It knows nothing of the executor's code: it keeps, per try, only what the rules in
//! `docs/decisions.md` talk about (the try's phase, its current pod, the requeues it used, the pod
//! uids whose failure it counted), per pod whether its outcome was taken, and per peer scheduler
//! its heartbeat as last observed. From an input it predicts the decisions: create, delete,
//! label done, ask the DB, requeue, report, list completed pods with a given exclusion set.
//! `tests/model_based.rs` drives it (through [`super::transition`]) and the real `Executor` with
//! the same generated inputs and compares what they decide after every step.
//!
//! The configuration is fixed (see [`super::model_config`]) so that the rules stay short: the
//! launch window, the creates in flight (`async_pod_creation`) and the API budget are large
//! enough never to hold a create back.

use std::collections::{BTreeMap, BTreeSet};

use super::transition::{CreateAnswer, DbAnswer};
use super::{
    Decision, ADOPTION_INTERVAL_MS, DB_RETRY_TIMEOUT_MS, LIVENESS_THRESHOLD_MS, ME,
    PUBLISH_RETRIES, REQUEUE_BUDGET,
};

/// What a pod event shows, as the generator builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// MODIFIED, still Pending.
    Pending,
    /// MODIFIED, phase Running.
    Running,
    /// MODIFIED, phase Succeeded.
    Succeeded,
    /// MODIFIED, phase Failed, the task's own error (`Error`, exit 1, started).
    FailedError,
    /// MODIFIED, phase Failed before the task started (`ContainerStatusUnknown`, 137).
    FailedPrestart,
    /// DELETED with a deletion timestamp, in its last phase (`last` says which).
    Deleted(Last),
    /// DELETED without a deletion timestamp: it left this executor's watch.
    LeftWatch,
}

/// A pod's last phase, for a DELETED event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    Pending,
    Running,
    Succeeded,
    Failed { error: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for a create (the model creates at the end of every step).
    Queued,
    /// Its current pod: its create in flight, or created.
    Launched { pod: String },
    /// Its current pod failed; the DB was asked (first at `first_asked`; `unanswered` times the
    /// DB could not answer; asked again at `ask_again_at` if it is waiting to be).
    Deciding {
        pod: String,
        deleted_pending: bool,
        first_asked: u64,
        unanswered: u32,
        ask_again_at: Option<u64>,
    },
}

#[derive(Debug, Clone)]
struct Try {
    phase: Phase,
    requeues: u32,
    publish_retries: u32,
    /// Pod uids whose failure was counted (one decision per pod, ever).
    counted: BTreeSet<String>,
    /// The pod name a publish retry must reuse.
    retry_name: Option<String>,
}

#[derive(Debug, Clone)]
struct Peer {
    running: bool,
    value: u64,
    changed_at: u64,
}

/// The model's state.
#[derive(Debug, Clone, Default)]
pub struct Model {
    now: u64,
    tries: BTreeMap<usize, Try>,
    /// Pods whose record the executor keeps, and whether their outcome was taken.
    records: BTreeMap<String, bool>,
    /// Every pod name ever created, and its try.
    pod_task: BTreeMap<String, usize>,
    /// Tries in the order they joined the launch queue.
    launch_order: Vec<usize>,
    peers: BTreeMap<String, Peer>,
    /// The last heartbeat snapshot: when, and whether it could be read.
    snapshot: Option<(u64, bool)>,
    /// When the current stretch of regular readable snapshots began (a peer is judged only
    /// within it).
    stretch_start: Option<u64>,
    adoption_due: u64,
    adoption_waiting: bool,
    /// A completed-pod list is out and unanswered: the next due adoption is skipped.
    adoption_in_flight: bool,
    /// Decisions of the current step.
    out: Vec<Decision>,
}

impl Model {
    /// A model of an executor started at `now` whose first adoption already waits for
    /// heartbeats (what `Harness::new` leaves).
    pub fn new(now: u64) -> Self {
        Self {
            now,
            adoption_due: now + ADOPTION_INTERVAL_MS,
            adoption_waiting: true,
            ..Self::default()
        }
    }

    /// Tries tracked.
    pub fn tries(&self) -> usize {
        self.tries.len()
    }

    /// Pod records kept.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// The try a pod belongs to.
    pub fn task_of(&self, pod: &str) -> Option<usize> {
        self.pod_task.get(pod).copied()
    }

    /// The decisions of the step, sorted.
    pub fn take(&mut self) -> Vec<Decision> {
        let mut out = std::mem::take(&mut self.out);
        out.sort();
        out
    }

    /// The executor created `pod` for `task`: a publish retry reuses the name, anything else
    /// gets a new one. Returns what is wrong, if anything.
    pub fn bind_create(&mut self, task: usize, pod: &str) -> Result<(), String> {
        let t = self
            .tries
            .get_mut(&task)
            .ok_or("create for an untracked try")?;
        match t.retry_name.take() {
            Some(name) if name != pod => {
                return Err(format!("publish retry of {name} created {pod} instead"))
            }
            None if self.pod_task.contains_key(pod) => {
                return Err(format!("pod name {pod} reused by a new launch"))
            }
            _ => {}
        }
        t.phase = Phase::Launched {
            pod: pod.to_string(),
        };
        self.pod_task.insert(pod.to_string(), task);
        self.records.insert(pod.to_string(), false);
        Ok(())
    }

    /// Ends an input: every queued try is created at once (the window and budget never bind
    /// here). Call it before binding the executor's creates.
    pub fn launch(&mut self) {
        let order = std::mem::take(&mut self.launch_order);
        for task in order {
            if self
                .tries
                .get(&task)
                .is_some_and(|t| t.phase == Phase::Queued)
            {
                self.out.push(Decision::Create { task });
            }
        }
    }

    fn queue(&mut self, task: usize) {
        self.launch_order.push(task);
    }

    /// A new try. `false` when it is already tracked (the executor refuses it).
    pub fn submit(&mut self, task: usize) -> bool {
        if self.tries.contains_key(&task) {
            return false;
        }
        self.tries.insert(
            task,
            Try {
                phase: Phase::Queued,
                requeues: 0,
                publish_retries: 0,
                counted: BTreeSet::new(),
                retry_name: None,
            },
        );
        self.queue(task);
        true
    }

    fn is_current(&self, task: usize, pod: &str) -> bool {
        self.tries
            .get(&task)
            .is_some_and(|t| matches!(&t.phase, Phase::Launched { pod: p } if p == pod))
    }

    /// The pod a clean-up goes to exists (`exists`): the API says OK and the record stays until
    /// the watch shows the pod leave; otherwise 404 and the record goes.
    fn dispose(&mut self, decision: Decision, pod: &str, exists: bool) {
        self.out.push(decision);
        if exists {
            self.records.insert(pod.to_string(), true);
        } else {
            self.records.remove(pod);
        }
    }

    /// The answer to `task`'s create of `pod`.
    pub fn create_answered(&mut self, task: usize, pod: &str, answer: CreateAnswer) {
        if !self.is_current(task, pod) {
            return;
        }
        let transient = matches!(answer, CreateAnswer::Timeout | CreateAnswer::ServerError);
        let t = self.tries.get_mut(&task).expect("current");
        match answer {
            CreateAnswer::Ok | CreateAnswer::AlreadyExists => t.publish_retries = 0,
            _ if transient && t.publish_retries < PUBLISH_RETRIES => {
                // Retried under the same name: a create that did go through answers 409.
                t.publish_retries += 1;
                t.phase = Phase::Queued;
                t.retry_name = Some(pod.to_string());
                self.records.remove(pod);
                self.queue(task);
            }
            _ => {
                self.records.remove(pod);
                if answer == CreateAnswer::Timeout {
                    // It may exist: delete it (in this model it does not: 404).
                    self.dispose(
                        Decision::Delete {
                            pod: pod.to_string(),
                        },
                        pod,
                        false,
                    );
                }
                if transient {
                    // A launch failure: the task never started.
                    self.try_failed(task, pod, None, false, false);
                } else {
                    self.tries.remove(&task);
                    self.out.push(Decision::Report {
                        task,
                        succeeded: false,
                    });
                }
            }
        }
    }

    /// A watch event for `pod` of `task`; `exists` says whether the pod is still in the cluster
    /// (for the answer to a clean-up).
    pub fn pod_event(&mut self, pod: &str, shown: Shown, exists: bool) {
        let task = self.pod_task[pod];
        let uid = format!("uid-{pod}");
        match shown {
            Shown::Pending | Shown::Running => {}
            Shown::LeftWatch => {
                self.records.remove(pod);
                if self.is_current(task, pod) {
                    self.tries.remove(&task);
                }
            }
            Shown::Deleted(Last::Pending) => {
                self.records.remove(pod);
                if self.is_current(task, pod) {
                    self.try_failed(task, pod, Some(uid), false, true);
                }
            }
            Shown::Succeeded | Shown::Deleted(Last::Succeeded) => {
                let gone = shown != Shown::Succeeded;
                if self.finish(pod, gone, true, exists) && self.is_current(task, pod) {
                    self.tries.remove(&task);
                    self.out.push(Decision::Report {
                        task,
                        succeeded: true,
                    });
                }
            }
            Shown::FailedError
            | Shown::FailedPrestart
            | Shown::Deleted(Last::Failed { .. } | Last::Running) => {
                let gone = matches!(shown, Shown::Deleted(_));
                let own_error = matches!(
                    shown,
                    Shown::FailedError | Shown::Deleted(Last::Failed { error: true })
                );
                if self.finish(pod, gone, false, exists) && self.is_current(task, pod) {
                    self.try_failed(task, pod, Some(uid), own_error, false);
                }
            }
        }
    }

    /// Takes a pod's outcome once: disposes of it (a succeeded pod is deleted, a failed one
    /// kept and labelled done, a gone one left alone). `false` when the outcome was already
    /// taken (a replay).
    fn finish(&mut self, pod: &str, gone: bool, succeeded: bool, exists: bool) -> bool {
        if self.records.get(pod) == Some(&true) {
            if gone {
                self.records.remove(pod);
            }
            return false;
        }
        let p = pod.to_string();
        match (gone, succeeded) {
            (true, _) => {
                self.records.remove(pod);
            }
            (false, true) => self.dispose(Decision::Delete { pod: p }, pod, exists),
            (false, false) => self.dispose(Decision::MarkDone { pod: p }, pod, exists),
        }
        true
    }

    /// The try's current pod failed: requeue if the budget allows and the DB says QUEUED, else
    /// fail. `own_error`: the container reason is excluded (`Error`). A pod deleted while
    /// Pending always asks: without a requeue the try waits for the scheduler's revoke.
    fn try_failed(
        &mut self,
        task: usize,
        pod: &str,
        uid: Option<String>,
        own_error: bool,
        deleted_pending: bool,
    ) {
        let t = self.tries.get_mut(&task).expect("current");
        if let Some(uid) = uid {
            if !t.counted.insert(uid) {
                return;
            }
        }
        let budget_left = !own_error && t.requeues < REQUEUE_BUDGET;
        if budget_left || deleted_pending {
            t.phase = Phase::Deciding {
                pod: pod.to_string(),
                deleted_pending,
                first_asked: self.now,
                unanswered: 0,
                ask_again_at: None,
            };
            self.out.push(Decision::Ask { task });
        } else {
            self.tries.remove(&task);
            self.out.push(Decision::Report {
                task,
                succeeded: false,
            });
        }
    }

    /// The DB answered about `task`.
    pub fn db_answered(&mut self, task: usize, answer: DbAnswer) {
        let Some(t) = self.tries.get_mut(&task) else {
            return;
        };
        let Phase::Deciding {
            pod,
            deleted_pending,
            first_asked,
            unanswered,
            ask_again_at: None,
        } = t.phase.clone()
        else {
            return;
        };
        // No DB: asked again after 1 s, 2 s, … 60 s while the retry window lasts.
        if answer == DbAnswer::Unavailable && self.now - first_asked < DB_RETRY_TIMEOUT_MS {
            let unanswered = unanswered + 1;
            let backoff = (1000u64 << (unanswered - 1).min(6)).min(60_000);
            t.phase = Phase::Deciding {
                pod,
                deleted_pending,
                first_asked,
                unanswered,
                ask_again_at: Some(self.now + backoff),
            };
            return;
        }
        let budget_left = t.requeues < REQUEUE_BUDGET;
        if deleted_pending && !(budget_left && answer == DbAnswer::Queued) {
            match answer {
                // Waits for the scheduler's stuck-in-queued revoke.
                DbAnswer::Queued | DbAnswer::Unavailable => t.phase = Phase::Launched { pod },
                DbAnswer::Running => {
                    self.tries.remove(&task);
                    self.out.push(Decision::Report {
                        task,
                        succeeded: false,
                    });
                }
                DbAnswer::NoRow => {
                    self.tries.remove(&task);
                }
            }
            return;
        }
        if answer == DbAnswer::Queued {
            t.requeues += 1;
            t.publish_retries = 0;
            t.phase = Phase::Queued;
            let attempt = t.requeues;
            self.out.push(Decision::Requeue { task, attempt, pod });
            self.queue(task);
        } else {
            self.tries.remove(&task);
            self.out.push(Decision::Report {
                task,
                succeeded: false,
            });
        }
    }

    /// A heartbeat snapshot (`None`: the read failed) of `(scheduler id, running, value)`. A
    /// stretch of observation goes on while readable snapshots come at most half a threshold
    /// apart; an unreadable one or a longer gap ends it.
    pub fn heartbeats(&mut self, snapshot: Option<&[(String, bool, u64)]>) {
        let now = self.now;
        match snapshot {
            None => {
                self.snapshot = Some((now, false));
                self.stretch_start = None;
            }
            Some(rows) => {
                let continues = self.stretch_start.is_some()
                    && self.snapshot.is_some_and(|(at, readable)| {
                        readable && now - at <= LIVENESS_THRESHOLD_MS / 2
                    });
                if !continues {
                    self.stretch_start = Some(now);
                }
                self.snapshot = Some((now, true));
                let mut next = BTreeMap::new();
                for (id, running, value) in rows {
                    let changed_at = match self.peers.get(id) {
                        Some(p) if p.value == *value => p.changed_at,
                        _ => now,
                    };
                    next.insert(
                        id.clone(),
                        Peer {
                            running: *running,
                            value: *value,
                            changed_at,
                        },
                    );
                }
                self.peers = next;
            }
        }
        if self.adoption_waiting {
            self.start_adoption();
        }
    }

    /// Time passes to `until`; the adoption timer and the DB questions asked again fire at each
    /// due time on the way, in time order.
    pub fn advance(&mut self, until: u64) {
        loop {
            let ask_due = self
                .tries
                .values()
                .filter_map(|t| match t.phase {
                    Phase::Deciding { ask_again_at, .. } => ask_again_at,
                    _ => None,
                })
                .min();
            let next = ask_due.map_or(self.adoption_due, |a| a.min(self.adoption_due));
            if next > until {
                break;
            }
            self.now = next;
            if self.adoption_due == next {
                self.adoption_due = self.now + ADOPTION_INTERVAL_MS;
                self.start_adoption();
            }
            for (task, t) in &mut self.tries {
                if let Phase::Deciding { ask_again_at, .. } = &mut t.phase {
                    if *ask_again_at == Some(next) {
                        *ask_again_at = None;
                        self.out.push(Decision::Ask { task: *task });
                    }
                }
            }
        }
        self.now = until;
    }

    /// Lists completed pods of every scheduler not known to be alive (the list is answered at
    /// once, empty). Alive: job running and heartbeat value changed within the threshold, as
    /// seen at the last snapshot, counted from the start of the stretch at the earliest. No
    /// snapshot yet, or a failed read: adoption waits for a readable one.
    fn start_adoption(&mut self) {
        if self.adoption_in_flight {
            return;
        }
        let Some((at, true)) = self.snapshot else {
            self.adoption_waiting = true;
            return;
        };
        self.adoption_waiting = false;
        let stretch_start = self.stretch_start.unwrap_or(at);
        let mut excluded = BTreeSet::from([ME.to_string()]);
        excluded.extend(
            self.peers
                .iter()
                .filter(|(id, p)| {
                    id.as_str() != ME
                        && p.running
                        && at - p.changed_at.max(stretch_start) <= LIVENESS_THRESHOLD_MS
                })
                .map(|(id, _)| id.clone()),
        );
        self.out.push(Decision::AdoptCompleted { excluded });
        self.adoption_in_flight = true;
    }

    /// The completed-pod list was answered (empty).
    pub fn adoption_answered(&mut self) {
        self.adoption_in_flight = false;
    }

    /// Sets the clock for an input at `now` (inputs do not fire timers).
    pub fn at(&mut self, now: u64) {
        self.now = now;
    }
}
