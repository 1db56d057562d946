//! Rules of your own for the decisions podwarden lets a host narrow: which failed tries are
//! requeued ([`RequeuePolicy`]) and which pods are adopted ([`AdoptionPolicy`]).
//!
//! A rule can only say no to what podwarden's rules would do, never widen it: the guarantees
//! the simulator checks for podwarden's own policy (dead-only adoption, conditional relabels,
//! a bounded requeue budget, one requeue per pod failure) hold whatever a rule answers. What a
//! rule can break is the rest (a lost task, a leaked pod, a retry charged for an infrastructure
//! failure), and that is what the simulator and `podwarden_sim::strategies` are for.
//!
//! ```
//! use std::sync::Arc;
//! use podwarden_core::policy::Policies;
//! use podwarden_core::policy::{ContainerReason, FailureContext, RequeuePolicy};
//! use podwarden_core::{Config, Executor, Timestamp};
//!
//! #[derive(Debug)]
//! struct NoRequeueAfterOom;
//!
//! impl RequeuePolicy for NoRequeueAfterOom {
//!     fn may_requeue(&self, failure: &FailureContext<'_>) -> bool {
//!         failure.details.container_reason_kind() != Some(ContainerReason::OOMKilled)
//!     }
//! }
//!
//! let rules = Policies::new().requeue(Arc::new(NoRequeueAfterOom));
//! let executor = Executor::new(Config::default(), "scheduler-1", Timestamp(0))
//!     .unwrap()
//!     .with_policies(rules);
//! # let _ = executor;
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::key::TaskKey;
use crate::pod::PodView;
use crate::time::Timestamp;

// What a rule is handed and matches on, importable from here.
pub use crate::reason::{AdmissionReason, ContainerReason, DisruptionReason, ImagePullReason};
pub use crate::requeue::RequeueCause;
pub use crate::watch::FailureDetails;

/// A requeue rule of your own, on top of podwarden's: it can only say no. It is asked when a
/// try's pod failed and podwarden's rules would requeue (budget left, reason not excluded),
/// before the DB question; `false` fails the try normally. Plug it in with
/// [`Policies::requeue`]. A rule must be a pure function of what it is told, or
/// runs stop being reproducible.
///
/// ```
/// use podwarden_core::policy::{ContainerReason, FailureContext, RequeuePolicy};
///
/// /// Never requeue a try whose container was OOM-killed: a bigger pod is the fix, not a retry.
/// #[derive(Debug)]
/// struct NoRequeueAfterOom;
///
/// impl RequeuePolicy for NoRequeueAfterOom {
///     fn may_requeue(&self, failure: &FailureContext<'_>) -> bool {
///         failure.details.container_reason_kind() != Some(ContainerReason::OOMKilled)
///     }
/// }
/// ```
pub trait RequeuePolicy: std::fmt::Debug + Send + Sync {
    /// Whether this failure may be requeued (podwarden's own rules already said yes).
    fn may_requeue(&self, failure: &FailureContext<'_>) -> bool;
}

/// What a [`RequeuePolicy`] is told about a failure. New fields may be added: build one with
/// [`FailureContext::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct FailureContext<'a> {
    /// What the pod says about why it failed.
    pub details: &'a FailureDetails,
    /// Requeues this try has used so far.
    pub requeues_used: u32,
    /// The most specific cause the pod shows.
    pub cause: &'a RequeueCause,
}

impl<'a> FailureContext<'a> {
    /// A failure context; for testing a policy on its own.
    #[must_use]
    pub fn new(details: &'a FailureDetails, requeues_used: u32, cause: &'a RequeueCause) -> Self {
        Self {
            details,
            requeues_used,
            cause,
        }
    }
}

/// Which adoption path found a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdoptionPath {
    /// The scheduler handed the try over (`AdoptOrphans`): the pod is the try's current pod,
    /// possibly still running. Declining it leaves the try unadopted, so the scheduler resets it
    /// and runs it again while this pod may still be running.
    Orphan,
    /// A Succeeded pod of a scheduler that is not alive, found by the periodic completed-pod
    /// adoption. Declining it leaves the pod where it is; it is offered again next interval.
    Completed,
}

/// An adoption rule of your own, on top of podwarden's: it can only say no. It is asked for
/// every pod podwarden's rules would relabel to this executor (the owner is dead or handed the
/// try over, the pod is the try's newest), just before the relabel; `false` leaves the pod
/// alone. Plug it in with [`Policies::adoption`].
///
/// Podwarden's own guarantees hold whatever it answers (only dead schedulers' pods, a
/// conditional relabel), but declining has costs the simulator shows: a declined orphan is reset
/// and run again (double execution if its pod was running), a declined completed pod is left
/// behind (a leaked pod if nobody else takes it). A rule must be a pure function of what it is
/// told, or runs stop being reproducible.
///
/// ```
/// use podwarden_core::policy::{AdoptionCandidate, AdoptionPath, AdoptionPolicy};
///
/// /// Leave completed pods for a minute after their owner died: time for a post-mortem.
/// #[derive(Debug)]
/// struct GraceBeforeCleanup;
///
/// impl AdoptionPolicy for GraceBeforeCleanup {
///     fn may_adopt(&self, candidate: &AdoptionCandidate<'_>) -> bool {
///         candidate.path != AdoptionPath::Completed
///             || candidate
///                 .pod
///                 .creation_timestamp
///                 .is_some_and(|created| candidate.now.since(created) >= 60_000)
///     }
/// }
/// ```
pub trait AdoptionPolicy: std::fmt::Debug + Send + Sync {
    /// Whether this executor may take `candidate` over (podwarden's own rules already said yes).
    fn may_adopt(&self, candidate: &AdoptionCandidate<'_>) -> bool;
}

/// What an [`AdoptionPolicy`] is told about a pod it may take over. New fields may be added:
/// build one with [`AdoptionCandidate::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AdoptionCandidate<'a> {
    /// Which path found the pod.
    pub path: AdoptionPath,
    /// The pod, as the adoption list returned it.
    pub pod: &'a PodView,
    /// The try the pod runs.
    pub key: &'a TaskKey,
    /// The scheduler that owns it now (its `airflow-worker` label), if labelled.
    pub owner: Option<&'a str>,
    /// The executor's clock.
    pub now: Timestamp,
}

impl<'a> AdoptionCandidate<'a> {
    /// A candidate; for testing a policy on its own.
    #[must_use]
    pub fn new(
        path: AdoptionPath,
        pod: &'a PodView,
        key: &'a TaskKey,
        owner: Option<&'a str>,
        now: Timestamp,
    ) -> Self {
        Self {
            path,
            pod,
            key,
            owner,
            now,
        }
    }
}

/// The host's rules, one per concern; an empty set is podwarden's policy unchanged.
///
/// Rules are shared (`Arc`), so one set can be given to every executor of a process or a
/// simulated world. Equality is identity: two sets are equal when they hold the same rule
/// objects (trait objects have no equality of their own).
#[derive(Debug, Clone, Default)]
pub struct Policies {
    requeue: Option<Arc<dyn RequeuePolicy>>,
    adoption: Option<Arc<dyn AdoptionPolicy>>,
}

impl Policies {
    /// No rules of your own.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the requeue rule, asked whenever podwarden's rules would requeue a failed try.
    #[must_use]
    pub fn requeue(mut self, rule: Arc<dyn RequeuePolicy>) -> Self {
        self.requeue = Some(rule);
        self
    }

    /// Sets the adoption rule, asked for every pod podwarden's rules would take over.
    #[must_use]
    pub fn adoption(mut self, rule: Arc<dyn AdoptionPolicy>) -> Self {
        self.adoption = Some(rule);
        self
    }

    /// Whether no rule is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requeue.is_none() && self.adoption.is_none()
    }

    /// Whether the requeue rule (if any) allows this requeue.
    pub(crate) fn may_requeue(&self, failure: &FailureContext<'_>) -> bool {
        self.requeue.as_ref().is_none_or(|r| r.may_requeue(failure))
    }

    /// Whether the adoption rule (if any) allows this adoption.
    pub(crate) fn may_adopt(&self, candidate: &AdoptionCandidate<'_>) -> bool {
        self.adoption
            .as_ref()
            .is_none_or(|r| r.may_adopt(candidate))
    }
}

impl PartialEq for Policies {
    fn eq(&self, other: &Self) -> bool {
        fn same<T: ?Sized>(a: Option<&Arc<T>>, b: Option<&Arc<T>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        same(self.requeue.as_ref(), other.requeue.as_ref())
            && same(self.adoption.as_ref(), other.adoption.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Never;
    impl RequeuePolicy for Never {
        fn may_requeue(&self, _: &FailureContext<'_>) -> bool {
            false
        }
    }
    impl AdoptionPolicy for Never {
        fn may_adopt(&self, _: &AdoptionCandidate<'_>) -> bool {
            false
        }
    }

    #[test]
    fn an_empty_set_allows_everything_and_a_rule_is_asked() {
        let details = FailureDetails::default();
        let cause = RequeueCause::Unknown;
        let failure = FailureContext::new(&details, 0, &cause);
        let pod = PodView::new("ns", "p");
        let key = TaskKey::new("d", "t", "r", 1);
        let candidate =
            AdoptionCandidate::new(AdoptionPath::Completed, &pod, &key, None, Timestamp(0));
        let none = Policies::new();
        assert!(none.is_empty());
        assert!(none.may_requeue(&failure) && none.may_adopt(&candidate));
        let never = Arc::new(Never);
        let both = Policies::new().requeue(never.clone()).adoption(never);
        assert!(!both.is_empty());
        assert!(!both.may_requeue(&failure) && !both.may_adopt(&candidate));
    }

    #[test]
    fn equality_is_identity() {
        let never = Arc::new(Never);
        let a = Policies::new().requeue(never.clone());
        assert_eq!(a, a.clone());
        assert_eq!(a, Policies::new().requeue(never));
        assert_ne!(a, Policies::new().requeue(Arc::new(Never)));
        assert_ne!(a, Policies::new());
    }
}
