//! The core decisions (`docs/decisions.md`): peer liveness, own health, adoption, pre-execution
//! requeue, zombie sweep, pending timeout and revoke, one test per rule.
mod support;

use podwarden::adoption::AdoptionScope;
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::{JobState, LivenessRule};
use podwarden::requeue::{RequeueCause, RequeueDedupe, LAUNCH_ATTEMPT_ANNOTATION};
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, Input, PodPhase, PodView, Precondition,
    ReportedState, TaskKey, Timestamp,
};
use support::*;

const T0: u64 = 1_000_000;

fn completed_pod(name: &str, owner: &str, key: &TaskKey) -> PodView {
    let mut pod = worker_pod(name, key, PodPhase::Succeeded);
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = "77".into();
    pod
}

/// Fires the next completed-pod adoption (the interval is 300 s) and returns its commands.
fn next_adoption(h: &mut Harness) -> Vec<podwarden::Command> {
    h.advance(300_000)
}

// ---- liveness ------------------------------------------------------------------------------

#[test]
fn liveness_observed_change_keeps_a_skewed_peer_alive() {
    // Peer 7's clock runs 40 s behind ours; it heartbeats every 5 s.
    for (rule, want) in [
        (
            LivenessRule::ObservedChange,
            "kubernetes_executor=True,airflow-worker notin (5,7),airflow_executor_done!=True",
        ),
        (
            LivenessRule::WrittenTimestamp,
            "kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True",
        ),
    ] {
        let mut h = Harness::new(Config {
            scheduler_liveness_rule: rule,
            ..Config::default()
        });
        for i in 0..3u64 {
            let out = h.heartbeats(&[
                ("5", JobState::Running, T0 + i * 5_000),
                ("7", JobState::Running, T0 + i * 5_000 - 40_000),
            ]);
            // The first snapshot releases the adoption that waited for it: answer its list.
            if i == 0 {
                h.answer(
                    first(&out, "ListPods").id,
                    ApiOutcome::Listed {
                        pods: vec![],
                        resource_version: "2".into(),
                    },
                );
            }
            h.advance(5_000);
        }
        let adoption = next_adoption(&mut h);
        assert_eq!(list_selector(&adoption).0, want, "{rule:?}");
    }
}

#[test]
fn liveness_stalled_peer_is_dead_after_the_threshold() {
    let mut h = Harness::new(Config::default());
    h.heartbeats(&[("5", JobState::Running, T0), ("7", JobState::Running, T0)]);
    // We read every 5 s; 7's heartbeat value does not change for 30 s, then 31 s.
    for t in (5_000..=30_000).step_by(5_000) {
        h.advance(5_000);
        h.heartbeats(&[
            ("5", JobState::Running, T0 + t),
            ("7", JobState::Running, T0),
        ]);
    }
    assert_eq!(h.ex.alive_peers(), Some(vec!["7".to_string()]));
    h.advance(1_000);
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Running, T0),
    ]);
    assert_eq!(h.ex.alive_peers(), Some(vec![]));
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Running, T0 + 31_000),
    ]);
    assert_eq!(h.ex.alive_peers(), Some(vec!["7".to_string()]));
    h.heartbeats(&[
        ("5", JobState::Running, T0 + 31_000),
        ("7", JobState::Failed, T0 + 32_000),
    ]);
    assert_eq!(
        h.ex.alive_peers(),
        Some(vec![]),
        "a failed job is dead whatever its heartbeat"
    );
}

// ---- own health ----------------------------------------------------------------------------

#[test]
fn health_reports_a_loop_that_is_not_driven() {
    let h = Harness::new(Config::default());
    let now = h.now;
    assert!(h.ex.health(now.plus_ms(30_000)).is_healthy());
    let health = h.ex.health(now.plus_ms(30_001));
    assert!(health.reasons.not_driven && !health.is_healthy());
    assert_eq!(health.idle_ms, 30_001);
}

#[test]
fn health_reports_a_stalled_watch_while_pods_are_tracked() {
    let mut h = Harness::new(Config {
        health_watch_stall_threshold: 60.0,
        ..Config::default()
    });
    h.launch(&key("t"));
    for _ in 0..6 {
        h.advance(10_000);
        h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    }
    let health = h.ex.health(h.now.plus_ms(1));
    assert!(
        health.reasons.watch_stalled && !health.reasons.not_driven,
        "{health:?}"
    );
    h.input(
        "bookmark".into(),
        Input::Watch {
            event: podwarden::WatchEvent::Bookmark {
                resource_version: "99".into(),
            },
        },
    );
    assert!(h.ex.health(h.now).is_healthy());
}

#[test]
fn health_reports_a_launch_backlog_that_makes_no_progress() {
    let mut h = Harness::new(Config {
        task_publish_max_retries: -1,
        ..Config::default()
    });
    let cmds = h.submit(&key("t"));
    // The API server rate-limits for ten minutes.
    h.fail(
        first(&cmds, "CreatePod").id,
        429,
        "TooManyRequests",
        "",
        Some(600),
    );
    h.advance(20_000);
    h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    assert!(h.ex.health(h.now).is_healthy());
    h.advance(11_000);
    h.heartbeats(&[("5", JobState::Running, h.now.0)]);
    let health = h.ex.health(h.now);
    assert!(
        health.reasons.launch_stalled && !health.reasons.not_driven,
        "{health:?}"
    );
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
    let CommandKind::PatchLabels {
        labels: l,
        precondition,
        ..
    } = &out[0].kind
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
        .filter(|c| matches!(&c.kind, CommandKind::ListPods { field_selector: Some(f), .. } if f == "status.phase=Succeeded"))
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
        .find(|cmd| matches!(&cmd.kind, CommandKind::ListPods { field_selector: Some(f), .. } if f == "status.phase!=Succeeded"))
        .expect("orphan list");
    let CommandKind::ListPods { label_selector, .. } = &list.kind else {
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
            CommandKind::OrphansResolved { adopted, reset } => {
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
        .find(|c| matches!(&c.kind, CommandKind::ListPods { field_selector: Some(f), .. } if f == "status.phase!=Succeeded"))
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
            CommandKind::PatchLabels { pod, .. } => Some(pod.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        patched,
        ["pod-2"],
        "the old pod's failure was already answered"
    );
}

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
        .filter(|c| matches!(c.kind, CommandKind::Requeue { .. }))
        .collect();
    assert_eq!(requeues.len(), 1, "{:?}", kinds(&all));
    let CommandKind::Requeue { attempt, cause, .. } = &requeues[0].kind else {
        unreachable!()
    };
    assert_eq!(
        (*attempt, cause),
        (1, &RequeueCause::Disruption("EvictionByEvictionAPI".into()))
    );
    assert!(reports(&all).is_empty(), "no user retry consumed");
    let next = h.advance(1_000);
    let CommandKind::CreatePod { manifest } = &first(&next, "CreatePod").kind else {
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
        .filter(|c| matches!(c.kind, CommandKind::Requeue { .. }))
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
        .find(|c| matches!(&c.kind, CommandKind::ListPods { field_selector: Some(f), .. } if f == "status.phase!=Succeeded"))
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
fn revoke_frees_the_try_and_removes_its_pod() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.input(format!("revoke {k}"), Input::Revoke { key: k.clone() });
    assert_eq!(kinds(&out), ["PatchLabels", "DeletePod"]);
    let CommandKind::PatchLabels { labels: l, .. } = &out[0].kind else {
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
        let CommandKind::Requeue { cause, .. } = &first(&out, "Requeue").kind else {
            unreachable!()
        };
        assert_eq!(cause, &RequeueCause::ImagePull("ErrImagePull".into()));
    }
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
        !out.iter().any(|c| matches!(&c.kind, CommandKind::ListPods { label_selector, .. } if label_selector.to_string() == "kubernetes_pod_operator=True"))
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
            CommandKind::DeletePod {
                pod,
                grace_period_seconds,
            } => Some((pod.name.clone(), *grace_period_seconds)),
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
    let CommandKind::Requeue { cause, .. } = &first(&out, "Requeue").kind else {
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
