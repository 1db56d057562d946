//! The zombie sweep (`docs/decisions.md`, "Zombie sweep"): pod-operator pods whose task is over but whose sidecar never exits,
//! found every `kpo_zombie_pod_cleanup_interval` and force-deleted.

use super::awaiting::Awaiting;
use super::held::ZombieSweep;
use super::Executor;
use crate::command::ApiOutcome;
use crate::command::{ApiCall, DbQuery};
use crate::db::DbOutcome;
use crate::label;
use crate::pod::PodView;
use crate::selector::LabelSelector;
use crate::time::TimerKind;
use crate::zombie;

impl Executor {
    pub(super) fn start_zombie_sweep(&mut self) {
        self.timers.set(
            TimerKind::ZombieSweep,
            self.clock.now().plus_ms(self.settings.zombie_interval_ms),
        );
        if self.zombie_sweep.is_some() {
            return;
        }
        let scopes = self.watch.scopes();
        self.zombie_sweep = Some(ZombieSweep {
            lists_unanswered: scopes.len(),
            candidates: Vec::new(),
        });
        // One list per watched scope; the sweep's DB question and its delete cap cover them all.
        for scope in scopes {
            let kind = ApiCall::ListPods {
                namespace: scope,
                label_selector: LabelSelector::new()
                    .eq(label::KUBERNETES_POD_OPERATOR, label::TRUE),
                field_selector: None,
            };
            self.emit_api(kind, Awaiting::ZombieList);
        }
    }

    pub(super) fn on_zombie_list(&mut self, outcome: ApiOutcome) {
        let Some(sweep) = self.zombie_sweep.as_mut() else {
            return;
        };
        sweep.lists_unanswered = sweep.lists_unanswered.saturating_sub(1);
        // A failed list leaves its scope for the next sweep.
        if let ApiOutcome::Listed { pods, .. } = outcome {
            let deleting = &self.zombie_deletes;
            sweep.candidates.extend(
                pods.into_iter()
                    .filter(|p| !deleting.contains(&p.pod_ref())),
            );
        }
        if sweep.lists_unanswered > 0 {
            return;
        }
        let candidates = std::mem::take(&mut sweep.candidates);
        if candidates.is_empty() {
            self.zombie_sweep = None;
            return;
        }
        self.emit_query(
            DbQuery::QueryUnfinishedTasks,
            Awaiting::ZombieQuery { candidates },
        );
    }

    pub(super) fn on_unfinished_tasks(&mut self, candidates: &[PodView], outcome: DbOutcome) {
        self.zombie_sweep = None;
        // No DB answer, no deletion.
        let DbOutcome::UnfinishedTasks { tasks } = outcome else {
            return;
        };
        let cap = usize::try_from(self.config.kpo_zombie_pod_cleanup_max_deletes_per_loop)
            .unwrap_or(usize::MAX);
        for (pod, _why) in zombie::find_zombies(candidates, &tasks, cap) {
            self.zombie_deletes.insert(pod.clone());
            let kind = ApiCall::DeletePod {
                pod: pod.clone(),
                grace_period_seconds: Some(0),
            };
            self.emit_api(kind, Awaiting::ZombieDelete { pod });
        }
    }
}
