//! What the host tells the executor.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::command::{ApiOutcome, CommandId};
use crate::db::DbOutcome;
use crate::key::{KeyError, TaskKey};
use crate::label;
use crate::liveness::{HeartbeatRecord, HeartbeatsUnavailable};
use crate::pod::{PodRef, WatchEvent};

/// The per-task part of a worker pod that the scheduler decides (Airflow's workload and
/// `executor_config`).
///
/// The executor adds its own identity labels and annotations to every pod it creates, and reads
/// them back to select and recognise its pods. A template may not set any of them
/// ([`label::RESERVED_LABELS`], [`label::RESERVED_ANNOTATIONS`]): `Submit` refuses such a
/// template with a typed error ([`PodTemplate::validate`]) rather than overwriting the value or
/// letting it through. Airflow lets `pod_override` overwrite identity labels; here a template
/// label `airflow-worker` would make a pod escape its owner's selector (a leaked pod),
/// `airflow_executor_done=True` would hide it from its own watch, `airflow_pod_revoked` would
/// make every event of it ignored, and `kubernetes_pod_operator=True` would make it a zombie-sweep
/// target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodTemplate {
    /// The namespace the pod is created in (the template's `metadata.namespace`); `None` uses
    /// [`crate::Config::namespace`]. It must be a namespace the executor watches
    /// ([`crate::Config::watches_namespace`]): `Submit` refuses another, where Airflow creates
    /// the pod and never sees it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Image override; `None` uses the configured worker image, then the driver's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The task command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra labels: valid Kubernetes label keys ([`label::is_valid_key`]) and values
    /// ([`label::is_valid_value`]), none of [`label::RESERVED_LABELS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations: valid Kubernetes annotation keys ([`label::is_valid_annotation_key`]),
    /// none of [`label::RESERVED_ANNOTATIONS`]; values are not checked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl PodTemplate {
    /// Checks what `Submit` requires of a template on its own: its namespace, if named, is a
    /// valid namespace name ([`crate::config::is_valid_namespace`]; whether it is watched
    /// depends on the configuration, and `Submit` checks that too); every label and annotation key is a valid
    /// Kubernetes key ([`label::is_valid_key`], [`label::is_valid_annotation_key`]) that the
    /// executor does not reserve ([`label::RESERVED_LABELS`], [`label::RESERVED_ANNOTATIONS`]),
    /// and every label value is a valid label value ([`label::is_valid_value`]). Annotation
    /// values are free text (Kubernetes bounds only the total size of a pod's annotations, which
    /// a refused create reports).
    ///
    /// Labels are checked before annotations, each in key order; the first problem is returned.
    ///
    /// ```
    /// use podwarden_core::input::{InputError, PodTemplate, TemplateField};
    /// let mut template = PodTemplate::default();
    /// template.labels.insert("team".into(), "data".into());
    /// assert_eq!(template.validate(), Ok(()));
    /// template.labels.insert("airflow-worker".into(), "7".into());
    /// assert_eq!(
    ///     template.validate(),
    ///     Err(InputError::ReservedTemplateKey { kind: TemplateField::Label, key: "airflow-worker".into() })
    /// );
    /// ```
    ///
    /// # Errors
    /// [`InputError::InvalidTemplateNamespace`], [`InputError::ReservedTemplateKey`],
    /// [`InputError::InvalidTemplateKey`] or [`InputError::InvalidTemplateLabel`], naming the
    /// first namespace or key at fault.
    pub fn validate(&self) -> Result<(), InputError> {
        if let Some(namespace) = &self.namespace {
            if !crate::config::is_valid_namespace(namespace) {
                return Err(InputError::InvalidTemplateNamespace(namespace.clone()));
            }
        }
        for (key, value) in &self.labels {
            check_key(TemplateField::Label, key)?;
            if !label::is_valid_value(value) {
                return Err(InputError::InvalidTemplateLabel {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        for key in self.annotations.keys() {
            check_key(TemplateField::Annotation, key)?;
        }
        Ok(())
    }
}

/// A template key is neither reserved nor invalid. Reserved is checked first: every reserved
/// name is a valid key, and "remove it" is the more useful advice.
fn check_key(kind: TemplateField, key: &str) -> Result<(), InputError> {
    let (reserved, valid) = match kind {
        TemplateField::Label => (label::RESERVED_LABELS, label::is_valid_key(key)),
        TemplateField::Annotation => (
            label::RESERVED_ANNOTATIONS,
            label::is_valid_annotation_key(key),
        ),
    };
    if reserved.contains(&key) {
        return Err(InputError::ReservedTemplateKey {
            kind,
            key: key.to_string(),
        });
    }
    if !valid {
        return Err(InputError::InvalidTemplateKey {
            kind,
            key: key.to_string(),
        });
    }
    Ok(())
}

/// Which map of a [`PodTemplate`] a key was found in, for [`InputError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateField {
    /// [`PodTemplate::labels`].
    Label,
    /// [`PodTemplate::annotations`].
    Annotation,
}

impl fmt::Display for TemplateField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Label => "label",
            Self::Annotation => "annotation",
        })
    }
}

/// A task instance handed over by the scheduler (Airflow's `try_adopt_task_instances` input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanTask {
    /// The try.
    pub key: TaskKey,
    /// The scheduler that queued it (`queued_by_job_id`); `None` means it is reset at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_by: Option<String>,
    /// The try's pod template, if the scheduler can rebuild it. With it, an adopted try whose
    /// pod then fails before the task starts can be requeued; without it, such a failure fails
    /// the try, as in Airflow (the adopter has no job spec).
    ///
    /// It comes from the scheduler, as a `Submit`'s does, so it is checked the same way
    /// ([`crate::PodTemplate::validate`], and its namespace must be one the executor
    /// watches). A template that fails the check is treated as no
    /// template: the try is still adopted (its pod is running and must not be left ownerless),
    /// but a pod would never be created from the template, so a failure before the task starts
    /// fails the try instead of requeueing it. The hand-over is not refused, since it concerns
    /// a whole list of tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// One input to [`crate::Executor::handle_input`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Input {
    /// The scheduler queued a task try on this executor (Airflow's `execute_async`).
    Submit {
        /// The try.
        key: TaskKey,
        /// What its pod runs.
        #[serde(default)]
        template: PodTemplate,
    },
    /// One event from the pod watch started by [`crate::command::Notice::WatchPods`].
    Watch {
        /// The event.
        event: WatchEvent,
    },
    /// A watch ended with 410 Gone (its resource version is too old), or the host lost it and
    /// cannot resume: the executor relists that watch's scope and reconciles.
    WatchExpired {
        /// Which watch: the `namespace` of the [`crate::command::Notice::WatchPods`] that
        /// started it, where the executor runs one watch per namespace
        /// (`multi_namespace_mode` with a namespace list). `None`: every watch the executor
        /// runs (the one watch, in the other modes); so is a namespace that names none of its
        /// watches, so that no expired watch is left without a restart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// The answer to an API command.
    ApiResult {
        /// The command answered.
        id: CommandId,
        /// Its outcome.
        outcome: ApiOutcome,
    },
    /// The answer to a DB query command.
    DbResult {
        /// The command answered.
        id: CommandId,
        /// Its outcome.
        outcome: DbOutcome,
    },
    /// A read of every scheduler job's heartbeat (send one per scheduler heartbeat, e.g. every
    /// `scheduler_heartbeat_sec`), or the read's failure.
    Heartbeats {
        /// The records, or why they could not be read.
        snapshot: Result<Vec<HeartbeatRecord>, HeartbeatsUnavailable>,
    },
    /// The scheduler hands over task instances queued by schedulers it found dead (Airflow's
    /// `try_adopt_task_instances`). Answered by a [`crate::command::Notice::OrphansResolved`] once
    /// every list and relabel is answered.
    AdoptOrphans {
        /// The task instances.
        tis: Vec<OrphanTask>,
    },
    /// The scheduler revokes a queued try (Airflow's `revoke_task`, used by the stuck-in-queued
    /// check): its pod is labelled revoked and deleted, and its bookkeeping freed; nothing is
    /// reported.
    Revoke {
        /// The try.
        key: TaskKey,
    },
}

/// Why an input was rejected. The executor's state is unchanged by a rejected input, except
/// that a watch event's resource version is still recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The try is already queued or running on this executor.
    #[error("task {0} is already tracked by this executor")]
    DuplicateTask(TaskKey),
    /// A template label value Kubernetes would reject.
    #[error(
        "template label {key:?} has an invalid value {value:?}; a label value is empty or at \
         most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    )]
    InvalidTemplateLabel {
        /// The label key.
        key: String,
        /// The rejected value.
        value: String,
    },
    /// A template label or annotation that the executor sets or reads itself
    /// ([`label::RESERVED_LABELS`], [`label::RESERVED_ANNOTATIONS`]). The try is not queued.
    #[error("template {kind} {key:?} is set or read by the executor; remove it from the template")]
    ReservedTemplateKey {
        /// Label or annotation.
        kind: TemplateField,
        /// The reserved key.
        key: String,
    },
    /// A template label or annotation key that Kubernetes would reject
    /// ([`label::is_valid_key`], [`label::is_valid_annotation_key`]). The try is not queued.
    #[error(
        "template {kind} key {key:?} is not a valid Kubernetes key; use a name of 1 to 63 \
         letters, digits, '-', '_' and '.' starting and ending with a letter or digit, \
         optionally after a lowercase DNS-subdomain prefix and '/' (\"example.com/name\")"
    )]
    InvalidTemplateKey {
        /// Label or annotation.
        kind: TemplateField,
        /// The rejected key.
        key: String,
    },
    /// A template namespace that is not a valid Kubernetes namespace name. The try is not
    /// queued.
    #[error(
        "template namespace {0:?} is not a valid Kubernetes namespace (1 to 63 lowercase \
         letters, digits and '-', starting and ending with a letter or digit)"
    )]
    InvalidTemplateNamespace(String),
    /// A template namespace that none of the executor's watches sees
    /// ([`crate::Config::watches_namespace`]): the pod's events would never arrive. The try is
    /// not queued.
    #[error(
        "template namespace {0:?} is not watched by this executor: add it to \
         multi_namespace_mode_namespace_list (with multi_namespace_mode = true), or leave the \
         template's namespace unset"
    )]
    UnwatchedTemplateNamespace(String),
    /// An answer for a command this executor did not send, or already got an answer for.
    #[error("no command {0} is waiting for an answer")]
    UnknownCommand(CommandId),
    /// An answer of the wrong shape (a pod list for a delete, no list for a list, a DB answer
    /// for an API command or the reverse).
    #[error("command {id} expected {expected}, got another kind of answer")]
    UnexpectedOutcome {
        /// The command answered.
        id: CommandId,
        /// What it expected.
        expected: &'static str,
    },
    /// A watch event for a pod whose annotations do not name a task try. The event is
    /// otherwise ignored (Airflow's watcher would crash and replay it forever).
    #[error("pod {pod} does not identify a task try: {error}")]
    PodIdentity {
        /// The pod.
        pod: PodRef,
        /// What is wrong with its annotations.
        error: KeyError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> PodTemplate {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        PodTemplate {
            labels: map(labels),
            annotations: map(annotations),
            ..PodTemplate::default()
        }
    }

    #[test]
    fn valid_templates_pass() {
        assert_eq!(PodTemplate::default().validate(), Ok(()));
        let t = template(
            &[
                ("team", "data"),
                ("example.com/tier", ""),
                ("Cost_Center", "A.1"),
            ],
            &[
                ("owner", "any text: even spaces"),
                ("Example.com/Owner", ""),
            ],
        );
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn every_reserved_name_is_refused_as_label_or_annotation() {
        for &key in label::RESERVED_LABELS {
            assert_eq!(
                template(&[(key, "True")], &[]).validate(),
                Err(InputError::ReservedTemplateKey {
                    kind: TemplateField::Label,
                    key: key.into()
                })
            );
        }
        for &key in label::RESERVED_ANNOTATIONS {
            assert_eq!(
                template(&[], &[(key, "1")]).validate(),
                Err(InputError::ReservedTemplateKey {
                    kind: TemplateField::Annotation,
                    key: key.into()
                })
            );
        }
        // A name reserved only as a label is a free annotation, and the reverse.
        for &key in label::RESERVED_LABELS {
            if !label::RESERVED_ANNOTATIONS.contains(&key) {
                assert_eq!(template(&[], &[(key, "x")]).validate(), Ok(()), "{key}");
            }
        }
        for &key in label::RESERVED_ANNOTATIONS {
            if !label::RESERVED_LABELS.contains(&key) {
                assert_eq!(template(&[(key, "x")], &[]).validate(), Ok(()), "{key}");
            }
        }
    }

    #[test]
    fn invalid_keys_and_values_are_refused() {
        assert_eq!(
            template(&[("a/b/c", "x")], &[]).validate(),
            Err(InputError::InvalidTemplateKey {
                kind: TemplateField::Label,
                key: "a/b/c".into()
            })
        );
        assert_eq!(
            template(&[], &[("-owner", "x")]).validate(),
            Err(InputError::InvalidTemplateKey {
                kind: TemplateField::Annotation,
                key: "-owner".into()
            })
        );
        // Uppercase prefix: refused on a label, accepted on an annotation, as Kubernetes does.
        assert!(matches!(
            template(&[("Example.com/x", "y")], &[]).validate(),
            Err(InputError::InvalidTemplateKey { .. })
        ));
        assert_eq!(template(&[], &[("Example.com/x", "y")]).validate(), Ok(()));
        assert_eq!(
            template(&[("team", "-data")], &[]).validate(),
            Err(InputError::InvalidTemplateLabel {
                key: "team".into(),
                value: "-data".into()
            })
        );
    }

    #[test]
    fn the_first_problem_is_reported_labels_first_reserved_before_value() {
        // A reserved key with a bad value: "remove it" is the advice.
        assert!(matches!(
            template(&[(label::AIRFLOW_WORKER, "not valid!")], &[]).validate(),
            Err(InputError::ReservedTemplateKey { .. })
        ));
        // Labels before annotations, keys in order.
        let t = template(
            &[("b", "bad value"), ("a", "ok")],
            &[(label::LAUNCH_ATTEMPT_ANNOTATION, "9")],
        );
        assert_eq!(
            t.validate(),
            Err(InputError::InvalidTemplateLabel {
                key: "b".into(),
                value: "bad value".into()
            })
        );
    }

    #[test]
    fn messages_say_what_is_wrong_and_what_to_do() {
        let reserved = InputError::ReservedTemplateKey {
            kind: TemplateField::Label,
            key: label::AIRFLOW_WORKER.into(),
        };
        assert_eq!(
            reserved.to_string(),
            "template label \"airflow-worker\" is set or read by the executor; remove it from the template"
        );
        let invalid = InputError::InvalidTemplateKey {
            kind: TemplateField::Annotation,
            key: "a/b/c".into(),
        };
        let msg = invalid.to_string();
        assert!(
            msg.starts_with(
                "template annotation key \"a/b/c\" is not a valid Kubernetes key; use "
            ),
            "{msg}"
        );
    }
}
