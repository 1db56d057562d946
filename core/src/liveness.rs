//! Liveness of peer schedulers, from their heartbeat records.
//!
//! Adoption may only take pods from schedulers that are dead. Airflow decides by comparing each
//! written heartbeat with the reader's `now` ([`LivenessRule::WrittenTimestamp`]); that breaks
//! when clocks disagree: a live scheduler whose clock runs 40 s behind writes heartbeats that
//! always look 40 s old, so with the 30 s threshold its peers declare it dead and take its pods.
//!
//! The default here ([`LivenessRule::ObservedChange`]) is client-go's lease rule: a peer is fresh
//! while the *value* of its heartbeat has changed within the threshold, measured on this
//! executor's own clock. The peer's clock then only has to move forward, not agree.
//!
//! Worked example, threshold 30 s, peer B's clock 40 s behind ours, B heartbeats every 5 s:
//!
//! | our clock | B writes | WrittenTimestamp: `now - written` | ObservedChange: since last change seen |
//! |---|---|---|---|
//! | 100 s | 60 s | 40 s → dead, B's pods adopted | 0 s → alive |
//! | 105 s | 65 s | 40 s → dead | 0 s → alive |
//! | (B stalls) 140 s | 65 s | 75 s → dead | 35 s → dead |
//!
//! The verdict is taken at the time of the last snapshot: if snapshots stop arriving, the last
//! verdict stands (nothing new is known), rather than every peer slowly turning dead.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// State of a scheduler job row (Airflow's `job.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// The scheduler says it runs.
    Running,
    /// Marked failed (Airflow's orphan check marks dead schedulers failed).
    Failed,
    /// Exited cleanly.
    Success,
    /// Anything else the DB holds (restarting, shutdown, …): not running.
    Other,
}

/// One scheduler job's heartbeat, as read from the metadata DB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRecord {
    /// The scheduler id (its `airflow-worker` label value).
    pub scheduler_id: String,
    /// The job's state.
    pub state: JobState,
    /// `latest_heartbeat` as written, on the writer's clock.
    pub latest_heartbeat: Timestamp,
}

/// The heartbeat read failed (DB unavailable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatsUnavailable {
    /// What the host saw.
    pub reason: String,
}

/// How a heartbeat is judged fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessRule {
    /// *(podwarden, default)* Fresh while its value changed within the threshold on this
    /// executor's clock (client-go's lease rule): robust to clock skew between schedulers.
    #[default]
    ObservedChange,
    /// Airflow's rule: fresh while `now - latest_heartbeat <= threshold`. Kept to reproduce
    /// Airflow, and as the simulator's negative control under clock skew.
    WrittenTimestamp,
}

#[derive(Debug, Clone, PartialEq)]
struct Peer {
    state: JobState,
    value: Timestamp,
    changed_at: Timestamp,
}

/// What this executor knows about its peers.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct PeerLiveness {
    peers: BTreeMap<String, Peer>,
    /// When the last snapshot arrived, and whether it was readable.
    last_snapshot: Option<(Timestamp, bool)>,
}

/// Who counts as alive, for adoption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliveSet {
    /// No snapshot received yet: nothing is known; adoption waits.
    Unknown,
    /// The last read failed: Airflow's fallback, exclude only ourselves.
    Unavailable,
    /// These other schedulers are alive.
    Known(BTreeSet<String>),
}

impl PeerLiveness {
    pub(crate) fn observe(&mut self, now: Timestamp, snapshot: Result<&[HeartbeatRecord], ()>) {
        let Ok(records) = snapshot else {
            self.last_snapshot = Some((now, false));
            return;
        };
        self.last_snapshot = Some((now, true));
        let mut seen = BTreeSet::new();
        for r in records {
            seen.insert(r.scheduler_id.as_str());
            match self.peers.get_mut(&r.scheduler_id) {
                Some(p) => {
                    if p.value != r.latest_heartbeat {
                        p.value = r.latest_heartbeat;
                        p.changed_at = now;
                    }
                    p.state = r.state;
                }
                None => {
                    self.peers.insert(
                        r.scheduler_id.clone(),
                        Peer {
                            state: r.state,
                            value: r.latest_heartbeat,
                            changed_at: now,
                        },
                    );
                }
            }
        }
        // A job row that is gone from the table is no longer a peer.
        self.peers.retain(|id, _| seen.contains(id.as_str()));
    }

    /// The other schedulers alive at the last snapshot.
    pub(crate) fn alive_others(&self, me: &str, rule: LivenessRule, threshold_ms: u64) -> AliveSet {
        match self.last_snapshot {
            None => AliveSet::Unknown,
            Some((_, false)) => AliveSet::Unavailable,
            Some((at, true)) => AliveSet::Known(
                self.peers
                    .iter()
                    .filter(|(id, p)| {
                        id.as_str() != me
                            && p.state == JobState::Running
                            && match rule {
                                LivenessRule::ObservedChange => {
                                    at.since(p.changed_at) <= threshold_ms
                                }
                                LivenessRule::WrittenTimestamp => at.since(p.value) <= threshold_ms,
                            }
                    })
                    .map(|(id, _)| id.clone())
                    .collect(),
            ),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// The scheduler ids the last readable snapshot named, in order.
    pub(crate) fn known(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Whether the last readable snapshot had a row for `id`.
    pub(crate) fn is_known(&self, id: &str) -> bool {
        self.peers.contains_key(id)
    }

    /// When the last readable snapshot arrived.
    pub(crate) fn last_read_at(&self) -> Option<Timestamp> {
        match self.last_snapshot {
            Some((at, true)) => Some(at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(id: &str, state: JobState, at: u64) -> HeartbeatRecord {
        HeartbeatRecord {
            scheduler_id: id.into(),
            state,
            latest_heartbeat: Timestamp(at),
        }
    }

    fn alive(l: &PeerLiveness, rule: LivenessRule) -> AliveSet {
        l.alive_others("5", rule, 30_000)
    }

    fn set(ids: &[&str]) -> AliveSet {
        AliveSet::Known(ids.iter().map(|s| (*s).to_string()).collect())
    }

    /// The worked example of the module documentation.
    #[test]
    fn observed_change_survives_clock_skew_written_timestamp_does_not() {
        let mut l = PeerLiveness::default();
        for t in [100u64, 105] {
            l.observe(
                Timestamp(t * 1000),
                Ok(&[hb("B", JobState::Running, (t - 40) * 1000)]),
            );
            assert_eq!(
                alive(&l, LivenessRule::ObservedChange),
                set(&["B"]),
                "t={t}"
            );
            assert_eq!(alive(&l, LivenessRule::WrittenTimestamp), set(&[]), "t={t}");
        }
        // B stalls: its heartbeat stops changing.
        l.observe(
            Timestamp(140_000),
            Ok(&[hb("B", JobState::Running, 65_000)]),
        );
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
    }

    #[test]
    fn state_self_and_unknown_snapshots() {
        let mut l = PeerLiveness::default();
        assert_eq!(alive(&l, LivenessRule::ObservedChange), AliveSet::Unknown);
        l.observe(
            Timestamp(0),
            Ok(&[
                hb("5", JobState::Running, 0),
                hb("7", JobState::Running, 0),
                hb("9", JobState::Failed, 0),
            ]),
        );
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        l.observe(Timestamp(1000), Err(()));
        assert_eq!(
            alive(&l, LivenessRule::ObservedChange),
            AliveSet::Unavailable
        );
        // Without new snapshots the last verdict stands, however late it is asked.
        l.observe(Timestamp(2000), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        // Exactly at the threshold is still alive (Airflow's `>=` cutoff); one ms later is not.
        l.observe(Timestamp(30_000), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        l.observe(Timestamp(30_001), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
        // Rows that disappear are forgotten.
        l.observe(Timestamp(40_000), Ok(&[]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
    }
}
