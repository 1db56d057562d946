//! Revoke (§5.2, §10 cases 69–70).

use podwarden::{EventType, Input, PodPhase, StateSize};

use crate::common::*;
use crate::support::*;

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
            l.namespace.as_deref(),
            l.label_selector.as_str(),
            l.field_selector
        ),
        (
            Some("default"),
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
