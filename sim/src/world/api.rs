//! The API server: the pod store with resource versions, watches with Kubernetes' membership
//! semantics, and requests (with preconditions, latency and injected errors).

use std::collections::BTreeMap;

use rand::Rng;

use podwarden_core::{
    ApiFailure, ApiOutcome, Command, CommandKind, EventType, LabelSelector, PodPhase, PodView,
    TaskKey, Timestamp, WatchEvent,
};

use super::{Ev, World};

/// What kind of pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodKind {
    /// An executor worker pod.
    Worker,
    /// A KubernetesPodOperator pod; `stuck`: its sidecar never exits.
    Kpo { stuck: bool },
}

/// A pod in the store: its API object and what the kubelet knows about it.
#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub(crate) view: PodView,
    pub(crate) key: TaskKey,
    pub(crate) kind: PodKind,
    pub(crate) node: Option<usize>,
    /// The task process runs now.
    pub(crate) running_task: bool,
    /// The task process started at some point.
    pub(crate) task_started: bool,
    /// Bumped when the pod's plan changes (deletion), so stale kubelet steps are dropped.
    pub(crate) gen: u64,
    /// Pull outcome decided at creation.
    pub(crate) pull: Pull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pull {
    Ok,
    Transient,
    Permanent,
}

/// One scheduler's watch.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    pub(crate) inc: u32,
    pub(crate) selector: LabelSelector,
    /// False while partitioned: events are lost and the watch must be re-listed.
    pub(crate) live: bool,
}

#[derive(Debug, Default)]
pub(crate) struct ApiServer {
    pub(crate) pods: BTreeMap<String, SimPod>,
    pub(crate) rv: u64,
    pub(crate) watches: BTreeMap<u32, Watch>,
    /// Injected errors: (status code, fraction of requests).
    pub(crate) errors: Option<(u16, f64)>,
}

fn status(code: u16, reason: &str, message: &str) -> ApiOutcome {
    ApiOutcome::status(code, reason, message)
}

fn matches_field(pod: &PodView, field: Option<&str>) -> bool {
    match field {
        Some("status.phase=Succeeded") => pod.phase == Some(PodPhase::Succeeded),
        Some("status.phase!=Succeeded") => pod.phase != Some(PodPhase::Succeeded),
        _ => true,
    }
}

impl World {
    /// Applies a change to a pod, bumps its resource version and notifies watches.
    pub(crate) fn update_pod(&mut self, name: &str, change: impl FnOnce(&mut SimPod)) {
        let Some(pod) = self.api.pods.get_mut(name) else {
            return;
        };
        let before = pod.view.labels.clone();
        change(pod);
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        let after = pod.view.clone();
        self.notify(&before, &after, false);
    }

    /// Removes a pod from the store (the end of its deletion) and notifies watches.
    pub(crate) fn remove_pod(&mut self, name: &str) {
        let Some(mut pod) = self.api.pods.remove(name) else {
            return;
        };
        if let Some(node) = pod.node.and_then(|n| self.nodes.get_mut(n)) {
            node.used = node.used.saturating_sub(1);
        }
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        if pod.view.deletion_timestamp.is_none() {
            pod.view.deletion_timestamp = Some(Timestamp(self.now));
        }
        self.checker.pod_removed(&pod);
        let labels = pod.view.labels.clone();
        self.notify(&labels, &pod.view, true);
    }

    /// Sends each watch the event this change means for it: a pod entering a selector is ADDED,
    /// leaving it is DELETED (without a deletion timestamp when it was only relabelled).
    fn notify(&mut self, before: &BTreeMap<String, String>, pod: &PodView, removed: bool) {
        let latency = self.scenario.latency.watch_ms;
        let mut deliveries = Vec::new();
        for (sched, w) in &self.api.watches {
            if !w.live {
                continue;
            }
            let was = w.selector.matches(before);
            let is = !removed && w.selector.matches(&pod.labels);
            let kind = match (was, is) {
                (false, true) if !removed => EventType::Added,
                (true, true) => EventType::Modified,
                (true, false) => EventType::Deleted,
                _ => continue,
            };
            deliveries.push((*sched, w.inc, WatchEvent::new(kind, pod.clone())));
        }
        for (sched, inc, event) in deliveries {
            self.after(latency, Ev::WatchDeliver { sched, inc, event });
        }
    }

    /// Sends a command to the API server (lost if the scheduler is partitioned).
    pub(crate) fn send_api(&mut self, sched: u32, inc: u32, command: Command) {
        let latency = self.scenario.latency.api_ms;
        if self.scheds[sched as usize].partitioned {
            let id = command.id;
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

    pub(crate) fn api_request(&mut self, sched: u32, inc: u32, command: Command) {
        let id = command.id;
        let outcome = match self.api.errors {
            Some((code, rate)) if self.rng_api.random_bool(rate) => {
                status(code, "Injected", "injected by the fault plan")
            }
            _ => self.serve(sched, command),
        };
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
            CommandKind::CreatePod { manifest } => {
                if self.api.pods.contains_key(&manifest.pod.name) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("pods \"{}\" already exists", manifest.pod.name),
                    );
                }
                let Ok(key) = TaskKey::from_annotations(&manifest.annotations) else {
                    return status(422, "Invalid", "pod annotations name no task");
                };
                let mut view =
                    PodView::new(manifest.pod.namespace.clone(), manifest.pod.name.clone());
                view.labels = manifest.labels;
                view.annotations = manifest.annotations;
                view.uid = format!("uid-{}-{}", manifest.pod.name, self.api.rv + 1);
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
                });
                self.summary.pods_created += 1;
                ApiOutcome::Ok
            }
            CommandKind::PatchLabels {
                pod,
                labels,
                precondition,
            } => {
                let Some(current) = self.api.pods.get(&pod.name) else {
                    return status(404, "NotFound", &format!("pods \"{}\" not found", pod.name));
                };
                if let Some(pre) = &precondition {
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
                let id = self.scheds[sched as usize].id.clone();
                self.checker
                    .label_patch(&id, &current.view, &labels, self.now);
                self.update_pod(&pod.name, |p| p.view.labels.extend(labels));
                ApiOutcome::Ok
            }
            CommandKind::DeletePod {
                pod,
                grace_period_seconds,
            } => {
                if !self.api.pods.contains_key(&pod.name) {
                    return status(404, "NotFound", &format!("pods \"{}\" not found", pod.name));
                }
                self.delete_pod(&pod.name, grace_period_seconds.unwrap_or(30), None);
                ApiOutcome::Ok
            }
            CommandKind::ListPods {
                label_selector,
                field_selector,
                ..
            } => {
                let pods = self
                    .api
                    .pods
                    .values()
                    .filter(|p| {
                        label_selector.matches(&p.view.labels)
                            && matches_field(&p.view, field_selector.as_deref())
                    })
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

    /// Adds a pod to the store and starts its lifecycle.
    pub(crate) fn create_pod(&mut self, mut pod: SimPod) {
        self.api.rv += 1;
        pod.view.resource_version = self.api.rv.to_string();
        let name = pod.view.name.clone();
        let view = pod.view.clone();
        self.checker.pod_created(&pod);
        self.api.pods.insert(name.clone(), pod);
        self.notify(&BTreeMap::new(), &view, false);
        self.after(
            100,
            Ev::Pod {
                name,
                gen: 0,
                step: super::PodStep::Schedule,
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
