//! Adoption: completed pods of dead schedulers, and the hand-over of orphaned tries.

use podwarden::adoption::AdoptionScope;
use podwarden::command::{ApiCall, Notice};
use podwarden::liveness::JobState;
use podwarden::requeue::LAUNCH_ATTEMPT_ANNOTATION;
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, PodPhase, PodView, Precondition, TaskKey,
};

use crate::support::*;
use crate::{next_adoption, T0};

fn completed_pod(name: &str, owner: &str, key: &TaskKey) -> PodView {
    let mut pod = worker_pod(name, key, PodPhase::Succeeded);
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = "77".into();
    pod
}

// ---- adoption ------------------------------------------------------------------------------

#[test]
fn completed_adoption_waits_for_the_first_heartbeats() {
    let mut h = Harness::new(Config::default());
    assert!(
        next_adoption(&mut h).is_empty(),
        "nothing is known about peers yet"
    );
    let out = h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    assert_eq!(
        list_selector(&out),
        (
            "kubernetes_executor=True,airflow-worker notin (5,7),airflow_executor_done!=True"
                .to_string(),
            Some("status.phase=Succeeded".to_string())
        )
    );
}

#[test]
fn completed_adoption_waits_while_heartbeats_are_unavailable_unless_told_to_fall_back() {
    // podwarden's default: no completed-pod adoption until the heartbeats can be read again.
    let mut h = Harness::new(Config::default());
    assert!(h.heartbeats_unavailable().is_empty());
    let out = h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    assert_eq!(
        list_selector(&out).0,
        "kubernetes_executor=True,airflow-worker notin (5,7),airflow_executor_done!=True",
        "it runs as soon as a snapshot is readable"
    );
    // Airflow's fallback: exclude only ourselves.
    let mut h = Harness::new(Config {
        adoption_without_heartbeats: podwarden::adoption::AdoptionFallback::ExcludeSelf,
        ..Config::default()
    });
    let out = h.heartbeats_unavailable();
    assert_eq!(
        list_selector(&out).0,
        "kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True"
    );
}

#[test]
fn completed_adoption_relabels_conditionally_then_deletes_once() {
    let mut h = Harness::new(Config::default());
    let out = h.heartbeats(&[("5", JobState::Running, T0), ("9", JobState::Failed, T0)]);
    let list = first(&out, "ListPods").id;
    let orphan = completed_pod("done-1", "9", &key("x"));
    let out = h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![orphan.clone()],
            resource_version: "80".into(),
        },
    );
    assert_eq!(kinds(&out), ["PatchLabels"]);
    let CommandKind::Api(ApiCall::PatchLabels {
        labels: l,
        precondition,
        ..
    }) = &out[0].kind
    else {
        unreachable!()
    };
    assert_eq!(l, &labels(&[("airflow-worker", "5")]));
    assert_eq!(
        precondition,
        &Some(Precondition {
            resource_version: Some("77".into()),
            label: Some(("airflow-worker".into(), "9".into()))
        })
    );
    let out = h.answer(out[0].id, ApiOutcome::Ok);
    assert_eq!(
        kinds(&out),
        ["DeletePod"],
        "cleaned up, no report (not our try)"
    );
    // The relabelled pod now shows in our watch: no second delete.
    let mut moved = orphan;
    moved.labels.insert("airflow-worker".into(), "5".into());
    assert!(h.event(EventType::Added, &moved).is_empty());
}

#[test]
fn completed_adoption_losing_the_race_is_a_normal_outcome() {
    let mut h = Harness::new(Config::default());
    let out = h.heartbeats(&[("5", JobState::Running, T0), ("9", JobState::Failed, T0)]);
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![completed_pod("done-1", "9", &key("x"))],
            resource_version: "80".into(),
        },
    );
    let out = h.fail(
        out[0].id,
        409,
        "Conflict",
        "precondition failed: airflow-worker is 7",
        None,
    );
    assert!(out.is_empty());
    assert_eq!(h.ex.state_size().pods, 0);
}

#[test]
fn completed_adoption_never_takes_a_live_peers_pod_even_from_a_stale_list() {
    let mut h = Harness::new(Config::default());
    let out = h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    // A list answered from a stale cache still shows a pod of live peer 7.
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![completed_pod("p7", "7", &key("x"))],
            resource_version: "80".into(),
        },
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn legacy_all_others_scope_takes_live_peers_pods() {
    let mut h = Harness::new(Config {
        adoption_scope: AdoptionScope::AllOthers,
        ..Config::default()
    });
    // The legacy scope needs no liveness: its list went out at start-up.
    h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    let out: Vec<_> = h
        .startup
        .iter()
        .filter(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase=Succeeded"))
        .cloned()
        .collect();
    assert_eq!(
        list_selector(&out).0,
        "kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True"
    );
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![completed_pod("p7", "7", &key("x"))],
            resource_version: "80".into(),
        },
    );
    assert_eq!(kinds(&out), ["PatchLabels"], "the pre-#66400 thrash");
}

#[test]
fn orphan_hand_over_adopts_matching_pods_and_resets_the_rest() {
    let mut h = Harness::new(Config::default());
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let out = h.adopt_orphans(&[
        (a.clone(), Some("1")),
        (b.clone(), Some("1")),
        (c.clone(), None),
    ]);
    let list = out
        .iter()
        .find(|cmd| matches!(&cmd.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
        .expect("orphan list");
    let CommandKind::Api(ApiCall::ListPods { label_selector, .. }) = &list.kind else {
        unreachable!()
    };
    assert_eq!(
        label_selector.to_string(),
        "kubernetes_executor=True,airflow-worker=1,airflow_executor_done!=True"
    );
    let mut pod_a = worker_pod("pod-a", &a, PodPhase::Running);
    pod_a.labels.insert("airflow-worker".into(), "1".into());
    pod_a
        .annotations
        .insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "1".into());
    let out = h.answer(
        list.id,
        ApiOutcome::Listed {
            pods: vec![pod_a],
            resource_version: "5".into(),
        },
    );
    let patch = first(&out, "PatchLabels");
    let out = h.answer(patch.id, ApiOutcome::Ok);
    let resolved = out
        .iter()
        .find_map(|cmd| match &cmd.kind {
            CommandKind::Notice(Notice::OrphansResolved { adopted, reset }) => {
                Some((adopted.clone(), reset.clone()))
            }
            _ => None,
        })
        .expect("resolved");
    assert_eq!(resolved, (vec![a.clone()], vec![c, b]));
    assert!(h.ex.is_tracking(&a));
}

#[test]
fn hand_over_takes_only_the_newest_pod_of_a_try() {
    // The dead scheduler had requeued the try: its first pod failed, its second runs.
    let mut h = Harness::with_id(Config::default(), "7");
    let k = key("t");
    let out = h.adopt_orphans(&[(k.clone(), Some("1"))]);
    let list = out
        .iter()
        .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
        .expect("orphan list")
        .id;
    let mut old = prestart_failed(worker_pod("pod-1", &k, PodPhase::Pending));
    old.labels.insert("airflow-worker".into(), "1".into());
    old.annotations
        .insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "0".into());
    let mut new = worker_pod("pod-2", &k, PodPhase::Running);
    new.labels.insert("airflow-worker".into(), "1".into());
    new.annotations
        .insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "1".into());
    let out = h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![new, old],
            resource_version: "5".into(),
        },
    );
    let patched: Vec<String> = out
        .iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::PatchLabels { pod, .. }) => Some(pod.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        patched,
        ["pod-2"],
        "the old pod's failure was already answered"
    );
}
