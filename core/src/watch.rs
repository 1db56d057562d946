//! Watch classification: what one pod event means for the task try the pod runs.
//!
//! This is Airflow's `KubernetesJobWatcher.process_status` table (`docs/decisions.md`, "Watch
//! classification"), rows 1–11, first match wins, and `collect_pod_failure_details`. It is a pure function
//! of the event: idempotence under replays, relists and reordering is the executor's job (it
//! remembers which pod already produced an outcome), so the classifier can stay stateless and
//! exhaustively tested.

use serde::{Deserialize, Serialize};

use crate::label;
use crate::pod::{ContainerState, ContainerStatus, EventType, PodPhase, PodView};

/// The row of the classification table that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Row 1: the pod carries `airflow_pod_revoked`; the revoke already decided its fate.
    Revoked,
    /// Row 2: DELETED without a deletion timestamp: the pod left our selector (relabelled by an
    /// adopter, or marked done) but still exists.
    LeftWatch,
    /// Row 3: `status.reason == ProviderFailed` (virtual-kubelet providers), any phase.
    ProviderFailed,
    /// Row 4: a Pending pod was deleted; since Airflow #45184 not a failure.
    DeletedWhilePending,
    /// Row 5: Pending with a fatal waiting reason on an init container or the main container.
    FatalPendingReason,
    /// Row 6: Pending for any other reason (image pull back-off, scheduling, creation, and
    /// `ErrImagePull` with exactly "pull QPS exceeded").
    Pending,
    /// Row 7: phase Failed.
    PhaseFailed,
    /// Row 8: phase Succeeded (the task's own state is read from the metadata DB).
    PhaseSucceeded,
    /// Row 9: a Running pod was deleted (its process was killed).
    DeletedWhileRunning,
    /// Row 10: Running, added or modified.
    Running,
    /// Row 11: any other phase (Unknown, or none reported yet).
    OtherPhase,
}

impl Rule {
    /// The row number in `docs/decisions.md` and Airflow's table.
    #[must_use]
    pub fn row(self) -> u8 {
        match self {
            Self::Revoked => 1,
            Self::LeftWatch => 2,
            Self::ProviderFailed => 3,
            Self::DeletedWhilePending => 4,
            Self::FatalPendingReason => 5,
            Self::Pending => 6,
            Self::PhaseFailed => 7,
            Self::PhaseSucceeded => 8,
            Self::DeletedWhileRunning => 9,
            Self::Running => 10,
            Self::OtherPhase => 11,
        }
    }
}

/// Which kind of container a failure was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerType {
    /// An init container.
    Init,
    /// A regular container.
    Main,
}

/// The container-level part of Airflow's failure details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerFailure {
    /// `terminated` or `waiting`.
    pub container_state: String,
    /// The container's reason, e.g. `Error`, `OOMKilled`, `ErrImagePull`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_reason: Option<String>,
    /// The container's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_message: Option<String>,
    /// Exit code, for a terminated container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Init or main container.
    pub container_type: ContainerType,
    /// The container's name.
    pub container_name: String,
}

/// Why a pod failed, as far as the pod tells.
///
/// The Airflow fields (`pod_*`, `container`) are filled exactly when Airflow's
/// `collect_pod_failure_details` would return something (phase Failed); the rest is what
/// podwarden adds so that the requeue policy can tell an infrastructure failure from a task
/// failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureDetails {
    /// `status.phase` (Airflow's `pod_status`), when phase is Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_status: Option<String>,
    /// `status.reason` (Airflow's `pod_reason`), e.g. `Evicted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_reason: Option<String>,
    /// `status.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_message: Option<String>,
    /// The first failed (or last waiting) container, init containers first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFailure>,
    /// Row 5: the fatal waiting reason that failed a Pending pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_reason: Option<String>,
    /// *(podwarden)* The `DisruptionTarget` condition's reason, e.g. `EvictionByEvictionAPI`,
    /// `PreemptionByScheduler`, `DeletionByTaintManager`, `TerminationByKubelet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_reason: Option<String>,
    /// *(podwarden)* Whether the main container never ran the task process; `None` when the pod
    /// reports no container status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_container_never_started: Option<bool>,
}

impl FailureDetails {
    /// `container_reason`, the field the excluded-reasons list is compared with.
    #[must_use]
    pub fn container_reason(&self) -> Option<&str> {
        self.container
            .as_ref()
            .and_then(|c| c.container_reason.as_deref())
    }

    /// [`FailureDetails::container_reason`] as a type a rule can match without a typo silently
    /// disabling it: `Some(ContainerReason::OOMKilled)`.
    #[must_use]
    pub fn container_reason_kind(&self) -> Option<crate::reason::ContainerReason> {
        self.container_reason().map(Into::into)
    }

    /// A one-line human-readable reason for the task's failure report.
    ///
    /// Airflow writes `Pod failed because of {pod_reason}`, which reads "because of None" for
    /// most failures; this names the most specific cause known instead.
    #[must_use]
    pub fn summary(&self) -> String {
        self.describe("Pod failed")
    }

    /// `headline`, followed by `: ` and every cause known, if any.
    #[must_use]
    pub fn describe(&self, headline: &str) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.pod_reason {
            parts.push(format!("pod reason {r}"));
        }
        if let Some(r) = &self.disruption_reason {
            parts.push(format!("disruption {r}"));
        }
        if let Some(r) = &self.pending_reason {
            parts.push(format!("pending {r}"));
        }
        if let Some(c) = &self.container {
            let kind = match c.container_type {
                ContainerType::Init => "init container",
                ContainerType::Main => "container",
            };
            let mut s = format!("{kind} {} {}", c.container_name, c.container_state);
            if let Some(r) = &c.container_reason {
                s.push_str(&format!(" {r}"));
            }
            if let Some(code) = c.exit_code {
                s.push_str(&format!(" exit {code}"));
            }
            parts.push(s);
        }
        if self.main_container_never_started == Some(true) {
            parts.push("task process never started".into());
        }
        if parts.is_empty() {
            headline.to_string()
        } else {
            format!("{headline}: {}", parts.join(", "))
        }
    }
}

/// What an event means for the task try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[allow(clippy::large_enum_variant)] // one value per event, consumed at once: boxing would only add an allocation
pub enum PodOutcome {
    /// Nothing to do.
    Ignore,
    /// The pod left this executor's watch without being deleted: someone else owns it now (or
    /// it was marked done). Bookkeeping is freed, nothing is reported.
    Adopted,
    /// The try failed.
    Failed {
        /// What the pod says about why.
        details: FailureDetails,
    },
    /// The pod succeeded; the task's own final state is in the metadata DB.
    Succeeded,
}

/// The decision for one event, with the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// The table row that matched first.
    pub rule: Rule,
    /// What it means.
    #[serde(flatten)]
    pub outcome: PodOutcome,
}

/// Classifies one pod event. `fatal_reasons` is `worker_pod_pending_fatal_container_state_reasons`.
///
/// ```
/// use podwarden_core::{EventType, PodPhase, PodView};
/// use podwarden_core::watch::{classify, PodOutcome, Rule};
///
/// let mut pod = PodView::new("airflow", "w-1");
/// pod.phase = Some(PodPhase::Succeeded);
/// let c = classify(EventType::Modified, &pod, &[]);
/// assert_eq!((c.rule, c.outcome), (Rule::PhaseSucceeded, PodOutcome::Succeeded));
/// ```
#[must_use]
pub fn classify(kind: EventType, pod: &PodView, fatal_reasons: &[String]) -> Classification {
    let is_deleted = kind == EventType::Deleted;
    let decided = |rule, outcome| Classification { rule, outcome };
    if pod.labels.contains_key(label::POD_REVOKED) {
        return decided(Rule::Revoked, PodOutcome::Ignore);
    }
    if is_deleted && pod.deletion_timestamp.is_none() {
        return decided(Rule::LeftWatch, PodOutcome::Adopted);
    }
    if pod.reason.as_deref() == Some("ProviderFailed") {
        return decided(
            Rule::ProviderFailed,
            PodOutcome::Failed {
                details: podwarden_details(pod),
            },
        );
    }
    match pod.phase {
        Some(PodPhase::Pending) if is_deleted => {
            decided(Rule::DeletedWhilePending, PodOutcome::Ignore)
        }
        Some(PodPhase::Pending) => match fatal_pending_reason(pod, fatal_reasons) {
            Some(reason) => {
                let details = FailureDetails {
                    pending_reason: Some(reason),
                    ..podwarden_details(pod)
                };
                decided(Rule::FatalPendingReason, PodOutcome::Failed { details })
            }
            None => decided(Rule::Pending, PodOutcome::Ignore),
        },
        Some(PodPhase::Failed) => decided(
            Rule::PhaseFailed,
            PodOutcome::Failed {
                details: failure_details(pod),
            },
        ),
        Some(PodPhase::Succeeded) => decided(Rule::PhaseSucceeded, PodOutcome::Succeeded),
        Some(PodPhase::Running) if is_deleted => decided(
            Rule::DeletedWhileRunning,
            PodOutcome::Failed {
                details: podwarden_details(pod),
            },
        ),
        Some(PodPhase::Running) => decided(Rule::Running, PodOutcome::Ignore),
        Some(PodPhase::Unknown) | None => decided(Rule::OtherPhase, PodOutcome::Ignore),
    }
}

/// Row 5's scan: every init container, then only the first main container; the first waiting
/// reason in the fatal list wins, except `ErrImagePull` with exactly "pull QPS exceeded" (the
/// kubelet's own throttle, which clears by itself).
fn fatal_pending_reason(pod: &PodView, fatal_reasons: &[String]) -> Option<String> {
    if fatal_reasons.is_empty() {
        return None;
    }
    pod.init_containers
        .iter()
        .chain(pod.containers.first())
        .find_map(|c| match &c.state {
            ContainerState::Waiting {
                reason: Some(r),
                message,
            } if fatal_reasons.iter().any(|f| f == r) => {
                if r == "ErrImagePull" && message.as_deref() == Some("pull QPS exceeded") {
                    None
                } else {
                    Some(r.clone())
                }
            }
            _ => None,
        })
}

fn podwarden_details(pod: &PodView) -> FailureDetails {
    FailureDetails {
        disruption_reason: pod.disruption_reason().map(str::to_string),
        main_container_never_started: pod.main_container_never_started(),
        ..FailureDetails::default()
    }
}

/// Airflow's `collect_pod_failure_details` plus podwarden's fields.
#[must_use]
pub fn failure_details(pod: &PodView) -> FailureDetails {
    let mut details = podwarden_details(pod);
    if pod.phase != Some(PodPhase::Failed) {
        return details;
    }
    details.pod_status = Some(PodPhase::Failed.as_str().to_string());
    details.pod_reason.clone_from(&pod.reason);
    details.pod_message.clone_from(&pod.message);
    details.container = scan_containers(&pod.init_containers, ContainerType::Init)
        .or_else(|| scan_containers(&pod.containers, ContainerType::Main));
    details
}

fn scan_containers(
    list: &[ContainerStatus],
    container_type: ContainerType,
) -> Option<ContainerFailure> {
    let mut waiting = None;
    for c in list {
        match &c.state {
            ContainerState::Terminated {
                reason,
                message,
                exit_code,
                ..
            } if *exit_code != 0 && reason.as_deref() != Some("Completed") => {
                return Some(ContainerFailure {
                    container_state: "terminated".into(),
                    container_reason: reason.clone(),
                    container_message: message.clone(),
                    exit_code: Some(*exit_code),
                    container_type,
                    container_name: c.name.clone(),
                });
            }
            ContainerState::Waiting { reason, message } => {
                waiting = Some(ContainerFailure {
                    container_state: "waiting".into(),
                    container_reason: reason.clone(),
                    container_message: message.clone(),
                    exit_code: None,
                    container_type,
                    container_name: c.name.clone(),
                });
            }
            _ => {}
        }
    }
    waiting
}
