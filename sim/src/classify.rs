//! Classifying every event of a watch stream (or a pod, or a pod list) with the watch table.
//!
//! Three input shapes are accepted, detected from the content:
//!
//! * **one JSON document** (the whole input parses as one JSON value, possibly pretty-printed
//!   over many lines):
//!   * a watch event `{"type": …, "object": …}`;
//!   * a `List` or `PodList` with `items` (what `kubectl get pods -o json` prints): every
//!     item is classified as a `MODIFIED` event and numbered with [`ClassifiedEvent::item`];
//!   * anything else is read as a Pod (`kubectl get pod NAME -o json`) and classified as a
//!     `MODIFIED` event;
//! * **a concatenation of pretty-printed watch events** (what
//!   `kubectl get pods -w -o json --output-watch-events` prints): several JSON values, each
//!   one event, numbered by the line it starts on;
//! * **JSON Lines**: one watch event per line, blank lines skipped.
//!
//! The input is read incrementally, one document at a time ([`crate::watch_stream`]), so a
//! recording of any length is classified in linear time and printed as it is read
//! ([`classify_reader`]). A bad document is a [`LineError`] for that document only; the others
//! are still classified.
//!
//! ```
//! use podwarden_sim::classify::{classify_input, default_fatal_reasons};
//!
//! let stream = r#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"w","namespace":"airflow","resourceVersion":"7"},"status":{"phase":"Succeeded"}}}
//! not json
//! "#;
//! let results = classify_input(stream, &default_fatal_reasons());
//! let first = results[0].as_ref().unwrap();
//! assert_eq!((first.row, first.outcome), (Some(8), Some("succeeded")));
//! assert_eq!(first.task_error.as_deref(), Some("annotation \"dag_id\" is missing"));
//! assert!(results[1].as_ref().unwrap_err().to_string().starts_with("line 2: invalid JSON"));
//! ```

use std::fmt;
use std::io::{self, BufRead};

use podwarden_core::k8s_json::{self, ParseError, WatchLine};
use podwarden_core::watch::{self, FailureDetails, PodOutcome, Rule};
use podwarden_core::{Config, EventType, PodView};
use serde::Serialize;
use serde_json::Value;

use crate::watch_stream::{Document, Documents};

/// The classification of one event, as printed by `podwarden-sim classify` (one JSON object
/// per line). Absent fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassifiedEvent {
    /// 1-based line of the input the event starts on (1 for a single document and for
    /// every item of a list).
    pub line: usize,
    /// 1-based index of the item, for the items of a `List`/`PodList`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event: &'static str,
    /// `namespace/name` of the pod; absent for bookmarks and errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The resource version the event brings the watch to; absent for errors and for pods
    /// without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The task try the pod runs (`dag.task.run[map]#try`), from its annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Why the pod's annotations do not name a task try (instead of [`Self::task`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_error: Option<String>,
    /// The classification-table rule that decided; absent for bookmarks and errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// The rule's row number (1–11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u8>,
    /// `ignore`, `adopted`, `failed` or `succeeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// What the pod says about its failure, when the outcome is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    /// HTTP status code of an `ERROR` event (410: the resource version expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Reason of an `ERROR` event, e.g. `Expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Message of an `ERROR` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ClassifiedEvent {
    fn empty(line: usize, item: Option<usize>, event: &'static str) -> Self {
        Self {
            line,
            item,
            event,
            pod: None,
            resource_version: None,
            task: None,
            task_error: None,
            rule: None,
            row: None,
            outcome: None,
            failure_details: None,
            code: None,
            reason: None,
            message: None,
        }
    }

    /// The event as one line of compact JSON.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        // Only strings, integers and maps of strings: serialization cannot fail.
        serde_json::to_string(self)
            .unwrap_or_else(|e| serde_json::json!({ "serialize_error": e.to_string() }).to_string())
    }
}

/// An input line (or list item) that could not be read as a watch event or a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line the bad document starts on.
    pub line: usize,
    /// 1-based index of the bad item, for the items of a `List`/`PodList`.
    pub item: Option<usize>,
    /// What is wrong with it.
    pub error: ParseError,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            None => write!(f, "line {}: {}", self.line, self.error),
            Some(item) => write!(f, "line {}, item {}: {}", self.line, item, self.error),
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Airflow's default `worker_pod_pending_fatal_container_state_reasons`, from
/// [`Config::default`].
#[must_use]
pub fn default_fatal_reasons() -> Vec<String> {
    Config::default().worker_pod_pending_fatal_container_state_reasons
}

/// Classifies one decoded watch line. `line` and `item` are copied into the result;
/// `fatal_reasons` is `worker_pod_pending_fatal_container_state_reasons`.
#[must_use]
pub fn classify_watch_line(
    line: usize,
    item: Option<usize>,
    watch_line: &WatchLine,
    fatal_reasons: &[String],
) -> ClassifiedEvent {
    match watch_line {
        WatchLine::Error(status) => ClassifiedEvent {
            code: Some(status.code),
            reason: Some(status.reason.clone()),
            message: Some(status.message.clone()),
            ..ClassifiedEvent::empty(line, item, "ERROR")
        },
        // Through methods, not patterns, so that boxing the event in the core changes nothing.
        WatchLine::Event(event) => match event.pod() {
            Some((kind, pod)) => classify_pod(line, item, kind, pod, fatal_reasons),
            None => ClassifiedEvent {
                resource_version: Some(event.resource_version().to_string()),
                ..ClassifiedEvent::empty(line, item, "BOOKMARK")
            },
        },
    }
}

/// Classifies one pod event with [`watch::classify`].
#[must_use]
pub fn classify_pod(
    line: usize,
    item: Option<usize>,
    kind: EventType,
    pod: &PodView,
    fatal_reasons: &[String],
) -> ClassifiedEvent {
    let decision = watch::classify(kind, pod, fatal_reasons);
    let (task, task_error) = match pod.task_key() {
        Ok(key) => (Some(key.to_string()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (outcome, failure_details) = match decision.outcome {
        PodOutcome::Ignore => ("ignore", None),
        PodOutcome::Adopted => ("adopted", None),
        // `FailureDetails::clone(&details)` compiles whether the core boxes the details or not.
        PodOutcome::Failed { details } => ("failed", Some(FailureDetails::clone(&details))),
        PodOutcome::Succeeded => ("succeeded", None),
    };
    ClassifiedEvent {
        pod: Some(pod.pod_ref().to_string()),
        resource_version: Some(pod.resource_version.clone()).filter(|rv| !rv.is_empty()),
        task,
        task_error,
        rule: Some(decision.rule),
        row: Some(decision.rule.row()),
        outcome: Some(outcome),
        failure_details,
        ..ClassifiedEvent::empty(line, item, kind.as_str())
    }
}

/// Classifies every event of `input` (see the [module documentation](self) for the
/// accepted shapes), in input order. A document that cannot be read is an `Err` for that
/// document only. [`classify_reader`] does the same incrementally.
#[must_use]
pub fn classify_input(
    input: &str,
    fatal_reasons: &[String],
) -> Vec<Result<ClassifiedEvent, LineError>> {
    // A `&str` is UTF-8 and reading a slice cannot fail: there are no read errors to drop.
    classify_reader(input.as_bytes(), fatal_reasons)
        .filter_map(Result::ok)
        .collect()
}

/// Classifies every event read from `reader` as it reads, in time linear in the input and
/// holding one document at a time (see [`crate::watch_stream`]). The outer `Err` is a read
/// error (the input ends there); the inner one a document that cannot be read, for that
/// document only.
pub fn classify_reader<'a, R: BufRead + 'a>(
    reader: R,
    fatal_reasons: &'a [String],
) -> impl Iterator<Item = io::Result<Result<ClassifiedEvent, LineError>>> + 'a {
    Documents::new(reader).flat_map(move |doc| match doc {
        Err(e) => vec![Err(e)],
        Ok(Document {
            line,
            only: true,
            value: Ok(value),
        }) => classify_document(line, value, fatal_reasons)
            .into_iter()
            .map(Ok)
            .collect(),
        Ok(Document { line, value, .. }) => vec![Ok(value
            .and_then(k8s_json::watch_line_from_value)
            .map(|w| classify_watch_line(line, None, &w, fatal_reasons))
            .map_err(|error| LineError {
                line,
                item: None,
                error,
            }))],
    })
}

/// Splits a recorded watch stream into its events, each with the line it starts on: one
/// JSON document, pretty-printed documents one after the other
/// (`kubectl get pods -w -o json --output-watch-events`), or JSON Lines. A document that is
/// not a watch event is an `Err` for that document only. [`watch_lines_from`] does the same
/// incrementally.
#[must_use]
pub fn watch_lines(input: &str) -> Vec<(usize, Result<WatchLine, ParseError>)> {
    watch_lines_from(input.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// The watch events read from `reader`, as it reads (see [`watch_lines`]); an `Err` item is a
/// read error (the input ends there).
pub fn watch_lines_from<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = io::Result<(usize, Result<WatchLine, ParseError>)>> {
    Documents::new(reader)
        .map(|doc| doc.map(|d| (d.line, d.value.and_then(k8s_json::watch_line_from_value))))
}

/// Classifies JSON Lines: one watch event per line, blank lines skipped.
#[must_use]
pub fn classify_json_lines(
    input: &str,
    fatal_reasons: &[String],
) -> Vec<Result<ClassifiedEvent, LineError>> {
    input
        .lines()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(i, text)| {
            let line = i + 1;
            k8s_json::parse_watch_line(text)
                .map(|w| classify_watch_line(line, None, &w, fatal_reasons))
                .map_err(|error| LineError {
                    line,
                    item: None,
                    error,
                })
        })
        .collect()
}

/// Classifies one JSON document starting on `line`: a watch event, a `List`/`PodList` (one
/// result per item) or a Pod (as `MODIFIED`).
#[must_use]
pub fn classify_document(
    line: usize,
    value: Value,
    fatal_reasons: &[String],
) -> Vec<Result<ClassifiedEvent, LineError>> {
    if is_watch_event(&value) {
        return vec![classify_value_as_watch_line(line, value, fatal_reasons)];
    }
    match into_list_items(value) {
        Ok(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| classify_value_as_pod(line, Some(i + 1), item, fatal_reasons))
            .collect(),
        Err(value) => vec![classify_value_as_pod(line, None, value, fatal_reasons)],
    }
}

fn classify_value_as_watch_line(
    line: usize,
    value: Value,
    fatal_reasons: &[String],
) -> Result<ClassifiedEvent, LineError> {
    k8s_json::watch_line_from_value(value)
        .map(|w| classify_watch_line(line, None, &w, fatal_reasons))
        .map_err(|error| LineError {
            line,
            item: None,
            error,
        })
}

fn classify_value_as_pod(
    line: usize,
    item: Option<usize>,
    value: Value,
    fatal_reasons: &[String],
) -> Result<ClassifiedEvent, LineError> {
    k8s_json::pod_from_value(value)
        .map(|pod| classify_pod(line, item, EventType::Modified, &pod, fatal_reasons))
        .map_err(|error| LineError { line, item, error })
}

/// A watch event has a string `type` or an `object`; a Pod has neither at the top level
/// (so `{"type":"ADDED"}` is reported as a watch event without an object).
fn is_watch_event(value: &Value) -> bool {
    value.get("object").is_some() || value.get("type").is_some_and(Value::is_string)
}

/// The items of a `List`/`PodList` (or of a kind-less object with an `items` array), or the
/// value back when it is not a list.
fn into_list_items(value: Value) -> Result<Vec<Value>, Value> {
    let is_list = match value.get("kind").and_then(Value::as_str) {
        Some(kind) => kind == "List" || kind == "PodList",
        None => value.get("items").is_some_and(Value::is_array),
    };
    if !is_list {
        return Err(value);
    }
    match value {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => Ok(items),
            // A list without items is an empty list (`kubectl` prints `"items": []`).
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => {
                map.insert("items".into(), other);
                Err(Value::Object(map))
            }
        },
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fatal() -> Vec<String> {
        default_fatal_reasons()
    }

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"etl-extract-a1b2c3d4","namespace":"airflow","resourceVersion":"101","labels":{"airflow-worker":"5"},"annotations":{"dag_id":"etl","task_id":"extract","run_id":"manual__2026-11-23","try_number":"1"}},"status":{"phase":"Failed","containerStatuses":[{"name":"base","restartCount":0,"state":{"terminated":{"exitCode":1,"reason":"Error","startedAt":"2026-11-23T10:00:05Z","finishedAt":"2026-11-23T10:01:00Z"}}}]}}"#;

    #[test]
    fn json_lines_keep_going_after_a_bad_line() {
        let input = format!(
            "{{\"type\":\"ADDED\",\"object\":{POD}}}\n\n{{\"type\":\"ADDED\"\n{{\"type\":\"SYNC\",\"object\":{{}}}}\n{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"Pod\",\"metadata\":{{\"resourceVersion\":\"120\"}}}}}}\n"
        );
        let results = classify_input(&input, &fatal());
        assert_eq!(results.len(), 4);
        let first = results[0].as_ref().unwrap();
        assert_eq!(first.line, 1);
        assert_eq!(first.event, "ADDED");
        assert_eq!(first.pod.as_deref(), Some("airflow/etl-extract-a1b2c3d4"));
        assert_eq!(
            first.task.as_deref(),
            Some("etl.extract.manual__2026-11-23#1")
        );
        assert_eq!(
            (first.rule, first.row, first.outcome),
            (Some(Rule::PhaseFailed), Some(7), Some("failed"))
        );
        let details = first.failure_details.as_ref().unwrap();
        assert_eq!(details.container_reason(), Some("Error"));
        assert_eq!(details.main_container_never_started, Some(false));
        let bad = results[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(matches!(bad.error, ParseError::Json(_)));
        assert!(bad.to_string().starts_with("line 3: invalid JSON"), "{bad}");
        let unknown = results[2].as_ref().unwrap_err();
        assert_eq!(
            (unknown.line, &unknown.error),
            (4, &ParseError::UnknownEventType("SYNC".into()))
        );
        let bookmark = results[3].as_ref().unwrap();
        assert_eq!((bookmark.line, bookmark.event), (5, "BOOKMARK"));
        assert_eq!(bookmark.resource_version.as_deref(), Some("120"));
        assert_eq!(
            bookmark.to_json_line(),
            r#"{"line":5,"event":"BOOKMARK","resource_version":"120"}"#
        );
    }

    #[test]
    fn a_pretty_printed_pod_is_one_modified_event() {
        let value: Value = serde_json::from_str(POD).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let results = classify_input(&format!("\n{pretty}\n"), &fatal());
        assert_eq!(results.len(), 1);
        let event = results[0].as_ref().unwrap();
        assert_eq!((event.line, event.item, event.event), (2, None, "MODIFIED"));
        assert_eq!(event.row, Some(7));
    }

    #[test]
    fn list_items_are_numbered_and_fail_alone() {
        let input = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{"resourceVersion":""}},"items":[{POD},{{"kind":"Node","metadata":{{"name":"n"}}}},{POD}]}}"#
        );
        let results = classify_input(&input, &fatal());
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().item, Some(1));
        let bad = results[1].as_ref().unwrap_err();
        assert_eq!(bad.error, ParseError::NotAPod("Node".into()));
        assert_eq!(
            bad.to_string(),
            r#"line 1, item 2: expected kind Pod, found "Node""#
        );
        assert_eq!(results[2].as_ref().unwrap().item, Some(3));
        let pod_list = input.replace(r#""kind":"List""#, r#""kind":"PodList""#);
        assert_eq!(classify_input(&pod_list, &fatal()).len(), 3);
        assert!(classify_input(r#"{"kind":"List","items":[]}"#, &fatal()).is_empty());
    }

    #[test]
    fn a_single_watch_event_document_and_an_error_event() {
        let results = classify_input(
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 100 (200)","reason":"Expired","code":410}}"#,
            &fatal(),
        );
        let error = results[0].as_ref().unwrap();
        assert_eq!(
            error.to_json_line(),
            r#"{"line":1,"event":"ERROR","code":410,"reason":"Expired","message":"too old resource version: 100 (200)"}"#
        );
    }

    #[test]
    fn concatenated_pretty_events_are_numbered_by_their_first_line() {
        let value: Value =
            serde_json::from_str(&format!(r#"{{"type":"MODIFIED","object":{POD}}}"#)).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let height = pretty.lines().count();
        let results = classify_input(&format!("{pretty}\n{pretty}\n"), &fatal());
        let lines: Vec<usize> = results.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [1, height + 1]);
    }

    #[test]
    fn fatal_reasons_come_from_the_caller() {
        let pending = r#"{"kind":"Pod","metadata":{"name":"p","namespace":"airflow"},"status":{"phase":"Pending","containerStatuses":[{"name":"base","state":{"waiting":{"reason":"ErrImagePull","message":"not found"}}}]}}"#;
        assert_eq!(
            classify_input(pending, &fatal())[0].as_ref().unwrap().row,
            Some(5)
        );
        assert_eq!(
            classify_input(pending, &[])[0].as_ref().unwrap().row,
            Some(6)
        );
    }

    #[test]
    fn empty_input_has_no_events() {
        assert!(classify_input("", &fatal()).is_empty());
        assert!(classify_input("\n \n", &fatal()).is_empty());
    }
}
