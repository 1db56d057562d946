//! How the executor holds a tracked pod's address and uid: compactly, since every tracked try
//! holds one of each (`docs/performance.md`, memory per tracked try).
//!
//! - [`PodAddr`]: the namespace shared by every pod of that namespace ([`Namespaces`] interns
//!   it), the name held once and shared by the pod table's key and the try's phase
//!   ([`SharedPod`]). A [`PodRef`] held twice was four allocations per try; this is two.
//! - [`PodUid`]: a Kubernetes uid (an RFC 4122 UUID in its canonical lowercase form) as its
//!   16 bytes, inline; anything else as the text it is.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::pod::PodRef;

/// A pod's address as the executor's tables hold it. Ordered, hashed and compared as a
/// [`PodRef`] with the same namespace and name is (namespace first), so that scans in pod order
/// and lookups by a borrowed `(namespace, name)` see the same thing either way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PodAddr {
    namespace: Arc<str>,
    name: Box<str>,
}

/// A pod's address held by more than one table: the pod table's key and the try's phase.
pub(crate) type SharedPod = Arc<PodAddr>;

impl PodAddr {
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The address as the public API's type, for a command or a decision that names the pod.
    pub(crate) fn to_pod_ref(&self) -> PodRef {
        PodRef::new(&*self.namespace, &*self.name)
    }
}

impl PartialEq<PodRef> for PodAddr {
    fn eq(&self, other: &PodRef) -> bool {
        *self.namespace == *other.namespace && *self.name == *other.name
    }
}

impl fmt::Display for PodAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The namespaces of the tracked pods, each held once. A namespace is dropped when its last
/// pod's address is ([`Namespaces::release`]), or, if that address was dropped elsewhere (a
/// try's phase), at the next sweep: so a cluster whose namespaces come and go does not grow
/// this set beyond twice the namespaces in use (plus 16).
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespaces {
    held: BTreeSet<Arc<str>>,
    /// The set's size at which a new namespace first drops those no address holds (amortised
    /// O(1): the bound doubles past what is in use at each sweep).
    sweep_at: usize,
}

impl Namespaces {
    /// The address of `pod`, its namespace shared with every other held address of it.
    pub(crate) fn address(&mut self, pod: &PodRef) -> PodAddr {
        let namespace = match self.held.get(pod.namespace.as_str()) {
            Some(held) => Arc::clone(held),
            None => {
                if self.held.len() >= self.sweep_at {
                    self.held.retain(|held| Arc::strong_count(held) > 1);
                    self.sweep_at = self.held.len().saturating_mul(2).saturating_add(16);
                }
                let fresh: Arc<str> = Arc::from(pod.namespace.as_str());
                self.held.insert(Arc::clone(&fresh));
                fresh
            }
        };
        PodAddr {
            namespace,
            name: pod.name.as_str().into(),
        }
    }

    /// Called with an address the caller is dropping: forgets its namespace if no other
    /// address holds it.
    pub(crate) fn release(&mut self, dropped: SharedPod) {
        let namespace = Arc::clone(&dropped.namespace);
        drop(dropped);
        // Held here, by `namespace` just above, and by nothing else: no address is left.
        if Arc::strong_count(&namespace) == 2 {
            self.held.remove(&*namespace);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

/// A pod's uid as a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum PodUid {
    /// Not known yet (a pod created but not seen).
    #[default]
    Unknown,
    /// A canonical lowercase UUID, as Kubernetes assigns: its 16 bytes.
    Uuid([u8; 16]),
    /// Any other uid, as it is.
    Text(Box<str>),
}

impl PodUid {
    /// The uid `text` as a record keeps it; `""` is [`PodUid::Unknown`].
    pub(crate) fn new(text: &str) -> Self {
        if text.is_empty() {
            Self::Unknown
        } else if let Some(bytes) = uuid_bytes(text) {
            Self::Uuid(bytes)
        } else {
            Self::Text(text.into())
        }
    }

    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }

    /// Whether this is the uid `text` (exactly: a UUID in another case is another uid).
    pub(crate) fn is(&self, text: &str) -> bool {
        match self {
            Self::Unknown => text.is_empty(),
            Self::Uuid(bytes) => uuid_bytes(text) == Some(*bytes),
            Self::Text(own) => **own == *text,
        }
    }
}

impl fmt::Display for PodUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => Ok(()),
            Self::Uuid(bytes) => {
                for (i, byte) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// The 16 bytes of `text` if it is a UUID in the canonical form `8-4-4-4-12` of lowercase hex
/// digits (so that printing the bytes gives `text` back exactly).
fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    /// Where each byte's two digits start in `8-4-4-4-12`.
    const DIGITS_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let raw = text.as_bytes();
    if raw.len() != 36 || [8, 13, 18, 23].iter().any(|&i| raw[i] != b'-') {
        return None;
    }
    let mut bytes = [0u8; 16];
    let mut invalid = 0u8;
    for (byte, &at) in bytes.iter_mut().zip(&DIGITS_AT) {
        let (high, low) = (
            HEX_VALUE[usize::from(raw[at])],
            HEX_VALUE[usize::from(raw[at + 1])],
        );
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    // Every digit's value is below 16; a byte that is not a lowercase hex digit has bit 7 set.
    (invalid & 0x80 == 0).then_some(bytes)
}

/// Each byte's value as a lowercase hex digit, or `0x80` if it is not one: a table, since this
/// runs on every watch event of a tracked pod (its uid compared with the record's).
const HEX_VALUE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_print_back_exactly_and_only_canonical_uuids_are_packed() {
        let uuid = "0f8e3c2a-5b6d-4e1f-9a7b-8c9d0e1f2a3b";
        let packed = PodUid::new(uuid);
        assert!(matches!(packed, PodUid::Uuid(_)));
        assert_eq!(packed.to_string(), uuid);
        assert!(packed.is(uuid));
        assert!(!packed.is("0f8e3c2a-5b6d-4e1f-9a7b-8c9d0e1f2a3c"));
        for other in [
            "0F8E3C2A-5B6D-4E1F-9A7B-8C9D0E1F2A3B", // upper case: another string
            "0f8e3c2a5b6d4e1f9a7b8c9d0e1f2a3b",     // no dashes
            "0f8e3c2a-5b6d-4e1f-9a7b-8c9d0e1f2a3g", // not hex
            "0f8e3c2a-5b6d-4e1f-9a7b+8c9d0e1f2a3b", // a dash missing
            "uid-pod-1",
        ] {
            let uid = PodUid::new(other);
            assert!(matches!(uid, PodUid::Text(_)), "{other}");
            assert_eq!(uid.to_string(), other);
            assert!(uid.is(other));
            assert!(!packed.is(other));
        }
        assert!(PodUid::new("").is_unknown());
        assert!(PodUid::new("").is(""));
        assert!(!packed.is(""));
    }

    #[test]
    fn a_namespace_is_held_once_and_forgotten_with_its_last_address() {
        let mut namespaces = Namespaces::default();
        let a = Arc::new(namespaces.address(&PodRef::new("ns", "a")));
        let b = Arc::new(namespaces.address(&PodRef::new("ns", "b")));
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace), "shared");
        assert_eq!(namespaces.len(), 1);
        assert_eq!(*a, PodRef::new("ns", "a"));
        assert_ne!(*a, PodRef::new("other", "a"));
        assert_eq!(a.to_pod_ref(), PodRef::new("ns", "a"));
        let phase_copy = Arc::clone(&a);
        namespaces.release(a);
        namespaces.release(b);
        assert_eq!(namespaces.len(), 1, "a try's phase still holds ns/a");
        namespaces.release(phase_copy);
        assert_eq!(namespaces.len(), 0);
    }

    #[test]
    fn namespaces_whose_addresses_were_dropped_elsewhere_are_swept() {
        let mut namespaces = Namespaces::default();
        for i in 0..1_000 {
            // Dropped without `release`, as a try's phase drops its copy.
            drop(namespaces.address(&PodRef::new(format!("ns-{i}"), "p")));
            assert!(namespaces.len() <= 17, "{} held at {i}", namespaces.len());
        }
        let kept: Vec<PodAddr> = (0..40)
            .map(|i| namespaces.address(&PodRef::new(format!("kept-{i}"), "p")))
            .collect();
        for i in 0..1_000 {
            drop(namespaces.address(&PodRef::new(format!("gone-{i}"), "p")));
        }
        assert!(
            namespaces.len() <= 2 * kept.len() + 17,
            "{}",
            namespaces.len()
        );
        assert!(kept.iter().all(|a| namespaces.held.contains(a.namespace())));
    }

    #[test]
    fn addresses_order_as_pod_refs_do() {
        let mut namespaces = Namespaces::default();
        let refs = [
            PodRef::new("b", "a"),
            PodRef::new("a", "b"),
            PodRef::new("a", "a"),
            PodRef::new("a-", "a"),
        ];
        let mut by_ref = refs.to_vec();
        by_ref.sort();
        let mut by_addr: Vec<PodAddr> = refs.iter().map(|p| namespaces.address(p)).collect();
        by_addr.sort();
        let back: Vec<PodRef> = by_addr.iter().map(PodAddr::to_pod_ref).collect();
        assert_eq!(back, by_ref);
    }
}
