//! Test harness: drives one `Executor` by the drive rule and keeps a readable transcript of
//! every input and command, for assertions and insta snapshots.
#![allow(dead_code, unreachable_pub)]

use podwarden::command::{ApiCall, DbQuery, Notice};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use podwarden::adoption::OrphanTask;
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
mod drain;
pub use drain::drain_commands;

use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, ContainerState,
    ContainerStatus, EventType, Executor, Input, InputError, PodCondition, PodPhase, PodTemplate,
    PodView, TaskKey, Timestamp, WatchEvent,
};

/// The scheduler id used throughout (Airflow's tests use job id 5).
pub const SCHEDULER: &str = "5";

pub struct Harness {
    pub ex: Executor,
    pub now: Timestamp,
    /// Every command emitted, in order.
    pub commands: Vec<Command>,
    /// Human-readable log of inputs (`>`) and commands (`<`).
    pub transcript: String,
    /// Commands emitted while the harness set the executor up (start-up list and timers).
    pub startup: Vec<Command>,
    /// API commands answered so far.
    pub answered: std::collections::BTreeSet<CommandId>,
}

fn one_line(cmd: &Command) -> String {
    serde_json::to_string(cmd).expect("commands serialize")
}

impl Harness {
    /// An executor whose start-up relists (one per watch) are answered with an empty list at
    /// resource version 1.
    pub fn new(config: Config) -> Self {
        Self::with_id(config, SCHEDULER)
    }

    pub fn with_id(config: Config, id: &str) -> Self {
        let now = Timestamp(1_000_000);
        let ex = Executor::new(config, id, now).expect("valid config");
        let mut h = Self {
            ex,
            now,
            commands: Vec::new(),
            transcript: String::new(),
            startup: Vec::new(),
            answered: std::collections::BTreeSet::new(),
        };
        let start = h.drain();
        let lists: Vec<CommandId> = start
            .iter()
            .filter(|c| matches!(c.kind, CommandKind::Api(ApiCall::ListPods { .. })))
            .map(|c| c.id)
            .collect();
        assert!(!lists.is_empty(), "start-up relist");
        // One per watch (one per namespace of a multi-namespace list).
        for list in lists {
            h.answer(
                list,
                ApiOutcome::Listed {
                    pods: vec![],
                    resource_version: "1".into(),
                },
            );
        }
        // Start-up timers (the first completed-pod adoption waits for heartbeats).
        h.advance(0);
        h.startup = std::mem::take(&mut h.commands);
        h.transcript.clear();
        h.commands.clear();
        h
    }

    /// Drains the executor, logging each command.
    pub fn drain(&mut self) -> Vec<Command> {
        let out = drain_commands(&mut self.ex);
        for cmd in &out {
            let _ = writeln!(self.transcript, "< {}", one_line(cmd));
        }
        self.commands.extend(out.iter().cloned());
        out
    }

    fn note(&mut self, line: String) {
        let _ = writeln!(self.transcript, "> t={} {line}", self.now.0);
    }

    /// Feeds an input (logged with `label`) and returns the commands it produced.
    pub fn try_input(&mut self, label: String, input: Input) -> Result<Vec<Command>, InputError> {
        self.note(label);
        let r = self.ex.handle_input(self.now, input);
        if let Err(e) = &r {
            let _ = writeln!(self.transcript, "! {e}");
        }
        let out = self.drain();
        r.map(|()| out)
    }

    pub fn input(&mut self, label: String, input: Input) -> Vec<Command> {
        self.try_input(label, input).expect("input accepted")
    }

    pub fn submit(&mut self, key: &TaskKey) -> Vec<Command> {
        self.input(
            format!("submit {key}"),
            Input::Submit {
                key: key.clone(),
                template: PodTemplate::default(),
            },
        )
    }

    pub fn answer(&mut self, id: CommandId, outcome: ApiOutcome) -> Vec<Command> {
        let label = match &outcome {
            ApiOutcome::Ok => format!("answer {id} ok"),
            ApiOutcome::Listed {
                pods,
                resource_version,
            } => {
                let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
                format!("answer {id} listed {names:?} rv={resource_version}")
            }
            ApiOutcome::Failed { failure } => format!("answer {id} failed {failure}"),
        };
        self.answered.insert(id);
        self.input(label, Input::ApiResult { id, outcome })
    }

    pub fn fail(
        &mut self,
        id: CommandId,
        code: u16,
        reason: &str,
        message: &str,
        retry_after: Option<u64>,
    ) -> Vec<Command> {
        let failure = ApiFailure::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            retry_after_secs: retry_after,
        };
        self.answer(id, ApiOutcome::Failed { failure })
    }

    pub fn event(&mut self, kind: EventType, pod: &PodView) -> Vec<Command> {
        self.try_event(kind, pod).expect("event accepted")
    }

    pub fn try_event(
        &mut self,
        kind: EventType,
        pod: &PodView,
    ) -> Result<Vec<Command>, InputError> {
        let label = format!(
            "watch {} {} phase={} rv={}{}",
            kind.as_str(),
            pod.name,
            pod.phase.map_or("-", PodPhase::as_str),
            pod.resource_version,
            if pod.deletion_timestamp.is_some() {
                " deleting"
            } else {
                ""
            }
        );
        self.try_input(
            label,
            Input::Watch {
                event: WatchEvent::new(kind, pod.clone()),
            },
        )
    }

    /// Answers a DB query with task states.
    pub fn answer_states(
        &mut self,
        id: CommandId,
        states: Vec<(TaskKey, Option<TaskState>)>,
    ) -> Vec<Command> {
        let label = format!(
            "db {id} states {:?}",
            states
                .iter()
                .map(|(k, s)| format!("{k}={s:?}"))
                .collect::<Vec<_>>()
        );
        self.input(
            label,
            Input::DbResult {
                id,
                outcome: DbOutcome::TaskStates { states },
            },
        )
    }

    /// Answers the `QueryTaskStates` in `cmds` (the first one) with `state` for its key. The
    /// clean-ups in `cmds` (a done label, a delete) not answered yet are acknowledged first, as
    /// the cluster usually answers them before the DB: a requeue waits for the failed pod's
    /// disposal to be confirmed. A test about another order answers with `answer_states`.
    pub fn answer_state_of(&mut self, cmds: &[Command], state: Option<TaskState>) -> Vec<Command> {
        for c in cmds {
            let cleanup = matches!(
                &c.kind,
                CommandKind::Api(ApiCall::DeletePod { .. })
                    | CommandKind::Api(ApiCall::PatchLabels {
                        precondition: None,
                        ..
                    })
            );
            if cleanup && !self.answered.contains(&c.id) {
                self.answer(c.id, ApiOutcome::Ok);
            }
        }
        let (id, keys) = cmds
            .iter()
            .find_map(|c| match &c.kind {
                CommandKind::Db(DbQuery::QueryTaskStates { keys }) => Some((c.id, keys.clone())),
                _ => None,
            })
            .expect("a QueryTaskStates");
        self.answer_states(id, keys.into_iter().map(|k| (k, state)).collect())
    }

    /// Feeds a heartbeat snapshot: `(scheduler id, state, latest heartbeat written)`.
    pub fn heartbeats(&mut self, records: &[(&str, JobState, u64)]) -> Vec<Command> {
        let records: Vec<HeartbeatRecord> = records
            .iter()
            .map(|(id, state, at)| HeartbeatRecord {
                scheduler_id: (*id).to_string(),
                state: *state,
                latest_heartbeat: Timestamp(*at),
            })
            .collect();
        let label = format!(
            "heartbeats {:?}",
            records
                .iter()
                .map(|r| format!("{}:{:?}@{}", r.scheduler_id, r.state, r.latest_heartbeat.0))
                .collect::<Vec<_>>()
        );
        self.input(
            label,
            Input::Heartbeats {
                snapshot: Ok(records),
            },
        )
    }

    /// Feeds a failed heartbeat read.
    pub fn heartbeats_unavailable(&mut self) -> Vec<Command> {
        self.input(
            "heartbeats unavailable".into(),
            Input::Heartbeats {
                snapshot: Err(HeartbeatsUnavailable {
                    reason: "db down".into(),
                }),
            },
        )
    }

    /// Hands over orphaned tries: `(key, queued_by)`, with the default template.
    pub fn adopt_orphans(&mut self, tis: &[(TaskKey, Option<&str>)]) -> Vec<Command> {
        let tis: Vec<OrphanTask> = tis
            .iter()
            .map(|(key, by)| OrphanTask {
                key: key.clone(),
                queued_by: by.map(str::to_string),
                template: Some(PodTemplate::default()),
            })
            .collect();
        let label = format!(
            "adopt orphans {:?}",
            tis.iter()
                .map(|t| format!("{}@{:?}", t.key, t.queued_by))
                .collect::<Vec<_>>()
        );
        self.input(label, Input::AdoptOrphans { tis })
    }

    /// Answers a DB query with an arbitrary outcome.
    pub fn answer_db(&mut self, id: CommandId, outcome: DbOutcome) -> Vec<Command> {
        self.input(
            format!("db {id} {outcome:?}"),
            Input::DbResult { id, outcome },
        )
    }

    /// Moves time forward and fires due timers, repeatedly, until `ms` have passed.
    pub fn advance(&mut self, ms: u64) -> Vec<Command> {
        let end = self.now.plus_ms(ms);
        let mut out = Vec::new();
        loop {
            match self.ex.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.note("timeout".into());
                    self.ex.handle_timeout(self.now);
                    out.extend(self.drain());
                }
                _ => break,
            }
        }
        self.now = end;
        out
    }

    /// Answers every API command in `cmds` with `Ok` (lists: empty); DB queries are left to the test.
    pub fn ack_all(&mut self, cmds: &[Command]) -> Vec<Command> {
        let mut out = Vec::new();
        for c in cmds {
            if c.kind.is_api_call() {
                let outcome = match c.kind {
                    CommandKind::Api(ApiCall::ListPods { .. }) => ApiOutcome::Listed {
                        pods: vec![],
                        resource_version: "1".into(),
                    },
                    _ => ApiOutcome::Ok,
                };
                out.extend(self.answer(c.id, outcome));
            }
        }
        out
    }

    /// Submits `key` and, if this loop's batch is used up, waits for the next loop; returns
    /// the commands up to and including its `CreatePod`.
    pub fn submit_until_created(&mut self, key: &TaskKey) -> Vec<Command> {
        let cmds = self.submit(key);
        self.until_created(cmds, key)
    }

    /// Fires timers until `cmds` hold a `CreatePod` (the next loop's, if this one's batch is
    /// used up), for `key`'s try; returns every command up to it. Bounded: a create that never
    /// comes (an earlier create left unanswered holds the next one) fails the test instead of
    /// hanging it.
    pub fn until_created(&mut self, mut cmds: Vec<Command>, key: &TaskKey) -> Vec<Command> {
        for _ in 0..1_000 {
            if created_pod(&cmds).is_some() {
                return cmds;
            }
            let Some(t) = self.ex.poll_timeout() else {
                break;
            };
            let wait = t.since(self.now);
            cmds.extend(self.advance(wait));
        }
        assert!(
            created_pod(&cmds).is_some() || self.ex.poll_timeout().is_none(),
            "no create for {key} after 1,000 timers: is an earlier create unanswered?"
        );
        cmds
    }

    /// Submits `key`, acknowledges its create, and returns the pod the watch will show.
    pub fn launch(&mut self, key: &TaskKey) -> PodView {
        let cmds = self.submit_until_created(key);
        let create = created_pod(&cmds).expect("a CreatePod");
        self.ack_all(&cmds);
        create
    }
}

/// The pod of the first `CreatePod` in `cmds`, as the watch would show it just after creation.
pub fn created_pod(cmds: &[Command]) -> Option<PodView> {
    cmds.iter().find_map(|c| match &c.kind {
        CommandKind::Api(ApiCall::CreatePod { manifest }) => {
            let mut pod = PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
            pod.uid = format!("uid-{}", manifest.pod.name);
            pod.resource_version = "10".into();
            pod.labels = manifest.labels.clone();
            pod.annotations = manifest.annotations.clone();
            pod.phase = Some(PodPhase::Pending);
            Some(pod)
        }
        _ => None,
    })
}

pub fn key(task: &str) -> TaskKey {
    TaskKey::new("dag", task, "run_id", 1)
}

/// A pod carrying `key`'s identity, owned by `SCHEDULER`, in phase `phase`.
pub fn worker_pod(name: &str, key: &TaskKey, phase: PodPhase) -> PodView {
    let mut pod = PodView::new("default", name);
    pod.uid = format!("uid-{name}");
    pod.resource_version = "10".into();
    pod.labels = key.to_labels();
    pod.labels.insert("airflow-worker".into(), SCHEDULER.into());
    pod.labels
        .insert("kubernetes_executor".into(), "True".into());
    pod.annotations = key.to_annotations();
    pod.phase = Some(phase);
    pod
}

pub fn with_phase(mut pod: PodView, phase: PodPhase, rv: &str) -> PodView {
    pod.phase = Some(phase);
    pod.resource_version = rv.into();
    pod
}

pub fn deleting(mut pod: PodView) -> PodView {
    pod.deletion_timestamp = Some(Timestamp(1_000_000));
    pod
}

pub fn main_terminated(mut pod: PodView, reason: &str, exit_code: i32, started: bool) -> PodView {
    pod.containers = vec![ContainerStatus {
        name: "base".into(),
        state: ContainerState::Terminated {
            reason: Some(reason.into()),
            message: None,
            exit_code,
            started_at: started.then_some(Timestamp(1_000_500)),
        },
        restart_count: 0,
        last_state: None,
    }];
    pod
}

/// The pod failed before its task started: phase Failed, its main container "could not be
/// located" (what the kubelet reports for a container SIGTERM'd or evicted before it ran).
pub fn prestart_failed(pod: PodView) -> PodView {
    main_terminated(
        with_phase(pod, PodPhase::Failed, "20"),
        "ContainerStatusUnknown",
        137,
        false,
    )
}

pub fn main_waiting(mut pod: PodView, reason: &str, message: Option<&str>) -> PodView {
    pod.containers = vec![ContainerStatus {
        name: "base".into(),
        state: ContainerState::Waiting {
            reason: Some(reason.into()),
            message: message.map(Into::into),
        },
        restart_count: 0,
        last_state: None,
    }];
    pod
}

pub fn init_waiting(mut pod: PodView, reason: &str) -> PodView {
    pod.init_containers.push(ContainerStatus {
        name: "init".into(),
        state: ContainerState::Waiting {
            reason: Some(reason.into()),
            message: None,
        },
        restart_count: 0,
        last_state: None,
    });
    pod
}

pub fn disrupted(mut pod: PodView, reason: &str) -> PodView {
    pod.conditions.push(PodCondition {
        kind: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: None,
    });
    pod
}

/// The `Report` commands in `cmds` as `(key, state, reason)`.
pub fn reports(cmds: &[Command]) -> Vec<(TaskKey, podwarden::ReportedState, Option<String>)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Notice(Notice::Report { key, state, reason }) => {
                Some((key.clone(), *state, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Short names of the commands in `cmds`: `CreatePod`, `DeletePod`, … in order.
pub fn kinds(cmds: &[Command]) -> Vec<&'static str> {
    cmds.iter()
        .map(|c| match c.kind {
            CommandKind::Api(ApiCall::CreatePod { .. }) => "CreatePod",
            CommandKind::Api(ApiCall::PatchLabels { .. }) => "PatchLabels",
            CommandKind::Api(ApiCall::DeletePod { .. }) => "DeletePod",
            CommandKind::Api(ApiCall::ListPods { .. }) => "ListPods",
            CommandKind::Notice(Notice::WatchPods { .. }) => "WatchPods",
            CommandKind::Notice(Notice::Report { .. }) => "Report",
            CommandKind::Db(DbQuery::QueryTaskStates { .. }) => "QueryTaskStates",
            CommandKind::Db(DbQuery::QueryUnfinishedTasks) => "QueryUnfinishedTasks",
            CommandKind::Notice(Notice::Requeue { .. }) => "Requeue",
            CommandKind::Notice(Notice::OrphansResolved { .. }) => "OrphansResolved",
        })
        .collect()
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// The first command of a kind in `cmds`.
pub fn first<'a>(cmds: &'a [Command], kind: &str) -> &'a Command {
    let i = kinds(cmds)
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(cmds)));
    &cmds[i]
}

/// The label selector of the first `ListPods` in `cmds`, as a string, with its field selector.
pub fn list_selector(cmds: &[Command]) -> (String, Option<String>) {
    match &first(cmds, "ListPods").kind {
        CommandKind::Api(ApiCall::ListPods {
            label_selector,
            field_selector,
            ..
        }) => (
            label_selector.to_string(),
            field_selector.map(|f| f.to_string()),
        ),
        _ => unreachable!(),
    }
}

/// Runs a table of test cases with one driver, each case on its own: a failing case does not
/// hide the others. Each failing case's panic is printed as it happens, followed by its name;
/// at the end the test fails naming every case that failed.
pub fn run_cases<C>(cases: impl IntoIterator<Item = (String, C)>, run: impl Fn(&C)) {
    let mut ran = 0;
    let mut failed = Vec::new();
    for (name, case) in cases {
        ran += 1;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&case))).is_err() {
            eprintln!("^ case failed: {name}");
            failed.push(name);
        }
    }
    assert!(ran > 0, "an empty table");
    assert!(
        failed.is_empty(),
        "{} of {ran} cases failed: {failed:#?}",
        failed.len()
    );
}

/// One `ListPods` command, flattened for assertions (the selector via its `Display`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub id: CommandId,
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: Option<String>,
}

/// Every `ListPods` in `cmds`, in order.
pub fn lists(cmds: &[Command]) -> Vec<Listing> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::ListPods {
                namespace,
                label_selector,
                field_selector,
            }) => Some(Listing {
                id: c.id,
                namespace: namespace.clone(),
                label_selector: label_selector.to_string(),
                field_selector: field_selector.map(|f| f.to_string()),
            }),
            _ => None,
        })
        .collect()
}
