//! The ranges [`Scenario::validate`](super::Scenario::validate) enforces (`docs/scenarios.md`
//! lists them with their reasons). Every span of simulated time is at most [`MAX_SPAN_S`], which
//! keeps every time the world computes far inside `u64` milliseconds: a run ends by 60 days,
//! and a fault, which starts by `heal_s`, ends by then too.

use std::ops::RangeInclusive;

/// Longest span of simulated time any `_s` field may hold: 30 days, in seconds.
pub const MAX_SPAN_S: f64 = 2_592_000.0;
/// Largest clock offset (`clock_skew`, `clock_step`), either way: 30 days, in milliseconds.
pub const MAX_OFFSET_MS: i64 = 2_592_000_000;
/// Most schedulers.
pub const MAX_SCHEDULERS: u32 = 16;
/// Most nodes: Kubernetes' documented scalability limit (5,000 nodes).
pub const MAX_NODES: u32 = 5_000;
/// Most pods per node: far above any kubelet's `maxPods` (110 by default), so a few nodes can
/// stand for a large cluster.
pub const MAX_NODE_CAPACITY: u32 = 10_000;
/// Most task instances: twice the million-task scenario; every task instance is allocated
/// when the world is built.
pub const MAX_TASKS: u32 = 2_000_000;
/// Most tries one executor tracks: more than the most task instances means nothing.
pub const MAX_PARALLELISM: u32 = MAX_TASKS;
/// Most user retries per task instance.
pub const MAX_RETRIES: u32 = 1_000;
/// Largest `expect.prestart_budget`.
pub const MAX_PRESTART_BUDGET: u32 = 1_000;
/// Most pods one `sigterm_storm` or `preempt` names.
pub const MAX_STORM_PODS: u32 = MAX_TASKS;
/// Scheduler loop period, milliseconds: no real loop turns faster than 10 ms (smaller values
/// only make runs slow), and a loop slower than an hour is a stall (`stall_scheduler`).
pub const LOOP_MS: RangeInclusive<u64> = 10..=3_600_000;
/// Heartbeat period, milliseconds (up to an hour).
pub const HEARTBEAT_MS: RangeInclusive<u64> = 1..=3_600_000;
/// One-way latencies (`latency.*_ms`), milliseconds: above a minute it is an outage, which
/// the `partition` and `db_outage` faults model.
pub const LATENCY_MS: RangeInclusive<u64> = 0..=60_000;
/// `cluster.image_pull_ms` and `cluster.task_startup_ms`, milliseconds (up to an hour).
pub const KUBELET_MS: RangeInclusive<u64> = 0..=3_600_000;
/// Kubernetes minor versions (1.x) the model knows how to behave as.
pub const KUBERNETES_MINOR: RangeInclusive<u32> = 20..=40;
/// Highest random-fault rate, per hour.
pub const MAX_RANDOM_RATE: f64 = 100_000.0;
/// Most random faults of one kind in one run (rate × heal hours), all drawn when the world is
/// built.
pub const MAX_RANDOM_FAULTS: f64 = 1_000_000.0;
