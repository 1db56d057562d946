//! Real-shaped Kubernetes JSON (`tests/fixtures/k8s/`) through `podwarden::k8s_json` and the
//! watch classification table: the row each pod lands in and the failure details it yields.
//!
//! The fixtures are Airflow worker pods of scheduler `5` written in the shapes `kubectl get pod
//! -o json` and `kubectl get pods -w -o json --output-watch-events` print (sorted keys, camelCase,
//! unknown fields the parser must skip). They are compiled in with `include_str!`, so the tests
//! need no files at run time.

use podwarden::k8s_json::{self, ParseError, WatchLine};
use podwarden::watch::{classify, Classification, ContainerType, FailureDetails, PodOutcome, Rule};
use podwarden::{Config, ContainerState, EventType, PodPhase, PodView, TaskKey, Timestamp};
use serde_json::Value;

const SUCCEEDED: &str = include_str!("fixtures/k8s/pod-succeeded.json");
const FAILED_EXIT1: &str = include_str!("fixtures/k8s/pod-failed-error-exit1.json");
const FAILED_START_ERROR: &str = include_str!("fixtures/k8s/pod-failed-starterror-exit128.json");
const FAILED_EVICTED: &str = include_str!("fixtures/k8s/pod-failed-evicted.json");
const FAILED_DELETED_PENDING: &str =
    include_str!("fixtures/k8s/pod-failed-deleted-while-pending.json");
const PENDING_BACKOFF: &str = include_str!("fixtures/k8s/pod-pending-imagepullbackoff.json");
const PENDING_ERR_IMAGE_PULL: &str = include_str!("fixtures/k8s/pod-pending-errimagepull.json");
const PENDING_UNSCHEDULABLE: &str = include_str!("fixtures/k8s/pod-pending-unschedulable.json");
const PENDING_INIT_CRASHLOOP: &str =
    include_str!("fixtures/k8s/pod-pending-init-container-crashloop.json");
const RUNNING_OOM_LAST_STATE: &str =
    include_str!("fixtures/k8s/pod-running-oomkilled-laststate.json");
const WATCH_PREEMPTION: &str = include_str!("fixtures/k8s/watch-preemption.jsonl");

/// Every file in `tests/fixtures/k8s/`; `every_fixture_is_asserted_on` keeps this list honest.
const ALL_FIXTURES: [&str; 11] = [
    "pod-failed-deleted-while-pending.json",
    "pod-failed-error-exit1.json",
    "pod-failed-evicted.json",
    "pod-failed-starterror-exit128.json",
    "pod-pending-errimagepull.json",
    "pod-pending-imagepullbackoff.json",
    "pod-pending-init-container-crashloop.json",
    "pod-pending-unschedulable.json",
    "pod-running-oomkilled-laststate.json",
    "pod-succeeded.json",
    "watch-preemption.jsonl",
];

fn fatal() -> Vec<String> {
    Config::default().worker_pod_pending_fatal_container_state_reasons
}

fn pod(json: &str) -> PodView {
    k8s_json::parse_pod(json).unwrap_or_else(|e| panic!("fixture does not parse: {e}"))
}

fn classified(kind: EventType, json: &str) -> Classification {
    classify(kind, &pod(json), &fatal())
}

fn failed(c: &Classification) -> &FailureDetails {
    match &c.outcome {
        PodOutcome::Failed { details } => details,
        other => panic!("expected a failure, got {other:?} ({:?})", c.rule),
    }
}

/// The main container's failure: `(container_reason, exit_code)`.
fn main_container(details: &FailureDetails) -> (Option<&str>, Option<i32>) {
    let c = details
        .container
        .as_ref()
        .expect("container failure details");
    assert_eq!(c.container_type, ContainerType::Main);
    assert_eq!(c.container_name, "base");
    (c.container_reason.as_deref(), c.exit_code)
}

fn ts(rfc3339: &str) -> Timestamp {
    let pod = k8s_json::parse_pod(&format!(
        r#"{{"metadata":{{"name":"t","creationTimestamp":"{rfc3339}"}}}}"#
    ))
    .expect("valid timestamp");
    pod.creation_timestamp.expect("creation timestamp")
}

#[test]
fn every_fixture_is_asserted_on() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/k8s exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    assert_eq!(
        found, ALL_FIXTURES,
        "add a test for each new fixture and list it in ALL_FIXTURES"
    );
}

#[test]
fn the_identity_of_a_worker_pod_is_read_from_metadata() {
    let p = pod(SUCCEEDED);
    assert_eq!(
        p.pod_ref().to_string(),
        "airflow/etl-daily-extract-orders-a7k2m9qd"
    );
    assert_eq!(p.uid.len(), 36);
    assert_eq!(p.resource_version, "731005");
    assert_eq!(p.creation_timestamp, Some(ts("2026-11-22T02:00:00Z")));
    assert_eq!(p.deletion_timestamp, None);
    assert_eq!(
        p.node_name.as_deref(),
        Some("ip-10-0-5-201.eu-west-1.compute.internal")
    );
    assert_eq!(p.labels["airflow-worker"], "5");
    assert_eq!(p.labels["kubernetes_executor"], "True");
    // Labels carry the label-safe run id, annotations the raw one.
    assert_eq!(
        p.labels["run_id"],
        "scheduled__2026-11-22T0000000000-4fb165361"
    );
    assert_eq!(
        p.task_key(),
        Ok(TaskKey::new(
            "etl_daily",
            "extract_orders",
            "scheduled__2026-11-22T00:00:00+00:00",
            1
        ))
    );
    let mapped = pod(PENDING_BACKOFF).task_key().expect("mapped key");
    assert_eq!((mapped.map_index, mapped.try_number), (7, 1));
    assert_eq!(pod(FAILED_EXIT1).task_key().expect("key").try_number, 2);
}

#[test]
fn succeeded_pod_is_row_8_even_when_deleted() {
    let p = pod(SUCCEEDED);
    assert_eq!(p.phase, Some(PodPhase::Succeeded));
    assert!(matches!(
        p.containers[0].state,
        ContainerState::Terminated { exit_code: 0, ref reason, started_at: Some(_), .. }
            if reason.as_deref() == Some("Completed")
    ));
    for kind in [EventType::Added, EventType::Modified] {
        let c = classify(kind, &p, &fatal());
        assert_eq!(
            (c.rule, c.outcome),
            (Rule::PhaseSucceeded, PodOutcome::Succeeded)
        );
    }
    let mut deleting = p.clone();
    deleting.deletion_timestamp = Some(ts("2026-11-22T02:04:00Z"));
    assert_eq!(
        classify(EventType::Deleted, &deleting, &fatal()).rule,
        Rule::PhaseSucceeded
    );
    // The same pod leaving the selector (done label, adoption) is row 2 whatever its phase.
    assert_eq!(
        classify(EventType::Deleted, &p, &fatal()).rule,
        Rule::LeftWatch
    );
}

#[test]
fn task_failure_exit_1_is_row_7_with_the_container_error() {
    let c = classified(EventType::Modified, FAILED_EXIT1);
    assert_eq!(c.rule, Rule::PhaseFailed);
    assert_eq!(c.rule.row(), 7);
    let d = failed(&c);
    assert_eq!(d.pod_status.as_deref(), Some("Failed"));
    assert_eq!(d.pod_reason, None);
    assert_eq!(main_container(d), (Some("Error"), Some(1)));
    assert_eq!(
        d.container.as_ref().map(|c| c.container_state.as_str()),
        Some("terminated")
    );
    assert_eq!(d.disruption_reason, None);
    assert_eq!(d.main_container_never_started, Some(false));
    assert_eq!(d.pending_reason, None);
    assert_eq!(
        d.summary(),
        "Pod failed: container base terminated Error exit 1"
    );
}

#[test]
fn start_error_exit_128_never_started_despite_a_zero_started_at() {
    let p = pod(FAILED_START_ERROR);
    // containerd reports the Unix epoch for a process that never ran.
    assert!(matches!(
        p.containers[0].state,
        ContainerState::Terminated {
            exit_code: 128,
            started_at: Some(Timestamp(0)),
            ..
        }
    ));
    let c = classify(EventType::Modified, &p, &fatal());
    assert_eq!(c.rule, Rule::PhaseFailed);
    let d = failed(&c);
    assert_eq!(main_container(d), (Some("StartError"), Some(128)));
    let message = d
        .container
        .as_ref()
        .and_then(|c| c.container_message.as_deref())
        .expect("runc message");
    assert!(message.contains("executable file not found"), "{message}");
    assert_eq!(d.main_container_never_started, Some(true));
    assert_eq!(d.disruption_reason, None);
}

#[test]
fn node_pressure_eviction_is_row_7_with_reason_and_disruption() {
    let c = classified(EventType::Modified, FAILED_EVICTED);
    assert_eq!(c.rule, Rule::PhaseFailed);
    let d = failed(&c);
    assert_eq!(d.pod_reason.as_deref(), Some("Evicted"));
    assert!(d
        .pod_message
        .as_deref()
        .is_some_and(|m| m.starts_with("The node was low on resource: memory.")));
    assert_eq!(d.disruption_reason.as_deref(), Some("TerminationByKubelet"));
    assert_eq!(main_container(d), (Some("Error"), Some(137)));
    assert_eq!(d.main_container_never_started, Some(false));
}

#[test]
fn pending_pod_deleted_on_a_live_kubelet_fails_as_never_started() {
    let p = pod(FAILED_DELETED_PENDING);
    assert_eq!(p.phase, Some(PodPhase::Failed));
    assert_eq!(p.deletion_timestamp, Some(ts("2026-11-22T08:00:35Z")));
    for kind in [EventType::Modified, EventType::Deleted] {
        let c = classify(kind, &p, &fatal());
        assert_eq!(c.rule, Rule::PhaseFailed, "{kind:?}");
        let d = failed(&c);
        assert_eq!(
            main_container(d),
            (Some("ContainerStatusUnknown"), Some(137))
        );
        assert_eq!(d.main_container_never_started, Some(true));
        assert_eq!(d.disruption_reason, None);
    }
}

#[test]
fn image_pull_back_off_is_row_6_unless_listed_as_fatal() {
    let p = pod(PENDING_BACKOFF);
    assert_eq!(p.phase, Some(PodPhase::Pending));
    let c = classify(EventType::Modified, &p, &fatal());
    assert_eq!((c.rule, c.outcome), (Rule::Pending, PodOutcome::Ignore));
    let mut stricter = fatal();
    stricter.push("ImagePullBackOff".into());
    let c = classify(EventType::Modified, &p, &stricter);
    assert_eq!(c.rule, Rule::FatalPendingReason);
    assert_eq!(
        failed(&c).pending_reason.as_deref(),
        Some("ImagePullBackOff")
    );
}

#[test]
fn err_image_pull_is_row_5_and_deleting_the_pending_pod_is_row_4() {
    let p = pod(PENDING_ERR_IMAGE_PULL);
    let c = classify(EventType::Modified, &p, &fatal());
    assert_eq!(c.rule, Rule::FatalPendingReason);
    assert_eq!(c.rule.row(), 5);
    let d = failed(&c);
    assert_eq!(d.pending_reason.as_deref(), Some("ErrImagePull"));
    assert_eq!(d.main_container_never_started, Some(true));
    // Row 5 details are podwarden's only: Airflow reports no failure details for it.
    assert_eq!(
        (d.pod_status.as_deref(), d.container.as_ref()),
        (None, None)
    );
    assert_eq!(classify(EventType::Modified, &p, &[]).rule, Rule::Pending);
    let mut deleting = p;
    deleting.deletion_timestamp = Some(ts("2026-11-22T04:06:00Z"));
    let c = classify(EventType::Deleted, &deleting, &fatal());
    assert_eq!(
        (c.rule, c.outcome),
        (Rule::DeletedWhilePending, PodOutcome::Ignore)
    );
}

#[test]
fn unschedulable_pod_is_row_6_with_no_container_status() {
    let p = pod(PENDING_UNSCHEDULABLE);
    assert_eq!(p.node_name, None);
    assert!(p.containers.is_empty() && p.init_containers.is_empty());
    assert_eq!(p.main_container_never_started(), None);
    let scheduled = p
        .conditions
        .iter()
        .find(|c| c.kind == "PodScheduled")
        .expect("PodScheduled condition");
    assert_eq!(
        (scheduled.status.as_str(), scheduled.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );
    let c = classify(EventType::Modified, &p, &fatal());
    assert_eq!((c.rule, c.outcome), (Rule::Pending, PodOutcome::Ignore));
}

#[test]
fn init_container_crash_loop_is_row_6_and_scanned_before_the_main_container() {
    let p = pod(PENDING_INIT_CRASHLOOP);
    assert_eq!(p.init_containers.len(), 1);
    let init = &p.init_containers[0];
    assert_eq!(
        (init.name.as_str(), init.restart_count),
        ("git-sync-init", 5)
    );
    assert!(
        matches!(&init.state, ContainerState::Waiting { reason: Some(r), .. } if r == "CrashLoopBackOff")
    );
    assert!(
        matches!(&p.containers[0].state, ContainerState::Waiting { reason: Some(r), .. } if r == "PodInitializing")
    );
    assert_eq!(p.main_container_never_started(), Some(true));
    assert_eq!(
        classify(EventType::Modified, &p, &fatal()).rule,
        Rule::Pending
    );
    let mut stricter = fatal();
    stricter.push("CrashLoopBackOff".into());
    let c = classify(EventType::Modified, &p, &stricter);
    assert_eq!(c.rule, Rule::FatalPendingReason);
    assert_eq!(
        failed(&c).pending_reason.as_deref(),
        Some("CrashLoopBackOff")
    );
}

#[test]
fn running_pod_restarted_after_oom_kill_is_row_10_then_row_9_when_deleted() {
    let p = pod(RUNNING_OOM_LAST_STATE);
    assert_eq!(p.phase, Some(PodPhase::Running));
    assert_eq!(p.containers[0].restart_count, 1);
    assert!(matches!(
        p.containers[0].state,
        ContainerState::Running {
            started_at: Some(_)
        }
    ));
    let c = classify(EventType::Modified, &p, &fatal());
    assert_eq!((c.rule, c.outcome), (Rule::Running, PodOutcome::Ignore));
    let mut deleting = p;
    deleting.deletion_timestamp = Some(ts("2026-11-22T06:20:00Z"));
    assert_eq!(
        classify(EventType::Modified, &deleting, &fatal()).rule,
        Rule::Running
    );
    let c = classify(EventType::Deleted, &deleting, &fatal());
    assert_eq!(c.rule, Rule::DeletedWhileRunning);
    assert_eq!(c.rule.row(), 9);
    let d = failed(&c);
    assert_eq!(d.main_container_never_started, Some(false));
    assert_eq!(
        d.container, None,
        "lastState is history, not the current failure"
    );
}

#[test]
fn preemption_watch_stream_classifies_line_by_line() {
    let mut rows = Vec::new();
    let mut versions = Vec::new();
    let mut last_failure = None;
    for (i, text) in WATCH_PREEMPTION.lines().enumerate() {
        let line =
            k8s_json::parse_watch_line(text).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let WatchLine::Event(event) = line else {
            panic!("line {}: unexpected ERROR", i + 1)
        };
        versions.push(
            event
                .resource_version()
                .parse::<u64>()
                .expect("numeric resource version"),
        );
        match event.pod() {
            None => rows.push(0), // BOOKMARK
            Some((kind, p)) => {
                let c = classify(kind, p, &fatal());
                rows.push(c.rule.row());
                if let PodOutcome::Failed { details } = c.outcome {
                    last_failure = Some((kind, details));
                }
            }
        }
    }
    // ADDED, scheduled, creating, Running, second pod ADDED + unschedulable, DisruptionTarget,
    // deletionTimestamp, second pod deleted while Pending, Failed, BOOKMARK, DELETED Failed.
    assert_eq!(rows, [6, 6, 6, 10, 6, 6, 10, 10, 4, 7, 0, 7]);
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let (kind, d) = last_failure.expect("a failure");
    assert_eq!(kind, EventType::Deleted);
    assert_eq!(
        d.disruption_reason.as_deref(),
        Some("PreemptionByScheduler")
    );
    assert_eq!(main_container(&d), (Some("Error"), Some(137)));
    assert_eq!(d.main_container_never_started, Some(false));
}

#[test]
fn a_pretty_printed_pod_and_its_compact_watch_line_agree() {
    let value: Value = serde_json::from_str(FAILED_EVICTED).expect("fixture is JSON");
    let line = serde_json::json!({ "type": "MODIFIED", "object": value }).to_string();
    let WatchLine::Event(event) = k8s_json::parse_watch_line(&line).expect("watch line") else {
        panic!("expected an event")
    };
    let (kind, from_line) = event.pod().expect("a pod event");
    assert_eq!(kind, EventType::Modified);
    assert_eq!(from_line, &pod(FAILED_EVICTED));
}

#[test]
fn error_event_410_is_read_as_a_status() {
    let line = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 731005 (740177)","reason":"Expired","code":410}}"#;
    let WatchLine::Error(status) = k8s_json::parse_watch_line(line).expect("ERROR line") else {
        panic!("expected ERROR")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert!(status.message.starts_with("too old resource version"));
}

// ---- malformed input --------------------------------------------------------------------------

fn fixture_value(json: &str) -> Value {
    serde_json::from_str(json).expect("fixture is JSON")
}

#[test]
fn truncated_json_is_a_json_error() {
    for fixture in [SUCCEEDED, FAILED_START_ERROR, PENDING_UNSCHEDULABLE] {
        let truncated = &fixture[..fixture.len() / 2];
        assert!(matches!(
            k8s_json::parse_pod(truncated),
            Err(ParseError::Json(_))
        ));
    }
    let first_line = WATCH_PREEMPTION.lines().next().expect("a line");
    let truncated = &first_line[..first_line.len() - 3];
    let err = k8s_json::parse_watch_line(truncated).expect_err("truncated line");
    assert!(
        matches!(err, ParseError::Json(ref m) if m.contains("EOF")),
        "{err}"
    );
}

#[test]
fn wrong_kind_is_not_a_pod() {
    let mut value = fixture_value(SUCCEEDED);
    value["kind"] = "Node".into();
    assert_eq!(
        k8s_json::pod_from_value(value.clone()),
        Err(ParseError::NotAPod("Node".into()))
    );
    // The same object inside a watch event.
    let line = serde_json::json!({ "type": "ADDED", "object": value }).to_string();
    assert_eq!(
        k8s_json::parse_watch_line(&line),
        Err(ParseError::NotAPod("Node".into()))
    );
    // A list is not a pod either (a host must iterate its items).
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": [fixture_value(SUCCEEDED)] });
    assert_eq!(
        k8s_json::pod_from_value(list),
        Err(ParseError::NotAPod("List".into()))
    );
    // A field of the wrong JSON type is a JSON (shape) error.
    let mut value = fixture_value(SUCCEEDED);
    value["status"]["containerStatuses"][0]["restartCount"] = "one".into();
    assert!(matches!(
        k8s_json::pod_from_value(value),
        Err(ParseError::Json(_))
    ));
}

#[test]
fn bad_timestamps_name_the_field() {
    let mut value = fixture_value(FAILED_EXIT1);
    value["metadata"]["creationTimestamp"] = "2026-11-22 02:10:00".into();
    assert_eq!(
        k8s_json::pod_from_value(value),
        Err(ParseError::BadTimestamp {
            field: "metadata.creationTimestamp",
            value: "2026-11-22 02:10:00".into()
        })
    );
    let mut value = fixture_value(FAILED_DELETED_PENDING);
    value["metadata"]["deletionTimestamp"] = "soon".into();
    assert!(matches!(
        k8s_json::pod_from_value(value),
        Err(ParseError::BadTimestamp {
            field: "metadata.deletionTimestamp",
            ..
        })
    ));
    let mut value = fixture_value(FAILED_EXIT1);
    value["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"] =
        "2026-13-01T00:00:00Z".into();
    assert!(matches!(
        k8s_json::pod_from_value(value),
        Err(ParseError::BadTimestamp {
            field: "status.containerStatuses[].state",
            ..
        })
    ));
    let mut value = fixture_value(PENDING_INIT_CRASHLOOP);
    value["status"]["initContainerStatuses"][0]["state"] =
        serde_json::json!({ "running": { "startedAt": "yesterday" } });
    assert!(matches!(
        k8s_json::pod_from_value(value),
        Err(ParseError::BadTimestamp {
            field: "status.initContainerStatuses[].state",
            ..
        })
    ));
}

#[test]
fn missing_name_and_unknown_event_types_are_typed() {
    let mut value = fixture_value(SUCCEEDED);
    value["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("name");
    assert_eq!(
        k8s_json::pod_from_value(value),
        Err(ParseError::MissingField("metadata.name"))
    );
    let line = WATCH_PREEMPTION.lines().next().expect("a line").replacen(
        r#""type":"ADDED""#,
        r#""type":"SYNC""#,
        1,
    );
    assert_eq!(
        k8s_json::parse_watch_line(&line),
        Err(ParseError::UnknownEventType("SYNC".into()))
    );
    let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"creationTimestamp":null},"spec":{"containers":null},"status":{}}}"#;
    assert_eq!(
        k8s_json::parse_watch_line(bookmark),
        Err(ParseError::MissingField("object.metadata.resourceVersion"))
    );
}
