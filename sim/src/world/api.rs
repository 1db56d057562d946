//! The API server: the pod store with resource versions, watches with Kubernetes' membership
//! semantics, and requests (with preconditions, latency and injected errors).

use podwarden_core::command::{ApiCall, Precondition};
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;

use podwarden_core::{
    ApiFailure, ApiOutcome, Command, CommandKind, EventType, FieldSelector, LabelSelector,
    PodPhase, PodRef, PodView, TaskKey, Timestamp, WatchEvent,
};

use super::cluster::{PodKind, SimPod};
use super::event::{Ev, PodStep};
use super::store::{Change, Watch, HISTORY};
use super::World;

fn status(code: u16, reason: &str, message: &str) -> ApiOutcome {
    ApiOutcome::status(code, reason, message)
}

/// Kubernetes' 404 for a pod.
pub(crate) fn not_found(name: &str) -> ApiOutcome {
    status(404, "NotFound", &format!("pods \"{name}\" not found"))
}

/// An injected error as the API server sends it: a 429 from API priority and fairness carries
/// `Retry-After: 1`, as kube-apiserver's does.
fn injected(code: u16) -> ApiOutcome {
    ApiOutcome::Failed {
        failure: ApiFailure::Status {
            code,
            reason: if code == 429 {
                "TooManyRequests".into()
            } else {
                "Injected".into()
            },
            message: "injected by the fault plan".into(),
            retry_after_secs: (code == 429).then_some(1),
        },
    }
}

/// A 400, 422 or (not for quota) 403 to a create: the API server refuses the pod spec itself.
fn refuses_the_spec(outcome: &ApiOutcome) -> bool {
    match outcome {
        ApiOutcome::Failed {
            failure: ApiFailure::Status { code, message, .. },
        } => matches!(code, 400 | 422) || (*code == 403 && !message.contains("exceeded quota")),
        _ => false,
    }
}

/// Core's own matcher: the simulated API server selects exactly as the executor asked.
fn matches_field(pod: &PodView, field: Option<FieldSelector>) -> bool {
    field.is_none_or(|f| f.matches(pod.phase))
}

impl World {
    /// Applies a change to a pod other than to its labels ([`World::patch_pod_labels`] is the
    /// one way to change those), bumps its resource version and notifies watches. A pod whose
    /// containers have all exited gives its node slot back (the scheduler ignores terminated
    /// pods), even if it is kept for debugging.
    pub(crate) fn update_pod(&mut self, name: &str, change: impl FnOnce(&mut SimPod)) {
        self.apply_pod_change(name, change, None);
    }

    /// Merges `labels` into a pod's labels, as a label patch does; watches whose selector the
    /// pod leaves see it DELETED with its labels from before.
    fn patch_pod_labels(&mut self, name: &str, labels: BTreeMap<String, String>) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        let labels_before = pod.view.labels.clone();
        self.apply_pod_change(name, |p| p.view.labels.extend(labels), Some(labels_before));
    }

    /// [`World::update_pod`] and [`World::patch_pod_labels`]: `labels_before` is given exactly
    /// when `change` may change the labels (cloning them for every status change cost a label
    /// map per update).
    fn apply_pod_change(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut SimPod),
        labels_before: Option<BTreeMap<String, String>>,
    ) {
        let Some(pod) = self.api.pods.get_mut(name) else {
            return;
        };
        #[cfg(debug_assertions)]
        let labels_at_start = labels_before.is_none().then(|| pod.view.labels.clone());
        let was_terminal = matches!(pod.view.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
        change(pod);
        #[cfg(debug_assertions)]
        debug_assert!(
            labels_at_start.is_none_or(|l| l == pod.view.labels),
            "update_pod changed {name}'s labels: use patch_pod_labels"
        );
        // Only a relabel needs the previous object, and a relabel changes only labels.
        let before = labels_before
            .filter(|before| *before != pod.view.labels)
            .map(|labels_before| {
                let mut b = pod.view.clone();
                b.labels = labels_before;
                // Kubernetes stamps the event with the new resource version.
                b.resource_version = (self.api.rv + 1).to_string();
                Arc::new(b)
            });
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        let terminal = matches!(pod.view.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
        let freed = if terminal && pod.slot {
            pod.slot = false;
            pod.node
        } else {
            None
        };
        let after = Arc::new(pod.view.clone());
        if let Some(node) = freed {
            self.nodes
                .update(node, |n| n.used = n.used.saturating_sub(1));
        }
        self.observe_pod(name, was_terminal);
        self.publish(Change {
            rv: self.api.rv,
            created: false,
            before,
            after,
            removed: false,
        });
    }

    /// Removes a pod from the store (the end of its deletion) and notifies watches.
    pub(crate) fn remove_pod(&mut self, name: &str) {
        let Some(mut pod) = self.api.pods.remove(name) else {
            return;
        };
        if pod.slot {
            if let Some(node) = pod.node {
                self.nodes
                    .update(node, |n| n.used = n.used.saturating_sub(1));
            }
        }
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        if pod.view.deletion_timestamp.is_none() {
            pod.view.deletion_timestamp = Some(Timestamp(self.now));
        }
        self.pod_leaves(&pod);
        self.publish(Change {
            rv: self.api.rv,
            created: false,
            before: None,
            after: Arc::new(pod.view),
            removed: true,
        });
    }

    /// Records a change in the watch history and sends it to every live watch.
    fn publish(&mut self, change: Change) {
        let latency = self.scenario.latency.watch_ms;
        let mut deliveries = Vec::new();
        for ((sched, namespace), w) in &self.api.watches {
            if let Some(event) = w
                .live
                .then(|| change.event_for(namespace.as_deref(), &w.selector))
                .flatten()
            {
                deliveries.push((*sched, w.inc, event));
            }
        }
        for (sched, inc, event) in deliveries {
            self.after(latency, Ev::WatchDeliver { sched, inc, event });
        }
        if let Some(served) = self.served.as_mut() {
            served.feed.push(change.clone());
        }
        if self.api.history.len() == HISTORY {
            self.api.history.pop_front();
        }
        self.api.history.push_back(change);
    }

    /// Starts scheduler `sched`'s watch from `resource_version`: the changes since then are
    /// replayed from the history window; a version older than the window gets 410 Gone, as the
    /// API server answers when its watch cache no longer holds it.
    pub(crate) fn start_watch(
        &mut self,
        sched: u32,
        inc: u32,
        namespace: Option<String>,
        selector: LabelSelector,
        resource_version: &str,
    ) {
        let live = !self.scheds[sched as usize].partitioned;
        // `WatchExpired` names the watch only where the executor runs one per namespace.
        let gone_names = namespace
            .clone()
            .filter(|_| self.config.multi_namespace_mode);
        let gone = Ev::WatchGone {
            sched,
            inc,
            namespace: gone_names,
        };
        self.api.watches.insert(
            (sched, namespace.clone()),
            Watch {
                inc,
                selector: selector.clone(),
                live,
                since: self.now,
            },
        );
        let latency = self.scenario.latency.watch_ms;
        if resource_version == "0" {
            // Kubernetes' "any version": an ADDED event for every pod the watch matches now
            // (from the watch cache), then live changes. What a watcher restarted after a 410
            // sees (Airflow's rule, `relist_after_watch_expiry = false`).
            let now_matching: Vec<WatchEvent> = self
                .api
                .matching(namespace.as_deref(), &selector)
                .map(|p| WatchEvent::new(EventType::Added, p.view.clone()))
                .collect();
            for event in now_matching {
                self.after(latency, Ev::WatchDeliver { sched, inc, event });
            }
            return;
        }
        let Ok(from) = resource_version.parse::<u64>() else {
            self.after(latency, gone);
            return;
        };
        let oldest = self.api.history.front().map_or(self.api.rv + 1, |c| c.rv);
        if from + 1 < oldest && from < self.api.rv {
            self.after(latency, gone);
            return;
        }
        let replay: Vec<WatchEvent> = self
            .api
            .history
            .iter()
            .filter(|c| c.rv > from)
            .filter_map(|c| c.event_for(namespace.as_deref(), &selector))
            .collect();
        for event in replay {
            self.after(latency, Ev::WatchDeliver { sched, inc, event });
        }
    }

    /// Sends a command to the API server (lost if the scheduler is partitioned).
    pub(crate) fn send_api(&mut self, sched: u32, inc: u32, command: Command) {
        let latency = self.scenario.latency.api_ms;
        if self.scheds[sched as usize].partitioned {
            let id = command.id;
            let create = matches!(command.kind, CommandKind::Api(ApiCall::CreatePod { .. }));
            let timeout = ApiOutcome::Failed {
                failure: ApiFailure::Timeout,
            };
            self.count_failed_call(create, &timeout);
            self.after(
                latency * 20,
                Ev::ApiReply {
                    sched,
                    inc,
                    id,
                    outcome: ApiOutcome::Failed {
                        failure: ApiFailure::Timeout,
                    },
                },
            );
            return;
        }
        self.after(
            latency,
            Ev::ApiRequest {
                sched,
                inc,
                command,
            },
        );
    }

    /// An error the fault plan injects into this request, if it draws one.
    pub(crate) fn draw_injected_error(&mut self) -> Option<ApiOutcome> {
        match self.api.errors {
            Some((code, rate)) if self.rng_api.random_bool(rate) => Some(injected(code)),
            _ => None,
        }
    }

    pub(crate) fn api_request(&mut self, sched: u32, inc: u32, command: Command) {
        let id = command.id;
        let refused_key = match &command.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => {
                TaskKey::from_annotations(&manifest.annotations).ok()
            }
            _ => None,
        };
        let outcome = match self.draw_injected_error() {
            Some(error) => error,
            None => self.serve(sched, command),
        };
        if let (Some(key), true) = (refused_key.as_ref(), refuses_the_spec(&outcome)) {
            self.checker.spec_refused(key);
        }
        self.count_failed_call(refused_key.is_some(), &outcome);
        let latency = self.scenario.latency.api_ms;
        let outcome = if self.scheds[sched as usize].partitioned {
            ApiOutcome::Failed {
                failure: ApiFailure::Timeout,
            }
        } else {
            outcome
        };
        self.after(
            latency,
            Ev::ApiReply {
                sched,
                inc,
                id,
                outcome,
            },
        );
    }

    fn serve(&mut self, sched: u32, command: Command) -> ApiOutcome {
        match command.kind {
            CommandKind::Api(ApiCall::CreatePod { manifest }) => self.admit_worker_pod(
                manifest.pod.namespace,
                manifest.pod.name,
                manifest.labels,
                manifest.annotations,
            ),
            CommandKind::Api(ApiCall::PatchLabels {
                pod,
                labels,
                precondition,
            }) => {
                let id = self.scheds[sched as usize].id.clone();
                self.patch_labels_request(&id, &pod, labels, precondition.as_ref())
            }
            CommandKind::Api(ApiCall::DeletePod {
                pod,
                grace_period_seconds,
            }) => {
                if self.api.pod_at(&pod).is_none() {
                    return not_found(&pod.name);
                }
                self.delete_pod(&pod.name, grace_period_seconds.unwrap_or(30), None);
                ApiOutcome::Ok
            }
            CommandKind::Api(ApiCall::ListPods {
                namespace,
                label_selector,
                field_selector,
            }) => {
                let pods = self
                    .api
                    .matching(namespace.as_deref(), &label_selector)
                    .filter(|p| matches_field(&p.view, field_selector))
                    .map(|p| p.view.clone())
                    .collect();
                ApiOutcome::Listed {
                    pods,
                    resource_version: self.api.rv.to_string(),
                }
            }
            _ => status(400, "BadRequest", "not an API call"),
        }
    }

    /// A create of a worker pod, as the API server answers it: 409 if the name is taken, 422 if
    /// its annotations name no task or a label value is invalid; else the pod is stored Pending
    /// and its lifecycle starts.
    pub(crate) fn admit_worker_pod(
        &mut self,
        namespace: String,
        name: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> ApiOutcome {
        if self.api.pods.contains_key(&name) {
            return status(
                409,
                "AlreadyExists",
                &format!("pods \"{name}\" already exists"),
            );
        }
        let Ok(key) = TaskKey::from_annotations(&annotations) else {
            return status(422, "Invalid", "pod annotations name no task");
        };
        // As the API server validates a pod's labels (Airflow's `-<hash>` for an id with no
        // letter or digit is refused here).
        if let Some((k, v)) = labels
            .iter()
            .find(|(_, v)| !podwarden_core::label::is_valid_value(v))
        {
            return status(
                422,
                "Invalid",
                &format!(
                    "Pod \"{name}\" is invalid: metadata.labels: Invalid value: \"{v}\": a \
                     valid label must be an empty string or consist of alphanumeric \
                     characters, '-', '_' or '.', and must start and end with an \
                     alphanumeric character (label {k})"
                ),
            );
        }
        if let Some(idx) = self.db.find(&key) {
            let now = self.now;
            self.db.tis[idx]
                .tries
                .pod_created(key.try_number, &name, now);
        }
        let mut view = PodView::new(namespace, name);
        view.labels = labels;
        view.annotations = annotations;
        view.uid = format!("uid-{}-{}", view.name, self.api.rv + 1);
        view.phase = Some(PodPhase::Pending);
        view.creation_timestamp = Some(Timestamp(self.now));
        let pull = self.draw_pull();
        self.create_pod(SimPod {
            view,
            key,
            kind: PodKind::Worker,
            node: None,
            running_task: false,
            task_started: false,
            gen: 0,
            pull,
            slot: false,
        });
        self.summary.pods_created += 1;
        ApiOutcome::Ok
    }

    /// A label patch by scheduler `patcher`, as the API server answers it: 404 if the pod is not
    /// there, 409 if `precondition` does not hold; else the labels are merged.
    pub(crate) fn patch_labels_request(
        &mut self,
        patcher: &str,
        pod: &PodRef,
        labels: BTreeMap<String, String>,
        precondition: Option<&Precondition>,
    ) -> ApiOutcome {
        let Some(current) = self.api.pod_at(pod) else {
            return not_found(&pod.name);
        };
        if let Some(pre) = precondition {
            let rv_ok = pre
                .resource_version
                .as_ref()
                .is_none_or(|rv| *rv == current.view.resource_version);
            let label_ok = pre
                .label
                .as_ref()
                .is_none_or(|(k, v)| current.view.labels.get(k) == Some(v));
            if !(rv_ok && label_ok) {
                return status(
                    409,
                    "Conflict",
                    "the object has been modified; the precondition does not hold",
                );
            }
        }
        self.checker
            .label_patch(patcher, &current.view, &labels, self.now);
        if let Some(kind) = self.adoption_kind(&current.view, &current.key, &labels) {
            self.summary.coverage.count(kind);
        }
        self.patch_pod_labels(&pod.name, labels);
        ApiOutcome::Ok
    }

    /// Coverage: a create that failed is retried or decided (`create retried`); a failed call
    /// of any other kind is a clean-up, list or relabel that is retried.
    fn count_failed_call(&mut self, create: bool, outcome: &ApiOutcome) {
        if matches!(outcome, ApiOutcome::Failed { .. }) {
            self.summary.coverage.count(if create {
                "create retried"
            } else {
                "clean-up retried"
            });
        }
    }

    /// Coverage: what an owner relabel is. A Succeeded pod is a completed-pod adoption; a pod
    /// whose try the DB no longer awaits is a leftover; others are orphan hand-overs, counted
    /// when the hand-over resolves.
    fn adoption_kind(
        &self,
        pod: &PodView,
        key: &TaskKey,
        labels: &BTreeMap<String, String>,
    ) -> Option<&'static str> {
        let new_owner = labels.get(podwarden_core::label::AIRFLOW_WORKER)?;
        if pod.labels.get(podwarden_core::label::AIRFLOW_WORKER) == Some(new_owner) {
            return None;
        }
        if pod.phase == Some(PodPhase::Succeeded) {
            return Some("adopt completed pod");
        }
        let awaited = self.db.find(key).is_some_and(|i| {
            let t = &self.db.tis[i];
            t.key.try_number == key.try_number
                && t.state()
                    .is_some_and(podwarden_core::db::TaskState::is_unfinished)
        });
        (!awaited).then_some("adopt leftover pod")
    }

    /// Adds a pod to the store and starts its lifecycle.
    pub(crate) fn create_pod(&mut self, mut pod: SimPod) {
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        let name = pod.view.name.clone();
        let view = pod.view.clone();
        self.api.pods.insert(name.clone(), pod);
        self.observe_pod(&name, false);
        self.publish(Change {
            rv: self.api.rv,
            created: true,
            before: None,
            after: Arc::new(view),
            removed: false,
        });
        self.after(
            100,
            Ev::Pod {
                name,
                gen: 0,
                step: PodStep::Schedule,
            },
        );
    }

    /// Pods that are live worker pods, for faults that pick victims.
    pub(crate) fn live_worker_pods(&self) -> Vec<String> {
        self.api
            .pods
            .values()
            .filter(|p| p.kind == PodKind::Worker && p.view.deletion_timestamp.is_none())
            .filter(|p| matches!(p.view.phase, Some(PodPhase::Pending | PodPhase::Running)))
            .map(|p| p.view.name.clone())
            .collect()
    }
}
