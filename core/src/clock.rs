//! The host's clock as the executor sees it: a monotonic core time, whatever the host's clock does.
//!
//! Hosts should pass a monotonic clock as `now` (see the crate documentation), but a host that
//! passes wall-clock time (NTP steps, VM migration, a manual `date -s`) must not freeze or break
//! the executor. So the core never uses the host's readings directly; it keeps its own time:
//!
//! - a reading later than the previous one moves core time forward by the difference;
//! - a reading earlier than the previous one (a step back) leaves core time where it was, and
//!   later readings move it forward from there. Timers, back-offs and batch windows therefore
//!   keep their relative deadlines instead of waiting for the host clock to catch up (which, after
//!   a one-hour step back, froze every launch for an hour);
//! - deadlines go back to the host on its own clock ([`HostClock::host_time_of`]), so a host that
//!   sleeps until [`crate::Executor::poll_timeout`] wakes at the right moment either way.
//!
//! - a forward step cannot be told from a pause of the host by the gap alone. But the host is
//!   told when to drive the executor next ([`crate::Executor::poll_timeout`]; a timer is always
//!   armed), so a reading later than that deadline by more than a limit means the host did not
//!   drive it when asked (its loop stalled) or its clock jumped. Either way the overdue time
//!   counts only up to the limit: a clock that jumps an hour ahead does not use up an hour of
//!   every time budget (the DB question's retry window, the create retry window, the pending
//!   timeout) in one call, and after a real pause timers fire late, which is harmless: nothing
//!   the core times is urgent to the second. Judging peers dead because our own clock jumped is
//!   prevented in [`crate::liveness`]: a step either way starts a new stretch of observation.
//!
//! Without a step, core time equals host time: a host with a well-behaved clock sees no
//! difference at all.

use crate::time::Timestamp;

/// Core time kept monotonic across the host clock's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostClock {
    /// The host's last reading.
    host: Timestamp,
    /// Core time at that reading.
    core: Timestamp,
    /// Core time of the last step: back, or forward by more than the gap limit.
    last_step: Option<Timestamp>,
    /// Steps seen so far.
    steps: u64,
}

impl HostClock {
    /// A clock that starts at the host's reading `now` (core time equals host time).
    pub(crate) fn new(now: Timestamp) -> Self {
        Self {
            host: now,
            core: now,
            last_step: None,
            steps: 0,
        }
    }

    /// Takes the host's reading `host` and returns core time. A step back, or a forward gap
    /// longer than `allowed_ms` (which then counts as `allowed_ms`), is remembered as a step.
    pub(crate) fn advance(&mut self, host: Timestamp, allowed_ms: u64) -> Timestamp {
        if host >= self.host {
            let delta = host.since(self.host);
            self.core = self.core.plus_ms(delta.min(allowed_ms));
            if delta > allowed_ms {
                self.last_step = Some(self.core);
                self.steps = self.steps.saturating_add(1);
            }
        } else {
            self.last_step = Some(self.core);
            self.steps = self.steps.saturating_add(1);
        }
        self.host = host;
        self.core
    }

    /// Core time now.
    pub(crate) fn now(&self) -> Timestamp {
        self.core
    }

    /// The host's last reading.
    pub(crate) fn host_now(&self) -> Timestamp {
        self.host
    }

    /// Core time of the last step, if any.
    pub(crate) fn last_step(&self) -> Option<Timestamp> {
        self.last_step
    }

    /// How many steps were seen so far: a change between two moments means a step in between.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// The host reading at which core time will be `core` (for deadlines handed to the host).
    pub(crate) fn host_time_of(&self, core: Timestamp) -> Timestamp {
        if core >= self.core {
            self.host.plus_ms(core.since(self.core))
        } else {
            Timestamp(self.host.0.saturating_sub(self.core.since(core)))
        }
    }

    /// Core time at the host reading `host`, without taking it (for read-only questions such as
    /// health): a reading before the last one counts as no time elapsed.
    pub(crate) fn core_at(&self, host: Timestamp) -> Timestamp {
        self.core.plus_ms(host.since(self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_steps_core_time_is_host_time() {
        let mut c = HostClock::new(Timestamp(1_000));
        for t in [1_000, 1_500, 9_000, 9_000, 120_000] {
            assert_eq!(c.advance(Timestamp(t), 200_000), Timestamp(t));
            assert_eq!(c.host_time_of(Timestamp(t + 7)), Timestamp(t + 7));
        }
        assert_eq!(c.last_step(), None);
    }

    #[test]
    fn a_step_back_neither_freezes_nor_rewinds() {
        let mut c = HostClock::new(Timestamp(3_600_000));
        c.advance(Timestamp(3_610_000), 60_000);
        // The host clock steps back an hour.
        assert_eq!(c.advance(Timestamp(10_000), 60_000), Timestamp(3_610_000));
        assert_eq!(c.last_step(), Some(Timestamp(3_610_000)));
        assert_eq!(c.steps(), 1);
        // Time goes on from there, one second per host second.
        assert_eq!(c.advance(Timestamp(11_000), 60_000), Timestamp(3_611_000));
        // A deadline 5 s ahead in core time is 5 s ahead on the host's clock.
        assert_eq!(c.host_time_of(Timestamp(3_616_000)), Timestamp(16_000));
        assert_eq!(c.host_time_of(Timestamp(3_600_000)), Timestamp(0));
        assert_eq!(c.core_at(Timestamp(12_000)), Timestamp(3_612_000));
        assert_eq!(c.core_at(Timestamp(5_000)), Timestamp(3_611_000));
    }

    #[test]
    fn a_long_forward_gap_counts_as_a_step_and_as_the_limit() {
        let mut c = HostClock::new(Timestamp(0));
        c.advance(Timestamp(1_000), 30_000);
        assert_eq!(c.last_step(), None);
        assert_eq!(c.advance(Timestamp(3_601_000), 30_000), Timestamp(31_000));
        assert_eq!(c.last_step(), Some(Timestamp(31_000)));
        assert_eq!(c.steps(), 1);
        // Deadlines still map to the host's clock.
        assert_eq!(c.host_time_of(Timestamp(36_000)), Timestamp(3_606_000));
        assert_eq!(c.advance(Timestamp(3_602_000), 30_000), Timestamp(32_000));
    }

    #[test]
    fn extreme_readings_saturate() {
        let mut c = HostClock::new(Timestamp(u64::MAX - 5));
        assert_eq!(c.advance(Timestamp(u64::MAX), 10), Timestamp(u64::MAX));
        assert_eq!(c.advance(Timestamp(0), 10), Timestamp(u64::MAX));
        assert_eq!(c.advance(Timestamp(10), 10), Timestamp(u64::MAX));
        assert_eq!(c.host_time_of(Timestamp(0)), Timestamp(0));
        assert_eq!(c.core_at(Timestamp(u64::MAX)), Timestamp(u64::MAX));
    }
}
