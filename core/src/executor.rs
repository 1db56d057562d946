//! [`Executor`]: one scheduler's pod-lifecycle state machine, composing the policy modules.
//!
//! It owns the bookkeeping (tasks, pods, commands awaiting answers, timers); the decisions live
//! in [`crate::watch`], [`crate::launch`] and [`crate::completion`]. State is kept in ordered
//! maps so that anything that reaches a command comes out in the same order on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::budget::TokenBucket;
use crate::command::{ApiFailure, ApiOutcome, Command, CommandId, CommandKind, ReportedState};
use crate::completion::{self, Disposal, Evidence};
use crate::config::{Config, ConfigError};
use crate::health::{Health, UnhealthyReasons};
use crate::input::{Input, InputError, PodTemplate};
use crate::key::TaskKey;
use crate::label;
use crate::launch::{self, LaunchQueue, PublishDecision};
use crate::pod::{EventType, PodPhase, PodRef, PodView, WatchEvent};
use crate::selector::LabelSelector;
use crate::time::{TimerKind, TimerTable, Timestamp};
use crate::watch::{self, Outcome};

/// Where a tracked try is.
#[derive(Debug, Clone, PartialEq)]
enum TaskPhase {
    /// Waiting in the launch queue.
    Queued,
    /// Its current pod (created, or its create in flight).
    Launched { pod: PodRef },
}

#[derive(Debug, Clone, PartialEq)]
struct Task {
    template: PodTemplate,
    /// The launch number of this try's current pod, part of the pod name; kept across publish
    /// retries so that a retried create is idempotent, fresh for every new pod.
    launch: Option<u64>,
    /// Transient create errors retried so far (`task_publish_max_retries`).
    publish_retries: u32,
    phase: TaskPhase,
}

/// A pod this executor created or is cleaning up.
#[derive(Debug, Clone, PartialEq)]
struct PodRecord {
    key: TaskKey,
    uid: String,
    last_phase: Option<PodPhase>,
    /// Seen in a watch event or a list: it exists (or existed).
    seen: bool,
    /// Its outcome was taken; a delete or done-label is under way. Later events of this pod are
    /// replays and produce nothing.
    finishing: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Cleanup {
    pod: PodRef,
    disposal: Disposal,
    /// Retries already made.
    attempt: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Awaiting {
    Create { key: TaskKey, pod: PodRef },
    Cleanup(Cleanup),
    Relist,
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
    /// Tries queued or running.
    pub tasks: usize,
    /// Pods tracked (current pods of tries, and finished pods whose clean-up is under way).
    pub pods: usize,
    /// Commands sent and not yet answered.
    pub awaiting_replies: usize,
    /// Commands waiting for the API budget.
    pub held_commands: usize,
    /// Clean-ups waiting for their retry time.
    pub cleanup_retries: usize,
}

/// One scheduler's executor. See the crate documentation for the drive rule.
#[derive(Debug, Clone)]
pub struct Executor {
    config: Config,
    scheduler_id: String,
    now: Timestamp,
    last_driven: Timestamp,
    next_id: u64,
    /// Pods launched so far; numbers every pod name uniquely within this executor.
    next_launch: u64,
    outbox: VecDeque<Command>,
    held: VecDeque<Command>,
    budget: TokenBucket,
    timers: TimerTable,
    awaiting: BTreeMap<CommandId, Awaiting>,
    tasks: BTreeMap<TaskKey, Task>,
    pods: BTreeMap<PodRef, PodRecord>,
    launch: LaunchQueue,
    watch: WatchState,
    /// Clean-up retries by due time; the id breaks ties in issue order.
    cleanup_retries: BTreeMap<(Timestamp, u64), Cleanup>,
}

impl Executor {
    /// Builds an executor for scheduler `scheduler_id` (written verbatim as the `airflow-worker`
    /// label). Its first command lists its own pods, so that a restarted scheduler picks up what
    /// it left; the watch starts from that list.
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
        let mut ex = Self {
            config,
            scheduler_id,
            now,
            last_driven: now,
            next_id: 0,
            next_launch: 0,
            outbox: VecDeque::new(),
            held: VecDeque::new(),
            budget,
            timers: TimerTable::default(),
            awaiting: BTreeMap::new(),
            tasks: BTreeMap::new(),
            pods: BTreeMap::new(),
            launch: LaunchQueue::default(),
            watch: WatchState::default(),
            cleanup_retries: BTreeMap::new(),
        };
        ex.start_relist();
        ex.arm_timers();
        Ok(ex)
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
        };
        self.launch_ready(now);
        self.release_held(now);
        self.arm_timers();
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
                // Both are handled by the unconditional steps below.
                TimerKind::Launch | TimerKind::ApiBudget => {}
            }
        }
        self.launch_ready(now);
        self.release_held(now);
        self.arm_timers();
    }

    /// The next command for the host, in order. Drain until `None` after every mutation.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.outbox.pop_front()
    }

    /// When [`Self::handle_timeout`] should be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// The executor's own health at `now`, from progress. O(1), allocation-free.
    #[must_use]
    pub fn health(&self, now: Timestamp) -> Health {
        let idle_ms = now.since(self.last_driven);
        Health {
            last_driven: self.last_driven,
            idle_ms,
            reasons: UnhealthyReasons {
                not_driven: idle_ms > self.config.health_threshold_ms(),
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

    /// Whether `key` is queued or running here.
    #[must_use]
    pub fn is_tracking(&self, key: &TaskKey) -> bool {
        self.tasks.contains_key(key)
    }

    /// How much the executor holds.
    #[must_use]
    pub fn state_size(&self) -> StateSize {
        StateSize {
            tasks: self.tasks.len(),
            pods: self.pods.len(),
            awaiting_replies: self.awaiting.len(),
            held_commands: self.held.len(),
            cleanup_retries: self.cleanup_retries.len(),
        }
    }

    // ---- plumbing -------------------------------------------------------------------------

    /// Time never runs backwards inside the executor, whatever the host's clock does.
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.last_driven = self.now;
        self.now
    }

    fn next_command_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Queues a command that needs no API budget.
    fn emit(&mut self, kind: CommandKind) -> CommandId {
        let id = self.next_command_id();
        self.outbox.push_back(Command { id, kind });
        id
    }

    /// Queues an API command behind the token bucket, keeping API commands in order.
    fn emit_api(&mut self, kind: CommandKind, awaiting: Awaiting) -> CommandId {
        let id = self.next_command_id();
        let cmd = Command { id, kind };
        if self.held.is_empty() && self.budget.try_take(self.now) {
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
            Some(Awaiting::Relist) | None => false,
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
    }

    // ---- launch ---------------------------------------------------------------------------

    fn on_submit(&mut self, key: TaskKey, template: PodTemplate) -> Result<(), InputError> {
        if self.tasks.contains_key(&key) {
            return Err(InputError::DuplicateTask(key));
        }
        if let Some((k, v)) = template
            .labels
            .iter()
            .find(|(_, v)| !label::is_valid_value(v))
        {
            return Err(InputError::InvalidTemplateLabel {
                key: k.clone(),
                value: v.clone(),
            });
        }
        self.tasks.insert(
            key.clone(),
            Task {
                template,
                launch: None,
                publish_retries: 0,
                phase: TaskPhase::Queued,
            },
        );
        self.launch.push(key);
        Ok(())
    }

    fn launch_ready(&mut self, now: Timestamp) {
        while let Some(key) = self.launch.next_ready(now, &self.config) {
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            if task.phase != TaskPhase::Queued {
                continue;
            }
            let launch = match task.launch {
                Some(n) => n,
                None => {
                    let n = self.next_launch;
                    self.next_launch += 1;
                    task.launch = Some(n);
                    n
                }
            };
            let manifest = launch::manifest(
                &self.config,
                &self.scheduler_id,
                &key,
                &task.template,
                launch,
            );
            let pod = manifest.pod.clone();
            task.phase = TaskPhase::Launched { pod: pod.clone() };
            self.pods.insert(
                pod.clone(),
                PodRecord {
                    key: key.clone(),
                    uid: String::new(),
                    last_phase: None,
                    seen: false,
                    finishing: false,
                },
            );
            self.emit_api(
                CommandKind::CreatePod { manifest },
                Awaiting::Create { key, pod },
            );
        }
    }

    fn on_create_result(&mut self, key: TaskKey, pod: PodRef, outcome: ApiOutcome) {
        let Some(task) = self.tasks.get_mut(&key) else {
            return;
        };
        if task.phase != (TaskPhase::Launched { pod: pod.clone() }) {
            return;
        }
        let failure = match outcome {
            ApiOutcome::Failed { failure } => failure,
            ApiOutcome::Ok | ApiOutcome::Listed { .. } => {
                task.publish_retries = 0;
                return;
            }
        };
        // The watch already showed the pod (its record is marked seen, or was dropped because
        // the pod is already gone): whatever the reply says, it was created.
        if self.pods.get(&pod).is_none_or(|r| r.seen) {
            task.publish_retries = 0;
            return;
        }
        match launch::on_publish_error(&self.config, &failure, task.publish_retries) {
            PublishDecision::AlreadyCreated => task.publish_retries = 0,
            PublishDecision::Retry { backoff_ms } => {
                task.publish_retries += 1;
                task.phase = TaskPhase::Queued;
                self.pods.remove(&pod);
                self.launch.push(key);
                if let Some(ms) = backoff_ms {
                    self.launch.back_off_until(self.now.plus_ms(ms));
                }
            }
            PublishDecision::Fail => {
                self.tasks.remove(&key);
                self.pods.remove(&pod);
                // A create that timed out may still have made the pod: remove it, or it would
                // run a try the scheduler has already counted as failed.
                if matches!(failure, ApiFailure::Timeout | ApiFailure::Connection { .. }) {
                    self.pods.insert(
                        pod.clone(),
                        PodRecord {
                            key: key.clone(),
                            uid: String::new(),
                            last_phase: None,
                            seen: false,
                            finishing: true,
                        },
                    );
                    self.start_cleanup(Cleanup {
                        pod,
                        disposal: Disposal::Delete,
                        attempt: 0,
                    });
                }
                self.emit(CommandKind::Report {
                    key,
                    state: ReportedState::Failed,
                    reason: Some(format!("pod creation failed: {failure}")),
                });
            }
        }
    }

    // ---- watch and completion -------------------------------------------------------------

    fn on_watch(&mut self, event: WatchEvent) -> Result<(), InputError> {
        event
            .resource_version()
            .clone_into(&mut self.watch.resource_version);
        match event.pod() {
            Some((kind, pod)) => self.on_pod_event(kind, pod, false),
            None => Ok(()),
        }
    }

    /// Applies one pod event; `vanished` marks a deletion inferred from a relist.
    fn on_pod_event(
        &mut self,
        kind: EventType,
        pod: &PodView,
        vanished: bool,
    ) -> Result<(), InputError> {
        let pod_ref = pod.pod_ref();
        let key = match self.pods.get_mut(&pod_ref) {
            Some(record) => {
                if !pod.uid.is_empty() && !record.uid.is_empty() && pod.uid != record.uid {
                    // Same name, new pod: what we knew about the old one no longer applies.
                    record.finishing = false;
                }
                if !pod.uid.is_empty() {
                    pod.uid.clone_into(&mut record.uid);
                }
                record.last_phase = pod.phase;
                record.seen = true;
                record.key.clone()
            }
            None => pod.task_key().map_err(|error| InputError::PodIdentity {
                pod: pod_ref.clone(),
                error,
            })?,
        };
        let gone = kind == EventType::Deleted;
        let classification = watch::classify(
            kind,
            pod,
            &self.config.worker_pod_pending_fatal_container_state_reasons,
        );
        match classification.outcome {
            Outcome::Ignore => {
                if gone {
                    self.pods.remove(&pod_ref);
                }
            }
            Outcome::Adopted => {
                self.pods.remove(&pod_ref);
                if self.is_current_pod(&key, &pod_ref) {
                    self.tasks.remove(&key);
                }
            }
            outcome @ (Outcome::Failed { .. } | Outcome::Succeeded) => {
                let evidence = if vanished {
                    Evidence::Vanished
                } else {
                    Evidence::Event(classification.rule)
                };
                self.finish(key, pod_ref, pod.uid.clone(), &outcome, evidence, gone);
            }
        }
        Ok(())
    }

    fn is_current_pod(&self, key: &TaskKey, pod: &PodRef) -> bool {
        self.tasks
            .get(key)
            .is_some_and(|t| matches!(&t.phase, TaskPhase::Launched { pod: p } if p == pod))
    }

    /// §3: dispose of the pod, then report, once per pod.
    fn finish(
        &mut self,
        key: TaskKey,
        pod: PodRef,
        uid: String,
        outcome: &Outcome,
        evidence: Evidence,
        gone: bool,
    ) {
        if self.pods.get(&pod).is_some_and(|r| r.finishing) {
            if gone {
                self.pods.remove(&pod);
            }
            return;
        }
        match completion::disposal(&self.config, outcome, gone) {
            Some(disposal) => {
                self.pods.insert(
                    pod.clone(),
                    PodRecord {
                        key: key.clone(),
                        uid,
                        last_phase: None,
                        seen: true,
                        finishing: true,
                    },
                );
                self.start_cleanup(Cleanup {
                    pod: pod.clone(),
                    disposal,
                    attempt: 0,
                });
            }
            None => {
                self.pods.remove(&pod);
            }
        }
        if self.is_current_pod(&key, &pod) {
            self.tasks.remove(&key);
            if let Some((state, reason)) = completion::report(outcome, evidence) {
                self.emit(CommandKind::Report { key, state, reason });
            }
        }
    }

    fn start_cleanup(&mut self, cleanup: Cleanup) {
        let kind = match cleanup.disposal {
            Disposal::Delete => CommandKind::DeletePod {
                pod: cleanup.pod.clone(),
                grace_period_seconds: None,
            },
            Disposal::MarkDone => CommandKind::PatchLabels {
                pod: cleanup.pod.clone(),
                labels: BTreeMap::from([(
                    label::EXECUTOR_DONE.to_string(),
                    label::TRUE.to_string(),
                )]),
                precondition: None,
            },
        };
        self.emit_api(kind, Awaiting::Cleanup(cleanup));
    }

    fn on_cleanup_result(&mut self, cleanup: Cleanup, outcome: ApiOutcome) {
        let ApiOutcome::Failed { failure } = outcome else {
            // Done; the record goes when the watch shows the pod leave.
            return;
        };
        if failure.code() == Some(404) {
            self.pods.remove(&cleanup.pod);
            return;
        }
        if !self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
            return;
        }
        if cleanup.attempt < self.config.pod_cleanup_max_retries {
            let attempt = cleanup.attempt + 1;
            let at = self.now.plus_ms(completion::cleanup_backoff_ms(attempt));
            let seq = self.next_command_id().0;
            self.cleanup_retries
                .insert((at, seq), Cleanup { attempt, ..cleanup });
        } else {
            // Give up; a later event of this pod starts a new, bounded round.
            self.pods.remove(&cleanup.pod);
        }
    }

    fn fire_cleanups(&mut self, now: Timestamp) {
        while let Some(entry) = self.cleanup_retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let cleanup = entry.remove();
            if self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
                self.start_cleanup(cleanup);
            }
        }
    }

    // ---- relist ---------------------------------------------------------------------------

    fn start_relist(&mut self) {
        if self.watch.relisting {
            return;
        }
        self.watch.relisting = true;
        self.timers.stop(TimerKind::Relist);
        let kind = CommandKind::ListPods {
            namespace: self.config.namespace.clone(),
            label_selector: self.watch_selector(),
            field_selector: None,
        };
        self.emit_api(kind, Awaiting::Relist);
    }

    fn on_relist_result(&mut self, outcome: ApiOutcome) {
        self.watch.relisting = false;
        let (listed, resource_version) = match outcome {
            ApiOutcome::Listed {
                pods,
                resource_version,
            } => (pods, resource_version),
            ApiOutcome::Ok | ApiOutcome::Failed { .. } => {
                self.watch.relist_failures = self.watch.relist_failures.saturating_add(1);
                let at = self
                    .now
                    .plus_ms(completion::cleanup_backoff_ms(self.watch.relist_failures));
                self.timers.set(TimerKind::Relist, at);
                return;
            }
        };
        self.watch.relist_failures = 0;
        let present: BTreeSet<PodRef> = listed.iter().map(PodView::pod_ref).collect();
        for pod in &listed {
            // A listed pod that names no task cannot be one of ours; skipping it is all a
            // relist can do (the watch reports it with an error when it changes).
            let _ = self.on_pod_event(EventType::Added, pod, false);
        }
        // Tracked pods the list no longer has are gone: apply what their deletion means.
        let vanished: Vec<(PodRef, PodRecord)> = self
            .pods
            .iter()
            .filter(|(pod, record)| record.seen && !present.contains(*pod))
            .map(|(pod, record)| (pod.clone(), record.clone()))
            .collect();
        for (pod_ref, record) in vanished {
            let mut view = PodView::new(pod_ref.namespace, pod_ref.name);
            view.uid = record.uid;
            view.annotations = record.key.to_annotations();
            view.phase = record.last_phase;
            view.deletion_timestamp = Some(self.now);
            let _ = self.on_pod_event(EventType::Deleted, &view, true);
        }
        resource_version.clone_into(&mut self.watch.resource_version);
        self.emit(CommandKind::WatchPods {
            namespace: self.config.namespace.clone(),
            label_selector: self.watch_selector(),
            resource_version,
        });
    }

    // ---- answers --------------------------------------------------------------------------

    fn on_api_result(&mut self, id: CommandId, outcome: ApiOutcome) -> Result<(), InputError> {
        let Some(awaiting) = self.awaiting.get(&id) else {
            return Err(InputError::UnknownCommand(id));
        };
        let is_list = matches!(outcome, ApiOutcome::Listed { .. });
        match awaiting {
            Awaiting::Relist if matches!(outcome, ApiOutcome::Ok) => {
                return Err(InputError::UnexpectedOutcome {
                    id,
                    expected: "a pod list or a failure",
                });
            }
            Awaiting::Create { .. } | Awaiting::Cleanup(_) if is_list => {
                return Err(InputError::UnexpectedOutcome {
                    id,
                    expected: "ok or a failure",
                });
            }
            _ => {}
        }
        match self.awaiting.remove(&id) {
            Some(Awaiting::Create { key, pod }) => self.on_create_result(key, pod, outcome),
            Some(Awaiting::Cleanup(cleanup)) => self.on_cleanup_result(cleanup, outcome),
            Some(Awaiting::Relist) => self.on_relist_result(outcome),
            None => {}
        }
        Ok(())
    }
}
