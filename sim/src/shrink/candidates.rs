//! The smaller worlds a shrink step tries, biggest reductions first: a fault dropped, fewer
//! schedulers, nodes or tasks, a shorter load, knobs back to their defaults, milder faults.

use crate::scenario::{Fault, Scenario};

/// Smaller worlds than `s`, the biggest reductions first. Each is `s` with one thing made
/// smaller or simpler, so a kept candidate is always a strict reduction and shrinking ends.
pub(super) fn candidates(s: &Scenario) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    let mut push = |what: String, c: Scenario| {
        if c != *s && c.validate().is_ok() {
            out.push((what, c));
        }
    };
    for (i, f) in s.faults.iter().enumerate() {
        let mut c = s.clone();
        c.faults.remove(i);
        push(format!("drop fault {}", fault_name(f)), c);
    }
    for n in smaller_counts(s.schedulers, 1) {
        let mut c = s.clone();
        c.schedulers = n;
        c.faults
            .retain(|f| fault_scheduler(f).is_none_or(|i| i < n));
        push(format!("schedulers {} -> {n}", s.schedulers), c);
    }
    for n in smaller_counts(s.cluster.nodes, 1) {
        let mut c = s.clone();
        c.cluster.nodes = n;
        c.faults.retain(|f| fault_node(f).is_none_or(|i| i < n));
        push(format!("nodes {} -> {n}", s.cluster.nodes), c);
    }
    for n in smaller_counts(s.load.tasks, 1) {
        let mut c = s.clone();
        c.load.tasks = n;
        push(format!("tasks {} -> {n}", s.load.tasks), c);
    }
    for factor in [0.25, 0.5, 0.75] {
        let duration = (s.duration_s * factor).round().max(30.0);
        if duration >= s.duration_s {
            continue;
        }
        let mut c = s.clone();
        let scale = duration / s.duration_s;
        c.duration_s = duration;
        c.heal_s = (s.heal_s * scale).round();
        c.faults.retain(|f| f.at_s() <= c.heal_s);
        push(format!("duration {} s -> {duration} s", s.duration_s), c);
    }
    let rates: [(&str, Knob); 11] = [
        ("random sigterms", |c| {
            &mut c.random_faults.sigterms_per_hour
        }),
        ("random watch expiries", |c| {
            &mut c.random_faults.watch_expiries_per_hour
        }),
        ("random preemptions", |c| {
            &mut c.random_faults.preemptions_per_hour
        }),
        ("task failure rate", |c| &mut c.load.failure_rate),
        ("KPO fraction", |c| &mut c.load.kpo_fraction),
        ("stuck sidecar rate", |c| &mut c.load.sidecar_stuck_rate),
        ("transient image pull failures", |c| {
            &mut c.cluster.image_pull_transient_failure_rate
        }),
        ("permanent image pull failures", |c| {
            &mut c.cluster.image_pull_permanent_failure_rate
        }),
        ("OOM kill rate", |c| &mut c.cluster.oom_kill_rate),
        ("admission rejection rate", |c| {
            &mut c.cluster.admission_rejection_rate
        }),
        ("task runtime spread", |c| &mut c.load.runtime_max_s),
    ];
    for (name, field) in rates {
        let mut c = s.clone();
        let value = *field(&mut c);
        // The runtime spread shrinks towards the shortest runtime, the rates towards zero.
        let floor = if name == "task runtime spread" {
            c.load.runtime_min_s
        } else {
            0.0
        };
        if value <= floor {
            continue;
        }
        *field(&mut c) = floor;
        push(format!("{name} {value} -> {floor}"), c.clone());
        *field(&mut c) = floor + (value - floor) / 2.0;
        push(
            format!("{name} {value} -> {}", floor + (value - floor) / 2.0),
            c,
        );
    }
    if s.load.retries > 0 {
        let mut c = s.clone();
        c.load.retries = 0;
        push(format!("user retries {} -> 0", s.load.retries), c);
    }
    if s.load.runtime_min_s > 5.0 {
        let mut c = s.clone();
        c.load.runtime_min_s = (s.load.runtime_min_s / 2.0).max(5.0).round();
        c.load.runtime_max_s = c.load.runtime_max_s.max(c.load.runtime_min_s);
        push(
            format!(
                "shortest runtime {} s -> {} s",
                s.load.runtime_min_s, c.load.runtime_min_s
            ),
            c,
        );
    }
    for (what, c) in reset_to_defaults(s) {
        push(what, c);
    }
    for (i, f) in s.faults.iter().enumerate() {
        for milder in milder_faults(f) {
            let mut c = s.clone();
            c.faults[i] = milder.clone();
            push(format!("{} -> {}", fault_name(f), fault_name(&milder)), c);
        }
    }
    out
}

/// Knobs the other reductions lower step by step (or that identify the run): never reset to
/// their default, which may be larger, so that shrinking always ends.
const REDUCED_KEYS: [&str; 10] = [
    "name",
    "description",
    "seed",
    "policy",
    "schedulers",
    "duration_s",
    "heal_s",
    "faults",
    "random_faults",
    "expect",
];
const REDUCED_SUBKEYS: [(&str, &[&str]); 2] = [
    (
        "load",
        &[
            "tasks",
            "retries",
            "runtime_min_s",
            "runtime_max_s",
            "failure_rate",
            "kpo_fraction",
            "sidecar_stuck_rate",
        ],
    ),
    (
        "cluster",
        &[
            "nodes",
            "image_pull_transient_failure_rate",
            "image_pull_permanent_failure_rate",
            "oom_kill_rate",
            "admission_rejection_rate",
        ],
    ),
];

/// Every other knob that differs from its default, set back to it: a shrunk case should show
/// only what it needs (a latency, a batch size, a config option the swarm drew).
fn reset_to_defaults(s: &Scenario) -> Vec<(String, Scenario)> {
    let (Ok(current), Ok(defaults)) = (
        toml::Table::try_from(s),
        toml::Table::try_from(Scenario::default()),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in &current {
        if REDUCED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Some(default) = defaults.get(key) else {
            continue;
        };
        let (toml::Value::Table(table), toml::Value::Table(default_table)) = (value, default)
        else {
            if value != default {
                let mut t = current.clone();
                t.insert(key.clone(), default.clone());
                out.extend(from_table(t).map(|c| (format!("{key} back to its default"), c)));
            }
            continue;
        };
        let reduced = REDUCED_SUBKEYS
            .iter()
            .find(|(k, _)| *k == key.as_str())
            .map_or(&[][..], |(_, subs)| *subs);
        for (sub, v) in table {
            let Some(d) = default_table.get(sub) else {
                continue;
            };
            if v == d || reduced.contains(&sub.as_str()) {
                continue;
            }
            let mut t = current.clone();
            if let Some(toml::Value::Table(section)) = t.get_mut(key) {
                section.insert(sub.clone(), d.clone());
            }
            out.extend(from_table(t).map(|c| (format!("{key}.{sub} back to its default"), c)));
        }
    }
    out
}

fn from_table(t: toml::Table) -> Option<Scenario> {
    toml::Value::Table(t).try_into().ok()
}

/// A numeric knob of a scenario that shrinking may lower.
type Knob = fn(&mut Scenario) -> &mut f64;

/// 1, then half, then one less: the big steps first, the last step to find the exact edge.
pub(super) fn smaller_counts(n: u32, min: u32) -> Vec<u32> {
    let mut out: Vec<u32> = [min, n / 2, n.saturating_sub(1)]
        .into_iter()
        .filter(|&m| m >= min && m < n)
        .collect();
    out.dedup();
    out
}

/// Smaller versions of one fault: fewer pods, shorter outages, earlier in the run.
fn milder_faults(f: &Fault) -> Vec<Fault> {
    let mut out = Vec::new();
    match f {
        Fault::SigtermStorm { at_s, pods } | Fault::Preempt { at_s, pods } if *pods > 1 => {
            for fewer in [1, pods / 2] {
                out.push(match f {
                    Fault::SigtermStorm { .. } => Fault::SigtermStorm {
                        at_s: *at_s,
                        pods: fewer,
                    },
                    _ => Fault::Preempt {
                        at_s: *at_s,
                        pods: fewer,
                    },
                });
            }
        }
        Fault::Partition {
            at_s,
            scheduler,
            duration_s,
        } if *duration_s > 1.0 => out.push(Fault::Partition {
            at_s: *at_s,
            scheduler: *scheduler,
            duration_s: (duration_s / 2.0).round(),
        }),
        Fault::DbOutage { at_s, duration_s } if *duration_s > 1.0 => out.push(Fault::DbOutage {
            at_s: *at_s,
            duration_s: (duration_s / 2.0).round(),
        }),
        Fault::CrashScheduler {
            at_s,
            scheduler,
            restart_after_s,
        } if *restart_after_s > 1.0 => out.push(Fault::CrashScheduler {
            at_s: *at_s,
            scheduler: *scheduler,
            restart_after_s: (restart_after_s / 2.0).round(),
        }),
        Fault::NodeLoss {
            at_s,
            node,
            duration_s,
            returns,
        } if *duration_s > 1.0 => out.push(Fault::NodeLoss {
            at_s: *at_s,
            node: *node,
            duration_s: (duration_s / 2.0).round(),
            returns: *returns,
        }),
        Fault::StallScheduler {
            at_s,
            scheduler,
            duration_s: Some(d),
        } if *d > 1.0 => out.push(Fault::StallScheduler {
            at_s: *at_s,
            scheduler: *scheduler,
            duration_s: Some((d / 2.0).round()),
        }),
        Fault::ClockStep {
            at_s,
            scheduler,
            offset_ms,
        } if offset_ms.unsigned_abs() > 1_000 => out.push(Fault::ClockStep {
            at_s: *at_s,
            scheduler: *scheduler,
            offset_ms: offset_ms / 2,
        }),
        _ => {}
    }
    out.retain(|m| m != f);
    out
}

/// The fault's kind and its main numbers, for the step log.
fn fault_name(f: &Fault) -> String {
    match f {
        Fault::DrainNode { at_s, node } => format!("drain_node(node {node} at {at_s:.0} s)"),
        Fault::SigtermStorm { at_s, pods } => format!("sigterm_storm({pods} pods at {at_s:.0} s)"),
        Fault::NodeLoss {
            at_s,
            node,
            duration_s,
            returns,
        } => format!(
            "node_loss(node {node} at {at_s:.0} s for {duration_s:.0} s, {})",
            if *returns { "returns" } else { "deleted" }
        ),
        Fault::Preempt { at_s, pods } => format!("preempt({pods} pods at {at_s:.0} s)"),
        Fault::CrashScheduler {
            at_s,
            scheduler,
            restart_after_s,
        } => format!(
            "crash_scheduler(scheduler {scheduler} at {at_s:.0} s, restart after {restart_after_s:.0} s)"
        ),
        Fault::StallScheduler {
            at_s,
            scheduler,
            duration_s,
        } => match duration_s {
            Some(d) => format!("stall_scheduler(scheduler {scheduler} at {at_s:.0} s for {d:.0} s)"),
            None => format!("stall_scheduler(scheduler {scheduler} at {at_s:.0} s)"),
        },
        Fault::Partition {
            at_s,
            scheduler,
            duration_s,
        } => format!("partition(scheduler {scheduler} at {at_s:.0} s for {duration_s:.0} s)"),
        Fault::WatchExpiry { at_s, scheduler } => {
            format!("watch_expiry(scheduler {scheduler} at {at_s:.0} s)")
        }
        Fault::ClockSkew {
            scheduler,
            offset_ms,
            ..
        } => format!("clock_skew(scheduler {scheduler} by {offset_ms} ms)"),
        Fault::ClockStep {
            at_s,
            scheduler,
            offset_ms,
        } => format!("clock_step(scheduler {scheduler} by {offset_ms} ms at {at_s:.0} s)"),
        Fault::DbOutage { at_s, duration_s } => {
            format!("db_outage(at {at_s:.0} s for {duration_s:.0} s)")
        }
        Fault::ApiErrors {
            at_s, code, rate, ..
        } => format!("api_errors({code} on {rate} of requests at {at_s:.0} s)"),
    }
}

fn fault_scheduler(f: &Fault) -> Option<u32> {
    match f {
        Fault::CrashScheduler { scheduler, .. }
        | Fault::StallScheduler { scheduler, .. }
        | Fault::Partition { scheduler, .. }
        | Fault::WatchExpiry { scheduler, .. }
        | Fault::ClockSkew { scheduler, .. }
        | Fault::ClockStep { scheduler, .. } => Some(*scheduler),
        _ => None,
    }
}

fn fault_node(f: &Fault) -> Option<u32> {
    match f {
        Fault::DrainNode { node, .. } | Fault::NodeLoss { node, .. } => Some(*node),
        _ => None,
    }
}
