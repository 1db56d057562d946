//! The executor's pod records, found by hash.
//!
//! Every watch event looks its pod up here, so this lookup is the executor's hot path. An
//! ordered map of `(namespace, name)` strings costs a string comparison per tree level, each a
//! pointer chase into a different cache line: at a million tracked pods that was most of an
//! event's cost. A hash map finds the record in one or two cache misses. Its hasher has no
//! seed ([`FixedHasher`]), so nothing in the core depends on a random seed, and every
//! iteration whose order can reach a command goes through [`PodTable::sorted`].
//!
//! A lookup by the event's own `(namespace, name)` borrows them ([`PodKey`]), so looking a pod up
//! allocates nothing.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use std::sync::Arc;

pub(crate) use super::pod_address::SharedPod;
use super::pod_address::{Namespaces, PodAddr, PodUid};
use crate::key::TaskKey;
use crate::pod::{PodPhase, PodRef};
use crate::time::Timestamp;

/// A pod this executor created, adopted, or is cleaning up.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PodRecord {
    /// The try's key, shared with the try table's entry (one copy of its strings).
    pub(super) key: Arc<TaskKey>,
    pub(super) uid: PodUid,
    pub(super) last_phase: Option<PodPhase>,
    /// Seen in a watch event or a list: it exists (or existed).
    pub(super) seen: bool,
    /// Its create was answered OK (or AlreadyExists): it exists unless deleted since.
    pub(super) created: bool,
    /// It existed when the running relist was sent (seen, or created before): a list without it
    /// means it was deleted meanwhile.
    pub(super) listable: bool,
    /// Its outcome was taken; a delete or done-label is under way. Later events of this pod are
    /// replays and produce nothing.
    pub(super) finishing: bool,
    /// While it is Pending: since when, and why. Boxed: most tracked pods have started, and
    /// inline it would make each record 32 bytes bigger.
    pub(super) pending: Option<Box<PendingSince>>,
}

/// A Pending pod's wait, for the pending timeout.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PendingSince {
    /// Since when (our clock) it has been Pending.
    pub(super) since: Timestamp,
    /// The main container's last waiting reason, for the pending-timeout report.
    pub(super) waiting_reason: Option<String>,
}

impl PodRecord {
    pub(super) fn new(key: Arc<TaskKey>, uid: PodUid, seen: bool, finishing: bool) -> Self {
        Self {
            key,
            uid,
            last_phase: None,
            seen,
            created: false,
            listable: false,
            finishing,
            pending: None,
        }
    }
}

/// A pod's address, owned ([`PodRef`]) or borrowed (`(&str, &str)`), hashed and compared the same
/// way so that either finds the same record.
pub(crate) trait PodKey {
    fn namespace(&self) -> &str;
    fn name(&self) -> &str;
}

impl PodKey for PodRef {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl PodKey for (&str, &str) {
    fn namespace(&self) -> &str {
        self.0
    }
    fn name(&self) -> &str {
        self.1
    }
}

impl PodKey for PodAddr {
    fn namespace(&self) -> &str {
        Self::namespace(self)
    }
    fn name(&self) -> &str {
        Self::name(self)
    }
}

impl<'a> Borrow<dyn PodKey + 'a> for SharedPod {
    fn borrow(&self) -> &(dyn PodKey + 'a) {
        &**self
    }
}

/// Whether two addresses, owned or borrowed in any form, name the same pod.
pub(crate) fn same_pod(a: &(impl PodKey + ?Sized), b: &(impl PodKey + ?Sized)) -> bool {
    a.namespace() == b.namespace() && a.name() == b.name()
}

/// Must hash as `PodAddr`'s derived `Hash` does: its fields in order, each as a `str`.
impl Hash for dyn PodKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace().hash(state);
        self.name().hash(state);
    }
}

impl PartialEq for dyn PodKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.namespace() == other.namespace() && self.name() == other.name()
    }
}

impl Eq for dyn PodKey + '_ {}

/// rustc's Fx hash: no seed, so the same hash on every run and nothing in the core depends on
/// randomness; a few instructions per 8 bytes, where SipHash (with fixed keys, equally
/// predictable) took about a sixth of a whole lifecycle's instructions. Shared with the try table
/// (`tries.rs`).
pub(super) type FixedHasher = rustc_hash::FxBuildHasher;

/// After a removal: halves a table's capacity once it is a quarter full, so that a burst does
/// not pin its peak for the executor's lifetime (amortised O(1): a shrink halves the capacity at
/// most once per `len` removals).
pub(super) fn give_back_memory<K: Eq + Hash, V>(map: &mut HashMap<K, V, FixedHasher>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// Pod records by pod. The address is shared ([`SharedPod`]) with the try whose current pod it
/// is (`TaskPhase`), and its namespace with every pod of that namespace ([`Namespaces`]), so a
/// tracked pod's name is held once and its namespace not per pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodTable {
    map: HashMap<SharedPod, PodRecord, FixedHasher>,
    namespaces: Namespaces,
}

impl PodTable {
    pub(crate) fn get(&self, pod: &PodRef) -> Option<&PodRecord> {
        self.map.get(pod as &dyn PodKey)
    }

    pub(crate) fn get_mut(&mut self, pod: &PodRef) -> Option<&mut PodRecord> {
        self.map.get_mut(pod as &dyn PodKey)
    }

    /// The record of the pod `namespace/name`, found without allocating.
    pub(crate) fn get_mut_by(&mut self, namespace: &str, name: &str) -> Option<&mut PodRecord> {
        self.map.get_mut(&(namespace, name) as &dyn PodKey)
    }

    pub(crate) fn contains_by(&self, namespace: &str, name: &str) -> bool {
        self.map.contains_key(&(namespace, name) as &dyn PodKey)
    }

    pub(crate) fn contains_key(&self, pod: &PodRef) -> bool {
        self.map.contains_key(pod as &dyn PodKey)
    }

    /// Inserts the record of a pod whose address is shared with a try's phase (from
    /// [`PodTable::shared`]).
    pub(crate) fn insert(&mut self, pod: SharedPod, record: PodRecord) -> Option<PodRecord> {
        self.map.insert(pod, record)
    }

    /// Inserts (or replaces) the record of `pod`.
    pub(crate) fn insert_at(&mut self, pod: &PodRef, record: PodRecord) -> Option<PodRecord> {
        let shared = self.shared(pod);
        self.map.insert(shared, record)
    }

    /// Removes a record; the table gives memory back once it is a quarter full, so that a
    /// burst of a million pods does not pin its peak for the executor's lifetime (amortised
    /// O(1): a shrink halves the capacity at most once per `len` removals).
    pub(crate) fn remove(&mut self, pod: &PodRef) -> Option<PodRecord> {
        let (address, removed) = self.map.remove_entry(pod as &dyn PodKey)?;
        self.namespaces.release(address);
        give_back_memory(&mut self.map);
        Some(removed)
    }

    /// The table's own copy of `pod`'s address if it has a record of it, else a new one: for a
    /// record replaced, or a try's phase that names the pod, so the address stays held once.
    pub(crate) fn shared(&mut self, pod: &PodRef) -> SharedPod {
        match self.map.get_key_value(pod as &dyn PodKey) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::new(self.namespaces.address(pod)),
        }
    }

    pub(crate) fn get_or_insert_with(
        &mut self,
        pod: &PodRef,
        make: impl FnOnce() -> PodRecord,
    ) -> &mut PodRecord {
        // The table's own copy of the address when it has one, so that finding an existing
        // record allocates nothing.
        let shared = self.shared(pod);
        match self.map.entry(shared) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(make()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Changes every record; the order is the table's, so `f` must not emit anything.
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&PodAddr, &mut PodRecord)) {
        for (pod, record) in &mut self.map {
            f(pod, record);
        }
    }

    /// Every record in pod order: for scans whose order reaches commands (relist, pending
    /// timeout). O(n log n), but these run on a timer or a relist, never per event.
    pub(crate) fn sorted(&self) -> Vec<(&PodAddr, &PodRecord)> {
        let mut all: Vec<_> = self.map.iter().map(|(pod, r)| (&**pod, r)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::TaskKey;

    #[test]
    fn owned_and_borrowed_addresses_find_the_same_record() {
        let mut t = PodTable::default();
        let key = TaskKey::new("d", "t", "r", 1);
        t.insert_at(
            &PodRef::new("ns", "a"),
            PodRecord::new(Arc::new(key.clone()), PodUid::new("u"), true, false),
        );
        assert!(t.contains_by("ns", "a"));
        assert!(!t.contains_by("other", "a"), "the namespace counts");
        assert!(!t.contains_by("ns", "b"));
        t.get_mut_by("ns", "a").expect("found").finishing = true;
        assert!(t.get(&PodRef::new("ns", "a")).expect("found").finishing);
        t.insert_at(
            &PodRef::new("ns", "0"),
            PodRecord::new(Arc::new(key), PodUid::Unknown, false, false),
        );
        let order: Vec<&str> = t.sorted().iter().map(|(p, _)| p.name()).collect();
        assert_eq!(order, ["0", "a"]);
    }
}
