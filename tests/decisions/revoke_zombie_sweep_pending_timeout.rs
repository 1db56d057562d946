//! Revoke, the zombie sweep of operator pods, and the pending timeout.

use podwarden::command::{ApiCall, Notice};
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::JobState;
use podwarden::requeue::RequeueCause;
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, Input, PodPhase, PodView, ReportedState, TaskKey,
    Timestamp,
};

use crate::support::*;
use crate::T0;

#[test]
fn revoke_frees_the_try_and_removes_its_pod() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.input(format!("revoke {k}"), Input::Revoke { key: k.clone() });
    assert_eq!(kinds(&out), ["PatchLabels", "DeletePod"]);
    let CommandKind::Api(ApiCall::PatchLabels { labels: l, .. }) = &out[0].kind else {
        unreachable!()
    };
    assert_eq!(l, &labels(&[("airflow_pod_revoked", "True")]));
    assert!(!h.ex.is_tracking(&k));
    h.ack_all(&out);
    let mut revoked = with_phase(pod, PodPhase::Failed, "30");
    revoked
        .labels
        .insert("airflow_pod_revoked".into(), "True".into());
    assert!(h.event(EventType::Modified, &revoked).is_empty());
    assert!(h.event(EventType::Deleted, &deleting(revoked)).is_empty());
    assert_eq!(h.ex.state_size().pods, 0);
    assert_eq!(h.ex.state_size().tasks, 0);
}

// ---- zombie sweep --------------------------------------------------------------------------

fn kpo_pod(name: &str, key: &TaskKey, created_s: u64) -> PodView {
    let mut pod = PodView::new("default", name);
    pod.labels = key.to_labels();
    pod.labels
        .insert("kubernetes_pod_operator".into(), "True".into());
    pod.phase = Some(PodPhase::Running);
    pod.creation_timestamp = Some(Timestamp(created_s * 1000));
    pod
}

#[test]
fn zombie_sweep_is_off_by_default() {
    let mut h = Harness::new(Config::default());
    h.heartbeats(&[("5", JobState::Running, T0)]);
    let out = h.advance(3_600_000);
    assert!(
        !out.iter().any(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { label_selector, .. }) if label_selector.to_string() == "kubernetes_pod_operator=True"))
    );
}

#[test]
fn zombie_sweep_force_deletes_only_pods_of_no_unfinished_try() {
    let cfg = Config {
        kpo_zombie_pod_cleanup_enabled: true,
        kpo_zombie_pod_cleanup_max_deletes_per_loop: 2,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    let out = h.advance(300_000);
    let (sel, _) = list_selector(&out);
    assert_eq!(sel, "kubernetes_pod_operator=True");
    let active = TaskKey::new("dag", "kpo", "run", 2);
    let pods = vec![
        kpo_pod("current", &active, 30),
        kpo_pod("old-try", &TaskKey::new("dag", "kpo", "run", 1), 20),
        kpo_pod("finished", &TaskKey::new("dag", "done", "run", 1), 10),
        kpo_pod("finished-too", &TaskKey::new("dag", "done2", "run", 1), 40),
    ];
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods,
            resource_version: "3".into(),
        },
    );
    assert_eq!(kinds(&out), ["QueryUnfinishedTasks"]);
    // Unavailable DB: nothing is deleted.
    let none = h.answer_db(
        out[0].id,
        DbOutcome::Unavailable {
            reason: "down".into(),
        },
    );
    assert!(none.is_empty());
    let out = h.advance(300_000);
    let pods = vec![
        kpo_pod("current", &active, 30),
        kpo_pod("old-try", &TaskKey::new("dag", "kpo", "run", 1), 20),
        kpo_pod("finished", &TaskKey::new("dag", "done", "run", 1), 10),
        kpo_pod("finished-too", &TaskKey::new("dag", "done2", "run", 1), 40),
    ];
    let out = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods,
            resource_version: "4".into(),
        },
    );
    let out = h.answer_db(
        out[0].id,
        DbOutcome::UnfinishedTasks {
            tasks: vec![active],
        },
    );
    let deleted: Vec<(String, Option<u32>)> = out
        .iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::DeletePod {
                pod,
                grace_period_seconds,
            }) => Some((pod.name.clone(), *grace_period_seconds)),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        [
            ("finished".to_string(), Some(0)),
            ("old-try".to_string(), Some(0))
        ],
        "oldest first, capped at 2"
    );
}

// ---- pending timeout -----------------------------------------------------------------------

#[test]
fn pending_timeout_is_off_by_default() {
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&key("t"));
    h.event(
        EventType::Modified,
        &main_waiting(pod, "ImagePullBackOff", None),
    );
    assert!(!kinds(&h.advance(3_600_000)).contains(&"DeletePod"));
}

#[test]
fn pending_timeout_deletes_the_pod_and_decides_for_the_try() {
    let cfg = Config {
        worker_pods_pending_timeout: 300.0,
        worker_pods_pending_timeout_check_interval: 60.0,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    let k = key("t");
    let pod = h.launch(&k);
    h.event(
        EventType::Modified,
        &main_waiting(pod, "ImagePullBackOff", None),
    );
    assert!(!kinds(&h.advance(299_000)).contains(&"DeletePod"));
    let out = h.advance(61_000);
    assert_eq!(kinds(&out)[..2], ["DeletePod", "QueryTaskStates"]);
    let out = h.answer_state_of(&out, Some(TaskState::Queued));
    let CommandKind::Notice(Notice::Requeue { cause, .. }) = &first(&out, "Requeue").kind else {
        unreachable!()
    };
    assert_eq!(
        cause,
        &RequeueCause::PendingTimeout("ImagePullBackOff".into())
    );

    // When the budget is used up, the try fails with the cause.
    let mut h = Harness::new(Config {
        worker_pods_pending_timeout: 300.0,
        pod_launch_failure_retries: 0,
        ..Config::default()
    });
    let pod = h.launch(&k);
    h.event(
        EventType::Modified,
        &main_waiting(pod, "ImagePullBackOff", None),
    );
    let out = h.advance(420_000);
    let r = reports(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, ReportedState::Failed);
    assert_eq!(
        r[0].2.as_deref(),
        Some("Pod pending longer than worker_pods_pending_timeout: pending ImagePullBackOff, task process never started")
    );
}
