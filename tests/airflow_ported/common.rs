//! Helpers shared by the ported tests: the ports' configuration, command views, and the checks
//! for "FAILED", "the task queue is empty" and "quiet for an hour".

use podwarden::command::ApiCall;
use podwarden::{
    Command, CommandId, CommandKind, Config, PodPhase, PodRef, PodView, ReportedState, TaskKey,
};

use crate::support::*;

/// One hour, in milliseconds: "many scheduler loops later".
pub(crate) const HOUR_MS: u64 = 3_600_000;

/// The configuration of these ports: podwarden's defaults, without the leftover-pod sweep
/// (`adopt_leftover_pods`, a podwarden addition with its own tests in `tests/decisions.rs`), so
/// that adoption lists exactly what Airflow's does.
pub(crate) fn ported_config() -> Config {
    Config {
        adopt_leftover_pods: false,
        ..Config::default()
    }
}
/// The id of the only command in `cmds`, which must be a `CreatePod`.
pub(crate) fn only_create(cmds: &[Command]) -> CommandId {
    assert_eq!(kinds(cmds), ["CreatePod"], "{cmds:?}");
    cmds[0].id
}

/// The `CreatePod` manifests' pods in `cmds`.
pub(crate) fn created(cmds: &[Command]) -> Vec<PodRef> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => Some(manifest.pod.clone()),
            _ => None,
        })
        .collect()
}

/// `(id, pod, grace_period_seconds)` of every `DeletePod` in `cmds`.
pub(crate) fn deletes(cmds: &[Command]) -> Vec<(CommandId, PodRef, Option<u32>)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::DeletePod {
                pod,
                grace_period_seconds,
            }) => Some((c.id, pod.clone(), *grace_period_seconds)),
            _ => None,
        })
        .collect()
}

/// Labels as ordered `(name, value)` pairs.
pub(crate) type LabelPairs = Vec<(String, String)>;

/// `(id, pod, labels)` of every `PatchLabels` in `cmds`, asserting that done-label patches carry
/// no precondition.
pub(crate) fn patches(cmds: &[Command]) -> Vec<(CommandId, PodRef, LabelPairs)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::PatchLabels {
                pod,
                labels,
                precondition,
            }) => {
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
pub(crate) fn executor_done() -> LabelPairs {
    vec![("airflow_executor_done".to_string(), "True".to_string())]
}

/// `out` reports exactly one failure, for `k`, with a reason mentioning `needle`.
pub(crate) fn assert_failure_reported(out: &[Command], k: &TaskKey, needle: &str) {
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
pub(crate) fn assert_not_queued(h: &mut Harness, k: &TaskKey) {
    assert!(!h.ex.is_tracking(k));
    assert_eq!(h.ex.state_size().tasks, 0);
    assert_quiet_for_an_hour(h);
}

/// An hour of loops (and timers) later, the executor has created, deleted, patched and reported
/// nothing. (Housekeeping such as the completed-pod adoption timer may still fire; it acts only
/// on heartbeat snapshots, which these tests never feed unless they say so.)
pub(crate) fn assert_quiet_for_an_hour(h: &mut Harness) {
    let later = h.advance(HOUR_MS);
    let acted: Vec<&str> = kinds(&later)
        .into_iter()
        .filter(|k| matches!(*k, "CreatePod" | "DeletePod" | "PatchLabels" | "Report"))
        .collect();
    assert!(acted.is_empty(), "later loops did {acted:?}");
}

/// Config for the `_change_state` failure tests: requeue off, as in Airflow's tests (they call
/// `_change_state` with no launch attempt retained, so a FAILED result is reported).
pub(crate) fn no_requeue(config: Config) -> Config {
    Config {
        pod_launch_failure_retries: 0,
        ..config
    }
}

/// A Failed pod whose task ran and exited 1: a task failure under any requeue policy.
pub(crate) fn task_failed(pod: PodView) -> PodView {
    main_terminated(with_phase(pod, PodPhase::Failed, "457"), "Error", 1, true)
}
