//! Swarm mode: every knob of the world drawn from the seed.

use rand::Rng;

use crate::failures::fault_text;
use crate::scenario::{Fault, Scenario};
use crate::world::stream;

/// What a swarm draw takes from the scenario file and what it draws from the seed: printed in
/// the sweep's header and in `docs/simulator.md`, and the rule [`swarm`] follows.
pub const SWARM_DRAWS: &str = "drawn per seed: schedulers, nodes and their capacity, duration \
and heal time, the load (tasks, runtimes, failure rate, retries, KPO share, stuck sidecars), \
image pull, admission and OOM failure rates, Kubernetes version, latencies, random fault rates, \
up to 10 scheduled faults, and the executor options requeue budget, creation batch, publish \
retries, orphan check interval, pending timeout, delete_worker_pods, KPO cleanup and the \
prestart budget; kept from the file: its scheduled faults (added to the drawn ones, the world \
grown to hold them: at least as many schedulers and nodes as they name, heal time at least the \
last one's start), its policy, parallelism as a floor, and every setting not drawn (loop and \
heartbeat periods, zombie threshold, lost-task bound, the other executor options and cluster \
settings)";

/// The sweep header's account of a swarm over `base`: which of the file's faults it keeps, then
/// [`SWARM_DRAWS`].
#[must_use]
pub fn swarm_over(base: &Scenario) -> String {
    let kept: Vec<String> = base.faults.iter().map(fault_text).collect();
    let file = base.source.as_deref().unwrap_or("the scenario");
    format!(
        "over {file} with its {} scheduled faults{}; {SWARM_DRAWS}",
        kept.len(),
        if kept.is_empty() {
            String::new()
        } else {
            format!(" ({})", kept.join("; "))
        }
    )
}

/// The least a drawn world must have to hold the file's scheduled faults: schedulers, nodes,
/// and heal time.
fn room_for(faults: &[Fault]) -> (u32, u32, f64) {
    let mut room = (0u32, 0u32, 0.0f64);
    for f in faults {
        match f {
            Fault::DrainNode { node, .. } | Fault::NodeLoss { node, .. } => {
                room.1 = room.1.max(node.saturating_add(1));
            }
            Fault::CrashScheduler { scheduler, .. }
            | Fault::StallScheduler { scheduler, .. }
            | Fault::Partition { scheduler, .. }
            | Fault::WatchExpiry { scheduler, .. }
            | Fault::ClockSkew { scheduler, .. }
            | Fault::ClockStep { scheduler, .. } => {
                room.0 = room.0.max(scheduler.saturating_add(1));
            }
            Fault::SigtermStorm { .. }
            | Fault::Preempt { .. }
            | Fault::DbOutage { .. }
            | Fault::ApiErrors { .. } => {}
        }
        room.2 = room.2.max(f.at_s());
    }
    room
}

/// Draws the world's knobs from `seed` around the file's `base` (VOPR's swarm testing):
/// scheduler count, nodes, churn, fault kinds and rates, latencies and policy options;
/// [`SWARM_DRAWS`] says exactly what is drawn and what the file keeps. Returns the scenario and
/// a line describing the draw.
#[must_use]
pub fn swarm(base: &Scenario, seed: u64) -> (Scenario, String) {
    let mut rng = stream(seed, "swarm");
    let mut s = base.clone();
    s.name = format!("{}-swarm", base.name);
    s.extensions = s.extensions.drawn_by_swarm_of_source();
    // The draws come first and in a fixed order, so a file without scheduled faults gets the
    // same world as ever; the floors only ever raise a drawn value.
    let (schedulers, nodes, last_fault_s) = room_for(&base.faults);
    s.schedulers = rng.random_range(1..=5).max(schedulers);
    s.cluster.nodes = rng.random_range(2..=8).max(nodes);
    s.cluster.node_capacity = rng.random_range(20..=80);
    s.duration_s = f64::from(rng.random_range(5u32..=20)) * 60.0;
    s.heal_s = s.duration_s.max(last_fault_s);
    s.load.tasks = rng.random_range(50..=600);
    s.load.runtime_min_s = f64::from(rng.random_range(5u32..=30));
    s.load.runtime_max_s = s.load.runtime_min_s + f64::from(rng.random_range(10u32..=200));
    s.load.failure_rate = f64::from(rng.random_range(0u32..=5)) / 100.0;
    s.load.retries = rng.random_range(0..=3);
    // Size the cluster for the load (1.5x the expected concurrency), so that the liveness
    // invariants judge the policy rather than a cluster that cannot run the work.
    let concurrency = f64::from(s.load.tasks) / s.duration_s
        * (s.load.runtime_min_s + s.load.runtime_max_s)
        / 2.0;
    let needed = (concurrency * 1.5).ceil() as u32 + 1;
    s.cluster.node_capacity = s
        .cluster
        .node_capacity
        .max(needed.div_ceil(s.cluster.nodes.saturating_sub(1).max(1)));
    s.parallelism = s.parallelism.max(needed);
    s.load.kpo_fraction = if rng.random_bool(0.3) { 0.3 } else { 0.0 };
    s.load.sidecar_stuck_rate = if s.load.kpo_fraction > 0.0 { 0.3 } else { 0.0 };
    s.cluster.image_pull_transient_failure_rate = f64::from(rng.random_range(0u32..=10)) / 100.0;
    s.cluster.image_pull_permanent_failure_rate = f64::from(rng.random_range(0u32..=2)) / 100.0;
    s.cluster.admission_rejection_rate = f64::from(rng.random_range(0u32..=5)) / 100.0;
    s.cluster.oom_kill_rate = f64::from(rng.random_range(0u32..=2)) / 100.0;
    s.latency.api_ms = rng.random_range(1..=30);
    s.latency.watch_ms = rng.random_range(5..=100);
    s.latency.db_ms = rng.random_range(1..=20);
    s.random_faults.sigterms_per_hour = f64::from(rng.random_range(0u32..=30));
    s.random_faults.watch_expiries_per_hour = f64::from(rng.random_range(0u32..=30));
    s.random_faults.preemptions_per_hour = f64::from(rng.random_range(0u32..=10));
    s.config.pod_launch_failure_retries = i64::from(rng.random_range(0u32..=3));
    s.config.worker_pods_creation_batch_size = rng.random_range(1..=8);
    s.config.task_publish_max_retries = i64::from(rng.random_range(0u32..=2));
    // From 10 s (hand-overs within a stall's length: the split-brain case) to Airflow's 300 s.
    s.config.orphaned_tasks_check_interval = f64::from(rng.random_range(1u32..=30)) * 10.0;
    // The pending timeout (off in Airflow today) in a fifth of the seeds.
    if rng.random_bool(0.2) {
        s.config.worker_pods_pending_timeout = f64::from(rng.random_range(60u32..=300));
        s.config.worker_pods_pending_timeout_check_interval = 30.0;
    }
    s.config.delete_worker_pods = rng.random_bool(0.8);
    s.config.kpo_zombie_pod_cleanup_enabled = s.load.kpo_fraction > 0.0;
    s.expect.prestart_budget = u32::try_from(s.config.pod_launch_failure_retries)
        .unwrap_or(0)
        .min(1);
    let mut faults = Vec::new();
    let end = s.heal_s * 0.8;
    if s.schedulers > 1 && rng.random_bool(0.3) {
        faults.push(Fault::CrashScheduler {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            restart_after_s: f64::from(rng.random_range(5u32..=120)),
        });
    }
    if rng.random_bool(0.4) {
        // A stall the probe ends, one shorter than the liveness threshold (nobody notices),
        // or one past it that ends by itself (peers took its work: the split-brain case).
        let duration_s = match rng.random_range(0u32..3) {
            0 => None,
            1 => Some(f64::from(rng.random_range(5u32..=25))),
            _ => Some(f64::from(rng.random_range(35u32..=50))),
        };
        faults.push(Fault::StallScheduler {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            duration_s,
        });
    }
    if rng.random_bool(0.4) {
        faults.push(Fault::DrainNode {
            at_s: rng.random_range(30.0..end),
            node: rng.random_range(0..s.cluster.nodes),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::SigtermStorm {
            at_s: rng.random_range(30.0..end),
            pods: rng.random_range(1..=30),
        });
    }
    if rng.random_bool(0.25) {
        let at_s = rng.random_range(30.0..end);
        faults.push(Fault::Partition {
            at_s,
            scheduler: rng.random_range(0..s.schedulers),
            duration_s: f64::from(rng.random_range(5u32..=400)),
        });
    }
    if s.schedulers > 1 && rng.random_bool(0.2) {
        faults.push(Fault::ClockSkew {
            at_s: 0.0,
            scheduler: rng.random_range(0..s.schedulers),
            offset_ms: rng.random_range(-60_000..=60_000),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::NodeLoss {
            at_s: rng.random_range(30.0..end),
            node: rng.random_range(0..s.cluster.nodes),
            duration_s: f64::from(rng.random_range(60u32..=900)),
            returns: rng.random_bool(0.5),
        });
    }
    if rng.random_bool(0.3) {
        faults.push(Fault::DbOutage {
            at_s: rng.random_range(30.0..end),
            duration_s: f64::from(rng.random_range(10u32..=300)),
        });
    }
    if rng.random_bool(0.3) {
        let code = [429, 500, 503][rng.random_range(0..3usize)];
        faults.push(Fault::ApiErrors {
            at_s: rng.random_range(30.0..end),
            duration_s: f64::from(rng.random_range(10u32..=300)),
            code,
            rate: f64::from(rng.random_range(10u32..=80)) / 100.0,
        });
    }
    if rng.random_bool(0.3) {
        // An NTP step or a VM migration, either way: up to two hours.
        let magnitude = rng.random_range(1_000i64..=7_200_000);
        faults.push(Fault::ClockStep {
            at_s: rng.random_range(30.0..end),
            scheduler: rng.random_range(0..s.schedulers),
            offset_ms: if rng.random_bool(0.5) {
                magnitude
            } else {
                -magnitude
            },
        });
    }
    // Both termination behaviours: before 1.27 a deleted pod goes with its phase unchanged.
    s.cluster.kubernetes_minor = if rng.random_bool(0.3) { 26 } else { 31 };
    faults.extend(base.faults.iter().cloned());
    s.faults = faults;
    let line = format!(
        "schedulers {} nodes {}x{} (Kubernetes 1.{}) tasks {} over {:.0} s, runtime {:.0}-{:.0} s, faults [{}], requeue budget {}, batch {}, latencies api {} watch {} db {} ms",
        s.schedulers,
        s.cluster.nodes,
        s.cluster.node_capacity,
        s.cluster.kubernetes_minor,
        s.load.tasks,
        s.duration_s,
        s.load.runtime_min_s,
        s.load.runtime_max_s,
        s.faults
            .iter()
            .map(fault_text)
            .collect::<Vec<_>>()
            .join("; "),
        s.config.pod_launch_failure_retries,
        s.config.worker_pods_creation_batch_size,
        s.latency.api_ms,
        s.latency.watch_ms,
        s.latency.db_ms
    );
    (s, line)
}
