//! Snapshots of the core decisions' command sequences, reviewed by hand.
mod support;

use podwarden::command::{ApiCall, Notice};
use std::collections::BTreeMap;

use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::JobState;
use podwarden::requeue::LAUNCH_ATTEMPT_ANNOTATION;
use podwarden::{
    ApiOutcome, Command, CommandKind, Config, EventType, PodPhase, PodView, TaskKey, Timestamp,
};
use support::*;

/// A few pods and the API server's rules for listing and conditionally patching them.
#[derive(Default)]
struct Store {
    pods: BTreeMap<String, PodView>,
    rv: u64,
}

impl Store {
    fn add(&mut self, pod: PodView) {
        self.pods.insert(pod.name.clone(), pod);
    }

    /// Answers every API command in `cmds` the way the API server would.
    fn serve(&mut self, h: &mut Harness, cmds: &[Command]) -> Vec<Command> {
        let mut out = Vec::new();
        for c in cmds {
            let outcome = match &c.kind {
                CommandKind::Api(ApiCall::ListPods {
                    label_selector,
                    field_selector,
                    ..
                }) => {
                    let pods = self
                        .pods
                        .values()
                        .filter(|p| label_selector.matches(&p.labels))
                        .filter(|p| field_selector.is_none_or(|f| f.matches(p.phase)))
                        .cloned()
                        .collect();
                    ApiOutcome::Listed {
                        pods,
                        resource_version: self.rv.to_string(),
                    }
                }
                CommandKind::Api(ApiCall::PatchLabels {
                    pod,
                    labels,
                    precondition,
                }) => match self.pods.get_mut(&pod.name) {
                    None => ApiOutcome::status(404, "NotFound", "gone"),
                    Some(p) => {
                        let holds = precondition.as_ref().is_none_or(|pre| {
                            pre.resource_version
                                .as_ref()
                                .is_none_or(|rv| *rv == p.resource_version)
                                && pre
                                    .label
                                    .as_ref()
                                    .is_none_or(|(k, v)| p.labels.get(k) == Some(v))
                        });
                        if holds {
                            p.labels.extend(labels.clone());
                            self.rv += 1;
                            p.resource_version = self.rv.to_string();
                            ApiOutcome::Ok
                        } else {
                            ApiOutcome::status(409, "Conflict", "the precondition does not hold")
                        }
                    }
                },
                CommandKind::Api(ApiCall::DeletePod { pod, .. }) => {
                    match self.pods.remove(&pod.name) {
                        Some(_) => ApiOutcome::Ok,
                        None => ApiOutcome::status(404, "NotFound", "gone"),
                    }
                }
                CommandKind::Api(ApiCall::CreatePod { .. }) => ApiOutcome::Ok,
                _ => continue,
            };
            out.extend(h.answer(c.id, outcome));
        }
        out
    }

    /// Serves until no API command is left.
    fn settle(&mut self, h: &mut Harness, mut cmds: Vec<Command>) {
        while !cmds.is_empty() {
            cmds = self.serve(h, &cmds);
        }
    }
}

fn completed(name: &str, owner: &str, task: &str) -> PodView {
    let mut pod = worker_pod(name, &key(task), PodPhase::Succeeded);
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = "1".into();
    pod
}

fn beat(h: &mut Harness, ids: &[&str]) -> Vec<Command> {
    let t = h.now.0;
    let records: Vec<(&str, JobState, u64)> =
        ids.iter().map(|id| (*id, JobState::Running, t)).collect();
    h.heartbeats(&records)
}

#[test]
fn three_schedulers_all_alive_patch_nothing() {
    let mut store = Store::default();
    store.add(completed("done-of-7", "7", "a"));
    store.add(completed("done-of-9", "9", "b"));
    let mut h = Harness::new(Config::default());
    for _ in 0..3 {
        let out = beat(&mut h, &["5", "7", "9"]);
        store.settle(&mut h, out);
        let out = h.advance(100_000);
        store.settle(&mut h, out);
    }
    assert!(!h
        .commands
        .iter()
        .any(|c| matches!(c.kind, CommandKind::Api(ApiCall::PatchLabels { .. }))));
    assert_eq!(store.pods.len(), 2, "live peers clean up their own pods");
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn one_dead_scheduler_is_adopted_once_by_one_adopter() {
    let mut store = Store::default();
    store.add(completed("done-of-9", "9", "a"));
    let mut h5 = Harness::new(Config::default());
    let mut h7 = Harness::with_id(Config::default(), "7");
    // Scheduler 9 stopped heartbeating at T0; 5 and 7 keep going. Under the observed-change
    // rule 9 is dead once its heartbeat has not changed for 30 s on each adopter's own clock;
    // a hand-over then declares it dead (its job row is marked failed), and only then are its
    // pods taken (`adoption_scope = declared_dead`).
    let t0 = h5.now.0;
    for step in 0..30u64 {
        let nine = if step < 20 {
            JobState::Running
        } else {
            JobState::Failed
        };
        for h in [&mut h5, &mut h7] {
            let t = h.now.0;
            let out = h.heartbeats(&[
                ("5", JobState::Running, t),
                ("7", JobState::Running, t),
                ("9", nine, t0),
            ]);
            store.settle(h, out);
        }
        if step < 29 {
            h5.advance(10_000);
            h7.advance(10_000);
        }
    }
    h5.commands.clear();
    h7.commands.clear();
    // The next adoption interval: both adopters list 9's completed pod at the same moment.
    h5.advance(10_000);
    h7.advance(10_000);
    let list5 = h5.commands.clone();
    let list7 = h7.commands.clone();
    let patch5 = store.serve(&mut h5, &list5);
    let patch7 = store.serve(&mut h7, &list7);
    let delete5 = store.serve(&mut h5, &patch5);
    let after7 = store.serve(&mut h7, &patch7);
    assert!(after7.is_empty(), "the loser's 409 is a normal outcome");
    store.settle(&mut h5, delete5);
    assert!(store.pods.is_empty());
    let patches = |h: &Harness| {
        h.commands
            .iter()
            .filter(|c| matches!(c.kind, CommandKind::Api(ApiCall::PatchLabels { .. })))
            .count()
    };
    assert_eq!((patches(&h5), patches(&h7)), (1, 1));
    insta::assert_snapshot!(format!(
        "## scheduler 5\n{}\n## scheduler 7\n{}",
        h5.transcript, h7.transcript
    ));
}

#[test]
fn heartbeats_unavailable_fall_back_to_exclude_self() {
    let mut store = Store::default();
    store.add(completed("done-of-7", "7", "a"));
    let mut h = Harness::new(Config {
        adoption_without_heartbeats: podwarden::adoption::AdoptionFallback::ExcludeSelf,
        ..Config::default()
    });
    let out = h.heartbeats_unavailable();
    store.settle(&mut h, out);
    // Airflow's documented fallback (`exclude_self`; podwarden's default waits): a live peer's
    // completed pod is taken too.
    assert!(store.pods.is_empty());
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn sigterm_pending_pod_is_requeued_once() {
    let mut h = Harness::new(Config::default());
    let k = key("extract");
    let pod = h.launch(&k);
    h.event(EventType::Added, &pod);
    let drained = disrupted(
        deleting(with_phase(pod.clone(), PodPhase::Pending, "11")),
        "EvictionByEvictionAPI",
    );
    h.event(EventType::Modified, &drained);
    let failed = main_terminated(
        with_phase(drained, PodPhase::Failed, "12"),
        "ContainerStatusUnknown",
        137,
        false,
    );
    let first_failure = h.event(EventType::Modified, &failed);
    h.event(
        EventType::Modified,
        &with_phase(failed.clone(), PodPhase::Failed, "13"),
    );
    h.event(
        EventType::Deleted,
        &with_phase(failed, PodPhase::Failed, "14"),
    );
    h.answer_state_of(&first_failure, Some(TaskState::Queued));
    let relaunch = h.advance(1_000);
    h.ack_all(&relaunch);
    let requeues = h
        .commands
        .iter()
        .filter(|c| matches!(c.kind, CommandKind::Notice(Notice::Requeue { .. })))
        .count();
    assert_eq!(requeues, 1);
    assert!(reports(&h.commands).is_empty());
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn failover_in_the_middle_of_a_requeue_budget() {
    let cfg = Config {
        pod_launch_failure_retries: 2,
        ..Config::default()
    };
    let k = key("train");
    // Scheduler 5 launches, loses the first pod to a preemption, requeues, launches again.
    let mut h5 = Harness::new(cfg.clone());
    let pod1 = h5.launch(&k);
    let out = h5.event(
        EventType::Modified,
        &disrupted(prestart_failed(pod1), "PreemptionByScheduler"),
    );
    h5.answer_state_of(&out, Some(TaskState::Queued));
    let relaunch = h5.advance(1_000);
    h5.ack_all(&relaunch);
    let pod2 = created_pod(&relaunch).expect("second pod");
    assert_eq!(pod2.annotations[LAUNCH_ATTEMPT_ANNOTATION], "1");
    // Scheduler 5 dies. Scheduler 7 is handed the try and adopts pod 2.
    let mut h7 = Harness::with_id(cfg, "7");
    let out = h7.adopt_orphans(&[(k.clone(), Some("5"))]);
    let list = out
        .iter()
        .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
        .expect("orphan list")
        .id;
    let out = h7.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![pod2.clone()],
            resource_version: "30".into(),
        },
    );
    h7.answer(first(&out, "PatchLabels").id, ApiOutcome::Ok);
    // Pod 2 fails before the task starts: 7 continues the budget (attempt 2 of 2).
    let mut pod2 = pod2;
    pod2.labels.insert("airflow-worker".into(), "7".into());
    let out = h7.event(EventType::Modified, &prestart_failed(pod2));
    // 7 has launched nothing this loop: the new pod goes out with the decision.
    let relaunch = h7.answer_state_of(&out, Some(TaskState::Queued));
    h7.ack_all(&relaunch);
    let mut pod3 = created_pod(&relaunch).expect("third pod");
    assert_eq!(pod3.annotations[LAUNCH_ATTEMPT_ANNOTATION], "2");
    pod3.labels.insert("airflow-worker".into(), "7".into());
    // Budget used up: the next pre-start failure is a real failure.
    let out = h7.event(EventType::Modified, &prestart_failed(pod3));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    insta::assert_snapshot!(format!(
        "## scheduler 5\n{}\n## scheduler 7\n{}",
        h5.transcript, h7.transcript
    ));
}

fn kpo(name: &str, task: TaskKey, created_s: u64) -> PodView {
    let mut pod = PodView::new("default", name);
    pod.labels = task.to_labels();
    pod.labels
        .insert("kubernetes_pod_operator".into(), "True".into());
    pod.phase = Some(PodPhase::Running);
    pod.creation_timestamp = Some(Timestamp(created_s * 1000));
    pod
}

fn sweep(h: &mut Harness, pods: Vec<PodView>, unfinished: Vec<TaskKey>) -> Vec<Command> {
    let out = h.advance(300_000);
    let list = out
        .iter()
        .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { label_selector, .. }) if label_selector.to_string() == "kubernetes_pod_operator=True"))
        .expect("sweep list")
        .id;
    let out = h.answer(
        list,
        ApiOutcome::Listed {
            pods,
            resource_version: "9".into(),
        },
    );
    h.answer_db(
        first(&out, "QueryUnfinishedTasks").id,
        DbOutcome::UnfinishedTasks { tasks: unfinished },
    )
}

fn zombie_config() -> Config {
    Config {
        kpo_zombie_pod_cleanup_enabled: true,
        ..Config::default()
    }
}

#[test]
fn zombie_operator_pod_whose_sidecar_never_exits() {
    let mut h = Harness::new(zombie_config());
    // The task finished; its pod keeps running because a sidecar never exits.
    let long_run = "scheduled__2026-11-23T00:00:00+00:00";
    let done = TaskKey::new("reports", "render_with_sidecar", long_run, 1);
    let running = TaskKey::new("reports", "other_task", long_run, 1);
    let out = sweep(
        &mut h,
        vec![
            kpo("render-sidecar", done, 100),
            kpo("other", running.clone(), 200),
        ],
        vec![running],
    );
    assert_eq!(kinds(&out), ["DeletePod"]);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn old_try_operator_pod_is_a_zombie() {
    let mut h = Harness::new(zombie_config());
    let try2 = TaskKey::new("etl", "kpo_load", "manual__1", 2);
    let try1 = TaskKey {
        try_number: 1,
        ..try2.clone()
    };
    let out = sweep(
        &mut h,
        vec![
            kpo("load-try-1", try1, 100),
            kpo("load-try-2", try2.clone(), 200),
        ],
        vec![try2],
    );
    assert_eq!(kinds(&out), ["DeletePod"]);
    insta::assert_snapshot!(h.transcript);
}
