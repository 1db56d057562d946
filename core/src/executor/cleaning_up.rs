//! Disposing of finished pods: deletes and done labels, retried with back-off until confirmed,
//! and the deletions a try's next pod must wait for.

use crate::command::ApiCall;
use std::collections::BTreeMap;

use super::awaiting::{Awaiting, Cleanup};
use super::Executor;
use crate::command::ApiOutcome;
use crate::completion::Disposal;
use crate::key::TaskKey;
use crate::label;
use crate::pod::PodRef;
use crate::time::{retry_backoff_ms, Timestamp};

impl Executor {
    pub(super) fn start_cleanup(&mut self, cleanup: Cleanup) {
        let kind = match cleanup.disposal {
            Disposal::Delete => ApiCall::DeletePod {
                pod: cleanup.pod.clone(),
                grace_period_seconds: None,
            },
            Disposal::MarkDone => ApiCall::PatchLabels {
                pod: cleanup.pod.clone(),
                labels: BTreeMap::from([(
                    label::EXECUTOR_DONE.to_string(),
                    label::TRUE.to_string(),
                )]),
                precondition: None,
            },
        };
        self.emit_api(kind, Awaiting::Cleanup(cleanup));
    }

    pub(super) fn on_cleanup_result(&mut self, cleanup: Cleanup, outcome: ApiOutcome) {
        let ApiOutcome::Failed { failure } = outcome else {
            // Done; the record goes when the watch shows the pod leave.
            if cleanup.disposal == Disposal::Delete {
                self.confirm_deleting(&cleanup.pod);
            }
            self.disposal_confirmed(&cleanup.pod);
            self.release_reports(&cleanup.pod);
            return;
        };
        if failure.code() == Some(404) {
            self.pods.remove(&cleanup.pod);
            self.confirm_deleting(&cleanup.pod);
            self.disposal_confirmed(&cleanup.pod);
            self.release_reports(&cleanup.pod);
            return;
        }
        if !self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
            // No longer ours to clean up (gone, or taken over): nothing more to wait for.
            self.release_reports(&cleanup.pod);
            return;
        }
        let retry = cleanup.disposal == Disposal::Delete || self.config.retry_done_label_patch;
        if retry && self.settings.cleanup_retries.allows(cleanup.attempt) {
            let attempt = cleanup.attempt.saturating_add(1);
            let at = self.clock.now().plus_ms(retry_backoff_ms(attempt));
            let seq = self.next_command_id().0;
            self.cleanup_retries
                .insert((at, seq), Cleanup { attempt, ..cleanup });
        } else {
            // Give up (only with a finite `pod_cleanup_max_retries`, or at once for a
            // done-label patch without `retry_done_label_patch`); a later event of this pod
            // starts a new round.
            self.pods.remove(&cleanup.pod);
            self.confirm_deleting(&cleanup.pod);
            self.disposal_confirmed(&cleanup.pod);
            self.release_reports(&cleanup.pod);
        }
    }

    /// The try `key` asks for the deletion of its pod `pod`, which could still start the task:
    /// the try gets no new pod until the deletion is confirmed.
    pub(super) fn expect_deletion(&mut self, key: &TaskKey, pod: &PodRef) {
        self.unconfirmed_deletes.insert(pod.clone(), key.clone());
    }

    pub(super) fn has_unconfirmed_delete(&self, key: &TaskKey) -> bool {
        !self.unconfirmed_deletes.is_empty() && self.unconfirmed_deletes.values().any(|k| k == key)
    }

    /// `pod` is deleted, being deleted or terminal: its try may get a new pod.
    pub(super) fn confirm_deleting(&mut self, pod: &PodRef) {
        if let Some(key) = self.unconfirmed_deletes.remove(pod) {
            if !self.has_unconfirmed_delete(&key) {
                self.launch.unpark(&key);
            }
        }
    }

    pub(super) fn fire_cleanups(&mut self, now: Timestamp) {
        while let Some(entry) = self.cleanup_retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let cleanup = entry.remove();
            if self.pods.get(&cleanup.pod).is_some_and(|r| r.finishing) {
                self.start_cleanup(cleanup);
            } else {
                self.release_reports(&cleanup.pod);
            }
        }
    }
}
