//! [`Config`]: Airflow's option names and defaults, plus the few switches podwarden adds.
//!
//! Option names are Airflow's (`[kubernetes_executor]` and `[scheduler]` sections, flattened),
//! so a deployment's existing values carry over. Durations are seconds, as Airflow writes them.
//! Every option podwarden adds is marked *(podwarden)* and defaults to behaviour that does not
//! change what Airflow would do in a healthy cluster.

use serde::{Deserialize, Deserializer, Serialize};

mod choices;
mod namespaces;
mod preset;
mod settings;
pub use choices::{AdoptionFallback, AdoptionScope, RequeueDedupe};
pub use namespaces::is_valid_namespace;
pub use preset::{Preset, UnknownPreset};
pub(crate) use settings::{PublishRetries, RetryLimit, Settings};

use crate::label;
use crate::liveness::LivenessRule;

/// Airflow's default `worker_pod_pending_fatal_container_state_reasons`.
pub const DEFAULT_FATAL_PENDING_REASONS: [&str; 5] = [
    "CreateContainerConfigError",
    "ErrImagePull",
    "CreateContainerError",
    "ImageInspectError",
    "InvalidImageName",
];

/// Executor configuration. Build with `Config::default()` and override fields, or deserialize
/// from TOML/JSON (unknown keys are rejected so a typo does not silently keep a default).
///
/// ```
/// let cfg: podwarden_core::Config = toml::from_str(r#"
///     delete_worker_pods_on_failure = true
///     worker_pod_pending_fatal_container_state_reasons = "ErrImagePull, InvalidImageName"
/// "#).unwrap();
/// cfg.validate().unwrap();
/// assert_eq!(cfg.worker_pod_pending_fatal_container_state_reasons, ["ErrImagePull", "InvalidImageName"]);
/// ```
///
/// A file may start from a release's [`Preset`] with `preset = "airflow-10.25"`; its other
/// keys override the preset (`preset` is not kept: serialising writes every option).
///
/// ```
/// use podwarden_core::config::{AdoptionScope, Preset};
/// let cfg: podwarden_core::Config = toml::from_str(r#"
///     preset = "airflow-10.15"
///     pod_launch_failure_retries = 1
/// "#).unwrap();
/// assert_eq!(cfg.adoption_scope, AdoptionScope::AllOthers); // from the preset
/// assert_eq!(cfg.pod_launch_failure_retries, 1); // the file's own value wins
/// assert!(!cfg.retry_done_label_patch); // from the preset
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, remote = "Self")]
pub struct Config {
    /// Namespace worker pods are created in when their template names none; the one namespace
    /// watched and listed unless `multi_namespace_mode`.
    pub namespace: String,
    /// Watch and list pods in several namespaces (Airflow's `multi_namespace_mode`): the
    /// namespaces of `multi_namespace_mode_namespace_list`, one watch each, or every namespace
    /// with one watch when the list is empty ([`Config::watch_scopes`]). A pod is created in
    /// the namespace its template names ([`crate::PodTemplate::namespace`]), else in
    /// `namespace`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multi_namespace_mode: bool,
    /// The namespaces watched under `multi_namespace_mode`; empty (Airflow's default) watches
    /// every namespace. Accepts a list or Airflow's comma-separated string (items are trimmed,
    /// where Airflow keeps the spaces). Must include `namespace`, and is refused without
    /// `multi_namespace_mode` (Airflow ignores it there).
    #[serde(deserialize_with = "comma_list", skip_serializing_if = "Vec::is_empty")]
    pub multi_namespace_mode_namespace_list: Vec<String>,
    /// Delete finished pods; when false, label them `airflow_executor_done=True` instead.
    pub delete_worker_pods: bool,
    /// Also delete failed pods (only with `delete_worker_pods`).
    pub delete_worker_pods_on_failure: bool,
    /// *(podwarden; legacy switch when off)* Delete a pod whose try failed while the pod itself
    /// is still live (Pending with a fatal waiting reason such as `ErrImagePull`, or
    /// `ProviderFailed`), whatever `delete_worker_pods_on_failure` says: its kubelet keeps
    /// pulling and may start the task later, beside the try's next pod. Airflow (`false`) keeps
    /// it like any failed pod.
    pub delete_live_failed_pods: bool,
    /// *(podwarden; legacy switch when off)* Label a failed pod that is kept (for debugging)
    /// `airflow_executor_done=True`, so no adopter takes its failure again after this scheduler
    /// dies. Airflow leaves it unlabelled (`false`), which lets one pod failure spend two
    /// requeues across a failover.
    pub label_kept_failed_pods_done: bool,
    /// Waiting reasons that make a Pending pod fail at once. Accepts a list or Airflow's
    /// comma-separated string; items are trimmed and empty items dropped.
    #[serde(deserialize_with = "comma_list")]
    pub worker_pod_pending_fatal_container_state_reasons: Vec<String>,
    /// Pods created per loop (`scheduler_idle_sleep_time`).
    pub worker_pods_creation_batch_size: u32,
    /// Send a loop's creates together (Airflow's `async_pod_creation`), up to
    /// `pod_creation_max_concurrency` unanswered at once. `false` (Airflow's default) creates
    /// one pod at a time, each after the previous create's answer, as
    /// `_create_pods_sequentially` does: a 429 or `Retry-After` answer then stops the rest of
    /// the loop's creates. With `true` the creates already sent are not recalled (as in
    /// Airflow's concurrent path); the back-off holds the ones not yet sent.
    pub async_pod_creation: bool,
    /// Creates unanswered at once under `async_pod_creation`; `0` means
    /// `worker_pods_creation_batch_size` (Airflow's rule).
    pub pod_creation_max_concurrency: u32,
    /// Retries of a pod creation after a transient API error; `-1` is unlimited. Read only when
    /// `task_publish_retry_timeout` is `0` (Airflow's rule).
    pub task_publish_max_retries: i64,
    /// *(podwarden)* Seconds during which a pod creation that failed with a transient error
    /// (429, 5xx, a timeout, a lost connection) is retried, from its first failure: the API
    /// saying "later" must not fail a task. Each retry waits 1 s, doubling up to 60 s (a
    /// `Retry-After` holds all creation at least that long). `0` counts retries instead, with
    /// `task_publish_max_retries` and no wait (Airflow's rule).
    pub task_publish_retry_timeout: f64,
    /// *(podwarden; Airflow's rule when off)* A create whose transient errors outlast its retries
    /// is a launch failure (the task never started): requeued while QUEUED within
    /// `pod_launch_failure_retries`. Airflow (`false`) fails the try, which costs a user retry.
    pub requeue_failed_publishes: bool,
    /// Transparent requeues of a try whose pod failed before the task started; `-1` unlimited,
    /// `0` off. (Read by the requeue policy.)
    pub pod_launch_failure_retries: i64,
    /// *(podwarden; Airflow's rule when off)* A try whose pod was deleted while Pending (a
    /// drain, a preemption before start) is a pre-start failure decided at once: requeued while
    /// QUEUED within `pod_launch_failure_retries`, else failed. Airflow (`false`) only logs
    /// "Failed to start pod": the try stays tracked with no pod until the scheduler's
    /// `task_queued_timeout` revokes it.
    pub requeue_pods_deleted_while_pending: bool,
    /// *(podwarden)* Seconds during which the DB question of a failed pod ("is the try still
    /// QUEUED?") is asked again, with back-off (1 s, doubling up to 60 s), while the metadata DB
    /// cannot answer. Past it the try fails with a reason that names the outage (a pod deleted
    /// while Pending waits for the scheduler's revoke instead). `0` fails at once when the DB
    /// cannot answer.
    pub pod_launch_failure_db_retry_timeout: f64,
    /// Container reasons that never requeue (the task's own failure). Accepts a list or a
    /// comma-separated string.
    #[serde(deserialize_with = "comma_list")]
    pub pod_launch_failure_excluded_container_reasons: Vec<String>,
    /// Seconds between completed-pod adoption sweeps (`[scheduler]`).
    pub orphaned_tasks_check_interval: f64,
    /// Seconds without a heartbeat after which a scheduler is dead (`[scheduler]`). The
    /// executor's own health uses it as the longest acceptable gap between two drives.
    pub scheduler_health_check_threshold: f64,
    /// Seconds per scheduler loop (`[scheduler]`): the window in which at most
    /// `worker_pods_creation_batch_size` pods are created.
    pub scheduler_idle_sleep_time: f64,
    /// Image of the worker container; `None` keeps the template's.
    pub worker_container_repository: Option<String>,
    /// Tag of the worker image.
    pub worker_container_tag: Option<String>,
    /// Value of the `airflow_version` label (`+` is replaced by `-`, as Airflow does).
    pub airflow_version: String,
    /// *(podwarden; Airflow's rule when off)* A create answered 409 `AlreadyExists` counts as
    /// created: pod names are deterministic per try and launch, so the pod is this try's own
    /// (an earlier create that timed out, or a publish retry whose first create went through).
    /// Airflow (`false`) fails the try with the 409.
    pub already_exists_means_created: bool,
    /// *(podwarden)* Sustained API requests per second this executor may send.
    pub api_qps: u32,
    /// *(podwarden)* API requests that may be sent at once after an idle period.
    pub api_burst: u32,
    /// *(podwarden)* Retries of a failed pod clean-up (delete or done-label patch), with
    /// exponential back-off from 1 s to 60 s; `-1` (the default) retries until it succeeds (a
    /// 404 counts as done). Airflow retries a failed delete at once, forever (a hot loop); we
    /// wait between retries, but never give up on a pod we own: a pod left behind is a leak.
    pub pod_cleanup_max_retries: i64,
    /// *(podwarden; Airflow's rule when off)* Retry a failed done-label patch
    /// (`airflow_executor_done=True` on a pod kept after its try) like a failed delete, within
    /// `pod_cleanup_max_retries`. Airflow (`false`) logs the error and moves on: the pod stays
    /// unlabelled, and completed-pod adoption may take it again after this scheduler dies.
    pub retry_done_label_patch: bool,
    /// Whose completed pods may be adopted: `declared_dead` (podwarden: not alive and declared
    /// dead), `dead_only` (Airflow ≥ 10.17.1: not alive by the heartbeat) or the legacy
    /// `all_others` (the thrash of Airflow #66396, for reproducing it).
    pub adoption_scope: AdoptionScope,
    /// *(podwarden)* What completed-pod adoption does while the heartbeats cannot be read:
    /// `wait` (skip it until they can: nothing is urgent about a completed pod, and a guess
    /// takes live peers' pods) or Airflow's `exclude_self` (take every other scheduler's
    /// completed pods).
    pub adoption_without_heartbeats: AdoptionFallback,
    /// *(podwarden; Airflow's rule when off)* A completed pod whose owner no heartbeat row names
    /// is taken only once the owner has stayed unnamed for `scheduler_health_check_threshold`
    /// across a newer snapshot: it may be a scheduler that has just started, whose row peers
    /// have not read yet. Airflow (`false`) takes it at once.
    pub wait_for_unknown_owners: bool,
    /// *(podwarden)* With every completed-pod adoption, also take the other pods left by
    /// schedulers declared dead (Failed, or still Pending or Running) whose try the DB says is
    /// over (`QueryUnfinishedTasks`), and dispose of them like finished pods: deleted (or, for a
    /// failed pod kept for debugging, labelled done). A scheduler that dies while its clean-up
    /// is failing leaves such pods, and Airflow leaves them forever. Off: Airflow's
    /// Succeeded-only adoption.
    pub adopt_leftover_pods: bool,
    /// *(podwarden)* After the host stopped driving the executor for longer than half of
    /// `scheduler_health_check_threshold` (a stall, a GC pause; or a clock step), hold every
    /// `Report` until a readable heartbeat snapshot shows this scheduler's own job still
    /// `running`; if it shows the job declared dead, drop them: peers have handed this
    /// scheduler's tries over, and their adopter reports them (a host should then exit, as
    /// Airflow's scheduler does when it finds itself "killed externally"). Off: a scheduler
    /// resuming from a stall reports what it buffered, and an adopted try's end is reported
    /// twice (Airflow).
    pub fence_reports_after_stall: bool,
    /// *(podwarden)* How a peer's heartbeat is judged fresh: `observed_change` (its value changed
    /// within `scheduler_health_check_threshold` on this executor's clock; robust to clock skew)
    /// or Airflow's `written_timestamp`.
    pub scheduler_liveness_rule: LivenessRule,
    /// *(podwarden)* How repeated failures of one try's pods are deduplicated: `every_pod` (one
    /// requeue per failed pod uid, ever) or Airflow's `last_pod` (only the last requeued pod is
    /// remembered; replays of older pods requeue again when the budget allows).
    pub pod_launch_failure_dedupe: RequeueDedupe,
    /// Sweep KubernetesPodOperator pods for zombies (Airflow PR #70140). Off by default.
    pub kpo_zombie_pod_cleanup_enabled: bool,
    /// Seconds between zombie sweeps.
    pub kpo_zombie_pod_cleanup_interval: f64,
    /// Most zombie pods force-deleted per sweep, oldest first.
    pub kpo_zombie_pod_cleanup_max_deletes_per_loop: u32,
    /// Seconds a pod may stay Pending before it is deleted and its try failed (image pull
    /// back-off, unschedulable, missing volume). `0` disables it, as in Airflow today (the
    /// option was removed in provider 9.0.0; its old default was 300).
    pub worker_pods_pending_timeout: f64,
    /// Seconds between pending-timeout checks.
    pub worker_pods_pending_timeout_check_interval: f64,
    /// Most pods timed out per check.
    pub worker_pods_pending_timeout_batch_size: u32,
    /// *(podwarden; Airflow's rule when off)* Label a pod whose dag, task or run id has no
    /// letter or digit (`___`, `日本語`) with the id's hash alone, a valid label value. Airflow
    /// (`false`) writes `-<hash>`, which the API server refuses (422): the pod is never created
    /// and the try fails at publish. Written out only when off.
    #[serde(skip_serializing_if = "is_true")]
    pub always_valid_label_values: bool,
    /// *(podwarden; Airflow's rule when off)* Report a try's end as soon as it is known, while
    /// its pod's clean-up (delete or done label) is still on its way. Airflow (`false`) writes
    /// the event after the clean-up call returned: a delete that keeps failing holds the report
    /// (Airflow re-puts the result until the delete succeeds; here the report waits for the
    /// clean-up's retries, and goes once the clean-up succeeds, finds the pod gone or gives
    /// up). Written out only when off.
    #[serde(skip_serializing_if = "is_true")]
    pub report_before_pod_cleanup: bool,
    /// *(podwarden; Airflow's rule when off)* After a watch ends with 410 Gone (or the host
    /// loses it), list the watch's scope, apply what the list shows (a tracked pod missing from
    /// it was deleted) and resume from the list's version. Airflow (`false`): its watcher
    /// process dies and the watch restarts from resource version `"0"` without a list, which
    /// replays every matching pod as ADDED but never shows a pod deleted while the watch was
    /// down: its try is left to the scheduler (`task_queued_timeout` while QUEUED). The
    /// executor's first watch is preceded by a list either way (at start a list and a watch
    /// from `"0"` show the same pods). Written out only when off.
    #[serde(skip_serializing_if = "is_true")]
    pub relist_after_watch_expiry: bool,
    /// *(podwarden)* Seconds without any watch progress (event, bookmark, relist) while pods are
    /// tracked after which [`crate::Executor::health`] reports the watch stalled; `0` disables.
    /// A host should request bookmarks so a quiet but healthy watch still makes progress.
    pub health_watch_stall_threshold: f64,
}

// `#[serde(remote = "Self")]` makes the derives inherent functions (`Self::serialize`,
// `Self::deserialize` below resolve to them, not to these trait methods), so that reading can
// apply a `preset` first.
impl Serialize for Config {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Self::serialize(self, serializer)
    }
}

/// The key that names a [`Preset`] among a file's options.
const PRESET_KEY: &str = "preset";

impl<'de> Deserialize<'de> for Config {
    /// The options as written, over the `preset` they name (else over the defaults).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::{Map, Value};
        let mut given = Map::<String, Value>::deserialize(deserializer)?;
        let Some(preset) = given.remove(PRESET_KEY) else {
            return Self::deserialize(Value::Object(given)).map_err(D::Error::custom);
        };
        let preset: Preset = preset
            .as_str()
            .ok_or_else(|| D::Error::custom("preset must be a string, such as \"airflow-10.25\""))?
            .parse()
            .map_err(D::Error::custom)?;
        let Value::Object(mut options) =
            Self::serialize(&preset.config(), serde_json::value::Serializer)
                .map_err(D::Error::custom)?
        else {
            return Err(D::Error::custom("a preset serialises to a table"));
        };
        options.extend(given);
        Self::deserialize(Value::Object(options)).map_err(D::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            multi_namespace_mode: false,
            multi_namespace_mode_namespace_list: Vec::new(),
            delete_worker_pods: true,
            delete_worker_pods_on_failure: false,
            delete_live_failed_pods: true,
            label_kept_failed_pods_done: true,
            worker_pod_pending_fatal_container_state_reasons: DEFAULT_FATAL_PENDING_REASONS
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            worker_pods_creation_batch_size: 1,
            async_pod_creation: false,
            pod_creation_max_concurrency: 0,
            task_publish_max_retries: 0,
            task_publish_retry_timeout: 600.0,
            requeue_failed_publishes: true,
            pod_launch_failure_retries: 1,
            requeue_pods_deleted_while_pending: true,
            pod_launch_failure_db_retry_timeout: 600.0,
            pod_launch_failure_excluded_container_reasons: vec!["Error".into()],
            orphaned_tasks_check_interval: 300.0,
            scheduler_health_check_threshold: 30.0,
            scheduler_idle_sleep_time: 1.0,
            worker_container_repository: None,
            worker_container_tag: None,
            airflow_version: "3.3.2".into(),
            already_exists_means_created: true,
            api_qps: 20,
            api_burst: 40,
            pod_cleanup_max_retries: -1,
            retry_done_label_patch: true,
            adoption_scope: AdoptionScope::DeclaredDead,
            adoption_without_heartbeats: AdoptionFallback::Wait,
            wait_for_unknown_owners: true,
            adopt_leftover_pods: true,
            fence_reports_after_stall: true,
            scheduler_liveness_rule: LivenessRule::ObservedChange,
            pod_launch_failure_dedupe: RequeueDedupe::EveryPod,
            kpo_zombie_pod_cleanup_enabled: false,
            kpo_zombie_pod_cleanup_interval: 300.0,
            kpo_zombie_pod_cleanup_max_deletes_per_loop: 20,
            worker_pods_pending_timeout: 0.0,
            worker_pods_pending_timeout_check_interval: 120.0,
            worker_pods_pending_timeout_batch_size: 100,
            health_watch_stall_threshold: 600.0,
            relist_after_watch_expiry: true,
            report_before_pod_cleanup: true,
            always_valid_label_values: true,
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    MustBePositive(&'static str),
    /// A retry budget below -1.
    #[error("{option} must be -1 (unlimited) or >= 0, got {value}")]
    BadRetryBudget {
        /// Which option.
        option: &'static str,
        /// Its value.
        value: i64,
    },
    /// A duration that is negative, NaN or infinite.
    #[error("{option} must be a finite number of seconds >= 0, got {value}")]
    BadDuration {
        /// Which option.
        option: &'static str,
        /// Its value.
        value: f64,
    },
    /// The namespace is not a DNS-1123 label.
    #[error("namespace {0:?} is not a valid Kubernetes namespace")]
    BadNamespace(String),
    /// A namespace of `multi_namespace_mode_namespace_list` is not a DNS-1123 label.
    #[error(
        "multi_namespace_mode_namespace_list: {0:?} is not a valid Kubernetes namespace \
         (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
    )]
    BadListedNamespace(String),
    /// A namespace listed twice in `multi_namespace_mode_namespace_list`.
    #[error("multi_namespace_mode_namespace_list names {0:?} twice")]
    DuplicateListedNamespace(String),
    /// `multi_namespace_mode_namespace_list` leaves out `namespace`, where pods whose template
    /// names no namespace are created: no watch would see them.
    #[error(
        "namespace {0:?} (where pods whose template names no namespace are created) is not in \
         multi_namespace_mode_namespace_list: add it to the list, or set namespace to a listed one"
    )]
    DefaultNamespaceNotWatched(String),
    /// `multi_namespace_mode_namespace_list` is set while `multi_namespace_mode` is off.
    #[error(
        "multi_namespace_mode_namespace_list is set but multi_namespace_mode is false: set \
         multi_namespace_mode = true, or remove the list"
    )]
    NamespaceListWithoutMultiNamespaceMode,
    /// The scheduler id cannot be written as a label value as it is.
    #[error("scheduler id {0:?} is not a valid label value (letters, digits, '-', '_', '.', at most 63)")]
    BadSchedulerId(String),
}

impl Config {
    /// Checks every option.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, in field order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_namespaces()?;
        if self.worker_pods_creation_batch_size == 0 {
            return Err(ConfigError::MustBePositive(
                "worker_pods_creation_batch_size",
            ));
        }
        for (option, value) in [
            ("task_publish_max_retries", self.task_publish_max_retries),
            (
                "pod_launch_failure_retries",
                self.pod_launch_failure_retries,
            ),
            ("pod_cleanup_max_retries", self.pod_cleanup_max_retries),
        ] {
            if value < -1 {
                return Err(ConfigError::BadRetryBudget { option, value });
            }
        }
        for (option, value) in [
            (
                "orphaned_tasks_check_interval",
                self.orphaned_tasks_check_interval,
            ),
            (
                "scheduler_health_check_threshold",
                self.scheduler_health_check_threshold,
            ),
            ("scheduler_idle_sleep_time", self.scheduler_idle_sleep_time),
            (
                "kpo_zombie_pod_cleanup_interval",
                self.kpo_zombie_pod_cleanup_interval,
            ),
            (
                "worker_pods_pending_timeout",
                self.worker_pods_pending_timeout,
            ),
            (
                "worker_pods_pending_timeout_check_interval",
                self.worker_pods_pending_timeout_check_interval,
            ),
            (
                "health_watch_stall_threshold",
                self.health_watch_stall_threshold,
            ),
            (
                "task_publish_retry_timeout",
                self.task_publish_retry_timeout,
            ),
            (
                "pod_launch_failure_db_retry_timeout",
                self.pod_launch_failure_db_retry_timeout,
            ),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(ConfigError::BadDuration { option, value });
            }
        }
        if self.api_qps == 0 {
            return Err(ConfigError::MustBePositive("api_qps"));
        }
        if self.api_burst == 0 {
            return Err(ConfigError::MustBePositive("api_burst"));
        }
        for (option, positive) in [
            (
                "orphaned_tasks_check_interval",
                self.orphaned_tasks_check_interval > 0.0,
            ),
            (
                "kpo_zombie_pod_cleanup_interval",
                self.kpo_zombie_pod_cleanup_interval > 0.0,
            ),
            (
                "worker_pods_pending_timeout_check_interval",
                self.worker_pods_pending_timeout_check_interval > 0.0,
            ),
            (
                "kpo_zombie_pod_cleanup_max_deletes_per_loop",
                self.kpo_zombie_pod_cleanup_max_deletes_per_loop > 0,
            ),
            (
                "worker_pods_pending_timeout_batch_size",
                self.worker_pods_pending_timeout_batch_size > 0,
            ),
        ] {
            if !positive {
                return Err(ConfigError::MustBePositive(option));
            }
        }
        Ok(())
    }

    /// Checks a scheduler id: it is written verbatim as the `airflow-worker` label.
    ///
    /// # Errors
    /// [`ConfigError::BadSchedulerId`].
    pub fn validate_scheduler_id(id: &str) -> Result<(), ConfigError> {
        if id.is_empty() || !label::is_valid_value(id) {
            return Err(ConfigError::BadSchedulerId(id.to_string()));
        }
        Ok(())
    }

    /// The worker image, `repository:tag`, if both are set (Airflow's rule).
    #[must_use]
    pub fn worker_image(&self) -> Option<String> {
        match (
            &self.worker_container_repository,
            &self.worker_container_tag,
        ) {
            (Some(r), Some(t)) if !r.is_empty() && !t.is_empty() => Some(format!("{r}:{t}")),
            _ => None,
        }
    }
}

/// For `skip_serializing_if` on an option whose default is `true`: options added after traces
/// were pinned are written only when set away from their default, so a trace's header (which
/// holds the configuration) stays the same.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(value: &bool) -> bool {
    *value
}

fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Text(String),
    }
    let items: Vec<String> = match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::Text(s) => s.split(',').map(str::to_string).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_airflows_and_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.delete_worker_pods && !c.delete_worker_pods_on_failure);
        assert_eq!(c.worker_pods_creation_batch_size, 1);
        assert_eq!(c.task_publish_max_retries, 0);
        assert_eq!(c.pod_launch_failure_retries, 1);
        assert_eq!(c.pod_launch_failure_excluded_container_reasons, ["Error"]);
        assert_eq!(c.orphaned_tasks_check_interval, 300.0);
        assert_eq!(c.scheduler_health_check_threshold, 30.0);
        assert_eq!(c.worker_image(), None);
    }

    /// Airflow's `test_kube_config_parse_worker_pod_pending_fatal_container_state_reasons`.
    #[test]
    fn fatal_reasons_parse_like_airflow() {
        let c: Config =
            toml::from_str(r#"worker_pod_pending_fatal_container_state_reasons = "e1, e2,e3""#)
                .unwrap();
        assert_eq!(
            c.worker_pod_pending_fatal_container_state_reasons,
            ["e1", "e2", "e3"]
        );
        let c: Config =
            toml::from_str(r#"worker_pod_pending_fatal_container_state_reasons = "e1 ""#).unwrap();
        assert_eq!(c.worker_pod_pending_fatal_container_state_reasons, ["e1"]);
        let c: Config =
            toml::from_str(r#"pod_launch_failure_excluded_container_reasons = """#).unwrap();
        assert!(c.pod_launch_failure_excluded_container_reasons.is_empty());
    }

    #[test]
    fn serde_round_trips_and_rejects_typos() {
        let c = Config {
            delete_worker_pods: false,
            task_publish_max_retries: -1,
            ..Config::default()
        };
        let back: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let back: Config = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(toml::from_str::<Config>("delete_worker_pod = false").is_err());
    }

    #[test]
    fn validation_names_the_bad_option() {
        let bad = |c: Config| c.validate().unwrap_err();
        assert_eq!(
            bad(Config {
                worker_pods_creation_batch_size: 0,
                ..Config::default()
            }),
            ConfigError::MustBePositive("worker_pods_creation_batch_size")
        );
        assert_eq!(
            bad(Config {
                task_publish_max_retries: -2,
                ..Config::default()
            }),
            ConfigError::BadRetryBudget {
                option: "task_publish_max_retries",
                value: -2
            }
        );
        assert!(matches!(
            bad(Config {
                scheduler_idle_sleep_time: f64::NAN,
                ..Config::default()
            }),
            ConfigError::BadDuration {
                option: "scheduler_idle_sleep_time",
                ..
            }
        ));
        assert_eq!(
            bad(Config {
                namespace: "Bad_NS".into(),
                ..Config::default()
            }),
            ConfigError::BadNamespace("Bad_NS".into())
        );
        assert_eq!(
            bad(Config {
                api_qps: 0,
                ..Config::default()
            }),
            ConfigError::MustBePositive("api_qps")
        );
        assert!(Config::validate_scheduler_id("5").is_ok());
        assert!(Config::validate_scheduler_id("").is_err());
        assert!(Config::validate_scheduler_id("-x").is_err());
    }

    #[test]
    fn worker_image_needs_both_parts() {
        let c = Config {
            worker_container_repository: Some("apache/airflow".into()),
            worker_container_tag: Some("3.3.2".into()),
            ..Config::default()
        };
        assert_eq!(c.worker_image().as_deref(), Some("apache/airflow:3.3.2"));
    }
}
