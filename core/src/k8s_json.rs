//! Reading Kubernetes' own JSON: a Pod as `kubectl get pod -o json` prints it, and one line of a
//! watch stream (`{"type":"MODIFIED","object":{...}}`).
//!
//! Unknown fields are ignored (Kubernetes adds fields every release); what the decisions need
//! is checked, and a malformed document is a [`ParseError`] that says which field is wrong.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pod::{
    ContainerState, ContainerStatus, EventType, PodCondition, PodPhase, PodView, WatchEvent,
};
use crate::time::{parse_rfc3339_ms, Timestamp};

/// Why a document could not be read as a pod or a watch event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong shape (the message has serde's line and column).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The object has a `kind` other than `Pod`.
    #[error("expected kind Pod, found {0:?}")]
    NotAPod(String),
    /// A field the executor needs is absent or empty.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A timestamp field is not RFC 3339.
    #[error("field {field} is not an RFC 3339 timestamp: {value:?}")]
    BadTimestamp {
        /// Which field.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// A watch event's `type` is not ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    #[error("unknown watch event type {0:?}")]
    UnknownEventType(String),
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

/// The `Status` object of a watch `ERROR` event (410 Gone when the resource version expired).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub struct ApiStatus {
    /// HTTP status code, e.g. 410.
    #[serde(default)]
    pub code: u16,
    /// e.g. `Expired`, `Gone`.
    #[serde(default)]
    pub reason: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// One decoded line of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one value per line, consumed at once: boxing would only add an allocation
pub enum WatchLine {
    /// A pod event or bookmark.
    Event(WatchEvent),
    /// The server ended the watch with an error; 410 means relist
    /// ([`crate::Input::WatchExpired { namespace: None }`]).
    Error(ApiStatus),
}

#[derive(Deserialize)]
struct RawWatchLine {
    #[serde(rename = "type")]
    kind: Option<String>,
    object: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawPod {
    kind: Option<String>,
    metadata: RawMeta,
    spec: RawSpec,
    status: RawStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<String>,
    creation_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    phase: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    conditions: Option<Vec<RawCondition>>,
    init_container_statuses: Option<Vec<RawContainerStatus>>,
    container_statuses: Option<Vec<RawContainerStatus>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
    reason: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawContainerStatus {
    name: String,
    state: Option<RawContainerState>,
    last_state: Option<RawContainerState>,
    restart_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawContainerState {
    waiting: Option<RawWaiting>,
    running: Option<RawRunning>,
    terminated: Option<RawTerminated>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawWaiting {
    reason: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawRunning {
    started_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawTerminated {
    reason: Option<String>,
    message: Option<String>,
    exit_code: i32,
    started_at: Option<String>,
}

fn timestamp(field: &'static str, raw: Option<String>) -> Result<Option<Timestamp>, ParseError> {
    match raw {
        None => Ok(None),
        Some(v) => parse_rfc3339_ms(&v)
            .map(|ms| Some(Timestamp(ms)))
            .ok_or(ParseError::BadTimestamp { field, value: v }),
    }
}

fn container_state(
    raw: Option<RawContainerState>,
    field: &'static str,
) -> Result<ContainerState, ParseError> {
    Ok(match raw {
        Some(RawContainerState {
            terminated: Some(t),
            ..
        }) => ContainerState::Terminated {
            reason: t.reason,
            message: t.message,
            exit_code: t.exit_code,
            started_at: timestamp(field, t.started_at)?,
        },
        Some(RawContainerState {
            running: Some(r), ..
        }) => ContainerState::Running {
            started_at: timestamp(field, r.started_at)?,
        },
        Some(RawContainerState {
            waiting: Some(w), ..
        }) => ContainerState::Waiting {
            reason: w.reason,
            message: w.message,
        },
        _ => ContainerState::Unknown,
    })
}

fn container(raw: RawContainerStatus, field: &'static str) -> Result<ContainerStatus, ParseError> {
    let last_state = match raw.last_state {
        Some(s) if s.waiting.is_some() || s.running.is_some() || s.terminated.is_some() => {
            Some(container_state(Some(s), field)?)
        }
        _ => None,
    };
    Ok(ContainerStatus {
        name: raw.name,
        state: container_state(raw.state, field)?,
        restart_count: raw.restart_count,
        last_state,
    })
}

fn pod_from_raw(raw: RawPod) -> Result<PodView, ParseError> {
    if let Some(kind) = raw.kind.filter(|k| k != "Pod") {
        return Err(ParseError::NotAPod(kind));
    }
    let m = raw.metadata;
    let name = m
        .name
        .filter(|n| !n.is_empty())
        .ok_or(ParseError::MissingField("metadata.name"))?;
    let s = raw.status;
    let containers = |list: Option<Vec<RawContainerStatus>>,
                      field|
     -> Result<Vec<ContainerStatus>, ParseError> {
        list.unwrap_or_default()
            .into_iter()
            .map(|c| container(c, field))
            .collect()
    };
    Ok(PodView {
        namespace: m.namespace.unwrap_or_default(),
        name,
        uid: m.uid.unwrap_or_default(),
        resource_version: m.resource_version.unwrap_or_default(),
        labels: m.labels.unwrap_or_default(),
        annotations: m.annotations.unwrap_or_default(),
        phase: s.phase.as_deref().map(PodPhase::from_k8s),
        reason: s.reason,
        message: s.message,
        deletion_timestamp: timestamp("metadata.deletionTimestamp", m.deletion_timestamp)?,
        creation_timestamp: timestamp("metadata.creationTimestamp", m.creation_timestamp)?,
        conditions: s
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| PodCondition {
                kind: c.kind,
                status: c.status,
                reason: c.reason,
                message: c.message,
            })
            .collect(),
        init_containers: containers(
            s.init_container_statuses,
            "status.initContainerStatuses[].state",
        )?,
        containers: containers(s.container_statuses, "status.containerStatuses[].state")?,
        node_name: raw.spec.node_name,
    })
}

/// Reads a Pod from its JSON value.
///
/// # Errors
/// [`ParseError`] naming what is wrong.
pub fn pod_from_value(value: serde_json::Value) -> Result<PodView, ParseError> {
    pod_from_raw(serde_json::from_value(value)?)
}

/// Reads a Pod as `kubectl get pod -o json` prints it.
///
/// ```
/// let pod = podwarden_core::k8s_json::parse_pod(
///     r#"{"kind":"Pod","metadata":{"name":"p","namespace":"ns","resourceVersion":"7"},
///        "status":{"phase":"Failed","containerStatuses":[{"name":"base",
///          "state":{"terminated":{"reason":"Error","exitCode":1}}}]}}"#,
/// ).unwrap();
/// assert_eq!(pod.name, "p");
/// assert_eq!(pod.phase, Some(podwarden_core::PodPhase::Failed));
/// ```
///
/// # Errors
/// [`ParseError`] naming what is wrong.
pub fn parse_pod(json: &str) -> Result<PodView, ParseError> {
    pod_from_raw(serde_json::from_str(json)?)
}

/// Reads one watch event from its JSON value.
///
/// # Errors
/// [`ParseError`] naming what is wrong.
pub fn watch_line_from_value(value: serde_json::Value) -> Result<WatchLine, ParseError> {
    let raw: RawWatchLine = serde_json::from_value(value)?;
    let kind = raw.kind.ok_or(ParseError::MissingField("type"))?;
    let object = raw.object.ok_or(ParseError::MissingField("object"))?;
    let pod_event = |make: fn(PodView) -> WatchEvent| -> Result<WatchLine, ParseError> {
        Ok(WatchLine::Event(make(pod_from_value(object.clone())?)))
    };
    match kind.as_str() {
        "ADDED" => pod_event(|pod| WatchEvent::new(EventType::Added, pod)),
        "MODIFIED" => pod_event(|pod| WatchEvent::new(EventType::Modified, pod)),
        "DELETED" => pod_event(|pod| WatchEvent::new(EventType::Deleted, pod)),
        "BOOKMARK" => {
            let raw: RawPod = serde_json::from_value(object)?;
            let resource_version = raw
                .metadata
                .resource_version
                .filter(|rv| !rv.is_empty())
                .ok_or(ParseError::MissingField("object.metadata.resourceVersion"))?;
            // The line does not say which watch sent it; a host running one watch per
            // namespace sets `namespace` itself.
            Ok(WatchLine::Event(WatchEvent::Bookmark {
                resource_version,
                namespace: None,
            }))
        }
        "ERROR" => Ok(WatchLine::Error(serde_json::from_value(object)?)),
        other => Err(ParseError::UnknownEventType(other.to_string())),
    }
}

/// Reads one line of a watch stream (`{"type":…,"object":…}`).
///
/// # Errors
/// [`ParseError`] naming what is wrong.
pub fn parse_watch_line(json: &str) -> Result<WatchLine, ParseError> {
    watch_line_from_value(serde_json::from_str(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_the_decisions_need() {
        let pod = parse_pod(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w-1","namespace":"airflow",
            "uid":"u1","resourceVersion":"42","creationTimestamp":"2024-01-01T00:00:00Z",
            "deletionTimestamp":"2024-01-01T00:00:30Z","labels":{"airflow-worker":"5"},
            "annotations":{"dag_id":"d"},"managedFields":[{"x":1}]},
            "spec":{"nodeName":"node-a","containers":[{"name":"base"}]},
            "status":{"phase":"Running","reason":"Terminating","message":"m",
              "conditions":[{"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI"}],
              "initContainerStatuses":[{"name":"init","restartCount":0,
                 "state":{"terminated":{"exitCode":0,"reason":"Completed","startedAt":"2024-01-01T00:00:01Z"}}}],
              "containerStatuses":[{"name":"base","restartCount":1,
                 "state":{"running":{"startedAt":"2024-01-01T00:00:02Z"}}}],
              "somethingNew":true}}"#,
        )
        .unwrap();
        assert_eq!(pod.pod_ref().to_string(), "airflow/w-1");
        assert_eq!(pod.uid, "u1");
        assert_eq!(pod.resource_version, "42");
        assert_eq!(pod.phase, Some(PodPhase::Running));
        assert_eq!(pod.deletion_timestamp, Some(Timestamp(1_704_067_230_000)));
        assert_eq!(pod.creation_timestamp, Some(Timestamp(1_704_067_200_000)));
        assert_eq!(pod.disruption_reason(), Some("EvictionByEvictionAPI"));
        assert_eq!(pod.node_name.as_deref(), Some("node-a"));
        assert_eq!(pod.containers[0].restart_count, 1);
        assert!(matches!(
            pod.init_containers[0].state,
            ContainerState::Terminated { exit_code: 0, .. }
        ));
    }

    #[test]
    fn malformed_documents_name_what_is_wrong() {
        assert!(matches!(parse_pod("{"), Err(ParseError::Json(_))));
        assert_eq!(
            parse_pod(r#"{"kind":"Node","metadata":{"name":"n"}}"#),
            Err(ParseError::NotAPod("Node".into()))
        );
        assert_eq!(
            parse_pod(r#"{"metadata":{}}"#),
            Err(ParseError::MissingField("metadata.name"))
        );
        assert!(matches!(
            parse_pod(r#"{"metadata":{"name":"p","deletionTimestamp":"soon"}}"#),
            Err(ParseError::BadTimestamp {
                field: "metadata.deletionTimestamp",
                ..
            })
        ));
        assert!(matches!(
            parse_pod(r#"{"metadata":{"name":7}}"#),
            Err(ParseError::Json(_))
        ));
        assert_eq!(
            parse_watch_line(r#"{"type":"SYNC","object":{}}"#),
            Err(ParseError::UnknownEventType("SYNC".into()))
        );
        assert_eq!(
            parse_watch_line(r#"{"object":{}}"#),
            Err(ParseError::MissingField("type"))
        );
        assert_eq!(
            parse_watch_line(r#"{"type":"ADDED"}"#),
            Err(ParseError::MissingField("object"))
        );
        assert_eq!(
            parse_watch_line(r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{}}}"#),
            Err(ParseError::MissingField("object.metadata.resourceVersion"))
        );
    }

    #[test]
    fn reads_bookmarks_and_errors() {
        assert_eq!(
            parse_watch_line(
                r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"99"}}}"#
            ),
            Ok(WatchLine::Event(WatchEvent::Bookmark {
                resource_version: "99".into(),
                namespace: None,
            }))
        );
        let line = parse_watch_line(
            r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (2)"}}"#,
        )
        .unwrap();
        assert!(matches!(
            line,
            WatchLine::Error(ApiStatus { code: 410, .. })
        ));
    }
}
