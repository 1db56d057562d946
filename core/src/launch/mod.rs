//! Launch path: which queued tries get a pod this loop, what the pod looks like, and what an API
//! error on creation means (`docs/decisions.md`, "Launch").
//!
//! Pod names are derived from the scheduler id, the key and a launch counter instead of
//! Airflow's 8 random characters. That keeps the core free of randomness and makes creation
//! idempotent: a create retried after a timeout gets 409 AlreadyExists for its own pod, which
//! counts as created, where Airflow's retry would start a second pod for the same try.

use crate::label::SafeValueMemo;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use md5::{Digest, Md5};

use crate::command::{ApiFailure, PodManifest};
use crate::config::{Config, PublishRetries, Settings};
use crate::input::PodTemplate;
use crate::key::TaskKey;
use crate::label;
use crate::pod::{PodRef, PodView};
use crate::time::{retry_backoff_ms, Timestamp};

const NAME_MAX: usize = 63;
const SUFFIX_LEN: usize = 8;

/// Appends the Kubernetes-safe slug of `dag_id-task_id` to `out`, at most `max` bytes:
/// lowercase ASCII letters and digits, other runs become one `-`, none at either end. (Airflow
/// transliterates non-ASCII first; we drop it, which only changes the readable part of the name,
/// never its uniqueness, which the suffix carries.)
fn push_slug(out: &mut String, key: &TaskKey, max: usize) {
    let parts = key.dag_id.chars().chain(['-']).chain(key.task_id.chars());
    for c in parts {
        if out.len() >= max {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
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
    let mut name = String::with_capacity(NAME_MAX);
    push_slug(&mut name, key, NAME_MAX - SUFFIX_LEN - 1);
    if name.is_empty() {
        name.push_str("task");
    }
    name.push('-');
    let mut h = Md5::new();
    for part in [scheduler_id, &key.dag_id, &key.task_id, &key.run_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(key.map_index.to_le_bytes());
    h.update(key.try_number.to_le_bytes());
    h.update(launch.to_le_bytes());
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    for b in h.finalize().iter().take(SUFFIX_LEN) {
        name.push(char::from(ALPHABET[usize::from(*b) % 36]));
    }
    name
}

/// Which launch of a try a pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The executor's launch number, part of the pod's name.
    pub(crate) number: u64,
    /// Transparent requeues of the try used before this launch.
    pub(crate) requeues: u32,
}

/// Builds the pod for one launch: template labels and annotations first, then Airflow's
/// identity labels and annotations, and the requeues used so far
/// ([`label::LAUNCH_ATTEMPT_ANNOTATION`]) so that an adopter continues the budget.
/// The two never overlap: every key written here is in [`label::RESERVED_LABELS`] or
/// [`label::RESERVED_ANNOTATIONS`], which a template may not use ([`PodTemplate::validate`]).
pub(crate) fn manifest(
    config: &Config,
    settings: &Settings,
    scheduler_id: &str,
    key: &TaskKey,
    template: &PodTemplate,
    launch: Launch,
    safe_values: &mut SafeValueMemo,
) -> PodManifest {
    let Launch { number, requeues } = launch;
    let mut labels = template.labels.clone();
    let nothing = if config.always_valid_label_values {
        label::SanitisedToNothing::HashAlone
    } else {
        label::SanitisedToNothing::DashHash
    };
    key.add_labels_with(&mut labels, |id| safe_values.safe_value_as(id, nothing));
    labels.insert(label::KUBERNETES_EXECUTOR.into(), label::TRUE.into());
    labels.insert(
        label::AIRFLOW_VERSION.into(),
        settings.airflow_version_label.clone(),
    );
    labels.insert(label::AIRFLOW_WORKER.into(), scheduler_id.to_string());
    let mut annotations = template.annotations.clone();
    key.add_annotations(&mut annotations);
    annotations.insert(
        label::LAUNCH_ATTEMPT_ANNOTATION.to_string(),
        requeues.to_string(),
    );
    let mut env = BTreeMap::new();
    env.insert(
        "AIRFLOW_IS_K8S_EXECUTOR_POD".to_string(),
        "True".to_string(),
    );
    PodManifest {
        pod: PodRef::new(
            template
                .namespace
                .clone()
                .unwrap_or_else(|| config.namespace.clone()),
            pod_name(scheduler_id, key, number),
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
    already_exists_means_created: bool,
) -> PublishDecision {
    if let ApiFailure::Status {
        code: 409, reason, ..
    } = failure
    {
        if reason == "AlreadyExists" && already_exists_means_created {
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

    /// Ends the current loop's creates (a 429 or `Retry-After` answer: Airflow's sequential loop
    /// breaks out of its batch whatever the wait), so the next create waits for the next loop.
    pub(crate) fn end_window(&mut self) {
        self.created_in_window = u32::MAX;
    }

    pub(crate) fn back_off_until(&mut self, until: Timestamp) {
        self.backoff_until = Some(self.backoff_until.map_or(until, |cur| cur.max(until)));
    }

    /// The next try to create now, if the back-off, the batch window and the creates still
    /// unanswered (`creates_unanswered`, against [`Settings::creates_in_flight`]) allow one.
    pub(crate) fn next_ready(
        &mut self,
        now: Timestamp,
        settings: &Settings,
        creates_unanswered: usize,
    ) -> Option<TaskKey> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.queue.push_back(entry.remove());
        }
        if self.queue.is_empty() || creates_unanswered >= settings.creates_in_flight {
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
    /// not for a time, and so does the queue while `creates_unanswered` is at the limit: the
    /// answer wakes it).
    pub(crate) fn wake_at(
        &self,
        settings: &Settings,
        creates_unanswered: usize,
    ) -> Option<Timestamp> {
        let delayed = self.delayed.keys().next().map(|(at, _)| *at);
        if creates_unanswered >= settings.creates_in_flight {
            return None;
        }
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

/// The requeues a pod says its try had used when it was launched (the annotation
/// [`manifest`] writes); `0` when it is missing or unreadable.
pub(crate) fn requeues_used_at_launch(pod: &PodView) -> u32 {
    pod.annotations
        .get(label::LAUNCH_ATTEMPT_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
