//! Pod creation errors: Airflow's `test_run_next_exception_requeue`,
//! `test_skip_pod_creation_on_create_pods_after` and `test_run_next_connection_error_requeue`.

use podwarden::command::ApiCall;
use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, EventType, PodPhase,
    ReportedState, TaskKey, Timestamp,
};

use crate::common::*;
use crate::support::*;

/// Airflow's publish matrix on its own. Differs on purpose (tested in `tests/completion.rs`):
/// with `pod_launch_failure_retries` on, a create that keeps failing on a transient error is a
/// launch failure and asks the DB whether to requeue, instead of failing at once; and retries
/// are budgeted by time (`task_publish_retry_timeout`), with a back-off, not counted. Turning
/// both off gives Airflow's outcome exactly.
fn with_retries(max_retries: i64) -> Config {
    Config {
        task_publish_max_retries: max_retries,
        task_publish_retry_timeout: 0.0,
        pod_launch_failure_retries: 0,
        ..ported_config()
    }
}

fn status(code: u16, reason: &str, message: &str, retry_after: Option<u64>) -> ApiFailure {
    ApiFailure::Status {
        code,
        reason: reason.into(),
        message: message.into(),
        retry_after_secs: retry_after,
    }
}

/// The common setup of `test_run_next_exception_requeue`: submit `("dag","task","run_id",1)`, see
/// exactly one create, and answer it with `failure`. Returns what that answer produced.
fn create_fails(config: Config, failure: ApiFailure) -> (Harness, TaskKey, Vec<Command>) {
    let mut h = Harness::new(config);
    let k = key("task");
    let cmds = h.submit(&k);
    let id = only_create(&cmds);
    let out = h.answer(id, ApiOutcome::Failed { failure });
    (h, k, out)
}

/// Airflow: `event_buffer[key][0] == FAILED` and the task queue is empty.
fn assert_failed(h: &mut Harness, k: &TaskKey, out: &[Command], needle: &str) {
    assert_eq!(kinds(out), ["Report"], "{out:?}");
    assert_failure_reported(out, k, needle);
    assert_not_queued(h, k);
}

/// Airflow: the job is back on the task queue, nothing is in the event buffer.
fn assert_requeued(h: &Harness, k: &TaskKey, out: &[Command]) {
    assert!(
        out.is_empty(),
        "nothing is created or reported in the same loop: {out:?}"
    );
    assert!(h.ex.is_tracking(k));
    let size = h.ex.state_size();
    assert_eq!(
        (size.tasks, size.pods),
        (1, 0),
        "queued again, no pod tracked"
    );
}

/// The retry is created exactly `delay_ms` after `t0` (not a millisecond earlier), and the
/// executor asks to be woken by then; returns its id.
fn retry_created_after(h: &mut Harness, t0: Timestamp, delay_ms: u64) -> CommandId {
    let due = t0.plus_ms(delay_ms);
    assert!(
        h.ex.poll_timeout().is_some_and(|t| t <= due),
        "wake-up {:?} should come by {due}",
        h.ex.poll_timeout()
    );
    let early = h.advance(due.since(h.now) - 1);
    assert!(
        created(&early).is_empty(),
        "no create before {delay_ms} ms: {early:?}"
    );
    only_create(&h.advance(1))
}

/// Airflow: "the create is called and the queue is empty (retry succeeded)".
fn assert_retry_succeeds(h: &mut Harness, k: &TaskKey, id: CommandId) {
    assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    assert!(
        h.ex.is_tracking(k),
        "created: running until the watch reports its end"
    );
    assert_quiet_for_an_hour(h); // the queue is empty
    assert!(
        reports(&h.commands).is_empty(),
        "no event reaches the scheduler"
    );
}

/// What a failed create leads to.
enum Expected {
    /// FAILED at once, the reason mentioning this; the task queue is empty; 1 create call.
    Failed(&'static str),
    /// Requeued; the retry is created exactly `after_ms` later and succeeds.
    RetrySucceeds { after_ms: u64 },
    /// Requeued; the retry, created 1 s later, fails the same way: FAILED, the reason mentioning
    /// `needle`; 2 create calls.
    RetryFails { needle: &'static str },
    /// Requeued; the retry, created 1 s later, reuses the same pod name.
    RetrySamePodName,
    /// A 409 `AlreadyExists`: our own pod exists already, so it counts as created.
    CountsAsCreated,
    /// FAILED, the reason mentioning this; the pod the failed create may have made is deleted.
    FailedAndDeleted(&'static str),
}

/// One row of Airflow's parametrised `test_run_next_exception_requeue` or
/// `test_run_next_connection_error_requeue`: `("dag","task","run_id",1)` is submitted and its
/// one create is answered with `failure`, under `task_publish_max_retries = mr` for each `mr`.
struct Case {
    /// The test this row was before the table (with ` (mr N)` appended when it is run).
    name: &'static str,
    mrs: &'static [i64],
    failure: ApiFailure,
    /// The configuration for a given `mr` (default [`with_retries`]).
    config: fn(i64) -> Config,
    expected: Expected,
}

fn case(name: &'static str, mrs: &'static [i64], failure: ApiFailure, expected: Expected) -> Case {
    Case {
        name,
        mrs,
        failure,
        config: with_retries,
        expected,
    }
}

/// The one driver: runs `case` with `mr` and checks what it expects.
fn run(case: &Case, mr: i64) {
    let (mut h, k, out) = create_fails((case.config)(mr), case.failure.clone());
    let t0 = h.now;
    match case.expected {
        Expected::Failed(needle) => {
            assert_failed(&mut h, &k, &out, needle);
            assert_eq!(created(&h.commands).len(), 1, "1 create call");
        }
        Expected::RetrySucceeds { after_ms } => {
            assert_requeued(&h, &k, &out);
            let id = retry_created_after(&mut h, t0, after_ms);
            assert_retry_succeeds(&mut h, &k, id);
        }
        Expected::RetryFails { needle } => {
            assert_requeued(&h, &k, &out);
            let id = retry_created_after(&mut h, t0, 1000);
            let failure = case.failure.clone();
            let out = h.answer(id, ApiOutcome::Failed { failure });
            assert_failed(&mut h, &k, &out, needle);
            assert_eq!(created(&h.commands).len(), 2, "2 create calls");
        }
        Expected::RetrySamePodName => {
            assert_requeued(&h, &k, &out);
            retry_created_after(&mut h, t0, 1000);
            let all = created(&h.commands);
            assert_eq!(all.len(), 2);
            assert_eq!(all[0], all[1], "the retry creates the same pod name");
        }
        Expected::CountsAsCreated => {
            assert!(out.is_empty(), "{out:?}");
            assert!(h.ex.is_tracking(&k));
            assert_eq!(h.ex.state_size().pods, 1, "the pod is tracked as ours");
            assert_quiet_for_an_hour(&mut h); // not requeued, not failed
            let pod = created_pod(&h.commands).expect("the create");
            let out = h.event(
                EventType::Modified,
                &with_phase(pod, PodPhase::Succeeded, "11"),
            );
            assert_eq!(kinds(&out), ["DeletePod", "Report"]);
            assert_eq!(reports(&out), [(k, ReportedState::Succeeded, None)]);
        }
        Expected::FailedAndDeleted(needle) => {
            assert_eq!(kinds(&out), ["DeletePod", "Report"]);
            assert_failure_reported(&out, &k, needle);
            let dels = deletes(&out);
            assert_eq!(
                dels[0].1,
                created(&h.commands)[0],
                "the pod the failed create may have made"
            );
            assert!(h.fail(dels[0].0, 404, "NotFound", "", None).is_empty());
            assert_not_queued(&mut h, &k);
            assert_eq!(h.ex.state_size().pods, 0);
        }
    }
}

/// Runs every row with each of its `mr`s; a failing row is reported by its name.
fn run_table(cases: &[Case]) {
    run_cases(
        cases.iter().flat_map(|c| {
            c.mrs
                .iter()
                .map(move |mr| (format!("{} (mr {mr})", c.name), (c, *mr)))
        }),
        |(c, mr)| run(c, *mr),
    );
}

const EXCEEDED_QUOTA: &str =
    "pods \"x\" is forbidden: exceeded quota: my-quota, requested: pods=1, used: pods=10";

const OBJECT_MODIFIED: &str =
    "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version \
     and try again";

const WEBHOOK_FAILED: &str =
    "Internal error occurred: failed calling webhook \"mutation.example.com\": context deadline exceeded";

/// Follows Airflow's `test_run_next_exception_requeue` (§10 cases 7–21), one row per variant
/// (each row names the test it was).
#[test]
fn test_run_next_exception_requeue() {
    use Expected::*;
    run_table(&[
        // §10 case 7. Variant: 400 BadRequest.
        // A 400 fails the try at once, whatever `task_publish_max_retries` (0 and 1).
        case(
            "test_run_next_exception_requeue_400_bad_request",
            &[0, 1],
            status(400, "BadRequest", "any message", None),
            Failed("(400)"),
        ),
        // §10 case 8. Variant: 403 permission denied.
        // A 403 that is not a quota error fails at once with 0 and 1 retries.
        case(
            "test_run_next_exception_requeue_403_permission_denied",
            &[0, 1],
            status(
                403,
                "Forbidden",
                "pods is forbidden: User \"system:serviceaccount:airflow:scheduler\" cannot create resource",
                None,
            ),
            Failed("(403)"),
        ),
        // §10 case 9. Variant: 403 "exceeded quota", mr 0.
        // With no retries allowed, a transient quota error still fails the try.
        case(
            "test_run_next_exception_requeue_403_exceeded_quota_no_retries",
            &[0],
            status(403, "Forbidden", EXCEEDED_QUOTA, None),
            Failed("exceeded quota"),
        ),
        // §10 case 10. Variant: 403 "exceeded quota", mr 1.
        // The try is requeued; the next loop creates the pod and the queue is empty.
        case(
            "test_run_next_exception_requeue_403_exceeded_quota_retry_succeeds",
            &[1],
            status(403, "Forbidden", EXCEEDED_QUOTA, None),
            RetrySucceeds { after_ms: 1000 },
        ),
        // §10 case 10. Variant: 403 "exceeded quota", mr 1, the error persists.
        // After the one allowed retry fails the same way, the try is FAILED.
        case(
            "test_run_next_exception_requeue_403_exceeded_quota_retry_fails",
            &[1],
            status(403, "Forbidden", EXCEEDED_QUOTA, None),
            RetryFails {
                needle: "exceeded quota",
            },
        ),
        // §10 case 11. Variant: 404.
        // A 404 (e.g. the namespace does not exist) fails at once with 0 and 1 retries.
        case(
            "test_run_next_exception_requeue_404_not_found",
            &[0, 1],
            status(404, "NotFound", "namespaces \"x\" not found", None),
            Failed("(404)"),
        ),
        // §10 case 11. Variant: 422.
        // An invalid pod spec fails at once with 0 and 1 retries.
        case(
            "test_run_next_exception_requeue_422_unprocessable_entity",
            &[0, 1],
            status(422, "Invalid", "Pod \"x\" is invalid: spec.containers", None),
            Failed("(422)"),
        ),
        // §10 case 12. Variant: status 12345.
        // An unknown status is not transient: FAILED at once with 0 and 1 retries.
        case(
            "test_run_next_exception_requeue_unknown_status_12345",
            &[0, 1],
            status(12345, "", "", None),
            Failed("(12345)"),
        ),
        // §10 case 13. Variant: 409 "object has been modified".
        // With mr 1 the try is requeued and the second loop creates the pod; with mr 0 it fails.
        case(
            "test_run_next_exception_requeue_409_object_modified",
            &[1],
            status(409, "Conflict", OBJECT_MODIFIED, None),
            RetrySucceeds { after_ms: 1000 },
        ),
        case(
            "test_run_next_exception_requeue_409_object_modified",
            &[0],
            status(409, "Conflict", OBJECT_MODIFIED, None),
            Failed("(409)"),
        ),
        // §10 case 13. Variant: 409 with reason `AlreadyExists`, mr 0.
        // Differs on purpose: a 409 with reason `AlreadyExists` means our own deterministic pod
        // name exists already (an earlier create that timed out went through), so it counts as
        // created, even with mr 0: nothing is reported, nothing is retried, and the watch
        // finishes the try. Airflow would fail the try (and, with random names, could never see
        // it is its own pod).
        case(
            "test_run_next_exception_requeue_409_already_exists_counts_as_created",
            &[0],
            status(409, "AlreadyExists", "pods \"x\" already exists", None),
            CountsAsCreated,
        ),
        // §10 case 14. Variant: 410 "too old resource version", mr 1.
        // The try is requeued and the second loop creates the pod.
        case(
            "test_run_next_exception_requeue_410_too_old_resource_version",
            &[1],
            status(
                410,
                "Gone",
                "too old resource version: 65442975 (65489651)",
                None,
            ),
            RetrySucceeds { after_ms: 1000 },
        ),
        // §10 case 15. Variant: 429 with a non-JSON body and `Retry-After: 3`, mr 1.
        // The try is requeued and creation backs off for exactly 3 s; then the pod is created
        // and the queue is empty.
        case(
            "test_run_next_exception_requeue_429_retry_after",
            &[1],
            status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                Some(3),
            ),
            RetrySucceeds { after_ms: 3000 },
        ),
        // §10 case 16. Variant: 429 with an empty body, mr 0.
        // Rate limiting with no retries left fails the try.
        case(
            "test_run_next_exception_requeue_429_empty_body_no_retries",
            &[0],
            status(429, "TooManyRequests", "", None),
            Failed("(429)"),
        ),
        // §10 case 17. Variant: 500 webhook failure, mr 1.
        // The try is requeued; the retry in the next loop succeeds.
        case(
            "test_run_next_exception_requeue_500_webhook_retry_succeeds",
            &[1],
            status(500, "InternalError", WEBHOOK_FAILED, None),
            RetrySucceeds { after_ms: 1000 },
        ),
        // §10 case 17. Variant: 500 webhook failure, mr 1, "retry failed".
        // The second 500 exhausts the budget of 1: FAILED after the second loop.
        case(
            "test_run_next_exception_requeue_500_webhook_retry_fails",
            &[1],
            status(500, "InternalError", WEBHOOK_FAILED, None),
            RetryFails { needle: "(500)" },
        ),
        // §10 case 18. Variant: 502, mr 1.
        // Requeued without back-off: the very next loop (1 s) creates the pod.
        case(
            "test_run_next_exception_requeue_502_bad_gateway",
            &[1],
            status(502, "BadGateway", "", None),
            RetrySucceeds { after_ms: 1000 },
        ),
        // §10 case 19. Variant: 503 "apiserver is shutting down" with `Retry-After: 1`, mr 1.
        // Requeued and backed off 1 s, longer than the loop (here 0.1 s, so the back-off is what
        // decides); then the pod is created.
        Case {
            config: |mr| Config {
                scheduler_idle_sleep_time: 0.1,
                ..with_retries(mr)
            },
            ..case(
                "test_run_next_exception_requeue_503_retry_after",
                &[1],
                status(503, "ServiceUnavailable", "apiserver is shutting down", Some(1)),
                RetrySucceeds { after_ms: 1000 },
            )
        },
        // §10 case 20. Variant: 504, mr 1.
        // Requeued without back-off; the next loop creates the pod.
        case(
            "test_run_next_exception_requeue_504_gateway_timeout",
            &[1],
            status(504, "GatewayTimeout", "", None),
            RetrySucceeds { after_ms: 1000 },
        ),
        // §10 case 21. Variant: 503 with `Retry-After: 1`, mr 1, error persists.
        // After the back-off the retry fails again the same way: FAILED.
        case(
            "test_run_next_exception_requeue_503_retry_after_persists",
            &[1],
            status(503, "ServiceUnavailable", "apiserver is shutting down", Some(1)),
            RetryFails { needle: "(503)" },
        ),
    ]);
}

/// Follows Airflow's `test_skip_pod_creation_on_create_pods_after` (§10 case 22).
/// While a 429 back-off (`Retry-After: 999999`) runs, no loop creates any pod, not even for a
/// try submitted meanwhile; when it ends, the requeued try is created first and nothing was ever
/// reported (Airflow: the event buffer still holds only QUEUED).
#[test]
fn test_skip_pod_creation_on_create_pods_after() {
    let mut h = Harness::new(with_retries(1));
    let k = key("task");
    let t0 = h.now;
    let id = only_create(&h.submit(&k));
    let out = h.fail(id, 429, "TooManyRequests", "", Some(999_999));
    assert_requeued(&h, &k, &out);
    let until = t0.plus_ms(999_999_000);
    for _ in 0..3 {
        assert!(h.advance(1000).is_empty(), "syncs 2-4 create nothing");
    }
    let k2 = key("task2");
    assert!(
        h.submit(&k2).is_empty(),
        "the back-off holds every creation"
    );
    // Every loop until the last millisecond of the back-off.
    let waiting = h.advance(until.since(h.now) - 1);
    assert!(created(&waiting).is_empty(), "{:?}", kinds(&waiting));
    assert_eq!(
        created(&h.commands).len(),
        1,
        "still exactly 1 create call in total"
    );
    assert!(h.ex.is_tracking(&k) && h.ex.is_tracking(&k2));
    assert!(reports(&h.commands).is_empty());

    let cmds = h.advance(1);
    let id = only_create(&cmds);
    let CommandKind::Api(ApiCall::CreatePod { manifest }) = &cmds[0].kind else {
        unreachable!()
    };
    assert_eq!(
        manifest.annotations["task_id"], "task",
        "the requeued try goes first"
    );
    assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    assert!(h.ex.is_tracking(&k));
    assert!(reports(&h.commands).is_empty());
    // The next loop creates the second try (batch size 1).
    let id2 = only_create(&h.advance(1000));
    assert!(h.answer(id2, ApiOutcome::Ok).is_empty());
    assert_quiet_for_an_hour(&mut h); // the queue is empty
    assert!(h.ex.is_tracking(&k) && h.ex.is_tracking(&k2));
}

/// Follows Airflow's `test_run_next_connection_error_requeue` (§10 case 26), one row per variant
/// (each row names the test it was).
#[test]
fn test_run_next_connection_error_requeue() {
    use Expected::*;
    let aborted = || ApiFailure::Connection {
        message: "('Connection aborted.', RemoteDisconnected())".into(),
    };
    run_table(&[
        // Variant: `ProtocolError ("Connection aborted.")`, mr 1.
        // A connection error is transient: requeued, and the next loop creates the pod.
        case(
            "test_run_next_connection_error_requeue_protocol_error",
            &[1],
            aborted(),
            RetrySucceeds { after_ms: 1000 },
        ),
        // Variant: `MaxRetryError`, mr 1.
        // Requeued like any connection error, with no back-off; the next loop creates the pod.
        case(
            "test_run_next_connection_error_requeue_max_retry_error",
            &[1],
            ApiFailure::Connection {
                message: "HTTPSConnectionPool(host='10.0.0.1', port=443): Max retries exceeded with url: /api/v1/pods".into(),
            },
            RetrySucceeds { after_ms: 1000 },
        ),
        // Variant: `ReadTimeoutError` (in the same transient set), mr 1.
        // A create that timed out is requeued; its retry reuses the same pod name, so if the
        // first create did go through, the retry meets it rather than starting a second pod.
        case(
            "test_run_next_connection_error_requeue_read_timeout",
            &[1],
            ApiFailure::Timeout,
            RetrySamePodName,
        ),
        // Variant: `ProtocolError`, mr 0.
        // No retries allowed: FAILED and the queue is empty. Differs on purpose: because a
        // create cut off by a connection error may still have made the pod, podwarden also
        // deletes that pod so it cannot run a try the scheduler already counts as failed (404
        // then counts as done).
        case(
            "test_run_next_connection_error_requeue_no_retries",
            &[0],
            aborted(),
            FailedAndDeleted("Connection aborted."),
        ),
    ]);
}

/// Submits `n` tries at once (one input each), returning every command they produced.
fn submit_all(h: &mut Harness, n: usize) -> (Vec<TaskKey>, Vec<Command>) {
    let keys: Vec<TaskKey> = (0..n).map(|i| key(&format!("task{i}"))).collect();
    let mut cmds = Vec::new();
    for k in &keys {
        cmds.extend(h.submit(k));
    }
    (keys, cmds)
}

/// Airflow's `_create_pods_sequentially` (§2.3 step 5): a loop creates one pod at a time, and a
/// create answered with 429 (or any `Retry-After`) **stops the rest of the loop's creates**, not
/// only the next loops'. With a batch of 3, the second and third creates are not sent until the
/// back-off has passed; then they go one at a time, each after the previous answer.
#[test]
fn a_429_in_a_batch_stops_the_rest_of_the_batch() {
    let mut h = Harness::new(Config {
        worker_pods_creation_batch_size: 3,
        ..with_retries(1)
    });
    let (keys, cmds) = submit_all(&mut h, 3);
    let first = only_create(&cmds);
    let out = h.fail(first, 429, "TooManyRequests", "", Some(5));
    assert!(
        created(&out).is_empty(),
        "the 429 stops the batch: {:?}",
        kinds(&out)
    );
    let waiting = h.advance(4_999);
    assert!(created(&waiting).is_empty(), "{:?}", kinds(&waiting));
    // The back-off is over: the requeued try is at the back of the queue, so the second try
    // goes first, alone; each answer lets the next create go, within the loop's batch of 3.
    let second = h.advance(1);
    let id = only_create(&second);
    assert_eq!(task_of_create(&h, id), "task1");
    let third = h.answer(id, ApiOutcome::Ok);
    let id = only_create(&third);
    assert_eq!(task_of_create(&h, id), "task2");
    let last = h.answer(id, ApiOutcome::Ok);
    let id = only_create(&last);
    assert_eq!(
        task_of_create(&h, id),
        "task0",
        "the retried try, from the back"
    );
    assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    assert_eq!(created(&h.commands).len(), 4, "3 tries, one retried once");
    for k in &keys {
        assert!(h.ex.is_tracking(k));
    }
    assert!(reports(&h.commands).is_empty());
}

/// The task id of the create `id` among the harness's commands.
fn task_of_create(h: &Harness, id: CommandId) -> String {
    h.commands
        .iter()
        .find_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) if c.id == id => {
                Some(manifest.annotations["task_id"].clone())
            }
            _ => None,
        })
        .expect("a create with that id")
}

/// Airflow's concurrent path (`async_pod_creation = True`, §2.5): the loop's creates are sent
/// together, up to `pod_creation_max_concurrency` unanswered at once (the batch size when 0);
/// a 429 among them cannot recall the others, but it holds every create not yet sent.
#[test]
fn async_creation_sends_the_batch_together_and_a_429_holds_only_what_is_not_sent() {
    let mut h = Harness::new(Config {
        worker_pods_creation_batch_size: 3,
        async_pod_creation: true,
        ..with_retries(1)
    });
    let (_, cmds) = submit_all(&mut h, 4);
    let sent = created(&cmds);
    assert_eq!(
        sent.len(),
        3,
        "the batch of 3 goes together: {:?}",
        kinds(&cmds)
    );
    let ids: Vec<CommandId> = cmds.iter().map(|c| c.id).collect();
    let out = h.fail(ids[0], 429, "TooManyRequests", "", Some(5));
    assert!(created(&out).is_empty(), "{:?}", kinds(&out));
    assert!(h.answer(ids[1], ApiOutcome::Ok).is_empty());
    assert!(h.answer(ids[2], ApiOutcome::Ok).is_empty());
    // The fourth try and the 429'd one wait for the back-off, not just for the next loop.
    assert!(created(&h.advance(4_999)).is_empty());
    let after = h.advance(1);
    assert_eq!(created(&after).len(), 2, "{:?}", kinds(&after));

    // A concurrency limit below the batch size caps the creates unanswered at once.
    let mut h = Harness::new(Config {
        worker_pods_creation_batch_size: 3,
        async_pod_creation: true,
        pod_creation_max_concurrency: 2,
        ..with_retries(1)
    });
    let (_, cmds) = submit_all(&mut h, 3);
    assert_eq!(created(&cmds).len(), 2, "{:?}", kinds(&cmds));
    let next = h.answer(cmds[0].id, ApiOutcome::Ok);
    assert_eq!(created(&next).len(), 1, "an answer frees a place");
}
