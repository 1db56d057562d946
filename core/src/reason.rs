//! The reason strings Kubernetes writes on a failed pod, as types a rule can match without a
//! typo silently disabling it: `RequeueCause::Disruption(DisruptionReason::PreemptionByScheduler)`
//! instead of a string compare. A value this version does not know is kept, as written, in
//! `Other`.
//!
//! Each is written (serde, `Display`) exactly as Kubernetes spells it, so traces and reports
//! read as before. Equality, ordering and hashing go by that spelling: `Other("OOMKilled")`
//! equals `OOMKilled`.
//!
//! ```
//! use podwarden_core::policy::{DisruptionReason, RequeueCause};
//!
//! let cause = RequeueCause::Disruption("PreemptionByScheduler".into());
//! assert!(matches!(
//!     cause,
//!     RequeueCause::Disruption(DisruptionReason::PreemptionByScheduler)
//! ));
//! assert_eq!(
//!     serde_json::to_string(&cause).unwrap(),
//!     r#"{"cause":"disruption","reason":"PreemptionByScheduler"}"#
//! );
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// Defines a reason enum: one variant per known spelling (the variant's name is the spelling),
/// plus `Other(String)`, converted from and to the spelling.
macro_rules! reason_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A reason this version does not name, as Kubernetes wrote it.
            Other(String),
        }

        impl $name {
            /// The reason as Kubernetes spells it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => stringify!($variant),)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $(stringify!($variant) => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match Self::from(s.as_str()) {
                    Self::Other(_) => Self::Other(s),
                    known => known,
                }
            }
        }

        impl From<$name> for String {
            fn from(r: $name) -> Self {
                match r {
                    $name::Other(s) => s,
                    known => known.as_str().to_string(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }
    };
}

reason_enum! {
    /// The reason of a pod's `DisruptionTarget` condition: why Kubernetes is taking it away.
    DisruptionReason {
        /// Evicted through the Eviction API (`kubectl drain`).
        EvictionByEvictionAPI,
        /// Preempted by the scheduler for a pod of higher priority.
        PreemptionByScheduler,
        /// Deleted by the taint manager (its node was lost or tainted `NoExecute`).
        DeletionByTaintManager,
        /// Terminated by the kubelet (node pressure, graceful node shutdown).
        TerminationByKubelet,
        /// Deleted by the pod garbage collector (its node is gone).
        DeletionByPodGC,
    }
}

reason_enum! {
    /// Why a container's image could not be pulled (its `waiting` reason).
    ImagePullReason {
        /// The pull failed.
        ErrImagePull,
        /// The kubelet is backing off before pulling again.
        ImagePullBackOff,
        /// The image name does not parse.
        InvalidImageName,
        /// The pulled image cannot be inspected.
        ImageInspectError,
        /// `imagePullPolicy: Never` and the image is not on the node.
        ErrImageNeverPull,
    }
}

reason_enum! {
    /// Why the kubelet rejected a pod at admission (the pod's `reason`).
    AdmissionReason {
        /// Not enough CPU on the node.
        OutOfcpu,
        /// Not enough memory on the node.
        OutOfmemory,
        /// The node's pod limit is reached.
        OutOfpods,
        /// The pod's node affinity does not match the node.
        NodeAffinity,
        /// The pod's node selector does not match the node.
        NodeSelectorMismatching,
        /// An admission handler failed unexpectedly.
        UnexpectedAdmissionError,
        /// The kubelet could not read its node.
        InvalidNodeInfo,
        /// The pod's OS is not the node's.
        PodOSNotSupported,
        /// A host port the pod asks for is taken.
        NodePorts,
    }
}

reason_enum! {
    /// A container's `terminated` or `waiting` reason
    /// ([`FailureDetails::container_reason_kind`](crate::watch::FailureDetails::container_reason_kind)).
    ContainerReason {
        /// Killed for exceeding its memory limit.
        OOMKilled,
        /// Exited non-zero.
        Error,
        /// Exited zero.
        Completed,
        /// The runtime could not start it.
        ContainerCannotRun,
        /// It failed to start.
        StartError,
        /// Its pod outlived `activeDeadlineSeconds`.
        DeadlineExceeded,
        /// Its state was lost (its node went away).
        ContainerStatusUnknown,
        /// The runtime could not create it.
        CreateContainerError,
        /// Its configuration could not be built (a missing secret or config map).
        CreateContainerConfigError,
        /// It keeps crashing and the kubelet backs off before restarting it.
        CrashLoopBackOff,
        /// The image could not be pulled.
        ErrImagePull,
        /// The kubelet is backing off before pulling its image again.
        ImagePullBackOff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_and_write_as_kubernetes_spells_them() {
        for s in [
            "EvictionByEvictionAPI",
            "PreemptionByScheduler",
            "Preemption",
        ] {
            let r = DisruptionReason::from(s);
            assert_eq!(r.as_str(), s);
            assert_eq!(r.to_string(), s);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<DisruptionReason>(&json).unwrap(), r);
        }
        assert_eq!(
            DisruptionReason::from("PreemptionByScheduler"),
            DisruptionReason::PreemptionByScheduler
        );
        assert!(matches!(
            DisruptionReason::from("PremptionByScheduler"),
            DisruptionReason::Other(_)
        ));
        assert_eq!(AdmissionReason::from("OutOfcpu"), AdmissionReason::OutOfcpu);
        assert_eq!(
            ImagePullReason::from("ErrImagePull".to_string()),
            ImagePullReason::ErrImagePull
        );
        assert_eq!(
            ContainerReason::from("OOMKilled"),
            ContainerReason::OOMKilled
        );
    }

    #[test]
    fn equality_and_order_go_by_the_spelling() {
        assert_eq!(
            DisruptionReason::Other("DeletionByPodGC".into()),
            DisruptionReason::DeletionByPodGC
        );
        let mut v = [
            DisruptionReason::TerminationByKubelet,
            DisruptionReason::Other("Aaa".into()),
            DisruptionReason::DeletionByPodGC,
        ];
        v.sort();
        let spelled: Vec<&str> = v.iter().map(DisruptionReason::as_str).collect();
        assert_eq!(spelled, ["Aaa", "DeletionByPodGC", "TerminationByKubelet"]);
    }
}
