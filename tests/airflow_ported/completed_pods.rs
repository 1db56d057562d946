//! Completed pods are processed once: Airflow's `test_sync_processes_completed_pods_once` and
//! its variant without deletion.

use podwarden::command::ApiCall;
use podwarden::liveness::JobState;
use podwarden::{
    ApiOutcome, Command, CommandKind, Config, EventType, PodPhase, PodRef, PodView, TaskKey,
};

use crate::common::*;
use crate::support::*;

/// Airflow's `completed-pod`: a Succeeded pod of try `k` left by a dead scheduler (`9`), as the
/// completed-pod adoption lists it.
fn completed_pod(k: &TaskKey) -> PodView {
    let mut pod = worker_pod("completed-pod", k, PodPhase::Succeeded);
    pod.labels.insert("airflow-worker".into(), "9".into());
    pod.resource_version = "77".into();
    pod
}

/// Airflow's `queue-pod` and `queue-pod-2`: Succeeded pods of try `k`, which this executor does
/// not track, arriving on its watch.
fn queue_pods(k: &TaskKey) -> Vec<PodView> {
    ["queue-pod", "queue-pod-2"]
        .iter()
        .map(|name| worker_pod(name, k, PodPhase::Succeeded))
        .collect()
}

/// Runs the completed-pod adoption (heartbeats say scheduler `9` is dead) over `completed`:
/// the pod is relabelled to this scheduler, conditionally; returns what the relabel's success
/// produced (the pod's disposal).
fn adopt_completed(h: &mut Harness, completed: &PodView) -> Vec<Command> {
    let t = h.now.0;
    let out = h.heartbeats(&[("5", JobState::Running, t), ("9", JobState::Failed, t)]);
    let listed = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![completed.clone()],
            resource_version: "80".into(),
        },
    );
    assert_eq!(kinds(&listed), ["PatchLabels"]);
    let CommandKind::Api(ApiCall::PatchLabels { pod, labels: l, .. }) = &listed[0].kind else {
        unreachable!()
    };
    assert_eq!(
        (pod, l),
        (&completed.pod_ref(), &labels(&[("airflow-worker", "5")]))
    );
    h.answer(listed[0].id, ApiOutcome::Ok)
}

/// The next completed-pod adoption round (300 s later) lists `completed` again, as a list taken
/// before its clean-up finished would: returns what that produced.
fn next_round_lists_again(h: &mut Harness, completed: &PodView) -> Vec<Command> {
    let out = h.advance(300_000);
    let list = first(&out, "ListPods").id;
    h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![completed.clone()],
            resource_version: "90".into(),
        },
    )
}

/// Follows Airflow's `test_sync_processes_completed_pods_once` (§10 case 67).
/// One adopted completed pod and two Succeeded results of a try this executor does not track:
/// exactly 3 deletes and no report. The next adoption round and watch replays of the same pods
/// delete nothing again (the bug of #68674, one pod deleted 166 times, cannot happen), and
/// nothing is retained once the pods are gone.
#[test]
fn test_sync_processes_completed_pods_once() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let completed = completed_pod(&k);
    let mut out = adopt_completed(&mut h, &completed);
    let queue = queue_pods(&k);
    for pod in &queue {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["DeletePod"; 3]);
    let dels = deletes(&out);
    let targets: Vec<PodRef> = dels.iter().map(|d| d.1.clone()).collect();
    assert_eq!(
        targets,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()]
    );
    for (id, _, _) in dels {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }

    assert!(next_round_lists_again(&mut h, &completed).is_empty());
    let mut ours = completed.clone();
    ours.labels.insert("airflow-worker".into(), "5".into());
    let mut all = queue.clone();
    all.push(ours);
    for pod in &all {
        for kind in [EventType::Added, EventType::Modified] {
            assert!(h.event(kind, pod).is_empty(), "replayed {}", pod.name);
        }
    }
    for pod in &all {
        assert!(h
            .event(EventType::Deleted, &deleting(pod.clone()))
            .is_empty());
    }
    assert_eq!(deletes(&h.commands).len(), 3, "exactly 3 deletes");
    assert!(reports(&h.commands).is_empty());
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().pods, 0, "nothing retained");
}

/// Follows Airflow's `test_sync_processes_completed_pods_once_without_deletion` (§10 case 68).
/// With `delete_worker_pods=False` the same three pods get exactly one done-label patch each
/// (`completed-pod`, `queue-pod`, `queue-pod-2`), no delete, and neither the next adoption round
/// nor replays patch anything again.
#[test]
fn test_sync_processes_completed_pods_once_without_deletion() {
    let mut h = Harness::new(Config {
        delete_worker_pods: false,
        ..ported_config()
    });
    let k = key("task");
    let completed = completed_pod(&k);
    let mut out = adopt_completed(&mut h, &completed);
    let queue = queue_pods(&k);
    for pod in &queue {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["PatchLabels"; 3]);
    let p = patches(&out);
    let targets: Vec<PodRef> = p.iter().map(|x| x.1.clone()).collect();
    assert_eq!(
        targets,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()]
    );
    assert!(p.iter().all(|x| x.2 == executor_done()));
    for (id, _, _) in p {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }

    assert!(next_round_lists_again(&mut h, &completed).is_empty());
    for pod in &queue {
        assert!(
            h.event(EventType::Modified, pod).is_empty(),
            "replayed {}",
            pod.name
        );
    }
    // Marked done, each pod leaves the watch (DELETED without a deletion timestamp).
    for pod in &queue {
        assert!(h.event(EventType::Deleted, pod).is_empty());
    }
    assert!(deletes(&h.commands).is_empty(), "no deletes");
    let done: Vec<PodRef> = patches(&h.commands)
        .into_iter()
        .filter(|x| x.2 == executor_done())
        .map(|x| x.1)
        .collect();
    assert_eq!(
        done,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()],
        "3 patch_pod_executor_done calls"
    );
    assert!(reports(&h.commands).is_empty());
}
