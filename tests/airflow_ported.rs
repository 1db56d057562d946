//! Airflow's own KubernetesExecutor unit tests (`airflow-executor.md` §10), ported to podwarden.
//!
//! Each test names the Airflow test it follows and its §10 case number. They drive the public
//! API only: the commands the executor emits, `is_tracking`, `state_size` and `poll_timeout`.
//! Where podwarden differs from Airflow on purpose, the test says so and asserts podwarden's
//! behaviour.
//!
//! Vocabulary: Airflow's `event_buffer[key] = (FAILED, …)` is a `Report { Failed }` command;
//! "the task queue is empty" is "the key is no longer tracked and no launch timer is armed";
//! "requeued" is "still tracked, nothing reported, a later loop creates the pod again".
mod support;

use podwarden::label::{is_valid_value, safe_value};
use podwarden::launch::pod_name;
use podwarden::liveness::JobState;
use podwarden::watch::{classify, ContainerType, Outcome, Rule};
use podwarden::{
    ApiFailure, ApiOutcome, Command, CommandId, CommandKind, Config, ContainerState,
    ContainerStatus, EventType, InputError, KeyError, PodPhase, PodRef, PodView, ReportedState,
    TaskKey, Timestamp,
};
use support::*;

// ---- helpers --------------------------------------------------------------------------------

/// One hour, in milliseconds: "many scheduler loops later".
const HOUR_MS: u64 = 3_600_000;

/// The id of the only command in `cmds`, which must be a `CreatePod`.
/// The configuration of these ports: podwarden's defaults, without the leftover-pod sweep
/// (`adopt_leftover_pods`, a podwarden addition with its own tests in `tests/decisions.rs`), so
/// that adoption lists exactly what Airflow's does.
fn ported_config() -> Config {
    Config {
        adopt_leftover_pods: false,
        ..Config::default()
    }
}

fn only_create(cmds: &[Command]) -> CommandId {
    assert_eq!(kinds(cmds), ["CreatePod"], "{cmds:?}");
    cmds[0].id
}

/// The `CreatePod` manifests' pods in `cmds`.
fn created(cmds: &[Command]) -> Vec<PodRef> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::CreatePod { manifest } => Some(manifest.pod.clone()),
            _ => None,
        })
        .collect()
}

/// `(id, pod, grace_period_seconds)` of every `DeletePod` in `cmds`.
fn deletes(cmds: &[Command]) -> Vec<(CommandId, PodRef, Option<u32>)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::DeletePod {
                pod,
                grace_period_seconds,
            } => Some((c.id, pod.clone(), *grace_period_seconds)),
            _ => None,
        })
        .collect()
}

/// Labels as ordered `(name, value)` pairs.
type LabelPairs = Vec<(String, String)>;

/// `(id, pod, labels)` of every `PatchLabels` in `cmds`, asserting that done-label patches carry
/// no precondition.
fn patches(cmds: &[Command]) -> Vec<(CommandId, PodRef, LabelPairs)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::PatchLabels {
                pod,
                labels,
                precondition,
            } => {
                let pairs: LabelPairs = labels.clone().into_iter().collect();
                if pairs == executor_done() {
                    assert_eq!(
                        *precondition, None,
                        "a done-label patch needs no precondition"
                    );
                }
                Some((c.id, pod.clone(), pairs))
            }
            _ => None,
        })
        .collect()
}

/// The label set Airflow's `patch_pod_executor_done` writes.
fn executor_done() -> LabelPairs {
    vec![("airflow_executor_done".to_string(), "True".to_string())]
}

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

/// `out` reports exactly one failure, for `k`, with a reason mentioning `needle`.
fn assert_failure_reported(out: &[Command], k: &TaskKey, needle: &str) {
    let r = reports(out);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((&r[0].0, r[0].1), (k, ReportedState::Failed));
    let reason = r[0].2.as_deref().expect("failures carry a reason");
    assert!(
        reason.contains(needle),
        "reason {reason:?} should mention {needle:?}"
    );
}

/// The try is gone from the executor and no later loop creates anything.
fn assert_not_queued(h: &mut Harness, k: &TaskKey) {
    assert!(!h.ex.is_tracking(k));
    assert_eq!(h.ex.state_size().tasks, 0);
    assert_quiet_for_an_hour(h);
}

/// An hour of loops (and timers) later, the executor has created, deleted, patched and reported
/// nothing. (Housekeeping such as the completed-pod adoption timer may still fire; it acts only
/// on heartbeat snapshots, which these tests never feed unless they say so.)
fn assert_quiet_for_an_hour(h: &mut Harness) {
    let later = h.advance(HOUR_MS);
    let acted: Vec<&str> = kinds(&later)
        .into_iter()
        .filter(|k| matches!(*k, "CreatePod" | "DeletePod" | "PatchLabels" | "Report"))
        .collect();
    assert!(acted.is_empty(), "later loops did {acted:?}");
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

/// DNS-1123 subdomain, Airflow's `test_create_pod_id` regex
/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|seg| {
            let b = seg.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Dag/task ids of the kind Airflow's naming tests throw at the helpers: unicode, punctuation,
/// empty, 1400 characters, then 100 pseudo-random ones (fixed seed).
fn tricky_ids() -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = [
        ("my_dag_id", "my_task_id"),
        ("MyDag", "MyTask"),
        ("my.dag.id", "my.task.id"),
        ("-leading", "trailing-"),
        ("with space", "tab\there"),
        ("a!b", "c@d#e$f%"),
        ("my_dág_id", "tâsk_ïd"),
        ("影師嗎", "タスク"),
        ("🙂", "🚀🚀"),
        ("___", "---"),
        ("..", "--.."),
        ("", "task"),
        ("dag", ""),
        ("5", "6"),
        ("scheduled__2024-01-01T00:00:00+00:00", "x"),
        ("UPPER_CASE_DAG", "lower.case-task"),
    ]
    .iter()
    .map(|(d, t)| ((*d).to_string(), (*t).to_string()))
    .collect();
    ids.push(("a".repeat(1400), "b".repeat(1400)));
    ids.push(("影".repeat(1400), "-".repeat(1400)));
    ids.push((format!("my_dag_id_{}", "a".repeat(64)), "t".repeat(64)));
    const POOL: &[char] = &[
        'a', 'z', 'A', 'Z', '0', '9', '_', '-', '.', ' ', '!', '/', ':', '+', '\t', 'é', 'ß', '影',
        '師', '😀', 'Ω',
    ];
    let mut state: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move |bound: usize| -> usize {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).expect("31 bits fit") % bound
    };
    for _ in 0..100 {
        let mut word = |max_len: usize| -> String {
            (0..next(max_len)).map(|_| POOL[next(POOL.len())]).collect()
        };
        let dag = word(120);
        let task = word(120);
        ids.push((dag, task));
    }
    ids
}

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

/// Config for the `_change_state` failure tests: requeue off, as in Airflow's tests (they call
/// `_change_state` with no launch attempt retained, so a FAILED result is reported).
fn no_requeue(config: Config) -> Config {
    Config {
        pod_launch_failure_retries: 0,
        ..config
    }
}

/// A Failed pod whose task ran and exited 1: a task failure under any requeue policy.
fn task_failed(pod: PodView) -> PodView {
    main_terminated(with_phase(pod, PodPhase::Failed, "457"), "Error", 1, true)
}

// ---- labels and naming ----------------------------------------------------------------------

/// Follows Airflow's `test_make_safe_label_value` (§10 case 1).
/// Label values are Airflow's for the test vectors, always ≤ 63 characters and valid (Airflow's
/// own validity check is vacuous; this one is not), and are what the executor writes on the pod.
/// Differs on purpose: where nothing survives the clean-up (`"___"`, `"影師嗎"`) Airflow returns
/// `-<hash>`, an invalid label; podwarden returns `<hash>`.
#[test]
fn test_make_safe_label_value() {
    assert_eq!(safe_value("my_dag_id"), "my_dag_id");
    let long = format!("my_dag_id_{}", "a".repeat(64));
    let expected = format!("my_dag_id_{}-0ce114c45", "a".repeat(43));
    assert_eq!(safe_value(&long), expected);
    assert_eq!(safe_value("___"), "948a13f1e", "Airflow: -948a13f1e");
    for (dag, task) in tricky_ids() {
        for s in [&dag, &task] {
            let v = safe_value(s);
            assert!(v.chars().count() <= 63, "{s:?} -> {v:?}");
            assert!(
                is_valid_value(&v),
                "{s:?} -> {v:?} is not a valid label value"
            );
        }
    }

    // The executor writes the safe form as the label and the raw id as the annotation.
    let mut h = Harness::new(ported_config());
    let k = TaskKey::new(long.clone(), "task", "run_id", 1);
    let cmds = h.submit(&k);
    only_create(&cmds);
    let CommandKind::CreatePod { manifest } = &cmds[0].kind else {
        unreachable!()
    };
    assert_eq!(manifest.labels["dag_id"], expected);
    assert_eq!(manifest.labels["task_id"], "task");
    assert_eq!(manifest.annotations["dag_id"], long);
    assert!(
        manifest.labels.values().all(|v| is_valid_value(v)),
        "{:?}",
        manifest.labels
    );
}

/// Follows Airflow's `test_create_pod_id` (§10 case 2).
/// Every pod name is a lowercase DNS-1123 subdomain of at most 253 (in fact 63) characters that
/// starts with the slug of `dag_id-task_id`, and it is the name the executor creates. Differs on
/// purpose: the suffix is a hash of the scheduler id, the key and the executor's launch counter,
/// not 8 random characters, so the same inputs give the same name and every launch a new one.
#[test]
fn test_create_pod_id() {
    for (dag, task) in tricky_ids() {
        let k = TaskKey::new(dag, task, "run_id", 1);
        let name = pod_name(SCHEDULER, &k, 0);
        assert!(is_dns1123_subdomain(&name), "{k:?} -> {name:?}");
        assert_eq!(name, name.to_lowercase());
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, pod_name(SCHEDULER, &k, 0), "deterministic");
        assert_ne!(
            name,
            pod_name(SCHEDULER, &k, 1),
            "a new launch gets a new name"
        );
    }
    let readable = pod_name(SCHEDULER, &TaskKey::new("MyDag", "My_Task", "run_id", 1), 0);
    assert!(readable.starts_with("mydag-my-task-"), "{readable}");
    assert_eq!(readable.len(), "mydag-my-task-".len() + 8, "{readable}");

    let k = TaskKey::new("影師嗎 my dag", "a".repeat(1400), "run_id", 1);
    let first = created(&Harness::new(ported_config()).submit(&k));
    assert_eq!(first, [PodRef::new("default", pod_name(SCHEDULER, &k, 0))]);
    assert!(is_dns1123_subdomain(&first[0].name), "{}", first[0].name);
    let again = created(&Harness::new(ported_config()).submit(&k));
    assert_eq!(again, first, "deterministic: same inputs, same pod name");
    let other = created(&Harness::with_id(ported_config(), "6").submit(&k));
    assert_eq!(other.len(), 1);
    assert_ne!(
        other[0].name, first[0].name,
        "another scheduler's pod for the same try has another name"
    );
}

// ---- pod API helpers ------------------------------------------------------------------------

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

// ---- pod creation errors (test_run_next_exception_requeue) ----------------------------------

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 7).
/// Variant: 400 BadRequest.
/// A 400 fails the try at once, whatever `task_publish_max_retries` (0 and 1).
#[test]
fn test_run_next_exception_requeue_400_bad_request() {
    for mr in [0, 1] {
        let (mut h, k, out) = create_fails(
            with_retries(mr),
            status(400, "BadRequest", "any message", None),
        );
        assert_failed(&mut h, &k, &out, "(400)");
        assert_eq!(created(&h.commands).len(), 1, "1 create call");
    }
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 8).
/// Variant: 403 permission denied.
/// A 403 that is not a quota error fails at once with 0 and 1 retries.
#[test]
fn test_run_next_exception_requeue_403_permission_denied() {
    let message = "pods is forbidden: User \"system:serviceaccount:airflow:scheduler\" cannot create resource";
    for mr in [0, 1] {
        let (mut h, k, out) =
            create_fails(with_retries(mr), status(403, "Forbidden", message, None));
        assert_failed(&mut h, &k, &out, "(403)");
    }
}

const EXCEEDED_QUOTA: &str =
    "pods \"x\" is forbidden: exceeded quota: my-quota, requested: pods=1, used: pods=10";

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 9).
/// Variant: 403 "exceeded quota", mr 0.
/// With no retries allowed, a transient quota error still fails the try.
#[test]
fn test_run_next_exception_requeue_403_exceeded_quota_no_retries() {
    let (mut h, k, out) = create_fails(
        with_retries(0),
        status(403, "Forbidden", EXCEEDED_QUOTA, None),
    );
    assert_failed(&mut h, &k, &out, "exceeded quota");
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 10).
/// Variant: 403 "exceeded quota", mr 1.
/// The try is requeued; the next loop creates the pod and the queue is empty.
#[test]
fn test_run_next_exception_requeue_403_exceeded_quota_retry_succeeds() {
    let (mut h, k, out) = create_fails(
        with_retries(1),
        status(403, "Forbidden", EXCEEDED_QUOTA, None),
    );
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 10).
/// Variant: 403 "exceeded quota", mr 1, the error persists.
/// After the one allowed retry fails the same way, the try is FAILED.
#[test]
fn test_run_next_exception_requeue_403_exceeded_quota_retry_fails() {
    let (mut h, k, out) = create_fails(
        with_retries(1),
        status(403, "Forbidden", EXCEEDED_QUOTA, None),
    );
    assert_requeued(&h, &k, &out);
    let id = only_create(&h.advance(1000));
    let out = h.fail(id, 403, "Forbidden", EXCEEDED_QUOTA, None);
    assert_failed(&mut h, &k, &out, "exceeded quota");
    assert_eq!(created(&h.commands).len(), 2);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 11).
/// Variant: 404.
/// A 404 (e.g. the namespace does not exist) fails at once with 0 and 1 retries.
#[test]
fn test_run_next_exception_requeue_404_not_found() {
    for mr in [0, 1] {
        let (mut h, k, out) = create_fails(
            with_retries(mr),
            status(404, "NotFound", "namespaces \"x\" not found", None),
        );
        assert_failed(&mut h, &k, &out, "(404)");
    }
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 11).
/// Variant: 422.
/// An invalid pod spec fails at once with 0 and 1 retries.
#[test]
fn test_run_next_exception_requeue_422_unprocessable_entity() {
    for mr in [0, 1] {
        let (mut h, k, out) = create_fails(
            with_retries(mr),
            status(
                422,
                "Invalid",
                "Pod \"x\" is invalid: spec.containers",
                None,
            ),
        );
        assert_failed(&mut h, &k, &out, "(422)");
    }
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 12).
/// Variant: status 12345.
/// An unknown status is not transient: FAILED at once with 0 and 1 retries.
#[test]
fn test_run_next_exception_requeue_unknown_status_12345() {
    for mr in [0, 1] {
        let (mut h, k, out) = create_fails(with_retries(mr), status(12345, "", "", None));
        assert_failed(&mut h, &k, &out, "(12345)");
    }
}

const OBJECT_MODIFIED: &str =
    "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version \
     and try again";

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 13).
/// Variant: 409 "object has been modified".
/// With mr 1 the try is requeued and the second loop creates the pod; with mr 0 it fails.
#[test]
fn test_run_next_exception_requeue_409_object_modified() {
    let (mut h, k, out) = create_fails(
        with_retries(1),
        status(409, "Conflict", OBJECT_MODIFIED, None),
    );
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);

    let (mut h, k, out) = create_fails(
        with_retries(0),
        status(409, "Conflict", OBJECT_MODIFIED, None),
    );
    assert_failed(&mut h, &k, &out, "(409)");
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 13).
/// Variant: 409 with reason `AlreadyExists`, mr 0.
/// Differs on purpose: a 409 with reason `AlreadyExists` means our own deterministic pod name
/// exists already (an earlier create that timed out went through), so it counts as created,
/// even with mr 0: nothing is reported, nothing is retried, and the watch finishes the try.
/// Airflow would fail the try (and, with random names, could never see it is its own pod).
#[test]
fn test_run_next_exception_requeue_409_already_exists_counts_as_created() {
    let (mut h, k, out) = create_fails(
        with_retries(0),
        status(409, "AlreadyExists", "pods \"x\" already exists", None),
    );
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

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 14).
/// Variant: 410 "too old resource version", mr 1.
/// The try is requeued and the second loop creates the pod.
#[test]
fn test_run_next_exception_requeue_410_too_old_resource_version() {
    let failure = status(
        410,
        "Gone",
        "too old resource version: 65442975 (65489651)",
        None,
    );
    let (mut h, k, out) = create_fails(with_retries(1), failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 15).
/// Variant: 429 with a non-JSON body and `Retry-After: 3`, mr 1.
/// The try is requeued and creation backs off for exactly 3 s; then the pod is created and the
/// queue is empty.
#[test]
fn test_run_next_exception_requeue_429_retry_after() {
    let failure = status(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        Some(3),
    );
    let (mut h, k, out) = create_fails(with_retries(1), failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 3000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 16).
/// Variant: 429 with an empty body, mr 0.
/// Rate limiting with no retries left fails the try.
#[test]
fn test_run_next_exception_requeue_429_empty_body_no_retries() {
    let (mut h, k, out) = create_fails(with_retries(0), status(429, "TooManyRequests", "", None));
    assert_failed(&mut h, &k, &out, "(429)");
}

const WEBHOOK_FAILED: &str =
    "Internal error occurred: failed calling webhook \"mutation.example.com\": context deadline exceeded";

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 17).
/// Variant: 500 webhook failure, mr 1.
/// The try is requeued; the retry in the next loop succeeds.
#[test]
fn test_run_next_exception_requeue_500_webhook_retry_succeeds() {
    let (mut h, k, out) = create_fails(
        with_retries(1),
        status(500, "InternalError", WEBHOOK_FAILED, None),
    );
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 17).
/// Variant: 500 webhook failure, mr 1, "retry failed".
/// The second 500 exhausts the budget of 1: FAILED after the second loop.
#[test]
fn test_run_next_exception_requeue_500_webhook_retry_fails() {
    let (mut h, k, out) = create_fails(
        with_retries(1),
        status(500, "InternalError", WEBHOOK_FAILED, None),
    );
    assert_requeued(&h, &k, &out);
    let id = only_create(&h.advance(1000));
    let out = h.fail(id, 500, "InternalError", WEBHOOK_FAILED, None);
    assert_failed(&mut h, &k, &out, "(500)");
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 18).
/// Variant: 502, mr 1.
/// Requeued without back-off: the very next loop (1 s) creates the pod.
#[test]
fn test_run_next_exception_requeue_502_bad_gateway() {
    let (mut h, k, out) = create_fails(with_retries(1), status(502, "BadGateway", "", None));
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 19).
/// Variant: 503 "apiserver is shutting down" with `Retry-After: 1`, mr 1.
/// Requeued and backed off 1 s, longer than the loop (here 0.1 s, so the back-off is what
/// decides); then the pod is created.
#[test]
fn test_run_next_exception_requeue_503_retry_after() {
    let config = Config {
        scheduler_idle_sleep_time: 0.1,
        ..with_retries(1)
    };
    let failure = status(
        503,
        "ServiceUnavailable",
        "apiserver is shutting down",
        Some(1),
    );
    let (mut h, k, out) = create_fails(config, failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 20).
/// Variant: 504, mr 1.
/// Requeued without back-off; the next loop creates the pod.
#[test]
fn test_run_next_exception_requeue_504_gateway_timeout() {
    let (mut h, k, out) = create_fails(with_retries(1), status(504, "GatewayTimeout", "", None));
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_exception_requeue` (§10 case 21).
/// Variant: 503 with `Retry-After: 1`, mr 1, error persists.
/// After the back-off the retry fails again the same way: FAILED.
#[test]
fn test_run_next_exception_requeue_503_retry_after_persists() {
    let failure = status(
        503,
        "ServiceUnavailable",
        "apiserver is shutting down",
        Some(1),
    );
    let (mut h, k, out) = create_fails(with_retries(1), failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    let out = h.fail(
        id,
        503,
        "ServiceUnavailable",
        "apiserver is shutting down",
        Some(1),
    );
    assert_failed(&mut h, &k, &out, "(503)");
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
    let CommandKind::CreatePod { manifest } = &cmds[0].kind else {
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

/// Follows Airflow's `test_run_next_connection_error_requeue` (§10 case 26).
/// Variant: `ProtocolError ("Connection aborted.")`, mr 1.
/// A connection error is transient: requeued, and the next loop creates the pod.
#[test]
fn test_run_next_connection_error_requeue_protocol_error() {
    let failure = ApiFailure::Connection {
        message: "('Connection aborted.', RemoteDisconnected())".into(),
    };
    let (mut h, k, out) = create_fails(with_retries(1), failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_connection_error_requeue` (§10 case 26).
/// Variant: `MaxRetryError`, mr 1.
/// Requeued like any connection error, with no back-off; the next loop creates the pod.
#[test]
fn test_run_next_connection_error_requeue_max_retry_error() {
    let failure = ApiFailure::Connection {
        message: "HTTPSConnectionPool(host='10.0.0.1', port=443): Max retries exceeded with url: /api/v1/pods".into(),
    };
    let (mut h, k, out) = create_fails(with_retries(1), failure);
    let t0 = h.now;
    assert_requeued(&h, &k, &out);
    let id = retry_created_after(&mut h, t0, 1000);
    assert_retry_succeeds(&mut h, &k, id);
}

/// Follows Airflow's `test_run_next_connection_error_requeue` (§10 case 26).
/// Variant: `ReadTimeoutError` (in the same transient set), mr 1.
/// A create that timed out is requeued; its retry reuses the same pod name, so if the first
/// create did go through, the retry meets it rather than starting a second pod.
#[test]
fn test_run_next_connection_error_requeue_read_timeout() {
    let (mut h, k, out) = create_fails(with_retries(1), ApiFailure::Timeout);
    assert_requeued(&h, &k, &out);
    let cmds = h.advance(1000);
    only_create(&cmds);
    let all = created(&h.commands);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], all[1], "the retry creates the same pod name");
}

/// Follows Airflow's `test_run_next_connection_error_requeue` (§10 case 26).
/// Variant: `ProtocolError`, mr 0.
/// No retries allowed: FAILED and the queue is empty. Differs on purpose: because a create cut
/// off by a connection error may still have made the pod, podwarden also deletes that pod so it
/// cannot run a try the scheduler already counts as failed (404 then counts as done).
#[test]
fn test_run_next_connection_error_requeue_no_retries() {
    let failure = ApiFailure::Connection {
        message: "('Connection aborted.', RemoteDisconnected())".into(),
    };
    let (mut h, k, out) = create_fails(with_retries(0), failure);
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_failure_reported(&out, &k, "Connection aborted.");
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

// ---- _change_state --------------------------------------------------------------------------

/// Follows Airflow's `test_change_state_success` (§10 case 39).
/// A succeeded pod is deleted once (its name, namespace `default`), the try is reported and no
/// longer tracked. A replay of the same event does nothing more.
#[test]
fn test_change_state_success() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let done = with_phase(pod.clone(), PodPhase::Succeeded, "11");
    let out = h.event(EventType::Modified, &done);
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("default", pod.name));
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().tasks, 0);
    assert!(
        h.event(EventType::Modified, &done).is_empty(),
        "delete_pod called once"
    );
}

/// Follows Airflow's `test_change_state_none` (§10 case 41).
/// A Succeeded pod (Airflow's state `None`) is deleted and the try reported as `Succeeded` with no
/// reason, whether the event is live or a replay after a restart. Differs on purpose: the core
/// does not read the task's DB state; `Succeeded` tells the scheduler to take the final state
/// (success, failed, deferred) from its DB, which is what Airflow's lookup does.
#[test]
fn test_change_state_none() {
    for kind in [EventType::Added, EventType::Modified] {
        let mut h = Harness::new(ported_config());
        let k = key("task");
        let pod = h.launch(&k);
        let out = h.event(kind, &with_phase(pod.clone(), PodPhase::Succeeded, "11"));
        assert_eq!(kinds(&out), ["DeletePod", "Report"], "{kind:?}");
        assert_eq!(deletes(&out)[0].1, pod.pod_ref());
        assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
        assert!(!h.ex.is_tracking(&k));
    }
}

/// Follows Airflow's `test_change_state_none` (§10 case 41).
/// Variant: a DELETED event with a deletion timestamp, which the watcher also classifies as
/// Succeeded (state `None`).
/// The try is reported. Differs on purpose: the pod is already being deleted, so podwarden does
/// not delete it again (Airflow sends a second DELETE and ignores its 404).
#[test]
fn test_change_state_none_pod_already_deleted() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &deleting(with_phase(pod, PodPhase::Succeeded, "11")),
    );
    assert_eq!(kinds(&out), ["Report"]);
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().pods, 0);
}

/// Follows Airflow's `test_change_state_failed_no_deletion` (§10 case 40).
/// With `delete_worker_pods=False` a failed pod is not deleted but labelled
/// `airflow_executor_done=True` (which takes it out of the watch), and the failure is reported
/// with a readable reason (podwarden's reason string; Airflow writes "Pod failed because of
/// None").
#[test]
fn test_change_state_failed_no_deletion() {
    let config = Config {
        delete_worker_pods: false,
        delete_worker_pods_on_failure: false,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(config));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod.clone()));
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    let p = patches(&out);
    assert_eq!(
        (&p[0].1, &p[0].2),
        (
            &PodRef::new("test-namespace", pod.name.clone()),
            &executor_done()
        )
    );
    assert!(deletes(&h.commands).is_empty(), "no delete");
    assert_failure_reported(&out, &k, "exit 1");
    assert!(!h.ex.is_tracking(&k));
    let mut labelled = pod.labels.clone();
    labelled.extend(executor_done());
    assert!(
        !h.ex.watch_selector().matches(&labelled),
        "a pod marked done leaves the watch"
    );
    // It leaves the watch (DELETED without a deletion timestamp): nothing more, nothing kept.
    assert!(h.answer(p[0].0, ApiOutcome::Ok).is_empty());
    let gone = h.event(
        EventType::Deleted,
        &with_phase(task_failed(pod), PodPhase::Failed, "458"),
    );
    assert!(gone.is_empty());
    assert_eq!(h.ex.state_size().pods, 0);
}

/// Follows Airflow's `test_change_state_adopted` (§10 case 42).
/// A pod that left the watch without being deleted (another scheduler adopted it) frees the
/// try with no report and no API call.
#[test]
fn test_change_state_adopted() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Deleted,
        &with_phase(pod, PodPhase::Running, "11"),
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(!h.ex.is_tracking(&k));
    let size = h.ex.state_size();
    assert_eq!((size.tasks, size.pods), (0, 0));
    assert_eq!(kinds(&h.commands), ["CreatePod"], "no delete, no report");
}

/// Follows Airflow's `test_change_state_key_not_in_running` (§10 case 43).
/// A finished pod whose key this executor does not track is still disposed of (deleted), but
/// nothing is reported and nothing starts being tracked.
#[test]
fn test_change_state_key_not_in_running() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let pod = worker_pod("pod_name", &k, PodPhase::Succeeded);
    let out = h.event(EventType::Modified, &pod);
    assert_eq!(kinds(&out), ["DeletePod"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("default", "pod_name"));
    assert!(reports(&out).is_empty());
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().tasks, 0);
}

/// Follows Airflow's `test_change_state_skip_pod_deletion` (§10 case 44).
/// With `delete_worker_pods=False` a succeeded pod is labelled done instead of deleted, and the
/// success is reported.
#[test]
fn test_change_state_skip_pod_deletion() {
    let config = Config {
        delete_worker_pods: false,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(config);
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(
        EventType::Modified,
        &with_phase(pod.clone(), PodPhase::Succeeded, "11"),
    );
    assert_eq!(kinds(&out), ["PatchLabels", "Report"]);
    let p = patches(&out);
    assert_eq!(
        (&p[0].1, &p[0].2),
        (&PodRef::new("test-namespace", pod.name), &executor_done())
    );
    assert!(deletes(&h.commands).is_empty(), "no delete");
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}

/// Follows Airflow's `test_change_state_failed_pod_deletion` (§10 case 45).
/// With `delete_worker_pods_on_failure=True` a failed pod is deleted (not patched) and the
/// failure reported; with the default (False) the failed pod is kept for debugging.
#[test]
fn test_change_state_failed_pod_deletion() {
    let config = Config {
        delete_worker_pods_on_failure: true,
        namespace: "test-namespace".into(),
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(config));
    let k = key("task");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod.clone()));
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(deletes(&out)[0].1, PodRef::new("test-namespace", pod.name));
    assert!(patches(&h.commands).is_empty(), "no patch");
    assert_failure_reported(&out, &k, "exit 1");
    assert!(!h.ex.is_tracking(&k));

    let mut h = Harness::new(no_requeue(ported_config()));
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod));
    assert_eq!(
        kinds(&out),
        ["PatchLabels", "Report"],
        "default: a failed pod is kept, and (differs on purpose) labelled done"
    );
    assert_failure_reported(&out, &k, "exit 1");

    let airflow = Config {
        label_kept_failed_pods_done: false,
        ..ported_config()
    };
    let mut h = Harness::new(no_requeue(airflow));
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &task_failed(pod));
    assert_eq!(
        kinds(&out),
        ["Report"],
        "Airflow: a failed pod is neither deleted nor patched"
    );
    assert_failure_reported(&out, &k, "exit 1");
}

// ---- completed pods are processed once ------------------------------------------------------

/// Airflow's `completed-pod`: a Succeeded pod of try `k` left by a dead scheduler (`9`), as the
/// completed-pod adoption lists it.
fn completed_pod(k: &TaskKey) -> PodView {
    let mut pod = worker_pod("completed-pod", k, PodPhase::Succeeded);
    pod.labels.insert("airflow-worker".into(), "9".into());
    pod.resource_version = "77".into();
    pod
}

/// Airflow's `queue-pod` and `queue-pod-2`: Succeeded pods of try `k`, which this executor does
/// not track, arriving on its watch.
fn queue_pods(k: &TaskKey) -> Vec<PodView> {
    ["queue-pod", "queue-pod-2"]
        .iter()
        .map(|name| worker_pod(name, k, PodPhase::Succeeded))
        .collect()
}

/// Runs the completed-pod adoption (heartbeats say scheduler `9` is dead) over `completed`:
/// the pod is relabelled to this scheduler, conditionally; returns what the relabel's success
/// produced (the pod's disposal).
fn adopt_completed(h: &mut Harness, completed: &PodView) -> Vec<Command> {
    let t = h.now.0;
    let out = h.heartbeats(&[("5", JobState::Running, t), ("9", JobState::Failed, t)]);
    let listed = h.answer(
        first(&out, "ListPods").id,
        ApiOutcome::Listed {
            pods: vec![completed.clone()],
            resource_version: "80".into(),
        },
    );
    assert_eq!(kinds(&listed), ["PatchLabels"]);
    let CommandKind::PatchLabels { pod, labels: l, .. } = &listed[0].kind else {
        unreachable!()
    };
    assert_eq!(
        (pod, l),
        (&completed.pod_ref(), &labels(&[("airflow-worker", "5")]))
    );
    h.answer(listed[0].id, ApiOutcome::Ok)
}

/// The next completed-pod adoption round (300 s later) lists `completed` again, as a list taken
/// before its clean-up finished would: returns what that produced.
fn next_round_lists_again(h: &mut Harness, completed: &PodView) -> Vec<Command> {
    let out = h.advance(300_000);
    let list = first(&out, "ListPods").id;
    h.answer(
        list,
        ApiOutcome::Listed {
            pods: vec![completed.clone()],
            resource_version: "90".into(),
        },
    )
}

/// Follows Airflow's `test_sync_processes_completed_pods_once` (§10 case 67).
/// One adopted completed pod and two Succeeded results of a try this executor does not track:
/// exactly 3 deletes and no report. The next adoption round and watch replays of the same pods
/// delete nothing again (the bug of #68674, one pod deleted 166 times, cannot happen), and
/// nothing is retained once the pods are gone.
#[test]
fn test_sync_processes_completed_pods_once() {
    let mut h = Harness::new(ported_config());
    let k = key("task");
    let completed = completed_pod(&k);
    let mut out = adopt_completed(&mut h, &completed);
    let queue = queue_pods(&k);
    for pod in &queue {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["DeletePod"; 3]);
    let dels = deletes(&out);
    let targets: Vec<PodRef> = dels.iter().map(|d| d.1.clone()).collect();
    assert_eq!(
        targets,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()]
    );
    for (id, _, _) in dels {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }

    assert!(next_round_lists_again(&mut h, &completed).is_empty());
    let mut ours = completed.clone();
    ours.labels.insert("airflow-worker".into(), "5".into());
    let mut all = queue.clone();
    all.push(ours);
    for pod in &all {
        for kind in [EventType::Added, EventType::Modified] {
            assert!(h.event(kind, pod).is_empty(), "replayed {}", pod.name);
        }
    }
    for pod in &all {
        assert!(h
            .event(EventType::Deleted, &deleting(pod.clone()))
            .is_empty());
    }
    assert_eq!(deletes(&h.commands).len(), 3, "exactly 3 deletes");
    assert!(reports(&h.commands).is_empty());
    assert!(!h.ex.is_tracking(&k));
    assert_eq!(h.ex.state_size().pods, 0, "nothing retained");
}

/// Follows Airflow's `test_sync_processes_completed_pods_once_without_deletion` (§10 case 68).
/// With `delete_worker_pods=False` the same three pods get exactly one done-label patch each
/// (`completed-pod`, `queue-pod`, `queue-pod-2`), no delete, and neither the next adoption round
/// nor replays patch anything again.
#[test]
fn test_sync_processes_completed_pods_once_without_deletion() {
    let mut h = Harness::new(Config {
        delete_worker_pods: false,
        ..ported_config()
    });
    let k = key("task");
    let completed = completed_pod(&k);
    let mut out = adopt_completed(&mut h, &completed);
    let queue = queue_pods(&k);
    for pod in &queue {
        out.extend(h.event(EventType::Modified, pod));
    }
    assert_eq!(kinds(&out), ["PatchLabels"; 3]);
    let p = patches(&out);
    let targets: Vec<PodRef> = p.iter().map(|x| x.1.clone()).collect();
    assert_eq!(
        targets,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()]
    );
    assert!(p.iter().all(|x| x.2 == executor_done()));
    for (id, _, _) in p {
        assert!(h.answer(id, ApiOutcome::Ok).is_empty());
    }

    assert!(next_round_lists_again(&mut h, &completed).is_empty());
    for pod in &queue {
        assert!(
            h.event(EventType::Modified, pod).is_empty(),
            "replayed {}",
            pod.name
        );
    }
    // Marked done, each pod leaves the watch (DELETED without a deletion timestamp).
    for pod in &queue {
        assert!(h.event(EventType::Deleted, pod).is_empty());
    }
    assert!(deletes(&h.commands).is_empty(), "no deletes");
    let done: Vec<PodRef> = patches(&h.commands)
        .into_iter()
        .filter(|x| x.2 == executor_done())
        .map(|x| x.1)
        .collect();
    assert_eq!(
        done,
        [completed.pod_ref(), queue[0].pod_ref(), queue[1].pod_ref()],
        "3 patch_pod_executor_done calls"
    );
    assert!(reports(&h.commands).is_empty());
}

// ---- watcher classification -----------------------------------------------------------------

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
            let Outcome::Failed { details } = &c.outcome else {
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
                (Rule::Pending, Outcome::Ignore),
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
        (Rule::Pending, Outcome::Ignore),
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
        (Rule::DeletedWhilePending, Outcome::Ignore)
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
    let Outcome::Failed { details } = &c.outcome else {
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
            .all(|c| matches!(c.kind, CommandKind::CreatePod { .. })),
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
        assert!(matches!(c.outcome, Outcome::Failed { .. }), "{c:?}");
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
        (Rule::PhaseSucceeded, Outcome::Succeeded)
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
            (Rule::LeftWatch, Outcome::Adopted),
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
    assert!(matches!(c.outcome, Outcome::Failed { .. }), "{c:?}");

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
            (Rule::Running, Outcome::Ignore),
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
            (Rule::OtherPhase, Outcome::Ignore),
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
