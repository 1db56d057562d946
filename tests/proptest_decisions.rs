//! Property tests of the core decisions:
//!
//! 1. for any sequence of duplicated, reordered and replayed watch events, requeues per try stay
//!    within the budget and within one per distinct failed pod;
//! 2. with every peer alive, no owner-label patch is ever emitted;
//! 3. the executor's state is empty once every try it launched has ended.

mod support;

use podwarden::command::{ApiCall, DbQuery, Notice};
use std::collections::{BTreeMap, BTreeSet};

use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{HeartbeatRecord, JobState};
use podwarden::watch::{classify, PodOutcome};
use podwarden::{
    ApiOutcome, Command, CommandKind, Config, ContainerState, ContainerStatus, EventType, Executor,
    Input, PodPhase, PodTemplate, PodView, StateSize, TaskKey, Timestamp, WatchEvent,
};
use proptest::prelude::*;

const T0: u64 = 1_000_000;

fn task(i: usize) -> TaskKey {
    TaskKey::new("dag", format!("t{i}"), "run", 1)
}

/// A host that answers API calls (ok, lists from `listing`) and DB questions (`db_state`).
struct Host {
    ex: Executor,
    now: Timestamp,
    log: Vec<Command>,
    /// Pods created so far: name -> key.
    created: BTreeMap<String, TaskKey>,
    pending: Vec<Command>,
}

impl Host {
    fn new(config: Config, id: &str) -> Self {
        let ex = Executor::new(config, id, Timestamp(T0)).expect("valid config");
        let mut h = Self {
            ex,
            now: Timestamp(T0),
            log: Vec::new(),
            created: BTreeMap::new(),
            pending: Vec::new(),
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        for c in support::drain_commands(&mut self.ex) {
            if let CommandKind::Api(ApiCall::CreatePod { manifest }) = &c.kind {
                if let Ok(k) = TaskKey::from_annotations(&manifest.annotations) {
                    self.created.insert(manifest.pod.name.clone(), k);
                }
            }
            if c.kind.expects_reply() {
                self.pending.push(c.clone());
            }
            self.log.push(c);
        }
    }

    fn input(&mut self, input: Input) {
        let _ = self.ex.handle_input(self.now, input);
        self.drain();
    }

    /// Answers every pending command: API calls ok (lists with `listed`), DB questions with
    /// `db_state` for task states and an empty unfinished list.
    fn answer_all(&mut self, listed: &[PodView], db_state: Option<TaskState>) {
        for c in std::mem::take(&mut self.pending) {
            let input = match &c.kind {
                CommandKind::Api(ApiCall::ListPods { .. }) => Input::ApiResult {
                    id: c.id,
                    outcome: ApiOutcome::Listed {
                        pods: listed.to_vec(),
                        resource_version: "1".into(),
                    },
                },
                CommandKind::Db(DbQuery::QueryTaskStates { keys }) => Input::DbResult {
                    id: c.id,
                    outcome: DbOutcome::TaskStates {
                        states: keys.iter().map(|k| (k.clone(), db_state)).collect(),
                    },
                },
                CommandKind::Db(DbQuery::QueryUnfinishedTasks) => Input::DbResult {
                    id: c.id,
                    outcome: DbOutcome::UnfinishedTasks { tasks: vec![] },
                },
                _ => Input::ApiResult {
                    id: c.id,
                    outcome: ApiOutcome::Ok,
                },
            };
            self.input(input);
        }
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        while let Some(t) = self.ex.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.ex.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn pod(
        &self,
        idx: usize,
        phase: Option<PodPhase>,
        uid: u8,
        started: bool,
        deleting: bool,
    ) -> Option<PodView> {
        let (name, key) = self.created.iter().nth(idx % self.created.len().max(1))?;
        let mut p = PodView::new("default", name.clone());
        p.uid = format!("{name}-{uid}");
        p.annotations = key.to_annotations();
        p.labels = key.to_labels();
        p.labels
            .insert("airflow-worker".into(), self.ex.scheduler_id().to_string());
        p.phase = phase;
        p.deletion_timestamp = deleting.then_some(Timestamp(1));
        let state = if started {
            ContainerState::Terminated {
                reason: Some("ContainerStatusUnknown".into()),
                message: None,
                exit_code: 137,
                started_at: Some(Timestamp(5)),
            }
        } else {
            ContainerState::Waiting {
                reason: Some("ErrImagePull".into()),
                message: None,
            }
        };
        p.containers.push(ContainerStatus::new("base", state));
        Some(p)
    }
}

/// A relist answered with `listed` tells the executor that every created pod missing from it
/// is gone: each such pod may count as one failure of its try.
fn note_vanished(h: &Host, listed: &[PodView], failed: &mut BTreeMap<TaskKey, BTreeSet<String>>) {
    let relisting = h.pending.iter().any(|c| {
        matches!(
            &c.kind,
            CommandKind::Api(ApiCall::ListPods {
                field_selector: None,
                ..
            })
        )
    });
    if !relisting {
        return;
    }
    for (name, key) in &h.created {
        if !listed.iter().any(|p| &p.name == name) {
            failed
                .entry(key.clone())
                .or_default()
                .insert(format!("vanished:{name}"));
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Submit(usize),
    Event {
        pod: usize,
        kind: u8,
        phase: u8,
        uid: u8,
        started: bool,
        deleting: bool,
    },
    Answer,
    Advance(u64),
    Expire,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0usize..3).prop_map(Op::Submit),
        6 => (0usize..8, 0u8..3, 0u8..4, 0u8..2, any::<bool>(), any::<bool>())
            .prop_map(|(pod, kind, phase, uid, started, deleting)| Op::Event { pod, kind, phase, uid, started, deleting }),
        3 => Just(Op::Answer),
        2 => (0u64..5_000).prop_map(Op::Advance),
        1 => Just(Op::Expire),
    ]
}

fn event_kind(k: u8) -> EventType {
    [EventType::Added, EventType::Modified, EventType::Deleted][usize::from(k % 3)]
}

fn phase(p: u8) -> Option<PodPhase> {
    [
        Some(PodPhase::Pending),
        Some(PodPhase::Running),
        Some(PodPhase::Failed),
        Some(PodPhase::Succeeded),
    ][usize::from(p % 4)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Property 1, with the DB always answering QUEUED (the worst case for requeues).
    #[test]
    fn requeues_stay_within_budget_and_one_per_failed_pod(
        budget in prop_oneof![Just(-1i64), 1i64..4],
        ops in prop::collection::vec(arb_op(), 1..150),
    ) {
        let config = Config { pod_launch_failure_retries: budget, ..Config::default() };
        let fatal = config.worker_pod_pending_fatal_container_state_reasons.clone();
        let mut h = Host::new(config, "5");
        let mut failed_uids: BTreeMap<TaskKey, BTreeSet<String>> = BTreeMap::new();
        let mut replay: Vec<PodView> = Vec::new();
        // Requeues of the current submission of each try, and of all its submissions.
        let mut per_submission: BTreeMap<TaskKey, u32> = BTreeMap::new();
        let mut total: BTreeMap<TaskKey, u32> = BTreeMap::new();
        let mut seen = 0;
        for op in &ops {
            match op {
                Op::Submit(i) => {
                    if !h.ex.is_tracking(&task(*i)) {
                        per_submission.insert(task(*i), 0);
                    }
                    h.input(Input::Submit { key: task(*i), template: PodTemplate::default() });
                }
                Op::Event { pod, kind, phase: p, uid, started, deleting } => {
                    let Some(pod) = h.pod(*pod, phase(*p), *uid, *started, *deleting) else { continue };
                    let kind = event_kind(*kind);
                    // A pod that fails, or is deleted before it started, is a lost pod.
                    let c = classify(kind, &pod, &fatal);
                    if matches!(c.outcome, PodOutcome::Failed { .. }) || c.rule == podwarden::watch::Rule::DeletedWhilePending {
                        let key = pod.task_key().expect("valid");
                        failed_uids.entry(key).or_default().insert(pod.uid.clone());
                    }
                    replay.push(pod.clone());
                    h.input(Input::Watch { event: WatchEvent::new(kind, pod) });
                }
                Op::Answer => {
                    note_vanished(&h, &[], &mut failed_uids);
                    h.answer_all(&[], Some(TaskState::Queued));
                }
                Op::Advance(ms) => h.advance(*ms),
                Op::Expire => {
                    // A relist replays every pod seen so far, in any state.
                    h.input(Input::WatchExpired { namespace: None });
                    let listed = replay.clone();
                    note_vanished(&h, &listed, &mut failed_uids);
                    // Listed pods are replayed as ADDED events.
                    for pod in &listed {
                        if matches!(classify(EventType::Added, pod, &fatal).outcome, PodOutcome::Failed { .. }) {
                            failed_uids.entry(pod.task_key().expect("valid")).or_default().insert(pod.uid.clone());
                        }
                    }
                    h.answer_all(&listed, Some(TaskState::Queued));
                }
            }
            for c in &h.log[seen..] {
                if let CommandKind::Notice(Notice::Requeue { key, attempt, .. }) = &c.kind {
                    let n = per_submission.entry(key.clone()).or_default();
                    *n += 1;
                    prop_assert_eq!(*attempt, *n, "attempts count up by one within a submission");
                    if budget >= 0 {
                        prop_assert!(i64::from(*n) <= budget, "{key}: {n} requeues, budget {budget}");
                    }
                    let t = total.entry(key.clone()).or_default();
                    *t += 1;
                    let distinct = failed_uids.get(key).map_or(0, BTreeSet::len);
                    prop_assert!(*t as usize <= distinct, "{key}: {t} requeues for {distinct} failed pods");
                }
            }
            seen = h.log.len();
        }
    }

    /// Property 2: peers alive (heartbeats changing), lists that may even be stale.
    #[test]
    fn no_owner_patch_while_every_peer_is_alive(
        peers in prop::collection::btree_set("[1-9][0-9]?", 1..4),
        steps in prop::collection::vec((0u64..29_000, prop::collection::vec((0usize..4, 0u8..3), 0..4), any::<bool>()), 1..40),
    ) {
        let peers: Vec<String> = peers.into_iter().filter(|p| p != "5").collect();
        let mut h = Host::new(Config::default(), "5");
        for (wait, pods, stale) in &steps {
            h.advance(*wait);
            let mut records = vec![HeartbeatRecord { scheduler_id: "5".into(), state: JobState::Running, latest_heartbeat: h.now }];
            records.extend(peers.iter().map(|p| HeartbeatRecord {
                scheduler_id: p.clone(),
                state: JobState::Running,
                latest_heartbeat: h.now,
            }));
            h.input(Input::Heartbeats { snapshot: Ok(records) });
            // Completed pods of live peers; a stale list may show them despite the selector.
            let listed: Vec<PodView> = pods
                .iter()
                .filter(|_| *stale)
                .filter_map(|(owner, t)| {
                    let owner = peers.get(owner % peers.len().max(1))?;
                    let key = task(usize::from(*t));
                    let mut p = PodView::new("default", format!("{owner}-{}", key.task_id));
                    p.annotations = key.to_annotations();
                    p.labels = key.to_labels();
                    p.labels.insert("airflow-worker".into(), owner.clone());
                    p.labels.insert("kubernetes_executor".into(), "True".into());
                    p.phase = Some(PodPhase::Succeeded);
                    Some(p)
                })
                .collect();
            h.answer_all(&listed, Some(TaskState::Running));
        }
        for c in &h.log {
            if let CommandKind::Api(ApiCall::PatchLabels { labels, .. }) = &c.kind {
                prop_assert!(!labels.contains_key("airflow-worker"), "owner patch {c:?} while all peers are alive");
            }
        }
    }

    /// Property 3: whatever happened, once every try has ended, nothing is left.
    #[test]
    fn state_is_empty_once_every_try_has_ended(ops in prop::collection::vec(arb_op(), 1..100), db_running in any::<bool>()) {
        let mut h = Host::new(Config { pod_launch_failure_retries: 2, ..Config::default() }, "5");
        let db = if db_running { TaskState::Running } else { TaskState::Queued };
        for op in &ops {
            match op {
                Op::Submit(i) => h.input(Input::Submit { key: task(*i), template: PodTemplate::default() }),
                Op::Event { pod, kind, phase: p, uid, started, deleting } => {
                    if let Some(pod) = h.pod(*pod, phase(*p), *uid, *started, *deleting) {
                        h.input(Input::Watch { event: WatchEvent::new(event_kind(*kind), pod) });
                    }
                }
                Op::Answer => h.answer_all(&[], Some(db)),
                Op::Advance(ms) => h.advance(*ms),
                Op::Expire => {
                    h.input(Input::WatchExpired { namespace: None });
                    h.answer_all(&[], Some(db));
                }
            }
        }
        // End every try: each pod ever created succeeds and goes away; answer everything; let
        // timers run. Requeued tries get new pods, which end the same way.
        for _ in 0..20 {
            h.answer_all(&[], Some(TaskState::Running));
            h.advance(2_000);
            let names: Vec<String> = h.created.keys().cloned().collect();
            for (i, _) in names.iter().enumerate() {
                for (kind, deleting) in [(EventType::Modified, false), (EventType::Deleted, true)] {
                    if let Some(pod) = h.pod(i, Some(PodPhase::Succeeded), 0, true, deleting) {
                        h.input(Input::Watch { event: WatchEvent::new(kind, pod) });
                    }
                }
            }
        }
        h.answer_all(&[], Some(TaskState::Running));
        h.advance(400_000);
        h.answer_all(&[], Some(TaskState::Running));
        let size = h.ex.state_size();
        prop_assert_eq!(size, StateSize { peers: size.peers, ..StateSize::default() });
    }
}
