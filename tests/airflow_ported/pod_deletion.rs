//! The pod API helpers: deleting a finished pod, a delete that fails, a delete answered 404.

use podwarden::{ApiOutcome, CommandId, Config, EventType, PodPhase, PodRef, Timestamp};

use crate::common::*;
use crate::support::*;

/// Follows Airflow's `test_delete_pod_successfully` (§10 case 4).
/// A finished pod is deleted once, by namespace and name, with default delete options; a
/// successful delete needs nothing more.
#[test]
fn test_delete_pod_successfully() {
    let mut h = Harness::new(Config {
        namespace: "my-namespace-1".into(),
        ..ported_config()
    });
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    let dels = deletes(&out);
    assert_eq!(dels.len(), 1);
    assert_eq!(dels[0].1, PodRef::new("my-namespace-1", pod.name.clone()));
    assert_eq!(
        dels[0].2, None,
        "V1DeleteOptions(): the pod's own grace period"
    );
    assert!(h.answer(dels[0].0, ApiOutcome::Ok).is_empty());
    assert_eq!(h.ex.state_size().cleanup_retries, 0);
    assert_quiet_for_an_hour(&mut h);
    // The watch then shows the pod go; nothing is left.
    assert!(h
        .event(
            EventType::Deleted,
            &deleting(with_phase(pod, PodPhase::Succeeded, "12"))
        )
        .is_empty());
    assert_eq!(h.ex.state_size().pods, 0);
    assert_eq!(deletes(&h.commands).len(), 1);
}

/// Follows Airflow's `test_delete_pod_raises_404` (§10 case 5).
/// Variant: a delete failing with 400 is an error, not swallowed.
/// The failed delete is retried. Differs on purpose: Airflow re-raises into `sync()`, which
/// re-puts the result and retries at once, forever (a hot loop), and writes the event only once
/// a delete stops raising; podwarden reports the try at once and retries the delete after 1, 2,
/// 4, 8, 16 s, … 60 s, forever by default (`pod_cleanup_max_retries = -1`: a pod we own is never
/// left behind), never reporting the try twice. With a finite budget (here 5) it gives up.
#[test]
fn test_delete_pod_raises_404() {
    let mut h = Harness::new(Config {
        pod_cleanup_max_retries: 5,
        ..ported_config()
    });
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    let mut id = deletes(&out)[0].0;
    let max = h.ex.config().pod_cleanup_max_retries;
    assert_eq!(max, 5);
    for (retry, backoff_ms) in [1000, 2000, 4000, 8000, 16_000].into_iter().enumerate() {
        let failed_at = h.now;
        assert!(h
            .fail(id, 400, "BadRequest", "bad request", None)
            .is_empty());
        assert_eq!(
            h.ex.state_size().cleanup_retries,
            1,
            "retry {retry} is scheduled, not dropped"
        );
        id = retry_delete_after(&mut h, failed_at, backoff_ms, &pod.pod_ref());
    }
    // The last retry fails too: give up, forget the pod, stop.
    assert!(h
        .fail(id, 400, "BadRequest", "bad request", None)
        .is_empty());
    let size = h.ex.state_size();
    assert_eq!(
        (size.pods, size.cleanup_retries, size.awaiting_replies),
        (0, 0, 0)
    );
    assert_quiet_for_an_hour(&mut h);
    assert_eq!(
        deletes(&h.commands).len(),
        6,
        "one delete and five retries, no more"
    );
    assert_eq!(reports(&h.commands).len(), 1, "the try was reported once");
}

/// Waits `backoff_ms` after `failed_at` and returns the id of the retried delete of `pod`.
fn retry_delete_after(
    h: &mut Harness,
    failed_at: Timestamp,
    backoff_ms: u64,
    pod: &PodRef,
) -> CommandId {
    let due = failed_at.plus_ms(backoff_ms);
    assert!(
        h.ex.poll_timeout().is_some_and(|t| t <= due),
        "the retry's wake-up should come by {due}"
    );
    assert!(
        deletes(&h.advance(due.since(h.now) - 1)).is_empty(),
        "no retry before {backoff_ms} ms"
    );
    let again = h.advance(1);
    assert_eq!(kinds(&again), ["DeletePod"]);
    let dels = deletes(&again);
    assert_eq!(&dels[0].1, pod);
    dels[0].0
}

/// Follows Airflow's `test_delete_pod_404_not_raised` (§10 case 6).
/// A delete answered 404 (already gone) is a success: no retry, nothing kept.
#[test]
fn test_delete_pod_404_not_raised() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod, PodPhase::Succeeded, "11"),
    );
    let id = deletes(&out)[0].0;
    assert!(h
        .fail(id, 404, "NotFound", "pods \"x\" not found", None)
        .is_empty());
    let size = h.ex.state_size();
    assert_eq!(
        (size.pods, size.cleanup_retries, size.awaiting_replies),
        (0, 0, 0)
    );
    assert_quiet_for_an_hour(&mut h);
    assert_eq!(deletes(&h.commands).len(), 1);
}
