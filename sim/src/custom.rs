//! Invariants of your own: implement [`Invariant`], register it on a [`World`](crate::World)
//! with [`World::with_invariant`](crate::World::with_invariant), and it is checked with the
//! built-in ones. A violation comes back
//! in the same [`crate::invariants::Violation`], with the same reproduction command and recent
//! trace lines.
//!
//! ```
//! use podwarden_sim::custom::{Invariant, InvariantKind, WorldView};
//! use podwarden_sim::{scenario::Scenario, trace::Trace, World};
//!
//! /// No pod is deleted within 10 s of its creation.
//! struct NoHastyDelete;
//!
//! impl Invariant for NoHastyDelete {
//!     fn name(&self) -> &str { "no_hasty_delete" }
//!     fn kind(&self) -> InvariantKind { InvariantKind::Always }
//!     fn check(&mut self, world: &WorldView<'_>) -> Result<(), String> {
//!         for pod in world.pods() {
//!             if let (Some(created), Some(deleted)) = (pod.creation_timestamp, pod.deletion_timestamp) {
//!                 if deleted.since(created) < 10_000 {
//!                     return Err(format!("{} deleted {} ms after creation", pod.name, deleted.since(created)));
//!                 }
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let scenario = Scenario { duration_s: 120.0, heal_s: 120.0, ..Scenario::default() };
//! let outcome = World::new(scenario, Some(1), Trace::hashing())
//!     .unwrap()
//!     .with_invariant(Box::new(NoHastyDelete))
//!     .run();
//! // Tasks of 20 s and more: nothing is deleted that fast here.
//! assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
//! ```

use std::collections::BTreeMap;

use podwarden_core::db::TaskState;
use podwarden_core::{Config, PodView, TaskKey, Timestamp};

pub use crate::history::{PodCreated, TryEnd, TryHistory};
use crate::time::Ms;
use crate::world::cluster::SimPod;
use crate::world::db::Ti;

/// When an invariant is checked, and what failing means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvariantKind {
    /// Checked after every event; an `Err` is a violation at once (a safety property).
    Always,
    /// Checked once, at the end of the run (after the settle time); an `Err` is a violation (a
    /// liveness property: "by the end, every …").
    Eventually,
    /// Checked after every event; it must return `Ok` at least once by the end, else the run is
    /// a violation (coverage: "the run reached …"). `Err` before that is not a violation.
    Sometimes,
}

/// A property of a simulated run.
pub trait Invariant {
    /// Its name, as violations report it (`snake_case` reads best next to the built-in ones).
    fn name(&self) -> &str;
    /// When it is checked.
    fn kind(&self) -> InvariantKind;
    /// Checks the world; `Err` says what is wrong (for `Sometimes`: not reached yet). It may keep
    /// state between calls (`&mut self`), e.g. what it saw earlier.
    ///
    /// # Errors
    /// What is wrong, in a sentence.
    fn check(&mut self, world: &WorldView<'_>) -> Result<(), String>;
}

/// What an invariant may look at: the cluster's pods, the tasks' states in the metadata DB,
/// the time. Read-only.
pub struct WorldView<'a> {
    pub(crate) now: Ms,
    pub(crate) pods: &'a BTreeMap<String, SimPod>,
    pub(crate) tis: &'a [Ti],
    pub(crate) schedulers: u32,
    pub(crate) config: &'a Config,
}

impl WorldView<'_> {
    /// Simulated time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    /// Every pod in the cluster (the API server's view), in name order.
    pub fn pods(&self) -> impl Iterator<Item = &PodView> {
        self.pods.values().map(|p| &p.view)
    }

    /// Whether pod `name`'s task process ever started in it.
    #[must_use]
    pub fn task_started_in(&self, name: &str) -> bool {
        self.pods.get(name).is_some_and(|p| p.task_started)
    }

    /// Every task instance that has arrived: its current try and state (`None`: scheduled, not
    /// yet queued).
    pub fn tasks(&self) -> impl Iterator<Item = (&TaskKey, Option<TaskState>)> {
        self.tis.iter().map(|t| (&t.key, t.state()))
    }

    /// Every task instance that has arrived, with the history of each of its tries (oldest
    /// first; empty until it is first queued): when it was queued, its pods' creation times,
    /// when its task started, its requeues with their causes and how it ended.
    pub fn tries(&self) -> impl Iterator<Item = (&TaskKey, &[TryHistory])> {
        self.tis.iter().map(|t| (&t.key, t.tries.0.as_slice()))
    }

    /// Schedulers in the scenario.
    #[must_use]
    pub fn schedulers(&self) -> u32 {
        self.schedulers
    }

    /// The configuration every executor runs with (the scenario's, under its policy preset):
    /// for properties that depend on it, e.g. a requeue budget.
    #[must_use]
    pub fn config(&self) -> &Config {
        self.config
    }
}

/// The registered invariants of a world and what the `Sometimes` ones have reached.
#[derive(Default)]
pub(crate) struct Registered {
    pub(crate) invariants: Vec<Box<dyn Invariant>>,
    pub(crate) reached: Vec<bool>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.invariants.iter().map(|i| i.name().to_string()))
            .finish()
    }
}

impl Registered {
    /// After every event: checks the `Always` and `Sometimes` invariants against `view`;
    /// returns the first `Always` one that broke, with what is wrong.
    pub(crate) fn check_step(&mut self, view: &WorldView<'_>) -> Option<(String, String)> {
        let mut broken = None;
        for (i, inv) in self.invariants.iter_mut().enumerate() {
            let kind = inv.kind();
            if kind == InvariantKind::Eventually
                || (kind == InvariantKind::Sometimes && self.reached[i])
            {
                continue;
            }
            let result = inv.check(view);
            match (kind, result) {
                (InvariantKind::Sometimes, Ok(())) => self.reached[i] = true,
                (InvariantKind::Always, Err(detail)) if broken.is_none() => {
                    broken = Some((inv.name().to_string(), detail));
                }
                _ => {}
            }
        }
        broken
    }

    /// At the end: checks the `Eventually` invariants and the `Sometimes` ones never reached;
    /// returns the first that failed, with what is wrong.
    pub(crate) fn check_end(&mut self, view: &WorldView<'_>) -> Option<(String, String)> {
        let mut broken = None;
        for (i, inv) in self.invariants.iter_mut().enumerate() {
            let failed = match inv.kind() {
                InvariantKind::Eventually => inv.check(view).err(),
                InvariantKind::Sometimes if !self.reached[i] => Some(format!(
                    "never reached: {}",
                    inv.check(view).err().unwrap_or_default()
                )),
                _ => None,
            };
            if let (Some(detail), None) = (failed, &broken) {
                broken = Some((inv.name().to_string(), detail));
            }
        }
        broken
    }
}
