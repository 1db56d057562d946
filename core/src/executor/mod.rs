//! [`Executor`]: one scheduler's pod-lifecycle state machine, composing the policy modules.
//!
//! This module owns the bookkeeping (tries, pods, commands awaiting answers, timers) and the
//! contract's entry points; each concern's flow lives in a child module (`tracking`: launch,
//! watch, completion and relist; `requeueing`; `adopting`; `sweeping`: zombies, pending timeout
//! and revoke). The decisions themselves are pure functions in [`crate::watch`],
//! [`crate::launch`], [`crate::completion`], [`crate::requeue`], [`crate::adoption`],
//! [`crate::liveness`] and [`crate::zombie`]. State is kept in ordered maps so that anything that
//! reaches a command comes out in the same order on every run.

mod adopting;
mod pod_table;
mod requeueing;
mod sweeping;
mod tracking;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::adoption::OrphanRound;
use crate::budget::TokenBucket;
use crate::clock::HostClock;
use crate::command::{ApiOutcome, Command, CommandId, CommandKind};
use crate::completion::{Disposal, Evidence};
use crate::config::{Config, ConfigError};
use crate::db::DbOutcome;
use crate::health::{Health, UnhealthyReasons};
use crate::input::{Input, InputError, PodTemplate};
use crate::key::TaskKey;
use crate::label;
use crate::launch::LaunchQueue;
use crate::liveness::{HeartbeatRecord, PeerLiveness};
use crate::pod::{PodPhase, PodRef, PodView};
use crate::requeue::RequeueCause;
use crate::selector::LabelSelector;
use crate::time::{TimerKind, TimerTable, Timestamp};
use crate::watch::FailureDetails;

/// Where a tracked try is.
#[derive(Debug, Clone, PartialEq)]
enum TaskPhase {
    /// Waiting in the launch queue.
    Queued,
    /// Its current pod (created, its create in flight, or adopted).
    Launched { pod: PodRef },
    /// Its current pod failed; the DB is being asked whether the try is still QUEUED.
    Deciding { pod: PodRef },
}

#[derive(Debug, Clone, PartialEq)]
struct Task {
    /// What its pods run; `None` for a try adopted without a template (it cannot be relaunched).
    /// Boxed: it is read once per launch, and inline it would make every tracked try 88 bytes
    /// bigger (see `docs/performance.md`, memory per tracked try).
    template: Option<Box<PodTemplate>>,
    /// The launch number of the current pod, part of its name; kept across publish retries so a
    /// retried create is idempotent, fresh for every new pod.
    launch: Option<u64>,
    /// Transient create errors retried so far (`task_publish_max_retries`).
    publish_retries: u32,
    /// When the current pod's first create failed (`task_publish_retry_timeout`).
    publish_first_failure: Option<Timestamp>,
    /// Transparent requeues used (`pod_launch_failure_retries`), carried on the pods.
    requeues: u32,
    /// What the try remembers of its pods' failures; boxed, and only once a pod failed: most
    /// tries never fail, and inline it would make every tracked try 40 bytes bigger.
    failures: Option<Box<FailureMemory>>,
    phase: TaskPhase,
}

/// A try's memory of its pods' failures, for one decision per pod failure.
#[derive(Debug, Clone, PartialEq, Default)]
struct FailureMemory {
    /// Uids of this try's pods whose failure was already counted.
    failed_pods: BTreeSet<String>,
    /// Name of the pod of the last requeue (Airflow's dedupe memory, for `last_pod`).
    last_requeued_pod: Option<String>,
}

impl Task {
    fn new(template: Option<PodTemplate>, requeues: u32, phase: TaskPhase) -> Self {
        Self {
            template: template.map(Box::new),
            launch: None,
            publish_retries: 0,
            publish_first_failure: None,
            requeues,
            failures: None,
            phase,
        }
    }
}

/// A pod this executor created, adopted, or is cleaning up.
#[derive(Debug, Clone, PartialEq)]
struct PodRecord {
    /// The try's key, shared with the try table's entry (one copy of its strings).
    key: Arc<TaskKey>,
    uid: String,
    last_phase: Option<PodPhase>,
    /// Seen in a watch event or a list: it exists (or existed).
    seen: bool,
    /// Its create was answered OK (or AlreadyExists): it exists unless deleted since.
    created: bool,
    /// It existed when the running relist was sent (seen, or created before): a list without it
    /// means it was deleted meanwhile.
    listable: bool,
    /// Its outcome was taken; a delete or done-label is under way. Later events of this pod are
    /// replays and produce nothing.
    finishing: bool,
    /// While it is Pending: since when, and why. Boxed: most tracked pods have started, and
    /// inline it would make each record 32 bytes bigger.
    pending: Option<Box<PendingSince>>,
}

/// A Pending pod's wait, for the pending timeout.
#[derive(Debug, Clone, PartialEq)]
struct PendingSince {
    /// Since when (our clock) it has been Pending.
    since: Timestamp,
    /// The main container's last waiting reason, for the pending-timeout report.
    waiting_reason: Option<String>,
}

impl PodRecord {
    fn new(key: Arc<TaskKey>, uid: String, seen: bool, finishing: bool) -> Self {
        Self {
            key,
            uid,
            last_phase: None,
            seen,
            created: false,
            listable: false,
            finishing,
            pending: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Cleanup {
    pod: PodRef,
    disposal: Disposal,
    /// Retries already made.
    attempt: u32,
}

/// A failed pod waiting for the DB's answer on its try.
#[derive(Debug, Clone, PartialEq)]
struct PendingDecision {
    key: TaskKey,
    pod: PodRef,
    details: FailureDetails,
    evidence: Evidence,
    cause: RequeueCause,
    /// The pod was deleted while Pending (row 4): without a requeue the try waits for the
    /// scheduler's stuck-in-queued revoke, as in Airflow, instead of failing.
    deleted_pending: bool,
    /// The host's requeue policy said no: the DB is asked only for a pod deleted while Pending,
    /// which then waits for the revoke as when the budget is used up.
    vetoed: bool,
    /// When the DB was first asked (`pod_launch_failure_db_retry_timeout`).
    first_asked: Timestamp,
    /// Times the DB could not answer so far.
    unanswered: u32,
}

/// A handed-over try's pod being relabelled to this executor.
#[derive(Debug, Clone, PartialEq)]
struct OrphanClaim {
    round: u64,
    key: TaskKey,
    pod: PodRef,
    uid: String,
    phase: Option<PodPhase>,
    /// Requeues used, from the pod's `podwarden/launch-attempt` annotation.
    requeues: u32,
}

/// What an answer is for.
#[derive(Debug, Clone, PartialEq)]
enum Awaiting {
    Create {
        key: TaskKey,
        pod: PodRef,
    },
    Cleanup(Cleanup),
    Relist,
    TaskState(Box<PendingDecision>),
    OrphanList {
        round: u64,
    },
    OrphanPatch(OrphanClaim),
    CompletedList,
    /// A relabel of a dead scheduler's pod, to be disposed of as `disposal` once it is ours.
    CompletedPatch {
        pod: PodRef,
        key: TaskKey,
        disposal: Disposal,
    },
    LeftoverList,
    LeftoverQuery {
        candidates: Vec<PodView>,
    },
    ZombieList,
    ZombieQuery {
        candidates: Vec<PodView>,
    },
    ZombieDelete {
        pod: PodRef,
    },
    RevokeList {
        key: TaskKey,
    },
    Revoke,
}

impl Awaiting {
    fn wants_db(&self) -> bool {
        matches!(
            self,
            Self::TaskState(_) | Self::ZombieQuery { .. } | Self::LeftoverQuery { .. }
        )
    }

    fn wants_list(&self) -> bool {
        matches!(
            self,
            Self::Relist
                | Self::OrphanList { .. }
                | Self::CompletedList
                | Self::LeftoverList
                | Self::ZombieList
                | Self::RevokeList { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct WatchState {
    resource_version: String,
    relisting: bool,
    relist_failures: u32,
}

/// Counts of what the executor holds, for hosts, tests and the simulator's bounded-state check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StateSize {
    /// Tries queued, running, or waiting for a requeue decision.
    pub tasks: usize,
    /// Failed pods whose DB question waits to be asked again (the DB could not answer).
    #[serde(default)]
    pub db_retries: usize,
    /// Pods tracked (current pods of tries, and finished pods whose clean-up is under way).
    pub pods: usize,
    /// Commands sent (or held) and not yet answered.
    pub awaiting_replies: usize,
    /// Commands waiting for the API budget.
    pub held_commands: usize,
    /// Clean-ups waiting for their retry time.
    pub cleanup_retries: usize,
    /// Orphan hand-overs in progress.
    pub orphan_rounds: usize,
    /// Peer schedulers whose heartbeats are remembered.
    pub peers: usize,
}

/// One scheduler's executor. See the crate documentation for the drive rule.
#[derive(Debug, Clone)]
pub struct Executor {
    config: Config,
    scheduler_id: String,
    /// The host's clock, kept monotonic: its core time is the executor's `now`.
    clock: HostClock,
    last_driven: Timestamp,
    last_watch_progress: Timestamp,
    last_launch_progress: Timestamp,
    next_id: u64,
    /// Pods launched so far; numbers every pod name uniquely within this executor.
    next_launch: u64,
    outbox: VecDeque<Command>,
    held: VecDeque<Command>,
    budget: TokenBucket,
    timers: TimerTable,
    awaiting: BTreeMap<CommandId, Awaiting>,
    /// Tracked tries; the key is shared with the try's pod records.
    tasks: BTreeMap<Arc<TaskKey>, Task>,
    pods: pod_table::PodTable,
    launch: LaunchQueue,
    watch: WatchState,
    /// Clean-up retries by due time; the id breaks ties in issue order.
    cleanup_retries: BTreeMap<(Timestamp, u64), Cleanup>,
    /// DB questions of failed pods to ask again, by due time; the id breaks ties.
    db_retries: BTreeMap<(Timestamp, u64), PendingDecision>,
    /// Pods whose deletion was asked for while they could still start, not confirmed yet, with
    /// their try: the try gets no new pod until each is confirmed (two pods of one try must never
    /// both be able to start the task).
    unconfirmed_deletes: BTreeMap<PodRef, TaskKey>,
    /// Failed pods whose disposal (done label or deletion) is not confirmed yet.
    disposing: BTreeSet<PodRef>,
    /// Requeues waiting for their failed pod's disposal to be confirmed.
    requeue_after_disposal: BTreeMap<PodRef, PendingDecision>,
    peers: PeerLiveness,
    orphan_rounds: BTreeMap<u64, OrphanRound>,
    /// A completed-pod adoption is due but waits for the first heartbeat snapshot.
    completed_adoption_waiting: bool,
    completed_adoption_in_flight: bool,
    zombie_sweep_in_flight: bool,
    zombie_deletes: BTreeSet<PodRef>,
    /// Orphan relabels in flight, by pod: a watch event showing the pod with our label proves
    /// the relabel applied, even before its reply arrives.
    orphan_patches: BTreeMap<PodRef, CommandId>,
    /// Pod owners no heartbeat row names, with when they were first seen unknown.
    unknown_owners: BTreeMap<String, Timestamp>,
    /// The host's own rules, asked after podwarden's ([`Executor::with_policies`]).
    policies: crate::policy::Policies,
    /// Reports held since a stall, until our own job is seen running
    /// (`fence_reports_after_stall`); `None` while not fenced.
    fenced_reports: Option<Vec<CommandKind>>,
    /// The clock's step count when last driven, to notice a new stall or step.
    clock_steps_seen: u64,
    /// When the last heartbeat snapshot (readable or not) arrived.
    last_heartbeats_at: Option<Timestamp>,
}

impl Executor {
    /// Builds an executor for scheduler `scheduler_id` (written verbatim as the `airflow-worker`
    /// label; it must be unique per executor incarnation, as Airflow's job ids are). Its first
    /// command lists its own pods, so that a restarted scheduler picks up what it left; the
    /// watch starts from that list. Completed-pod adoption runs at once (as Airflow's first
    /// loop does), then every `orphaned_tasks_check_interval`.
    ///
    /// # Errors
    /// [`ConfigError`] if the configuration or the scheduler id is invalid.
    pub fn new(
        config: Config,
        scheduler_id: impl Into<String>,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let scheduler_id = scheduler_id.into();
        Config::validate_scheduler_id(&scheduler_id)?;
        let budget = TokenBucket::new(config.api_qps, config.api_burst, now);
        let mut timers = TimerTable::default();
        timers.set(TimerKind::CompletedAdoption, now);
        if config.kpo_zombie_pod_cleanup_enabled {
            timers.set(
                TimerKind::ZombieSweep,
                now.plus_ms(config.zombie_interval_ms()),
            );
        }
        if config.pending_timeout_ms().is_some() {
            timers.set(
                TimerKind::PendingCheck,
                now.plus_ms(config.pending_check_ms()),
            );
        }
        let mut ex = Self {
            config,
            scheduler_id,
            clock: HostClock::new(now),
            last_driven: now,
            last_watch_progress: now,
            last_launch_progress: now,
            next_id: 0,
            next_launch: 0,
            outbox: VecDeque::new(),
            held: VecDeque::new(),
            budget,
            timers,
            awaiting: BTreeMap::new(),
            tasks: BTreeMap::new(),
            pods: pod_table::PodTable::default(),
            launch: LaunchQueue::default(),
            watch: WatchState::default(),
            cleanup_retries: BTreeMap::new(),
            db_retries: BTreeMap::new(),
            unconfirmed_deletes: BTreeMap::new(),
            disposing: BTreeSet::new(),
            requeue_after_disposal: BTreeMap::new(),
            peers: PeerLiveness::default(),
            orphan_rounds: BTreeMap::new(),
            completed_adoption_waiting: false,
            completed_adoption_in_flight: false,
            zombie_sweep_in_flight: false,
            zombie_deletes: BTreeSet::new(),
            orphan_patches: BTreeMap::new(),
            unknown_owners: BTreeMap::new(),
            policies: crate::policy::Policies::default(),
            fenced_reports: None,
            clock_steps_seen: 0,
            last_heartbeats_at: None,
        };
        ex.start_relist();
        ex.arm_timers();
        Ok(ex)
    }

    /// The try table's shared copy of `key` (a pod record holds the same one), or a new copy
    /// for a try not tracked.
    fn shared_key(&self, key: &TaskKey) -> Arc<TaskKey> {
        self.tasks
            .get_key_value(key)
            .map_or_else(|| Arc::new(key.clone()), |(k, _)| Arc::clone(k))
    }

    /// Adds rules of the host's own (replacing any given before): each is asked when
    /// podwarden's rules would act on its concern, and can only say no. See
    /// [`crate::policy`].
    #[must_use]
    pub fn with_policies(mut self, policies: crate::policy::Policies) -> Self {
        self.policies = policies;
        self
    }

    /// Feeds one input. Drain [`Self::poll_command`] afterwards.
    ///
    /// # Errors
    /// [`InputError`] for an input that cannot be applied; the executor stays consistent and
    /// keeps working (a bad input never poisons later ones).
    pub fn handle_input(&mut self, now: Timestamp, input: Input) -> Result<(), InputError> {
        let now = self.advance(now);
        let result = match input {
            Input::Submit { key, template } => self.on_submit(key, template),
            Input::Watch { event } => self.on_watch(event),
            Input::WatchExpired => {
                self.start_relist();
                Ok(())
            }
            Input::ApiResult { id, outcome } => self.on_api_result(id, outcome),
            Input::DbResult { id, outcome } => self.on_db_result(id, outcome),
            Input::Heartbeats { snapshot } => {
                self.on_heartbeats(snapshot);
                Ok(())
            }
            Input::AdoptOrphans { tis } => {
                self.on_adopt_orphans(tis);
                Ok(())
            }
            Input::Revoke { key } => {
                self.on_revoke(key);
                Ok(())
            }
        };
        self.after_mutation(now);
        result
    }

    /// Fires the timers due at `now`. Spurious or early calls do nothing harmful.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.advance(now);
        let fired: Vec<TimerKind> = self.timers.take_expired(now).collect();
        for kind in fired {
            match kind {
                TimerKind::Relist => self.start_relist(),
                TimerKind::Cleanup => self.fire_cleanups(now),
                TimerKind::CompletedAdoption => {
                    self.timers.set(
                        TimerKind::CompletedAdoption,
                        now.plus_ms(self.config.adoption_interval_ms()),
                    );
                    self.start_completed_adoption();
                }
                TimerKind::ZombieSweep => self.start_zombie_sweep(),
                TimerKind::PendingCheck => self.check_pending(now),
                TimerKind::DbRetry => self.fire_db_retries(now),
                // Both are handled by `after_mutation`.
                TimerKind::Launch | TimerKind::ApiBudget => {}
            }
        }
        self.after_mutation(now);
    }

    /// The next command for the host, in order. Drain until `None` after every mutation.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.outbox.pop_front()
    }

    /// When [`Self::handle_timeout`] should be called next, if ever, on the host's clock (the
    /// clock the host passes as `now`; the crate documentation says what happens when it steps).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next().map(|t| self.clock.host_time_of(t))
    }

    /// The executor's own health at `now` (the host's clock), from progress. O(1),
    /// allocation-free: a host can serve it from an in-process HTTP handler even when it cannot
    /// fork an exec probe.
    #[must_use]
    pub fn health(&self, now: Timestamp) -> Health {
        // The host's clock reads earlier than at its last drive: it stepped back since, and the
        // executor has not been driven on the new clock. How long it has been idle cannot be
        // measured; a loop that runs drives it within a loop, so this is named as both.
        let behind = now < self.clock.host_now();
        let now = self.clock.core_at(now);
        let idle_ms = now.since(self.last_driven);
        let threshold = self.config.health_threshold_ms();
        let watch_stalled = !self.pods.is_empty()
            && self
                .config
                .watch_stall_ms()
                .is_some_and(|limit| now.since(self.last_watch_progress) > limit);
        let launch_stalled =
            self.launch.len() > 0 && now.since(self.last_launch_progress) > threshold;
        let clock_step = self
            .clock
            .last_step()
            .is_some_and(|step| now.since(step) <= threshold);
        Health {
            last_driven: self.clock.host_now(),
            idle_ms,
            reasons: UnhealthyReasons {
                not_driven: idle_ms > threshold || behind,
                watch_stalled,
                launch_stalled,
                clock_step: clock_step || behind,
            },
        }
    }

    /// The scheduler id this executor writes as its `airflow-worker` label.
    #[must_use]
    pub fn scheduler_id(&self) -> &str {
        &self.scheduler_id
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The selector of this executor's own watch: `airflow-worker=<id>,airflow_executor_done!=True`.
    #[must_use]
    pub fn watch_selector(&self) -> LabelSelector {
        LabelSelector::new()
            .eq(label::AIRFLOW_WORKER, self.scheduler_id.clone())
            .ne(label::EXECUTOR_DONE, label::TRUE)
    }

    /// The last resource version the watch reached.
    #[must_use]
    pub fn resource_version(&self) -> &str {
        &self.watch.resource_version
    }

    /// Whether `key` is queued, running or being decided here.
    #[must_use]
    pub fn is_tracking(&self, key: &TaskKey) -> bool {
        self.tasks.contains_key(key)
    }

    /// The other schedulers this executor considers alive at its last heartbeat snapshot, or
    /// `None` while no snapshot was readable.
    #[must_use]
    pub fn alive_peers(&self) -> Option<Vec<String>> {
        match self.peers.alive_others(
            &self.scheduler_id,
            self.config.scheduler_liveness_rule,
            self.config.health_threshold_ms(),
        ) {
            crate::liveness::AliveSet::Known(set) => Some(set.into_iter().collect()),
            crate::liveness::AliveSet::Unknown | crate::liveness::AliveSet::Unavailable => None,
        }
    }

    /// The other schedulers that the last readable heartbeat snapshot names and that this
    /// executor judges dead, or `None` while no snapshot was readable. A host uses it to mark
    /// scheduler jobs failed before handing their tries over: a scheduler the snapshot does not
    /// name yet (one that has just started) is never in it. Prefer [`Self::dead_peer_records`]:
    /// the verdict is as old as the last snapshot.
    #[must_use]
    pub fn dead_peers(&self) -> Option<Vec<String>> {
        let alive = self.alive_peers()?;
        Some(
            self.peers
                .known()
                .filter(|id| *id != self.scheduler_id && !alive.iter().any(|a| a == id))
                .map(str::to_string)
                .collect(),
        )
    }

    /// Like [`Self::dead_peers`], with each dead peer's row as last read: its `latest_heartbeat`
    /// is the value judged stale. Declare a peer dead with a conditional write on exactly that
    /// value (`UPDATE job SET state = 'failed' WHERE id = ? AND state = 'running' AND
    /// latest_heartbeat = ?`): a peer that heartbeated since the snapshot (a stall that ended by
    /// itself) then keeps its row, its work and its pods. Airflow gets the same effect by
    /// judging and marking in one transaction on a fresh read.
    #[must_use]
    pub fn dead_peer_records(&self) -> Option<Vec<HeartbeatRecord>> {
        let dead = self.dead_peers()?;
        Some(dead.iter().filter_map(|id| self.peers.record(id)).collect())
    }

    /// How much the executor holds.
    #[must_use]
    pub fn state_size(&self) -> StateSize {
        StateSize {
            tasks: self.tasks.len(),
            db_retries: self.db_retries.len(),
            pods: self.pods.len(),
            awaiting_replies: self.awaiting.len(),
            held_commands: self.held.len(),
            cleanup_retries: self.cleanup_retries.len(),
            orphan_rounds: self.orphan_rounds.len(),
            peers: self.peers.len(),
        }
    }

    // ---- plumbing -------------------------------------------------------------------------

    /// Takes the host's reading: time never runs backwards inside the executor, and never
    /// stands still either when the host's clock steps back (`clock.rs`).
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        // The host may wait until the next deadline; later than that by more than half the
        // threshold, it did not drive us when asked (a stall) or its clock jumped.
        let limit = self.config.health_threshold_ms() / 2;
        let core = self.clock.now();
        let allowed = self.timers.next().map_or(u64::MAX, |deadline| {
            deadline.since(core).saturating_add(limit)
        });
        let now = self.clock.advance(now, allowed);
        self.last_driven = now;
        if self.clock.steps() != self.clock_steps_seen {
            self.clock_steps_seen = self.clock.steps();
            self.fence_reports();
        }
        // The host reads heartbeats every loop: a long silence means its loop stalled, and
        // peers may have declared us dead meanwhile.
        if self
            .last_heartbeats_at
            .is_some_and(|at| now.since(at) > limit)
        {
            self.last_heartbeats_at = None;
            self.fence_reports();
        }
        now
    }

    /// Holds reports until our own job is seen running (`fence_reports_after_stall`).
    fn fence_reports(&mut self) {
        if self.config.fence_reports_after_stall && self.fenced_reports.is_none() {
            self.fenced_reports = Some(Vec::new());
        }
    }

    fn after_mutation(&mut self, now: Timestamp) {
        self.launch_ready(now);
        self.release_held(now);
        if self.launch.len() == 0 {
            self.last_launch_progress = now;
        }
        self.arm_timers();
    }

    fn next_command_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Queues a command that needs no API budget and no answer.
    fn emit(&mut self, kind: CommandKind) -> CommandId {
        let id = self.next_command_id();
        self.outbox.push_back(Command { id, kind });
        id
    }

    /// Queues a DB query (no API budget) and remembers what its answer is for.
    fn emit_query(&mut self, kind: CommandKind, awaiting: Awaiting) -> CommandId {
        let id = self.emit(kind);
        self.awaiting.insert(id, awaiting);
        id
    }

    /// Queues an API command behind the token bucket, keeping API commands in order.
    fn emit_api(&mut self, kind: CommandKind, awaiting: Awaiting) -> CommandId {
        let id = self.next_command_id();
        let cmd = Command { id, kind };
        if matches!(cmd.kind, CommandKind::CreatePod { .. }) {
            self.last_launch_progress = self.clock.now();
        }
        if self.held.is_empty() && self.budget.try_take(self.clock.now()) {
            self.outbox.push_back(cmd);
        } else {
            self.held.push_back(cmd);
        }
        self.awaiting.insert(id, awaiting);
        id
    }

    /// Sends held commands as the budget allows; drops those that no longer make sense (a
    /// clean-up of a pod that has gone meanwhile, a create for a try that ended), so that no
    /// command ever targets a pod the watch already showed gone.
    fn release_held(&mut self, now: Timestamp) {
        while let Some(front) = self.held.front() {
            let id = front.id;
            if self.is_obsolete(id) {
                self.held.pop_front();
                self.awaiting.remove(&id);
                continue;
            }
            if !self.budget.try_take(now) {
                break;
            }
            if let Some(cmd) = self.held.pop_front() {
                self.outbox.push_back(cmd);
            }
        }
    }

    fn is_obsolete(&self, id: CommandId) -> bool {
        match self.awaiting.get(&id) {
            Some(Awaiting::Cleanup(c)) => !self.pods.get(&c.pod).is_some_and(|r| r.finishing),
            Some(Awaiting::Create { key, pod }) => !self.is_current_pod(key, pod),
            _ => false,
        }
    }

    fn arm_timers(&mut self) {
        match self.launch.wake_at(&self.config) {
            Some(t) => self.timers.set(TimerKind::Launch, t),
            None => self.timers.stop(TimerKind::Launch),
        }
        if self.held.is_empty() {
            self.timers.stop(TimerKind::ApiBudget);
        } else {
            self.timers
                .set(TimerKind::ApiBudget, self.budget.next_token_at());
        }
        match self.cleanup_retries.keys().next() {
            Some((t, _)) => self.timers.set(TimerKind::Cleanup, *t),
            None => self.timers.stop(TimerKind::Cleanup),
        }
        match self.db_retries.keys().next() {
            Some((t, _)) => self.timers.set(TimerKind::DbRetry, *t),
            None => self.timers.stop(TimerKind::DbRetry),
        }
    }

    fn is_current_pod(&self, key: &TaskKey, pod: &PodRef) -> bool {
        self.tasks
            .get(key)
            .is_some_and(|t| matches!(&t.phase, TaskPhase::Launched { pod: p } if p == pod))
    }

    // ---- answers --------------------------------------------------------------------------

    fn on_api_result(&mut self, id: CommandId, outcome: ApiOutcome) -> Result<(), InputError> {
        let Some(awaiting) = self.awaiting.get(&id) else {
            return Err(InputError::UnknownCommand(id));
        };
        let is_list = matches!(outcome, ApiOutcome::Listed { .. });
        if awaiting.wants_db() {
            return Err(InputError::UnexpectedOutcome {
                id,
                expected: "a DB answer",
            });
        }
        if awaiting.wants_list() && matches!(outcome, ApiOutcome::Ok) {
            return Err(InputError::UnexpectedOutcome {
                id,
                expected: "a pod list or a failure",
            });
        }
        if !awaiting.wants_list() && is_list {
            return Err(InputError::UnexpectedOutcome {
                id,
                expected: "ok or a failure",
            });
        }
        let Some(awaiting) = self.awaiting.remove(&id) else {
            return Ok(());
        };
        match awaiting {
            Awaiting::Create { key, pod } => self.on_create_result(key, pod, outcome),
            Awaiting::Cleanup(cleanup) => self.on_cleanup_result(cleanup, outcome),
            Awaiting::Relist => self.on_relist_result(outcome),
            Awaiting::OrphanList { round } => self.on_orphan_list(round, outcome),
            Awaiting::OrphanPatch(claim) => self.on_orphan_patch(claim, outcome),
            Awaiting::CompletedList => self.on_completed_list(outcome),
            Awaiting::CompletedPatch { pod, key, disposal } => {
                self.on_completed_patch(pod, key, disposal, outcome)
            }
            Awaiting::LeftoverList => self.on_leftover_list(outcome),
            Awaiting::ZombieList => self.on_zombie_list(outcome),
            Awaiting::ZombieDelete { pod } => {
                self.zombie_deletes.remove(&pod);
            }
            Awaiting::RevokeList { key } => self.on_revoke_list(key, outcome),
            Awaiting::Revoke => {}
            Awaiting::TaskState(_)
            | Awaiting::ZombieQuery { .. }
            | Awaiting::LeftoverQuery { .. } => {}
        }
        Ok(())
    }

    fn on_db_result(&mut self, id: CommandId, outcome: DbOutcome) -> Result<(), InputError> {
        let Some(awaiting) = self.awaiting.get(&id) else {
            return Err(InputError::UnknownCommand(id));
        };
        match (awaiting, &outcome) {
            (
                Awaiting::TaskState(_),
                DbOutcome::TaskStates { .. } | DbOutcome::Unavailable { .. },
            )
            | (
                Awaiting::ZombieQuery { .. } | Awaiting::LeftoverQuery { .. },
                DbOutcome::UnfinishedTasks { .. } | DbOutcome::Unavailable { .. },
            ) => {}
            (Awaiting::TaskState(_), _) => {
                return Err(InputError::UnexpectedOutcome {
                    id,
                    expected: "task states or unavailable",
                });
            }
            (Awaiting::ZombieQuery { .. } | Awaiting::LeftoverQuery { .. }, _) => {
                return Err(InputError::UnexpectedOutcome {
                    id,
                    expected: "unfinished tasks or unavailable",
                });
            }
            _ => {
                return Err(InputError::UnexpectedOutcome {
                    id,
                    expected: "an API answer",
                })
            }
        }
        match self.awaiting.remove(&id) {
            Some(Awaiting::TaskState(decision)) => self.on_task_state(*decision, outcome),
            Some(Awaiting::ZombieQuery { candidates }) => {
                self.on_unfinished_tasks(&candidates, outcome)
            }
            Some(Awaiting::LeftoverQuery { candidates }) => {
                self.on_leftover_unfinished(candidates, outcome)
            }
            _ => {}
        }
        Ok(())
    }
}
