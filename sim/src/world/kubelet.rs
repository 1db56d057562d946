//! Nodes and their kubelets: placement, image pull, container start, the task process, exit
//! codes, graceful deletion as real clusters emit it (deletionTimestamp while Running → SIGTERM →
//! Failed 143 → a duplicate MODIFIED → DELETED), evictions with the `DisruptionTarget` condition
//! first, node loss (pods stuck until the taint manager and pod GC act), OOM kills, and operator
//! pods whose sidecar never exits.

use rand::Rng;

use podwarden_core::db::TaskState;
use podwarden_core::label;
use podwarden_core::{ContainerState, ContainerStatus, PodCondition, PodPhase, PodView, Timestamp};

use super::cluster::{PodKind, Pull, SimPod};
use super::event::{Ev, PodStep};
use super::World;

pub(crate) fn condition(kind: &str, status: &str, reason: &str) -> PodCondition {
    PodCondition {
        kind: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: None,
    }
}

pub(crate) fn set_main(view: &mut PodView, state: ContainerState) {
    let last = view.containers.first().and_then(|c| c.last_state.clone());
    let mut status = ContainerStatus::new("base", state);
    status.last_state = last;
    view.containers = vec![status];
}

impl World {
    pub(crate) fn draw_pull(&mut self) -> Pull {
        let c = &self.scenario.cluster;
        let (p, t) = (
            c.image_pull_permanent_failure_rate,
            c.image_pull_transient_failure_rate,
        );
        let roll: f64 = self.rng_kubelet.random();
        if roll < p {
            Pull::Permanent
        } else if roll < p + t {
            Pull::Transient
        } else {
            Pull::Ok
        }
    }

    pub(crate) fn step_later(&mut self, name: &str, delay: u64, step: PodStep) {
        if let Some(gen) = self.api.pods.get(name).map(|p| p.gen) {
            self.after(
                delay,
                Ev::Pod {
                    name: name.to_string(),
                    gen,
                    step,
                },
            );
        }
    }

    pub(crate) fn pod_step(&mut self, name: &str, gen: u64, step: PodStep) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        // A deletion or node loss replaced the plan this step belonged to.
        if pod.gen != gen {
            return;
        }
        // A lost node's kubelet does nothing; what was asked meanwhile is picked up when the node
        // returns (`nodes.rs`).
        if pod.node.is_some_and(|n| self.nodes[n].lost) {
            return;
        }
        let now = Timestamp(self.now);
        match step {
            PodStep::Schedule => {
                let free = self.nodes.most_free();
                let rejected = free.is_some()
                    && pod_kind(self, name) == Some(PodKind::Worker)
                    && self
                        .rng_kubelet
                        .random_bool(self.scenario.cluster.admission_rejection_rate);
                if let (true, Some(i)) = (rejected, free) {
                    // The kubelet's admission check refuses the pod: it fails without starting and
                    // stays in the API until it is deleted.
                    let node_name = self.nodes[i].name.clone();
                    self.update_pod(name, |p| {
                        p.node = Some(i);
                        p.view.node_name = Some(node_name);
                        p.view.phase = Some(PodPhase::Failed);
                        p.view.reason = Some("OutOfcpu".into());
                        p.view.message =
                            Some("Pod was rejected: Node didn't have enough resource: cpu".into());
                    });
                    return;
                }
                match free {
                    Some(i) => {
                        self.nodes.update(i, |n| n.used += 1);
                        let node_name = self.nodes[i].name.clone();
                        self.update_pod(name, |p| {
                            p.slot = true;
                            p.node = Some(i);
                            p.view.node_name = Some(node_name);
                            p.view.conditions =
                                vec![condition("PodScheduled", "True", "Scheduled")];
                            set_main(
                                &mut p.view,
                                ContainerState::Waiting {
                                    reason: Some("ContainerCreating".into()),
                                    message: None,
                                },
                            );
                        });
                        let pull = self.scenario.cluster.image_pull_ms;
                        let delay = if pod_kind(self, name) == Some(PodKind::Worker) {
                            pull
                        } else {
                            200
                        };
                        self.step_later(name, delay, PodStep::PullDone);
                    }
                    None => {
                        let already = self
                            .api
                            .pods
                            .get(name)
                            .is_some_and(|p| !p.view.conditions.is_empty());
                        if !already {
                            self.update_pod(name, |p| {
                                p.view.conditions =
                                    vec![condition("PodScheduled", "False", "Unschedulable")];
                            });
                        }
                        self.step_later(name, 5_000, PodStep::Schedule);
                    }
                }
            }
            PodStep::PullDone => match self.api.pods.get(name).map(|p| p.pull) {
                Some(Pull::Ok) | None => self.step_later(name, 100, PodStep::Start),
                Some(Pull::Transient | Pull::Permanent) => {
                    self.update_pod(name, |p| {
                        set_main(
                            &mut p.view,
                            ContainerState::Waiting {
                                reason: Some("ErrImagePull".into()),
                                message: Some("rpc error: code = Unknown desc = failed to pull and unpack image".into()),
                            },
                        );
                    });
                    self.step_later(name, 5_000, PodStep::PullBackOff);
                }
            },
            PodStep::PullBackOff => {
                let transient = self
                    .api
                    .pods
                    .get(name)
                    .is_some_and(|p| p.pull == Pull::Transient);
                self.update_pod(name, |p| {
                    set_main(
                        &mut p.view,
                        ContainerState::Waiting {
                            reason: Some("ImagePullBackOff".into()),
                            message: Some("Back-off pulling image".into()),
                        },
                    );
                    // The next pull works for a transient failure.
                    if p.pull == Pull::Transient {
                        p.pull = Pull::Ok;
                    }
                });
                let delay = if transient { 10_000 } else { 60_000 };
                self.step_later(name, delay, PodStep::PullDone);
            }
            PodStep::Start => {
                self.update_pod(name, |p| {
                    p.view.phase = Some(PodPhase::Running);
                    set_main(
                        &mut p.view,
                        ContainerState::Running {
                            started_at: Some(now),
                        },
                    );
                });
                let startup = self.scenario.cluster.task_startup_ms;
                self.step_later(name, startup, PodStep::TaskStarts);
            }
            PodStep::TaskStarts => self.task_starts(name),
            PodStep::TaskEnds { code } => self.task_ends(name, code),
            PodStep::Terminate => self.terminate(name),
            PodStep::StatusEcho => self.update_pod(name, |_| {}),
            PodStep::Remove => self.remove_pod(name),
        }
    }

    /// The task process starts: it runs only if its try is still QUEUED (Airflow 3's execution
    /// API refuses to start a try that is not), and says so in the DB.
    fn task_starts(&mut self, name: &str) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        let key = pod.key.clone();
        let kind = pod.kind;
        let Some(idx) = self.db.find(&key) else {
            return;
        };
        let ti = &self.db.tis[idx];
        // A served world's task process asks the shared DB, where the schedulers write.
        let runnable = kind != PodKind::Worker
            || (!self.db.outage
                && match self.served.as_mut() {
                    Some(served) => served.records.try_starts(&key),
                    None => {
                        ti.key.try_number == key.try_number && ti.state() == Some(TaskState::Queued)
                    }
                });
        if !runnable {
            // The runner finds its try already taken or finished and exits at once.
            self.step_later(name, 500, PodStep::TaskEnds { code: 0 });
            return;
        }
        if kind == PodKind::Worker {
            self.db.tis[idx].key.try_number = key.try_number;
            self.db.set_state(idx, Some(TaskState::Running));
            let ti = &mut self.db.tis[idx];
            ti.started.insert(key.try_number);
            ti.tries.started(key.try_number, self.now);
            ti.process_died_at = None;
        }
        self.update_pod(name, |p| {
            p.running_task = true;
            p.task_started = true;
        });
        let runtime = self.db.tis[idx].runtime_ms;
        let kpo = self.db.tis[idx].kpo && kind == PodKind::Worker;
        if kpo {
            // The operator's pod runs in its worker pod's namespace.
            let namespace = self.api.pods[name].view.namespace.clone();
            self.start_kpo_pod(&key, namespace);
        }
        let c = self.scenario.cluster.clone();
        let code = if self.rng_kubelet.random_bool(c.oom_kill_rate) {
            137
        } else if self
            .rng_kubelet
            .random_bool(self.scenario.load.failure_rate)
        {
            1
        } else {
            0
        };
        let at = if code == 137 { runtime / 2 } else { runtime };
        if kind == PodKind::Worker {
            self.step_later(name, at, PodStep::TaskEnds { code });
        }
    }

    fn start_kpo_pod(&mut self, key: &podwarden_core::TaskKey, namespace: String) {
        let stuck = self
            .rng_kubelet
            .random_bool(self.scenario.load.sidecar_stuck_rate);
        let name = format!(
            "kpo-{}-{}-try{}",
            key.task_id.replace('_', "-"),
            key.dag_id.replace('_', "-"),
            key.try_number
        );
        let mut view = PodView::new(namespace, name.clone());
        view.labels = key.to_labels();
        view.labels
            .insert(label::KUBERNETES_POD_OPERATOR.into(), label::TRUE.into());
        view.uid = format!("uid-{name}");
        view.phase = Some(PodPhase::Pending);
        view.creation_timestamp = Some(Timestamp(self.now));
        self.create_pod(SimPod {
            view,
            key: key.clone(),
            kind: PodKind::Kpo { stuck },
            node: None,
            running_task: false,
            task_started: false,
            gen: 0,
            pull: Pull::Ok,
            slot: false,
        });
    }

    fn task_ends(&mut self, name: &str, code: i32) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        let key = pod.key.clone();
        let ran = pod.running_task;
        let started_at = pod.view.containers.first().and_then(|c| match &c.state {
            ContainerState::Running { started_at } => *started_at,
            _ => None,
        });
        if ran {
            // The runner records its own end: success, or the task's own failure.
            if let (Some(served), 0 | 1) = (self.served.as_mut(), code) {
                served.records.try_ends(&key, code == 0);
            }
            if let Some(idx) = self.db.find(&key) {
                let same_try = self.db.tis[idx].key.try_number == key.try_number
                    && self.db.tis[idx].state() == Some(TaskState::Running);
                match code {
                    0 if same_try => {
                        self.db.set_state(idx, Some(TaskState::Success));
                        self.db.tis[idx].done_at = Some(self.now);
                        let now = self.now;
                        self.db.tis[idx]
                            .tries
                            .ended(key.try_number, now, true, "task exited 0");
                    }
                    // The task's own failure: the runner records it (a user retry).
                    1 if same_try => {
                        self.fail_try(idx, "task failed: exit code 1".into(), None);
                    }
                    // OOM-killed: the process died without a word (its heartbeats stop); the
                    // executor reports.
                    _ if same_try => self.db.tis[idx].process_died_at = Some(self.now),
                    _ => {}
                }
            }
        }
        let (reason, phase) = match code {
            0 => ("Completed", PodPhase::Succeeded),
            137 => ("OOMKilled", PodPhase::Failed),
            _ => ("Error", PodPhase::Failed),
        };
        self.update_pod(name, |p| {
            p.running_task = false;
            p.view.phase = Some(phase);
            set_main(
                &mut p.view,
                ContainerState::Terminated {
                    reason: Some(reason.into()),
                    message: None,
                    exit_code: code,
                    started_at,
                },
            );
        });
        // The operator's pod finishes with its task, unless its sidecar never exits.
        let kpo = format!(
            "kpo-{}-{}-try{}",
            key.task_id.replace('_', "-"),
            key.dag_id.replace('_', "-"),
            key.try_number
        );
        if let Some(k) = self.api.pods.get(&kpo) {
            if k.kind == (PodKind::Kpo { stuck: false }) && k.view.deletion_timestamp.is_none() {
                self.update_pod(&kpo, |p| p.view.phase = Some(PodPhase::Succeeded));
                self.step_later(&kpo, 1_000, PodStep::Remove);
            }
        }
    }

    /// Starts the deletion of a pod: deletionTimestamp (and the disruption condition, if any)
    /// first, then SIGTERM, then gone. `grace_s == 0` removes it at once (a force delete).
    pub(crate) fn delete_pod(&mut self, name: &str, grace_s: u32, disruption: Option<&str>) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        let terminal = matches!(pod.view.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
        let already = pod.view.deletion_timestamp.is_some();
        if grace_s == 0 {
            // Force-deleted: the process is killed without a word.
            self.process_dies(name);
            self.remove_pod(name);
            return;
        }
        if already {
            return;
        }
        let now = Timestamp(self.now);
        // The Eviction API (and the scheduler's preemption) marks the pod DisruptionTarget in
        // one update, then deletes it in the next.
        if let Some(reason) = disruption {
            self.update_pod(name, |p| {
                p.view
                    .conditions
                    .push(condition("DisruptionTarget", "True", reason))
            });
        }
        self.update_pod(name, |p| {
            p.gen += 1;
            p.view.deletion_timestamp = Some(now);
        });
        if terminal {
            self.step_later(name, 300, PodStep::Remove);
        } else {
            let delay = u64::from(grace_s.min(2)) * 500;
            self.step_later(name, delay.max(200), PodStep::Terminate);
        }
    }

    /// SIGTERM took effect: the container ends (143 if the task ran, "could not be located"
    /// 137 if it never started), the pod turns Failed, a duplicate update follows, then it goes.
    fn terminate(&mut self, name: &str) {
        let Some(pod) = self.api.pods.get(name) else {
            return;
        };
        let key = pod.key.clone();
        let ran = pod.running_task;
        let kind = pod.kind;
        let started_at = pod.view.containers.first().and_then(|c| match &c.state {
            ContainerState::Running { started_at } => *started_at,
            _ => None,
        });
        if ran {
            if let Some(idx) = self.db.find(&key) {
                let ti = &self.db.tis[idx];
                if kind == PodKind::Worker
                    && ti.key.try_number == key.try_number
                    && ti.state() == Some(TaskState::Running)
                {
                    // The task handles SIGTERM by failing its try.
                    self.fail_try(
                        idx,
                        "task got SIGTERM: its pod was deleted while it ran".into(),
                        None,
                    );
                }
            }
        }
        // From Kubernetes 1.27 the kubelet moves a deleted pod to a terminal phase before it goes;
        // before, the pod goes with its phase unchanged (Running, or Pending if it never started).
        let terminal_phase = self.scenario.cluster.kubernetes_minor >= 27;
        self.update_pod(name, |p| {
            p.running_task = false;
            if !matches!(p.view.phase, Some(PodPhase::Succeeded | PodPhase::Failed)) {
                if terminal_phase {
                    p.view.phase = Some(PodPhase::Failed);
                }
                let state = if ran {
                    ContainerState::Terminated {
                        reason: Some("Error".into()),
                        message: None,
                        exit_code: 143,
                        started_at,
                    }
                } else {
                    ContainerState::Terminated {
                        reason: Some("ContainerStatusUnknown".into()),
                        message: Some(
                            "The container could not be located when the pod was terminated".into(),
                        ),
                        exit_code: 137,
                        // Set if the container had started (its process died earlier).
                        started_at,
                    }
                };
                set_main(&mut p.view, state);
            }
        });
        self.step_later(name, 50, PodStep::StatusEcho);
        self.step_later(name, 400, PodStep::Remove);
    }
}

fn pod_kind(world: &World, name: &str) -> Option<PodKind> {
    world.api.pods.get(name).map(|p| p.kind)
}
