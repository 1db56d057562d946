//! `_adopt_completed_pods` (§4.3, §10 cases 62–65), and completed pods processed once after a
//! real adoption (cases 67–68).

use podwarden::liveness::{HeartbeatsUnavailable, JobState};
use podwarden::{ApiOutcome, Config, EventType, Input, PodPhase, PodView, Precondition, StateSize};

use crate::common::*;
use crate::support::*;

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
            l.namespace.as_deref(),
            l.label_selector.as_str(),
            l.field_selector.as_deref()
        ),
        (
            Some("somens"),
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
