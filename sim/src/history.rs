//! What happened to each try of a task instance, with times: when it was queued, which pods
//! were created for it, when its task process started, its transparent requeues and how it
//! ended. Your invariants read it through [`WorldView::tries`](crate::custom::WorldView::tries)
//! for properties about time ("no task waits more than 15 minutes for a running pod").
//!
//! Recording it draws no random number and writes no trace line: a run is the same with or
//! without anyone reading it.

use podwarden_core::requeue::RequeueCause;
use podwarden_core::Timestamp;

/// One try of a task instance, as the simulated world saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TryHistory {
    /// The try number.
    pub try_number: u32,
    /// Every time the scheduler queued this try, oldest first (Airflow's stuck-in-queued
    /// handling queues the same try again).
    pub queued: Vec<Timestamp>,
    /// The worker pods created for this try, in creation order: a requeue creates another.
    pub pods: Vec<PodCreated>,
    /// When its task process started (wrote RUNNING); `None` if it never did.
    pub started: Option<Timestamp>,
    /// Its transparent requeues: when the executor requeued it, and why.
    pub requeues: Vec<(Timestamp, RequeueCause)>,
    /// How it ended; `None` while it is still queued or running (or when the run ended first).
    pub ended: Option<TryEnd>,
}

/// A worker pod created for a try.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PodCreated {
    /// The pod's name.
    pub name: String,
    /// When the API server created it.
    pub at: Timestamp,
}

/// How a try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TryEnd {
    /// When.
    pub at: Timestamp,
    /// Whether the task succeeded.
    pub succeeded: bool,
    /// Why, in words (for a failure, the cause the summary's failed tries name): `task exited
    /// 0`, `task failed: exit code 1`, `task got SIGTERM: …`, `zombie task instance: …`, `stuck
    /// in queued`, or the reason the executor reported.
    pub cause: String,
}

impl TryHistory {
    fn new(try_number: u32) -> Self {
        Self {
            try_number,
            queued: Vec::new(),
            pods: Vec::new(),
            started: None,
            requeues: Vec::new(),
            ended: None,
        }
    }

    /// When the try was first queued.
    #[must_use]
    pub fn first_queued(&self) -> Option<Timestamp> {
        self.queued.first().copied()
    }
}

/// The tries of one task instance, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tries(pub(crate) Vec<TryHistory>);

impl Tries {
    /// The record of try `n`, made if it is new.
    fn of(&mut self, n: u32) -> &mut TryHistory {
        match self.0.iter().position(|t| t.try_number == n) {
            Some(i) => &mut self.0[i],
            None => {
                self.0.push(TryHistory::new(n));
                let last = self.0.len() - 1;
                &mut self.0[last]
            }
        }
    }

    pub(crate) fn queued(&mut self, n: u32, now: u64) {
        self.of(n).queued.push(Timestamp(now));
    }

    pub(crate) fn pod_created(&mut self, n: u32, name: &str, now: u64) {
        self.of(n).pods.push(PodCreated {
            name: name.to_string(),
            at: Timestamp(now),
        });
    }

    pub(crate) fn started(&mut self, n: u32, now: u64) {
        self.of(n).started.get_or_insert(Timestamp(now));
    }

    pub(crate) fn requeued(&mut self, n: u32, now: u64, cause: &RequeueCause) {
        self.of(n).requeues.push((Timestamp(now), cause.clone()));
    }

    pub(crate) fn ended(&mut self, n: u32, now: u64, succeeded: bool, cause: impl Into<String>) {
        self.of(n).ended = Some(TryEnd {
            at: Timestamp(now),
            succeeded,
            cause: cause.into(),
        });
    }
}
