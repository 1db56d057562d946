//! Being driven: the host's clock reading taken into the executor's monotonic time, and what a
//! stall or a clock step noticed on the way changes (reports are fenced until the executor sees
//! its own job running again).

use super::Executor;
use crate::time::Timestamp;

impl Executor {
    /// Takes the host's reading: time never runs backwards inside the executor, and never
    /// stands still either when the host's clock steps back (`clock.rs`).
    pub(super) fn advance(&mut self, now: Timestamp) -> Timestamp {
        // The host may wait until the next deadline; later than that by more than half the
        // threshold, it did not drive us when asked (a stall) or its clock jumped.
        let limit = self.settings.health_threshold_ms / 2;
        let core = self.clock.now();
        let allowed = self.timers.next().map_or(u64::MAX, |deadline| {
            deadline.since(core).saturating_add(limit)
        });
        let now = self.clock.advance(now, allowed);
        self.last_driven = now;
        if self.clock.steps() != self.clock_steps_seen {
            self.clock_steps_seen = self.clock.steps();
            self.fence_reports();
        }
        // The host reads heartbeats every loop: a long silence means its loop stalled, and
        // peers may have declared us dead meanwhile.
        if self
            .last_heartbeats_at
            .is_some_and(|at| now.since(at) > limit)
        {
            self.last_heartbeats_at = None;
            self.fence_reports();
        }
        now
    }

    /// Holds reports until our own job is seen running (`fence_reports_after_stall`).
    pub(super) fn fence_reports(&mut self) {
        if self.config.fence_reports_after_stall && self.fenced_reports.is_none() {
            self.fenced_reports = Some(Vec::new());
        }
    }
}
