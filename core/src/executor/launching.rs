//! Launching a try's pods: a submission queued, the launch queue drained within the parallelism
//! limit, a create's answer (retried, given up as a launch failure, or confirmed).

use super::pod_address::PodUid;
use crate::command::ApiCall;
use std::sync::Arc;

use super::awaiting::{Awaiting, Cleanup};
use super::pod_table::PodRecord;
use super::tries::{PublishRetries, Task, TaskPhase};
use super::Executor;
use crate::command::{ApiFailure, ApiOutcome};
use crate::completion::{Disposal, Evidence};
use crate::input::{InputError, PodTemplate};
use crate::key::TaskKey;
use crate::launch::{self, PublishDecision};
use crate::pod::PodRef;
use crate::time::Timestamp;
use crate::watch::FailureDetails;

impl Executor {
    pub(super) fn on_submit(
        &mut self,
        key: TaskKey,
        template: PodTemplate,
    ) -> Result<(), InputError> {
        if self.tasks.contains_key(&key) {
            return Err(InputError::DuplicateTask(key));
        }
        self.check_template(&template)?;
        self.tasks.insert(
            Arc::new(key.clone()),
            Task::new(Some(template), 0, TaskPhase::Queued),
        );
        self.launch.push(key);
        Ok(())
    }

    /// What a template must be to launch pods from here: valid on its own, in a watched
    /// namespace.
    pub(super) fn check_template(&self, template: &PodTemplate) -> Result<(), InputError> {
        template.validate()?;
        match &template.namespace {
            Some(ns) if !self.config.watches_namespace(ns) => {
                Err(InputError::UnwatchedTemplateNamespace(ns.clone()))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn launch_ready(&mut self, now: Timestamp) {
        while let Some(key) =
            self.launch
                .next_ready(now, &self.settings, self.outbox.creates_unanswered())
        {
            if self.has_unconfirmed_delete(&key) {
                // An earlier pod of this try could still start: wait until its deletion is
                // confirmed (`confirm_deleting`).
                self.launch.park(key);
                continue;
            }
            let shared = self.shared_key(&key);
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            if task.template.is_none() || !matches!(task.phase, TaskPhase::Queued) {
                continue;
            }
            let launch = match task.launch() {
                Some(n) => n,
                None => {
                    let n = self.next_launch;
                    self.next_launch = self.next_launch.saturating_add(1);
                    task.set_launch(Some(n));
                    n
                }
            };
            let Some(template) = task.template.as_deref() else {
                continue;
            };
            let manifest = launch::manifest(
                &self.config,
                &self.settings,
                &self.scheduler_id,
                &key,
                template,
                launch::Launch {
                    number: launch,
                    requeues: task.requeues,
                },
                &mut self.safe_values,
            );
            let pod = manifest.pod.clone();
            let shared_pod = self.pods.shared(&pod);
            task.phase = TaskPhase::Launched {
                pod: Arc::clone(&shared_pod),
            };
            self.pods.insert(
                shared_pod,
                PodRecord::new(shared, PodUid::Unknown, false, false),
            );
            self.emit_api(
                ApiCall::CreatePod { manifest },
                Awaiting::Create { key, pod },
            );
        }
    }

    pub(super) fn on_create_result(&mut self, key: TaskKey, pod: PodRef, outcome: ApiOutcome) {
        let Some(task) = self.tasks.get_mut(&key) else {
            return;
        };
        if !matches!(&task.phase, TaskPhase::Launched { pod: p } if **p == pod) {
            return;
        }
        let failure = match outcome {
            ApiOutcome::Failed { failure } => failure,
            ApiOutcome::Ok | ApiOutcome::Listed { .. } => {
                task.publish = None;
                if let Some(record) = self.pods.get_mut(&pod) {
                    record.created = true;
                }
                return;
            }
        };
        // The watch already showed the pod (its record is marked seen, or was dropped because
        // the pod is already gone): whatever the reply says, it was created.
        if self.pods.get(&pod).is_none_or(|r| r.seen) {
            task.publish = None;
            return;
        }
        let now = self.clock.now();
        let publish = task.publish.get_or_insert_with(|| {
            Box::new(PublishRetries {
                retries: 0,
                first_failure: now,
            })
        });
        match launch::on_publish_error(
            self.settings.publish_retries,
            &failure,
            publish.retries,
            now.since(publish.first_failure),
            self.config.already_exists_means_created,
        ) {
            PublishDecision::AlreadyCreated => {
                task.publish = None;
                if let Some(record) = self.pods.get_mut(&pod) {
                    record.created = true;
                }
            }
            PublishDecision::Retry {
                backoff_ms,
                retry_in_ms,
            } => {
                publish.retries = publish.retries.saturating_add(1);
                task.phase = TaskPhase::Queued;
                self.pods.remove(&pod);
                if retry_in_ms == 0 {
                    self.launch.push(key);
                } else {
                    self.launch.push_at(key, now.plus_ms(retry_in_ms));
                }
                if let Some(ms) = backoff_ms {
                    self.launch.end_window();
                    self.launch.back_off_until(now.plus_ms(ms));
                }
            }
            PublishDecision::Fail => {
                self.pods.remove(&pod);
                // A create that timed out may still have made the pod: remove it, or it would
                // run a try that is requeued under another pod name, or already failed.
                if matches!(failure, ApiFailure::Timeout | ApiFailure::Connection { .. }) {
                    self.pods.insert_at(
                        &pod,
                        PodRecord::new(Arc::new(key.clone()), PodUid::Unknown, false, true),
                    );
                    self.expect_deletion(&key, &pod);
                    self.start_cleanup(Cleanup {
                        pod: pod.clone(),
                        disposal: Disposal::Delete,
                        attempt: 0,
                    });
                }
                let details = FailureDetails {
                    pod_message: Some(failure.to_string()),
                    ..FailureDetails::default()
                };
                if launch::is_transient(&failure) && self.config.requeue_failed_publishes {
                    // Differs on purpose: the task never started, so this is a launch failure
                    // (requeued while QUEUED and within budget), not a charge to the user.
                    // Airflow (`requeue_failed_publishes = false`) fails the try.
                    self.on_try_failed(key, pod, String::new(), details, Evidence::PublishFailed);
                } else {
                    // The API refused the pod itself (invalid, forbidden): a new pod would be
                    // refused too.
                    self.fail_try(key, &details, Evidence::PublishFailed);
                }
            }
        }
    }
}
