//! The simulated pods as Kubernetes' own JSON: what the server sends (a Pod `k8s-openapi`
//! reads, watch lines, `Status` errors) and what it reads from a create.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use podwarden_core::{ContainerState, ContainerStatus, PodView, Timestamp};

/// A Kubernetes `Status` error: the body of every failed request and of a watch's ERROR event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusError {
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) message: String,
}

impl StatusError {
    pub(crate) fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// The `Status` object.
    pub(crate) fn body(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// A successful `Status` (the answer to a delete or an eviction).
pub(crate) fn success_status(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// RFC 3339 in UTC with second precision, as Kubernetes writes its timestamps.
pub(crate) fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How served times become wall times: the simulated clock's zero is when serving began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epoch(pub(crate) u64);

impl Epoch {
    fn at(self, t: Timestamp) -> String {
        rfc3339(self.0.saturating_add(t.0))
    }
}

fn state_json(state: &ContainerState, epoch: Epoch) -> Value {
    match state {
        ContainerState::Waiting { reason, message } => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        ContainerState::Running { started_at } => {
            json!({"running": {"startedAt": started_at.map(|t| epoch.at(t))}})
        }
        ContainerState::Terminated {
            reason,
            message,
            exit_code,
            started_at,
        } => json!({"terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "message": message,
            "startedAt": started_at.map(|t| epoch.at(t)),
        }}),
        ContainerState::Unknown => json!({}),
    }
}

fn container_json(c: &ContainerStatus, image: &str, epoch: Epoch) -> Value {
    let mut v = json!({
        "name": c.name,
        "image": image,
        "imageID": "",
        "ready": matches!(c.state, ContainerState::Running { .. }),
        "restartCount": c.restart_count,
        "started": matches!(c.state, ContainerState::Running { .. }),
        "state": state_json(&c.state, epoch),
    });
    if let Some(last) = &c.last_state {
        v["lastState"] = state_json(last, epoch);
    }
    v
}

/// Drops `null` members, as Kubernetes omits empty fields.
fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, prune(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        other => other,
    }
}

/// A served pod as Kubernetes' Pod JSON: `spec` as it was created (with `nodeName` once
/// bound), the status the simulator models.
pub(crate) fn pod_json(view: &PodView, spec: Option<&Value>, epoch: Epoch) -> Value {
    let mut spec = spec.cloned().unwrap_or_else(|| {
        json!({"containers": [{"name": "base", "image": "airflow:3.3.2"}], "restartPolicy": "Never"})
    });
    if let (Some(node), Some(s)) = (&view.node_name, spec.as_object_mut()) {
        s.insert("nodeName".into(), json!(node));
    }
    let image = spec["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": view.name,
            "namespace": view.namespace,
            "uid": view.uid,
            "resourceVersion": view.resource_version,
            "labels": (!view.labels.is_empty()).then_some(&view.labels),
            "annotations": (!view.annotations.is_empty()).then_some(&view.annotations),
            "creationTimestamp": view.creation_timestamp.map(|t| epoch.at(t)),
            "deletionTimestamp": view.deletion_timestamp.map(|t| epoch.at(t)),
            "deletionGracePeriodSeconds": view.deletion_timestamp.map(|_| 30),
        },
        "spec": spec,
        "status": {
            "phase": view.phase.map(|p| p.as_str()),
            "reason": view.reason,
            "message": view.message,
            "conditions": view.conditions.iter().map(|c| json!({
                "type": c.kind, "status": c.status, "reason": c.reason, "message": c.message,
            })).collect::<Vec<_>>(),
            "initContainerStatuses": (!view.init_containers.is_empty()).then(|| {
                view.init_containers.iter().map(|c| container_json(c, "", epoch)).collect::<Vec<_>>()
            }),
            "containerStatuses": (!view.containers.is_empty()).then(|| {
                view.containers.iter().map(|c| container_json(c, &image, epoch)).collect::<Vec<_>>()
            }),
        },
    });
    prune(pod)
}

/// One line of a watch stream.
pub(crate) fn watch_line(kind: &str, object: Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// A BOOKMARK event at resource version `rv`.
pub(crate) fn bookmark(rv: u64) -> Vec<u8> {
    watch_line(
        "BOOKMARK",
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}}),
    )
}

/// What a create asks for: the pod's name, labels, annotations and spec.
#[derive(Debug)]
pub(crate) struct NewPod {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) spec: Value,
}

fn string_map(v: &Value, field: &str) -> Result<BTreeMap<String, String>, StatusError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(StatusError::bad_request(format!(
                    "{field}.{k}: expected a string"
                ))),
            })
            .collect(),
        _ => Err(StatusError::bad_request(format!(
            "{field}: expected an object"
        ))),
    }
}

/// Reads a create's body. Refuses (400) a body that is no Pod, names another namespace than
/// the path, or has no name; `generateName` is not served.
pub(crate) fn new_pod(body: &Value, namespace: &str) -> Result<NewPod, StatusError> {
    let Some(obj) = body.as_object() else {
        return Err(StatusError::bad_request("the body is not a JSON object"));
    };
    if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
        if kind != "Pod" {
            return Err(StatusError::bad_request(format!(
                "expected kind Pod, got {kind}"
            )));
        }
    }
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
        if ns != namespace {
            return Err(StatusError::bad_request(format!(
                "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
            )));
        }
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            StatusError::new(
                422,
                "Invalid",
                "metadata.name: Required value (generateName is not served)",
            )
        })?
        .to_string();
    Ok(NewPod {
        name,
        labels: string_map(&meta["labels"], "metadata.labels")?,
        annotations: string_map(&meta["annotations"], "metadata.annotations")?,
        spec: obj
            .get("spec")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_720_000_000), "2025-12-03T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 3_723_000), "2000-02-29T01:02:03Z");
    }

    #[test]
    fn a_served_pod_reads_back_as_the_same_view() {
        let mut view = PodView::new("default", "p1");
        view.uid = "u".into();
        view.resource_version = "7".into();
        view.labels.insert("airflow-worker".into(), "1".into());
        view.phase = Some(podwarden_core::PodPhase::Failed);
        view.node_name = Some("node-0".into());
        view.creation_timestamp = Some(Timestamp(5_000));
        view.containers = vec![ContainerStatus::new(
            "base",
            ContainerState::Terminated {
                reason: Some("OOMKilled".into()),
                message: None,
                exit_code: 137,
                started_at: Some(Timestamp(6_000)),
            },
        )];
        let json = pod_json(&view, None, Epoch(1_764_720_000_000));
        let back = podwarden_core::k8s_json::pod_from_value(json).unwrap();
        assert_eq!(back.name, "p1");
        assert_eq!(back.labels, view.labels);
        assert_eq!(back.phase, view.phase);
        assert_eq!(back.node_name.as_deref(), Some("node-0"));
        assert_eq!(
            back.containers[0].state,
            ContainerState::Terminated {
                reason: Some("OOMKilled".into()),
                message: None,
                exit_code: 137,
                started_at: Some(Timestamp(1_764_720_006_000)),
            }
        );
    }

    #[test]
    fn a_create_without_a_name_or_in_another_namespace_is_refused() {
        let body = json!({"kind": "Pod", "metadata": {"namespace": "a", "name": "p"}});
        assert_eq!(new_pod(&body, "b").unwrap_err().code, 400);
        assert_eq!(
            new_pod(&json!({"metadata": {}}), "b").unwrap_err().code,
            422
        );
        assert_eq!(new_pod(&json!([1]), "b").unwrap_err().code, 400);
        let bad_label = json!({"metadata": {"name": "p", "labels": {"a": 1}}});
        assert_eq!(new_pod(&bad_label, "b").unwrap_err().code, 400);
        let ok = new_pod(
            &json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            "b",
        )
        .unwrap();
        assert_eq!(ok.name, "p");
    }
}
