//! The core decisions (`docs/decisions.md`): peer liveness, own health, adoption, pre-execution
//! requeue, zombie sweep, pending timeout and revoke, one test per rule.
mod support;

use support::Harness;

const T0: u64 = 1_000_000;

/// Fires the next completed-pod adoption (the interval is 300 s) and returns its commands.
fn next_adoption(h: &mut Harness) -> Vec<podwarden::Command> {
    h.advance(300_000)
}

#[path = "decisions/adoption.rs"]
mod adoption;
#[path = "decisions/liveness_and_health.rs"]
mod liveness_and_health;
#[path = "decisions/requeue.rs"]
mod requeue;
#[path = "decisions/revoke_zombie_sweep_pending_timeout.rs"]
mod revoke_zombie_sweep_pending_timeout;
