//! `_change_state`: what the executor does with a pod's end (delete, label done, report).

use podwarden::{ApiOutcome, Config, EventType, PodPhase, PodRef, ReportedState};

use crate::common::*;
use crate::support::*;

/// Follows Airflow's `test_change_state_success` (§10 case 39).
/// A succeeded pod is deleted once (its name, namespace `default`), the try is reported and no
/// longer tracked. A replay of the same event does nothing more.
#[test]
fn test_change_state_success() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let done = with_phase(pod.clone(), PodPhase::Succeeded, "11");
    let out = h.event(EventType::Modified, &done);
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("default", pod.name));
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().tasks, 0);
    assert!(
        h.event(EventType::Modified, &done).is_empty(),
        "delete_pod called once"
    );
}

/// Follows Airflow's `test_change_state_none` (§10 case 41).
/// A Succeeded pod (Airflow's state `None`) is deleted and the try reported as `Succeeded` with no
/// reason, whether the event is live or a replay after a restart. Differs on purpose: the core
/// does not read the task's DB state; `Succeeded` tells the scheduler to take the final state
/// (success, failed, deferred) from its DB, which is what Airflow's lookup does.
#[test]
fn test_change_state_none() {
    for kind in [EventType::Added, EventType::Modified] {
        let mut h = Harness::new(ported_config());
        let k = key("task");
        let pod = h.launch(&k);
        let out = h.event(kind, &with_phase(pod.clone(), PodPhase::Succeeded, "11"));
        assert_eq!(kinds(&out), ["DeletePod", "Report"], "{kind:?}");
        assert_eq!(deletes(&out)[0].1, pod.pod_ref());
        assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
        assert!(!h.ex.is_tracking(&k));
    }
}

/// Follows Airflow's `test_change_state_none` (§10 case 41).
/// Variant: a DELETED event with a deletion timestamp, which the watcher also classifies as
/// Succeeded (state `None`).
/// The try is reported. Differs on purpose: the pod is already being deleted, so podwarden does
/// not delete it again (Airflow sends a second DELETE and ignores its 404).
#[test]
fn test_change_state_none_pod_already_deleted() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Succeeded, "11")),
    );
    assert_eq!(kinds(&out), ["Report"]);
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().pods, 0);
}

/// Follows Airflow's `test_change_state_failed_no_deletion` (§10 case 40).
/// With `delete_worker_pods=False` a failed pod is not deleted but labelled
/// `airflow_executor_done=True` (which takes it out of the watch), and the failure is reported
/// with a readable reason (podwarden's reason string; Airflow writes "Pod failed because of
/// None").
#[test]
fn test_change_state_failed_no_deletion() {
    let config = Config {
        delete_worker_pods: false,
        delete_worker_pods_on_failure: false,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(config));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod.clone()));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    let p = patches(&out);
    assert_eq!(
        (&p[0].1, &p[0].2),
        (
            &PodRef::new("test-namespace", pod.name.clone()),
            &executor_done()
        )
    );
    assert!(deletes(&h.commands).is_empty(), "no delete");
    assert_failure_reported(&out, &k, "exit 1");
    assert!(!h.ex.is_tracking(&k));
    let mut labelled = pod.labels.clone();
    labelled.extend(executor_done());
    assert!(
        !h.ex.watch_selector().matches(&labelled),
        "a pod marked done leaves the watch"
    );
    // It leaves the watch (DELETED without a deletion timestamp): nothing more, nothing kept.
    assert!(h.answer(p[0].0, ApiOutcome::Ok).is_empty());
    let gone = h.event(
        EventType::Deleted,
        &with_phase(task_failed(pod), PodPhase::Failed, "458"),
    );
    assert!(gone.is_empty());
    assert_eq!(h.ex.state_size().pods, 0);
}

/// Follows Airflow's `test_change_state_adopted` (§10 case 42).
/// A pod that left the watch without being deleted (another scheduler adopted it) frees the
/// try with no report and no API call.
#[test]
fn test_change_state_adopted() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &with_phase(pod, PodPhase::Running, "11"),
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(!h.ex.is_tracking(&k));
    let size = h.ex.state_size();
    assert_eq!((size.tasks, size.pods), (0, 0));
    assert_eq!(kinds(&h.commands), ["CreatePod"], "no delete, no report");
}

/// Follows Airflow's `test_change_state_key_not_in_running` (§10 case 43).
/// A finished pod whose key this executor does not track is still disposed of (deleted), but
/// nothing is reported and nothing starts being tracked.
#[test]
fn test_change_state_key_not_in_running() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = worker_pod("pod_name", &k, PodPhase::Succeeded);
    let out = h.event(EventType::Modified, &pod);
    assert_eq!(kinds(&out), ["DeletePod"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("default", "pod_name"));
    assert!(reports(&out).is_empty());
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().tasks, 0);
}

/// Follows Airflow's `test_change_state_skip_pod_deletion` (§10 case 44).
/// With `delete_worker_pods=False` a succeeded pod is labelled done instead of deleted, and the
/// success is reported.
#[test]
fn test_change_state_skip_pod_deletion() {
    let config = Config {
        delete_worker_pods: false,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(config);
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    let p = patches(&out);
    assert_eq!(
        (&p[0].1, &p[0].2),
        (&PodRef::new("test-namespace", pod.name), &executor_done())
    );
    assert!(deletes(&h.commands).is_empty(), "no delete");
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_change_state_failed_pod_deletion` (§10 case 45).
/// With `delete_worker_pods_on_failure=True` a failed pod is deleted (not patched) and the
/// failure reported; with the default (False) the failed pod is kept for debugging.
#[test]
fn test_change_state_failed_pod_deletion() {
    let config = Config {
        delete_worker_pods_on_failure: true,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(config));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod.clone()));
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("test-namespace", pod.name));
    assert!(patches(&h.commands).is_empty(), "no patch");
    assert_failure_reported(&out, &k, "exit 1");
    assert!(!h.ex.is_tracking(&k));

    let mut h = Harness::new(no_requeue(ported_config()));
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "default: a failed pod is kept, and (differs on purpose) labelled done"
    );
    assert_failure_reported(&out, &k, "exit 1");

    let airflow = Config {
        label_kept_failed_pods_done: false,
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(airflow));
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod));
    assert_eq!(
        kinds(&out),
        ["Report"],
        "Airflow: a failed pod is neither deleted nor patched"
    );
    assert_failure_reported(&out, &k, "exit 1");
}
