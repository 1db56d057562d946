//! The launch rules on hand-built inputs.

use super::*;
use crate::label::SafeValueMemo;

fn status(code: u16, reason: &str, message: &str, retry_after_secs: Option<u64>) -> ApiFailure {
    ApiFailure::Status {
        code,
        reason: reason.into(),
        message: message.into(),
        retry_after_secs,
    }
}

#[test]
fn pod_names_are_valid_unique_and_stable() {
    let k = TaskKey::new("My DAG", "extract_täble", "run", 1);
    let a = pod_name("5", &k, 0);
    assert_eq!(a, pod_name("5", &k, 0));
    assert_ne!(a, pod_name("5", &k, 1));
    assert_ne!(a, pod_name("6", &k, 0));
    assert!(a.starts_with("my-dag-extract-t-ble-"), "{a}");
    let long = TaskKey::new("d".repeat(1400), "t".repeat(1400), "r", 1);
    let weird = TaskKey::new("影師", "___", "r", 1);
    for name in [a, pod_name("5", &long, 0), pod_name("5", &weird, 0)] {
        assert!(name.len() <= NAME_MAX, "{name}");
        let b = name.as_bytes();
        assert!(
            b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric(),
            "{name}"
        );
        assert!(
            b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-'),
            "{name}"
        );
    }
}

/// Every label and annotation the manifest writes is reserved, so a valid template can never
/// be overwritten by it; and a valid template's own keys all reach the pod.
#[test]
fn manifest_writes_only_reserved_keys_over_the_template() {
    let mapped = TaskKey::new("dag", "task", "run", 2).with_map_index(3);
    let template = PodTemplate {
        labels: BTreeMap::from([("team".into(), "data".into())]),
        annotations: BTreeMap::from([("example.com/owner".into(), "etl".into())]),
        ..PodTemplate::default()
    };
    assert_eq!(template.validate(), Ok(()));
    let config = Config::default();
    let settings = config.settings().expect("valid defaults");
    let m = manifest(
        &config,
        &settings,
        "5",
        &mapped,
        &template,
        Launch {
            number: 0,
            requeues: 1,
        },
        &mut SafeValueMemo::default(),
    );
    for k in m
        .labels
        .keys()
        .filter(|k| !template.labels.contains_key(*k))
    {
        assert!(label::RESERVED_LABELS.contains(&k.as_str()), "label {k}");
    }
    for k in m
        .annotations
        .keys()
        .filter(|k| !template.annotations.contains_key(*k))
    {
        assert!(
            label::RESERVED_ANNOTATIONS.contains(&k.as_str()),
            "annotation {k}"
        );
    }
    assert_eq!(m.labels["team"], "data");
    assert_eq!(m.annotations["example.com/owner"], "etl");
    assert!(m.labels.contains_key(label::MAP_INDEX));
    assert!(m.annotations.contains_key(label::MAP_INDEX));
}

#[test]
fn publish_errors_follow_airflow_matrix() {
    // Airflow's rule: retries counted, no wait between them.
    let mr0 = Config {
        task_publish_retry_timeout: 0.0,
        ..Config::default()
    };
    let mr1 = Config {
        task_publish_max_retries: 1,
        ..mr0.clone()
    };
    let fail = PublishDecision::Fail;
    let retry = PublishDecision::Retry {
        backoff_ms: None,
        retry_in_ms: 0,
    };
    for f in [
        status(400, "BadRequest", "any message", None),
        status(403, "Forbidden", "permission denied", None),
        status(404, "NotFound", "", None),
        status(422, "Invalid", "", None),
        status(12345, "", "", None),
    ] {
        assert_eq!(
            on_publish_error(mr0.settings().unwrap().publish_retries, &f, 0, 0, true),
            fail,
            "{f}"
        );
        assert_eq!(
            on_publish_error(mr1.settings().unwrap().publish_retries, &f, 0, 0, true),
            fail,
            "{f}"
        );
    }
    for f in [
        status(
            403,
            "Forbidden",
            "pods \"x\" is forbidden: exceeded quota: q",
            None,
        ),
        status(
            409,
            "Conflict",
            "the object has been modified; please apply",
            None,
        ),
        status(410, "Gone", "too old resource version: 1 (2)", None),
        status(500, "InternalError", "webhook", None),
        status(502, "", "", None),
        status(504, "", "", None),
        ApiFailure::Timeout,
        ApiFailure::Connection {
            message: "Connection aborted.".into(),
        },
    ] {
        assert_eq!(
            on_publish_error(mr0.settings().unwrap().publish_retries, &f, 0, 0, true),
            fail,
            "{f}"
        );
        assert_eq!(
            on_publish_error(mr1.settings().unwrap().publish_retries, &f, 0, 0, true),
            retry,
            "{f}"
        );
        assert_eq!(
            on_publish_error(mr1.settings().unwrap().publish_retries, &f, 1, 0, true),
            fail,
            "{f}"
        );
    }
    assert_eq!(
        on_publish_error(
            mr1.settings().unwrap().publish_retries,
            &status(429, "TooManyRequests", "", Some(3)),
            0,
            0,
            true
        ),
        PublishDecision::Retry {
            backoff_ms: Some(3000),
            retry_in_ms: 0
        }
    );
    assert_eq!(
        on_publish_error(
            mr1.settings().unwrap().publish_retries,
            &status(429, "TooManyRequests", "", None),
            0,
            0,
            true
        ),
        PublishDecision::Retry {
            backoff_ms: Some(0),
            retry_in_ms: 0
        }
    );
    assert_eq!(
        on_publish_error(
            mr1.settings().unwrap().publish_retries,
            &status(
                503,
                "ServiceUnavailable",
                "apiserver is shutting down",
                Some(1)
            ),
            0,
            0,
            true
        ),
        PublishDecision::Retry {
            backoff_ms: Some(1000),
            retry_in_ms: 0
        }
    );
    let unlimited = Config {
        task_publish_max_retries: -1,
        ..mr0.clone()
    };
    assert_eq!(
        on_publish_error(
            unlimited.settings().unwrap().publish_retries,
            &status(500, "", "", None),
            1_000_000,
            0,
            true
        ),
        retry
    );
    assert_eq!(
        on_publish_error(
            mr0.settings().unwrap().publish_retries,
            &status(409, "AlreadyExists", "pods \"x\" already exists", None),
            0,
            0,
            true
        ),
        PublishDecision::AlreadyCreated
    );
}

/// podwarden's default: retries budgeted by time, waiting 1 s, 2 s, … 60 s between them;
/// the count does not matter, the time since the first failure does.
#[test]
fn timed_publish_retries_back_off_and_end_with_the_window() {
    let cfg = Config::default();
    let busy = status(429, "TooManyRequests", "", Some(1));
    assert_eq!(
        on_publish_error(cfg.settings().unwrap().publish_retries, &busy, 0, 0, true),
        PublishDecision::Retry {
            backoff_ms: Some(1000),
            retry_in_ms: 1000
        }
    );
    assert_eq!(
        on_publish_error(
            cfg.settings().unwrap().publish_retries,
            &ApiFailure::Timeout,
            40,
            599_999,
            true
        ),
        PublishDecision::Retry {
            backoff_ms: None,
            retry_in_ms: 60_000
        }
    );
    assert_eq!(
        on_publish_error(
            cfg.settings().unwrap().publish_retries,
            &ApiFailure::Timeout,
            3,
            600_000,
            true
        ),
        PublishDecision::Fail
    );
    // A refusal of the pod itself fails at once, window or not.
    assert_eq!(
        on_publish_error(
            cfg.settings().unwrap().publish_retries,
            &status(422, "Invalid", "", None),
            0,
            0,
            true
        ),
        PublishDecision::Fail
    );
}

#[test]
fn delayed_and_parked_tries_wait_their_turn() {
    let cfg = Config::default();
    let mut q = LaunchQueue::default();
    let (a, b) = (
        TaskKey::new("d", "a", "r", 1),
        TaskKey::new("d", "b", "r", 1),
    );
    q.push_at(a.clone(), Timestamp(5_000));
    q.park(b.clone());
    assert_eq!(q.len(), 2);
    assert_eq!(
        q.next_ready(Timestamp(1_000), &cfg.settings().unwrap(), 0),
        None
    );
    assert_eq!(
        q.wake_at(&cfg.settings().unwrap(), 0),
        Some(Timestamp(5_000))
    );
    assert_eq!(
        q.next_ready(Timestamp(5_000), &cfg.settings().unwrap(), 0),
        Some(a)
    );
    assert_eq!(
        q.wake_at(&cfg.settings().unwrap(), 0),
        None,
        "a parked try waits for an answer"
    );
    q.unpark(&b);
    assert_eq!(
        q.next_ready(Timestamp(6_000), &cfg.settings().unwrap(), 0),
        Some(b)
    );
    assert_eq!(q.len(), 0);
}

#[test]
fn batch_window_and_backoff() {
    let cfg = Config {
        worker_pods_creation_batch_size: 2,
        ..Config::default()
    };
    let mut q = LaunchQueue::default();
    for i in 0..5 {
        q.push(TaskKey::new("d", format!("t{i}"), "r", 1));
    }
    let now = Timestamp(10_000);
    assert!(q.next_ready(now, &cfg.settings().unwrap(), 0).is_some());
    assert!(q.next_ready(now, &cfg.settings().unwrap(), 0).is_some());
    assert!(q.next_ready(now, &cfg.settings().unwrap(), 0).is_none());
    assert_eq!(
        q.wake_at(&cfg.settings().unwrap(), 0),
        Some(Timestamp(11_000))
    );
    assert!(q
        .next_ready(Timestamp(11_000), &cfg.settings().unwrap(), 0)
        .is_some());
    q.back_off_until(Timestamp(20_000));
    assert!(q
        .next_ready(Timestamp(12_000), &cfg.settings().unwrap(), 0)
        .is_none());
    assert_eq!(
        q.wake_at(&cfg.settings().unwrap(), 0),
        Some(Timestamp(20_000))
    );
    assert!(q
        .next_ready(Timestamp(20_000), &cfg.settings().unwrap(), 0)
        .is_some());
    assert_eq!(q.len(), 1);
}
