//! Hostile values inside the world: times and clock offsets at the ends of their types never
//! overflow or wrap, and a pile-up of events at one instant is stopped as a livelock.

use podwarden_core::Timestamp;

use super::event::Ev;
use super::livelock::SameInstant;
use super::sched_state::Sched;
use super::World;
use crate::scenario::{Fault, Load, Scenario};
use crate::trace::Trace;

impl World {
    /// The same world with another livelock limit, for tests that make one.
    fn with_same_instant_limit(mut self, limit: u64) -> Self {
        self.same_instant = SameInstant::new(limit);
        self
    }
}

fn small_world(schedulers: u32) -> World {
    let scenario = Scenario {
        schedulers,
        duration_s: 60.0,
        heal_s: 60.0,
        load: Load {
            tasks: 5,
            ..Load::default()
        },
        ..Scenario::default()
    };
    World::new(scenario, Some(1), Trace::hashing()).expect("a valid scenario")
}

/// A timer stuck at "now": the same stale `exec_timer` of scheduler 1, 200 times at 1 s.
fn pile_up(world: &mut World) {
    for _ in 0..200 {
        world.at(
            1_000,
            Ev::ExecTimer {
                sched: 1,
                inc: 1,
                gen: u64::MAX,
            },
        );
    }
}

#[test]
fn a_pile_up_at_one_instant_ends_the_run_as_a_livelock_naming_the_component() {
    let mut world = small_world(2).with_same_instant_limit(100);
    pile_up(&mut world);
    let outcome = world.run();
    let v = outcome.violation.expect("a livelock is reported");
    assert_eq!(v.invariant, "livelock");
    assert_eq!(v.at_ms, 1_000);
    assert!(
        v.detail
            .starts_with("101 events at 1000 ms (more than 100 at one instant), ")
            && v.detail.ends_with(" of them exec_timer of scheduler 1"),
        "{}",
        v.detail
    );
    assert!(v.reproduce.contains(" run "), "{}", v.reproduce);
    // The run stopped there: no end-of-run checks at the settle time.
    assert_eq!(outcome.summary.simulated_ms, 1_000);
}

#[test]
fn a_livelock_stops_even_a_run_that_goes_past_violations() {
    let mut world = small_world(2).with_same_instant_limit(100).keep_going();
    pile_up(&mut world);
    let outcome = world.run();
    assert_eq!(outcome.summary.simulated_ms, 1_000);
    assert_eq!(
        outcome.violation.map(|v| v.invariant).as_deref(),
        Some("livelock")
    );
}

#[test]
fn the_default_limit_leaves_a_normal_run_alone() {
    let outcome = small_world(2).run();
    assert!(outcome.violation.is_none(), "{:?}", outcome.violation);
}

#[test]
fn a_deadline_on_a_skewed_clock_is_never_before_now_in_world_time() {
    // The livelock seen with `offset_ms = i64::MIN`: `-i64::MIN` wrapped, every deadline mapped
    // to world time 0, and the timer fired at "now" for ever.
    for skew in [
        i64::MIN,
        -2_592_000_000,
        -45_000,
        0,
        45_000,
        2_592_000_000,
        i64::MAX,
    ] {
        let mut s = Sched::new();
        s.skew_ms = skew;
        for now in [0, 1_000, 5_184_000_000, 1_000_000_000_000] {
            let local = s.local(now);
            for d in [0, 1, 1_000, u64::MAX] {
                let deadline = Timestamp(local.0.saturating_add(d));
                assert!(
                    s.world_time(deadline) >= now,
                    "skew {skew} now {now} +{d}: {}",
                    s.world_time(deadline)
                );
            }
            if skew.unsigned_abs() <= 2_592_000_000 {
                assert_eq!(s.world_time(local), now, "skew {skew} round trip");
            }
        }
        // The ends of the clock saturate instead of overflowing.
        let _ = s.local(u64::MAX);
        let _ = s.world_time(Timestamp(u64::MAX));
        let _ = s.world_time(Timestamp(0));
    }
}

#[test]
fn huge_delays_and_fault_durations_saturate_instead_of_wrapping() {
    let mut world = small_world(2);
    world.now = 5_000;
    world.after(u64::MAX, Ev::Probe);
    // Past any validation: a partition, an outage and an error window of 1e17 s last until the
    // end of time instead of wrapping round to before now.
    for fault in [
        Fault::Partition {
            at_s: 5.0,
            scheduler: 1,
            duration_s: 1e17,
        },
        Fault::DbOutage {
            at_s: 5.0,
            duration_s: 1e17,
        },
        Fault::ApiErrors {
            at_s: 5.0,
            duration_s: 1e17,
            code: 503,
            rate: 0.5,
        },
        Fault::ClockSkew {
            at_s: 5.0,
            scheduler: 0,
            offset_ms: i64::MIN,
        },
        Fault::ClockStep {
            at_s: 5.0,
            scheduler: 0,
            offset_ms: i64::MIN,
        },
    ] {
        world.apply_fault(fault);
    }
    assert_eq!(world.scheds[1].partitioned_until, u64::MAX);
    assert_eq!(world.db.outage_until, u64::MAX);
    assert_eq!(world.api.errors_until, u64::MAX);
    assert_eq!(world.scheds[0].skew_ms, i64::MIN);
    let outcome = world.run();
    assert_eq!(outcome.summary.simulated_ms, 60_000 + 1_800_000);
}
