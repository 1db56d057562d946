//! Pre-execution requeue: the DB question, the budget, replays, failover, and pods failed
//! while Pending.

use podwarden::command::{ApiCall, Notice};
use podwarden::db::{DbOutcome, TaskState};
use podwarden::reason::{DisruptionReason, ImagePullReason};
use podwarden::requeue::{RequeueCause, RequeueDedupe, LAUNCH_ATTEMPT_ANNOTATION};
use podwarden::{ApiOutcome, CommandKind, Config, EventType, PodPhase, PodView};

use crate::support::*;

// ---- pre-execution requeue -----------------------------------------------------------------

/// The SIGTERM sequence of a pod drained before its task started.
fn sigterm_sequence(pod: &PodView) -> [(EventType, PodView); 3] {
    let terminating = disrupted(
        deleting(with_phase(pod.clone(), PodPhase::Pending, "20")),
        "EvictionByEvictionAPI",
    );
    let failed = main_terminated(
        with_phase(terminating.clone(), PodPhase::Failed, "21"),
        "ContainerStatusUnknown",
        137,
        false,
    );
    let mut gone = failed.clone();
    gone.resource_version = "22".into();
    [
        (EventType::Modified, failed.clone()),
        (EventType::Modified, failed),
        (EventType::Deleted, gone),
    ]
}

#[test]
fn sigterm_failed_events_requeue_once() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let mut all = Vec::new();
    for (kind, p) in sigterm_sequence(&pod) {
        let out = h.event(kind, &p);
        if kinds(&out).contains(&"QueryTaskStates") {
            all.extend(h.answer_state_of(&out, Some(TaskState::Queued)));
        }
        all.extend(out);
    }
    let requeues: Vec<_> = all
        .iter()
        .filter(|c| matches!(c.kind, CommandKind::Notice(Notice::Requeue { .. })))
        .collect();
    assert_eq!(requeues.len(), 1, "{:?}", kinds(&all));
    let CommandKind::Notice(Notice::Requeue { attempt, cause, .. }) = &requeues[0].kind else {
        unreachable!()
    };
    assert_eq!(
        (*attempt, cause),
        (
            1,
            &RequeueCause::Disruption(DisruptionReason::EvictionByEvictionAPI)
        )
    );
    assert!(reports(&all).is_empty(), "no user retry consumed");
    let next = h.advance(1_000);
    let CommandKind::Api(ApiCall::CreatePod { manifest }) = &first(&next, "CreatePod").kind else {
        unreachable!()
    };
    assert_ne!(manifest.pod.name, pod.name, "a new pod for the same try");
    assert_eq!(manifest.annotations[LAUNCH_ATTEMPT_ANNOTATION], "1");
    assert_eq!(manifest.annotations["try_number"], "1");
}

#[test]
fn requeue_asks_the_db_and_fails_normally_unless_queued() {
    for (answer, requeued) in [
        (
            DbOutcome::TaskStates {
                states: vec![(key("t"), Some(TaskState::Queued))],
            },
            true,
        ),
        (
            DbOutcome::TaskStates {
                states: vec![(key("t"), Some(TaskState::Running))],
            },
            false,
        ),
        (DbOutcome::TaskStates { states: vec![] }, false),
    ] {
        let mut h = Harness::new(Config::default());
        let pod = h.launch(&key("t"));
        let out = h.event(EventType::Modified, &prestart_failed(pod));
        assert_eq!(
            kinds(&out),
            ["PatchLabels", "QueryTaskStates"],
            "the kept pod is labelled done; no decision before the answer"
        );
        let label = out[0].id;
        let out = h.answer_db(out[1].id, answer.clone());
        if requeued {
            // The requeue is announced once the failure is marked on the pod (its done label
            // confirmed): a scheduler dying in between leaves an unmarked failure, which its
            // adopter requeues once, not a requeue that never happened.
            assert!(
                out.is_empty(),
                "waits for the done label: {:?}",
                kinds(&out)
            );
            let out = h.answer(label, ApiOutcome::Ok);
            assert_eq!(kinds(&out), ["Requeue"]);
        } else {
            assert_eq!(kinds(&out), ["Report"], "{answer:?}");
        }
    }
}

/// The DB cannot say whether the try is still QUEUED: podwarden asks again (1 s, 2 s, … 60 s)
/// for `pod_launch_failure_db_retry_timeout` (600 s), and requeues if the answer comes in time;
/// past it the try fails with a reason that says the DB was down. With `0`, it fails at once.
#[test]
fn requeue_asks_the_db_again_while_it_is_down_then_fails_naming_the_outage() {
    let down = || DbOutcome::Unavailable {
        reason: "db down".into(),
    };
    // Fires timers until the question is asked again.
    let asked_again = |h: &mut Harness| loop {
        let due = h.ex.poll_timeout().expect("asked again later");
        let out = h.advance(due.since(h.now));
        if kinds(&out).contains(&"QueryTaskStates") {
            return out;
        }
    };
    // The DB comes back after two minutes: requeued, no user retry spent.
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&key("t"));
    let mut pending = h.event(EventType::Modified, &prestart_failed(pod.clone()));
    h.ack_all(&pending);
    let start = h.now;
    while h.now.since(start) < 120_000 {
        let query = first(&pending, "QueryTaskStates").id;
        assert!(h.answer_db(query, down()).is_empty(), "no decision yet");
        pending = asked_again(&mut h);
    }
    let out = h.answer_state_of(&pending, Some(TaskState::Queued));
    assert_eq!(kinds(&out), ["Requeue", "CreatePod"]);
    assert!(reports(&h.commands).is_empty());

    // The DB stays down: the try fails once the window is over, naming the outage.
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&key("t"));
    let out = h.event(EventType::Modified, &prestart_failed(pod));
    let mut query = out[1].id;
    let out = loop {
        let out = h.answer_db(query, down());
        if !out.is_empty() {
            break out;
        }
        query = first(&asked_again(&mut h), "QueryTaskStates").id;
    };
    assert_eq!(kinds(&out), ["Report"]);
    let reason = reports(&out)[0].2.clone().unwrap_or_default();
    assert!(
        reason.contains("metadata DB could not be asked"),
        "{reason}"
    );
    assert!(reason.contains("unreachable for 6"), "{reason}");

    // Airflow's behaviour: no second question.
    let mut h = Harness::new(Config {
        pod_launch_failure_db_retry_timeout: 0.0,
        ..Config::default()
    });
    let pod = h.launch(&key("t"));
    let out = h.event(EventType::Modified, &prestart_failed(pod));
    assert_eq!(kinds(&h.answer_db(out[1].id, down())), ["Report"]);
}

#[test]
fn requeue_budget_is_bounded_and_then_fails() {
    let mut h = Harness::new(Config {
        pod_launch_failure_retries: 2,
        ..Config::default()
    });
    let k = key("t");
    let mut pod = h.launch(&k);
    for attempt in 1..=2u32 {
        let out = h.event(EventType::Modified, &prestart_failed(pod.clone()));
        let out = h.answer_state_of(&out, Some(TaskState::Queued));
        assert_eq!(kinds(&out), ["Requeue"]);
        let next = h.advance(1_000);
        h.ack_all(&next);
        pod = created_pod(&next).expect("relaunched");
        assert_eq!(
            pod.annotations[LAUNCH_ATTEMPT_ANNOTATION],
            attempt.to_string()
        );
    }
    // Budget of 2 used up: the try fails without asking the DB.
    let out = h.event(EventType::Modified, &prestart_failed(pod));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert!(!h.ex.is_tracking(&k));
}

#[test]
fn requeue_off_and_excluded_reasons_skip_the_db() {
    let mut h = Harness::new(Config {
        pod_launch_failure_retries: 0,
        ..Config::default()
    });
    let pod = h.launch(&key("t"));
    let out = h.event(EventType::Modified, &prestart_failed(pod));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&key("t"));
    let out = h.event(
        EventType::Modified,
        &main_terminated(with_phase(pod, PodPhase::Failed, "11"), "Error", 1, true),
    );
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "Error is the task's own failure"
    );
}

#[test]
fn replayed_failure_of_an_older_pod_never_requeues_again() {
    let mut h = Harness::new(Config {
        pod_launch_failure_retries: 3,
        ..Config::default()
    });
    let k = key("t");
    let pod_a = h.launch(&k);
    let failed_a = prestart_failed(pod_a);
    let out = h.event(EventType::Modified, &failed_a);
    h.answer_state_of(&out, Some(TaskState::Queued));
    let next = h.advance(1_000);
    h.ack_all(&next);
    let pod_b = created_pod(&next).unwrap();
    let out = h.event(EventType::Modified, &prestart_failed(pod_b));
    h.answer_state_of(&out, Some(TaskState::Queued));
    // A watch restart replays pod A's failure while the try waits for its third pod.
    let out = h.event(EventType::Added, &failed_a);
    assert!(out.is_empty(), "{:?}", kinds(&out));
    let requeues = h
        .commands
        .iter()
        .filter(|c| matches!(c.kind, CommandKind::Notice(Notice::Requeue { .. })))
        .count();
    assert_eq!(requeues, 2);
}

#[test]
fn legacy_last_pod_dedupe_requeues_a_replayed_older_pod_again() {
    let cfg = Config {
        pod_launch_failure_retries: 3,
        pod_launch_failure_dedupe: RequeueDedupe::LastPod,
        label_kept_failed_pods_done: false,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    let k = key("t");
    let pod_a = h.launch(&k);
    let failed_a = prestart_failed(pod_a);
    let out = h.event(EventType::Modified, &failed_a);
    h.answer_state_of(&out, Some(TaskState::Queued));
    let next = h.advance(1_000);
    h.ack_all(&next);
    let pod_b = created_pod(&next).unwrap();
    let out = h.event(EventType::Modified, &prestart_failed(pod_b));
    h.answer_state_of(&out, Some(TaskState::Queued));
    let out = h.event(EventType::Added, &failed_a);
    let out = h.answer_state_of(&out, Some(TaskState::Queued));
    assert_eq!(
        kinds(&out),
        ["Requeue"],
        "Airflow's bug: pod A counted twice"
    );
}

#[test]
fn requeue_budget_continues_after_a_failover() {
    // Scheduler 7 adopts a try whose pod was launched after one requeue by dead scheduler 1.
    let mut h = Harness::with_id(
        Config {
            pod_launch_failure_retries: 1,
            ..Config::default()
        },
        "7",
    );
    let k = key("t");
    let out = h.adopt_orphans(&[(k.clone(), Some("1"))]);
    let list = out
        .iter()
        .find(|c| matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. }) if f.to_string() == "status.phase!=Succeeded"))
        .unwrap()
        .id;
    let mut pod = worker_pod("pod-2", &k, PodPhase::Pending);
    pod.labels.insert("airflow-worker".into(), "1".into());
    pod.annotations
        .insert(LAUNCH_ATTEMPT_ANNOTATION.into(), "1".into());
    let out = h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![pod.clone()],
            resource_version: "5".into(),
        },
    );
    h.answer(first(&out, "PatchLabels").id, ApiOutcome::Ok);
    assert!(h.ex.is_tracking(&k));
    pod.labels.insert("airflow-worker".into(), "7".into());
    let out = h.event(EventType::Modified, &prestart_failed(pod));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "the one requeue was used before the failover"
    );
}

#[test]
fn a_pod_failed_while_pending_is_deleted_whatever_the_options() {
    for cfg in [
        Config::default(),
        Config {
            delete_worker_pods: false,
            ..Config::default()
        },
    ] {
        let mut h = Harness::new(cfg);
        let pod = h.launch(&key("t"));
        let out = h.event(
            EventType::Modified,
            &main_waiting(pod, "ErrImagePull", Some("not found")),
        );
        assert_eq!(
            kinds(&out),
            ["DeletePod", "QueryTaskStates"],
            "its kubelet could still start it"
        );
        let out = h.answer_state_of(&out, Some(TaskState::Queued));
        let CommandKind::Notice(Notice::Requeue { cause, .. }) = &first(&out, "Requeue").kind
        else {
            unreachable!()
        };
        assert_eq!(
            cause,
            &RequeueCause::ImagePull(ImagePullReason::ErrImagePull)
        );
    }
}
