//! Property tests: arbitrary input sequences, including malformed pods, duplicated, reordered
//! and replayed events, unknown or wrong answers and time going backwards.
//!
//! For every sequence: the executor never panics, every `CommandId` is unique, no command
//! targets a pod after the watch showed it gone (until a pod of that name reappears), a try is
//! reported at most once per submission, and nothing is reported for a try never submitted.
mod support;

use podwarden::command::{ApiCall, DbQuery, Notice};
use std::collections::{BTreeMap, BTreeSet};

use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandKind, Config, ContainerState, ContainerStatus,
    EventType, Executor, Input, PodCondition, PodPhase, PodTemplate, PodView, TaskKey, Timestamp,
    WatchEvent,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum PodIdentity {
    Valid,
    MissingTry,
    BadTry,
    NoAnnotations,
}

#[derive(Debug, Clone)]
struct PodSpec {
    /// Index into the pods created so far (or a stranger's name when none).
    pod: usize,
    key: usize,
    kind: EventType,
    phase: Option<PodPhase>,
    deleting: bool,
    revoked: bool,
    identity: PodIdentity,
    container: Option<(u8, i32)>,
    disruption: bool,
    uid: u8,
    rv: u16,
}

#[derive(Debug, Clone)]
enum Answer {
    Ok,
    Status(u16, &'static str, &'static str, Option<u64>),
    Timeout,
    Listed(Vec<PodSpec>),
}

#[derive(Debug, Clone)]
enum Op {
    /// Submit key `.0` with a template in namespace `NAMESPACES[.1]` (none, or one no watch
    /// sees, or an invalid one).
    Submit(usize, usize),
    Event(PodSpec),
    /// A bookmark naming the watch of `WATCHES[.1]`.
    Bookmark(u16, usize),
    /// Answer the pending command at this index (oldest first), or an unknown id.
    Answer(usize, Answer),
    /// The watch of `WATCHES[.0]` expired.
    WatchExpired(usize),
    Advance(u64),
    /// The host's clock steps back.
    ClockBack(u64),
}

const KEYS: usize = 4;

/// Template namespaces a submission may name.
const NAMESPACES: [Option<&str>; 5] = [
    None,
    Some("default"),
    Some("etl"),
    Some("ml"),
    Some("Bad_NS"),
];

/// Watches an expiry or a bookmark may name (`None`: every watch, or the one).
const WATCHES: [Option<&str>; 4] = [None, Some("default"), Some("etl"), Some("ml")];

/// Namespaces of pods the executor did not create.
const POD_NAMESPACES: [&str; 3] = ["default", "etl", "ml"];

fn task_key(i: usize) -> TaskKey {
    TaskKey::new("dag", format!("task_{}", i % KEYS), "run", 1)
}

fn arb_phase() -> impl Strategy<Value = Option<PodPhase>> {
    prop_oneof![
        Just(None),
        Just(Some(PodPhase::Pending)),
        Just(Some(PodPhase::Running)),
        Just(Some(PodPhase::Succeeded)),
        Just(Some(PodPhase::Failed)),
        Just(Some(PodPhase::Unknown)),
    ]
}

fn arb_kind() -> impl Strategy<Value = EventType> {
    prop_oneof![
        Just(EventType::Added),
        Just(EventType::Modified),
        Just(EventType::Deleted)
    ]
}

fn arb_identity() -> impl Strategy<Value = PodIdentity> {
    prop_oneof![
        6 => Just(PodIdentity::Valid),
        1 => Just(PodIdentity::MissingTry),
        1 => Just(PodIdentity::BadTry),
        1 => Just(PodIdentity::NoAnnotations),
    ]
}

fn arb_pod() -> impl Strategy<Value = PodSpec> {
    (
        (
            0usize..6,
            0usize..KEYS,
            arb_kind(),
            arb_phase(),
            any::<bool>(),
            prop::bool::weighted(0.1),
        ),
        (
            arb_identity(),
            proptest::option::of((0u8..6, -1i32..140)),
            any::<bool>(),
            0u8..2,
            any::<u16>(),
        ),
    )
        .prop_map(
            |(
                (pod, key, kind, phase, deleting, revoked),
                (identity, container, disruption, uid, rv),
            )| PodSpec {
                pod,
                key,
                kind,
                phase,
                deleting,
                revoked,
                identity,
                container,
                disruption,
                uid,
                rv,
            },
        )
}

fn arb_answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Ok),
        1 => Just(Answer::Status(404, "NotFound", "", None)),
        1 => Just(Answer::Status(409, "AlreadyExists", "already exists", None)),
        1 => Just(Answer::Status(409, "Conflict", "the object has been modified", None)),
        1 => Just(Answer::Status(429, "TooManyRequests", "", Some(2))),
        1 => Just(Answer::Status(500, "InternalError", "", None)),
        1 => Just(Answer::Status(400, "BadRequest", "", None)),
        1 => Just(Answer::Status(403, "Forbidden", "exceeded quota", None)),
        1 => Just(Answer::Timeout),
        2 => prop::collection::vec(arb_pod(), 0..4).prop_map(Answer::Listed),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..KEYS, 0usize..NAMESPACES.len()).prop_map(|(k, ns)| Op::Submit(k, ns)),
        6 => arb_pod().prop_map(Op::Event),
        1 => (any::<u16>(), 0usize..WATCHES.len()).prop_map(|(rv, w)| Op::Bookmark(rv, w)),
        5 => (0usize..8, arb_answer()).prop_map(|(i, a)| Op::Answer(i, a)),
        1 => (0usize..WATCHES.len()).prop_map(Op::WatchExpired),
        2 => (0u64..70_000).prop_map(Op::Advance),
        1 => (0u64..5_000).prop_map(Op::ClockBack),
    ]
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        any::<bool>(),
        any::<bool>(),
        1u32..4,
        -1i64..3,
        -1i64..3,
        1u32..4,
        0u8..3,
    )
        .prop_map(
            |(delete, on_failure, batch, publish, cleanup, burst, namespaces)| Config {
                // One namespace; a list of two, one watch each; every namespace, one watch.
                multi_namespace_mode: namespaces > 0,
                multi_namespace_mode_namespace_list: if namespaces == 1 {
                    vec!["default".into(), "etl".into()]
                } else {
                    Vec::new()
                },
                delete_worker_pods: delete,
                delete_worker_pods_on_failure: on_failure,
                worker_pods_creation_batch_size: batch,
                task_publish_max_retries: publish,
                pod_cleanup_max_retries: cleanup,
                api_qps: 2,
                api_burst: burst,
                ..Config::default()
            },
        )
}

/// Drives one executor and checks the properties after every step.
struct Checker {
    ex: Executor,
    now: Timestamp,
    host_clock: Timestamp,
    /// Answerable commands, oldest first.
    pending: Vec<Command>,
    /// `(namespace, name)` of every pod created.
    created: Vec<(String, String)>,
    ids: BTreeSet<u64>,
    gone: BTreeSet<String>,
    /// Reports since the last submission, per key.
    reports: BTreeMap<TaskKey, u32>,
    submitted: BTreeSet<TaskKey>,
}

impl Checker {
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for cmd in support::drain_commands(&mut self.ex) {
            prop_assert!(
                self.ids.insert(cmd.id.0),
                "command id {} emitted twice",
                cmd.id
            );
            match &cmd.kind {
                CommandKind::Api(ApiCall::DeletePod { pod, .. })
                | CommandKind::Api(ApiCall::PatchLabels { pod, .. }) => {
                    prop_assert!(
                        !self.gone.contains(&pod.name),
                        "command {:?} for pod {} after it was gone",
                        cmd,
                        pod.name
                    );
                }
                CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                    // A new pod of that name may exist from now on.
                    self.gone.remove(&manifest.pod.name);
                    let pod = (manifest.pod.namespace.clone(), manifest.pod.name.clone());
                    if !self.created.contains(&pod) {
                        self.created.push(pod);
                    }
                }
                CommandKind::Notice(Notice::Report { key, .. }) => {
                    prop_assert!(
                        self.submitted.contains(key),
                        "report for {key} never submitted"
                    );
                    let n = self.reports.entry(key.clone()).or_default();
                    *n += 1;
                    prop_assert!(*n <= 1, "{key} reported twice for one submission");
                }
                CommandKind::Api(ApiCall::ListPods { .. })
                | CommandKind::Notice(Notice::WatchPods { .. })
                | CommandKind::Db(DbQuery::QueryTaskStates { .. })
                | CommandKind::Db(DbQuery::QueryUnfinishedTasks)
                | CommandKind::Notice(Notice::Requeue { .. })
                | CommandKind::Notice(Notice::OrphansResolved { .. }) => {}
            }
            if cmd.kind.expects_reply() {
                self.pending.push(cmd);
            }
        }
        Ok(())
    }

    fn pod_view(&self, spec: &PodSpec) -> PodView {
        let (namespace, name) = if self.created.is_empty() {
            (
                POD_NAMESPACES[spec.pod % POD_NAMESPACES.len()].to_string(),
                format!("stranger-{}", spec.pod),
            )
        } else {
            self.created[spec.pod % self.created.len()].clone()
        };
        let key = task_key(spec.key);
        let mut pod = PodView::new(namespace, name.clone());
        pod.uid = format!("{name}-{}", spec.uid);
        pod.resource_version = spec.rv.to_string();
        pod.labels = key.to_labels();
        pod.labels.insert("airflow-worker".into(), "5".into());
        if spec.revoked {
            pod.labels
                .insert("airflow_pod_revoked".into(), "True".into());
        }
        pod.annotations = key.to_annotations();
        match spec.identity {
            PodIdentity::Valid => {}
            PodIdentity::MissingTry => {
                pod.annotations.remove("try_number");
            }
            PodIdentity::BadTry => {
                pod.annotations.insert("try_number".into(), "x1".into());
            }
            PodIdentity::NoAnnotations => pod.annotations.clear(),
        }
        pod.phase = spec.phase;
        pod.deletion_timestamp = spec.deleting.then_some(Timestamp(5));
        if let Some((reason, exit_code)) = spec.container {
            let reasons = [
                "Error",
                "ErrImagePull",
                "OOMKilled",
                "Completed",
                "StartError",
                "ImagePullBackOff",
            ];
            let reason = reasons[usize::from(reason) % reasons.len()].to_string();
            let state = if exit_code < 0 {
                ContainerState::Waiting {
                    reason: Some(reason),
                    message: None,
                }
            } else {
                ContainerState::Terminated {
                    reason: Some(reason),
                    message: None,
                    exit_code,
                    started_at: None,
                }
            };
            pod.containers.push(ContainerStatus {
                name: "base".into(),
                state,
                restart_count: 0,
                last_state: None,
            });
        }
        if spec.disruption {
            pod.conditions.push(PodCondition {
                kind: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("EvictionByEvictionAPI".into()),
                message: None,
            });
        }
        pod
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.host_clock;
        match op {
            Op::Submit(i, ns) => {
                let key = task_key(*i);
                let r = self.ex.handle_input(
                    now,
                    Input::Submit {
                        key: key.clone(),
                        template: PodTemplate {
                            namespace: NAMESPACES[*ns].map(str::to_string),
                            ..PodTemplate::default()
                        },
                    },
                );
                if r.is_ok() {
                    self.submitted.insert(key.clone());
                    self.reports.insert(key, 0);
                }
            }
            Op::Event(spec) => {
                let pod = self.pod_view(spec);
                if spec.kind == EventType::Deleted {
                    self.gone.insert(pod.name.clone());
                } else {
                    self.gone.remove(&pod.name);
                }
                let _ = self.ex.handle_input(
                    now,
                    Input::Watch {
                        event: WatchEvent::new(spec.kind, pod),
                    },
                );
            }
            Op::Bookmark(rv, w) => {
                let event = WatchEvent::Bookmark {
                    namespace: WATCHES[*w].map(str::to_string),
                    resource_version: rv.to_string(),
                };
                self.ex
                    .handle_input(now, Input::Watch { event })
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::Answer(i, answer) => {
                let (id, is_list) = match self.pending.get(*i) {
                    Some(c) => (
                        c.id,
                        matches!(c.kind, CommandKind::Api(ApiCall::ListPods { .. })),
                    ),
                    None => (podwarden::CommandId(1_000_000 + *i as u64), false),
                };
                let outcome = match answer {
                    Answer::Ok if is_list => ApiOutcome::Listed {
                        pods: vec![],
                        resource_version: "9".into(),
                    },
                    Answer::Ok => ApiOutcome::Ok,
                    Answer::Status(code, reason, message, retry_after_secs) => ApiOutcome::Failed {
                        failure: ApiFailure::Status {
                            code: *code,
                            reason: (*reason).into(),
                            message: (*message).into(),
                            retry_after_secs: *retry_after_secs,
                        },
                    },
                    Answer::Timeout => ApiOutcome::Failed {
                        failure: ApiFailure::Timeout,
                    },
                    Answer::Listed(specs) => {
                        let pods: Vec<PodView> = specs.iter().map(|s| self.pod_view(s)).collect();
                        // A list shows what exists: listed names are back.
                        for p in &pods {
                            self.gone.remove(&p.name);
                        }
                        ApiOutcome::Listed {
                            pods,
                            resource_version: "9".into(),
                        }
                    }
                };
                if self
                    .ex
                    .handle_input(now, Input::ApiResult { id, outcome })
                    .is_ok()
                    && *i < self.pending.len()
                {
                    let answered = self.pending.remove(*i);
                    if matches!(answered.kind, CommandKind::Api(ApiCall::DeletePod { .. }))
                        && matches!(answer, Answer::Status(404, ..))
                    {
                        if let Some(pod) = answered.kind.target_pod() {
                            self.gone.insert(pod.name.clone());
                        }
                    }
                }
            }
            Op::WatchExpired(w) => self
                .ex
                .handle_input(
                    now,
                    Input::WatchExpired {
                        namespace: WATCHES[*w].map(str::to_string),
                    },
                )
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            Op::Advance(ms) => {
                self.host_clock = self.host_clock.plus_ms(*ms);
                self.now = self.now.max(self.host_clock);
                self.ex.handle_timeout(self.host_clock);
            }
            Op::ClockBack(ms) => {
                self.host_clock = Timestamp(self.host_clock.0.saturating_sub(*ms));
                self.ex.handle_timeout(self.host_clock);
            }
        }
        self.drain()?;
        let size = self.ex.state_size();
        prop_assert!(size.tasks <= KEYS, "{size:?}");
        prop_assert_eq!(
            size.awaiting_replies,
            self.pending.len() + size.held_commands,
            "every answerable command (sent, or held by the API budget) is awaited exactly once: {:?} {:?} after {:?}",
            size,
            self.pending.iter().map(|c| c.id).collect::<Vec<_>>(),
            op
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, max_shrink_iters: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_keep_the_executor_sound(config in arb_config(), ops in prop::collection::vec(arb_op(), 1..120)) {
        let start = Timestamp(1_000_000);
        let ex = Executor::new(config, "5", start).expect("valid config");
        let mut c = Checker {
            ex,
            now: start,
            host_clock: start,
            pending: Vec::new(),
            created: Vec::new(),
            ids: BTreeSet::new(),
            gone: BTreeSet::new(),
            reports: BTreeMap::new(),
            submitted: BTreeSet::new(),
        };
        c.drain()?;
        for op in &ops {
            c.step(op)?;
        }
    }

    #[test]
    fn watch_line_parser_never_panics(line in ".{0,300}") {
        let _ = podwarden::k8s_json::parse_watch_line(&line);
        let _ = podwarden::k8s_json::parse_pod(&line);
    }

    #[test]
    fn watch_line_parser_never_panics_on_near_valid_json(
        kind in prop_oneof![Just("ADDED"), Just("MODIFIED"), Just("DELETED"), Just("BOOKMARK"), Just("ERROR"), Just("X")],
        phase in "[A-Za-z]{0,10}",
        ts in "[0-9TZ:.+-]{0,25}",
        exit in any::<i64>(),
        cut in 0usize..400,
    ) {
        let json = format!(
            r#"{{"type":"{kind}","object":{{"kind":"Pod","metadata":{{"name":"p","resourceVersion":"1","deletionTimestamp":"{ts}"}},"status":{{"phase":"{phase}","containerStatuses":[{{"name":"b","state":{{"terminated":{{"exitCode":{exit}}}}}}}]}}}}}}"#
        );
        let _ = podwarden::k8s_json::parse_watch_line(&json);
        let cut = cut.min(json.len());
        if json.is_char_boundary(cut) {
            let _ = podwarden::k8s_json::parse_watch_line(&json[..cut]);
        }
    }
}

/// The checker must be able to fail: a host that replays a delete after the pod is gone is
/// caught (negative control for the "no command after gone" property).
#[test]
fn checker_fires_on_a_command_for_a_gone_pod() {
    let ex = Executor::new(Config::default(), "5", Timestamp(0)).unwrap();
    let mut c = Checker {
        ex,
        now: Timestamp(0),
        host_clock: Timestamp(0),
        pending: Vec::new(),
        created: vec![("default".into(), "p".into())],
        ids: BTreeSet::new(),
        gone: BTreeSet::from(["p".to_string()]),
        reports: BTreeMap::new(),
        submitted: BTreeSet::new(),
    };
    c.drain().unwrap();
    // An untracked Succeeded pod named "p" is disposed (deleted) by the executor, but the
    // checker believes "p" is gone because we did not feed an event that brings it back.
    let spec = PodSpec {
        pod: 0,
        key: 0,
        kind: EventType::Modified,
        phase: Some(PodPhase::Succeeded),
        deleting: false,
        revoked: false,
        identity: PodIdentity::Valid,
        container: None,
        disruption: false,
        uid: 0,
        rv: 1,
    };
    let pod = c.pod_view(&spec);
    c.ex.handle_input(
        Timestamp(0),
        Input::Watch {
            event: WatchEvent::new(EventType::Modified, pod),
        },
    )
    .unwrap();
    assert!(
        c.drain().is_err(),
        "the property must fire on a delete of a gone pod"
    );
}
