//! Seed sweeps: many seeds of one scenario on every core, optionally in swarm mode (every knob
//! drawn from the seed), split into shards for a batch system, and merged back.
//!
//! `swarm` draws the knobs, `runner` runs the seeds, `report` adds them up and merges shards.

mod report;
mod runner;
mod swarm;
#[cfg(test)]
mod tests;

pub use self::report::{
    merge_reports, Failure, Merged, NamedReport, Shard, SweepIdentity, SweepReport,
    MAX_SEEDS_PER_PROCESS,
};
pub use self::runner::{sweep, SweepSpec};
pub use self::swarm::{swarm, swarm_over, SWARM_DRAWS};
