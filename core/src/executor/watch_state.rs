//! [`Watches`]: where each pod watch stands (its resource version, a relist in flight, its
//! relist back-off), one per scope of [`crate::Config::watch_scopes`].

use std::collections::BTreeMap;

use crate::config::Config;
use crate::time::Timestamp;

/// Where one watch stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct WatchState {
    /// The last resource version reached; a relist's answer resets it.
    pub(super) resource_version: String,
    /// A relist is in flight.
    pub(super) relisting: bool,
    /// Relists failed in a row, for the back-off.
    pub(super) relist_failures: u32,
    /// When a failed relist is tried again.
    pub(super) relist_retry_at: Option<Timestamp>,
}

/// What one watch (and one list) covers: `Some(namespace)`, or `None` for every namespace.
pub(super) type Scope = Option<String>;

/// Every watch the executor runs, by scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Watches {
    by_scope: BTreeMap<Scope, WatchState>,
}

impl Watches {
    /// One watch per scope of the configuration, none started.
    pub(super) fn new(config: &Config) -> Self {
        Self {
            by_scope: config
                .watch_scopes()
                .into_iter()
                .map(|scope| (scope, WatchState::default()))
                .collect(),
        }
    }

    /// The scopes, in order.
    pub(super) fn scopes(&self) -> Vec<Scope> {
        self.by_scope.keys().cloned().collect()
    }

    /// The watch of `scope`, if the executor runs one.
    pub(super) fn get_mut(&mut self, scope: &Scope) -> Option<&mut WatchState> {
        self.by_scope.get_mut(scope)
    }

    /// The watch that sees a pod in `namespace` (the scopes are either one `None` or only
    /// namespaces: at most one matches). Found without allocating: this is on every event.
    pub(super) fn of_namespace(&mut self, namespace: &str) -> Option<&mut WatchState> {
        self.by_scope
            .iter_mut()
            .find(|(scope, _)| scope.as_deref().is_none_or(|ns| ns == namespace))
            .map(|(_, w)| w)
    }

    /// The watch a bookmark names: the named scope, else the one watch if there is one.
    pub(super) fn of_bookmark(&mut self, namespace: Option<&str>) -> Option<&mut WatchState> {
        match namespace {
            Some(ns) => self.of_namespace(ns),
            None if self.by_scope.len() == 1 => self.by_scope.values_mut().next(),
            None => None,
        }
    }

    /// The first watch's state (the one watch, outside `multi_namespace_mode` with a list).
    pub(super) fn first(&self) -> Option<&WatchState> {
        self.by_scope.values().next()
    }

    /// Every scope and its resource version, in scope order.
    pub(super) fn resource_versions(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.by_scope
            .iter()
            .map(|(scope, w)| (scope.as_deref(), w.resource_version.as_str()))
    }

    /// Scopes whose failed relist is due at `now`.
    pub(super) fn relists_due(&self, now: Timestamp) -> Vec<Scope> {
        self.by_scope
            .iter()
            .filter(|(_, w)| !w.relisting && w.relist_retry_at.is_some_and(|at| at <= now))
            .map(|(scope, _)| scope.clone())
            .collect()
    }

    /// The earliest retry of a failed relist.
    pub(super) fn next_relist_retry(&self) -> Option<Timestamp> {
        self.by_scope
            .values()
            .filter_map(|w| w.relist_retry_at)
            .min()
    }
}
