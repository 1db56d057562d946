//! Kubernetes' own types in and out (feature `k8s-openapi`): a host built on kube-rs or on
//! `k8s-openapi` alone converts what the API server gives into the core's inputs, and the core's
//! commands into the requests to send, without writing any of it by hand.
//!
//! - In: [`pod_view`] (a `Pod` into a [`PodView`]) and [`watch_line`] (a
//!   `WatchEvent<Pod>` into a [`WatchLine`]). Both go through the same reader as the JSON
//!   parser ([`crate::k8s_json`]), so a pod means the same thing however it arrives.
//! - Out: [`request`] turns an API [`CommandKind`] into a [`KubeRequest`]: the `Pod` manifest of a
//!   create, the merge-patch body of a relabel (its precondition as `metadata.resourceVersion`),
//!   the `DeleteOptions` of a delete, the selectors of a list or a watch.
//!
//! `examples/kube_driver.rs` drives an [`crate::Executor`] with kube-rs using these.

use crate::command::{ApiCall, DbQuery, Notice};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, WatchEvent};
use serde_json::{json, Value};

use crate::command::{CommandKind, PodManifest, Precondition};
use crate::k8s_json::{self, ApiStatus, ParseError, WatchLine};
use crate::pod::PodView;

/// Reads a `Pod` as the core sees it.
///
/// # Errors
/// [`ParseError`] if the pod lacks what the core needs (a name) or carries a malformed value.
pub fn pod_view(pod: &Pod) -> Result<PodView, ParseError> {
    k8s_json::pod_from_value(serde_json::to_value(pod)?)
}

/// Reads one event of a pod watch (`k8s-openapi`'s `WatchEvent<Pod>`).
///
/// # Errors
/// [`ParseError`] if the pod cannot be read, or for an `ErrorOther` object that is not a
/// Status.
pub fn watch_line(event: &WatchEvent<Pod>) -> Result<WatchLine, ParseError> {
    use crate::pod::{EventType, WatchEvent as CoreEvent};
    let line = match event {
        WatchEvent::Added(pod) => {
            WatchLine::Event(CoreEvent::new(EventType::Added, pod_view(pod)?))
        }
        WatchEvent::Modified(pod) => {
            WatchLine::Event(CoreEvent::new(EventType::Modified, pod_view(pod)?))
        }
        WatchEvent::Deleted(pod) => {
            WatchLine::Event(CoreEvent::new(EventType::Deleted, pod_view(pod)?))
        }
        WatchEvent::Bookmark {
            resource_version, ..
        } => WatchLine::Event(CoreEvent::Bookmark {
            resource_version: resource_version.clone(),
            namespace: None,
        }),
        WatchEvent::ErrorStatus(status) => WatchLine::Error(ApiStatus {
            code: status.code.and_then(|c| u16::try_from(c).ok()).unwrap_or(0),
            reason: status.reason.clone().unwrap_or_default(),
            message: status.message.clone().unwrap_or_default(),
        }),
        WatchEvent::ErrorOther(raw) => {
            WatchLine::Error(serde_json::from_value::<ApiStatus>(raw.0.clone())?)
        }
    };
    Ok(line)
}

/// A request for the API server, built from a command.
#[derive(Debug, Clone, PartialEq)]
pub enum KubeRequest {
    /// `POST /api/v1/namespaces/{namespace}/pods`.
    Create {
        /// Namespace.
        namespace: String,
        /// The pod to create.
        pod: Box<Pod>,
    },
    /// `PATCH` with `Content-Type: application/merge-patch+json`.
    MergePatch {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
        /// The body: `{"metadata": {"labels": …, "resourceVersion": …}}`.
        body: Value,
    },
    /// `DELETE`.
    Delete {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
        /// Grace period, if the command sets one (0: force).
        options: DeleteOptions,
    },
    /// `GET /api/v1/namespaces/{namespace}/pods?labelSelector=…&fieldSelector=…`, or
    /// `GET /api/v1/pods?…` across every namespace.
    List {
        /// Namespace; `None`: every namespace (kube-rs `Api::all`).
        namespace: Option<String>,
        /// The label selector, formatted.
        label_selector: String,
        /// The field selector, if any.
        field_selector: Option<String>,
    },
    /// `GET /api/v1/namespaces/{namespace}/pods?watch=true&labelSelector=…&resourceVersion=…`,
    /// or `GET /api/v1/pods?watch=true&…` across every namespace.
    Watch {
        /// Namespace; `None`: every namespace (kube-rs `Api::all`).
        namespace: Option<String>,
        /// The label selector, formatted.
        label_selector: String,
        /// Where to resume from.
        resource_version: String,
    },
}

/// The request an API command stands for; `None` for the commands the host answers itself
/// (reports, DB queries, requeues, hand-over results).
#[must_use]
pub fn request(kind: &CommandKind) -> Option<KubeRequest> {
    Some(match kind {
        CommandKind::Api(ApiCall::CreatePod { manifest }) => KubeRequest::Create {
            namespace: manifest.pod.namespace.clone(),
            pod: Box::new(pod_manifest(manifest)),
        },
        CommandKind::Api(ApiCall::PatchLabels {
            pod,
            labels,
            precondition,
        }) => KubeRequest::MergePatch {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            body: merge_patch(labels, precondition.as_ref()),
        },
        CommandKind::Api(ApiCall::DeletePod {
            pod,
            grace_period_seconds,
        }) => KubeRequest::Delete {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            options: DeleteOptions {
                grace_period_seconds: grace_period_seconds.map(i64::from),
                ..DeleteOptions::default()
            },
        },
        CommandKind::Api(ApiCall::ListPods {
            namespace,
            label_selector,
            field_selector,
        }) => KubeRequest::List {
            namespace: namespace.clone(),
            label_selector: label_selector.to_string(),
            field_selector: field_selector.map(|f| f.to_string()),
        },
        CommandKind::Notice(Notice::WatchPods {
            namespace,
            label_selector,
            resource_version,
        }) => KubeRequest::Watch {
            namespace: namespace.clone(),
            label_selector: label_selector.to_string(),
            resource_version: resource_version.clone(),
        },
        CommandKind::Notice(Notice::Report { .. })
        | CommandKind::Db(DbQuery::QueryTaskStates { .. })
        | CommandKind::Db(DbQuery::QueryUnfinishedTasks)
        | CommandKind::Notice(Notice::Requeue { .. })
        | CommandKind::Notice(Notice::OrphansResolved { .. }) => return None,
    })
}

/// The worker pod: one `base` container (image, args, environment), never restarted.
#[must_use]
pub fn pod_manifest(m: &PodManifest) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(m.pod.name.clone()),
            namespace: Some(m.pod.namespace.clone()),
            labels: Some(m.labels.clone()),
            annotations: Some(m.annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "base".into(),
                image: m.image.clone(),
                args: (!m.args.is_empty()).then(|| m.args.clone()),
                env: (!m.env.is_empty()).then(|| {
                    m.env
                        .iter()
                        .map(|(name, value)| EnvVar {
                            name: name.clone(),
                            value: Some(value.clone()),
                            ..EnvVar::default()
                        })
                        .collect()
                }),
                ..Container::default()
            }],
            restart_policy: Some("Never".into()),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// A merge patch of labels. The precondition travels as `metadata.resourceVersion`: the server
/// answers 409 if the pod changed since it was read, which also covers the owner label the
/// precondition names (a pod without a resource version, which the API never returns, is
/// patched unconditionally).
fn merge_patch(labels: &BTreeMap<String, String>, precondition: Option<&Precondition>) -> Value {
    let mut metadata = json!({ "labels": labels });
    if let Some(rv) = precondition.and_then(|p| p.resource_version.as_ref()) {
        metadata["resourceVersion"] = json!(rv);
    }
    json!({ "metadata": metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{PodPhase, PodRef};
    use crate::selector::LabelSelector;

    fn manifest() -> PodManifest {
        PodManifest {
            pod: PodRef::new("airflow", "etl-load-abc"),
            labels: BTreeMap::from([("airflow-worker".into(), "5".into())]),
            annotations: BTreeMap::from([("dag_id".into(), "etl".into())]),
            image: Some("airflow:3".into()),
            args: vec!["run".into()],
            env: BTreeMap::from([("AIRFLOW_IS_K8S_EXECUTOR_POD".into(), "True".into())]),
        }
    }

    #[test]
    fn a_created_pod_reads_back_as_the_same_pod() {
        let pod = pod_manifest(&manifest());
        let view = pod_view(&pod).expect("readable");
        assert_eq!(view.pod_ref(), PodRef::new("airflow", "etl-load-abc"));
        assert_eq!(view.labels["airflow-worker"], "5");
        assert_eq!(view.annotations["dag_id"], "etl");
        let spec = pod.spec.expect("a spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("airflow:3"));
    }

    #[test]
    fn watch_events_and_errors_convert() {
        let mut pod = pod_manifest(&manifest());
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        let line = watch_line(&WatchEvent::Modified(pod)).expect("readable");
        let WatchLine::Event(event) = line else {
            panic!("an event")
        };
        let (_, view) = event.pod().expect("a pod event");
        assert_eq!(view.phase, Some(PodPhase::Failed));
        let gone = k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
            code: Some(410),
            reason: Some("Expired".into()),
            message: Some("too old resource version".into()),
            ..Default::default()
        };
        assert_eq!(
            watch_line(&WatchEvent::ErrorStatus(gone)).expect("readable"),
            WatchLine::Error(ApiStatus {
                code: 410,
                reason: "Expired".into(),
                message: "too old resource version".into(),
            })
        );
    }

    #[test]
    fn commands_become_requests() {
        let patch = CommandKind::Api(ApiCall::PatchLabels {
            pod: PodRef::new("airflow", "p"),
            labels: BTreeMap::from([("airflow-worker".into(), "7".into())]),
            precondition: Some(Precondition {
                resource_version: Some("42".into()),
                label: Some(("airflow-worker".into(), "5".into())),
            }),
        });
        assert_eq!(
            request(&patch),
            Some(KubeRequest::MergePatch {
                namespace: "airflow".into(),
                name: "p".into(),
                body: json!({"metadata": {"labels": {"airflow-worker": "7"}, "resourceVersion": "42"}}),
            })
        );
        let delete = CommandKind::Api(ApiCall::DeletePod {
            pod: PodRef::new("airflow", "p"),
            grace_period_seconds: Some(0),
        });
        let Some(KubeRequest::Delete { options, .. }) = request(&delete) else {
            panic!("a delete")
        };
        assert_eq!(options.grace_period_seconds, Some(0));
        let list = CommandKind::Api(ApiCall::ListPods {
            namespace: Some("airflow".into()),
            label_selector: LabelSelector::new().eq("airflow-worker", "5"),
            field_selector: Some("status.phase=Succeeded".parse().unwrap()),
        });
        assert_eq!(
            request(&list),
            Some(KubeRequest::List {
                namespace: Some("airflow".into()),
                label_selector: "airflow-worker=5".into(),
                field_selector: Some("status.phase=Succeeded".into()),
            })
        );
        assert_eq!(
            request(&CommandKind::Db(DbQuery::QueryUnfinishedTasks)),
            None
        );
    }
}
