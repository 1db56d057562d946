//! The choices among rules a [`Config`](super::Config) names: whose pods adoption may take, what
//! it does while heartbeats cannot be read, how a try's pod failures are deduplicated. They are
//! contract types: the decision modules ([`crate::adoption`], [`crate::requeue`]) read them.

use serde::{Deserialize, Serialize};

/// Whose completed pods this executor may adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdoptionScope {
    /// *(podwarden, default)* Only schedulers that are not alive **and** have been declared
    /// dead: the last readable snapshot shows their job no longer `running` (a hand-over marked
    /// it failed, which also makes the scheduler exit if it ever resumes), or no row has named
    /// them for a threshold. A stale heartbeat alone is not enough: a scheduler whose stall ends
    /// by itself is alive again, and its pods are not taken while it lives.
    #[default]
    #[serde(alias = "declared-dead")]
    DeclaredDead,
    /// Only schedulers that are not alive by their heartbeat (Airflow ≥ 10.17.1, #66400), even
    /// while their job row still says `running`. With heartbeats unavailable, Airflow's fallback
    /// (`adoption_without_heartbeats`).
    #[serde(alias = "dead-only")]
    DeadOnly,
    /// *(legacy)* Every other scheduler, alive or not (Airflow 10.15.0–10.17.0): the thrash of
    /// #66396. For reproducing the bug only.
    #[serde(alias = "all-others")]
    AllOthers,
}

/// What completed-pod adoption does while the heartbeats cannot be read (the DB is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdoptionFallback {
    /// *(podwarden, default)* Skip completed-pod adoption until a snapshot is readable again.
    /// Nothing is urgent about a completed pod; guessing takes live peers' pods (the thrash of
    /// a DB outage).
    #[default]
    Wait,
    /// Airflow's fallback: the selector excludes only this scheduler
    /// (`airflow-worker!=<self>`), so every live peer's completed pods are taken.
    #[serde(alias = "exclude-self")]
    ExcludeSelf,
}

/// How failures of one try's pods are deduplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequeueDedupe {
    /// *(podwarden, default)* A try reacts only to its current pod, and each failed pod uid
    /// counts once, ever.
    #[default]
    #[serde(alias = "every-pod")]
    EveryPod,
    /// *(Airflow)* Failures are matched to the try by key, whichever of its pods failed; only the
    /// last requeued pod's name is remembered. A replayed failure of an older pod requeues again
    /// while the budget allows (with a budget above 1, one pod failure can start several pods).
    #[serde(alias = "last-pod")]
    LastPod,
}
