//! Pre-execution requeue (§6, §10 cases 47–53): a pod that fails before its task starts.

use podwarden::adoption::OrphanTask;
use podwarden::db::TaskState;
use podwarden::requeue::{RequeueCause, RequeueDedupe, LAUNCH_ATTEMPT_ANNOTATION};
use podwarden::{ApiOutcome, Config, EventType, Input, PodPhase, PodTemplate, TaskKey};

use crate::common::*;
use crate::support::*;

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
        namespace: None,
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
