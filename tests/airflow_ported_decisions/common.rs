//! Helpers shared by the ported decision tests: the ports' configuration, command views
//! (lists, patches, deletes, DB questions, requeues, hand-over results), inputs and pods.

use podwarden::command::{ApiCall, DbQuery, Notice};
use std::collections::BTreeMap;

use podwarden::adoption::OrphanTask;
use podwarden::db::TaskState;
use podwarden::liveness::{HeartbeatRecord, JobState};
use podwarden::requeue::RequeueCause;
use podwarden::{
    ApiOutcome, Command, CommandId, CommandKind, Config, EventType, Input, PodManifest, PodPhase,
    PodRef, PodView, Precondition, ReportedState, TaskKey,
};

use crate::support::*;

/// Airflow's orphan-adoption field selector.
pub(crate) const ORPHAN_FIELD: &str = "status.phase!=Succeeded";
/// Airflow's completed-pod adoption field selector.
pub(crate) const COMPLETED_FIELD: &str = "status.phase=Succeeded";
/// `orphaned_tasks_check_interval` (300 s) in milliseconds.
pub(crate) const ADOPTION_INTERVAL_MS: u64 = 300_000;

/// The configuration of these ports: podwarden's defaults, without the leftover-pod sweep
/// (`adopt_leftover_pods`, a podwarden addition with its own tests in `tests/decisions.rs`), so
/// that adoption lists exactly what Airflow's does.
pub(crate) fn ported_config() -> Config {
    Config {
        adopt_leftover_pods: false,
        ..Config::default()
    }
}

/// The only `ListPods` in `cmds`.
pub(crate) fn only_list(cmds: &[Command]) -> Listing {
    let l = lists(cmds);
    assert_eq!(l.len(), 1, "exactly one list: {cmds:?}");
    l.into_iter().next().expect("one list")
}

/// One `PatchLabels` command, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Patch {
    pub(crate) id: CommandId,
    pub(crate) pod: PodRef,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) precondition: Option<Precondition>,
}

/// Every `PatchLabels` in `cmds`, in order.
pub(crate) fn patches(cmds: &[Command]) -> Vec<Patch> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::PatchLabels {
                pod,
                labels,
                precondition,
            }) => Some(Patch {
                id: c.id,
                pod: pod.clone(),
                labels: labels.clone(),
                precondition: precondition.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// `(id, pod)` of every `DeletePod` in `cmds`, asserting each uses the pod's own grace period.
pub(crate) fn deletes(cmds: &[Command]) -> Vec<(CommandId, PodRef)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::DeletePod {
                pod,
                grace_period_seconds,
            }) => {
                assert_eq!(*grace_period_seconds, None, "default delete options");
                Some((c.id, pod.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The keys asked by every `QueryTaskStates` in `cmds`.
pub(crate) fn queries(cmds: &[Command]) -> Vec<Vec<TaskKey>> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Db(DbQuery::QueryTaskStates { keys }) => Some(keys.clone()),
            _ => None,
        })
        .collect()
}

/// `(key, attempt, cause)` of every `Requeue` in `cmds`.
pub(crate) fn requeues(cmds: &[Command]) -> Vec<(TaskKey, u32, RequeueCause)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Notice(Notice::Requeue {
                key,
                attempt,
                cause,
                ..
            }) => Some((key.clone(), *attempt, cause.clone())),
            _ => None,
        })
        .collect()
}

/// `(adopted, reset)` of every `OrphansResolved` in `cmds`.
pub(crate) fn resolved(cmds: &[Command]) -> Vec<(Vec<TaskKey>, Vec<TaskKey>)> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Notice(Notice::OrphansResolved { adopted, reset }) => {
                Some((adopted.clone(), reset.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Every `CreatePod` manifest in `cmds`.
pub(crate) fn manifests(cmds: &[Command]) -> Vec<PodManifest> {
    cmds.iter()
        .filter_map(|c| match &c.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => Some(manifest.clone()),
            _ => None,
        })
        .collect()
}

/// `labels` as an owned map.
pub(crate) fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels(pairs)
}

/// A list answer.
pub(crate) fn listed(pods: Vec<PodView>) -> ApiOutcome {
    ApiOutcome::Listed {
        pods,
        resource_version: "20".into(),
    }
}

/// A task instance handed over by the scheduler, without a pod template (Airflow's adopter has
/// no job spec for it).
pub(crate) fn orphan(key: &TaskKey, queued_by: Option<&str>) -> OrphanTask {
    OrphanTask {
        key: key.clone(),
        queued_by: queued_by.map(Into::into),
        template: None,
    }
}

/// Feeds `Input::AdoptOrphans`.
pub(crate) fn adopt(h: &mut Harness, tis: Vec<OrphanTask>) -> Vec<Command> {
    h.input(
        format!("adopt orphans x{}", tis.len()),
        Input::AdoptOrphans { tis },
    )
}

/// Feeds a heartbeat snapshot: each `(scheduler_id, state)` heartbeating at `h.now`.
pub(crate) fn heartbeats(h: &mut Harness, jobs: &[(&str, JobState)]) -> Vec<Command> {
    let records = jobs
        .iter()
        .map(|(id, state)| HeartbeatRecord {
            scheduler_id: (*id).into(),
            state: *state,
            latest_heartbeat: h.now,
        })
        .collect();
    h.input(
        format!("heartbeats {jobs:?}"),
        Input::Heartbeats {
            snapshot: Ok(records),
        },
    )
}

/// A heartbeat snapshot where `modified` (this executor) runs and `one` and `two` are dead
/// (their job rows say so).
pub(crate) fn one_and_two_dead(h: &mut Harness) -> Vec<Command> {
    heartbeats(
        h,
        &[
            ("modified", JobState::Running),
            ("one", JobState::Failed),
            ("two", JobState::Failed),
        ],
    )
}

/// A pod of `key` in `namespace`, owned by `owner` (its `airflow-worker` label).
pub(crate) fn pod_of(
    namespace: &str,
    name: &str,
    key: &TaskKey,
    owner: &str,
    phase: PodPhase,
) -> PodView {
    let mut pod = worker_pod(name, key, phase);
    pod.namespace = namespace.into();
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod
}

/// `pod` as the watch shows it after an adopter relabelled it to `owner`.
pub(crate) fn relabelled(mut pod: PodView, owner: &str, rv: &str) -> PodView {
    pod.labels.insert("airflow-worker".into(), owner.into());
    pod.resource_version = rv.into();
    pod
}

/// Airflow's test failure: `{"container_reason": "ContainerStatusUnknown", "exit_code": 137}`,
/// the main container never having started; at resource version `rv`.
pub(crate) fn failed_before_start(pod: &PodView, rv: &str) -> PodView {
    main_terminated(
        with_phase(pod.clone(), PodPhase::Failed, rv),
        "ContainerStatusUnknown",
        137,
        false,
    )
}

/// The task's own failure: container reason `Error`, exit 1, after it started.
pub(crate) fn failed_with_error(pod: &PodView) -> PodView {
    main_terminated(
        with_phase(pod.clone(), PodPhase::Failed, "11"),
        "Error",
        1,
        true,
    )
}

/// The config of the requeue tests: `pod_launch_failure_retries = retries`, the rest default.
pub(crate) fn retries(retries: i64) -> Config {
    Config {
        pod_launch_failure_retries: retries,
        ..ported_config()
    }
}

/// Finds the `CreatePod` of a requeued try in `cmds`, waiting for later loops if this loop's
/// creation batch is used up, acknowledges it, and returns its manifest.
pub(crate) fn recreated(h: &mut Harness, mut cmds: Vec<Command>) -> PodManifest {
    for _ in 0..10 {
        if let Some(c) = cmds
            .iter()
            .find(|c| matches!(c.kind, CommandKind::Api(ApiCall::CreatePod { .. })))
        {
            let id = c.id;
            let manifest = manifests(&cmds).remove(0);
            assert!(h.answer(id, ApiOutcome::Ok).is_empty());
            return manifest;
        }
        let t =
            h.ex.poll_timeout()
                .expect("a launch timer for the requeued try");
        let wait = t.since(h.now);
        cmds = h.advance(wait);
    }
    panic!("the requeued try was never created");
}

/// The pod the watch shows for `manifest` just after creation.
pub(crate) fn view(manifest: &PodManifest) -> PodView {
    created_pod(&[Command {
        id: CommandId(u64::MAX),
        kind: CommandKind::Api(ApiCall::CreatePod {
            manifest: manifest.clone(),
        }),
    }])
    .expect("a pod")
}

/// A pod failed before its task started, the DB says the try is still QUEUED: returns the
/// commands of the decision (a `Requeue` and maybe its `CreatePod`).
pub(crate) fn fail_before_start_and_requeue(
    h: &mut Harness,
    pod: &PodView,
    rv: &str,
) -> Vec<Command> {
    let out = h.event(EventType::Modified, &failed_before_start(pod, rv));
    // The done label (ours, not Airflow's) goes out first unless Airflow's bookkeeping is on.
    let mut question = kinds(&out);
    question.retain(|k| *k != "PatchLabels");
    assert_eq!(question, ["QueryTaskStates"], "{out:?}");
    h.answer_state_of(&out, Some(TaskState::Queued))
}

/// `out` reports exactly one failure, for `k`, with a reason mentioning `needle`.
pub(crate) fn assert_failed(out: &[Command], k: &TaskKey, needle: &str) {
    let r = reports(out);
    assert_eq!(r.len(), 1, "one report: {out:?}");
    assert_eq!((&r[0].0, r[0].1), (k, ReportedState::Failed));
    let reason = r[0].2.as_deref().unwrap_or_default();
    assert!(reason.contains(needle), "{reason:?} mentions {needle:?}");
}
