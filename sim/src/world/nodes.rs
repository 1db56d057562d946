//! Nodes, and what Kubernetes does when one is lost (the node lifecycle controller, taint-based
//! eviction and pod GC; `docs/simulator.md`, "Nodes and kubelets"):
//!
//! 1. the node stops: its kubelet no longer reports, its task processes die with the VM;
//! 2. after `node_monitor_grace_s` the node controller marks it NotReady and taints it
//!    `node.kubernetes.io/unreachable:NoExecute`; its pods get `Ready=False`;
//! 3. after `toleration_s` more (the DefaultTolerationSeconds admission plugin's 300 s) the taint
//!    manager evicts them: `DisruptionTarget` (`DeletionByTaintManager`), then a graceful
//!    deletion that no kubelet confirms, so the pods stay Terminating with their phase unchanged.
//!    A deletion asked for by anyone else (the executor, a storm) is left Terminating the same way;
//! 4. after `duration_s` the node comes back (`returns`): its kubelet finds the containers gone,
//!    finishes every deletion asked for meanwhile, fails the pods that were running, and pulls
//!    again for the pods that had not started; or its Node object is deleted and pod GC
//!    force-deletes every pod bound to it (`DisruptionTarget` `DeletionByPodGC` and phase Failed
//!    first, from Kubernetes 1.27; before, only the deletion), and an empty replacement joins.

use podwarden_core::{ContainerState, PodPhase, Timestamp};

use super::cluster::PodKind;
use super::event::{Ev, NodeStep, PodStep};
use super::kubelet::{condition, set_main};
use super::World;
use crate::time::secs;

impl World {
    /// The names of the pods bound to `node`.
    pub(crate) fn pods_on(&self, node: usize) -> Vec<String> {
        self.api
            .pods
            .values()
            .filter(|p| p.node == Some(node))
            .map(|p| p.view.name.clone())
            .collect()
    }

    /// A node stops for `duration_s`: its task processes die silently and its pods freeze. The
    /// control plane's steps follow (see the module documentation). A node already lost stays
    /// lost as planned.
    pub(crate) fn lose_node(&mut self, node: usize, duration_s: f64, returns: bool) {
        if self.nodes.get(node).is_none_or(|n| n.lost) {
            return;
        }
        let Some(epoch) = self.nodes.update(node, |n| {
            n.lost = true;
            n.epoch += 1;
            n.epoch
        }) else {
            return;
        };
        self.summary.node_losses += 1;
        for name in self.pods_on(node) {
            self.process_dies(&name);
        }
        let c = &self.scenario.cluster;
        let grace = secs(c.node_monitor_grace_s);
        let toleration = secs(c.toleration_s);
        let node = node as u32;
        self.after(
            grace,
            Ev::Node {
                node,
                epoch,
                step: NodeStep::NotReady,
            },
        );
        self.after(
            grace.saturating_add(toleration),
            Ev::Node {
                node,
                epoch,
                step: NodeStep::TaintEviction,
            },
        );
        let step = if returns {
            NodeStep::Returns
        } else {
            NodeStep::Deleted
        };
        self.after(secs(duration_s).max(1), Ev::Node { node, epoch, step });
    }

    /// The task process of pod `name` dies without a word (its VM is gone): it writes nothing,
    /// and its task instance stops heartbeating.
    pub(crate) fn process_dies(&mut self, name: &str) {
        let Some(pod) = self.api.pods.get_mut(name) else {
            return;
        };
        if !pod.running_task {
            return;
        }
        pod.running_task = false;
        let key = pod.key.clone();
        let worker = pod.kind == PodKind::Worker;
        if worker {
            self.db.process_died(&key, self.now);
        }
    }

    pub(crate) fn node_step(&mut self, node: u32, epoch: u32, step: NodeStep) {
        let i = node as usize;
        if self
            .nodes
            .get(i)
            .is_none_or(|n| !n.lost || n.epoch != epoch)
        {
            return;
        }
        let now = Timestamp(self.now);
        match step {
            NodeStep::NotReady => {
                for name in self.pods_on(i) {
                    self.update_pod(&name, |p| {
                        if !is_terminal(p.view.phase) {
                            p.view
                                .conditions
                                .push(condition("Ready", "False", "NodeNotReady"));
                        }
                    });
                }
            }
            NodeStep::TaintEviction => {
                for name in self.pods_on(i) {
                    let deleting = self
                        .api
                        .pods
                        .get(&name)
                        .is_some_and(|p| p.view.deletion_timestamp.is_some());
                    if deleting {
                        continue;
                    }
                    self.update_pod(&name, |p| {
                        p.view.conditions.push(condition(
                            "DisruptionTarget",
                            "True",
                            "DeletionByTaintManager",
                        ));
                    });
                    // A graceful deletion no kubelet will confirm: the pod stays Terminating.
                    self.update_pod(&name, |p| {
                        p.gen += 1;
                        p.view.deletion_timestamp = Some(now);
                    });
                }
            }
            NodeStep::Returns => self.node_returns(i),
            NodeStep::Deleted => self.node_deleted(i),
        }
    }

    /// The node is back; its kubelet reconciles every pod bound to it.
    fn node_returns(&mut self, i: usize) {
        self.nodes.update(i, |n| n.lost = false);
        let pull = self.scenario.cluster.image_pull_ms;
        for name in self.pods_on(i) {
            let Some(pod) = self.api.pods.get(&name) else {
                continue;
            };
            let deleting = pod.view.deletion_timestamp.is_some();
            let phase = pod.view.phase;
            if deleting {
                if is_terminal(phase) {
                    self.step_later(&name, 300, PodStep::Remove);
                } else {
                    // The kubelet finishes the deletion asked for while it was away.
                    self.step_later(&name, 200, PodStep::Terminate);
                }
                continue;
            }
            let started = matches!(
                pod.view.containers.first().map(|c| &c.state),
                Some(ContainerState::Running { .. })
            );
            match phase {
                Some(PodPhase::Running) | Some(PodPhase::Pending) if started => {
                    // The containers are gone with the old VM: the pod fails (restart policy
                    // Never), on any Kubernetes version.
                    self.update_pod(&name, |p| {
                        p.gen += 1;
                        let started_at = p.view.containers.first().and_then(|c| match &c.state {
                            ContainerState::Running { started_at } => *started_at,
                            _ => None,
                        });
                        p.view.phase = Some(PodPhase::Failed);
                        set_main(
                            &mut p.view,
                            ContainerState::Terminated {
                                reason: Some("ContainerStatusUnknown".into()),
                                message: Some(
                                    "The container could not be located when the pod was terminated"
                                        .into(),
                                ),
                                exit_code: 137,
                                started_at,
                            },
                        );
                    });
                }
                Some(PodPhase::Pending) => {
                    // Not started yet: the kubelet pulls the image again.
                    if let Some(p) = self.api.pods.get_mut(&name) {
                        p.gen += 1;
                    }
                    self.step_later(&name, pull.max(100), PodStep::PullDone);
                }
                _ => {}
            }
        }
    }

    /// The Node object is deleted: pod GC force-deletes every pod bound to it, and an empty
    /// replacement node joins under a new name.
    fn node_deleted(&mut self, i: usize) {
        let marks_failed = self.scenario.cluster.kubernetes_minor >= 27;
        for name in self.pods_on(i) {
            if marks_failed {
                self.update_pod(&name, |p| {
                    if !is_terminal(p.view.phase) {
                        p.view.phase = Some(PodPhase::Failed);
                        p.view.conditions.push(condition(
                            "DisruptionTarget",
                            "True",
                            "DeletionByPodGC",
                        ));
                    }
                });
            }
            self.remove_pod(&name);
        }
        self.nodes.update(i, |n| {
            n.lost = false;
            n.used = 0;
            n.cordoned = false;
            n.name = format!("node-{i}-{}", n.epoch);
        });
    }
}

fn is_terminal(phase: Option<PodPhase>) -> bool {
    matches!(phase, Some(PodPhase::Succeeded | PodPhase::Failed))
}
