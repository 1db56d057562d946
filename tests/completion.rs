//! The completion path (`airflow-executor.md` §3, `docs/decisions.md`), one test per step.
mod support;

use podwarden::command::{ApiCall, Notice};
use podwarden::{ApiOutcome, CommandKind, Config, EventType, PodPhase, ReportedState, StateSize};
use support::*;

fn empty() -> StateSize {
    StateSize::default()
}

#[test]
fn step4_succeeded_pod_is_deleted_then_reported() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    assert_eq!(
        kinds(&out),
        ["DeletePod", "Report"],
        "dispose first, then report (Airflow's order)"
    );
    assert!(
        matches!(&out[0].kind, CommandKind::Api(ApiCall::DeletePod { pod: p, grace_period_seconds: None }) if p.name == pod.name)
    );
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}

#[test]
fn step4_failed_pod_is_kept_and_labelled_done_under_the_defaults() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let failed = main_terminated(with_phase(pod, PodPhase::Failed, "11"), "Error", 1, true);
    let out = h.event(EventType::Modified, &failed);
    // Differs on purpose: Airflow makes no call for a kept failed pod.
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert!(matches!(
        &out[0].kind,
        CommandKind::Api(ApiCall::PatchLabels { labels: l, .. }) if *l == labels(&[("airflow_executor_done", "True")])
    ));
    h.ack_all(&out);
    // The label takes the pod out of the watch selector: a DELETED without deletionTimestamp.
    let mut left = failed.clone();
    left.resource_version = "12".into();
    h.event(EventType::Deleted, &left);
    assert_eq!(
        h.ex.state_size(),
        empty(),
        "nothing left once the kept pod leaves the watch"
    );
}

#[test]
fn step4_airflow_leaves_a_kept_failed_pod_unlabelled() {
    let mut h = Harness::new(Config {
        label_kept_failed_pods_done: false,
        ..Config::default()
    });
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &main_terminated(with_phase(pod, PodPhase::Failed, "11"), "Error", 1, true),
    );
    assert_eq!(kinds(&out), ["Report"]);
    assert_eq!(h.ex.state_size(), empty(), "no call, nothing left to do");
}

#[test]
fn step4_delete_worker_pods_on_failure_deletes_failed_pods() {
    let mut h = Harness::new(Config {
        delete_worker_pods_on_failure: true,
        ..Config::default()
    });
    let k = key("t");
    let pod = h.launch(&k);
    // The task's own failure (`Error` is excluded from requeue): reported at once.
    let failed = main_terminated(with_phase(pod, PodPhase::Failed, "11"), "Error", 1, true);
    let out = h.event(EventType::Modified, &failed);
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
}

#[test]
fn step4_without_delete_worker_pods_every_finished_pod_is_marked_done() {
    for phase in [PodPhase::Succeeded, PodPhase::Failed] {
        let mut h = Harness::new(Config {
            delete_worker_pods: false,
            delete_worker_pods_on_failure: true,
            ..Config::default()
        });
        let k = key("t");
        let pod = h.launch(&k);
        let mut finished = with_phase(pod.clone(), phase, "11");
        if phase == PodPhase::Failed {
            finished = main_terminated(finished, "Error", 1, true);
        }
        let out = h.event(EventType::Modified, &finished);
        assert_eq!(kinds(&out), ["PatchLabels", "Report"], "{phase:?}");
        let CommandKind::Api(ApiCall::PatchLabels {
            labels: l,
            precondition,
            ..
        }) = &out[0].kind
        else {
            unreachable!()
        };
        assert_eq!(l, &labels(&[("airflow_executor_done", "True")]));
        assert_eq!(precondition, &None);
        // The done label takes the pod out of our selector: DELETED without deletionTimestamp.
        h.ack_all(&out);
        assert!(h
            .event(EventType::Deleted, &with_phase(pod, phase, "12"))
            .is_empty());
        assert_eq!(h.ex.state_size(), empty(), "{phase:?}");
    }
}

#[test]
fn step4_delete_404_counts_as_done() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "11"),
    );
    let after = h.fail(out[0].id, 404, "NotFound", "pods \"x\" not found", None);
    assert!(after.is_empty());
    assert_eq!(h.ex.state_size(), empty());
    assert_eq!(h.ex.state_size().cleanup_retries, 0, "no retry scheduled");
}

#[test]
fn step4_failed_delete_retries_with_backoff_and_gives_up() {
    let mut h = Harness::new(Config {
        pod_cleanup_max_retries: 3,
        ..Config::default()
    });
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "11"),
    );
    let mut delete = out[0].id;
    let mut gaps = Vec::new();
    for _ in 0..3 {
        let start = h.now;
        assert!(
            h.fail(delete, 403, "Forbidden", "no", None).is_empty(),
            "never retried in the same call"
        );
        let due = h.ex.poll_timeout().expect("a retry is scheduled");
        gaps.push(due.since(start));
        let retry = h.advance(due.since(start));
        assert_eq!(kinds(&retry), ["DeletePod"]);
        delete = retry[0].id;
    }
    assert_eq!(gaps, [1000, 2000, 4000]);
    assert!(h.fail(delete, 500, "InternalError", "", None).is_empty());
    assert_eq!(
        h.ex.state_size().cleanup_retries,
        0,
        "gave up after pod_cleanup_max_retries"
    );
    assert_eq!(h.ex.state_size(), empty());
    assert_eq!(
        h.commands
            .iter()
            .filter(|c| matches!(c.kind, CommandKind::Notice(Notice::Report { .. })))
            .count(),
        1
    );
}

#[test]
fn step7_pod_of_an_untracked_try_is_disposed_but_not_reported() {
    // Airflow `test_change_state_key_not_in_running`: a restarted scheduler (same id) sees its
    // old pods on the start-up relist.
    let mut h = Harness::new(Config::default());
    let stray = worker_pod("old-pod", &key("gone"), PodPhase::Succeeded);
    let out = h.event(EventType::Added, &stray);
    assert_eq!(kinds(&out), ["DeletePod"]);
    // A failed one is kept, and labelled done so no other scheduler adopts it again.
    let failed = worker_pod("old-failed", &key("gone2"), PodPhase::Failed);
    let out = h.event(EventType::Added, &failed);
    assert_eq!(kinds(&out), ["PatchLabels"]);
}

#[test]
fn one_pod_yields_one_outcome_under_duplicate_events() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let done = with_phase(pod, PodPhase::Succeeded, "11");
    let first = h.event(EventType::Modified, &done);
    assert_eq!(kinds(&first), ["DeletePod", "Report"]);
    h.ack_all(&first);
    // Replays and the graceful-deletion sequence produce nothing more.
    assert!(h.event(EventType::Modified, &done).is_empty());
    assert!(h.event(EventType::Added, &done).is_empty());
    assert!(h
        .event(EventType::Modified, &deleting(done.clone()))
        .is_empty());
    assert!(h
        .event(EventType::Deleted, &deleting(done.clone()))
        .is_empty());
    assert_eq!(
        h.ex.state_size(),
        empty(),
        "the record goes with the DELETED event"
    );
}

#[test]
fn bookkeeping_is_freed_on_every_exit_path() {
    let cfg = Config::default();
    // success
    let mut h = Harness::new(cfg.clone());
    let pod = h.launch(&key("a"));
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    h.ack_all(&out);
    h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Succeeded, "12")),
    );
    assert_eq!(h.ex.state_size(), empty(), "success");
    // failure
    let pod = h.launch(&key("b"));
    let failed = main_terminated(with_phase(pod, PodPhase::Failed, "13"), "Error", 1, true);
    let out = h.event(EventType::Modified, &failed);
    h.ack_all(&out);
    let mut left = failed;
    left.resource_version = "13a".into();
    h.event(EventType::Deleted, &left);
    assert_eq!(h.ex.state_size(), empty(), "failure");
    // adoption away
    let pod = h.launch(&key("c"));
    h.event(
        EventType::Deleted,
        &with_phase(pod, PodPhase::Running, "14"),
    );
    assert_eq!(h.ex.state_size(), empty(), "adopted");
    // create rejected
    let cmds = h.submit_until_created(&key("d"));
    let create = cmds.last().unwrap().id;
    h.fail(create, 400, "BadRequest", "bad", None);
    assert_eq!(h.ex.state_size(), empty(), "create failed");
}

#[test]
fn create_timeout_that_fails_the_try_also_removes_the_maybe_created_pod() {
    let mut h = Harness::new(Config {
        pod_launch_failure_retries: 0,
        task_publish_retry_timeout: 0.0,
        ..Config::default()
    });
    let k = key("t");
    let cmds = h.submit(&k);
    let out = h.answer(
        cmds[0].id,
        ApiOutcome::Failed {
            failure: podwarden::ApiFailure::Timeout,
        },
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    let CommandKind::Notice(Notice::Report { reason, .. }) = &out[1].kind else {
        unreachable!()
    };
    assert_eq!(
        reason.as_deref(),
        Some("pod creation failed: request timed out")
    );
    h.fail(out[0].id, 404, "NotFound", "", None);
    assert_eq!(h.ex.state_size(), empty());
}

#[test]
fn a_late_create_error_after_the_watch_saw_the_pod_is_ignored() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let cmds = h.submit(&k);
    let pod = created_pod(&cmds).unwrap();
    assert!(h.event(EventType::Added, &pod).is_empty());
    let out = h.fail(cmds[0].id, 500, "InternalError", "", None);
    assert!(
        out.is_empty(),
        "the pod exists; nothing to retry or fail: {out:?}"
    );
    assert!(h.ex.is_tracking(&k));
}

#[test]
fn answers_are_checked() {
    let mut h = Harness::new(Config::default());
    let cmds = h.submit(&key("t"));
    let id = cmds[0].id;
    let wrong = h.try_input(
        "wrong".into(),
        podwarden::Input::ApiResult {
            id,
            outcome: ApiOutcome::Listed {
                pods: vec![],
                resource_version: "1".into(),
            },
        },
    );
    assert!(matches!(
        wrong,
        Err(podwarden::InputError::UnexpectedOutcome { .. })
    ));
    h.answer(id, ApiOutcome::Ok);
    let again = h.try_input(
        "again".into(),
        podwarden::Input::ApiResult {
            id,
            outcome: ApiOutcome::Ok,
        },
    );
    assert_eq!(again, Err(podwarden::InputError::UnknownCommand(id)));
    let dup = h.try_input(
        "dup".into(),
        podwarden::Input::Submit {
            key: key("t"),
            template: Default::default(),
        },
    );
    assert!(matches!(dup, Err(podwarden::InputError::DuplicateTask(_))));
}

/// Differs on purpose from Airflow: a create that keeps failing on a transient error (here a
/// timeout, with Airflow's counted budget `task_publish_max_retries = 0`) is a launch failure.
/// The task never started, so while the try is QUEUED it is requeued under a new pod name
/// instead of costing a user retry; the maybe-created pod is deleted either way, and the new pod
/// waits until that deletion is confirmed (two pods of one try must never both be able to
/// start). Swarm seeds 2203, 3801, 6994, 7660, 9402 and 9752 of `steady-ha` (an API partition
/// starting while a create is in flight) found this.
#[test]
fn create_that_keeps_timing_out_is_a_launch_failure_and_requeues_while_queued() {
    let mut h = Harness::new(Config {
        task_publish_retry_timeout: 0.0,
        ..Config::default()
    });
    let k = key("t");
    let cmds = h.submit(&k);
    let first = created_pod(&cmds).expect("a create");
    let timeout = ApiOutcome::Failed {
        failure: podwarden::ApiFailure::Timeout,
    };
    let out = h.answer(cmds[0].id, timeout);
    assert_eq!(kinds(&out), ["DeletePod", "QueryTaskStates"]);
    // The DB answers before the delete of the maybe-created pod does.
    let query = support::first(&out, "QueryTaskStates").id;
    let out = h.answer_states(
        query,
        vec![(k.clone(), Some(podwarden::db::TaskState::Queued))],
    );
    assert_eq!(kinds(&out), ["Requeue"]);
    let CommandKind::Notice(Notice::Requeue {
        cause, failed_pod, ..
    }) = &out[0].kind
    else {
        unreachable!()
    };
    assert_eq!(
        cause,
        &podwarden::requeue::RequeueCause::PublishFailed("request timed out".into())
    );
    assert_eq!(failed_pod.name, first.name);
    let delete = h
        .commands
        .iter()
        .find(|c| matches!(c.kind, CommandKind::Api(ApiCall::DeletePod { .. })))
        .expect("the maybe-created pod is deleted")
        .id;
    assert!(
        created_pod(&h.advance(5_000)).is_none(),
        "no new pod while the first one could still start"
    );
    let next = h.answer(delete, ApiOutcome::Ok);
    let second = created_pod(&next).expect("relaunched once the deletion is confirmed");
    assert_ne!(second.name, first.name, "a new pod name for the new launch");

    // The budget (1) is used: the next timeout fails the try with Airflow's reason.
    let out = h.answer(
        next.last().unwrap().id,
        ApiOutcome::Failed {
            failure: podwarden::ApiFailure::Timeout,
        },
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(
        reports(&out)[0].2.as_deref(),
        Some("pod creation failed: request timed out")
    );
}

/// podwarden's default: transient create errors are retried for `task_publish_retry_timeout`
/// (600 s) from the first one, with the same pod name (a create that did reach the server gets
/// 409 AlreadyExists, which counts as created) and a back-off of 1 s doubling to 60 s. Only
/// past the window is it a launch failure (requeued while QUEUED).
#[test]
fn transient_create_errors_are_retried_for_the_whole_window_with_back_off() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let mut cmds = h.submit(&k);
    let first = created_pod(&cmds).expect("a create");
    let start = h.now;
    let mut gaps = Vec::new();
    loop {
        let failed_at = h.now;
        let out = h.fail(cmds.last().unwrap().id, 429, "TooManyRequests", "", Some(1));
        if h.now.since(start) >= 600_000 {
            assert_eq!(
                kinds(&out),
                ["QueryTaskStates"],
                "past the window: a launch failure"
            );
            break;
        }
        assert!(out.is_empty(), "retried later, not at once: {out:?}");
        cmds = loop {
            let due = h.ex.poll_timeout().expect("a retry is due");
            let out = h.advance(due.since(h.now));
            if created_pod(&out).is_some() {
                break out;
            }
        };
        gaps.push(h.now.since(failed_at));
        assert_eq!(
            created_pod(&cmds).map(|p| p.name),
            Some(first.name.clone()),
            "the same pod name: idempotent"
        );
        assert!(reports(&h.commands).is_empty(), "never failed meanwhile");
    }
    assert_eq!(gaps[..4], [1000, 2000, 4000, 8000]);
    assert!(gaps.iter().all(|g| *g <= 60_000), "{gaps:?}");
}

/// A create the API refuses outright (400, 403, 422) is not retried by a requeue: the same pod
/// would be refused again.
#[test]
fn create_refused_outright_fails_at_once() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let cmds = h.submit(&k);
    let out = h.fail(
        cmds[0].id,
        422,
        "Invalid",
        "spec.containers: Required value",
        None,
    );
    assert_eq!(kinds(&out), ["Report"]);
    assert!(!h.ex.is_tracking(&k));
}
