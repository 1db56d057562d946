//! Snapshots of whole command sequences (inputs `>` and commands `<`), reviewed by hand: a
//! change in what the executor sends for these lifecycles must be a deliberate one.
mod support;

use podwarden::db::TaskState;
use podwarden::{ApiOutcome, Config, EventType, Input, PodPhase};
use support::*;

#[test]
fn pod_succeeds() {
    let mut h = Harness::new(Config::default());
    let k = key("extract");
    let pod = h.launch(&k);
    h.event(EventType::Added, &pod);
    h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Running, "11"),
    );
    let done = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "12"),
    );
    h.ack_all(&done);
    h.event(
        EventType::Modified,
        &deleting(with_phase(pod.clone(), PodPhase::Succeeded, "13")),
    );
    h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Succeeded, "14")),
    );
    assert_eq!(h.ex.state_size(), Default::default());
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn pod_fails_with_error() {
    let mut h = Harness::new(Config::default());
    let k = key("transform");
    let pod = h.launch(&k);
    h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Running, "11"),
    );
    let failed = main_terminated(with_phase(pod, PodPhase::Failed, "12"), "Error", 1, true);
    h.event(EventType::Modified, &failed);
    // The failed pod stays (defaults); a replay of it changes nothing.
    h.event(EventType::Modified, &failed);
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn pod_deleted_while_running() {
    let mut h = Harness::new(Config::default());
    let k = key("load");
    let pod = h.launch(&k);
    let running = with_phase(pod, PodPhase::Running, "11");
    h.event(EventType::Modified, &running);
    // kubectl delete: deletionTimestamp first (still Running), then gone.
    h.event(
        EventType::Modified,
        &deleting(with_phase(running.clone(), PodPhase::Running, "12")),
    );
    let out = h.event(
        EventType::Deleted,
        &deleting(with_phase(running, PodPhase::Running, "13")),
    );
    // The DB says the task had started: a real failure, reported.
    h.answer_state_of(&out, Some(TaskState::Running));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn pod_relabelled_away_is_adopted() {
    let mut h = Harness::new(Config::default());
    let k = key("report");
    let pod = h.launch(&k);
    h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Running, "11"),
    );
    // Another scheduler patched airflow-worker: our watch sees DELETED without deletionTimestamp.
    let mut moved = with_phase(pod, PodPhase::Running, "12");
    moved.labels.insert("airflow-worker".into(), "7".into());
    h.event(EventType::Deleted, &moved);
    assert!(!h.ex.is_tracking(&k));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn watch_expired_then_relist_with_replayed_events() {
    let mut h = Harness::new(Config::default());
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let pod_a = h.launch(&a);
    let pod_b = h.launch(&b);
    let pod_c = h.launch(&c);
    h.event(
        EventType::Modified,
        &with_phase(pod_a.clone(), PodPhase::Running, "20"),
    );
    h.event(
        EventType::Modified,
        &with_phase(pod_b.clone(), PodPhase::Running, "21"),
    );
    h.event(
        EventType::Modified,
        &with_phase(pod_c.clone(), PodPhase::Running, "22"),
    );
    let relist = h.input(
        "watch expired (410)".into(),
        Input::WatchExpired { namespace: None },
    );
    // While the watch was down: a succeeded, b was deleted (gone), c still runs.
    let listed = vec![
        with_phase(pod_a.clone(), PodPhase::Succeeded, "30"),
        with_phase(pod_c.clone(), PodPhase::Running, "31"),
    ];
    let after = h.answer(
        relist[0].id,
        ApiOutcome::Listed {
            pods: listed,
            resource_version: "40".into(),
        },
    );
    h.ack_all(&after);
    // b vanished while Running: the DB says its task had started.
    h.answer_state_of(&after, Some(TaskState::Running));
    // The new watch replays what the list already showed: no second outcome.
    h.event(
        EventType::Added,
        &with_phase(pod_a.clone(), PodPhase::Succeeded, "30"),
    );
    h.event(
        EventType::Modified,
        &with_phase(pod_a, PodPhase::Succeeded, "30"),
    );
    h.event(
        EventType::Added,
        &with_phase(pod_c.clone(), PodPhase::Running, "31"),
    );
    assert!(h.ex.is_tracking(&c));
    assert!(!h.ex.is_tracking(&a) && !h.ex.is_tracking(&b));
    assert_eq!(h.ex.resource_version(), "31");
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn create_gets_429_then_succeeds() {
    let mut h = Harness::new(Config {
        task_publish_max_retries: 1,
        ..Config::default()
    });
    let k = key("rate_limited");
    let first = h.submit(&k);
    h.fail(first[0].id, 429, "TooManyRequests", "rate limited", Some(3));
    // Nothing is created while backed off, however often the host calls in.
    assert!(h.advance(2_999).is_empty());
    let retry = h.advance(1);
    h.ack_all(&retry);
    let pod = created_pod(&retry).expect("retried create");
    h.event(EventType::Added, &pod);
    assert!(h.ex.is_tracking(&k));
    insta::assert_snapshot!(h.transcript);
}

#[test]
fn create_gets_400() {
    let mut h = Harness::new(Config {
        task_publish_max_retries: 1,
        ..Config::default()
    });
    let k = key("bad_spec");
    let first = h.submit(&k);
    h.fail(
        first[0].id,
        400,
        "BadRequest",
        "Pod \"x\" is invalid: spec.containers[0].image: Required value",
        None,
    );
    assert!(h.advance(10_000).is_empty());
    assert!(!h.ex.is_tracking(&k));
    insta::assert_snapshot!(h.transcript);
}
