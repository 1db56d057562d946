//! A scheduler's state: its incarnation, its executor, its clock and health bookkeeping, and
//! the counts the summary reports; the intervals its loop runs at.

use std::collections::BTreeMap;

use podwarden_core::{Executor, Input, Timestamp};

use crate::time::Ms;

/// A scheduler's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Up,
    /// The process lives but its loop is stuck.
    Stalled {
        since: Ms,
    },
    Down,
}

/// Counts per scheduler id, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchedCounts {
    /// Pods created.
    pub creates: u64,
    /// Label patches (done labels, revoke labels, owner relabels).
    pub patches: u64,
    /// Owner relabels (adoptions).
    pub owner_patches: u64,
    /// Pod deletions.
    pub deletes: u64,
    /// Pod lists.
    pub lists: u64,
    /// DB queries.
    pub db_queries: u64,
}

#[derive(Debug)]
pub(crate) struct Sched {
    pub(crate) id: String,
    pub(crate) inc: u32,
    pub(crate) exec: Option<Executor>,
    pub(crate) status: Status,
    pub(crate) skew_ms: i64,
    pub(crate) partitioned: bool,
    /// A partition lasts until this time (overlapping partitions extend it).
    pub(crate) partitioned_until: Ms,
    pub(super) timer_gen: u64,
    pub(super) timer_at: Option<Ms>,
    pub(super) buffered: Vec<Input>,
    pub(super) next_heartbeat: Ms,
    pub(super) next_orphan_check: Ms,
    pub(super) next_stuck_check: Ms,
    pub(super) next_zombie_check: Ms,
    pub(super) unhealthy_since: Option<Ms>,
    pub(crate) counts: BTreeMap<String, SchedCounts>,
}

impl Sched {
    pub(crate) fn new() -> Self {
        Self {
            id: String::new(),
            inc: 0,
            exec: None,
            status: Status::Down,
            skew_ms: 0,
            partitioned: false,
            partitioned_until: 0,
            timer_gen: 0,
            timer_at: None,
            buffered: Vec::new(),
            next_heartbeat: 0,
            next_orphan_check: 0,
            next_stuck_check: 0,
            next_zombie_check: 0,
            unhealthy_since: None,
            counts: BTreeMap::new(),
        }
    }

    /// The scheduler's own clock.
    pub(crate) fn local(&self, now: Ms) -> Timestamp {
        Timestamp(
            CLOCK_EPOCH
                .saturating_add(now)
                .saturating_add_signed(self.skew_ms),
        )
    }

    /// The world time at which this scheduler's clock reads `local`.
    pub(crate) fn world_time(&self, local: Timestamp) -> Ms {
        // Subtracts the skew without negating it (`-i64::MIN` overflows).
        let unskewed = if self.skew_ms >= 0 {
            local.0.saturating_sub(self.skew_ms.unsigned_abs())
        } else {
            local.0.saturating_add(self.skew_ms.unsigned_abs())
        };
        unskewed.saturating_sub(CLOCK_EPOCH)
    }

    pub(super) fn count(&mut self) -> &mut SchedCounts {
        self.counts.entry(self.id.clone()).or_default()
    }
}

/// Scheduler clocks read Unix-like time (2026-11-23T00:00:00Z at the start of the world), so a
/// clock set behind by a skew fault keeps running instead of sticking at zero.
pub(crate) const CLOCK_EPOCH: Ms = 1_795_392_000_000;

/// Task instances queued per scheduler loop.
pub(super) const QUEUE_PER_LOOP: usize = 32;

/// Airflow's `task_queued_timeout` and its check interval.
pub(super) const TASK_QUEUED_TIMEOUT: Ms = 600_000;

pub(super) const STUCK_CHECK_INTERVAL: Ms = 120_000;

/// Airflow's `zombie_detection_interval`: how often a scheduler looks for RUNNING task instances
/// whose task process stopped heartbeating.
pub(super) const ZOMBIE_CHECK_INTERVAL: Ms = 10_000;

/// Probe period; a scheduler unhealthy for this many probes in a row is restarted.
pub(crate) const PROBE_PERIOD: Ms = 10_000;

pub(super) const PROBE_FAILURES: u64 = 3;
