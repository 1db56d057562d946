//! Heartbeat snapshots: peers' liveness updated, and the report fence lifted once this
//! scheduler's own job is seen running.

use super::Executor;
use crate::liveness::{AliveSet, HeartbeatRecord, HeartbeatsUnavailable, Observation};

impl Executor {
    pub(super) fn on_heartbeats(
        &mut self,
        snapshot: Result<Vec<HeartbeatRecord>, HeartbeatsUnavailable>,
    ) {
        let obs = Observation {
            now: self.clock.now(),
            now_host: self.clock.host_now(),
            // Regular reads are every `scheduler_heartbeat_sec` (5 s by default); a gap of
            // half the threshold means we were not watching (see `liveness`).
            max_gap_ms: self.settings.health_threshold_ms / 2,
            clock_steps: self.clock.steps(),
        };
        match &snapshot {
            Ok(records) => self.peers.observe(obs, Ok(records)),
            Err(_) => self.peers.observe(obs, Err(())),
        }
        self.last_heartbeats_at = Some(self.clock.now());
        self.check_fence(snapshot.as_ref().ok());
        // Owners that turned out to be known (a scheduler that had just started) are forgotten.
        let peers = &self.peers;
        self.unknown_owners
            .retain(|owner, _| !peers.is_known(owner));
        if self.completed_adoption_waiting {
            self.start_completed_adoption();
        }
    }

    /// After a stall, reports wait for a snapshot that shows our own job (see
    /// `fence_reports_after_stall`): running, they go out; declared dead, they are dropped.
    pub(super) fn check_fence(&mut self, records: Option<&Vec<HeartbeatRecord>>) {
        let (Some(held), Some(records)) = (self.fenced_reports.as_mut(), records) else {
            return;
        };
        let Some(own) = records.iter().find(|r| r.scheduler_id == self.scheduler_id) else {
            return;
        };
        if own.state == crate::liveness::JobState::Running {
            let held = std::mem::take(held);
            self.fenced_reports = None;
            for report in held {
                self.emit(report);
            }
        } else {
            held.clear();
        }
    }

    pub(super) fn alive_set(&self) -> AliveSet {
        self.peers.alive_others(
            &self.scheduler_id,
            self.config.scheduler_liveness_rule,
            self.settings.health_threshold_ms,
        )
    }
}
