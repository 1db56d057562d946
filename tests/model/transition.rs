//! The generated step, and how one step applies to the executor and the model alike.
//!
//! Steps pick their target by index modulo what exists ("the 3rd pending create"), so every
//! generated sequence is valid and proptest shrinks it to the few steps that matter; time is a
//! step like any other.

use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
use podwarden::{ApiFailure, ApiOutcome, Input, Timestamp};

use super::sut::{coverage_kind, status, Run};
use super::PEERS;

/// One generated step.
#[derive(Debug, Clone)]
pub enum Op {
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
pub enum EventKind {
    Running,
    Succeed,
    FailError,
    FailPrestart,
    Replay,
    Delete,
    LeftWatch,
}

/// The DB's answer about a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAnswer {
    Queued,
    Running,
    NoRow,
    Unavailable,
}

/// The API's answer to a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAnswer {
    Ok,
    AlreadyExists,
    Timeout,
    ServerError,
    Invalid,
}

impl Run {
    /// Applies one step to both, then compares. `Err` describes the first disagreement.
    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
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
}
