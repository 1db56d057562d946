//! [`TaskKey`]: the identity of one task try, and how it travels on a pod.
//!
//! The key is read from annotations, not labels: labels hold only the label-safe, possibly
//! hashed form ([`crate::label::safe_value`]), annotations hold the raw values. A pod whose
//! annotations do not name a task is a typed error for that one event, never a crash: in
//! Airflow a missing `dag_id` annotation crashes the watcher, which restarts, replays the pod and
//! crashes again.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::label;

/// One try of one task instance: Airflow's `TaskInstanceKey`.
///
/// Ordered so that collections of keys iterate deterministically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    /// The DAG id, raw (not label-safe).
    pub dag_id: String,
    /// The task id, raw.
    pub task_id: String,
    /// The DAG run id, raw.
    pub run_id: String,
    /// The map index; `-1` for unmapped tasks, as in Airflow.
    pub map_index: i64,
    /// The try number (Airflow counts from 1; 0 is accepted as written).
    pub try_number: u32,
}

impl TaskKey {
    /// Builds an unmapped key.
    #[must_use]
    pub fn new(
        dag_id: impl Into<String>,
        task_id: impl Into<String>,
        run_id: impl Into<String>,
        try_number: u32,
    ) -> Self {
        Self {
            dag_id: dag_id.into(),
            task_id: task_id.into(),
            run_id: run_id.into(),
            map_index: -1,
            try_number,
        }
    }

    /// The same key with another map index.
    #[must_use]
    pub fn with_map_index(mut self, map_index: i64) -> Self {
        self.map_index = map_index;
        self
    }

    /// Reads a key from pod annotations, as Airflow's `annotations_to_key` does.
    ///
    /// `dag_id`, `task_id`, `run_id` and `try_number` are required; `map_index` defaults to -1.
    /// Airflow also accepts a missing `run_id` with a `logical_date` annotation and looks the run
    /// up in its DB; that legacy path is not supported here (a pure core has no DB to ask), so a
    /// missing `run_id` is an error.
    ///
    /// # Errors
    /// [`KeyError`] naming the missing or malformed annotation.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Self, KeyError> {
        let required = |name: &'static str| -> Result<&String, KeyError> {
            annotations.get(name).ok_or(KeyError::Missing(name))
        };
        let dag_id = required(label::DAG_ID)?;
        let task_id = required(label::TASK_ID)?;
        let run_id = required(label::RUN_ID)?;
        let try_raw = required(label::TRY_NUMBER)?;
        if dag_id.is_empty() {
            return Err(KeyError::Empty(label::DAG_ID));
        }
        if task_id.is_empty() {
            return Err(KeyError::Empty(label::TASK_ID));
        }
        if run_id.is_empty() {
            return Err(KeyError::Empty(label::RUN_ID));
        }
        let try_number = try_raw
            .trim()
            .parse::<u32>()
            .map_err(|_| KeyError::Malformed {
                annotation: label::TRY_NUMBER,
                value: try_raw.clone(),
            })?;
        let map_index = match annotations.get(label::MAP_INDEX) {
            None => -1,
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|m| *m >= -1)
                .ok_or_else(|| KeyError::Malformed {
                    annotation: label::MAP_INDEX,
                    value: raw.clone(),
                })?,
        };
        Ok(Self {
            dag_id: dag_id.clone(),
            task_id: task_id.clone(),
            run_id: run_id.clone(),
            map_index,
            try_number,
        })
    }

    /// The annotations Airflow writes on a worker pod for this key (raw values).
    #[must_use]
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        self.add_annotations(&mut a);
        a
    }

    /// Writes [`TaskKey::to_annotations`] into `annotations` (a manifest's).
    pub(crate) fn add_annotations(&self, a: &mut BTreeMap<String, String>) {
        a.insert(label::DAG_ID.to_string(), self.dag_id.clone());
        a.insert(label::TASK_ID.to_string(), self.task_id.clone());
        a.insert(label::RUN_ID.to_string(), self.run_id.clone());
        a.insert(label::TRY_NUMBER.to_string(), self.try_number.to_string());
        if self.map_index >= 0 {
            a.insert(label::MAP_INDEX.to_string(), self.map_index.to_string());
        }
    }

    /// The identity labels Airflow writes for this key (label-safe values).
    #[must_use]
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        self.add_labels_with(&mut l, |id| {
            label::safe_value_as(id, label::SanitisedToNothing::HashAlone)
        });
        l
    }

    /// Writes [`TaskKey::to_labels`] into `labels` (a manifest's, without a map of its own),
    /// each id made safe by `safe` (`label::safe_value_as`, or its memo).
    pub(crate) fn add_labels_with(
        &self,
        l: &mut BTreeMap<String, String>,
        mut safe: impl FnMut(&str) -> String,
    ) {
        l.insert(label::DAG_ID.to_string(), safe(&self.dag_id));
        l.insert(label::TASK_ID.to_string(), safe(&self.task_id));
        l.insert(label::RUN_ID.to_string(), safe(&self.run_id));
        l.insert(label::TRY_NUMBER.to_string(), self.try_number.to_string());
        if self.map_index >= 0 {
            l.insert(label::MAP_INDEX.to_string(), self.map_index.to_string());
        }
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.dag_id, self.task_id, self.run_id)?;
        if self.map_index >= 0 {
            write!(f, "[{}]", self.map_index)?;
        }
        write!(f, "#{}", self.try_number)
    }
}

/// Why a pod's annotations do not name a task try.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyError {
    /// A required annotation is absent.
    #[error("annotation {0:?} is missing")]
    Missing(&'static str),
    /// A required annotation is present but empty.
    #[error("annotation {0:?} is empty")]
    Empty(&'static str),
    /// An annotation that must be a number is not one.
    #[error("annotation {annotation:?} is not a valid number: {value:?}")]
    Malformed {
        /// Which annotation.
        annotation: &'static str,
        /// What it held.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn round_trips_through_annotations() {
        let k = TaskKey::new("dag", "task", "run_id", 1);
        assert_eq!(
            TaskKey::from_annotations(&k.to_annotations()),
            Ok(k.clone())
        );
        let m = k.with_map_index(3);
        assert_eq!(TaskKey::from_annotations(&m.to_annotations()), Ok(m));
    }

    #[test]
    fn missing_and_malformed_annotations_are_typed() {
        let base = [
            ("dag_id", "d"),
            ("task_id", "t"),
            ("run_id", "r"),
            ("try_number", "1"),
        ];
        for (i, (name, _)) in base.iter().enumerate() {
            let mut v = base.to_vec();
            v.remove(i);
            assert_eq!(
                TaskKey::from_annotations(&ann(&v)),
                Err(KeyError::Missing(name))
            );
        }
        let mut v = base.to_vec();
        v[3] = ("try_number", "one");
        assert!(matches!(
            TaskKey::from_annotations(&ann(&v)),
            Err(KeyError::Malformed {
                annotation: "try_number",
                ..
            })
        ));
        v[3] = ("try_number", "-1");
        assert!(TaskKey::from_annotations(&ann(&v)).is_err());
        let mut v = base.to_vec();
        v.push(("map_index", "-7"));
        assert!(matches!(
            TaskKey::from_annotations(&ann(&v)),
            Err(KeyError::Malformed {
                annotation: "map_index",
                ..
            })
        ));
        let mut v = base.to_vec();
        v[0] = ("dag_id", "");
        assert_eq!(
            TaskKey::from_annotations(&ann(&v)),
            Err(KeyError::Empty("dag_id"))
        );
    }

    #[test]
    fn labels_are_label_safe_and_annotations_raw() {
        let k = TaskKey::new("my dag", "t", "scheduled__2024-01-01T00:00:00+00:00", 2);
        let labels = k.to_labels();
        assert!(labels["dag_id"].starts_with("mydag-"), "{labels:?}");
        assert_eq!(labels["dag_id"].len(), "mydag-".len() + 9);
        assert!(labels.values().all(|v| label::is_valid_value(v)));
        assert_eq!(
            k.to_annotations()["run_id"],
            "scheduled__2024-01-01T00:00:00+00:00"
        );
        assert!(!labels.contains_key("map_index"));
    }

    #[test]
    fn written_labels_and_annotations_are_reserved() {
        let k = TaskKey::new("d", "t", "r", 1).with_map_index(0);
        for name in k.to_labels().keys() {
            assert!(label::RESERVED_LABELS.contains(&name.as_str()), "{name}");
        }
        for name in k.to_annotations().keys() {
            assert!(
                label::RESERVED_ANNOTATIONS.contains(&name.as_str()),
                "{name}"
            );
        }
    }

    proptest::proptest! {
        /// `from_annotations` reads reserved annotations only: whatever else a pod carries (a
        /// template's annotations), the key read is the same as from the reserved ones alone.
        #[test]
        fn the_key_is_read_from_reserved_annotations_only(
            map_index in -1i64..3,
            pairs in proptest::collection::vec((arb_annotation_key(), arb_annotation_value()), 0..8),
        ) {
            let mut all = TaskKey::new("d", "t", "r", 1).with_map_index(map_index).to_annotations();
            all.extend(pairs);
            let reserved: BTreeMap<String, String> = all
                .iter()
                .filter(|(k, _)| label::RESERVED_ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            proptest::prop_assert_eq!(
                TaskKey::from_annotations(&all),
                TaskKey::from_annotations(&reserved)
            );
        }
    }

    /// Reserved names (which may break the key), near-misses and Airflow's other key
    /// annotations, and arbitrary keys.
    fn arb_annotation_key() -> impl Strategy<Value = String> {
        proptest::prop_oneof![
            proptest::sample::select(label::RESERVED_ANNOTATIONS.to_vec()).prop_map(str::to_string),
            proptest::sample::select(vec!["logical_date", "execution_date", "dag-id", "DAG_ID"])
                .prop_map(str::to_string),
            "[a-zA-Z_./-]{1,12}",
        ]
    }

    fn arb_annotation_value() -> impl Strategy<Value = String> {
        proptest::prop_oneof![
            proptest::sample::select(vec!["1", "-1", "0", "x", "", " 2 "]).prop_map(str::to_string),
            "\\PC{0,6}",
        ]
    }
}
