//! Adoption: taking over pods whose scheduler is dead (`docs/decisions.md`, "Adoption").
//!
//! Two paths, as in Airflow. Orphan adoption: the scheduler hands over task instances of dead
//! schedulers; their live pods are relabelled to this executor and tracked. Completed-pod
//! adoption: every `orphaned_tasks_check_interval`, Succeeded pods left by schedulers that are
//! **not alive** are relabelled and cleaned up. Airflow 10.15–10.17 took every other scheduler's
//! completed pods each interval, so live schedulers fought over each other's pods (#66396); that
//! behaviour is kept as [`AdoptionScope::AllOthers`] so the simulator can show it.
//!
//! Every relabel carries a precondition (the owner label still names the old owner, and the
//! resource version read), so of two adopters racing for one pod exactly one wins; the loser's
//! 409 Conflict is an ordinary outcome.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::config::{AdoptionFallback, AdoptionScope};
pub use crate::input::OrphanTask;
use crate::key::TaskKey;
use crate::label;
use crate::launch;
use crate::liveness::AliveSet;
use crate::pod::{PodPhase, PodView};
use crate::selector::{FieldSelector, LabelSelector};

/// Field selector of orphan adoption: live or failed pods, not succeeded ones.
pub const ORPHAN_FIELD_SELECTOR: FieldSelector = FieldSelector::PhaseIsNot(PodPhase::Succeeded);
/// Field selector of completed-pod adoption.
pub const COMPLETED_FIELD_SELECTOR: FieldSelector = FieldSelector::PhaseIs(PodPhase::Succeeded);
/// Field selector of the leftover-pod sweep (`adopt_leftover_pods`): every pod completed-pod
/// adoption does not list.
pub const LEFTOVER_FIELD_SELECTOR: FieldSelector = ORPHAN_FIELD_SELECTOR;

/// Whether a leftover pod of try `pod_key` may be disposed of: no unfinished task instance is at
/// that try (`unfinished` is every unfinished task instance with its current try). A try the
/// scheduler is handing over is unfinished, so a hand-over in progress is never disturbed.
pub(crate) fn leftover_try_is_over(pod_key: &TaskKey, unfinished: &BTreeSet<&TaskKey>) -> bool {
    !unfinished.contains(pod_key)
}

/// The label selector of completed-pod adoption under `config`, or `None` when it must not run
/// now: nothing is known about peers yet, or the heartbeats cannot be read and the fallback is
/// [`AdoptionFallback::Wait`].
pub(crate) fn completed_adoption_selector(
    me: &str,
    alive: &AliveSet,
    scope: AdoptionScope,
    fallback: AdoptionFallback,
) -> Option<LabelSelector> {
    if scope != AdoptionScope::AllOthers
        && *alive == AliveSet::Unavailable
        && fallback == AdoptionFallback::Wait
    {
        return None;
    }
    completed_pods_selector(me, alive, scope)
}

/// `kubernetes_executor=True,airflow-worker=<owner>,airflow_executor_done!=True`: the pods of one
/// dead owner that orphan adoption lists (Airflow's `try_adopt_task_instances`).
#[must_use]
pub(crate) fn orphan_selector(owner: &str) -> LabelSelector {
    LabelSelector::new()
        .eq(label::KUBERNETES_EXECUTOR, label::TRUE)
        .eq(label::AIRFLOW_WORKER, label::safe_value(owner))
        .ne(label::EXECUTOR_DONE, label::TRUE)
}

/// The label selector of completed-pod adoption (Airflow's `_adopt_completed_pods`), or `None` while nothing is known about
/// peers yet (adoption waits for the first heartbeat snapshot rather than guess).
#[must_use]
pub(crate) fn completed_pods_selector(
    me: &str,
    alive: &AliveSet,
    scope: AdoptionScope,
) -> Option<LabelSelector> {
    let me = label::safe_value(me);
    // A string sort, as Airflow's `sorted()`: "10" before "5".
    let excluded: BTreeSet<String> = match (scope, alive) {
        (AdoptionScope::AllOthers, _)
        | (AdoptionScope::DeadOnly | AdoptionScope::DeclaredDead, AliveSet::Unavailable) => {
            BTreeSet::from([me])
        }
        (AdoptionScope::DeadOnly | AdoptionScope::DeclaredDead, AliveSet::Unknown) => return None,
        (AdoptionScope::DeadOnly | AdoptionScope::DeclaredDead, AliveSet::Known(others)) => {
            let mut s: BTreeSet<String> = others.iter().map(|o| label::safe_value(o)).collect();
            s.insert(me);
            s
        }
    };
    let sel = LabelSelector::new().eq(label::KUBERNETES_EXECUTOR, label::TRUE);
    let sel = if excluded.len() == 1 {
        sel.ne(
            label::AIRFLOW_WORKER,
            excluded.into_iter().next().unwrap_or_default(),
        )
    } else {
        sel.not_in(label::AIRFLOW_WORKER, excluded)
    };
    Some(sel.ne(label::EXECUTOR_DONE, label::TRUE))
}

/// Orphan adoption's choice among the listed pods: for each try that `is_candidate`, the one
/// pod to relabel. A try can have several pods left (a failed one already requeued, and its
/// successor): only the newest is its current pod (most requeues used at launch, then latest
/// creation, then name), and adopting an older one would answer its failure a second time.
/// Pods already labelled with `me` are ours and skipped.
pub(crate) fn newest_pod_per_try(
    pods: Vec<PodView>,
    me: &str,
    is_candidate: impl Fn(&TaskKey) -> bool,
) -> BTreeMap<TaskKey, PodView> {
    let mut newest: BTreeMap<TaskKey, PodView> = BTreeMap::new();
    let rank = |p: &PodView| (launch::requeues_used_at_launch(p), p.creation_timestamp);
    for pod in pods {
        let Ok(key) = pod.task_key() else { continue };
        if !is_candidate(&key)
            || pod.labels.get(label::AIRFLOW_WORKER).map(String::as_str) == Some(me)
        {
            continue;
        }
        match newest.get(&key) {
            Some(p) if (rank(p), &p.name) >= (rank(&pod), &pod.name) => {}
            _ => {
                newest.insert(key, pod);
            }
        }
    }
    newest
}

/// One `AdoptOrphans` call in progress: lists and patches outstanding, candidates left.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct OrphanRound {
    /// Candidates not adopted (yet), by key.
    pub(crate) candidates: BTreeMap<TaskKey, OrphanTask>,
    /// Tries without a queuing scheduler: reset whatever happens.
    pub(crate) reset_now: Vec<TaskKey>,
    /// Tries adopted so far.
    pub(crate) adopted: Vec<TaskKey>,
    /// Lists and patches not answered yet.
    pub(crate) outstanding: usize,
    /// Reports of adopted tries that ended before the round resolved: the scheduler must learn
    /// it owns a try before it learns how the try ended.
    pub(crate) held_reports: Vec<crate::command::Notice>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(ids: &[&str]) -> AliveSet {
        AliveSet::Known(ids.iter().map(|s| (*s).to_string()).collect())
    }

    /// Airflow's `test_adopt_completed_pods_excludes_alive_siblings`,
    /// `test_adopt_completed_pods_single_scheduler_unchanged` and `test_adopt_completed_pods`.
    #[test]
    fn selectors_are_byte_exact() {
        let s = |me, alive: &AliveSet, scope| {
            completed_pods_selector(me, alive, scope).map(|s| s.to_string())
        };
        assert_eq!(
            s("5", &known(&["7", "9"]), AdoptionScope::DeadOnly).as_deref(),
            Some(
                "kubernetes_executor=True,airflow-worker notin (5,7,9),airflow_executor_done!=True"
            )
        );
        assert_eq!(
            s("5", &known(&["10", "7", "9"]), AdoptionScope::DeadOnly).as_deref(),
            Some("kubernetes_executor=True,airflow-worker notin (10,5,7,9),airflow_executor_done!=True"),
            "string sort, as Airflow"
        );
        assert_eq!(
            s("modified", &known(&[]), AdoptionScope::DeadOnly).as_deref(),
            Some("kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True")
        );
        assert_eq!(
            s("modified", &AliveSet::Unavailable, AdoptionScope::DeadOnly).as_deref(),
            Some("kubernetes_executor=True,airflow-worker!=modified,airflow_executor_done!=True"),
            "exclude-self fallback"
        );
        assert_eq!(s("5", &AliveSet::Unknown, AdoptionScope::DeadOnly), None);
        assert_eq!(
            s("5", &known(&["7"]), AdoptionScope::AllOthers).as_deref(),
            Some("kubernetes_executor=True,airflow-worker!=5,airflow_executor_done!=True"),
            "legacy scope ignores liveness"
        );
        assert_eq!(
            orphan_selector("1").to_string(),
            "kubernetes_executor=True,airflow-worker=1,airflow_executor_done!=True"
        );
    }
}
