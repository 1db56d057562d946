//! Launch path: which queued tries get a pod this loop, what the pod looks like, and what an API
//! error on creation means (`docs/decisions.md`, "Launch").
//!
//! Pod names are derived from the scheduler id, the key and a launch counter instead of
//! Airflow's 8 random characters. That keeps the core free of randomness and makes creation
//! idempotent: a create retried after a timeout gets 409 AlreadyExists for its own pod, which
//! counts as created, where Airflow's retry would start a second pod for the same try.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use md5::{Digest, Md5};

use crate::command::{ApiFailure, PodManifest};
use crate::config::{Config, PublishRetries, Settings};
use crate::input::PodTemplate;
use crate::key::TaskKey;
use crate::label;
use crate::pod::PodRef;
use crate::time::{retry_backoff_ms, Timestamp};

const NAME_MAX: usize = 63;
const SUFFIX_LEN: usize = 8;

/// Kubernetes-safe slug of `dag_id-task_id`: lowercase ASCII letters and digits, other runs
/// become one `-`. (Airflow transliterates non-ASCII first; we drop it, which only changes the
/// readable part of the name, never its uniqueness, which the suffix carries.)
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The pod name for launch number `launch` of `key` by `scheduler_id`: a readable slug, then 8
/// characters of `[a-z0-9]` hashed from all three, 63 characters at most.
///
/// `launch` counts every pod an executor launches, so a try submitted again (Airflow re-queues
/// the same try after a stuck-in-queued reschedule) never reuses the name of its earlier pod,
/// which may still be terminating. Scheduler ids must therefore be unique per executor
/// incarnation, as Airflow's job ids are.
#[must_use]
pub fn pod_name(scheduler_id: &str, key: &TaskKey, launch: u64) -> String {
    let mut base = slug(&format!("{}-{}", key.dag_id, key.task_id));
    base.truncate(NAME_MAX - SUFFIX_LEN - 1);
    let base = base.trim_end_matches('-');
    let mut h = Md5::new();
    for part in [scheduler_id, &key.dag_id, &key.task_id, &key.run_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(key.map_index.to_le_bytes());
    h.update(key.try_number.to_le_bytes());
    h.update(launch.to_le_bytes());
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = h
        .finalize()
        .iter()
        .take(SUFFIX_LEN)
        .map(|b| ALPHABET[usize::from(*b) % 36] as char)
        .collect();
    if base.is_empty() {
        format!("task-{suffix}")
    } else {
        format!("{base}-{suffix}")
    }
}

/// Builds the pod for one launch: template labels and annotations first, then Airflow's
/// identity labels and annotations, and the requeues used so far
/// ([`crate::requeue::LAUNCH_ATTEMPT_ANNOTATION`]) so that an adopter continues the budget.
/// The two never overlap: every key written here is in [`label::RESERVED_LABELS`] or
/// [`label::RESERVED_ANNOTATIONS`], which a template may not use ([`PodTemplate::validate`]).
pub(crate) fn manifest(
    config: &Config,
    scheduler_id: &str,
    key: &TaskKey,
    template: &PodTemplate,
    launch: u64,
    requeues: u32,
) -> PodManifest {
    let mut labels = template.labels.clone();
    labels.extend(key.to_labels());
    labels.insert(label::KUBERNETES_EXECUTOR.into(), label::TRUE.into());
    labels.insert(
        label::AIRFLOW_VERSION.into(),
        label::safe_value(&config.airflow_version.replace('+', "-")),
    );
    labels.insert(label::AIRFLOW_WORKER.into(), scheduler_id.to_string());
    let mut annotations = template.annotations.clone();
    annotations.extend(key.to_annotations());
    annotations.insert(
        crate::requeue::LAUNCH_ATTEMPT_ANNOTATION.to_string(),
        requeues.to_string(),
    );
    let mut env = BTreeMap::new();
    env.insert(
        "AIRFLOW_IS_K8S_EXECUTOR_POD".to_string(),
        "True".to_string(),
    );
    PodManifest {
        pod: PodRef::new(
            config.namespace.clone(),
            pod_name(scheduler_id, key, launch),
        ),
        labels,
        annotations,
        image: template.image.clone().or_else(|| config.worker_image()),
        args: template.args.clone(),
        env,
    }
}

/// What to do after a failed create (Airflow's `_handle_pod_publish_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishDecision {
    /// The pod exists already (our own earlier attempt): treat as created.
    AlreadyCreated,
    /// Put the try back in the queue, to be created again no sooner than `retry_in_ms` from now;
    /// hold all creation for `backoff_ms` if set (429, or a `Retry-After`).
    Retry {
        backoff_ms: Option<u64>,
        retry_in_ms: u64,
    },
    /// Fail the try.
    Fail,
}

/// Whether Airflow treats this failure as transient.
pub(crate) fn is_transient(failure: &ApiFailure) -> bool {
    match failure {
        ApiFailure::Status { code, message, .. } => match code {
            403 => message.contains("exceeded quota"),
            409 => message.contains("object has been modified"),
            410 => message.contains("too old resource version"),
            429 | 500 | 502 | 503 | 504 => true,
            _ => false,
        },
        ApiFailure::Timeout | ApiFailure::Connection { .. } => true,
    }
}

/// After `retries_so_far` retries, the first failure `since_first_failure_ms` ago: Airflow's
/// matrix, with the retry budget counted (`task_publish_max_retries`, Airflow) or timed
/// (`task_publish_retry_timeout`, podwarden's default). A timed retry waits 1 s, doubling up to
/// 60 s, so a try does not hammer an API server that said "later"; a counted one is retried at
/// once, as Airflow does.
pub(crate) fn on_publish_error(
    retries: PublishRetries,
    failure: &ApiFailure,
    retries_so_far: u32,
    since_first_failure_ms: u64,
) -> PublishDecision {
    if let ApiFailure::Status {
        code: 409, reason, ..
    } = failure
    {
        if reason == "AlreadyExists" {
            return PublishDecision::AlreadyCreated;
        }
    }
    if !(is_transient(failure) && retries.allows(retries_so_far, since_first_failure_ms)) {
        return PublishDecision::Fail;
    }
    let backoff_ms = match failure {
        ApiFailure::Status {
            code,
            retry_after_secs,
            ..
        } if *code == 429 || retry_after_secs.is_some() => {
            Some(retry_after_secs.unwrap_or(0).saturating_mul(1000))
        }
        _ => None,
    };
    let retry_in_ms = if matches!(retries, PublishRetries::Window { .. }) {
        retry_backoff_ms(retries_so_far.saturating_add(1))
    } else {
        0
    };
    PublishDecision::Retry {
        backoff_ms,
        retry_in_ms,
    }
}

/// Tries waiting for a pod, in submission order, and the per-loop batch window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LaunchQueue {
    queue: VecDeque<TaskKey>,
    /// Tries waiting for a retry back-off, by due time (then arrival).
    delayed: BTreeMap<(Timestamp, u64), TaskKey>,
    /// Numbers `delayed` entries in arrival order.
    delayed_seq: u64,
    /// Tries that may not get a pod yet: an earlier pod of theirs could still start (its
    /// deletion is not confirmed).
    parked: BTreeSet<TaskKey>,
    /// No creation before this time (Airflow's `create_pods_after`).
    backoff_until: Option<Timestamp>,
    window_start: Timestamp,
    created_in_window: u32,
}

impl LaunchQueue {
    pub(crate) fn push(&mut self, key: TaskKey) {
        self.queue.push_back(key);
    }

    /// Queues `key` again once `at` has come.
    pub(crate) fn push_at(&mut self, key: TaskKey, at: Timestamp) {
        self.delayed_seq += 1;
        self.delayed.insert((at, self.delayed_seq), key);
    }

    /// Holds `key` until [`Self::unpark`].
    pub(crate) fn park(&mut self, key: TaskKey) {
        self.parked.insert(key);
    }

    /// Queues `key` again if it was parked.
    pub(crate) fn unpark(&mut self, key: &TaskKey) {
        if let Some(key) = self.parked.take(key) {
            self.queue.push_back(key);
        }
    }

    /// Tries waiting for a pod, whatever they wait for.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + self.delayed.len() + self.parked.len()
    }

    pub(crate) fn back_off_until(&mut self, until: Timestamp) {
        self.backoff_until = Some(self.backoff_until.map_or(until, |cur| cur.max(until)));
    }

    /// The next try to create now, if the back-off and the batch window allow one.
    pub(crate) fn next_ready(&mut self, now: Timestamp, settings: &Settings) -> Option<TaskKey> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.queue.push_back(entry.remove());
        }
        if self.queue.is_empty() {
            return None;
        }
        if let Some(until) = self.backoff_until {
            if now < until {
                return None;
            }
            self.backoff_until = None;
        }
        if now.since(self.window_start) >= settings.loop_ms || now < self.window_start {
            self.window_start = now;
            self.created_in_window = 0;
        }
        if self.created_in_window >= settings.creation_batch_size {
            return None;
        }
        self.created_in_window += 1;
        self.queue.pop_front()
    }

    /// When to look at the queue again, if anything waits (parked tries wait for an answer,
    /// not for a time).
    pub(crate) fn wake_at(&self, settings: &Settings) -> Option<Timestamp> {
        let delayed = self.delayed.keys().next().map(|(at, _)| *at);
        if self.queue.is_empty() {
            return delayed.map(|at| self.backoff_until.map_or(at, |until| until.max(at)));
        }
        let window_open_at = if self.created_in_window >= settings.creation_batch_size {
            self.window_start.plus_ms(settings.loop_ms.max(1))
        } else {
            self.window_start
        };
        Some(
            self.backoff_until
                .map_or(window_open_at, |until| until.max(window_open_at)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str, message: &str, retry_after_secs: Option<u64>) -> ApiFailure {
        ApiFailure::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            retry_after_secs,
        }
    }

    #[test]
    fn pod_names_are_valid_unique_and_stable() {
        let k = TaskKey::new("My DAG", "extract_täble", "run", 1);
        let a = pod_name("5", &k, 0);
        assert_eq!(a, pod_name("5", &k, 0));
        assert_ne!(a, pod_name("5", &k, 1));
        assert_ne!(a, pod_name("6", &k, 0));
        assert!(a.starts_with("my-dag-extract-t-ble-"), "{a}");
        let long = TaskKey::new("d".repeat(1400), "t".repeat(1400), "r", 1);
        let weird = TaskKey::new("影師", "___", "r", 1);
        for name in [a, pod_name("5", &long, 0), pod_name("5", &weird, 0)] {
            assert!(name.len() <= NAME_MAX, "{name}");
            let b = name.as_bytes();
            assert!(
                b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric(),
                "{name}"
            );
            assert!(
                b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-'),
                "{name}"
            );
        }
    }

    /// Every label and annotation the manifest writes is reserved, so a valid template can never
    /// be overwritten by it; and a valid template's own keys all reach the pod.
    #[test]
    fn manifest_writes_only_reserved_keys_over_the_template() {
        let mapped = TaskKey::new("dag", "task", "run", 2).with_map_index(3);
        let template = PodTemplate {
            labels: BTreeMap::from([("team".into(), "data".into())]),
            annotations: BTreeMap::from([("example.com/owner".into(), "etl".into())]),
            ..PodTemplate::default()
        };
        assert_eq!(template.validate(), Ok(()));
        let m = manifest(&Config::default(), "5", &mapped, &template, 0, 1);
        for k in m
            .labels
            .keys()
            .filter(|k| !template.labels.contains_key(*k))
        {
            assert!(label::RESERVED_LABELS.contains(&k.as_str()), "label {k}");
        }
        for k in m
            .annotations
            .keys()
            .filter(|k| !template.annotations.contains_key(*k))
        {
            assert!(
                label::RESERVED_ANNOTATIONS.contains(&k.as_str()),
                "annotation {k}"
            );
        }
        assert_eq!(m.labels["team"], "data");
        assert_eq!(m.annotations["example.com/owner"], "etl");
        assert!(m.labels.contains_key(label::MAP_INDEX));
        assert!(m.annotations.contains_key(label::MAP_INDEX));
    }

    #[test]
    fn publish_errors_follow_airflow_matrix() {
        // Airflow's rule: retries counted, no wait between them.
        let mr0 = Config {
            task_publish_retry_timeout: 0.0,
            ..Config::default()
        };
        let mr1 = Config {
            task_publish_max_retries: 1,
            ..mr0.clone()
        };
        let fail = PublishDecision::Fail;
        let retry = PublishDecision::Retry {
            backoff_ms: None,
            retry_in_ms: 0,
        };
        for f in [
            status(400, "BadRequest", "any message", None),
            status(403, "Forbidden", "permission denied", None),
            status(404, "NotFound", "", None),
            status(422, "Invalid", "", None),
            status(12345, "", "", None),
        ] {
            assert_eq!(
                on_publish_error(mr0.settings().unwrap().publish_retries, &f, 0, 0),
                fail,
                "{f}"
            );
            assert_eq!(
                on_publish_error(mr1.settings().unwrap().publish_retries, &f, 0, 0),
                fail,
                "{f}"
            );
        }
        for f in [
            status(
                403,
                "Forbidden",
                "pods \"x\" is forbidden: exceeded quota: q",
                None,
            ),
            status(
                409,
                "Conflict",
                "the object has been modified; please apply",
                None,
            ),
            status(410, "Gone", "too old resource version: 1 (2)", None),
            status(500, "InternalError", "webhook", None),
            status(502, "", "", None),
            status(504, "", "", None),
            ApiFailure::Timeout,
            ApiFailure::Connection {
                message: "Connection aborted.".into(),
            },
        ] {
            assert_eq!(
                on_publish_error(mr0.settings().unwrap().publish_retries, &f, 0, 0),
                fail,
                "{f}"
            );
            assert_eq!(
                on_publish_error(mr1.settings().unwrap().publish_retries, &f, 0, 0),
                retry,
                "{f}"
            );
            assert_eq!(
                on_publish_error(mr1.settings().unwrap().publish_retries, &f, 1, 0),
                fail,
                "{f}"
            );
        }
        assert_eq!(
            on_publish_error(
                mr1.settings().unwrap().publish_retries,
                &status(429, "TooManyRequests", "", Some(3)),
                0,
                0
            ),
            PublishDecision::Retry {
                backoff_ms: Some(3000),
                retry_in_ms: 0
            }
        );
        assert_eq!(
            on_publish_error(
                mr1.settings().unwrap().publish_retries,
                &status(429, "TooManyRequests", "", None),
                0,
                0
            ),
            PublishDecision::Retry {
                backoff_ms: Some(0),
                retry_in_ms: 0
            }
        );
        assert_eq!(
            on_publish_error(
                mr1.settings().unwrap().publish_retries,
                &status(
                    503,
                    "ServiceUnavailable",
                    "apiserver is shutting down",
                    Some(1)
                ),
                0,
                0
            ),
            PublishDecision::Retry {
                backoff_ms: Some(1000),
                retry_in_ms: 0
            }
        );
        let unlimited = Config {
            task_publish_max_retries: -1,
            ..mr0.clone()
        };
        assert_eq!(
            on_publish_error(
                unlimited.settings().unwrap().publish_retries,
                &status(500, "", "", None),
                1_000_000,
                0
            ),
            retry
        );
        assert_eq!(
            on_publish_error(
                mr0.settings().unwrap().publish_retries,
                &status(409, "AlreadyExists", "pods \"x\" already exists", None),
                0,
                0
            ),
            PublishDecision::AlreadyCreated
        );
    }

    /// podwarden's default: retries budgeted by time, waiting 1 s, 2 s, … 60 s between them;
    /// the count does not matter, the time since the first failure does.
    #[test]
    fn timed_publish_retries_back_off_and_end_with_the_window() {
        let cfg = Config::default();
        let busy = status(429, "TooManyRequests", "", Some(1));
        assert_eq!(
            on_publish_error(cfg.settings().unwrap().publish_retries, &busy, 0, 0),
            PublishDecision::Retry {
                backoff_ms: Some(1000),
                retry_in_ms: 1000
            }
        );
        assert_eq!(
            on_publish_error(
                cfg.settings().unwrap().publish_retries,
                &ApiFailure::Timeout,
                40,
                599_999
            ),
            PublishDecision::Retry {
                backoff_ms: None,
                retry_in_ms: 60_000
            }
        );
        assert_eq!(
            on_publish_error(
                cfg.settings().unwrap().publish_retries,
                &ApiFailure::Timeout,
                3,
                600_000
            ),
            PublishDecision::Fail
        );
        // A refusal of the pod itself fails at once, window or not.
        assert_eq!(
            on_publish_error(
                cfg.settings().unwrap().publish_retries,
                &status(422, "Invalid", "", None),
                0,
                0
            ),
            PublishDecision::Fail
        );
    }

    #[test]
    fn delayed_and_parked_tries_wait_their_turn() {
        let cfg = Config::default();
        let mut q = LaunchQueue::default();
        let (a, b) = (
            TaskKey::new("d", "a", "r", 1),
            TaskKey::new("d", "b", "r", 1),
        );
        q.push_at(a.clone(), Timestamp(5_000));
        q.park(b.clone());
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.next_ready(Timestamp(1_000), &cfg.settings().unwrap()),
            None
        );
        assert_eq!(q.wake_at(&cfg.settings().unwrap()), Some(Timestamp(5_000)));
        assert_eq!(
            q.next_ready(Timestamp(5_000), &cfg.settings().unwrap()),
            Some(a)
        );
        assert_eq!(
            q.wake_at(&cfg.settings().unwrap()),
            None,
            "a parked try waits for an answer"
        );
        q.unpark(&b);
        assert_eq!(
            q.next_ready(Timestamp(6_000), &cfg.settings().unwrap()),
            Some(b)
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn batch_window_and_backoff() {
        let cfg = Config {
            worker_pods_creation_batch_size: 2,
            ..Config::default()
        };
        let mut q = LaunchQueue::default();
        for i in 0..5 {
            q.push(TaskKey::new("d", format!("t{i}"), "r", 1));
        }
        let now = Timestamp(10_000);
        assert!(q.next_ready(now, &cfg.settings().unwrap()).is_some());
        assert!(q.next_ready(now, &cfg.settings().unwrap()).is_some());
        assert!(q.next_ready(now, &cfg.settings().unwrap()).is_none());
        assert_eq!(q.wake_at(&cfg.settings().unwrap()), Some(Timestamp(11_000)));
        assert!(q
            .next_ready(Timestamp(11_000), &cfg.settings().unwrap())
            .is_some());
        q.back_off_until(Timestamp(20_000));
        assert!(q
            .next_ready(Timestamp(12_000), &cfg.settings().unwrap())
            .is_none());
        assert_eq!(q.wake_at(&cfg.settings().unwrap()), Some(Timestamp(20_000)));
        assert!(q
            .next_ready(Timestamp(20_000), &cfg.settings().unwrap())
            .is_some());
        assert_eq!(q.len(), 1);
    }
}
