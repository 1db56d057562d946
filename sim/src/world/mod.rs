//! The simulated world: an API server, nodes and their kubelets, a metadata DB, and schedulers
//! that each host one [`podwarden_core::Executor`], driven by one seeded event queue.
//!
//! Determinism: one master seed; each component draws from its own ChaCha8 stream derived from
//! `(seed, component name)`, so adding a component never shifts another's draws; every map is a
//! `BTreeMap`; events are ordered by `(time, sequence)`. The same seed gives the same trace, byte
//! for byte.
//!
//! State lives in leaf modules that import nothing above them: `event` (the queue's events),
//! `cluster` (nodes, pods), `store` (the API server's store and watches), `db` (task instances,
//! jobs), `sched_state` (each scheduler's state). Behaviour lives in the child modules that
//! extend [`World`]: `api` (requests), `kubelet` (pod lifecycles), `nodes` (node loss), `tasks`
//! (load and DB answers), `scheduler` (the loop that drives an executor), `faults` (what a
//! fault does), `checks` (the invariants' facts and violations). This file imports only the
//! leaves, so no module reaches itself.

mod api;
mod checks;
pub(crate) mod cluster;
pub(crate) mod db;
pub(crate) mod event;
mod faults;
#[cfg(test)]
mod hostile_tests;
mod kubelet;
pub(crate) mod livelock;
mod nodes;
pub(crate) mod sched_state;
mod scheduler;
pub(crate) mod served;
pub(crate) mod store;
mod tasks;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use podwarden_core::{Config, Executor, Input, Timestamp};

use crate::custom::Registered;
use crate::extensions::InvariantFactory;
use crate::invariants::{Checker, Violation};
use crate::scenario::{Scenario, ScenarioError};
use crate::summary::Summary;
use crate::trace::{Fnv64, Trace, TraceHeader, TRACE_FORMAT};

use self::cluster::Nodes;
use self::db::Db;
use self::event::Ev;
use self::livelock::{SameInstant, LIVELOCK};
pub use self::sched_state::SchedCounts;
use self::sched_state::{Sched, Status};
use self::store::ApiServer;
pub(crate) use crate::time::{secs, Ms};

#[derive(Debug)]
struct Queued {
    at: Ms,
    seq: u64,
    /// Boxed: an event can hold a whole pod (a watch event) or command, and the queue moves its
    /// entries on every push and pop (about log₂ of its length each), so they stay small.
    ev: Box<Ev>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The load's task arrivals still to queue: task instances `next_ti..end_ti`, whose sequence
/// numbers were reserved from `first_seq` (for `first_ti`) on.
#[derive(Debug, Default)]
struct Arrivals {
    first_seq: u64,
    first_ti: usize,
    next_ti: usize,
    end_ti: usize,
}

/// A component's random stream: ChaCha8 seeded from the master seed and the component's name.
pub(crate) fn stream(seed: u64, component: &str) -> ChaCha8Rng {
    let mut h = Fnv64::default();
    h.write(&seed.to_le_bytes());
    h.write(component.as_bytes());
    ChaCha8Rng::seed_from_u64(h.value())
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// What happened.
    pub summary: Summary,
    /// The first invariant violation, if any (the run stops there).
    pub violation: Option<Violation>,
    /// The trace's rolling hash.
    pub trace_hash: String,
    /// Trace lines written.
    pub trace_lines: u64,
    /// The names of your own invariants checked in this run, besides the built-in ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_invariants: Vec<String>,
    /// The first error met writing the trace to its file, if any: the file is then incomplete
    /// (the hash still covers every line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_error: Option<String>,
}

/// A simulated cluster with its schedulers, ready to run.
pub struct World {
    pub(crate) scenario: Scenario,
    pub(crate) config: Config,
    pub(crate) seed: u64,
    pub(crate) now: Ms,
    /// When the run ends: load duration or heal time, plus the settle bound.
    pub(crate) end: Ms,
    pub(crate) heal: Ms,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    /// The load's arrivals not queued yet ([`Arrivals`]).
    arrivals: Arrivals,
    pub(crate) rng_kubelet: ChaCha8Rng,
    pub(crate) rng_faults: ChaCha8Rng,
    pub(crate) rng_api: ChaCha8Rng,
    pub(crate) rng_load: ChaCha8Rng,
    pub(crate) rng_sched: ChaCha8Rng,
    pub(crate) api: ApiServer,
    pub(crate) nodes: Nodes,
    pub(crate) db: Db,
    pub(crate) scheds: Vec<Sched>,
    pub(crate) next_job_id: u64,
    pub(crate) trace: Trace,
    pub(crate) checker: Checker,
    pub(crate) summary: Summary,
    pub(crate) violation: Option<Violation>,
    /// When worker pods left the store recently (`bounded_core_state`'s slack).
    pub(crate) recent_removals: std::collections::VecDeque<Ms>,
    /// Run past the first violation ([`World::keep_going`]).
    keep_going: bool,
    /// Which fault hit which try, for the failed tries' causes.
    pub(crate) fault_log: crate::failures::FaultLog,
    /// Events at the current instant, and whether they passed the livelock limit.
    same_instant: SameInstant,
    livelocked: bool,
    /// Invariants of the user's own ([`World::with_invariant`]).
    pub(crate) custom: Registered,
    /// Rules of the user's own, given to every executor ([`World::with_policies`]).
    pub(crate) policies: podwarden_core::policy::Policies,
    /// Set when the world is served to schedulers outside it (`podwarden-sim serve`).
    pub(crate) served: Option<served::Served>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.seed)
            .field("now", &self.now)
            .finish()
    }
}

impl World {
    /// Builds the world of `scenario` with `seed` (the scenario's own seed if `None`) and the
    /// scenario's policy.
    ///
    /// # Errors
    /// [`ScenarioError`] if the scenario is invalid.
    pub fn new(scenario: Scenario, seed: Option<u64>, trace: Trace) -> Result<Self, ScenarioError> {
        Self::build(scenario, seed, trace, true)
    }

    /// [`World::new`]; the scenario's schedulers start only with `schedulers` (a served world
    /// has none of its own).
    fn build(
        scenario: Scenario,
        seed: Option<u64>,
        trace: Trace,
        schedulers: bool,
    ) -> Result<Self, ScenarioError> {
        scenario.validate()?;
        let config = scenario.executor_config()?;
        let (_, rules) = scenario.extensions.resolve(&scenario.policy);
        let policies = rules.cloned().unwrap_or_default();
        let invariants = scenario
            .extensions
            .invariants()
            .map(InvariantFactory::make)
            .unwrap_or_default();
        let seed = seed.unwrap_or(scenario.seed);
        let heal = secs(scenario.heal_s);
        let end = secs(scenario.duration_s)
            .max(heal)
            .saturating_add(secs(scenario.expect.lost_task_bound_s));
        let nodes = Nodes::new(scenario.cluster.nodes, scenario.cluster.node_capacity);
        let mut world = Self {
            config,
            seed,
            now: 0,
            end,
            heal,
            seq: 0,
            queue: BinaryHeap::new(),
            arrivals: Arrivals::default(),
            rng_kubelet: stream(seed, "kubelet"),
            rng_faults: stream(seed, "faults"),
            rng_api: stream(seed, "api"),
            rng_load: stream(seed, "load"),
            rng_sched: stream(seed, "schedulers"),
            api: ApiServer::default(),
            nodes,
            db: Db::default(),
            scheds: Vec::new(),
            next_job_id: 1,
            trace,
            checker: Checker::new(&scenario),
            summary: Summary::default(),
            violation: None,
            recent_removals: std::collections::VecDeque::new(),
            keep_going: false,
            fault_log: crate::failures::FaultLog::default(),
            same_instant: SameInstant::new(livelock::limit_for(&scenario)),
            livelocked: false,
            custom: Registered::default(),
            policies,
            served: None,
            scenario,
        };
        world.record_header();
        world.populate(schedulers);
        Ok(invariants.into_iter().fold(world, Self::with_invariant))
    }

    /// Simulated time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    /// The seed in use.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn populate(&mut self, schedulers: bool) {
        if self.scenario.cluster.kubernetes_minor < 27 {
            self.summary.coverage.count("Kubernetes before 1.27");
        }
        self.generate_load();
        for i in 0..self.scenario.schedulers * u32::from(schedulers) {
            let sched = Sched::new();
            self.scheds.push(sched);
            self.start_scheduler(i);
        }
        let faults = self.scenario.faults.clone();
        for fault in faults {
            self.at(secs(fault.at_s()), Ev::Fault { fault });
        }
        self.plan_random_faults();
        self.at(10_000, Ev::Probe);
    }

    /// Queues `ev` at absolute time `at` (never in the past).
    pub(crate) fn at(&mut self, at: Ms, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: at.max(self.now),
            seq: self.seq,
            ev: Box::new(ev),
        }));
    }

    /// Reserves the sequence numbers of the load's task arrivals, task instances `tis` (in
    /// arrival order), and queues the first: each queues the next when it happens
    /// ([`World::queue_next_arrival`]).
    ///
    /// The queue then holds one arrival instead of every future one (400,000 deep from the first
    /// event on a 400,000-task load), and the run is the same event for event: each arrival
    /// keeps the sequence number it would have had queued up front, and is queued before its
    /// time comes (arrival times never decrease, so the next is due no earlier than the one
    /// that queues it).
    fn queue_arrivals(&mut self, tis: std::ops::Range<usize>) {
        self.arrivals = Arrivals {
            first_seq: self.seq + 1,
            first_ti: tis.start,
            next_ti: tis.start,
            end_ti: tis.end,
        };
        self.seq = self.seq.saturating_add(tis.len() as u64);
        self.queue_next_arrival();
    }

    /// Queues the next arrival of the load, if one is left.
    pub(crate) fn queue_next_arrival(&mut self) {
        let ti = self.arrivals.next_ti;
        if ti >= self.arrivals.end_ti {
            return;
        }
        self.arrivals.next_ti += 1;
        let seq = self.arrivals.first_seq + (ti - self.arrivals.first_ti) as u64;
        self.queue.push(Reverse(Queued {
            at: self.db.tis[ti].arrived_at.max(self.now),
            seq,
            ev: Box::new(Ev::TaskArrives { ti }),
        }));
    }

    /// Queues `ev` `delay` from now.
    pub(crate) fn after(&mut self, delay: Ms, ev: Ev) {
        self.at(self.now.saturating_add(delay), ev);
    }

    /// Runs one event. Returns `false` when the run is over (queue empty, end reached, or an
    /// invariant fired).
    pub fn step(&mut self) -> bool {
        if self.livelocked || (self.violation.is_some() && !self.keep_going) {
            return false;
        }
        let Some(Reverse(next)) = self.queue.pop() else {
            return false;
        };
        if next.at > self.end {
            self.queue.push(Reverse(next));
            return false;
        }
        self.now = next.at;
        if self.same_instant.count(next.at, &next.ev) {
            // A livelock ends the run even past a violation (`keep_going`); the first
            // violation stays the one reported.
            self.livelocked = true;
            let detail = self.same_instant.detail();
            self.custom_violation(LIVELOCK, detail);
            return false;
        }
        self.record(&next.ev);
        self.handle(*next.ev);
        self.check_step();
        self.violation.is_none() || self.keep_going
    }

    /// Gives every executor of this world rules of your own (see [`podwarden_core::policy`]),
    /// replacing any given before (the scenario's custom policy too), to run them against the
    /// same faults as ours. Executors already started get them too.
    #[must_use]
    pub fn with_policies(mut self, policies: podwarden_core::policy::Policies) -> Self {
        for s in &mut self.scheds {
            if let Some(ex) = s.exec.take() {
                s.exec = Some(ex.with_policies(policies.clone()));
            }
        }
        self.policies = policies;
        self
    }

    /// Runs past the first violation to the end (it is still the one reported): for exploring
    /// how a policy goes wrong over time in a program of your own, not for checking. The
    /// command line never uses it (a `--plot` run stops where the same run without it stops).
    #[must_use]
    pub fn keep_going(mut self) -> Self {
        self.keep_going = true;
        self
    }

    /// Runs to the end and checks the liveness invariants.
    pub fn run(mut self) -> RunOutcome {
        while self.step() {}
        if !self.livelocked && (self.violation.is_none() || self.keep_going) {
            self.now = self.now.max(self.end);
            self.check_end();
        }
        self.summary.finish(
            self.now,
            &self.db,
            self.api.pods.len(),
            &self.scheds,
            &self.checker,
        );
        if let Some(v) = &self.violation {
            let line = serde_json::json!({
                "violation": {"invariant": v.invariant, "at_ms": v.at_ms, "detail": v.detail}
            });
            self.trace.close_with(&line.to_string());
        }
        let trace_error = self.trace.finish().err();
        RunOutcome {
            summary: self.summary,
            violation: self.violation,
            trace_hash: format!("{:016x}", self.trace.hash()),
            trace_lines: self.trace.lines(),
            custom_invariants: self
                .custom
                .invariants
                .iter()
                .map(|i| i.name().to_string())
                .collect(),
            trace_error,
        }
    }

    fn record(&mut self, ev: &Ev) {
        #[derive(Serialize)]
        struct Line<'a> {
            t: Ms,
            #[serde(flatten)]
            ev: &'a Ev,
        }
        self.trace.record(&Line { t: self.now, ev });
    }

    /// The trace's first line: everything needed to run the same world again (`replay`).
    fn record_header(&mut self) {
        let header = TraceHeader {
            podwarden_trace: TRACE_FORMAT,
            seed: self.seed,
            scenario: self.scenario.clone(),
        };
        self.trace.record(&header);
    }

    /// Records an executor input or command in the trace.
    pub(crate) fn record_io(&mut self, sched: u32, what: &str, value: &impl Serialize) {
        /// `{"t":…,"sched":…,"<what>":…}`.
        struct IoLine<'a, T> {
            t: Ms,
            sched: u32,
            what: &'a str,
            value: &'a T,
        }
        impl<T: Serialize> Serialize for IoLine<'_, T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("t", &self.t)?;
                map.serialize_entry("sched", &self.sched)?;
                map.serialize_entry(self.what, self.value)?;
                map.end()
            }
        }
        self.trace.record(&IoLine {
            t: self.now,
            sched,
            what,
            value,
        });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::TaskArrives { ti } => self.task_arrives(ti),
            Ev::SchedLoop { sched, inc } => self.scheduler_loop(sched, inc),
            Ev::ExecTimer { sched, inc, gen } => self.exec_timer(sched, inc, gen),
            Ev::ApiRequest {
                sched,
                inc,
                command,
            } => self.api_request(sched, inc, command),
            Ev::ApiReply {
                sched,
                inc,
                id,
                outcome,
            } => {
                self.deliver(sched, inc, Input::ApiResult { id, outcome });
            }
            Ev::DbAnswer {
                sched,
                inc,
                command,
            } => self.db_answer(sched, inc, command),
            Ev::WatchDeliver { sched, inc, event } => {
                self.deliver(sched, inc, Input::Watch { event })
            }
            Ev::WatchGone {
                sched,
                inc,
                namespace,
            } => {
                if self.scheds[sched as usize].inc == inc
                    && self.scheds[sched as usize].exec.is_some()
                {
                    self.summary.coverage.count("relist after 410");
                }
                self.deliver(sched, inc, Input::WatchExpired { namespace })
            }
            Ev::Pod { name, gen, step } => self.pod_step(&name, gen, step),
            Ev::Node { node, epoch, step } => self.node_step(node, epoch, step),
            Ev::Fault { fault } => self.apply_fault(fault),
            Ev::StallEnds { sched, inc } => self.resume_scheduler(sched, inc),
            Ev::PartitionHeals { sched } => self.heal_partition(sched),
            Ev::DbRecovers => {
                if self.now >= self.db.outage_until {
                    self.db.outage = false;
                }
            }
            Ev::ApiErrorsEnd => {
                if self.now >= self.api.errors_until {
                    self.api.errors = None;
                }
            }
            Ev::Restart { sched } => self.start_scheduler(sched),
            Ev::Uncordon { node } => {
                self.nodes.update(node as usize, |n| n.cordoned = false);
            }
            Ev::Probe => self.probe(),
        }
    }

    /// Pods in the API server's store now.
    #[must_use]
    pub fn pod_count(&self) -> usize {
        self.api.pods.len()
    }

    /// Task instances by state now (`None`: not arrived yet).
    #[must_use]
    pub fn task_states(
        &self,
    ) -> std::collections::BTreeMap<Option<podwarden_core::db::TaskState>, usize> {
        let mut m = std::collections::BTreeMap::new();
        for t in &self.db.tis {
            *m.entry(t.state()).or_default() += 1;
        }
        m
    }

    /// The scheduler ids alive now (up and not stalled), in scheduler order.
    #[must_use]
    pub fn live_schedulers(&self) -> Vec<String> {
        self.scheds
            .iter()
            .filter(|s| s.status == Status::Up)
            .map(|s| s.id.clone())
            .collect()
    }

    /// The executor of scheduler `sched`, if it is up (for inspection).
    #[must_use]
    pub fn executor(&self, sched: u32) -> Option<&Executor> {
        self.scheds
            .get(sched as usize)
            .and_then(|s| s.exec.as_ref())
    }
}
