//! Airflow's KubernetesExecutor unit tests for the executor's *decisions* (`airflow-executor.md`
//! §10 cases 47–53: pre-execution requeue; 55–68: adoption and completed pods; 69–70: revoke),
//! ported to podwarden. Case 46 (`test_is_pre_execution_failure`) is a unit test in
//! `core/src/requeue.rs`.
//!
//! Each test names the Airflow test it follows and its §10 case number, and drives the public
//! API only: the commands the executor emits, `is_tracking` and `state_size`.
//!
//! Vocabulary: Airflow's `event_buffer[key] = (FAILED, …)` is a `Report { Failed }` command;
//! "k in `running`" is `is_tracking(k)`; Airflow's `_get_task_instance_state` is a
//! `QueryTaskStates` command answered with `Input::DbResult`; a requeue (`task_queue.put(job)`) is
//! a `Requeue` command followed by a `CreatePod` for the same try; the return value of
//! `try_adopt_task_instances` is the `OrphansResolved { adopted, reset }` command; Airflow's
//! `completed` map is the relabel-then-clean-up of completed-pod adoption.
mod support;

use std::collections::BTreeMap;

use podwarden::adoption::OrphanTask;
use podwarden::db::TaskState;
use podwarden::liveness::{HeartbeatRecord, HeartbeatsUnavailable, JobState};
use podwarden::requeue::{RequeueCause, RequeueDedupe, LAUNCH_ATTEMPT_ANNOTATION};
use podwarden::{
    ApiOutcome, Command, CommandId, CommandKind, Config, EventType, Input, PodManifest, PodPhase,
    PodRef, PodTemplate, PodView, Precondition, ReportedState, StateSize, TaskKey,
};
use support::*;

// ---- helpers --------------------------------------------------------------------------------

/// Airflow's orphan-adoption field selector.
const ORPHAN_FIELD: &str = "status.phase!=Succeeded";
/// Airflow's completed-pod adoption field selector.
const COMPLETED_FIELD: &str = "status.phase=Succeeded";
/// `orphaned_tasks_check_interval` (300 s) in milliseconds.
const ADOPTION_INTERVAL_MS: u64 = 300_000;

/// One `ListPods` command, flattened for assertions (the selector via its `Display`).
#[derive(Debug, Clone, PartialEq)]
struct Listing {
    id: CommandId,
    namespace: String,
    label_selector: String,
    field_selector: Option<String>,
}

/// Every `ListPods` in `cmds`, in order.
/// The configuration of these ports: podwarden's defaults, without the leftover-pod sweep
/// (`adopt_leftover_pods`, a podwarden addition with its own tests in `tests/decisions.rs`), so
/// that adoption lists exactly what Airflow's does.
fn ported_config() -> Config {
    Config {
        adopt_leftover_pods: false,
        ..Config::default()
    }
}

fn lists(cmds: &[Command]) -> Vec<Listing> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::ListPods {
                namespace,
                label_selector,
                field_selector,
            } => Some(Listing {
                id: c.id,
                namespace: namespace.clone(),
                label_selector: label_selector.to_string(),
                field_selector: field_selector.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The only `ListPods` in `cmds`.
fn only_list(cmds: &[Command]) -> Listing {
    let l = lists(cmds);
    assert_eq!(l.len(), 1, "exactly one list: {cmds:?}");
    l.into_iter().next().expect("one list")
}

/// One `PatchLabels` command, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
struct Patch {
    id: CommandId,
    pod: PodRef,
    labels: BTreeMap<String, String>,
    precondition: Option<Precondition>,
}

/// Every `PatchLabels` in `cmds`, in order.
fn patches(cmds: &[Command]) -> Vec<Patch> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::PatchLabels {
                pod,
                labels,
                precondition,
            } => Some(Patch {
                id: c.id,
                pod: pod.clone(),
                labels: labels.clone(),
                precondition: precondition.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// `(id, pod)` of every `DeletePod` in `cmds`, asserting each uses the pod's own grace period.
fn deletes(cmds: &[Command]) -> Vec<(CommandId, PodRef)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::DeletePod {
                pod,
                grace_period_seconds,
            } => {
                assert_eq!(*grace_period_seconds, None, "default delete options");
                Some((c.id, pod.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The keys asked by every `QueryTaskStates` in `cmds`.
fn queries(cmds: &[Command]) -> Vec<Vec<TaskKey>> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::QueryTaskStates { keys } => Some(keys.clone()),
            _ => None,
        })
        .collect()
}

/// `(key, attempt, cause)` of every `Requeue` in `cmds`.
fn requeues(cmds: &[Command]) -> Vec<(TaskKey, u32, RequeueCause)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Requeue {
                key,
                attempt,
                cause,
                ..
            } => Some((key.clone(), *attempt, cause.clone())),
            _ => None,
        })
        .collect()
}

/// `(adopted, reset)` of every `OrphansResolved` in `cmds`.
fn resolved(cmds: &[Command]) -> Vec<(Vec<TaskKey>, Vec<TaskKey>)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::OrphansResolved { adopted, reset } => {
                Some((adopted.clone(), reset.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Every `CreatePod` manifest in `cmds`.
fn manifests(cmds: &[Command]) -> Vec<PodManifest> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::CreatePod { manifest } => Some(manifest.clone()),
            _ => None,
        })
        .collect()
}

/// `labels` as an owned map.
fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels(pairs)
}

/// A list answer.
fn listed(pods: Vec<PodView>) -> ApiOutcome {
    ApiOutcome::Listed {
        pods,
        resource_version: "20".into(),
    }
}

/// A task instance handed over by the scheduler, without a pod template (Airflow's adopter has
/// no job spec for it).
fn orphan(key: &TaskKey, queued_by: Option<&str>) -> OrphanTask {
    OrphanTask {
        key: key.clone(),
        queued_by: queued_by.map(Into::into),
        template: None,
    }
}

/// Feeds `Input::AdoptOrphans`.
fn adopt(h: &mut Harness, tis: Vec<OrphanTask>) -> Vec<Command> {
    h.input(
        format!("adopt orphans x{}", tis.len()),
        Input::AdoptOrphans { tis },
    )
}

/// Feeds a heartbeat snapshot: each `(scheduler_id, state)` heartbeating at `h.now`.
fn heartbeats(h: &mut Harness, jobs: &[(&str, JobState)]) -> Vec<Command> {
    let records = jobs
        .iter()
        .map(|(id, state)| HeartbeatRecord {
            scheduler_id: (*id).into(),
            state: *state,
            latest_heartbeat: h.now,
        })
        .collect();
    h.input(
        format!("heartbeats {jobs:?}"),
        Input::Heartbeats {
            snapshot: Ok(records),
        },
    )
}

/// A heartbeat snapshot where `modified` (this executor) runs and `one` and `two` are dead
/// (their job rows say so).
fn one_and_two_dead(h: &mut Harness) -> Vec<Command> {
    heartbeats(
        h,
        &[
            ("modified", JobState::Running),
            ("one", JobState::Failed),
            ("two", JobState::Failed),
        ],
    )
}

/// A pod of `key` in `namespace`, owned by `owner` (its `airflow-worker` label).
fn pod_of(namespace: &str, name: &str, key: &TaskKey, owner: &str, phase: PodPhase) -> PodView {
    let mut pod = worker_pod(name, key, phase);
    pod.namespace = namespace.into();
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod
}

/// `pod` as the watch shows it after an adopter relabelled it to `owner`.
fn relabelled(mut pod: PodView, owner: &str, rv: &str) -> PodView {
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = rv.into();
    pod
}

/// Airflow's test failure: `{"container_reason": "ContainerStatusUnknown", "exit_code": 137}`,
/// the main container never having started; at resource version `rv`.
fn failed_before_start(pod: &PodView, rv: &str) -> PodView {
    main_terminated(
        with_phase(pod.clone(), PodPhase::Failed, rv),
        "ContainerStatusUnknown",
        137,
        false,
    )
}

/// The task's own failure: container reason `Error`, exit 1, after it started.
fn failed_with_error(pod: &PodView) -> PodView {
    main_terminated(
        with_phase(pod.clone(), PodPhase::Failed, "11"),
        "Error",
        1,
        true,
    )
}

/// The config of the requeue tests: `pod_launch_failure_retries = retries`, the rest default.
fn retries(retries: i64) -> Config {
    Config {
        pod_launch_failure_retries: retries,
        ..ported_config()
    }
}

/// Finds the `CreatePod` of a requeued try in `cmds`, waiting for later loops if this loop's
/// creation batch is used up, acknowledges it, and returns its manifest.
fn recreated(h: &mut Harness, mut cmds: Vec<Command>) -> PodManifest {
    for _ in 0..10 {
        if let Some(c) = cmds
            .iter()
            .find(|c| matches!(c.kind, CommandKind::CreatePod { .. }))
        {
            let id = c.id;
            let manifest = manifests(&cmds).remove(0);
            assert!(h.answer(id, ApiOutcome::Ok).is_empty());
            return manifest;
        }
        let t =
            h.ex.poll_timeout()
                .expect("a launch timer for the requeued try");
        let wait = t.since(h.now);
        cmds = h.advance(wait);
    }
    panic!("the requeued try was never created");
}

/// The pod the watch shows for `manifest` just after creation.
fn view(manifest: &PodManifest) -> PodView {
    created_pod(&[Command {
        id: CommandId(u64::MAX),
        kind: CommandKind::CreatePod {
            manifest: manifest.clone(),
        },
    }])
    .expect("a pod")
}

/// A pod failed before its task started, the DB says the try is still QUEUED: returns the
/// commands of the decision (a `Requeue` and maybe its `CreatePod`).
fn fail_before_start_and_requeue(h: &mut Harness, pod: &PodView, rv: &str) -> Vec<Command> {
    let out = h.event(EventType::Modified, &failed_before_start(pod, rv));
    // The done label (ours, not Airflow's) goes out first unless Airflow's bookkeeping is on.
    let mut question = kinds(&out);
    question.retain(|k| *k != "PatchLabels");
    assert_eq!(question, ["QueryTaskStates"], "{out:?}");
    h.answer_state_of(&out, Some(TaskState::Queued))
}

/// `out` reports exactly one failure, for `k`, with a reason mentioning `needle`.
fn assert_failed(out: &[Command], k: &TaskKey, needle: &str) {
    let r = reports(out);
    assert_eq!(r.len(), 1, "one report: {out:?}");
    assert_eq!((&r[0].0, r[0].1), (k, ReportedState::Failed));
    let reason = r[0].2.as_deref().unwrap_or_default();
    assert!(reason.contains(needle), "{reason:?} mentions {needle:?}");
}

// ---- pre-execution requeue (§6) -------------------------------------------------------------

/// Follows Airflow's `test_change_state_pre_execution_failure_requeues` (§10 case 47).
/// A pod that fails before its task starts (ContainerStatusUnknown, exit 137) while the DB says
/// QUEUED is requeued: nothing reported, the try stays tracked, the failed pod is left in place
/// (defaults), and a new pod is created for the same try carrying attempt 1. Differs on purpose:
/// the DB question is a `QueryTaskStates` command answered with `Input::DbResult`.
#[test]
fn test_change_state_pre_execution_failure_requeues() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &failed_before_start(&pod, "11"));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "QueryTaskStates"],
        "kept under the defaults, labelled done before the DB question"
    );
    assert_eq!(queries(&out), [vec![k.clone()]]);
    assert!(h.ex.is_tracking(&k), "deciding");

    let out = h.answer_state_of(&out, Some(TaskState::Queued));
    assert_eq!(
        requeues(&out),
        [(k.clone(), 1, RequeueCause::ContainerNeverStarted)]
    );
    assert!(reports(&out).is_empty(), "k not in event_buffer");
    assert!(h.ex.is_tracking(&k), "k in running");

    let second = recreated(&mut h, out);
    assert_ne!(second.pod, pod.pod_ref(), "a new pod");
    assert_eq!(
        TaskKey::from_annotations(&second.annotations).as_ref(),
        Ok(&k),
        "same key and try number"
    );
    assert_eq!(second.annotations[LAUNCH_ATTEMPT_ANNOTATION], "1");
    assert!(reports(&h.commands).is_empty());
    assert!(deletes(&h.commands).is_empty(), "the failed pod is kept");
    assert!(h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_change_state_pre_execution_failure_exhausts_retries` (§10 case 48).
/// With retries 1 already used by an earlier pod, the next pre-execution failure is reported
/// FAILED and the try forgotten. Differs on purpose: the exhausted budget is checked before the
/// DB, so no `QueryTaskStates` is sent for it.
#[test]
fn test_change_state_pre_execution_failure_exhausts_retries() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let earlier = h.launch(&k);
    let out = fail_before_start_and_requeue(&mut h, &earlier, "11");
    let pod = view(&recreated(&mut h, out));
    // Airflow checks the dedupe before the budget: a replay of the requeued pod is ignored.
    assert!(h
        .event(EventType::Modified, &failed_before_start(&earlier, "12"))
        .is_empty());

    let out = h.event(EventType::Modified, &failed_before_start(&pod, "13"));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "no DB question, no requeue"
    );
    assert_failed(&out, &k, "ContainerStatusUnknown");
    assert!(!h.ex.is_tracking(&k), "k not in running");
    assert_eq!(h.ex.state_size().tasks, 0, "no attempt retained");
    assert_eq!(requeues(&h.commands).len(), 1);
}

/// Follows Airflow's `test_change_state_pre_execution_failure_exhausts_retries` (§10 case 48),
/// where the earlier requeue was made by a scheduler that died.
/// Differs on purpose: the budget continues after adoption. The adopted pod carries
/// `podwarden/launch-attempt: 1`, so its pre-execution failure fails the try even though the
/// adopter has its template; Airflow's adopter would have no attempt entry at all.
#[test]
fn test_change_state_pre_execution_failure_exhausts_retries_after_adoption() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let mut pod = pod_of("default", "pod_name", &k, "1", PodPhase::Running);
    pod.annotations
        .insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "1".into());
    let out = adopt(
        &mut h,
        vec![OrphanTask {
            template: Some(PodTemplate::default()),
            ..orphan(&k, Some("1"))
        }],
    );
    let out = h.answer(only_list(&out).id, listed(vec![pod.clone()]));
    let out = h.answer(patches(&out)[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])]);

    let out = h.event(
        EventType::Modified,
        &failed_before_start(&relabelled(pod, SCHEDULER, "11"), "11"),
    );
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "budget already used: no DB question"
    );
    assert_failed(&out, &k, "ContainerStatusUnknown");
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_change_state_pre_execution_failure_excluded_reason` (§10 case 49).
/// A failure whose container reason is excluded (`Error`, exit 1) is the task's own: reported
/// FAILED at once, no DB question, the try forgotten.
#[test]
fn test_change_state_pre_execution_failure_excluded_reason() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &failed_with_error(&pod));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert_failed(&out, &k, "Error exit 1");
    assert!(!h.ex.is_tracking(&k));
    assert!(queries(&h.commands).is_empty());
}

/// Follows Airflow's `test_change_state_pre_execution_failure_without_job_spec` (§10 case 50).
/// A try adopted without a template (`Input::AdoptOrphans`, `template: None`) has no job spec:
/// its pod's pre-execution failure is reported FAILED, with no DB question and no requeue.
#[test]
fn test_change_state_pre_execution_failure_without_job_spec() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let pod = pod_of("default", "pod_name", &k, "1", PodPhase::Running);
    let out = adopt(&mut h, vec![orphan(&k, Some("1"))]);
    let out = h.answer(only_list(&out).id, listed(vec![pod.clone()]));
    let out = h.answer(patches(&out)[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])]);
    assert!(h.ex.is_tracking(&k));

    let out = h.event(
        EventType::Modified,
        &failed_before_start(&relabelled(pod, SCHEDULER, "11"), "11"),
    );
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert_failed(&out, &k, "ContainerStatusUnknown");
    assert!(!h.ex.is_tracking(&k));
    assert!(queries(&h.commands).is_empty(), "no DB lookup");
    assert!(requeues(&h.commands).is_empty());
}

/// Follows Airflow's `test_change_state_pre_execution_failure_without_job_spec` (§10 case 50),
/// the counterpart where the scheduler hands the template over.
/// Differs on purpose: an adopted try whose template is handed over *has* a job spec, so its
/// pre-execution failure asks the DB and is requeued (a new pod, attempt 1) instead of failing.
#[test]
fn test_change_state_pre_execution_failure_without_job_spec_template_handed_over() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let pod = pod_of("default", "pod_name", &k, "1", PodPhase::Running);
    let out = adopt(
        &mut h,
        vec![OrphanTask {
            template: Some(PodTemplate::default()),
            ..orphan(&k, Some("1"))
        }],
    );
    let out = h.answer(only_list(&out).id, listed(vec![pod.clone()]));
    h.answer(patches(&out)[0].id, ApiOutcome::Ok);

    let out = fail_before_start_and_requeue(&mut h, &relabelled(pod, SCHEDULER, "11"), "11");
    assert_eq!(
        requeues(&out),
        [(k.clone(), 1, RequeueCause::ContainerNeverStarted)]
    );
    let second = recreated(&mut h, out);
    assert_eq!(second.labels["airflow-worker"], SCHEDULER);
    assert_eq!(second.annotations[LAUNCH_ATTEMPT_ANNOTATION], "1");
    assert!(reports(&h.commands).is_empty());
    assert!(h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_change_state_pre_execution_failure_disabled_skips_lookup` (§10 case
/// 51).
/// With `pod_launch_failure_retries = 0` a pre-execution failure is reported FAILED and no
/// `QueryTaskStates` command is ever sent.
#[test]
fn test_change_state_pre_execution_failure_disabled_skips_lookup() {
    let mut h = Harness::new(retries(0));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &failed_before_start(&pod, "11"));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert_failed(&out, &k, "ContainerStatusUnknown");
    assert!(!h.ex.is_tracking(&k));
    assert!(
        !kinds(&h.commands).contains(&"QueryTaskStates"),
        "no DB lookup at all"
    );
}

/// Follows Airflow's `test_change_state_pre_execution_failure_dedupes_repeated_events` (§10 case
/// 52).
/// With retries 5, three Failed events of pod_a give one DB question and one requeue (attempt 1);
/// a failure of pod_b, the pod created by that requeue, gives attempt 2; nothing is reported and
/// the try stays tracked. Differs on purpose: a try reacts only to its current pod and each
/// failed pod uid counts once, ever, so a later replay of pod_a (Airflow remembers only pod_b)
/// requeues nothing.
#[test]
fn test_change_state_pre_execution_failure_dedupes_repeated_events() {
    let mut h = Harness::new(retries(5));
    let k = key("task");
    let pod_a = h.launch(&k);

    let first = h.event(EventType::Modified, &failed_before_start(&pod_a, "11"));
    assert_eq!(queries(&first), [vec![k.clone()]]);
    assert!(
        h.event(EventType::Modified, &failed_before_start(&pod_a, "12"))
            .is_empty(),
        "pod_a again while the DB is asked"
    );
    let out = h.answer_state_of(&first, Some(TaskState::Queued));
    assert_eq!(
        requeues(&out),
        [(k.clone(), 1, RequeueCause::ContainerNeverStarted)]
    );
    assert!(
        h.event(EventType::Modified, &failed_before_start(&pod_a, "13"))
            .is_empty(),
        "pod_a a third time after its requeue"
    );
    let pod_b = view(&recreated(&mut h, out));
    assert_eq!(pod_b.annotations[LAUNCH_ATTEMPT_ANNOTATION], "1");
    assert!(
        h.event(EventType::Modified, &failed_before_start(&pod_a, "14"))
            .is_empty(),
        "pod_a while pod_b runs"
    );
    assert_eq!(
        requeues(&h.commands).len(),
        1,
        "after pod_a x3: attempts == 1"
    );
    assert_eq!(queries(&h.commands).len(), 1);

    let out = fail_before_start_and_requeue(&mut h, &pod_b, "15");
    assert_eq!(
        requeues(&out),
        [(k.clone(), 2, RequeueCause::ContainerNeverStarted)]
    );
    let pod_c = view(&recreated(&mut h, out));
    assert_eq!(pod_c.annotations[LAUNCH_ATTEMPT_ANNOTATION], "2");

    // Replays of both older pods (a watch restart) requeue nothing.
    for (pod, rv) in [(&pod_a, "16"), (&pod_b, "17")] {
        assert!(
            h.event(EventType::Modified, &failed_before_start(pod, rv))
                .is_empty(),
            "replay of {}",
            pod.name
        );
    }
    assert_eq!(requeues(&h.commands).len(), 2, "after pod_b: attempts == 2");
    assert!(reports(&h.commands).is_empty(), "no event");
    assert!(h.ex.is_tracking(&k), "k in running");
}

/// Follows Airflow's `test_change_state_pre_execution_failure_dedupes_repeated_events` (§10 case
/// 52) under Airflow's own dedupe (`pod_launch_failure_dedupe = last_pod`).
/// pod_a x3 gives one requeue and pod_b a second, as in Airflow; and, as in Airflow (hazard of
/// §6), once pod_b is the remembered pod a replayed failure of pod_a is a new failure of the try:
/// the DB is asked again. Airflow's whole bookkeeping: its failed pods are also left unlabelled
/// (ours are labelled done, and a replay of a pod that is being labelled is not a new failure).
#[test]
fn test_change_state_pre_execution_failure_dedupes_repeated_events_last_pod() {
    let mut h = Harness::new(Config {
        pod_launch_failure_dedupe: RequeueDedupe::LastPod,
        label_kept_failed_pods_done: false,
        ..retries(5)
    });
    let k = key("task");
    let pod_a = h.launch(&k);
    let out = fail_before_start_and_requeue(&mut h, &pod_a, "11");
    assert_eq!(
        requeues(&out),
        [(k.clone(), 1, RequeueCause::ContainerNeverStarted)]
    );
    for rv in ["12", "13"] {
        assert!(
            h.event(EventType::Modified, &failed_before_start(&pod_a, rv))
                .is_empty(),
            "requeued_for_pod == pod_a"
        );
    }
    let pod_b = view(&recreated(&mut h, out));
    let out = fail_before_start_and_requeue(&mut h, &pod_b, "14");
    assert_eq!(
        requeues(&out),
        [(k.clone(), 2, RequeueCause::ContainerNeverStarted)]
    );
    assert!(reports(&h.commands).is_empty());
    assert!(h.ex.is_tracking(&k));

    let replay = h.event(EventType::Modified, &failed_before_start(&pod_a, "15"));
    assert_eq!(
        queries(&replay),
        [vec![k.clone()]],
        "Airflow's last-pod memory treats an old pod's replay as new"
    );
}

/// Follows Airflow's `test_execute_async_retains_job_spec` (§10 case 53).
/// The submitted template is retained for the try: the pod created after a requeue has the same
/// key, image, args, environment, labels and annotations as the first, with only its name and
/// `podwarden/launch-attempt` changed.
#[test]
fn test_execute_async_retains_job_spec() {
    let mut h = Harness::new(retries(1));
    let k = key("task");
    let template = PodTemplate {
        image: Some("registry.example/airflow:2".into()),
        args: vec!["airflow".into(), "tasks".into(), "run".into()],
        labels: owned(&[("team", "data")]),
        annotations: owned(&[("owner", "etl")]),
    };
    let out = h.input(
        format!("submit {k}"),
        Input::Submit {
            key: k.clone(),
            template: template.clone(),
        },
    );
    let first = recreated(&mut h, out);
    assert_eq!(
        TaskKey::from_annotations(&first.annotations).as_ref(),
        Ok(&k),
        "pod_launch_attempts[k].job.key == k"
    );
    assert_eq!(first.image, template.image);
    assert_eq!(first.args, template.args);
    assert_eq!(first.labels["team"], "data");
    assert_eq!(first.annotations["owner"], "etl");
    assert_eq!(first.annotations[LAUNCH_ATTEMPT_ANNOTATION], "0");

    let out = fail_before_start_and_requeue(&mut h, &view(&first), "11");
    let second = recreated(&mut h, out);
    assert_ne!(second.pod, first.pod);
    assert_eq!(second.image, first.image);
    assert_eq!(second.args, first.args);
    assert_eq!(second.env, first.env);
    assert_eq!(second.labels, first.labels);
    let mut expected = first.annotations.clone();
    expected.insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "1".into());
    assert_eq!(second.annotations, expected);
}

// ---- try_adopt_task_instances (§4.2) --------------------------------------------------------

/// Follows Airflow's `test_try_adopt_task_instances` (§10 case 55).
/// Round 1 (self `10`, TI queued by `1`): exactly one orphan list, in `default`, with field
/// selector `status.phase!=Succeeded` and label selector
/// `kubernetes_executor=True,airflow-worker=1,airflow_executor_done!=True`; the listed pod `foo`
/// is relabelled; completed-pod adoption runs once more. Round 2 (self `20`, TI queued by `10`):
/// the selector names `airflow-worker=10` and the adopted TI is not returned for reset.
/// Differs: the adoption is real (not mocked), so round 1 returns the adopted TI as adopted, not
/// for reset; there is no metrics timer.
#[test]
fn test_try_adopt_task_instances() {
    let mut h = Harness::with_id(ported_config(), "10");
    let k = key("task");
    // The first heartbeat snapshot starts the start-up completed-pod adoption; answer it.
    let out = heartbeats(&mut h, &[("10", JobState::Running)]);
    h.answer(only_list(&out).id, listed(vec![]));

    let out = adopt(&mut h, vec![orphan(&k, Some("1"))]);
    assert_eq!(kinds(&out), ["ListPods", "ListPods"]);
    let l = lists(&out);
    assert_eq!(
        (
            l[0].namespace.as_str(),
            l[0].label_selector.as_str(),
            l[0].field_selector.as_deref()
        ),
        (
            "default",
            "kubernetes_executor=True,airflow-worker=1,airflow_executor_done!=True",
            Some(ORPHAN_FIELD)
        )
    );
    assert_eq!(
        l[1].field_selector.as_deref(),
        Some(COMPLETED_FIELD),
        "_adopt_completed_pods called"
    );
    h.answer(l[1].id, listed(vec![]));
    let foo = pod_of("default", "foo", &k, "1", PodPhase::Running);
    let out = h.answer(l[0].id, listed(vec![foo.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1, "adopt_launched_task(client, foo, {{k: ti}})");
    assert_eq!(p[0].pod, foo.pod_ref());
    let out = h.answer(p[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])]);
    assert!(h.ex.is_tracking(&k));
    assert_eq!(
        lists(&h.commands).len(),
        3,
        "one completed list per trigger"
    );

    // Round 2.
    let mut h = Harness::with_id(ported_config(), "20");
    let out = adopt(&mut h, vec![orphan(&k, Some("10"))]);
    let l = only_list(&out);
    assert_eq!(
        l.label_selector,
        "kubernetes_executor=True,airflow-worker=10,airflow_executor_done!=True"
    );
    assert_eq!(l.field_selector.as_deref(), Some(ORPHAN_FIELD));
    let pod = pod_of("default", "foo", &k, "10", PodPhase::Running);
    let out = h.answer(l.id, listed(vec![pod]));
    let out = h.answer(patches(&out)[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])], "returns []");
    assert!(h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_try_adopt_task_instances_multiple_scheduler_ids` (§10 case 56).
/// TIs queued by `10`, `40` and `40` give exactly two orphan lists, one per distinct scheduler.
#[test]
fn test_try_adopt_task_instances_multiple_scheduler_ids() {
    let mut h = Harness::new(ported_config());
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let out = adopt(
        &mut h,
        vec![
            orphan(&a, Some("10")),
            orphan(&b, Some("40")),
            orphan(&c, Some("40")),
        ],
    );
    let l = lists(&out);
    let mut selectors: Vec<&str> = l.iter().map(|x| x.label_selector.as_str()).collect();
    selectors.sort_unstable();
    assert_eq!(
        selectors,
        [
            "kubernetes_executor=True,airflow-worker=10,airflow_executor_done!=True",
            "kubernetes_executor=True,airflow-worker=40,airflow_executor_done!=True",
        ]
    );
    assert!(l
        .iter()
        .all(|x| x.field_selector.as_deref() == Some(ORPHAN_FIELD)));
    assert!(resolved(&out).is_empty(), "waits for both lists");
    assert!(h.answer(l[0].id, listed(vec![])).is_empty());
    let out = h.answer(l[1].id, listed(vec![]));
    assert_eq!(resolved(&out), [(vec![], vec![a, b, c])]);
}

/// Follows Airflow's `test_try_adopt_task_instances_no_matching_pods` (§10 case 57).
/// An empty orphan list returns the TI for reset, tracks nothing, patches nothing; completed-pod
/// adoption still runs.
#[test]
fn test_try_adopt_task_instances_no_matching_pods() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let out = heartbeats(&mut h, &[(SCHEDULER, JobState::Running)]);
    h.answer(only_list(&out).id, listed(vec![]));

    let out = adopt(&mut h, vec![orphan(&k, Some("1"))]);
    let l = lists(&out);
    assert_eq!(
        l.iter()
            .map(|x| x.field_selector.as_deref())
            .collect::<Vec<_>>(),
        [Some(ORPHAN_FIELD), Some(COMPLETED_FIELD)],
        "_adopt_completed_pods called"
    );
    h.answer(l[1].id, listed(vec![]));
    let out = h.answer(l[0].id, listed(vec![]));
    assert_eq!(resolved(&out), [(vec![], vec![k.clone()])]);
    assert!(!h.ex.is_tracking(&k), "running == {{}}");
    assert!(
        patches(&h.commands).is_empty(),
        "adopt_launched_task not called"
    );
    assert_eq!(
        h.ex.state_size(),
        StateSize {
            peers: 1,
            ..StateSize::default()
        },
        "nothing retained but the heartbeat of this scheduler"
    );
}

/// Follows Airflow's `test_try_adopt_already_adopted_task_instances` (§10 case 58).
/// A TI this executor already runs is not returned for reset (a re-run hand-over, #39406) and
/// stays tracked.
#[test]
fn test_try_adopt_already_adopted_task_instances() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    h.launch(&k);
    let out = adopt(&mut h, vec![orphan(&k, Some("1"))]);
    let out = h.answer(only_list(&out).id, listed(vec![]));
    assert_eq!(resolved(&out), [(vec![], vec![])], "returns []");
    assert!(h.ex.is_tracking(&k), "running == {{k}}");
    assert_eq!(h.ex.state_size().tasks, 1);
}

/// Follows Airflow's `test_adopt_launched_task` (§10 case 59).
/// Self `modified` relabels pod `foo` (owner `bar`) with `{airflow-worker: modified}`, then
/// tracks the try: a later Succeeded event deletes the pod and reports the try. Differs on
/// purpose: the patch is conditional, with a precondition naming the old owner label and the
/// resource version read.
#[test]
fn test_adopt_launched_task() {
    let mut h = Harness::with_id(ported_config(), "modified");
    let k = key("task");
    let foo = pod_of("default", "foo", &k, "bar", PodPhase::Running);
    let out = adopt(&mut h, vec![orphan(&k, Some("bar"))]);
    let out = h.answer(only_list(&out).id, listed(vec![foo.clone()]));
    assert_eq!(kinds(&out), ["PatchLabels"]);
    let p = patches(&out).remove(0);
    assert_eq!(
        p,
        Patch {
            id: p.id,
            pod: PodRef::new("default", "foo"),
            labels: owned(&[("airflow-worker", "modified")]),
            precondition: Some(Precondition {
                resource_version: Some("10".into()),
                label: Some(("airflow-worker".into(), "bar".into())),
            }),
        }
    );
    let out = h.answer(p.id, ApiOutcome::Ok);
    assert_eq!(
        resolved(&out),
        [(vec![k.clone()], vec![])],
        "candidates empty"
    );
    assert!(h.ex.is_tracking(&k), "running == {{k}}");
    assert_eq!(h.ex.state_size().pods, 1);

    let done = with_phase(relabelled(foo, "modified", "11"), PodPhase::Succeeded, "12");
    let out = h.event(EventType::Modified, &done);
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_adopt_launched_task` (§10 case 59) for a pod that is already Failed
/// (§4.2: Pending, Running and Failed pods are adoptable).
/// Once adopted, the relabelled pod's Failed event (as the new owner's watch shows it) is the
/// try's failure: reported FAILED, the try forgotten.
#[test]
fn test_adopt_launched_task_failed_pod() {
    let mut h = Harness::with_id(ported_config(), "modified");
    let k = key("task");
    let foo = failed_with_error(&pod_of("default", "foo", &k, "bar", PodPhase::Failed));
    let out = adopt(&mut h, vec![orphan(&k, Some("bar"))]);
    let out = h.answer(only_list(&out).id, listed(vec![foo.clone()]));
    let out = h.answer(patches(&out)[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])]);
    assert!(h.ex.is_tracking(&k));

    let out = h.event(EventType::Added, &relabelled(foo, "modified", "12"));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "a failed pod is kept under the defaults (and labelled done)"
    );
    assert_failed(&out, &k, "Error exit 1");
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_adopt_launched_task` (§10 case 59) when the new owner's watch shows
/// the relabelled pod before the patch's reply arrives (two connections; either may come first).
/// In Airflow the watcher's result is processed in a later `sync()`, after `running.add(key)`, so
/// an adopted Failed pod is always reported. Here the event arrives while the try is not yet
/// tracked, and the patch reply then tracks the try with a pod whose failure was already seen:
/// the try must still be reported FAILED and forgotten, not tracked forever. (Found by this
/// port; fixed by adopting on the watch event that shows the pod with our label.)
#[test]
fn test_adopt_launched_task_watch_event_before_patch_reply() {
    let mut h = Harness::with_id(ported_config(), "modified");
    let k = key("task");
    let foo = failed_with_error(&pod_of("default", "foo", &k, "bar", PodPhase::Failed));
    let out = adopt(&mut h, vec![orphan(&k, Some("bar"))]);
    let out = h.answer(only_list(&out).id, listed(vec![foo.clone()]));
    let patch = patches(&out).remove(0);
    let mut out = h.event(EventType::Added, &relabelled(foo, "modified", "12"));
    out.extend(h.answer(patch.id, ApiOutcome::Ok));
    out.extend(h.advance(ADOPTION_INTERVAL_MS));
    assert_eq!(resolved(&out), [(vec![k.clone()], vec![])]);
    assert_failed(&out, &k, "Error exit 1");
    assert!(!h.ex.is_tracking(&k), "not tracked forever");
    assert_eq!(h.ex.state_size().tasks, 0);
}

/// Follows Airflow's `test_adopt_launched_task_api_exception` (§10 case 60).
/// The relabel fails (400): patched once, nothing adopted, the TI returned for reset, nothing
/// tracked. A 409 (precondition failed: another adopter won) is handled the same way.
#[test]
fn test_adopt_launched_task_api_exception() {
    for (code, reason) in [(400, "BadRequest"), (409, "Conflict")] {
        let mut h = Harness::with_id(ported_config(), "modified");
        let k = key("task");
        let foo = pod_of("default", "foo", &k, "bar", PodPhase::Running);
        let out = adopt(&mut h, vec![orphan(&k, Some("bar"))]);
        let out = h.answer(only_list(&out).id, listed(vec![foo]));
        let p = patches(&out);
        assert_eq!(p.len(), 1, "{code}: patch called once");
        let out = h.fail(p[0].id, code, reason, "patch refused", None);
        assert_eq!(
            resolved(&out),
            [(vec![], vec![k.clone()])],
            "{code}: candidates unchanged"
        );
        assert!(!h.ex.is_tracking(&k), "{code}: running == {{}}");
        assert_eq!(patches(&h.commands).len(), 1, "{code}: not retried");
        assert_eq!(h.ex.state_size(), StateSize::default(), "{code}");
    }
}

/// Follows Airflow's `test_not_adopt_unassigned_task` (§10 case 61).
/// A listed pod whose try is not among the candidates is not patched; the candidate is returned
/// for reset and the pod's try is not tracked.
#[test]
fn test_not_adopt_unassigned_task() {
    let mut h = Harness::new(ported_config());
    let foobar = key("foobar");
    let other = key("task");
    let pod = pod_of("default", "foo", &other, "1", PodPhase::Running);
    let out = adopt(&mut h, vec![orphan(&foobar, Some("1"))]);
    let out = h.answer(only_list(&out).id, listed(vec![pod]));
    assert!(patches(&h.commands).is_empty(), "no patch");
    assert_eq!(resolved(&out), [(vec![], vec![foobar.clone()])]);
    assert!(!h.ex.is_tracking(&other));
    assert!(!h.ex.is_tracking(&foobar));
}

/// Follows Airflow's `test_try_adopt_task_instances_no_matching_pods` (§10 case 57).
/// A TI without `queued_by_job_id` (§4.2 step 1) is returned for reset at once, with no orphan
/// list at all.
#[test]
fn test_try_adopt_task_instances_no_matching_pods_unqueued_ti() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let out = adopt(&mut h, vec![orphan(&k, None)]);
    assert!(lists(&out).is_empty(), "no list for an unqueued TI");
    assert_eq!(resolved(&out), [(vec![], vec![k.clone()])]);
    assert!(!h.ex.is_tracking(&k));
}

// ---- _adopt_completed_pods (§4.3) -----------------------------------------------------------

/// Follows Airflow's `test_adopt_completed_pods` (§10 case 62).
/// Self `modified`, namespace `somens`: once the first heartbeat snapshot arrives, Succeeded pods
/// are listed with field selector `status.phase=Succeeded` and label selector
/// `kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True`; pods `one`
/// and `two` are relabelled `{airflow-worker: modified}` and then deleted, with no report and no
/// try tracked. Differs on purpose: completed-pod adoption waits for the first heartbeat snapshot
/// (nothing is known about peers before it), and the relabel is conditional.
#[test]
fn test_adopt_completed_pods() {
    let mut h = Harness::with_id(
        Config {
            namespace: "somens".into(),
            ..ported_config()
        },
        "modified",
    );
    // Start-up adoption is due, but waits for heartbeats, even past the interval.
    assert!(h.advance(ADOPTION_INTERVAL_MS).is_empty());
    assert!(h.commands.is_empty());

    // "one" and "two" are dead schedulers: their job rows say so (an owner no row names is
    // only taken after a threshold, as it may be a scheduler that has just started).
    let out = one_and_two_dead(&mut h);
    let l = only_list(&out);
    assert_eq!(
        (
            l.namespace.as_str(),
            l.label_selector.as_str(),
            l.field_selector.as_deref()
        ),
        (
            "somens",
            "kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True",
            Some(COMPLETED_FIELD)
        )
    );
    let (k1, k2) = (key("one"), key("two"));
    let one = pod_of("somens", "one", &k1, "one", PodPhase::Succeeded);
    let two = pod_of("somens", "two", &k2, "two", PodPhase::Succeeded);
    let out = h.answer(l.id, listed(vec![one.clone(), two.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 2);
    for (patch, (pod, owner)) in p.iter().zip([(&one, "one"), (&two, "two")]) {
        assert_eq!(patch.pod, pod.pod_ref());
        assert_eq!(patch.labels, owned(&[("airflow-worker", "modified")]));
        assert_eq!(
            patch.precondition,
            Some(Precondition {
                resource_version: Some("10".into()),
                label: Some(("airflow-worker".into(), owner.into())),
            })
        );
    }
    let mut deleted = Vec::new();
    for patch in &p {
        let out = h.answer(patch.id, ApiOutcome::Ok);
        assert_eq!(kinds(&out), ["DeletePod"]);
        deleted.extend(deletes(&out));
    }
    assert_eq!(
        deleted.iter().map(|d| d.1.clone()).collect::<Vec<_>>(),
        [one.pod_ref(), two.pod_ref()]
    );
    for (id, _) in deleted {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }
    assert!(reports(&h.commands).is_empty(), "no event");
    assert!(!h.ex.is_tracking(&k1) && !h.ex.is_tracking(&k2));
}

/// Follows Airflow's `test_adopt_completed_pods_api_exception` (§10 case 63).
/// Both relabels fail (400): two patch calls, then nothing: no delete, no report, nothing
/// tracked or retained.
#[test]
fn test_adopt_completed_pods_api_exception() {
    let mut h = Harness::with_id(ported_config(), "modified");
    // "one" and "two" are dead schedulers: their job rows say so (an owner no row names is
    // only taken after a threshold, as it may be a scheduler that has just started).
    let out = one_and_two_dead(&mut h);
    let (k1, k2) = (key("one"), key("two"));
    let pods = vec![
        pod_of("default", "one", &k1, "one", PodPhase::Succeeded),
        pod_of("default", "two", &k2, "two", PodPhase::Succeeded),
    ];
    let out = h.answer(only_list(&out).id, listed(pods));
    let p = patches(&out);
    assert_eq!(p.len(), 2, "2 patch calls");
    for patch in p {
        assert!(h
            .fail(patch.id, 400, "BadRequest", "patch refused", None)
            .is_empty());
    }
    assert!(deletes(&h.commands).is_empty());
    assert!(reports(&h.commands).is_empty());
    assert!(
        !h.ex.is_tracking(&k1) && !h.ex.is_tracking(&k2),
        "running == {{}}"
    );
    assert_eq!(
        h.ex.state_size(),
        StateSize {
            peers: 3,
            ..StateSize::default()
        }
    );
}

/// Follows Airflow's `test_adopt_completed_pods_excludes_alive_siblings` (§10 case 64).
/// Self `5` with peers `7` and `9` alive in the heartbeat snapshot lists with
/// `kubernetes_executor=True,airflow-worker notin (5,7,9),airflow_executor_done!=True`.
/// Podwarden adds a guard: a pod of a live peer in a (stale) list is still not taken, while a
/// dead scheduler's pod is.
#[test]
fn test_adopt_completed_pods_excludes_alive_siblings() {
    let mut h = Harness::new(ported_config());
    let out = heartbeats(
        &mut h,
        &[
            ("5", JobState::Running),
            ("7", JobState::Running),
            ("9", JobState::Running),
            ("3", JobState::Failed),
        ],
    );
    let l = only_list(&out);
    assert_eq!(
        l.label_selector,
        "kubernetes_executor=True,airflow-worker notin (5,7,9),airflow_executor_done!=True"
    );
    assert_eq!(l.field_selector.as_deref(), Some(COMPLETED_FIELD));

    let live = pod_of("default", "live", &key("a"), "7", PodPhase::Succeeded);
    let dead = pod_of("default", "dead", &key("b"), "3", PodPhase::Succeeded);
    let out = h.answer(l.id, listed(vec![live, dead.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].pod, dead.pod_ref());
}

/// Follows Airflow's `test_adopt_completed_pods_excludes_alive_siblings` (§10 case 64) when the
/// heartbeat read fails.
/// As Airflow's `_alive_other_scheduler_job_ids` on an exception, the selector falls back to
/// excluding only this scheduler (`adoption_without_heartbeats = exclude_self`). Differs on
/// purpose by default (`wait`): no completed-pod adoption runs until the heartbeats can be read,
/// because the fallback takes every live peer's completed pods (the thrash of a DB outage).
#[test]
fn test_adopt_completed_pods_excludes_alive_siblings_heartbeats_unavailable() {
    let unavailable = || Input::Heartbeats {
        snapshot: Err(HeartbeatsUnavailable {
            reason: "db down".into(),
        }),
    };
    let mut h = Harness::new(ported_config());
    let out = h.input("heartbeats unavailable".into(), unavailable());
    assert!(out.is_empty(), "podwarden waits: {out:?}");
    let mut h = Harness::new(Config {
        adoption_without_heartbeats: podwarden::adoption::AdoptionFallback::ExcludeSelf,
        ..ported_config()
    });
    let out = h.input(
        "heartbeats unavailable".into(),
        Input::Heartbeats {
            snapshot: Err(HeartbeatsUnavailable {
                reason: "db down".into(),
            }),
        },
    );
    let l = only_list(&out);
    assert_eq!(
        l.label_selector,
        "kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True"
    );
    assert_eq!(l.field_selector.as_deref(), Some(COMPLETED_FIELD));
}

/// Follows Airflow's `test_adopt_completed_pods_single_scheduler_unchanged` (§10 case 65).
/// With no other scheduler alive (only a failed one), the selector keeps the `!=modified` form;
/// the same list is made again every `orphaned_tasks_check_interval`, and on each
/// `Input::AdoptOrphans`.
#[test]
fn test_adopt_completed_pods_single_scheduler_unchanged() {
    let expected = "kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True";
    let mut h = Harness::with_id(ported_config(), "modified");
    let out = heartbeats(
        &mut h,
        &[("modified", JobState::Running), ("7", JobState::Failed)],
    );
    let l = only_list(&out);
    assert_eq!(l.label_selector, expected);
    assert_eq!(l.field_selector.as_deref(), Some(COMPLETED_FIELD));
    h.answer(l.id, listed(vec![]));

    assert!(h.advance(ADOPTION_INTERVAL_MS - 1).is_empty(), "not before");
    let out = h.advance(1);
    let l = only_list(&out);
    assert_eq!(l.label_selector, expected, "periodic run");
    assert_eq!(l.field_selector.as_deref(), Some(COMPLETED_FIELD));
    h.answer(l.id, listed(vec![]));

    let out = adopt(&mut h, vec![]);
    let l = only_list(&out);
    assert_eq!(l.label_selector, expected, "on a hand-over");
    assert_eq!(resolved(&out), [(vec![], vec![])]);
}

// ---- completed pods are processed once ------------------------------------------------------

/// Follows Airflow's `test_sync_processes_completed_pods_once` (§10 case 67), with the
/// `completed` entry produced by a real completed-pod adoption.
/// `completed-pod` (a dead scheduler's) is adopted, and `queue-pod` and `queue-pod-2` (untracked
/// try) finish on the watch: exactly three deletes, no report. Differs on purpose: the adopted
/// pod then shows up on this executor's own watch as Succeeded and is not deleted a second time
/// (Airflow sends a second DELETE and ignores its 404, §4.3 step 8); replays delete nothing.
#[test]
fn test_sync_processes_completed_pods_once_after_adoption() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let out = heartbeats(
        &mut h,
        &[(SCHEDULER, JobState::Running), ("3", JobState::Failed)],
    );
    let completed = pod_of("default", "completed-pod", &k, "3", PodPhase::Succeeded);
    let out = h.answer(only_list(&out).id, listed(vec![completed.clone()]));
    let mut out = h.answer(patches(&out)[0].id, ApiOutcome::Ok);
    let queued: Vec<PodView> = ["queue-pod", "queue-pod-2"]
        .iter()
        .map(|n| worker_pod(n, &k, PodPhase::Succeeded))
        .collect();
    for pod in &queued {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["DeletePod"; 3]);
    let dels = deletes(&out);
    assert_eq!(
        dels.iter().map(|d| d.1.clone()).collect::<Vec<_>>(),
        [
            completed.pod_ref(),
            queued[0].pod_ref(),
            queued[1].pod_ref()
        ]
    );
    for (id, _) in dels {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }

    let mine = relabelled(completed.clone(), SCHEDULER, "11");
    for pod in [&mine, &queued[0], &queued[1]] {
        assert!(
            h.event(EventType::Modified, pod).is_empty(),
            "{} again",
            pod.name
        );
    }
    for pod in [&mine, &queued[0], &queued[1]] {
        assert!(h
            .event(EventType::Deleted, &deleting(pod.clone()))
            .is_empty());
    }
    assert_eq!(
        deletes(&h.commands).len(),
        3,
        "delete_pod called exactly 3 times"
    );
    assert!(reports(&h.commands).is_empty());
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().pods, 0, "completed == {{}}");
}

/// Follows Airflow's `test_sync_processes_completed_pods_once_without_deletion` (§10 case 68),
/// with the `completed` entry produced by a real completed-pod adoption.
/// With `delete_worker_pods=False`: no delete; exactly one done-label patch each for
/// `completed-pod`, `queue-pod` and `queue-pod-2` (besides the adoption relabel), no report, and
/// replays patch nothing again.
#[test]
fn test_sync_processes_completed_pods_once_without_deletion_after_adoption() {
    let mut h = Harness::new(Config {
        delete_worker_pods: false,
        ..ported_config()
    });
    let k = key("task");
    let out = heartbeats(
        &mut h,
        &[(SCHEDULER, JobState::Running), ("3", JobState::Failed)],
    );
    let completed = pod_of("default", "completed-pod", &k, "3", PodPhase::Succeeded);
    let out = h.answer(only_list(&out).id, listed(vec![completed.clone()]));
    let relabel = patches(&out).remove(0);
    assert_eq!(relabel.labels, owned(&[("airflow-worker", SCHEDULER)]));
    let mut out = h.answer(relabel.id, ApiOutcome::Ok);
    let queued: Vec<PodView> = ["queue-pod", "queue-pod-2"]
        .iter()
        .map(|n| worker_pod(n, &k, PodPhase::Succeeded))
        .collect();
    for pod in &queued {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["PatchLabels"; 3]);
    let done = patches(&out);
    assert_eq!(
        done.iter().map(|p| p.pod.clone()).collect::<Vec<_>>(),
        [
            completed.pod_ref(),
            queued[0].pod_ref(),
            queued[1].pod_ref()
        ]
    );
    for p in &done {
        assert_eq!(p.labels, owned(&[("airflow_executor_done", "True")]));
        assert_eq!(p.precondition, None);
        assert!(h.answer(p.id, ApiOutcome::Ok).is_empty());
    }

    let mine = relabelled(completed, SCHEDULER, "11");
    for pod in [&mine, &queued[0], &queued[1]] {
        assert!(h.event(EventType::Modified, pod).is_empty(), "{}", pod.name);
    }
    // Marked done, each pod leaves the watch (DELETED without a deletion timestamp).
    for pod in [&mine, &queued[0], &queued[1]] {
        assert!(h.event(EventType::Deleted, pod).is_empty());
    }
    assert!(deletes(&h.commands).is_empty(), "no deletes");
    assert_eq!(patches(&h.commands).len(), 4, "1 relabel + 3 done patches");
    assert!(reports(&h.commands).is_empty());
    assert_eq!(h.ex.state_size().pods, 0, "completed == {{}}");
}

// ---- revoke (§5.2) --------------------------------------------------------------------------

/// Follows Airflow's `test_revoke_task` (§10 case 69).
/// Revoking a queued try with a Pending pod labels the pod `airflow_pod_revoked=True`, then
/// deletes it; the try is no longer tracked and nothing is reported; later events of the revoked
/// pod change nothing. Differs on purpose: the try's pod is known, so no list is needed (see the
/// `_untracked` variant for Airflow's list).
#[test]
fn test_revoke_task() {
    let mut h = Harness::with_id(ported_config(), "123");
    let k = key("task");
    let pod = h.launch(&k);
    assert!(h.ex.is_tracking(&k));
    let out = h.input(format!("revoke {k}"), Input::Revoke { key: k.clone() });
    assert_eq!(kinds(&out), ["PatchLabels", "DeletePod"]);
    let p = patches(&out);
    assert_eq!(
        (&p[0].pod, &p[0].labels, &p[0].precondition),
        (
            &pod.pod_ref(),
            &owned(&[("airflow_pod_revoked", "True")]),
            &None
        )
    );
    assert_eq!(deletes(&out), [(out[1].id, pod.pod_ref())]);
    assert!(!h.ex.is_tracking(&k), "has_task is False");
    h.ack_all(&out);

    let mut revoked = pod.clone();
    revoked
        .labels
        .insert("airflow_pod_revoked".into(), "True".into());
    assert!(h
        .event(
            EventType::Modified,
            &with_phase(revoked.clone(), PodPhase::Pending, "11")
        )
        .is_empty());
    assert!(h.event(EventType::Deleted, &deleting(revoked)).is_empty());
    assert!(reports(&h.commands).is_empty(), "no event");
    assert_eq!(patches(&h.commands).len(), 1, "patch_pod_revoked once");
    assert_eq!(deletes(&h.commands).len(), 1, "delete_pod once");
    assert_eq!(h.ex.state_size(), StateSize::default());
}

/// Follows Airflow's `test_revoke_task` (§10 case 69) for a try this executor does not track
/// (e.g. after a restart).
/// As in Airflow, its pod is found by listing `airflow-worker=123` pods of the same dag, task and
/// run (try number not compared), then labelled revoked and deleted; nothing is reported.
#[test]
fn test_revoke_task_untracked() {
    let mut h = Harness::with_id(ported_config(), "123");
    let k = key("task");
    let out = h.input(format!("revoke {k}"), Input::Revoke { key: k.clone() });
    let l = only_list(&out);
    assert_eq!(
        (
            l.namespace.as_str(),
            l.label_selector.as_str(),
            l.field_selector
        ),
        (
            "default",
            "airflow-worker=123,dag_id=dag,task_id=task,run_id=run_id",
            None
        )
    );
    let pod = pod_of("default", "pod", &k, "123", PodPhase::Pending);
    let out = h.answer(l.id, listed(vec![pod.clone()]));
    assert_eq!(kinds(&out), ["PatchLabels", "DeletePod"]);
    assert_eq!(patches(&out)[0].pod, pod.pod_ref());
    assert_eq!(
        patches(&out)[0].labels,
        owned(&[("airflow_pod_revoked", "True")])
    );
    assert_eq!(deletes(&out)[0].1, pod.pod_ref());
    assert!(!h.ex.is_tracking(&k));
    assert!(reports(&h.commands).is_empty());
}

/// Follows Airflow's `test_cleanup_stuck_queued_tasks` (§10 case 70).
/// Revoking a stuck try deletes its pod exactly once and frees the try; a Failed event of the
/// pod being deleted (seen before the revoked label) reports nothing. Differs: the deprecated
/// helper's `fail(key)` has no counterpart; the scheduler records the failure itself, so
/// podwarden reports nothing (and there is no deprecation warning).
#[test]
fn test_cleanup_stuck_queued_tasks() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.input(format!("revoke {k}"), Input::Revoke { key: k.clone() });
    assert_eq!(deletes(&out).len(), 1);
    assert!(!h.ex.is_tracking(&k), "running == {{}}");
    h.ack_all(&out);
    let dying = deleting(failed_with_error(&pod));
    assert!(h.event(EventType::Modified, &dying).is_empty());
    assert!(h.event(EventType::Deleted, &dying).is_empty());
    assert_eq!(deletes(&h.commands).len(), 1, "delete_pod called once");
    assert!(reports(&h.commands).is_empty());
    assert_eq!(h.ex.state_size(), StateSize::default());
}

// ---- podwarden's own: the host's rules (`podwarden::policy`) ---------------------------------

/// A rule that declines whatever it is asked about, and counts how often it was asked.
#[derive(Debug, Default)]
struct Decline(std::sync::atomic::AtomicUsize);

impl Decline {
    fn asked(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn ask(&self) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        false
    }
}

impl podwarden::policy::RequeuePolicy for Decline {
    fn may_requeue(&self, _: &podwarden::policy::FailureContext<'_>) -> bool {
        self.ask()
    }
}

/// Declines only the completed pod named `one` and the orphan of task `a`.
#[derive(Debug)]
struct DeclineSome;

impl podwarden::policy::AdoptionPolicy for DeclineSome {
    fn may_adopt(&self, c: &podwarden::policy::AdoptionCandidate<'_>) -> bool {
        use podwarden::policy::AdoptionPath;
        match c.path {
            AdoptionPath::Completed => c.pod.name != "one",
            _ => c.key.task_id != "a",
        }
    }
}

fn with_rules(h: &mut Harness, rules: podwarden::policy::Policies) {
    h.ex = h.ex.clone().with_policies(rules);
}

/// A launched try under a requeue rule that declines everything.
fn launched_under_a_declining_requeue_rule() -> (Harness, std::sync::Arc<Decline>, TaskKey, PodView)
{
    let mut h = Harness::new(retries(1));
    let rule = std::sync::Arc::new(Decline::default());
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().requeue(rule.clone()),
    );
    let k = key("task");
    let pod = h.launch(&k);
    (h, rule, k, pod)
}

/// A requeue rule's veto fails the try at once, where podwarden's rules alone would ask the DB
/// and requeue; the rule is asked once per pod failure, not per event.
#[test]
fn a_requeue_rule_vetoes_a_requeue() {
    let (mut h, rule, k, pod) = launched_under_a_declining_requeue_rule();
    let out = h.event(EventType::Modified, &failed_before_start(&pod, "11"));
    assert!(queries(&out).is_empty(), "no DB question: {out:?}");
    assert!(requeues(&out).is_empty());
    assert_failed(&out, &k, "ContainerStatusUnknown");
    let again = h.event(EventType::Deleted, &failed_before_start(&pod, "12"));
    assert!(reports(&again).is_empty(), "one failure, one outcome");
    assert_eq!(rule.asked(), 1);
    assert!(!h.ex.is_tracking(&k));
}

/// The rule is not asked when podwarden's own rules already say no (the task's own error).
#[test]
fn a_requeue_rule_is_not_asked_when_podwarden_says_no() {
    let (mut h, rule, k, pod) = launched_under_a_declining_requeue_rule();
    let out = h.event(EventType::Modified, &failed_with_error(&pod));
    assert_failed(&out, &k, "Error");
    assert_eq!(rule.asked(), 0);
}

/// A completed pod the adoption rule declines is not relabelled (so never deleted); the others
/// are adopted as usual.
#[test]
fn an_adoption_rule_declines_a_completed_pod() {
    let mut h = Harness::with_id(ported_config(), "modified");
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().adoption(std::sync::Arc::new(DeclineSome)),
    );
    let out = one_and_two_dead(&mut h);
    let l = only_list(&out);
    let (k1, k2) = (key("one"), key("two"));
    let one = pod_of("default", "one", &k1, "one", PodPhase::Succeeded);
    let two = pod_of("default", "two", &k2, "two", PodPhase::Succeeded);
    let out = h.answer(l.id, listed(vec![one, two.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1, "{out:?}");
    assert_eq!(p[0].pod, two.pod_ref());
}

/// An orphan whose pod the adoption rule declines is reset, as one with no pod; the other
/// orphan of the hand-over is adopted.
#[test]
fn an_adoption_rule_declines_an_orphan() {
    let mut h = Harness::with_id(ported_config(), "10");
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().adoption(std::sync::Arc::new(DeclineSome)),
    );
    let out = heartbeats(&mut h, &[("10", JobState::Running)]);
    h.answer(only_list(&out).id, listed(vec![]));
    let (a, b) = (key("a"), key("b"));
    let out = adopt(&mut h, vec![orphan(&a, Some("1")), orphan(&b, Some("1"))]);
    let l = lists(&out);
    h.answer(l[1].id, listed(vec![]));
    let pa = pod_of("default", "pa", &a, "1", PodPhase::Running);
    let pb = pod_of("default", "pb", &b, "1", PodPhase::Running);
    let out = h.answer(l[0].id, listed(vec![pa, pb.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1, "{out:?}");
    assert_eq!(p[0].pod, pb.pod_ref());
    let out = h.answer(p[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![b.clone()], vec![a.clone()])]);
    assert!(h.ex.is_tracking(&b) && !h.ex.is_tracking(&a));
}
