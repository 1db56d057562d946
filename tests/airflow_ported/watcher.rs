//! The watcher's classification (`process_status`) and what the executor does with it, and the
//! parsing of the fatal pending reasons.

use podwarden::command::ApiCall;
use podwarden::watch::{classify, ContainerType, PodOutcome, Rule};
use podwarden::{
    CommandKind, Config, ContainerState, ContainerStatus, EventType, InputError, KeyError,
    PodPhase, PodRef, PodView, ReportedState, TaskKey,
};

use crate::common::*;
use crate::support::*;

/// The watcher tests' configuration: namespace `airflow`, fatal reasons = defaults +
/// `CrashLoopBackOff`. Pre-execution requeue is off, as it is in Airflow's test (the watcher
/// knows nothing of launch attempts), so a failed pod is reported and nothing else.
fn watcher_config() -> Config {
    let mut config = Config {
        namespace: "airflow".into(),
        pod_launch_failure_retries: 0,
        ..ported_config()
    };
    config
        .worker_pod_pending_fatal_container_state_reasons
        .push("CrashLoopBackOff".into());
    config
}

fn fatal_reasons() -> Vec<String> {
    watcher_config().worker_pod_pending_fatal_container_state_reasons
}

/// Airflow's watcher test pod: `foo` in `airflow` at resource version `456`, with the core
/// annotations of `("dag","task","run_id",1)`.
fn foo(phase: Option<PodPhase>) -> PodView {
    let mut pod = worker_pod("foo", &key("task"), PodPhase::Pending);
    pod.namespace = "airflow".into();
    pod.resource_version = "456".into();
    pod.phase = phase;
    pod
}

/// An executor with `config` whose try `("dag","task","run_id",1)` has a created pod; returns
/// the pod as the watch shows it, at resource version `456`.
fn watched(config: Config) -> (Harness, TaskKey, PodView) {
    let mut h = Harness::new(config);
    let k = key("task");
    let mut pod = h.launch(&k);
    pod.resource_version = "456".into();
    (h, k, pod)
}

fn waiting(mut pod: PodView, reason: Option<&str>, message: Option<&str>) -> PodView {
    pod.containers = vec![ContainerStatus::new(
        "base",
        ContainerState::Waiting {
            reason: reason.map(Into::into),
            message: message.map(Into::into),
        },
    )];
    pod
}

/// Follows Airflow's `test_process_status_pending` (§10 case 71).
/// A Pending pod fails once exactly when its main container waits with a fatal reason (except
/// `ErrImagePull` "pull QPS exceeded"); otherwise it is left alone and stays tracked. The failure
/// report names the waiting reason.
#[test]
fn test_process_status_pending() {
    let rows: [(Option<&str>, Option<&str>, bool); 9] = [
        (
            Some("CreateContainerConfigError"),
            Some("secret \"s\" not found"),
            true,
        ),
        (Some("ErrImagePull"), Some("pull QPS exceeded"), false),
        (
            Some("ErrImagePull"),
            Some("rpc error: manifest for airflow:nope not found"),
            true,
        ),
        (
            Some("CreateContainerError"),
            Some("container create failed"),
            true,
        ),
        (
            Some("ImageInspectError"),
            Some("failed to inspect image"),
            true,
        ),
        (
            Some("InvalidImageName"),
            Some("couldn't parse image reference"),
            true,
        ),
        (Some("OtherReasons"), Some("other"), false),
        (None, None, false),
        // The test's fatal list adds CrashLoopBackOff to the defaults.
        (
            Some("CrashLoopBackOff"),
            Some("back-off restarting failed container"),
            true,
        ),
    ];
    for (reason, message, fatal) in rows {
        let c = classify(
            EventType::Modified,
            &waiting(foo(Some(PodPhase::Pending)), reason, message),
            &fatal_reasons(),
        );
        let (mut h, k, pod) = watched(watcher_config());
        let pending = waiting(pod, reason, message);
        let out = h.event(EventType::Modified, &pending);
        if fatal {
            let PodOutcome::Failed { details } = &c.outcome else {
                panic!("{reason:?}: {c:?}")
            };
            assert_eq!(c.rule, Rule::FatalPendingReason);
            assert_eq!(details.pending_reason.as_deref(), reason);
            // Deliberate difference: Airflow keeps the Pending pod; its kubelet keeps pulling
            // and may start the task later, so podwarden deletes it.
            assert_eq!(kinds(&out), ["DeletePod", "Report"], "{reason:?}");
            assert_failure_reported(&out, &k, reason.expect("fatal rows have a reason"));
            assert!(!h.ex.is_tracking(&k));
            assert!(
                h.event(EventType::Modified, &pending).is_empty(),
                "FAILED put once"
            );
        } else {
            assert_eq!(
                (c.rule, c.outcome),
                (Rule::Pending, PodOutcome::Ignore),
                "{reason:?} {message:?}"
            );
            assert!(out.is_empty(), "{reason:?}: {out:?}");
            assert!(h.ex.is_tracking(&k));
        }
    }

    // The scan rule behind the table: every init container, but only the first main container.
    let sidecar = |pod: PodView| {
        let mut pod = waiting(pod, Some("ContainerCreating"), None);
        pod.containers.push(ContainerStatus::new(
            "sidecar",
            ContainerState::Waiting {
                reason: Some("ErrImagePull".into()),
                message: None,
            },
        ));
        pod
    };
    let c = classify(
        EventType::Modified,
        &sidecar(foo(Some(PodPhase::Pending))),
        &fatal_reasons(),
    );
    assert_eq!(
        (c.rule, c.outcome),
        (Rule::Pending, PodOutcome::Ignore),
        "a second container is not scanned"
    );
    let c = classify(
        EventType::Modified,
        &init_waiting(foo(Some(PodPhase::Pending)), "ErrImagePull"),
        &fatal_reasons(),
    );
    assert_eq!(
        c.rule,
        Rule::FatalPendingReason,
        "init containers are scanned"
    );
    let (mut h, k, pod) = watched(watcher_config());
    assert!(h.event(EventType::Modified, &sidecar(pod)).is_empty());
    assert!(h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_process_status_pending_deleted` (§10 case 72).
/// A Pending pod that is deleted is not a failure (Airflow #45184): nothing is reported or
/// sent, and the try stays with the scheduler (its queued timeout decides).
#[test]
fn test_process_status_pending_deleted() {
    let c = classify(
        EventType::Deleted,
        &deleting(foo(Some(PodPhase::Pending))),
        &fatal_reasons(),
    );
    assert_eq!(
        (c.rule, c.outcome),
        (Rule::DeletedWhilePending, PodOutcome::Ignore)
    );

    let (mut h, k, pod) = watched(watcher_config());
    let out = h.event(EventType::Deleted, &deleting(pod));
    assert_eq!(h.ex.state_size().pods, 0, "the gone pod is forgotten");
    // podwarden asks the DB; with the requeue off and the try still QUEUED it then does what
    // Airflow does: nothing, the try waits for the scheduler's stuck-in-queued revoke.
    let out = h.answer_state_of(&out, Some(podwarden::db::TaskState::Queued));
    assert!(out.is_empty(), "{out:?}");
    assert!(h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_process_status_failed` (§10 case 73).
/// A Failed pod is FAILED with Airflow's failure details (pod status, failing container, exit
/// code), the key comes from the core annotations, and the executor reports the failure once
/// with a readable reason (podwarden's reason string instead of "Pod failed because of None").
#[test]
fn test_process_status_failed() {
    let pod = task_failed(foo(Some(PodPhase::Failed)));
    assert_eq!(
        pod.task_key(),
        Ok(key("task")),
        "core annotations name the try"
    );
    let c = classify(EventType::Modified, &pod, &fatal_reasons());
    assert_eq!(c.rule, Rule::PhaseFailed);
    let PodOutcome::Failed { details } = &c.outcome else {
        panic!("{c:?}")
    };
    assert_eq!(details.pod_status.as_deref(), Some("Failed"));
    let container = details.container.as_ref().expect("the failing container");
    assert_eq!(container.container_state, "terminated");
    assert_eq!(container.container_reason.as_deref(), Some("Error"));
    assert_eq!(container.exit_code, Some(1));
    assert_eq!(container.container_type, ContainerType::Main);
    assert_eq!(container.container_name, "base");

    let (mut h, k, pod) = watched(watcher_config());
    let failed = task_failed(pod);
    let out = h.event(EventType::Modified, &failed);
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    assert_failure_reported(&out, &k, "Error exit 1");
    assert!(!reports(&out)[0]
        .2
        .as_deref()
        .unwrap_or_default()
        .contains("None"));
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.resource_version(), "457");
    assert!(
        h.event(EventType::Modified, &failed).is_empty(),
        "reported once"
    );
}

/// Follows Airflow's `test_process_status_failed` (§10 case 73).
/// Variant: a pod whose annotations do not name a try (§12 surprise 15).
/// Differs on purpose: Airflow's watcher crashes on the missing annotation and replays the pod
/// forever; podwarden rejects that one event with `InputError::PodIdentity` (still recording its
/// resource version) and keeps working.
#[test]
fn test_process_status_failed_unidentified_pod() {
    let (mut h, k, pod) = watched(watcher_config());
    let mut stray = task_failed(foo(Some(PodPhase::Failed)));
    stray.annotations.remove("dag_id");
    stray.resource_version = "500".into();
    match h.try_event(EventType::Modified, &stray) {
        Err(InputError::PodIdentity { pod, error }) => {
            assert_eq!(pod, PodRef::new("airflow", "foo"));
            assert_eq!(error, KeyError::Missing("dag_id"));
        }
        other => panic!("expected PodIdentity, got {other:?}"),
    }
    stray.annotations = key("task").to_annotations();
    stray.annotations.insert("try_number".into(), "one".into());
    assert!(matches!(
        h.try_event(EventType::Modified, &stray),
        Err(InputError::PodIdentity {
            error: KeyError::Malformed {
                annotation: "try_number",
                ..
            },
            ..
        })
    ));
    assert_eq!(h.ex.resource_version(), "500");
    assert!(
        h.commands
            .iter()
            .all(|c| matches!(c.kind, CommandKind::Api(ApiCall::CreatePod { .. }))),
        "nothing sent"
    );
    assert!(h.ex.is_tracking(&k), "the tracked try is untouched");
    let out = h.event(EventType::Modified, &task_failed(pod));
    assert_failure_reported(&out, &k, "exit 1");
}

/// Follows Airflow's `test_process_status_provider_failed` (§10 case 74).
/// `status.reason == ProviderFailed` fails the try whatever the phase, even Pending.
#[test]
fn test_process_status_provider_failed() {
    for phase in [PodPhase::Pending, PodPhase::Running] {
        let mut pod = foo(Some(phase));
        pod.reason = Some("ProviderFailed".into());
        let c = classify(EventType::Modified, &pod, &fatal_reasons());
        assert_eq!(c.rule, Rule::ProviderFailed, "{phase:?}");
        assert!(matches!(c.outcome, PodOutcome::Failed { .. }), "{c:?}");
    }

    let (mut h, k, mut pod) = watched(watcher_config());
    pod.reason = Some("ProviderFailed".into());
    let out = h.event(EventType::Modified, &pod);
    // Deliberate difference: the pod is still live (Pending), so it is deleted.
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_failure_reported(&out, &k, "provider failed");
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_process_status_succeeded` (§10 case 75).
/// A Succeeded pod is classified as success (state from the DB), then deleted and reported.
#[test]
fn test_process_status_succeeded() {
    let c = classify(
        EventType::Modified,
        &foo(Some(PodPhase::Succeeded)),
        &fatal_reasons(),
    );
    assert_eq!(
        (c.rule, c.outcome),
        (Rule::PhaseSucceeded, PodOutcome::Succeeded)
    );

    let (mut h, k, pod) = watched(watcher_config());
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "457"),
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("airflow", pod.name));
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_process_status_pod_adopted` (§10 case 76).
/// DELETED without a deletion timestamp means "adopted" whatever the phase (Airflow's test passes
/// task states as phases; read as pod phases they are all Unknown); the executor frees the try
/// silently.
#[test]
fn test_process_status_pod_adopted() {
    let mut phases: Vec<Option<PodPhase>> =
        ["success", "failed", "running", "queued", "up_for_retry"]
            .iter()
            .map(|s| Some(PodPhase::from_k8s(s)))
            .collect();
    phases.extend([
        Some(PodPhase::Pending),
        Some(PodPhase::Running),
        Some(PodPhase::Succeeded),
        Some(PodPhase::Failed),
        None,
    ]);
    for phase in phases {
        let c = classify(EventType::Deleted, &foo(phase), &fatal_reasons());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::LeftWatch, PodOutcome::Adopted),
            "{phase:?}"
        );

        let (mut h, k, mut pod) = watched(watcher_config());
        pod.phase = phase;
        assert!(h.event(EventType::Deleted, &pod).is_empty(), "{phase:?}");
        assert!(!h.ex.is_tracking(&k));
        let size = h.ex.state_size();
        assert_eq!((size.tasks, size.pods), (0, 0), "{phase:?}");
    }
}

/// Follows Airflow's `test_process_status_running_deleted` (§10 case 77).
/// A Running pod that is deleted is FAILED and reported (podwarden's reason: "Pod deleted while
/// running"). Differs on purpose: the pod is already being deleted, so even with
/// `delete_worker_pods_on_failure=True` (or `delete_worker_pods=False`) podwarden sends no second
/// delete and no patch.
#[test]
fn test_process_status_running_deleted() {
    let c = classify(
        EventType::Deleted,
        &deleting(foo(Some(PodPhase::Running))),
        &fatal_reasons(),
    );
    assert_eq!(c.rule, Rule::DeletedWhileRunning);
    assert!(matches!(c.outcome, PodOutcome::Failed { .. }), "{c:?}");

    let keep_failed = watcher_config();
    let delete_failed = Config {
        delete_worker_pods_on_failure: true,
        ..watcher_config()
    };
    let label_done = Config {
        delete_worker_pods: false,
        ..watcher_config()
    };
    for config in [keep_failed, delete_failed, label_done] {
        let (mut h, k, pod) = watched(config);
        let out = h.event(
            EventType::Deleted,
            &deleting(with_phase(pod, PodPhase::Running, "457")),
        );
        assert_eq!(kinds(&out), ["Report"]);
        assert_failure_reported(&out, &k, "deleted while running");
        assert!(!h.ex.is_tracking(&k));
        assert_eq!(h.ex.state_size().pods, 0);
    }
}

/// Follows Airflow's `test_process_status_running` (§10 case 78).
/// A Running pod (added, modified, or modified while being deleted) produces nothing; the try
/// stays tracked.
#[test]
fn test_process_status_running() {
    let running = foo(Some(PodPhase::Running));
    for (kind, pod) in [
        (EventType::Modified, running.clone()),
        (EventType::Added, running.clone()),
        (EventType::Modified, deleting(running)),
    ] {
        let c = classify(kind, &pod, &fatal_reasons());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::Running, PodOutcome::Ignore),
            "{kind:?}"
        );
    }

    let (mut h, k, pod) = watched(watcher_config());
    let running = with_phase(pod, PodPhase::Running, "457");
    assert!(h.event(EventType::Modified, &running).is_empty());
    assert!(h.event(EventType::Modified, &deleting(running)).is_empty());
    assert!(h.ex.is_tracking(&k));
    assert_eq!(kinds(&h.commands), ["CreatePod"]);
}

/// Follows Airflow's `test_process_status_catchall` (§10 case 79).
/// Phase `Unknown` (or none reported yet) produces nothing; the try stays tracked.
#[test]
fn test_process_status_catchall() {
    for phase in [Some(PodPhase::Unknown), None] {
        let c = classify(EventType::Modified, &foo(phase), &fatal_reasons());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::OtherPhase, PodOutcome::Ignore),
            "{phase:?}"
        );

        let (mut h, k, mut pod) = watched(watcher_config());
        pod.phase = phase;
        assert!(h.event(EventType::Modified, &pod).is_empty(), "{phase:?}");
        assert!(h.ex.is_tracking(&k));
    }
}

/// Follows Airflow's `test_kube_config_parse_worker_pod_pending_fatal_container_state_reasons` (§10 case 83).
/// The comma-separated option is split and trimmed (`"e1, e2,e3"`, `"e1 "`), and the parsed list
/// is what the executor fails Pending pods on: `e1` becomes fatal, the default `ErrImagePull` no
/// longer is.
#[test]
fn test_kube_config_parse_worker_pod_pending_fatal_container_state_reasons() {
    let parsed: Config =
        toml::from_str(r#"worker_pod_pending_fatal_container_state_reasons = "e1, e2,e3""#)
            .expect("a comma-separated string parses");
    assert_eq!(
        parsed.worker_pod_pending_fatal_container_state_reasons,
        ["e1", "e2", "e3"]
    );
    let parsed: Config =
        toml::from_str(r#"worker_pod_pending_fatal_container_state_reasons = "e1 ""#)
            .expect("parses");
    assert_eq!(
        parsed.worker_pod_pending_fatal_container_state_reasons,
        ["e1"]
    );

    let config = no_requeue(parsed);
    let (mut h, k, pod) = watched(config);
    assert!(h
        .event(
            EventType::Modified,
            &waiting(pod.clone(), Some("ErrImagePull"), None)
        )
        .is_empty());
    assert!(
        h.ex.is_tracking(&k),
        "ErrImagePull is not in the configured list"
    );
    let out = h.event(EventType::Modified, &waiting(pod, Some("e1"), None));
    assert_failure_reported(&out, &k, "e1");
    assert!(!h.ex.is_tracking(&k));
}
