//! Decisions under the faults a real host and cluster bring (`docs/decisions.md`, "Through
//! chaos"): a host clock that steps either way, a stall that ends by itself, a scheduler that
//! dies with pods it could not clean up, a peer that is stale but not declared dead, and a pod
//! created while the watch was down and deleted before anyone saw it.
mod support;

use podwarden::adoption::AdoptionScope;
use podwarden::command::ApiCall;
use podwarden::db::{DbOutcome, TaskState};
use podwarden::liveness::JobState;
use podwarden::{
    ApiOutcome, CommandKind, Config, EventType, PodPhase, PodView, TaskKey, Timestamp,
};
use support::*;

/// Heartbeat rows where `5` (us) and `7` move with our clock.
fn beat(h: &mut Harness, rows: &[(&str, JobState)]) -> Vec<podwarden::Command> {
    let t = h.now.0;
    let records: Vec<(&str, JobState, u64)> = rows.iter().map(|(id, s)| (*id, *s, t)).collect();
    h.heartbeats(&records)
}

/// Fifteen minutes back (the harness starts at 1,000 s): before, the executor clamped time and
/// created nothing until its host clock caught up; now it keeps creating one pod per loop, and its health names the step for a
/// threshold (30 s).
#[test]
fn a_host_clock_step_back_neither_freezes_launches_nor_goes_unnoticed() {
    let mut h = Harness::new(Config::default());
    let keys: Vec<TaskKey> = (0..6).map(|i| key(&format!("t{i}"))).collect();
    let mut created = 0;
    for k in &keys {
        let out = h.submit(k);
        created += usize::from(created_pod(&out).is_some());
        // The API server answers each create (a loop creates one pod at a time, each after
        // the previous create's answer).
        h.ack_all(&out);
    }
    assert_eq!(created, 1, "one create per loop");
    assert!(h.ex.health(h.now).is_healthy());
    h.now = Timestamp(h.now.0 - 900_000);
    // The host's loop drives the executor with its stepped clock (here with a heartbeat read).
    let mut out = beat(&mut h, &[("5", JobState::Running)]);
    out.extend(h.advance(1_000));
    let health = h.ex.health(h.now);
    assert!(health.reasons.clock_step, "{health:?}");
    assert!(!health.reasons.not_driven);
    h.ack_all(&out);
    let mut cmds = out;
    for _ in 0..4 {
        let out = h.advance(1_000);
        h.ack_all(&out);
        cmds.extend(out);
    }
    let creates = cmds
        .iter()
        .filter(|c| matches!(c.kind, CommandKind::Api(ApiCall::CreatePod { .. })))
        .count();
    assert_eq!(creates, 5, "launches go on at one per loop after the step");
    h.advance(31_000);
    assert!(
        !h.ex.health(h.now).reasons.clock_step,
        "named for a threshold only"
    );
    // A deadline handed to the host is on the host's (stepped) clock.
    let due = h.ex.poll_timeout().expect("a timer");
    assert!(due.0 < 1_000_000, "{due:?} is on the host's clock");
}

/// An hour forward between two reads 5 s apart does not make a peer whose heartbeat did not
/// move in those 5 s dead (the thrash of a clock jump), and does not use up time budgets.
#[test]
fn a_host_clock_jump_forward_does_not_make_live_peers_dead() {
    let mut h = Harness::new(Config::default());
    for _ in 0..7 {
        beat(
            &mut h,
            &[("5", JobState::Running), ("7", JobState::Running)],
        );
        h.advance(5_000);
    }
    let seven_at = h.now.0 - 5_000;
    h.now = Timestamp(h.now.0 + 3_600_000);
    let t = h.now.0;
    h.heartbeats(&[
        ("5", JobState::Running, t),
        ("7", JobState::Running, seven_at),
    ]);
    assert_eq!(h.ex.alive_peers(), Some(vec!["7".to_string()]));
    assert!(h.ex.health(h.now).reasons.clock_step);
}

/// A stall (no heartbeat read for longer than half the threshold) that ends by itself: the
/// reports of what happened meanwhile wait until a snapshot shows our own job still running;
/// if a peer declared us dead (and took our tries), they are dropped.
#[test]
fn after_a_stall_reports_wait_for_our_own_job_to_be_seen_running() {
    for (own, reported) in [(JobState::Running, true), (JobState::Failed, false)] {
        let mut h = Harness::new(Config::default());
        beat(
            &mut h,
            &[("5", JobState::Running), ("7", JobState::Running)],
        );
        let pod = h.launch(&key("t"));
        h.event(EventType::Added, &pod);
        // The loop stalls for 45 s: no heartbeat read, no drive.
        h.now = Timestamp(h.now.0 + 45_000);
        let out = h.event(
            EventType::Modified,
            &with_phase(pod.clone(), PodPhase::Succeeded, "12"),
        );
        assert_eq!(kinds(&out), ["DeletePod"], "the report waits");
        let out = beat(&mut h, &[("5", own), ("7", JobState::Running)]);
        assert_eq!(
            !reports(&out).is_empty(),
            reported,
            "own job {own:?}: {:?}",
            kinds(&out)
        );
        assert!(!h.ex.is_tracking(&key("t")));
    }
    // Airflow's behaviour: no fence.
    let mut h = Harness::new(Config {
        fence_reports_after_stall: false,
        ..Config::default()
    });
    beat(&mut h, &[("5", JobState::Running)]);
    let pod = h.launch(&key("t"));
    h.now = Timestamp(h.now.0 + 45_000);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "12"),
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
}

fn leftover(name: &str, owner: &str, key: &TaskKey, phase: PodPhase) -> PodView {
    let mut pod = worker_pod(name, key, phase);
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = "41".into();
    pod
}

/// A scheduler died while its clean-up of a failed, still-Pending pod kept failing: the pod is
/// left with a dead owner. With the completed-pod adoption, podwarden lists such pods too, asks
/// the DB which tries are unfinished, and takes (conditional relabel) and deletes only those
/// whose try is over; a try still unfinished (being handed over) is left alone.
#[test]
fn leftover_pods_of_a_dead_scheduler_are_taken_only_when_their_try_is_over() {
    let mut h = Harness::new(Config::default());
    let out = beat(&mut h, &[("5", JobState::Running), ("9", JobState::Failed)]);
    assert_eq!(kinds(&out), ["ListPods", "ListPods"]);
    let leftover_list = out
        .iter()
        .find(|c| {
            matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. })
                if f.to_string() == "status.phase!=Succeeded")
        })
        .expect("the leftover list")
        .id;
    let (over, running) = (key("over"), key("running"));
    let out = h.answer(
        leftover_list,
        ApiOutcome::Listed {
            pods: vec![
                main_waiting(
                    leftover("left", "9", &over, PodPhase::Pending),
                    "ErrImagePull",
                    None,
                ),
                leftover("handed-over", "9", &running, PodPhase::Running),
            ],
            resource_version: "50".into(),
        },
    );
    assert_eq!(kinds(&out), ["QueryUnfinishedTasks"]);
    let out = h.answer_db(
        out[0].id,
        DbOutcome::UnfinishedTasks {
            tasks: vec![running.clone()],
        },
    );
    assert_eq!(
        kinds(&out),
        ["PatchLabels"],
        "only the pod of the try that is over"
    );
    let CommandKind::Api(ApiCall::PatchLabels {
        pod, precondition, ..
    }) = &out[0].kind
    else {
        unreachable!()
    };
    assert_eq!(pod.name, "left");
    assert!(precondition.is_some(), "conditional, as any adoption");
    let out = h.answer(out[0].id, ApiOutcome::Ok);
    assert_eq!(kinds(&out), ["DeletePod"]);
    // Airflow's adoption lists Succeeded pods only.
    let mut h = Harness::new(Config {
        adopt_leftover_pods: false,
        ..Config::default()
    });
    let out = beat(&mut h, &[("5", JobState::Running), ("9", JobState::Failed)]);
    assert_eq!(kinds(&out), ["ListPods"]);
}

/// A peer whose heartbeat is stale but whose job row still says running may be a scheduler
/// whose stall is about to end: its completed pods wait until a hand-over declares it dead
/// (`declared_dead`). Airflow's `dead_only` takes them at once.
#[test]
fn a_stale_peer_keeps_its_completed_pods_until_it_is_declared_dead() {
    for (scope, taken) in [
        (AdoptionScope::DeclaredDead, false),
        (AdoptionScope::DeadOnly, true),
    ] {
        let mut h = Harness::new(Config {
            adoption_scope: scope,
            adopt_leftover_pods: false,
            ..Config::default()
        });
        let t0 = h.now.0;
        for _ in 0..8 {
            let t = h.now.0;
            let mut out =
                h.heartbeats(&[("5", JobState::Running, t), ("9", JobState::Running, t0)]);
            out.extend(h.advance(5_000));
            h.ack_all(&out);
        }
        let list = next_completed_list(&mut h, t0);
        let pod = leftover("done", "9", &key("d"), PodPhase::Succeeded);
        let out = h.answer(
            list,
            ApiOutcome::Listed {
                pods: vec![pod],
                resource_version: "60".into(),
            },
        );
        assert_eq!(
            kinds(&out).contains(&"PatchLabels"),
            taken,
            "{scope:?}: {:?}",
            kinds(&out)
        );
    }
}

/// Fires timers until a completed-pod list goes out, keeping heartbeats regular (9's stays at
/// `stale_at`).
fn next_completed_list(h: &mut Harness, stale_at: u64) -> podwarden::CommandId {
    loop {
        let t = h.now.0;
        let mut out = h.heartbeats(&[
            ("5", JobState::Running, t),
            ("9", JobState::Running, stale_at),
        ]);
        out.extend(h.advance(5_000));
        if let Some(c) = out.iter().find(|c| {
            matches!(&c.kind, CommandKind::Api(ApiCall::ListPods { field_selector: Some(f), .. })
                if f.to_string() == "status.phase=Succeeded")
        }) {
            return c.id;
        }
        h.ack_all(&out);
    }
}

/// A pod created while the watch was down and deleted before the watch saw it: the relist that
/// follows does not list it, and its try is decided as a deletion before start (the DB is
/// asked) instead of waiting for a pod that is gone.
#[test]
fn a_created_pod_missing_from_a_relist_is_decided_though_never_seen() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let cmds = h.submit_until_created(&k);
    h.ack_all(&cmds);
    let out = h.input(
        "watch expired".into(),
        podwarden::Input::WatchExpired { namespace: None },
    );
    let relist = first(&out, "ListPods").id;
    let out = h.answer(
        relist,
        ApiOutcome::Listed {
            pods: vec![],
            resource_version: "9".into(),
        },
    );
    assert!(
        kinds(&out).contains(&"QueryTaskStates"),
        "{:?}",
        kinds(&out)
    );
    let out = h.answer_state_of(&out, Some(TaskState::Queued));
    assert_eq!(kinds(&out)[0], "Requeue");
}
