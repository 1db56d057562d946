//! Turns an arbitrary byte string into a sequence of executor inputs and runs it, checking the
//! properties that must hold for *any* input: no panic, unique command ids, bounded state, and
//! every answerable command awaited exactly once.
//!
//! Shared by the `cargo fuzz` target `fuzz/fuzz_targets/executor_inputs.rs` (coverage-guided,
//! run by hand) and the proptest `tests/fuzz_equivalent.rs` (bounded, run in CI), so both
//! explore the same input space. Bytes are read with defaults when they run out, so every byte
//! string is a valid program and the fuzzer never wastes inputs on a decoding error.
#![allow(dead_code, unreachable_pub)]

use podwarden::command::{ApiCall, DbQuery};
use std::collections::BTreeSet;

#[path = "drain.rs"]
mod drain;

use podwarden::adoption::OrphanTask;
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
use podwarden::{
    ApiFailure, ApiOutcome, CommandId, CommandKind, Config, ContainerState, ContainerStatus,
    EventType, Executor, Input, PodCondition, PodPhase, PodTemplate, PodView, TaskKey, Timestamp,
    WatchEvent,
};

/// Distinct task keys a program can name; bounds the executor's task table.
pub const KEYS: usize = 4;

/// Reads the byte string front to back; yields zeros once it is exhausted.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bit(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[usize::from(self.u8()) % options.len()].clone()
    }

    /// True with probability 1/n. (`% n == 0` spelled so that it builds on the MSRV, which
    /// predates `is_multiple_of`.)
    fn one_in(&mut self, n: u8) -> bool {
        matches!(self.u8() % n, 0)
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Why a program broke a property (a panic is caught by the caller's harness instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Broken(pub String);

fn task_key(b: &mut Bytes<'_>) -> TaskKey {
    let i = usize::from(b.u8()) % KEYS;
    let try_number = 1 + u32::from(b.u8() % 3);
    TaskKey::new("dag", format!("task_{i}"), "run", try_number)
}

fn config(b: &mut Bytes<'_>) -> Config {
    Config {
        delete_worker_pods: b.bit(),
        delete_worker_pods_on_failure: b.bit(),
        worker_pods_creation_batch_size: 1 + u32::from(b.u8() % 3),
        task_publish_max_retries: i64::from(b.u8() % 4) - 1,
        pod_launch_failure_retries: i64::from(b.u8() % 4) - 1,
        pod_cleanup_max_retries: i64::from(b.u8() % 4) - 1,
        api_qps: 2,
        api_burst: 1 + u32::from(b.u8() % 3),
        ..Config::default()
    }
}

/// One executor under test plus what the driver must remember to check it.
struct Driver {
    ex: Executor,
    now: Timestamp,
    /// Answerable commands, oldest first.
    pending: Vec<(CommandId, CommandKind)>,
    /// Pod names the executor created, so events can name real pods.
    created: Vec<String>,
    ids: BTreeSet<u64>,
    /// Negative control: forget answerable commands, so the awaited-replies check must fire.
    forget_pending: bool,
}

impl Driver {
    fn pod(&self, b: &mut Bytes<'_>) -> PodView {
        let slot = usize::from(b.u8());
        let name = if self.created.is_empty() || slot % 5 == 0 {
            format!("stranger-{}", slot % 3)
        } else {
            self.created[slot % self.created.len()].clone()
        };
        let key = task_key(b);
        let mut pod = PodView::new("default", name.clone());
        pod.uid = format!("{name}-{}", b.u8() % 2);
        pod.resource_version = b.u16().to_string();
        pod.labels = key.to_labels();
        let owner = b.pick(&["5", "6", "7"]);
        pod.labels.insert("airflow-worker".into(), owner.into());
        match b.u8() % 8 {
            0 => {
                pod.labels
                    .insert("airflow_pod_revoked".into(), "True".into());
            }
            1 => {
                pod.labels
                    .insert("kubernetes_pod_operator".into(), "True".into());
            }
            _ => {}
        }
        pod.annotations = key.to_annotations();
        match b.u8() % 8 {
            0 => {
                pod.annotations.remove("try_number");
            }
            1 => {
                pod.annotations.insert("try_number".into(), "x1".into());
            }
            2 => pod.annotations.clear(),
            _ => {}
        }
        pod.phase = b.pick(&[
            None,
            Some(PodPhase::Pending),
            Some(PodPhase::Running),
            Some(PodPhase::Succeeded),
            Some(PodPhase::Failed),
            Some(PodPhase::Unknown),
        ]);
        if b.one_in(4) {
            pod.deletion_timestamp = Some(Timestamp(u64::from(b.u16())));
        }
        let reason = b.pick(&[
            "Error",
            "ErrImagePull",
            "OOMKilled",
            "Completed",
            "StartError",
            "ImagePullBackOff",
            "ContainerCreating",
        ]);
        let state = match b.u8() % 4 {
            0 => None,
            1 => Some(ContainerState::Waiting {
                reason: Some(reason.into()),
                message: None,
            }),
            2 => Some(ContainerState::Running { started_at: None }),
            _ => Some(ContainerState::Terminated {
                reason: Some(reason.into()),
                message: None,
                exit_code: i32::from(b.u8()) - 1,
                started_at: None,
            }),
        };
        if let Some(state) = state {
            pod.containers.push(ContainerStatus::new("base", state));
        }
        if b.one_in(4) {
            pod.conditions.push(PodCondition {
                kind: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("EvictionByEvictionAPI".into()),
                message: None,
            });
        }
        pod
    }

    fn api_outcome(&self, b: &mut Bytes<'_>, is_list: bool) -> ApiOutcome {
        let status =
            |code: u16, reason: &str, message: &str, retry: Option<u64>| ApiOutcome::Failed {
                failure: ApiFailure::Status {
                    code,
                    reason: reason.into(),
                    message: message.into(),
                    retry_after_secs: retry,
                },
            };
        match b.u8() % 12 {
            0..=4 if is_list => {
                let n = b.u8() % 4;
                let pods = (0..n).map(|_| self.pod(b)).collect();
                ApiOutcome::Listed {
                    pods,
                    resource_version: b.u16().to_string(),
                }
            }
            0..=4 => ApiOutcome::Ok,
            5 => status(404, "NotFound", "", None),
            6 => status(409, "AlreadyExists", "already exists", None),
            7 => status(409, "Conflict", "the object has been modified", None),
            8 => status(429, "TooManyRequests", "", Some(u64::from(b.u8() % 5))),
            9 => status(500, "InternalError", "", None),
            10 => status(403, "Forbidden", "exceeded quota", None),
            _ => ApiOutcome::Failed {
                failure: b.pick(&[
                    ApiFailure::Timeout,
                    ApiFailure::Connection {
                        message: "reset".into(),
                    },
                ]),
            },
        }
    }

    fn db_outcome(b: &mut Bytes<'_>, asked: &CommandKind) -> DbOutcome {
        let states = [
            None,
            Some(TaskState::Queued),
            Some(TaskState::Running),
            Some(TaskState::Success),
            Some(TaskState::Failed),
            Some(TaskState::UpForRetry),
            Some(TaskState::Scheduled),
        ];
        match (b.u8() % 6, asked) {
            (0, _) => DbOutcome::Unavailable {
                reason: "db down".into(),
            },
            (1, _) => DbOutcome::UnfinishedTasks {
                tasks: (0..b.u8() % 4).map(|_| task_key(b)).collect(),
            },
            (_, CommandKind::Db(DbQuery::QueryTaskStates { keys, .. })) => DbOutcome::TaskStates {
                states: keys.iter().map(|k| (k.clone(), b.pick(&states))).collect(),
            },
            _ => DbOutcome::TaskStates {
                states: (0..b.u8() % 3)
                    .map(|_| (task_key(b), b.pick(&states)))
                    .collect(),
            },
        }
    }

    /// Applies one decoded input, then drains and checks.
    fn step(&mut self, b: &mut Bytes<'_>) -> Result<(), Broken> {
        let now = self.now;
        // The pending command this input answers, removed only if the executor accepts it.
        let mut answered = None;
        let input = match b.u8() % 12 {
            0 | 1 => Some(Input::Submit {
                key: task_key(b),
                template: PodTemplate::default(),
            }),
            2..=4 => {
                let kind = b.pick(&[EventType::Added, EventType::Modified, EventType::Deleted]);
                Some(Input::Watch {
                    event: WatchEvent::new(kind, self.pod(b)),
                })
            }
            5 => Some(Input::Watch {
                event: WatchEvent::Bookmark {
                    namespace: None,
                    resource_version: b.u16().to_string(),
                },
            }),
            6 | 7 => {
                let i = usize::from(b.u8());
                let slot = i % self.pending.len().max(1);
                if let Some((id, kind)) = self.pending.get(slot).cloned() {
                    answered = Some(slot);
                    let db = matches!(
                        kind,
                        CommandKind::Db(DbQuery::QueryTaskStates { .. })
                            | CommandKind::Db(DbQuery::QueryUnfinishedTasks)
                    );
                    Some(if db {
                        Input::DbResult {
                            id,
                            outcome: Self::db_outcome(b, &kind),
                        }
                    } else {
                        let is_list = matches!(kind, CommandKind::Api(ApiCall::ListPods { .. }));
                        Input::ApiResult {
                            id,
                            outcome: self.api_outcome(b, is_list),
                        }
                    })
                } else {
                    // An answer nobody asked for.
                    Some(Input::ApiResult {
                        id: CommandId(1_000_000 + i as u64),
                        outcome: ApiOutcome::Ok,
                    })
                }
            }
            8 => {
                let snapshot = if b.one_in(5) {
                    Err(HeartbeatsUnavailable {
                        reason: "db down".into(),
                    })
                } else {
                    let mut records = Vec::new();
                    for id in ["5", "6", "7"] {
                        if b.bit() {
                            continue;
                        }
                        let state = b.pick(&[
                            JobState::Running,
                            JobState::Failed,
                            JobState::Success,
                            JobState::Other,
                        ]);
                        let age_ms = u64::from(b.u16()) * 10;
                        records.push(HeartbeatRecord {
                            scheduler_id: id.into(),
                            state,
                            latest_heartbeat: Timestamp(now.0.saturating_sub(age_ms)),
                        });
                    }
                    Ok(records)
                };
                Some(Input::Heartbeats { snapshot })
            }
            9 => {
                let tis = (0..b.u8() % 3)
                    .map(|_| {
                        let key = task_key(b);
                        let queued_by = b.pick(&[None, Some("6"), Some("7")]).map(String::from);
                        let template = b.bit().then(PodTemplate::default);
                        OrphanTask {
                            key,
                            queued_by,
                            template,
                        }
                    })
                    .collect();
                Some(Input::AdoptOrphans { tis })
            }
            10 => match b.u8() % 3 {
                0 => Some(Input::Revoke { key: task_key(b) }),
                1 => Some(Input::WatchExpired { namespace: None }),
                _ => {
                    // The host's clock steps back.
                    self.now = Timestamp(self.now.0.saturating_sub(u64::from(b.u16())));
                    self.ex.handle_timeout(self.now);
                    None
                }
            },
            _ => {
                self.now = self.now.plus_ms(u64::from(b.u16()) * 4);
                self.ex.handle_timeout(self.now);
                None
            }
        };
        if let Some(input) = input {
            // Rejections are typed errors and leave the state unchanged; both are fine here.
            let accepted = self.ex.handle_input(now, input).is_ok();
            if let (true, Some(slot)) = (accepted, answered) {
                self.pending.remove(slot);
            }
        }
        self.drain()?;
        let size = self.ex.state_size();
        // Adoption can add tries named by other schedulers: KEYS names × 3 try numbers.
        if size.tasks > KEYS * 3 {
            return Err(Broken(format!(
                "task table grew past its key space: {size:?}"
            )));
        }
        if size.awaiting_replies != self.pending.len() + size.held_commands {
            return Err(Broken(format!(
                "awaited replies {} != pending {} + held {}",
                size.awaiting_replies,
                self.pending.len(),
                size.held_commands
            )));
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Broken> {
        for cmd in drain::drain_commands(&mut self.ex) {
            if !self.ids.insert(cmd.id.0) {
                return Err(Broken(format!("command id {} emitted twice", cmd.id)));
            }
            if let CommandKind::Api(ApiCall::CreatePod { manifest }) = &cmd.kind {
                if !self.created.contains(&manifest.pod.name) {
                    self.created.push(manifest.pod.name.clone());
                }
            }
            if cmd.kind.expects_reply() && !self.forget_pending {
                self.pending.push((cmd.id, cmd.kind));
            }
        }
        Ok(())
    }
}

/// Runs the program the bytes encode: a config, then inputs until the bytes run out (at most
/// `max_steps`). Returns the number of steps run.
pub fn run(data: &[u8], max_steps: usize) -> Result<usize, Broken> {
    run_with(data, max_steps, false)
}

/// [`run`], optionally as the negative control that forgets every answerable command.
pub fn run_with(data: &[u8], max_steps: usize, forget_pending: bool) -> Result<usize, Broken> {
    let mut b = Bytes { data };
    let start = Timestamp(1_000_000);
    let Ok(ex) = Executor::new(config(&mut b), "5", start) else {
        return Ok(0);
    };
    let mut driver = Driver {
        ex,
        now: start,
        pending: Vec::new(),
        created: Vec::new(),
        ids: BTreeSet::new(),
        forget_pending,
    };
    driver.drain()?;
    let mut steps = 0;
    while !b.is_empty() && steps < max_steps {
        driver.step(&mut b)?;
        steps += 1;
    }
    Ok(steps)
}
