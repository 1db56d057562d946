//! The system under test: the real `Executor`, driven through `tests/support`'s harness, next to
//! the model, and the cluster both look at (pods, unanswered creates and DB questions).

use podwarden::command::{ApiCall, DbQuery, Notice};
use std::collections::BTreeMap;

use podwarden::selector::Operator;
use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, ContainerState,
    ContainerStatus, EventType, PodPhase, PodView, TaskKey, Timestamp, WatchEvent,
};

use super::reference::{Last, Model, Shown};
use super::transition::EventKind;
use super::{Decision, TASKS};
use crate::support::{self, created_pod, main_terminated, Harness};

/// A pod as the cluster has it.
#[derive(Debug, Clone)]
pub struct PodSim {
    pub view: PodView,
    pub last: Last,
    /// Still in the cluster (a clean-up gets OK, not 404).
    pub exists: bool,
    /// Still in this executor's watch (events can come).
    pub watched: bool,
}

/// The executor, the model, and the cluster they both look at.
pub struct Run {
    pub h: Harness,
    pub model: Model,
    pub keys: Vec<TaskKey>,
    pub pods: BTreeMap<String, PodSim>,
    /// Creates waiting for an answer: command id, try, pod name.
    pub creates: Vec<(CommandId, usize, String)>,
    /// DB questions waiting for an answer: command id, try.
    pub questions: Vec<(CommandId, usize)>,
    pub rv: u64,
    pub step: usize,
    /// Kinds of decisions made, for the coverage check.
    pub seen: std::collections::BTreeSet<String>,
}

impl Run {
    pub fn new(config: Config) -> Self {
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

    pub fn task(&self, key: &TaskKey) -> usize {
        self.keys
            .iter()
            .position(|k| k == key)
            .unwrap_or(usize::MAX)
    }

    /// Answers what the cluster answers at once (clean-ups, lists), keeps creates and DB
    /// questions for later steps, and returns every decision, sorted.
    pub fn settle(&mut self, cmds: Vec<Command>) -> Result<Vec<Decision>, String> {
        let mut decided = Vec::new();
        let mut queue = std::collections::VecDeque::from(cmds);
        while let Some(cmd) = queue.pop_front() {
            let answer = match &cmd.kind {
                CommandKind::Api(ApiCall::CreatePod { manifest }) => {
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
                CommandKind::Api(ApiCall::DeletePod { pod, .. }) => {
                    decided.push(Decision::Delete {
                        pod: pod.name.clone(),
                    });
                    Some(self.cleanup_answer(&pod.name))
                }
                CommandKind::Api(ApiCall::PatchLabels { pod, labels, .. }) => {
                    if labels.get("airflow_executor_done").map(String::as_str) != Some("True") {
                        return Err(format!("unexpected relabel {cmd:?}"));
                    }
                    decided.push(Decision::MarkDone {
                        pod: pod.name.clone(),
                    });
                    Some(self.cleanup_answer(&pod.name))
                }
                CommandKind::Db(DbQuery::QueryTaskStates { keys }) => {
                    let [key] = keys.as_slice() else {
                        return Err(format!("one key per question: {cmd:?}"));
                    };
                    let task = self.task(key);
                    self.questions.push((cmd.id, task));
                    decided.push(Decision::Ask { task });
                    None
                }
                CommandKind::Notice(Notice::Requeue {
                    key,
                    attempt,
                    failed_pod,
                    ..
                }) => {
                    decided.push(Decision::Requeue {
                        task: self.task(key),
                        attempt: *attempt,
                        pod: failed_pod.name.clone(),
                    });
                    None
                }
                CommandKind::Notice(Notice::Report { key, state, .. }) => {
                    decided.push(Decision::Report {
                        task: self.task(key),
                        succeeded: *state == podwarden::ReportedState::Succeeded,
                    });
                    None
                }
                CommandKind::Api(ApiCall::ListPods {
                    label_selector,
                    field_selector: Some(_),
                    ..
                }) => {
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
                CommandKind::Notice(Notice::WatchPods { .. }) => None,
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
    pub fn cleanup_answer(&self, pod: &str) -> ApiOutcome {
        if self.pods.get(pod).is_some_and(|p| p.exists) {
            ApiOutcome::Ok
        } else {
            status(404, "NotFound")
        }
    }

    /// The watch event `kind` makes for pod `name`, and what it shows.
    pub fn event(&mut self, name: &str, kind: EventKind) -> (WatchEvent, Shown) {
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
pub fn coverage_kind(d: &Decision) -> String {
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

pub fn status(code: u16, reason: &str) -> ApiOutcome {
    ApiOutcome::Failed {
        failure: ApiFailure::Status {
            code,
            reason: reason.into(),
            message: String::new(),
            retry_after_secs: None,
        },
    }
}
