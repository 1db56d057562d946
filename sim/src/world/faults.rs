//! What each fault does to the world, and the random faults drawn from the seed.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::scenario::Fault;

use super::event::Ev;
use super::World;
use crate::time::secs;

/// How long a drained node stays cordoned.
const DRAIN_MAINTENANCE_MS: u64 = 300_000;

impl World {
    pub(crate) fn apply_fault(&mut self, fault: Fault) {
        self.summary.faults += 1;
        self.summary.coverage.count(fault.kind_name());
        let index = self
            .fault_log
            .fault(self.summary.failure_tally(), &fault, self.now);
        match fault {
            // A served world's watches are the server's: each open one ends with 410.
            Fault::WatchExpiry { .. } if self.served.is_some() => {
                if let Some(served) = self.served.as_mut() {
                    served.watch_expiries += 1;
                }
            }
            // A served world has no scheduler of its own to crash, stall, cut off or skew.
            Fault::CrashScheduler { .. }
            | Fault::StallScheduler { .. }
            | Fault::Partition { .. }
            | Fault::ClockSkew { .. }
            | Fault::ClockStep { .. }
                if self.scheds.is_empty() => {}
            Fault::DrainNode { node, .. } => {
                // In range: validated at load (`faults[i].node` below `cluster.nodes`).
                let node = node as usize;
                self.nodes.update(node, |n| n.cordoned = true);
                // Maintenance done, the node is uncordoned (as `kubectl uncordon` after a drain).
                self.after(DRAIN_MAINTENANCE_MS, Ev::Uncordon { node: node as u32 });
                for name in self.pods_on(node) {
                    self.fault_hits(index, &name);
                    self.delete_pod(&name, 30, Some("EvictionByEvictionAPI"));
                }
            }
            Fault::SigtermStorm { pods, .. } => {
                for name in self.pick_pods(pods) {
                    self.fault_hits(index, &name);
                    self.delete_pod(&name, 30, None);
                }
            }
            Fault::Preempt { pods, .. } => {
                for name in self.pick_pods(pods) {
                    self.fault_hits(index, &name);
                    self.delete_pod(&name, 30, Some("PreemptionByScheduler"));
                }
            }
            Fault::NodeLoss {
                node,
                duration_s,
                returns,
                ..
            } => {
                // In range: validated at load (`faults[i].node` below `cluster.nodes`).
                let already_lost = self.nodes.get(node as usize).is_none_or(|n| n.lost);
                if !already_lost {
                    for name in self.pods_on(node as usize) {
                        self.fault_hits(index, &name);
                    }
                }
                self.lose_node(node as usize, duration_s, returns);
            }
            Fault::CrashScheduler {
                scheduler,
                restart_after_s,
                ..
            } => {
                let i = self.sched_index(scheduler);
                if self.scheds[i as usize].exec.is_some() {
                    self.stop_scheduler(i);
                    self.after(secs(restart_after_s).max(1), Ev::Restart { sched: i });
                }
            }
            Fault::StallScheduler {
                scheduler,
                duration_s,
                ..
            } => {
                let i = self.sched_index(scheduler);
                self.stall_scheduler(i);
                if let Some(d) = duration_s {
                    let inc = self.scheds[i as usize].inc;
                    self.after(secs(d).max(1), Ev::StallEnds { sched: i, inc });
                }
            }
            Fault::Partition {
                scheduler,
                duration_s,
                ..
            } => {
                let i = self.sched_index(scheduler);
                let until = self.now.saturating_add(secs(duration_s).max(1));
                let s = &mut self.scheds[i as usize];
                s.partitioned = true;
                s.partitioned_until = s.partitioned_until.max(until);
                for (_, w) in self.api.watches_of_mut(i) {
                    w.live = false;
                }
                self.at(until, Ev::PartitionHeals { sched: i });
            }
            Fault::WatchExpiry { scheduler, .. } => {
                let i = self.sched_index(scheduler);
                for (_, w) in self.api.watches_of_mut(i) {
                    w.live = false;
                }
                self.expire_watches(i);
            }
            Fault::ClockSkew {
                scheduler,
                offset_ms,
                ..
            }
            | Fault::ClockStep {
                scheduler,
                offset_ms,
                ..
            } => {
                let i = self.sched_index(scheduler);
                let skew = &mut self.scheds[i as usize].skew_ms;
                *skew = skew.saturating_add(offset_ms);
            }
            Fault::DbOutage { duration_s, .. } => {
                let until = self.now.saturating_add(secs(duration_s).max(1));
                self.db.outage = true;
                self.db.outage_until = self.db.outage_until.max(until);
                self.at(until, Ev::DbRecovers);
            }
            Fault::ApiErrors {
                duration_s,
                code,
                rate,
                ..
            } => {
                let until = self.now.saturating_add(secs(duration_s).max(1));
                self.api.errors = Some((code, rate.clamp(0.0, 1.0)));
                self.api.errors_until = self.api.errors_until.max(until);
                self.at(until, Ev::ApiErrorsEnd);
            }
        }
    }

    /// Fault `index` hits pod `name` (counted for a worker pod: its try may fail of it).
    fn fault_hits(&mut self, index: usize, name: &str) {
        if let Some(p) = self.api.pods.get(name) {
            if p.kind == super::cluster::PodKind::Worker {
                self.fault_log
                    .hit(self.summary.failure_tally(), index, &p.key);
            }
        }
    }

    /// A fault's scheduler index, validated at load (`faults[i].scheduler` below `schedulers`;
    /// it used to wrap around silently).
    fn sched_index(&self, scheduler: u32) -> u32 {
        debug_assert!(scheduler < self.scenario.schedulers);
        scheduler
    }

    /// `n` live worker pods chosen from the seed.
    fn pick_pods(&mut self, n: u32) -> Vec<String> {
        let mut live = self.live_worker_pods();
        live.shuffle(&mut self.rng_faults);
        live.truncate(n as usize);
        live
    }

    /// The partition ends; the scheduler's watch missed events and gets 410 Gone.
    pub(crate) fn heal_partition(&mut self, i: u32) {
        if self.now < self.scheds[i as usize].partitioned_until {
            return;
        }
        self.scheds[i as usize].partitioned = false;
        self.expire_watches(i);
    }

    /// Every watch of scheduler `i` ends with 410 Gone, each told apart where the executor
    /// runs one per namespace (`WatchExpired` names it), else one for the executor's watch.
    fn expire_watches(&mut self, i: u32) {
        let inc = self.scheds[i as usize].inc;
        for scope in self.config.watch_scopes() {
            let namespace = scope.filter(|_| self.config.multi_namespace_mode);
            self.after(
                self.scenario.latency.watch_ms,
                Ev::WatchGone {
                    sched: i,
                    inc,
                    namespace,
                },
            );
        }
    }

    /// Draws the random faults of the scenario over `[0, heal)` from the fault stream.
    pub(crate) fn plan_random_faults(&mut self) {
        let r = self.scenario.random_faults.clone();
        let hours = self.heal as f64 / 3_600_000.0;
        let schedulers = self.scenario.schedulers;
        for (rate, make) in [
            (r.sigterms_per_hour, 0u8),
            (r.watch_expiries_per_hour, 1),
            (r.preemptions_per_hour, 2),
        ] {
            // Validation keeps rates finite and non-negative.
            let expected = rate.max(0.0) * hours;
            let mut n = expected.floor() as u64;
            if self
                .rng_faults
                .random_bool((expected - expected.floor()).clamp(0.0, 1.0))
            {
                n += 1;
            }
            for _ in 0..n {
                let at = self.rng_faults.random_range(0..self.heal.max(1));
                let at_s = at as f64 / 1000.0;
                let fault = match make {
                    0 => Fault::SigtermStorm { at_s, pods: 1 },
                    1 => Fault::WatchExpiry {
                        at_s,
                        scheduler: self.rng_faults.random_range(0..schedulers),
                    },
                    _ => Fault::Preempt { at_s, pods: 1 },
                };
                self.at(at, Ev::Fault { fault });
            }
        }
    }
}
