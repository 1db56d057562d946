//! The switches that turn one of podwarden's deliberate differences back into Airflow 10.25's
//! decision (`docs/decisions.md`, "Differences from Airflow"): for each, podwarden's default and
//! Airflow's value decide differently on the same inputs, and the `airflow-10.25` preset sets
//! Airflow's value.
mod support;

use podwarden::config::Preset;
use podwarden::liveness::JobState;
use podwarden::{ApiFailure, ApiOutcome, Config, EventType, PodPhase, ReportedState};
use support::*;

/// Every switch this file tests is set to Airflow's value by both release presets.
#[test]
fn the_release_presets_set_airflows_value_of_every_switch() {
    for preset in Preset::ALL {
        let c = preset.config();
        assert!(!c.wait_for_unknown_owners, "{preset}");
        assert!(!c.requeue_pods_deleted_while_pending, "{preset}");
        assert!(!c.already_exists_means_created, "{preset}");
        assert!(!c.retry_done_label_patch, "{preset}");
        assert!(!c.requeue_failed_publishes, "{preset}");
        assert!(!c.async_pod_creation, "{preset}");
        assert!(!c.relist_after_watch_expiry, "{preset}");
        assert!(!c.report_before_pod_cleanup, "{preset}");
        assert!(!c.always_valid_label_values, "{preset}");
    }
    let d = Config::default();
    assert!(
        d.wait_for_unknown_owners
            && d.requeue_pods_deleted_while_pending
            && d.already_exists_means_created
            && d.retry_done_label_patch
            && d.requeue_failed_publishes
    );
}

/// A completed pod whose owner (`9`) no heartbeat row names: podwarden waits a threshold (it
/// may be a scheduler that has just started); Airflow takes it at once.
#[test]
fn wait_for_unknown_owners() {
    let decide = |wait: bool| {
        let mut h = Harness::new(Config {
            wait_for_unknown_owners: wait,
            adopt_leftover_pods: false,
            ..Config::default()
        });
        let k = key("t");
        let mut pod = worker_pod("completed", &k, PodPhase::Succeeded);
        pod.labels.insert("airflow-worker".into(), "9".into());
        let t = h.now.0;
        let out = h.heartbeats(&[("5", JobState::Running, t)]);
        let listed = h.answer(
            first(&out, "ListPods").id,
            ApiOutcome::Listed {
                pods: vec![pod],
                resource_version: "80".into(),
            },
        );
        kinds(&listed)
    };
    assert!(decide(true).is_empty(), "podwarden waits");
    assert_eq!(decide(false), ["PatchLabels"], "Airflow takes it at once");
}

/// A pod deleted while Pending: podwarden asks the DB and requeues while QUEUED; Airflow only
/// logs, and the try stays tracked until the scheduler's `task_queued_timeout` revokes it.
#[test]
fn requeue_pods_deleted_while_pending() {
    let decide = |requeue: bool| {
        let mut h = Harness::new(Config {
            requeue_pods_deleted_while_pending: requeue,
            ..Config::default()
        });
        let k = key("t");
        let pod = h.launch(&k);
        let out = h.event(EventType::Deleted, &deleting(pod));
        assert!(h.ex.is_tracking(&k));
        kinds(&out)
    };
    assert_eq!(decide(true), ["QueryTaskStates"]);
    assert!(decide(false).is_empty(), "Airflow decides nothing");
}

/// A 410 while a tracked pod was deleted: podwarden lists, finds the pod gone and decides its
/// try; Airflow's watcher restarts from resource version "0" without a list, and the replay of
/// the pods that still exist never shows the deleted one gone.
#[test]
fn relist_after_watch_expiry() {
    let decide = |relist: bool| {
        let mut h = Harness::new(Config {
            relist_after_watch_expiry: relist,
            ..Config::default()
        });
        let k = key("t");
        let pod = h.launch(&k);
        h.event(
            EventType::Modified,
            &with_phase(pod, PodPhase::Running, "20"),
        );
        let out = h.input(
            "410".into(),
            podwarden::Input::WatchExpired { namespace: None },
        );
        let restart = kinds(&out);
        let after = match out
            .iter()
            .find(|c| kinds(std::slice::from_ref(c)) == ["ListPods"])
        {
            // The list no longer has the pod.
            Some(list) => h.answer(
                list.id,
                ApiOutcome::Listed {
                    pods: vec![],
                    resource_version: "40".into(),
                },
            ),
            None => Vec::new(),
        };
        (restart, kinds(&after), h.ex.resource_version().to_string())
    };
    assert_eq!(
        decide(true),
        (
            vec!["ListPods"],
            vec!["QueryTaskStates", "WatchPods"],
            "40".to_string()
        ),
        "the vanished Running pod's try is decided"
    );
    assert_eq!(
        decide(false),
        (vec!["WatchPods"], vec![], "0".to_string()),
        "Airflow: a watch from \"0\", nothing decided"
    );
}

/// A try ends while its pod's delete keeps failing: podwarden reports at once; Airflow writes the
/// event only once the delete went through (it re-puts the result until then).
#[test]
fn report_before_pod_cleanup() {
    let decide = |early: bool| {
        let mut h = Harness::new(Config {
            report_before_pod_cleanup: early,
            ..Config::default()
        });
        let k = key("t");
        let pod = h.launch(&k);
        let out = h.event(
            EventType::Modified,
            &with_phase(pod, PodPhase::Succeeded, "20"),
        );
        let at_once = reports(&out).len();
        let delete = first(&out, "DeletePod").id;
        let out = h.fail(delete, 500, "InternalError", "etcd timeout", None);
        let after_failure = reports(&out).len();
        let retry = h.advance(2_000);
        let out = h.answer(first(&retry, "DeletePod").id, ApiOutcome::Ok);
        (at_once, after_failure, reports(&out).len())
    };
    assert_eq!(decide(true), (1, 0, 0), "reported with the first delete");
    assert_eq!(
        decide(false),
        (0, 0, 1),
        "Airflow: reported once the retried delete went through"
    );
}

/// A try whose dag id has no letter or digit: podwarden labels its pod with the id's hash, a
/// valid label; Airflow writes `-<hash>`, which the API server refuses, and the try fails.
#[test]
fn always_valid_label_values() {
    let label_of = |valid: bool| {
        let mut h = Harness::new(Config {
            always_valid_label_values: valid,
            ..Config::default()
        });
        let k = podwarden::TaskKey::new("___", "extract", "run", 1);
        let out = h.submit_until_created(&k);
        let pod = created_pod(&out).expect("a create");
        pod.labels["dag_id"].clone()
    };
    assert_eq!(label_of(true), "948a13f1e");
    assert!(podwarden::label::is_valid_value(&label_of(true)));
    assert_eq!(label_of(false), "-948a13f1e");
    assert!(!podwarden::label::is_valid_value(&label_of(false)));
}

/// A create answered 409 AlreadyExists: podwarden's names are per try and launch, so the pod
/// is its own; Airflow fails the try.
#[test]
fn already_exists_means_created() {
    let decide = |created: bool| {
        let mut h = Harness::new(Config {
            already_exists_means_created: created,
            ..Config::default()
        });
        let k = key("t");
        let id = first(&h.submit(&k), "CreatePod").id;
        let out = h.fail(id, 409, "AlreadyExists", "pods \"p\" already exists", None);
        (kinds(&out), reports(&out))
    };
    assert_eq!(decide(true), (vec![], vec![]));
    let (kinds, reports) = decide(false);
    assert_eq!(kinds, ["Report"]);
    assert_eq!(reports[0].1, ReportedState::Failed);
}

/// A done-label patch that fails (here a 500): podwarden retries it after a back-off; Airflow
/// logs it and moves on.
#[test]
fn retry_done_label_patch() {
    let decide = |retry: bool| {
        let mut h = Harness::new(Config {
            delete_worker_pods: false,
            retry_done_label_patch: retry,
            ..Config::default()
        });
        let k = key("t");
        let pod = h.launch(&k);
        let out = h.event(
            EventType::Modified,
            &with_phase(pod, PodPhase::Succeeded, "11"),
        );
        let patch = first(&out, "PatchLabels").id;
        h.fail(patch, 500, "InternalError", "etcd timeout", None);
        kinds(&h.advance(2_000))
    };
    assert_eq!(decide(true), ["PatchLabels"], "retried after 1 s");
    assert!(decide(false).is_empty(), "Airflow does not retry");
}

/// A create whose transient errors outlast its retries: podwarden calls it a launch failure
/// and asks whether the try is still QUEUED (to requeue it); Airflow fails the try.
#[test]
fn requeue_failed_publishes() {
    let decide = |requeue: bool| {
        let mut h = Harness::new(Config {
            task_publish_retry_timeout: 0.0,
            requeue_failed_publishes: requeue,
            ..Config::default()
        });
        let k = key("t");
        let id = first(&h.submit(&k), "CreatePod").id;
        let out = h.answer(
            id,
            ApiOutcome::Failed {
                failure: ApiFailure::Status {
                    code: 503,
                    reason: "ServiceUnavailable".into(),
                    message: String::new(),
                    retry_after_secs: None,
                },
            },
        );
        kinds(&out)
    };
    assert_eq!(decide(true), ["QueryTaskStates"]);
    assert_eq!(decide(false), ["Report"]);
}
