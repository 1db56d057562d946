//! `podwarden-sim replay --kube-watch FILE`: a watch stream recorded from a real cluster, fed
//! through one [`Executor`], to see what podwarden would have decided at each event.
//!
//! The recorded pods belong to some scheduler (their `airflow-worker` label). The replaying
//! executor takes each try over the way a scheduler takes over a dead peer's tries: at the first
//! event of a worker pod it is handed the try ([`Input::AdoptOrphans`], with a pod template so
//! that a requeue can relaunch), lists the pod (answered with the pod as recorded) and relabels it
//! (answered OK). From then on the recorded events of that pod are the executor's own.
//!
//! Every command is answered as a cooperative cluster would: API calls succeed, lists return the
//! pods as last recorded, and the DB's answer about a try is, by default, inferred from the
//! stream: RUNNING if any event showed its main container started, else QUEUED (the try never
//! started). Time advances one second per event, and due timers fire before each event.
//!
//! Malformed lines are reported with their line number and skipped; the other events are all
//! replayed.

use podwarden_core::command::{ApiCall, DbQuery, Notice};
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use podwarden_core::adoption::OrphanTask;
use podwarden_core::db::{DbOutcome, TaskState};
use podwarden_core::k8s_json::{ParseError, WatchLine};
use podwarden_core::label;
use podwarden_core::{
    ApiOutcome, Command, CommandKind, Config, ContainerState, EventType, Executor, Input,
    PodTemplate, PodView, ReportedState, TaskKey, Timestamp,
};

use crate::classify;

/// What the replay answers when the executor asks the DB about a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbAssumption {
    /// RUNNING if the stream showed the try's main container started, else QUEUED.
    #[default]
    Infer,
    /// Always QUEUED (every failure is before the task started).
    Queued,
    /// Always RUNNING.
    Running,
    /// No row (the try moved on).
    NoRow,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct KubeReplaySpec {
    /// The replaying executor's scheduler id; it must differ from the recorded pods' owners.
    pub scheduler_id: String,
    /// The DB's answers.
    pub db: DbAssumption,
    /// The executor's configuration (its namespace is taken from the first pod).
    pub config: Config,
}

impl Default for KubeReplaySpec {
    fn default() -> Self {
        Self {
            scheduler_id: "podwarden-replay".into(),
            db: DbAssumption::Infer,
            config: Config {
                // A recorded stream is replayed as fast as it is read: never hold a command back.
                api_qps: 1_000_000,
                api_burst: 1_000_000,
                ..Config::default()
            },
        }
    }
}

/// What the executor decided at one recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDecisions {
    /// The line the event starts on.
    pub line: usize,
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event: &'static str,
    /// `namespace/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whether the replaying executor tracks this pod's try (it was handed over).
    pub tracked: bool,
    /// The commands it emitted (the watch restarts left out), in order.
    pub decisions: Vec<Command>,
    /// The DB answers the replay gave, `task: STATE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub db_answers: Vec<String>,
    /// Why the executor refused the event, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedLine {
    /// Its line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: ParseError,
}

/// What the executor would have done over the whole stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KubeReplaySummary {
    /// Events replayed.
    pub events: usize,
    /// Lines skipped because they could not be read.
    pub malformed: usize,
    /// Tries handed over to the replaying executor.
    pub tries_tracked: usize,
    /// Pods it would have deleted.
    pub deleted: Vec<String>,
    /// Pods it would have labelled `airflow_executor_done=True`.
    pub labelled_done: Vec<String>,
    /// Transparent requeues: `task (attempt N, cause) for pod`.
    pub requeued: Vec<String>,
    /// Pods it would have created (relaunches after a requeue).
    pub created: Vec<String>,
    /// Reports to the scheduler: `task STATE: reason`.
    pub reported: Vec<String>,
    /// The recorded worker pods' owners (their `airflow-worker` label), with the number of
    /// events of their pods. A pod whose owner is the replaying executor's own
    /// [`KubeReplaySpec::scheduler_id`] cannot be handed over, so it is not tracked.
    #[serde(skip)]
    pub owners: BTreeMap<String, usize>,
}

impl KubeReplaySummary {
    /// Events of recorded pods owned by `scheduler_id`: pods the replay cannot take over when
    /// `scheduler_id` is the replaying executor's.
    #[must_use]
    pub fn events_owned_by(&self, scheduler_id: &str) -> usize {
        self.owners.get(scheduler_id).copied().unwrap_or(0)
    }
}

/// Replays `input`; returns one entry per event (or malformed line), in order, and the summary.
/// [`KubeReplay`] does the same one event at a time, for a stream read incrementally.
#[must_use]
pub fn replay_kube_watch(
    input: &str,
    spec: &KubeReplaySpec,
) -> (
    Vec<Result<EventDecisions, MalformedLine>>,
    KubeReplaySummary,
) {
    let mut replay = KubeReplay::new(spec);
    let out = classify::watch_lines(input)
        .into_iter()
        .map(|(line, parsed)| replay.push(line, parsed))
        .collect();
    (out, replay.finish())
}

/// A replay fed one recorded event at a time ([`classify::watch_lines_from`] reads them
/// incrementally): what [`replay_kube_watch`] does, in memory that grows with the pods alive
/// and the tries handed over, not with the input.
///
/// ```
/// use podwarden_sim::classify::watch_lines_from;
/// use podwarden_sim::kube_replay::{KubeReplay, KubeReplaySpec};
///
/// let stream = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"9\"}}}\n{oops\n";
/// let mut replay = KubeReplay::new(&KubeReplaySpec::default());
/// for item in watch_lines_from(stream.as_bytes()) {
///     let (line, parsed) = item.unwrap();
///     let _decisions = replay.push(line, parsed);
/// }
/// let summary = replay.finish();
/// assert_eq!((summary.events, summary.malformed), (1, 1));
/// ```
#[derive(Debug)]
pub struct KubeReplay {
    r: Replayer,
}

impl KubeReplay {
    /// A replay with nothing read yet.
    #[must_use]
    pub fn new(spec: &KubeReplaySpec) -> Self {
        Self {
            r: Replayer {
                spec: spec.clone(),
                ex: None,
                now: Timestamp(0),
                handed_over: BTreeSet::new(),
                started: BTreeSet::new(),
                last_seen: BTreeMap::new(),
                summary: KubeReplaySummary::default(),
            },
        }
    }

    /// Replays one recorded event starting on `line` (or counts it malformed).
    ///
    /// # Errors
    /// [`MalformedLine`] when `parsed` is an error: the event is skipped.
    pub fn push(
        &mut self,
        line: usize,
        parsed: Result<WatchLine, ParseError>,
    ) -> Result<EventDecisions, MalformedLine> {
        match parsed {
            Ok(watch_line) => Ok(self.r.event(line, watch_line)),
            Err(error) => {
                self.r.summary.malformed += 1;
                Err(MalformedLine { line, error })
            }
        }
    }

    /// The summary so far.
    #[must_use]
    pub fn summary(&self) -> KubeReplaySummary {
        KubeReplaySummary {
            tries_tracked: self.r.handed_over.len(),
            ..self.r.summary.clone()
        }
    }

    /// The summary of the whole stream.
    #[must_use]
    pub fn finish(self) -> KubeReplaySummary {
        self.summary()
    }
}

#[derive(Debug)]
struct Replayer {
    spec: KubeReplaySpec,
    ex: Option<Executor>,
    now: Timestamp,
    /// Tries handed over so far.
    handed_over: BTreeSet<TaskKey>,
    /// Tries whose main container was seen started.
    started: BTreeSet<TaskKey>,
    /// Each pod as last recorded (until its DELETED): what a relist returns.
    last_seen: BTreeMap<String, PodView>,
    summary: KubeReplaySummary,
}

impl Replayer {
    fn event(&mut self, line: usize, watch_line: WatchLine) -> EventDecisions {
        self.summary.events += 1;
        self.now = self.now.plus_ms(1_000);
        let mut result = EventDecisions {
            line,
            event: "ERROR",
            pod: None,
            tracked: false,
            decisions: Vec::new(),
            db_answers: Vec::new(),
            error: None,
        };
        let input = match watch_line {
            WatchLine::Error(status) if status.code == 410 => {
                Input::WatchExpired { namespace: None }
            }
            WatchLine::Error(status) => {
                result.error = Some(format!("watch error {}: {}", status.code, status.message));
                return result;
            }
            WatchLine::Event(event) => {
                match event.pod() {
                    Some((kind, pod)) => {
                        result.event = kind.as_str();
                        result.pod = Some(pod.pod_ref().to_string());
                        let key = pod.task_key().ok();
                        if let Some(owner) = pod.labels.get(label::AIRFLOW_WORKER) {
                            *self.summary.owners.entry(owner.clone()).or_default() += 1;
                        }
                        self.executor_for(pod);
                        if let Some(key) = &key {
                            if main_started(pod) {
                                self.started.insert(key.clone());
                            }
                            if kind != EventType::Deleted && !self.handed_over.contains(key) {
                                self.hand_over(key, pod);
                            }
                            result.tracked = self.handed_over.contains(key);
                        }
                        let name = pod.pod_ref().to_string();
                        if kind == EventType::Deleted {
                            self.last_seen.remove(&name);
                        } else {
                            self.last_seen.insert(name, pod.clone());
                        }
                    }
                    None => result.event = "BOOKMARK",
                }
                Input::Watch { event }
            }
        };
        let Some(ex) = self.ex.as_mut() else {
            // A bookmark or an expiry before any pod: nothing to replay it on yet.
            return result;
        };
        let mut cmds = Vec::new();
        if ex.poll_timeout().is_some_and(|t| t <= self.now) {
            ex.handle_timeout(self.now);
            cmds.extend(drain(ex));
        }
        if let Err(e) = ex.handle_input(self.now, input) {
            result.error = Some(e.to_string());
        }
        cmds.extend(drain(ex));
        self.settle(cmds, &mut result);
        result
    }

    /// The executor, built at the first pod so that it works in that pod's namespace.
    fn executor_for(&mut self, pod: &PodView) {
        if self.ex.is_some() {
            return;
        }
        let config = Config {
            namespace: pod.namespace.clone(),
            ..self.spec.config.clone()
        };
        let Ok(mut ex) = Executor::new(config, self.spec.scheduler_id.clone(), self.now) else {
            return;
        };
        // Its start-up list of its own pods: it has none.
        let start = drain(&mut ex);
        for cmd in start {
            if matches!(cmd.kind, CommandKind::Api(ApiCall::ListPods { .. })) {
                let _ = ex.handle_input(
                    self.now,
                    Input::ApiResult {
                        id: cmd.id,
                        outcome: ApiOutcome::Listed {
                            pods: Vec::new(),
                            resource_version: pod.resource_version.clone(),
                        },
                    },
                );
            }
        }
        drain(&mut ex);
        self.ex = Some(ex);
    }

    /// Hands `key`'s try over from the pod's owner; its commands are setup, not decisions.
    fn hand_over(&mut self, key: &TaskKey, pod: &PodView) {
        let Some(ex) = self.ex.as_mut() else { return };
        let Some(owner) = pod
            .labels
            .get(label::AIRFLOW_WORKER)
            .filter(|o| **o != self.spec.scheduler_id)
        else {
            return;
        };
        let _ = ex.handle_input(
            self.now,
            Input::AdoptOrphans {
                tis: vec![OrphanTask {
                    key: key.clone(),
                    queued_by: Some(owner.clone()),
                    template: Some(PodTemplate::default()),
                }],
            },
        );
        let mut queue: Vec<Command> = drain(ex);
        while let Some(cmd) = queue.pop() {
            let outcome = match &cmd.kind {
                CommandKind::Api(ApiCall::ListPods { .. }) => ApiOutcome::Listed {
                    pods: vec![pod.clone()],
                    resource_version: pod.resource_version.clone(),
                },
                k if k.expects_reply() => ApiOutcome::Ok,
                CommandKind::Notice(Notice::OrphansResolved { adopted, .. }) => {
                    if adopted.contains(key) {
                        self.handed_over.insert(key.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            let _ = ex.handle_input(
                self.now,
                Input::ApiResult {
                    id: cmd.id,
                    outcome,
                },
            );
            queue.extend(drain(ex));
        }
    }

    /// Answers what the executor asked, as a cooperative cluster and the DB would, and keeps
    /// every command (the watch restarts left out) as the event's decisions.
    fn settle(&mut self, cmds: Vec<Command>, result: &mut EventDecisions) {
        let mut queue = std::collections::VecDeque::from(cmds);
        while let Some(cmd) = queue.pop_front() {
            let answer = match &cmd.kind {
                CommandKind::Notice(Notice::WatchPods { .. }) => continue,
                CommandKind::Db(DbQuery::QueryTaskStates { keys }) => {
                    let states: Vec<(TaskKey, Option<TaskState>)> =
                        keys.iter().map(|k| (k.clone(), self.db_state(k))).collect();
                    for (k, s) in &states {
                        result.db_answers.push(match s {
                            Some(s) => format!("{k}: {s:?}"),
                            None => format!("{k}: no row"),
                        });
                    }
                    Some(Input::DbResult {
                        id: cmd.id,
                        outcome: DbOutcome::TaskStates { states },
                    })
                }
                CommandKind::Api(ApiCall::ListPods { .. }) => Some(Input::ApiResult {
                    id: cmd.id,
                    outcome: ApiOutcome::Listed {
                        pods: self.last_seen.values().cloned().collect(),
                        resource_version: String::new(),
                    },
                }),
                k if k.expects_reply() => Some(Input::ApiResult {
                    id: cmd.id,
                    outcome: ApiOutcome::Ok,
                }),
                _ => None,
            };
            self.note(&cmd.kind);
            result.decisions.push(cmd);
            if let (Some(input), Some(ex)) = (answer, self.ex.as_mut()) {
                let _ = ex.handle_input(self.now, input);
                queue.extend(drain(ex));
            }
        }
    }

    fn db_state(&self, key: &TaskKey) -> Option<TaskState> {
        match self.spec.db {
            DbAssumption::Infer if self.started.contains(key) => Some(TaskState::Running),
            DbAssumption::Infer | DbAssumption::Queued => Some(TaskState::Queued),
            DbAssumption::Running => Some(TaskState::Running),
            DbAssumption::NoRow => None,
        }
    }

    fn note(&mut self, kind: &CommandKind) {
        let s = &mut self.summary;
        match kind {
            CommandKind::Api(ApiCall::DeletePod { pod, .. }) => s.deleted.push(pod.to_string()),
            CommandKind::Api(ApiCall::PatchLabels { pod, labels, .. })
                if labels.get(label::EXECUTOR_DONE).map(String::as_str) == Some(label::TRUE) =>
            {
                s.labelled_done.push(pod.to_string());
            }
            CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                s.created.push(manifest.pod.to_string())
            }
            CommandKind::Notice(Notice::Requeue {
                key,
                attempt,
                cause,
                failed_pod,
            }) => s.requeued.push(format!(
                "{key} (attempt {attempt}, {cause}) for {failed_pod}"
            )),
            CommandKind::Notice(Notice::Report { key, state, reason }) => s.reported.push(format!(
                "{key} {}{}",
                match state {
                    ReportedState::Succeeded => "SUCCEEDED",
                    ReportedState::Failed => "FAILED",
                },
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            _ => {}
        }
    }
}

fn drain(ex: &mut Executor) -> Vec<Command> {
    std::iter::from_fn(|| ex.poll_command()).collect()
}

/// Whether the pod shows its main container started (running, or exited after starting).
fn main_started(pod: &PodView) -> bool {
    pod.containers.first().is_some_and(|c| match &c.state {
        ContainerState::Running { .. } => true,
        ContainerState::Terminated { started_at, .. } => started_at.is_some(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGTERM: &str = include_str!("../streams/sigterm-storm.jsonl");

    #[test]
    fn a_sigterm_sequence_is_one_requeue() {
        let (events, summary) = replay_kube_watch(SIGTERM, &KubeReplaySpec::default());
        // Lines 11-13: MODIFIED (deleting), MODIFIED Failed, DELETED Failed, of a pod that
        // never started.
        let transform = "etl-daily-transform-orders-v5h2n8rd";
        let requeues: Vec<&String> = summary
            .requeued
            .iter()
            .filter(|r| r.ends_with(transform))
            .collect();
        assert_eq!(requeues.len(), 1, "{:#?}", summary);
        let sequence: Vec<usize> = events
            .iter()
            .flatten()
            .filter(|e| e.pod.as_deref().is_some_and(|p| p.ends_with(transform)))
            .filter(|e| {
                e.decisions
                    .iter()
                    .any(|c| matches!(c.kind, CommandKind::Notice(Notice::Requeue { .. })))
            })
            .map(|e| e.line)
            .collect();
        assert_eq!(
            sequence,
            [12],
            "the first Failed event requeues, the rest do not"
        );
        assert!(!summary.created.is_empty(), "the requeue relaunches");
        assert_eq!(summary.malformed, 0);
        assert_eq!(summary.events, 21);
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_number_and_skipped() {
        let mut lines: Vec<&str> = SIGTERM.lines().collect();
        lines.insert(3, "{not json");
        let input = lines.join("\n");
        let (events, summary) = replay_kube_watch(&input, &KubeReplaySpec::default());
        assert_eq!(summary.malformed, 1);
        assert_eq!(summary.events, 21, "every other event is replayed");
        let bad: Vec<usize> = events
            .iter()
            .filter_map(|e| e.as_ref().err().map(|m| m.line))
            .collect();
        assert_eq!(bad, [4]);
        let (_, clean) = replay_kube_watch(SIGTERM, &KubeReplaySpec::default());
        assert_eq!(summary.requeued, clean.requeued, "nothing else changes");
    }
}
