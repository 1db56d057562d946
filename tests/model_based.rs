//! Model-based property test: the real `Executor` and the reference model in `tests/model/`
//! are driven by the same generated inputs (submissions, create answers, pod events with
//! replays and deletions, DB answers, heartbeat snapshots, time steps), and after every step
//! their decisions must agree: the same creates, deletes, done labels, DB questions, requeues,
//! reports and completed-pod lists, and the same number of tracked tries and pod records.
//!
//! Inputs pick their target by index modulo what exists ("the 3rd pending create"), so every
//! generated sequence is valid and proptest shrinks it to the few steps that matter; time is a
//! generated step like any other.

mod model;
mod support;

use std::collections::BTreeMap;

use model::{CreateAnswer, DbAnswer, Decision, Last, Model, Shown};
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
use podwarden::selector::Operator;
use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, ContainerState,
    ContainerStatus, EventType, Input, PodPhase, PodView, TaskKey, Timestamp, WatchEvent,
};
use proptest::prelude::*;
use support::{created_pod, main_terminated, Harness};

/// Tries in play.
const TASKS: usize = 3;
/// Peer schedulers in heartbeat snapshots (this one is "5").
const PEERS: [&str; 2] = ["7", "9"];

/// One generated step.
#[derive(Debug, Clone)]
enum Op {
    Submit(usize),
    /// Answer the n-th unanswered create.
    AnswerCreate(usize, CreateAnswer),
    /// An event for the n-th pod still in the watch.
    Event(usize, EventKind),
    /// Answer the n-th unanswered DB question.
    AnswerDb(usize, DbAnswer),
    /// A heartbeat snapshot: per peer `(running, value in s)`, or a failed read.
    Heartbeats(Option<Vec<(bool, u64)>>),
    /// Time passes.
    Advance(u64),
}

/// What happens to a pod; a pod that already ended shows its end again (a replay).
#[derive(Debug, Clone, Copy)]
enum EventKind {
    Running,
    Succeed,
    FailError,
    FailPrestart,
    Replay,
    Delete,
    LeftWatch,
}

fn arb_op() -> impl Strategy<Value = Op> {
    let create = prop_oneof![
        4 => Just(CreateAnswer::Ok),
        1 => Just(CreateAnswer::AlreadyExists),
        2 => Just(CreateAnswer::Timeout),
        2 => Just(CreateAnswer::ServerError),
        1 => Just(CreateAnswer::Invalid),
    ];
    let event = prop_oneof![
        Just(EventKind::Running),
        Just(EventKind::Succeed),
        Just(EventKind::FailError),
        Just(EventKind::FailPrestart),
        Just(EventKind::Replay),
        Just(EventKind::Delete),
        Just(EventKind::LeftWatch),
    ];
    let db = prop_oneof![
        3 => Just(DbAnswer::Queued),
        1 => Just(DbAnswer::Running),
        1 => Just(DbAnswer::NoRow),
        1 => Just(DbAnswer::Unavailable),
    ];
    prop_oneof![
        2 => (0..TASKS).prop_map(Op::Submit),
        3 => (0..4usize, create).prop_map(|(i, a)| Op::AnswerCreate(i, a)),
        5 => (0..4usize, event).prop_map(|(i, k)| Op::Event(i, k)),
        2 => (0..4usize, db).prop_map(|(i, a)| Op::AnswerDb(i, a)),
        1 => proptest::option::weighted(
            0.8,
            proptest::collection::vec((any::<bool>(), 0..3u64), PEERS.len())
        )
        .prop_map(Op::Heartbeats),
        1 => (0..40_000u64).prop_map(Op::Advance),
    ]
}

/// A pod as the cluster has it.
#[derive(Debug, Clone)]
struct PodSim {
    view: PodView,
    last: Last,
    /// Still in the cluster (a clean-up gets OK, not 404).
    exists: bool,
    /// Still in this executor's watch (events can come).
    watched: bool,
}

/// The executor, the model, and the cluster they both look at.
struct Run {
    h: Harness,
    model: Model,
    keys: Vec<TaskKey>,
    pods: BTreeMap<String, PodSim>,
    /// Creates waiting for an answer: command id, try, pod name.
    creates: Vec<(CommandId, usize, String)>,
    /// DB questions waiting for an answer: command id, try.
    questions: Vec<(CommandId, usize)>,
    rv: u64,
    step: usize,
    /// Kinds of decisions made, for the coverage check.
    seen: std::collections::BTreeSet<String>,
}

impl Run {
    fn new(config: Config) -> Self {
        let h = Harness::new(config);
        let model = Model::new(h.now.0);
        Self {
            h,
            model,
            keys: (0..TASKS).map(|i| support::key(&format!("t{i}"))).collect(),
            pods: BTreeMap::new(),
            creates: Vec::new(),
            questions: Vec::new(),
            rv: 100,
            step: 0,
            seen: std::collections::BTreeSet::new(),
        }
    }

    fn task(&self, key: &TaskKey) -> usize {
        self.keys
            .iter()
            .position(|k| k == key)
            .unwrap_or(usize::MAX)
    }

    /// Applies one step to both, then compares. `Err` describes the first disagreement.
    fn apply(&mut self, op: &Op) -> Result<(), String> {
        self.step += 1;
        let now = self.h.now;
        self.model.at(now.0);
        let cmds = match op {
            Op::Submit(t) => {
                let expected = self.model.submit(*t);
                let key = self.keys[*t].clone();
                let result = self.h.try_input(
                    format!("submit {key}"),
                    Input::Submit {
                        key,
                        template: podwarden::PodTemplate::default(),
                    },
                );
                match (result, expected) {
                    (Ok(cmds), true) => cmds,
                    (Err(_), false) => Vec::new(),
                    (r, e) => return Err(format!("submit accepted: model {e}, executor {r:?}")),
                }
            }
            Op::AnswerCreate(i, answer) => {
                if self.creates.is_empty() {
                    return Ok(());
                }
                let (id, task, pod) = self.creates.remove(i % self.creates.len());
                if matches!(answer, CreateAnswer::Ok | CreateAnswer::AlreadyExists) {
                    let sim = self.pods.get_mut(&pod).expect("created pod");
                    sim.exists = true;
                    sim.watched = true;
                }
                self.model.create_answered(task, &pod, *answer);
                let outcome = match answer {
                    CreateAnswer::Ok => ApiOutcome::Ok,
                    CreateAnswer::AlreadyExists => status(409, "AlreadyExists"),
                    CreateAnswer::Timeout => ApiOutcome::Failed {
                        failure: ApiFailure::Timeout,
                    },
                    CreateAnswer::ServerError => status(500, "InternalError"),
                    CreateAnswer::Invalid => status(422, "Invalid"),
                };
                self.h.answer(id, outcome)
            }
            Op::Event(i, kind) => {
                let watched: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|(_, p)| p.watched)
                    .map(|(n, _)| n.clone())
                    .collect();
                if watched.is_empty() {
                    return Ok(());
                }
                let name = watched[i % watched.len()].clone();
                let (event, shown) = self.event(&name, *kind);
                let exists = self.pods[&name].exists;
                self.model.pod_event(&name, shown, exists);
                self.h
                    .input(format!("event {name}"), Input::Watch { event })
            }
            Op::AnswerDb(i, answer) => {
                if self.questions.is_empty() {
                    return Ok(());
                }
                let (id, task) = self.questions.remove(i % self.questions.len());
                self.model.db_answered(task, *answer);
                let key = self.keys[task].clone();
                let outcome = match answer {
                    DbAnswer::Queued => DbOutcome::TaskStates {
                        states: vec![(key, Some(TaskState::Queued))],
                    },
                    DbAnswer::Running => DbOutcome::TaskStates {
                        states: vec![(key, Some(TaskState::Running))],
                    },
                    DbAnswer::NoRow => DbOutcome::TaskStates { states: vec![] },
                    DbAnswer::Unavailable => DbOutcome::Unavailable {
                        reason: "db down".into(),
                    },
                };
                self.h.answer_db(id, outcome)
            }
            Op::Heartbeats(rows) => {
                let rows: Option<Vec<(String, bool, u64)>> = rows.as_ref().map(|rows| {
                    PEERS
                        .iter()
                        .zip(rows)
                        .map(|(id, (running, s))| (id.to_string(), *running, s * 1000))
                        .collect()
                });
                self.model.heartbeats(rows.as_deref());
                let snapshot = match rows {
                    Some(rows) => Ok(rows
                        .into_iter()
                        .map(|(id, running, value)| HeartbeatRecord {
                            scheduler_id: id,
                            state: if running {
                                JobState::Running
                            } else {
                                JobState::Failed
                            },
                            latest_heartbeat: Timestamp(value),
                        })
                        .collect()),
                    None => Err(HeartbeatsUnavailable {
                        reason: "db down".into(),
                    }),
                };
                self.h
                    .input("heartbeats".into(), Input::Heartbeats { snapshot })
            }
            Op::Advance(ms) => {
                self.model.advance(now.0 + ms);
                self.h.advance(*ms)
            }
        };
        self.model.launch();
        let decided = self.settle(cmds)?;
        self.seen.extend(decided.iter().map(coverage_kind));
        let expected = self.model.take();
        if decided != expected {
            return Err(format!(
                "step {} {op:?}: executor decided {decided:?}, the model {expected:?}",
                self.step
            ));
        }
        let size = self.h.ex.state_size();
        if (size.tasks, size.pods) != (self.model.tries(), self.model.records()) {
            return Err(format!(
                "step {} {op:?}: executor tracks {} tries and {} pods, the model {} and {}",
                self.step,
                size.tasks,
                size.pods,
                self.model.tries(),
                self.model.records()
            ));
        }
        Ok(())
    }

    /// Answers what the cluster answers at once (clean-ups, lists), keeps creates and DB
    /// questions for later steps, and returns every decision, sorted.
    fn settle(&mut self, cmds: Vec<Command>) -> Result<Vec<Decision>, String> {
        let mut decided = Vec::new();
        let mut queue = std::collections::VecDeque::from(cmds);
        while let Some(cmd) = queue.pop_front() {
            let answer = match &cmd.kind {
                CommandKind::CreatePod { manifest } => {
                    let view = created_pod(std::slice::from_ref(&cmd)).expect("a create");
                    let key = view.task_key().map_err(|e| format!("{e:?}"))?;
                    let task = self.task(&key);
                    let name = manifest.pod.name.clone();
                    self.model.bind_create(task, &name)?;
                    self.pods.entry(name.clone()).or_insert(PodSim {
                        view,
                        last: Last::Pending,
                        exists: false,
                        watched: false,
                    });
                    self.creates.push((cmd.id, task, name));
                    decided.push(Decision::Create { task });
                    None
                }
                CommandKind::DeletePod { pod, .. } => {
                    decided.push(Decision::Delete {
                        pod: pod.name.clone(),
                    });
                    Some(self.cleanup_answer(&pod.name))
                }
                CommandKind::PatchLabels { pod, labels, .. } => {
                    if labels.get("airflow_executor_done").map(String::as_str) != Some("True") {
                        return Err(format!("unexpected relabel {cmd:?}"));
                    }
                    decided.push(Decision::MarkDone {
                        pod: pod.name.clone(),
                    });
                    Some(self.cleanup_answer(&pod.name))
                }
                CommandKind::QueryTaskStates { keys } => {
                    let [key] = keys.as_slice() else {
                        return Err(format!("one key per question: {cmd:?}"));
                    };
                    let task = self.task(key);
                    self.questions.push((cmd.id, task));
                    decided.push(Decision::Ask { task });
                    None
                }
                CommandKind::Requeue {
                    key,
                    attempt,
                    failed_pod,
                    ..
                } => {
                    decided.push(Decision::Requeue {
                        task: self.task(key),
                        attempt: *attempt,
                        pod: failed_pod.name.clone(),
                    });
                    None
                }
                CommandKind::Report { key, state, .. } => {
                    decided.push(Decision::Report {
                        task: self.task(key),
                        succeeded: *state == podwarden::ReportedState::Succeeded,
                    });
                    None
                }
                CommandKind::ListPods {
                    label_selector,
                    field_selector: Some(_),
                    ..
                } => {
                    let excluded = label_selector
                        .requirements()
                        .iter()
                        .find(|r| r.key == "airflow-worker")
                        .map(|r| match &r.op {
                            Operator::NotIn(v) => v.iter().cloned().collect(),
                            Operator::NotEquals(v) => [v.clone()].into(),
                            other => [format!("{other:?}")].into(),
                        })
                        .unwrap_or_default();
                    decided.push(Decision::AdoptCompleted { excluded });
                    self.model.adoption_answered();
                    Some(ApiOutcome::Listed {
                        pods: vec![],
                        resource_version: self.rv.to_string(),
                    })
                }
                CommandKind::WatchPods { .. } => None,
                other => return Err(format!("unexpected command {other:?}")),
            };
            if let Some(outcome) = answer {
                queue.extend(self.h.answer(cmd.id, outcome));
            }
        }
        decided.sort();
        Ok(decided)
    }

    /// A clean-up of a pod that exists is OK; of one that does not, 404.
    fn cleanup_answer(&self, pod: &str) -> ApiOutcome {
        if self.pods.get(pod).is_some_and(|p| p.exists) {
            ApiOutcome::Ok
        } else {
            status(404, "NotFound")
        }
    }

    /// The watch event `kind` makes for pod `name`, and what it shows.
    fn event(&mut self, name: &str, kind: EventKind) -> (WatchEvent, Shown) {
        self.rv += 1;
        let rv = self.rv.to_string();
        let sim = self.pods.get_mut(name).expect("a watched pod");
        let ended = matches!(sim.last, Last::Succeeded | Last::Failed { .. });
        let next = match kind {
            EventKind::Running if !ended => Last::Running,
            EventKind::Succeed if !ended => Last::Succeeded,
            EventKind::FailError if !ended => Last::Failed { error: true },
            EventKind::FailPrestart if !ended => Last::Failed { error: false },
            _ => sim.last,
        };
        sim.last = next;
        let mut view = match next {
            Last::Pending => sim.view.clone(),
            Last::Running => {
                let mut v = sim.view.clone();
                v.phase = Some(PodPhase::Running);
                v.containers = vec![ContainerStatus {
                    name: "base".into(),
                    state: ContainerState::Running {
                        started_at: Some(Timestamp(1)),
                    },
                    restart_count: 0,
                    last_state: None,
                }];
                v
            }
            Last::Succeeded => {
                let mut v = sim.view.clone();
                v.phase = Some(PodPhase::Succeeded);
                v
            }
            Last::Failed { error } => {
                let v = support::with_phase(sim.view.clone(), PodPhase::Failed, &rv);
                if error {
                    main_terminated(v, "Error", 1, true)
                } else {
                    main_terminated(v, "ContainerStatusUnknown", 137, false)
                }
            }
        };
        view.resource_version = rv;
        let (event_type, shown) = match kind {
            EventKind::Delete => {
                view.deletion_timestamp = Some(Timestamp(1));
                sim.exists = false;
                sim.watched = false;
                (EventType::Deleted, Shown::Deleted(next))
            }
            EventKind::LeftWatch => {
                sim.watched = false;
                (EventType::Deleted, Shown::LeftWatch)
            }
            _ => (
                EventType::Modified,
                match next {
                    Last::Pending => Shown::Pending,
                    Last::Running => Shown::Running,
                    Last::Succeeded => Shown::Succeeded,
                    Last::Failed { error: true } => Shown::FailedError,
                    Last::Failed { error: false } => Shown::FailedPrestart,
                },
            ),
        };
        sim.view = view.clone();
        (WatchEvent::new(event_type, view), shown)
    }
}

/// The coverage class of a decision.
fn coverage_kind(d: &Decision) -> String {
    match d {
        Decision::Create { .. } => "Create".into(),
        Decision::Delete { .. } => "Delete".into(),
        Decision::MarkDone { .. } => "MarkDone".into(),
        Decision::Ask { .. } => "Ask".into(),
        Decision::Requeue { attempt, .. } => format!("Requeue {attempt}"),
        Decision::Report { succeeded, .. } => {
            format!("Report {}", if *succeeded { "succeeded" } else { "failed" })
        }
        Decision::AdoptCompleted { excluded } if excluded.len() == 1 => {
            "AdoptCompleted self only".into()
        }
        Decision::AdoptCompleted { .. } => "AdoptCompleted with a live peer".into(),
    }
}

fn status(code: u16, reason: &str) -> ApiOutcome {
    ApiOutcome::Failed {
        failure: ApiFailure::Status {
            code,
            reason: reason.into(),
            message: String::new(),
            retry_after_secs: None,
        },
    }
}

/// Runs `ops` on an executor built with `config` next to the model; `Err` at the first
/// disagreement.
fn agree(config: Config, ops: &[Op]) -> Result<(), String> {
    let mut run = Run::new(config);
    for op in ops {
        run.apply(op)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// After every step, the executor and the model decide the same.
    #[test]
    fn the_executor_decides_as_the_model(ops in proptest::collection::vec(arb_op(), 1..60)) {
        if let Err(e) = agree(model::model_config(), &ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Searches `cases` deterministic generated cases for a disagreement between an executor built
/// with `config` and the model; returns the shrunk case and why it disagrees.
fn search(config: &Config, cases: u32) -> Option<(String, Vec<Op>)> {
    use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    match runner.run(&proptest::collection::vec(arb_op(), 1..60), |ops| {
        agree(config.clone(), &ops).map_err(TestCaseError::fail)
    }) {
        Err(TestError::Fail(reason, minimal)) => Some((reason.to_string(), minimal)),
        _ => None,
    }
}

/// Negative control: an executor with Airflow's requeue bookkeeping (last-pod dedupe, failed
/// pods left unlabelled) is not what the model describes; the search finds it and shrinks it.
#[test]
fn the_comparison_fires_on_airflow_bookkeeping() {
    use podwarden::requeue::RequeueDedupe;
    let airflow = Config {
        pod_launch_failure_dedupe: RequeueDedupe::LastPod,
        label_kept_failed_pods_done: false,
        ..model::model_config()
    };
    let (reason, minimal) = search(&airflow, 2_000).expect("a disagreement");
    assert!(
        minimal.len() <= 8,
        "shrunk to a short case: {} steps, {minimal:?} ({reason})",
        minimal.len()
    );
}

/// Negative control: an executor whose requeue budget is one more than the model's. Finding it
/// takes a try whose pods fail before starting three times, the first two answered QUEUED: the
/// search must reach deep sequences, not only short ones.
#[test]
fn the_comparison_fires_on_an_off_by_one_budget() {
    let generous = Config {
        pod_launch_failure_retries: i64::from(model::REQUEUE_BUDGET) + 1,
        ..model::model_config()
    };
    let (reason, minimal) = search(&generous, 5_000).expect("a disagreement");
    // The executor asks the DB about a third pre-start failure where the model reports it.
    assert!(
        reason.contains("executor decided") && reason.contains("Ask"),
        "the third failure is the difference: {reason}"
    );
    assert!(minimal.len() <= 16, "shrunk: {minimal:?}");
}

/// The generator reaches every rule: over a fixed set of cases, every kind of decision occurs,
/// including a second requeue, a live peer kept out of adoption, and a failed heartbeat read.
#[test]
fn the_generator_reaches_every_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = proptest::collection::vec(arb_op(), 1..60);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let ops = strategy.new_tree(&mut runner).expect("a case").current();
        let mut run = Run::new(model::model_config());
        for op in &ops {
            run.apply(op).expect("the model agrees");
        }
        seen.extend(run.seen.iter().cloned());
    }
    for kind in [
        "Create",
        "Delete",
        "MarkDone",
        "Ask",
        "Requeue 1",
        "Requeue 2",
        "Report succeeded",
        "Report failed",
        "AdoptCompleted self only",
        "AdoptCompleted with a live peer",
    ] {
        assert!(
            seen.contains(kind),
            "never reached: {kind} (reached {seen:?})"
        );
    }
}
