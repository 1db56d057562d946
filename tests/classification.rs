//! The watch classification table (`airflow-executor.md` §1.3, `docs/decisions.md`), one test
//! per row: what `watch::classify` decides, and what the executor then does.
mod support;

use podwarden::db::TaskState;
use podwarden::watch::{classify, failure_details, ContainerType, PodOutcome, Rule};
use podwarden::{Config, EventType, InputError, PodPhase, ReportedState};
use support::*;

fn fatal() -> Vec<String> {
    Config::default().worker_pod_pending_fatal_container_state_reasons
}

fn rule_of(kind: EventType, pod: &podwarden::PodView) -> Rule {
    classify(kind, pod, &fatal()).rule
}

#[test]
fn row_01_revoked_pod_is_ignored_whatever_its_phase() {
    let k = key("t");
    for phase in [
        PodPhase::Pending,
        PodPhase::Running,
        PodPhase::Failed,
        PodPhase::Succeeded,
    ] {
        let mut pod = worker_pod("p", &k, phase);
        pod.labels
            .insert("airflow_pod_revoked".into(), "True".into());
        for kind in [EventType::Added, EventType::Modified, EventType::Deleted] {
            let c = classify(kind, &pod, &fatal());
            assert_eq!(
                (c.rule, c.outcome),
                (Rule::Revoked, PodOutcome::Ignore),
                "{kind:?} {phase:?}"
            );
        }
    }
    let mut h = Harness::new(Config::default());
    let mut pod = h.launch(&k);
    pod.labels
        .insert("airflow_pod_revoked".into(), "True".into());
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Failed, "11"),
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(h.ex.is_tracking(&k));
}

#[test]
fn row_02_deleted_without_deletion_timestamp_is_adopted_elsewhere() {
    let k = key("t");
    for phase in [
        PodPhase::Pending,
        PodPhase::Running,
        PodPhase::Failed,
        PodPhase::Succeeded,
    ] {
        let c = classify(EventType::Deleted, &worker_pod("p", &k, phase), &fatal());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::LeftWatch, PodOutcome::Adopted),
            "{phase:?}"
        );
    }
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &with_phase(pod, PodPhase::Running, "11"),
    );
    assert!(out.is_empty(), "adoption away emits nothing: {out:?}");
    assert!(!h.ex.is_tracking(&k), "bookkeeping freed");
    assert_eq!(h.ex.state_size().pods, 0);
}

#[test]
fn row_03_provider_failed_fails_in_any_phase() {
    let k = key("t");
    let mut pod = worker_pod("p", &k, PodPhase::Pending);
    pod.reason = Some("ProviderFailed".into());
    let c = classify(EventType::Modified, &pod, &fatal());
    assert_eq!(c.rule, Rule::ProviderFailed);
    assert!(matches!(c.outcome, PodOutcome::Failed { .. }));
    // Row 3 comes before row 4: even a deleted Pending pod with ProviderFailed fails.
    assert_eq!(
        rule_of(EventType::Deleted, &deleting(pod)),
        Rule::ProviderFailed
    );

    let mut h = Harness::new(Config::default());
    let mut pod = h.launch(&k);
    pod.reason = Some("ProviderFailed".into());
    let out = h.event(EventType::Modified, &pod);
    // Still Pending: deleted at once (it could start later), then the DB says if the task ran.
    assert_eq!(kinds(&out), ["DeletePod", "QueryTaskStates"]);
    let out = h.answer_state_of(&out, Some(TaskState::Running));
    assert_eq!(kinds(&out), ["Report"]);
    assert_eq!(reports(&out)[0].1, ReportedState::Failed);
}

#[test]
fn row_04_deleted_pending_pod_is_not_a_failure() {
    let k = key("t");
    let pod = deleting(worker_pod("p", &k, PodPhase::Pending));
    let c = classify(EventType::Deleted, &pod, &fatal());
    assert_eq!(
        (c.rule, c.outcome),
        (Rule::DeletedWhilePending, PodOutcome::Ignore)
    );
    // Even with a fatal waiting reason: row 4 comes first.
    assert_eq!(
        rule_of(EventType::Deleted, &main_waiting(pod, "ErrImagePull", None)),
        Rule::DeletedWhilePending
    );

    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(EventType::Deleted, &deleting(pod));
    assert_eq!(h.ex.state_size().pods, 0, "the gone pod is forgotten");
    // Not a failure, but a pre-start loss: the DB says whether the try is still QUEUED.
    assert_eq!(kinds(&out), ["QueryTaskStates"]);
    let out = h.answer_state_of(&out, Some(TaskState::Queued));
    assert_eq!(kinds(&out), ["Requeue"], "requeued without a user retry");
    assert!(reports(&h.commands).is_empty());
    assert!(h.ex.is_tracking(&k));
}

#[test]
fn row_05_fatal_pending_reasons_fail_at_once() {
    let k = key("t");
    for reason in fatal() {
        let pod = main_waiting(
            worker_pod("p", &k, PodPhase::Pending),
            &reason,
            Some("boom"),
        );
        let c = classify(EventType::Modified, &pod, &fatal());
        assert_eq!(c.rule, Rule::FatalPendingReason, "{reason}");
        let PodOutcome::Failed { details } = c.outcome else {
            panic!("{reason} must fail")
        };
        assert_eq!(details.pending_reason.as_deref(), Some(reason.as_str()));
        assert_eq!(
            details.container, None,
            "Airflow collects no container details for row 5"
        );
        assert_eq!(details.main_container_never_started, Some(true));
    }
    // Init containers are scanned too, before the main container.
    let pod = init_waiting(
        worker_pod("p", &k, PodPhase::Pending),
        "CreateContainerConfigError",
    );
    assert_eq!(rule_of(EventType::Added, &pod), Rule::FatalPendingReason);
    // Only the first main container counts.
    let mut pod = main_waiting(
        worker_pod("p", &k, PodPhase::Pending),
        "ContainerCreating",
        None,
    );
    pod.containers.push(
        main_waiting(worker_pod("x", &k, PodPhase::Pending), "ErrImagePull", None).containers[0]
            .clone(),
    );
    assert_eq!(rule_of(EventType::Modified, &pod), Rule::Pending);
    // An empty fatal list disables the row.
    let pod = main_waiting(worker_pod("p", &k, PodPhase::Pending), "ErrImagePull", None);
    assert_eq!(classify(EventType::Modified, &pod, &[]).rule, Rule::Pending);

    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &main_waiting(pod, "InvalidImageName", None),
    );
    assert_eq!(
        kinds(&out),
        ["DeletePod", "QueryTaskStates"],
        "a Pending failed pod is deleted"
    );
    let out = h.answer_state_of(&out, Some(TaskState::Running));
    assert_eq!(kinds(&out), ["Report"]);
    assert!(
        reports(&out)[0]
            .2
            .as_deref()
            .is_some_and(|r| r.contains("InvalidImageName")),
        "{out:?}"
    );
}

#[test]
fn row_06_other_pending_states_wait() {
    let k = key("t");
    for (reason, message) in [
        ("ImagePullBackOff", None),
        ("CrashLoopBackOff", None),
        ("ContainerCreating", None),
        ("ErrImagePull", Some("pull QPS exceeded")),
    ] {
        let pod = main_waiting(worker_pod("p", &k, PodPhase::Pending), reason, message);
        let c = classify(EventType::Modified, &pod, &fatal());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::Pending, PodOutcome::Ignore),
            "{reason}"
        );
    }
    // "pull QPS exceeded" only exempts ErrImagePull with exactly that message.
    let pod = main_waiting(
        worker_pod("p", &k, PodPhase::Pending),
        "ErrImagePull",
        Some("pull QPS exceeded!"),
    );
    assert_eq!(rule_of(EventType::Modified, &pod), Rule::FatalPendingReason);
    assert_eq!(
        rule_of(EventType::Added, &worker_pod("p", &k, PodPhase::Pending)),
        Rule::Pending
    );

    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    assert!(h
        .event(
            EventType::Modified,
            &main_waiting(pod, "ImagePullBackOff", None)
        )
        .is_empty());
    assert!(h.ex.is_tracking(&k));
}

#[test]
fn row_07_failed_phase_fails_with_airflow_details() {
    let k = key("t");
    let pod = main_terminated(worker_pod("p", &k, PodPhase::Failed), "Error", 1, true);
    for kind in [EventType::Added, EventType::Modified, EventType::Deleted] {
        let pod = if kind == EventType::Deleted {
            deleting(pod.clone())
        } else {
            pod.clone()
        };
        let c = classify(kind, &pod, &fatal());
        assert_eq!(c.rule, Rule::PhaseFailed, "{kind:?}");
        let PodOutcome::Failed { details } = c.outcome else {
            panic!("must fail")
        };
        assert_eq!(details.pod_status.as_deref(), Some("Failed"));
        let container = details.container.expect("container details");
        assert_eq!(container.container_state, "terminated");
        assert_eq!(container.container_reason.as_deref(), Some("Error"));
        assert_eq!(container.exit_code, Some(1));
        assert_eq!(container.container_type, ContainerType::Main);
        assert_eq!(details.main_container_never_started, Some(false));
    }

    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &main_terminated(with_phase(pod, PodPhase::Failed, "11"), "Error", 1, true),
    );
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "defaults keep failed pods"
    );
    let (_, state, reason) = &reports(&out)[0];
    assert_eq!(*state, ReportedState::Failed);
    assert_eq!(
        reason.as_deref(),
        Some("Pod failed: container base terminated Error exit 1")
    );
}

#[test]
fn row_07_failure_details_scan_order() {
    let k = key("t");
    // Init containers first; a terminated non-zero non-Completed container wins at once.
    let mut pod = main_terminated(
        worker_pod("p", &k, PodPhase::Failed),
        "OOMKilled",
        137,
        true,
    );
    pod.init_containers =
        init_waiting(worker_pod("x", &k, PodPhase::Failed), "PodInitializing").init_containers;
    let d = failure_details(&pod);
    let c = d.container.expect("init waiting remembered");
    assert_eq!(
        (c.container_type, c.container_state.as_str()),
        (ContainerType::Init, "waiting")
    );
    // Completed and exit 0 are skipped.
    let pod = main_terminated(worker_pod("p", &k, PodPhase::Failed), "Completed", 0, true);
    assert_eq!(failure_details(&pod).container, None);
    // Details only for phase Failed, as Airflow.
    let pod = main_terminated(worker_pod("p", &k, PodPhase::Running), "Error", 1, true);
    assert_eq!(failure_details(&pod).pod_status, None);
    // podwarden's additions: disruption reason and "never started".
    let pod = disrupted(
        main_terminated(
            worker_pod("p", &k, PodPhase::Failed),
            "StartError",
            128,
            true,
        ),
        "EvictionByEvictionAPI",
    );
    let d = failure_details(&pod);
    assert_eq!(
        d.disruption_reason.as_deref(),
        Some("EvictionByEvictionAPI")
    );
    assert_eq!(d.main_container_never_started, Some(true));
}

#[test]
fn row_08_succeeded_pod_succeeds_even_when_deleted() {
    let k = key("t");
    for (kind, pod) in [
        (
            EventType::Modified,
            worker_pod("p", &k, PodPhase::Succeeded),
        ),
        (
            EventType::Deleted,
            deleting(worker_pod("p", &k, PodPhase::Succeeded)),
        ),
    ] {
        let c = classify(kind, &pod, &fatal());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::PhaseSucceeded, PodOutcome::Succeeded),
            "{kind:?}"
        );
    }
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Succeeded, "11")),
    );
    assert_eq!(
        kinds(&out),
        ["Report"],
        "a pod already deleted is not deleted again"
    );
    assert_eq!(reports(&out)[0].1, ReportedState::Succeeded);
}

#[test]
fn row_09_deleted_running_pod_failed() {
    let k = key("t");
    let pod = deleting(disrupted(
        worker_pod("p", &k, PodPhase::Running),
        "DeletionByTaintManager",
    ));
    let c = classify(EventType::Deleted, &pod, &fatal());
    assert_eq!(c.rule, Rule::DeletedWhileRunning);
    let PodOutcome::Failed { details } = c.outcome else {
        panic!("must fail")
    };
    assert_eq!(
        details.disruption_reason.as_deref(),
        Some("DeletionByTaintManager")
    );

    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Running, "11")),
    );
    assert_eq!(kinds(&out), ["QueryTaskStates"]);
    assert_eq!(h.ex.state_size().pods, 0);
    let out = h.answer_state_of(&out, Some(TaskState::Running));
    assert_eq!(kinds(&out), ["Report"]);
    assert_eq!(
        reports(&out)[0].2.as_deref(),
        Some("Pod deleted while running")
    );
}

#[test]
fn row_10_running_pod_waits_even_while_terminating() {
    let k = key("t");
    for pod in [
        worker_pod("p", &k, PodPhase::Running),
        deleting(worker_pod("p", &k, PodPhase::Running)),
    ] {
        for kind in [EventType::Added, EventType::Modified] {
            let c = classify(kind, &pod, &fatal());
            assert_eq!((c.rule, c.outcome), (Rule::Running, PodOutcome::Ignore));
        }
    }
    let mut h = Harness::new(Config::default());
    let pod = h.launch(&k);
    assert!(h
        .event(
            EventType::Modified,
            &deleting(with_phase(pod, PodPhase::Running, "11"))
        )
        .is_empty());
    assert!(h.ex.is_tracking(&k));
}

#[test]
fn row_11_other_phases_are_ignored() {
    let k = key("t");
    let mut no_phase = worker_pod("p", &k, PodPhase::Unknown);
    assert_eq!(rule_of(EventType::Modified, &no_phase), Rule::OtherPhase);
    no_phase.phase = None;
    assert_eq!(rule_of(EventType::Added, &no_phase), Rule::OtherPhase);
    assert_eq!(
        rule_of(EventType::Deleted, &deleting(no_phase)),
        Rule::OtherPhase
    );
}

#[test]
fn rows_are_numbered_like_the_table() {
    let rows: Vec<u8> = [
        Rule::Revoked,
        Rule::LeftWatch,
        Rule::ProviderFailed,
        Rule::DeletedWhilePending,
        Rule::FatalPendingReason,
        Rule::Pending,
        Rule::PhaseFailed,
        Rule::PhaseSucceeded,
        Rule::DeletedWhileRunning,
        Rule::Running,
        Rule::OtherPhase,
    ]
    .iter()
    .map(|r| r.row())
    .collect();
    assert_eq!(rows, (1..=11).collect::<Vec<u8>>());
}

#[test]
fn bookmark_only_advances_the_resource_version() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    h.launch(&k);
    let before = h.ex.state_size();
    let out = h.input(
        "bookmark".into(),
        podwarden::Input::Watch {
            event: podwarden::WatchEvent::Bookmark {
                namespace: None,
                resource_version: "777".into(),
            },
        },
    );
    assert!(out.is_empty());
    assert_eq!(h.ex.resource_version(), "777");
    assert_eq!(h.ex.state_size(), before);
}

#[test]
fn pod_without_identity_is_a_typed_error_not_a_crash_loop() {
    let mut h = Harness::new(Config::default());
    let mut pod = worker_pod("stranger", &key("t"), PodPhase::Failed);
    pod.annotations.remove("try_number");
    pod.resource_version = "55".into();
    let err = h.try_event(EventType::Modified, &pod).unwrap_err();
    assert!(
        matches!(
            &err,
            InputError::PodIdentity {
                error: podwarden::KeyError::Missing("try_number"),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        h.ex.resource_version(),
        "55",
        "the watch still advances past it"
    );
    // The next event is handled normally.
    let k = key("ok");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "56"),
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
}
