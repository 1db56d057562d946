//! `try_adopt_task_instances` (§4.2, §10 cases 55–61): the hand-over of a dead scheduler's
//! tries.

use podwarden::liveness::JobState;
use podwarden::{ApiOutcome, EventType, PodPhase, PodRef, Precondition, ReportedState, StateSize};

use crate::common::*;
use crate::support::*;

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
            l[0].namespace.as_deref(),
            l[0].label_selector.as_str(),
            l[0].field_selector.as_deref()
        ),
        (
            Some("default"),
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
