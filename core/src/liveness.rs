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
//!
//! **A peer is judged only over a stretch in which our own heartbeats went through.** A stretch
//! is a run of readable snapshots, each at most half the threshold after the previous one, with
//! no step of our own clock between them. It ends with an unreadable snapshot (the DB is down:
//! nobody's heartbeat could be written, so an unchanged value proves nothing), with a gap (our
//! own loop stalled, or our clock jumped forward: we did not watch), or with a step of our clock
//! either way. A peer is dead only once its value has stayed unchanged for a whole threshold
//! *within the current stretch*: after a DB outage, a stall or a clock step, every peer gets a
//! full threshold of fresh observation before it can be judged dead. Airflow's rule
//! ([`LivenessRule::WrittenTimestamp`]) is kept as it is, without stretches, to reproduce it.

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
    #[serde(alias = "observed-change")]
    ObservedChange,
    /// Airflow's rule: fresh while `now - latest_heartbeat <= threshold`. Kept to reproduce
    /// Airflow, and as the simulator's negative control under clock skew.
    #[serde(alias = "written-timestamp")]
    WrittenTimestamp,
}

#[derive(Debug, Clone, PartialEq)]
struct Peer {
    state: JobState,
    value: Timestamp,
    changed_at: Timestamp,
}

/// What this executor knows about its peers.
/// When a snapshot arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SnapshotAt {
    /// Core time (monotonic).
    at: Timestamp,
    /// The host's clock, for comparing with written heartbeats (Airflow's rule).
    at_host: Timestamp,
    readable: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct PeerLiveness {
    peers: BTreeMap<String, Peer>,
    /// When the last snapshot arrived, and whether it was readable.
    last_snapshot: Option<SnapshotAt>,
    /// Core time at which the current stretch of regular readable snapshots began.
    stretch_start: Option<Timestamp>,
    /// Our clock's step count at the last snapshot.
    clock_steps: u64,
}

/// How a snapshot fits the stretch of observation (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    /// Core time now.
    pub(crate) now: Timestamp,
    /// The host's clock now.
    pub(crate) now_host: Timestamp,
    /// The longest gap between two snapshots that keeps a stretch going.
    pub(crate) max_gap_ms: u64,
    /// Our clock's steps so far (a change since the last snapshot ends the stretch).
    pub(crate) clock_steps: u64,
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
    pub(crate) fn observe(&mut self, obs: Observation, snapshot: Result<&[HeartbeatRecord], ()>) {
        let now = obs.now;
        let previous = self.last_snapshot;
        let stepped = obs.clock_steps != self.clock_steps;
        self.clock_steps = obs.clock_steps;
        let Ok(records) = snapshot else {
            self.last_snapshot = Some(SnapshotAt {
                at: now,
                at_host: obs.now_host,
                readable: false,
            });
            self.stretch_start = None;
            return;
        };
        let continues = self.stretch_start.is_some()
            && !stepped
            && previous.is_some_and(|p| p.readable && now.since(p.at) <= obs.max_gap_ms);
        if !continues {
            self.stretch_start = Some(now);
        }
        self.last_snapshot = Some(SnapshotAt {
            at: now,
            at_host: obs.now_host,
            readable: true,
        });
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
        let stretch_start = self.stretch_start.unwrap_or_default();
        match self.last_snapshot {
            None => AliveSet::Unknown,
            Some(SnapshotAt {
                readable: false, ..
            }) => AliveSet::Unavailable,
            Some(SnapshotAt { at, at_host, .. }) => AliveSet::Known(
                self.peers
                    .iter()
                    .filter(|(id, p)| {
                        id.as_str() != me
                            && p.state == JobState::Running
                            && match rule {
                                LivenessRule::ObservedChange => {
                                    at.since(p.changed_at.max(stretch_start)) <= threshold_ms
                                }
                                LivenessRule::WrittenTimestamp => {
                                    at_host.since(p.value) <= threshold_ms
                                }
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

    /// The record of `id` as last read (its heartbeat value as written).
    pub(crate) fn record(&self, id: &str) -> Option<HeartbeatRecord> {
        self.peers.get(id).map(|p| HeartbeatRecord {
            scheduler_id: id.to_string(),
            state: p.state,
            latest_heartbeat: p.value,
        })
    }

    /// Whether the last readable snapshot had a row for `id`.
    pub(crate) fn is_known(&self, id: &str) -> bool {
        self.peers.contains_key(id)
    }

    /// Whether the last readable snapshot shows `id`'s job declared over (not `running`: marked
    /// failed by a hand-over, or exited).
    pub(crate) fn is_declared_dead(&self, id: &str) -> bool {
        self.peers
            .get(id)
            .is_some_and(|p| p.state != JobState::Running)
    }

    /// When the last readable snapshot arrived.
    pub(crate) fn last_read_at(&self) -> Option<Timestamp> {
        self.last_snapshot.filter(|s| s.readable).map(|s| s.at)
    }

    /// When the current stretch of regular readable snapshots began (see the module
    /// documentation), if one is going on.
    pub(crate) fn stretch_start(&self) -> Option<Timestamp> {
        self.stretch_start
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

    /// A snapshot at `t` ms on a clock that never steps, gaps up to 15 s.
    fn at(t: u64) -> Observation {
        Observation {
            now: Timestamp(t),
            now_host: Timestamp(t),
            max_gap_ms: 15_000,
            clock_steps: 0,
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
                at(t * 1000),
                Ok(&[hb("B", JobState::Running, (t - 40) * 1000)]),
            );
            assert_eq!(
                alive(&l, LivenessRule::ObservedChange),
                set(&["B"]),
                "t={t}"
            );
            assert_eq!(alive(&l, LivenessRule::WrittenTimestamp), set(&[]), "t={t}");
        }
        // B stalls: its heartbeat stops changing (we keep reading every 5 s).
        for t in (110..=140).step_by(5) {
            l.observe(at(t * 1000), Ok(&[hb("B", JobState::Running, 65_000)]));
        }
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
    }

    #[test]
    fn state_self_and_unknown_snapshots() {
        let mut l = PeerLiveness::default();
        assert_eq!(alive(&l, LivenessRule::ObservedChange), AliveSet::Unknown);
        l.observe(
            at(0),
            Ok(&[
                hb("5", JobState::Running, 0),
                hb("7", JobState::Running, 0),
                hb("9", JobState::Failed, 0),
            ]),
        );
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        l.observe(at(1000), Err(()));
        assert_eq!(
            alive(&l, LivenessRule::ObservedChange),
            AliveSet::Unavailable
        );
        // After the outage a new stretch starts: 7 has not moved since 0, but it is judged only
        // from 2 s on.
        l.observe(at(2000), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        for t in (5_000..=30_000).step_by(5_000) {
            l.observe(at(t), Ok(&[hb("7", JobState::Running, 0)]));
        }
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        // Exactly at the threshold is still alive (Airflow's `>=` cutoff); one ms later is not.
        l.observe(at(32_000), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        l.observe(at(32_001), Ok(&[hb("7", JobState::Running, 0)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
        // Rows that disappear are forgotten.
        l.observe(at(40_000), Ok(&[]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
    }

    /// The DB is down for five minutes: nobody can write a heartbeat. When it comes back, no
    /// peer is dead because its value did not move during the outage (the thrash of a DB outage).
    #[test]
    fn a_db_outage_does_not_make_live_peers_dead() {
        let mut l = PeerLiveness::default();
        for t in (0..=60_000).step_by(5_000) {
            l.observe(at(t), Ok(&[hb("7", JobState::Running, t)]));
        }
        for t in (65_000..=360_000).step_by(5_000) {
            l.observe(at(t), Err(()));
        }
        assert_eq!(
            alive(&l, LivenessRule::ObservedChange),
            AliveSet::Unavailable
        );
        // First read after the outage: 7's row still says 60 s, but it could not write.
        l.observe(at(365_000), Ok(&[hb("7", JobState::Running, 60_000)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        // A peer that really died during the outage is dead a threshold later.
        for t in (370_000..=395_000).step_by(5_000) {
            l.observe(at(t), Ok(&[hb("7", JobState::Running, 60_000)]));
        }
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        l.observe(at(400_000), Ok(&[hb("7", JobState::Running, 60_000)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&[]));
    }

    /// Our clock jumps an hour ahead between two reads 5 s apart: the peer, whose value did not
    /// change in those 5 s, is not dead; a gap starts a new stretch. A step back does too.
    #[test]
    fn our_clock_jumping_does_not_make_live_peers_dead() {
        let mut l = PeerLiveness::default();
        for t in (0..=30_000).step_by(5_000) {
            l.observe(at(t), Ok(&[hb("7", JobState::Running, t)]));
        }
        l.observe(at(3_635_000), Ok(&[hb("7", JobState::Running, 30_000)]));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
        // A step back: core time stands still, the step is reported by the clock.
        let stepped = Observation {
            clock_steps: 1,
            ..at(3_636_000)
        };
        l.observe(stepped, Ok(&[hb("7", JobState::Running, 30_000)]));
        assert_eq!(l.stretch_start(), Some(Timestamp(3_636_000)));
        assert_eq!(alive(&l, LivenessRule::ObservedChange), set(&["7"]));
    }
}
