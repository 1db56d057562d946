//! Zombie sweep of KubernetesPodOperator pods (Airflow issue #58968, PR #70140).
//!
//! A KPO pod whose sidecar never exits keeps running after its task ended. A pod labelled
//! `kubernetes_pod_operator=True` is a zombie when no unfinished task instance matches its
//! identity labels, or when it carries an older `try_number` than the unfinished one (a pod of
//! an earlier try). Identity labels are label-safe values, so the DB's raw values are normalised
//! with [`crate::label::safe_value`] before comparing: comparing raw values misses every long or
//! odd id.
//!
//! Never deleted: a pod of an unfinished try (same or newer try number), a pod whose identity
//! labels are missing or malformed, anything at all when the DB answer is unavailable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::TaskKey;
use crate::label;
use crate::pod::{PodRef, PodView};

/// Why a pod is a zombie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "why")]
#[non_exhaustive]
pub(crate) enum ZombieReason {
    /// No unfinished task instance has this identity.
    NoUnfinishedTask,
    /// The unfinished task instance is on a later try.
    OlderTry {
        /// The pod's try.
        pod_try: u32,
        /// The task instance's current try.
        current_try: u32,
    },
}

/// `(dag_id, task_id, run_id, map_index)` as they appear on labels.
type Identity = (String, String, String, i64);

fn pod_identity(pod: &PodView) -> Option<(Identity, u32)> {
    let get = |k: &str| pod.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let try_number = pod.labels.get(label::TRY_NUMBER)?.parse::<u32>().ok()?;
    let map_index = match pod.labels.get(label::MAP_INDEX) {
        None => -1,
        Some(v) => v.parse::<i64>().ok().filter(|m| *m >= -1)?,
    };
    Some((
        (
            get(label::DAG_ID)?,
            get(label::TASK_ID)?,
            get(label::RUN_ID)?,
            map_index,
        ),
        try_number,
    ))
}

/// The zombies among `pods`, oldest first (by creation time, then namespace and name), at most
/// `cap`. `unfinished` is every unfinished task instance with its current try.
#[must_use]
pub(crate) fn find_zombies(
    pods: &[PodView],
    unfinished: &[TaskKey],
    cap: usize,
) -> Vec<(PodRef, ZombieReason)> {
    let mut current: BTreeMap<Identity, u32> = BTreeMap::new();
    for k in unfinished {
        let id = (
            label::safe_value(&k.dag_id),
            label::safe_value(&k.task_id),
            label::safe_value(&k.run_id),
            k.map_index,
        );
        let t = current.entry(id).or_insert(k.try_number);
        *t = (*t).max(k.try_number);
    }
    let mut zombies: Vec<(&PodView, ZombieReason)> = pods
        .iter()
        .filter(|p| {
            p.labels
                .get(label::KUBERNETES_POD_OPERATOR)
                .is_some_and(|v| v == label::TRUE)
        })
        .filter_map(|p| {
            let (id, pod_try) = pod_identity(p)?;
            match current.get(&id) {
                None => Some((p, ZombieReason::NoUnfinishedTask)),
                Some(&current_try) if pod_try < current_try => Some((
                    p,
                    ZombieReason::OlderTry {
                        pod_try,
                        current_try,
                    },
                )),
                Some(_) => None,
            }
        })
        .collect();
    zombies.sort_by(|(a, _), (b, _)| {
        (
            a.creation_timestamp.is_none(),
            a.creation_timestamp,
            &a.namespace,
            &a.name,
        )
            .cmp(&(
                b.creation_timestamp.is_none(),
                b.creation_timestamp,
                &b.namespace,
                &b.name,
            ))
    });
    zombies
        .into_iter()
        .take(cap)
        .map(|(p, why)| (p.pod_ref(), why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn kpo(name: &str, key: &TaskKey, created: u64) -> PodView {
        let mut p = PodView::new("airflow", name);
        p.labels = key.to_labels();
        p.labels
            .insert(label::KUBERNETES_POD_OPERATOR.into(), label::TRUE.into());
        p.creation_timestamp = Some(Timestamp(created));
        p
    }

    #[test]
    fn zombies_are_pods_of_no_unfinished_try_or_an_older_try() {
        let long_run = format!("scheduled__2024-01-01T00:00:00+00:00_{}", "x".repeat(80));
        let active = TaskKey::new("dag", "sidecar_task", long_run.as_str(), 3);
        let pods = vec![
            kpo("current", &active, 30),
            kpo(
                "newer",
                &TaskKey {
                    try_number: 4,
                    ..active.clone()
                },
                40,
            ),
            kpo(
                "old-try",
                &TaskKey {
                    try_number: 2,
                    ..active.clone()
                },
                20,
            ),
            kpo("finished", &TaskKey::new("dag", "done", "r", 1), 10),
            kpo(
                "mapped",
                &TaskKey::new("dag", "sidecar_task", long_run.as_str(), 3).with_map_index(0),
                50,
            ),
        ];
        let z = find_zombies(&pods, &[active], 10);
        let names: Vec<&str> = z.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["finished", "old-try", "mapped"],
            "oldest first; raw ids normalised"
        );
        assert_eq!(
            z[1].1,
            ZombieReason::OlderTry {
                pod_try: 2,
                current_try: 3
            }
        );
        assert_eq!(find_zombies(&pods, &[], 2).len(), 2, "capped");
    }

    #[test]
    fn malformed_or_unlabelled_pods_are_never_zombies() {
        let k = TaskKey::new("d", "t", "r", 1);
        let mut bad_try = kpo("bad-try", &k, 1);
        bad_try
            .labels
            .insert(label::TRY_NUMBER.into(), "one".into());
        let mut no_dag = kpo("no-dag", &k, 1);
        no_dag.labels.remove(label::DAG_ID);
        let mut not_kpo = kpo("executor-pod", &k, 1);
        not_kpo.labels.remove(label::KUBERNETES_POD_OPERATOR);
        let mut bad_map = kpo("bad-map", &k, 1);
        bad_map.labels.insert(label::MAP_INDEX.into(), "x".into());
        assert!(find_zombies(&[bad_try, no_dag, not_kpo, bad_map], &[], 10).is_empty());
    }
}
