//! [`Executor`]: one scheduler's pod-lifecycle state machine. This file only routes: each input,
//! timer and answer goes to the flow of its concern, one file each, named after what it does:
//!
//! | concern | file | its decision rules |
//! |---|---|---|
//! | launching a try's pods | `launching.rs` | [`crate::launch`] |
//! | the pod watch, a finished pod's outcome | `watching.rs` | [`crate::watch`], [`crate::completion`] |
//! | disposing of finished pods | `cleaning_up.rs` | [`crate::completion`] |
//! | relisting after 410 Gone | `relisting.rs` | [`crate::watch`] |
//! | pre-execution requeue | `requeueing.rs` | [`crate::requeue`], [`crate::policy`] |
//! | heartbeats, the report fence | `heartbeats.rs`, `reporting.rs`, `driving.rs` | [`crate::liveness`] |
//! | orphan hand-over | `orphan_adoption.rs` | [`crate::adoption`] |
//! | completed and leftover pods of dead schedulers | `completed_adoption.rs` | [`crate::adoption`] |
//! | zombie operator pods | `zombie_sweep.rs` | [`crate::zombie`] |
//! | pods stuck Pending, revoke | `pending_timeout.rs` | [`crate::completion`] |
//!
//! The parts that own state: the [`outbox`](self) (`outbox.rs`: ids, commands, the API budget,
//! answers paired with commands), the try table (`tries.rs`), the pod records (`pod_table.rs`),
//! the work awaiting answers (`awaiting.rs`). Read-only views are in `queries.rs`. State is kept
//! in ordered maps so that anything that reaches a command comes out in the same order on every
//! run.

mod awaiting;
mod cleaning_up;
mod completed_adoption;
mod driving;
mod heartbeats;
mod held;
mod launching;
mod orphan_adoption;
mod outbox;
mod pending_timeout;
mod pod_address;
mod pod_table;
mod queries;
mod relisting;
mod reporting;
mod requeueing;
mod state_size;
mod tries;
mod watch_state;
mod watching;
mod zombie_sweep;

pub use state_size::StateSize;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use self::awaiting::{Awaiting, Cleanup, PendingDecision};
use self::held::{ReportGate, ZombieSweep};
use self::outbox::Outbox;
use self::pod_table::{same_pod, PodKey, PodTable};
use self::tries::{TaskPhase, TryTable};
use self::watch_state::Watches;
use crate::adoption::OrphanRound;
use crate::budget::TokenBucket;
use crate::clock::HostClock;
use crate::command::{ApiCall, ApiOutcome, Command, CommandId, DbQuery, Notice};
use crate::config::{Config, ConfigError, Settings};
use crate::db::DbOutcome;
use crate::input::{Input, InputError};
use crate::key::TaskKey;
use crate::label::SafeValueMemo;
use crate::launch::LaunchQueue;
use crate::liveness::PeerLiveness;
use crate::pod::PodRef;
use crate::time::{TimerKind, TimerTable, Timestamp};

/// One scheduler's executor. See the crate documentation for the drive rule.
#[derive(Debug, Clone)]
pub struct Executor {
    config: Config,
    /// The configuration parsed once: durations in milliseconds, limits as enums.
    settings: Settings,
    scheduler_id: String,
    /// The host's clock, kept monotonic: its core time is the executor's `now`.
    clock: HostClock,
    last_driven: Timestamp,
    last_watch_progress: Timestamp,
    last_launch_progress: Timestamp,
    /// Pods launched so far; numbers every pod name uniquely within this executor.
    next_launch: u64,
    /// The ids recently made label-safe, so one DAG run's tries hash its run id once.
    safe_values: SafeValueMemo,
    /// Commands for the host, held API commands, and what each unanswered command is for.
    outbox: Outbox,
    timers: TimerTable,
    /// Tracked tries; the key is shared with the try's pod records.
    tasks: TryTable,
    pods: PodTable,
    launch: LaunchQueue,
    watch: Watches,
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
    /// Reports that wait for a pod's clean-up (`report_before_pod_cleanup = false`), by pod.
    reports_after_cleanup: BTreeMap<PodRef, ReportGate>,
    peers: PeerLiveness,
    orphan_rounds: BTreeMap<u64, OrphanRound>,
    /// A completed-pod adoption is due but waits for the first heartbeat snapshot.
    completed_adoption_waiting: bool,
    /// Completed-pod lists unanswered (one per watched scope).
    completed_lists_in_flight: usize,
    zombie_sweep: Option<ZombieSweep>,
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
    fenced_reports: Option<Vec<Notice>>,
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
        let settings = config.settings()?;
        let scheduler_id = scheduler_id.into();
        Config::validate_scheduler_id(&scheduler_id)?;
        let budget = TokenBucket::new(config.api_qps, config.api_burst, now);
        let mut timers = TimerTable::default();
        timers.set(TimerKind::CompletedAdoption, now);
        if config.kpo_zombie_pod_cleanup_enabled {
            timers.set(
                TimerKind::ZombieSweep,
                now.plus_ms(settings.zombie_interval_ms),
            );
        }
        if settings.pending_timeout_ms.is_some() {
            timers.set(
                TimerKind::PendingCheck,
                now.plus_ms(settings.pending_check_ms),
            );
        }
        let watch = Watches::new(&config);
        let mut ex = Self {
            config,
            settings,
            scheduler_id,
            clock: HostClock::new(now),
            last_driven: now,
            last_watch_progress: now,
            last_launch_progress: now,
            next_launch: 0,
            safe_values: SafeValueMemo::default(),
            outbox: Outbox::new(budget),
            timers,
            tasks: TryTable::default(),
            pods: PodTable::default(),
            launch: LaunchQueue::default(),
            watch,
            cleanup_retries: BTreeMap::new(),
            db_retries: BTreeMap::new(),
            unconfirmed_deletes: BTreeMap::new(),
            disposing: BTreeSet::new(),
            requeue_after_disposal: BTreeMap::new(),
            reports_after_cleanup: BTreeMap::new(),
            peers: PeerLiveness::default(),
            orphan_rounds: BTreeMap::new(),
            completed_adoption_waiting: false,
            completed_lists_in_flight: 0,
            zombie_sweep: None,
            zombie_deletes: BTreeSet::new(),
            orphan_patches: BTreeMap::new(),
            unknown_owners: BTreeMap::new(),
            policies: crate::policy::Policies::default(),
            fenced_reports: None,
            clock_steps_seen: 0,
            last_heartbeats_at: None,
        };
        ex.start_relists();
        ex.arm_timers();
        Ok(ex)
    }

    /// The try table's shared copy of `key` (a pod record holds the same one), or a new copy
    /// for a try not tracked.
    fn shared_key(&self, key: &TaskKey) -> Arc<TaskKey> {
        self.tasks
            .shared_key(key)
            .unwrap_or_else(|| Arc::new(key.clone()))
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
            Input::WatchExpired { namespace } => {
                self.on_watch_expired(namespace);
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
                TimerKind::Relist => self.retry_relists(),
                TimerKind::Cleanup => self.fire_cleanups(now),
                TimerKind::CompletedAdoption => {
                    self.timers.set(
                        TimerKind::CompletedAdoption,
                        now.plus_ms(self.settings.adoption_interval_ms),
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
        self.outbox.poll()
    }

    /// When [`Self::handle_timeout`] should be called next, if ever, on the host's clock (the
    /// clock the host passes as `now`; the crate documentation says what happens when it steps).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next().map(|t| self.clock.host_time_of(t))
    }

    // ---- plumbing -------------------------------------------------------------------------

    fn after_mutation(&mut self, now: Timestamp) {
        self.launch_ready(now);
        self.release_held(now);
        if self.launch.len() == 0 {
            self.last_launch_progress = now;
        }
        self.arm_timers();
    }

    /// A fresh id, as a sequence number that orders work in issue order.
    fn next_command_id(&mut self) -> CommandId {
        self.outbox.next_command_id()
    }

    /// Queues a command that needs no API budget and no answer.
    fn emit(&mut self, notice: Notice) -> CommandId {
        self.outbox.emit(notice)
    }

    /// Queues a DB query (no API budget) and remembers what its answer is for.
    fn emit_query(&mut self, query: DbQuery, awaiting: Awaiting) -> CommandId {
        self.outbox.emit_query(query, awaiting)
    }

    /// Queues an API command behind the token bucket, keeping API commands in order.
    fn emit_api(&mut self, call: ApiCall, awaiting: Awaiting) -> CommandId {
        if matches!(call, ApiCall::CreatePod { .. }) {
            self.last_launch_progress = self.clock.now();
        }
        self.outbox.emit_api(call, awaiting, self.clock.now())
    }

    /// Sends held commands as the budget allows, dropping those that no longer make sense.
    fn release_held(&mut self, now: Timestamp) {
        let (pods, tasks) = (&self.pods, &self.tasks);
        self.outbox.release_held(now, |awaiting| match awaiting {
            Awaiting::Cleanup(c) => !pods.get(&c.pod).is_some_and(|r| r.finishing),
            Awaiting::Create { key, pod } => !is_current_pod(tasks, key, pod),
            _ => false,
        });
    }

    fn arm_timers(&mut self) {
        match self
            .launch
            .wake_at(&self.settings, self.outbox.creates_unanswered())
        {
            Some(t) => self.timers.set(TimerKind::Launch, t),
            None => self.timers.stop(TimerKind::Launch),
        }
        match self.outbox.budget_wake_at() {
            Some(t) => self.timers.set(TimerKind::ApiBudget, t),
            None => self.timers.stop(TimerKind::ApiBudget),
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

    fn is_current_pod(&self, key: &TaskKey, pod: &(impl PodKey + ?Sized)) -> bool {
        is_current_pod(&self.tasks, key, pod)
    }

    // ---- answers --------------------------------------------------------------------------

    /// Routes an API answer to the flow that sent the command.
    fn on_api_result(&mut self, id: CommandId, outcome: ApiOutcome) -> Result<(), InputError> {
        match self.outbox.take_api_answer(id, &outcome)? {
            Awaiting::Create { key, pod } => self.on_create_result(key, pod, outcome),
            Awaiting::Cleanup(cleanup) => self.on_cleanup_result(cleanup, outcome),
            Awaiting::Relist { scope } => self.on_relist_result(scope, outcome),
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
            // The outbox refuses a DB query's API answer.
            Awaiting::Revoke
            | Awaiting::TaskState(_)
            | Awaiting::ZombieQuery { .. }
            | Awaiting::LeftoverQuery { .. } => {}
        }
        Ok(())
    }

    /// Routes a DB answer to the flow that asked.
    fn on_db_result(&mut self, id: CommandId, outcome: DbOutcome) -> Result<(), InputError> {
        match self.outbox.take_db_answer(id, &outcome)? {
            Awaiting::TaskState(decision) => self.on_task_state(*decision, outcome),
            Awaiting::ZombieQuery { candidates } => self.on_unfinished_tasks(&candidates, outcome),
            Awaiting::LeftoverQuery { candidates } => {
                self.on_leftover_unfinished(candidates, outcome)
            }
            // The outbox refuses an API command's DB answer.
            _ => {}
        }
        Ok(())
    }
}

/// Whether `pod` is `key`'s current pod.
fn is_current_pod(tasks: &TryTable, key: &TaskKey, pod: &(impl PodKey + ?Sized)) -> bool {
    tasks
        .get(key)
        .is_some_and(|t| matches!(&t.phase, TaskPhase::Launched { pod: p } if same_pod(&**p, pod)))
}
