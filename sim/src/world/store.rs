//! The API server's state: the pod store with resource versions, the recent changes watches
//! resume from, and each scheduler's watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use podwarden_core::{EventType, LabelSelector, PodRef, PodView, WatchEvent};

use super::cluster::SimPod;

/// Changes the API server remembers for watches that resume from a resource version.
pub(super) const HISTORY: usize = 4_096;

/// One change of one pod, as a watch cache keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    /// The pod did not exist before (ADDED to every matching watch).
    pub(crate) created: bool,
    /// The previous state, kept only when the labels changed (a relabel's DELETED carries it).
    /// Shared with every watch it is delivered to, as a watch cache shares its objects.
    pub(crate) before: Option<Arc<PodView>>,
    pub(crate) after: Arc<PodView>,
    pub(crate) removed: bool,
}

impl Change {
    /// What a watch of `namespace` (`None`: every namespace) with `selector` sees of this
    /// change: nothing for a pod of another namespace; a pod entering the selector is ADDED,
    /// one leaving it is DELETED carrying its previous state (no deletion timestamp when it was
    /// only relabelled), a deletion is DELETED with the final state.
    pub(crate) fn event_for(
        &self,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Option<WatchEvent> {
        self.event_matching(namespace, |pod| selector.matches(&pod.labels))
    }

    /// [`Change::event_for`] for any membership test (a field selector's too): a pod entering
    /// it is ADDED, one leaving it DELETED.
    pub(crate) fn event_matching(
        &self,
        namespace: Option<&str>,
        selects: impl Fn(&PodView) -> bool,
    ) -> Option<WatchEvent> {
        if namespace.is_some_and(|ns| ns != self.after.namespace) {
            return None;
        }
        let was = !self.created && selects(self.before.as_ref().unwrap_or(&self.after));
        let is = !self.removed && selects(&self.after);
        match (was, is) {
            (false, true) => Some(WatchEvent::new(EventType::Added, Arc::clone(&self.after))),
            (true, true) => Some(WatchEvent::new(
                EventType::Modified,
                Arc::clone(&self.after),
            )),
            (true, false) if self.removed => {
                Some(WatchEvent::new(EventType::Deleted, Arc::clone(&self.after)))
            }
            (true, false) => Some(WatchEvent::new(
                EventType::Deleted,
                Arc::clone(self.before.as_ref().unwrap_or(&self.after)),
            )),
            (false, false) => None,
        }
    }
}

/// One of a scheduler's watches.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    pub(crate) inc: u32,
    pub(crate) selector: LabelSelector,
    /// False while partitioned: events are lost and the watch must be re-listed.
    pub(crate) live: bool,
    /// When it was started.
    pub(crate) since: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ApiServer {
    pub(crate) pods: BTreeMap<String, SimPod>,
    pub(crate) rv: u64,
    /// Every open watch, by scheduler and the namespace it watches (`None`: every namespace);
    /// a scheduler runs one per scope of its configuration's `watch_scopes`.
    pub(crate) watches: BTreeMap<(u32, Option<String>), Watch>,
    /// Recent changes, oldest first.
    pub(crate) history: std::collections::VecDeque<Change>,
    /// Injected errors: (status code, fraction of requests).
    pub(crate) errors: Option<(u16, f64)>,
    /// The error window lasts until this time.
    pub(crate) errors_until: u64,
}

impl ApiServer {
    /// The pod `namespace/name`. The store is keyed by name alone: in the simulated world a
    /// pod's name is derived from its try (and the scheduler that launched it), so names are
    /// unique across namespaces; a call naming another namespace finds nothing, as in
    /// Kubernetes.
    pub(crate) fn pod_at(&self, pod: &PodRef) -> Option<&SimPod> {
        self.pods
            .get(&pod.name)
            .filter(|p| p.view.namespace == pod.namespace)
    }

    /// The pods a list or a watch from `"0"` of `namespace` (`None`: every namespace) with
    /// `selector` finds, in name order.
    pub(crate) fn matching<'a>(
        &'a self,
        namespace: Option<&'a str>,
        selector: &'a LabelSelector,
    ) -> impl Iterator<Item = &'a SimPod> {
        self.pods.values().filter(move |p| {
            namespace.is_none_or(|ns| ns == p.view.namespace) && selector.matches(&p.view.labels)
        })
    }

    /// Scheduler `sched`'s watches.
    pub(crate) fn watches_of(&self, sched: u32) -> impl Iterator<Item = &Watch> {
        self.watches
            .iter()
            .filter(move |((s, _), _)| *s == sched)
            .map(|(_, w)| w)
    }

    /// Scheduler `sched`'s watches, with the namespace each watches.
    pub(crate) fn watches_of_mut(
        &mut self,
        sched: u32,
    ) -> impl Iterator<Item = (&Option<String>, &mut Watch)> {
        self.watches
            .iter_mut()
            .filter(move |((s, _), _)| *s == sched)
            .map(|((_, ns), w)| (ns, w))
    }

    /// Closes every watch of scheduler `sched`.
    pub(crate) fn close_watches(&mut self, sched: u32) {
        self.watches.retain(|(s, _), _| *s != sched);
    }
}
