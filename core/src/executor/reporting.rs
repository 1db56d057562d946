//! A try's end reported to the scheduler: at once, or held while the report fence is up, the
//! try's hand-over is still open, or (Airflow's order, `report_before_pod_cleanup = false`) its
//! pod's clean-up is on its way.

use super::Executor;
use crate::command::Notice;
use crate::command::ReportedState;
use crate::key::TaskKey;
use crate::pod::PodRef;

use super::held::ReportGate;

impl Executor {
    /// Emits a try's end, or holds it while the try's hand-over is still open (in Airflow the
    /// hand-over is one transaction and the scheduler reads executor events after it commits).
    pub(super) fn emit_report(
        &mut self,
        key: TaskKey,
        state: ReportedState,
        reason: Option<String>,
    ) {
        if let Some(gate) = self
            .reports_after_cleanup
            .values_mut()
            .find(|g| g.key == key)
        {
            gate.held.push((state, reason));
            return;
        }
        let report = Notice::Report { key, state, reason };
        if let Some(held) = self.fenced_reports.as_mut() {
            held.push(report);
        } else if let Some(round) = self
            .orphan_rounds
            .values_mut()
            .find(|r| matches!(&report, Notice::Report { key, .. } if r.adopted.contains(key)))
        {
            round.held_reports.push(report);
        } else {
            self.emit(report);
        }
    }
}

impl Executor {
    /// Under Airflow's order (`report_before_pod_cleanup = false`), holds `key`'s reports until
    /// the clean-up of `pod` just started has ended.
    pub(super) fn gate_reports_on_cleanup(&mut self, key: &TaskKey, pod: &PodRef) {
        if self.config.report_before_pod_cleanup {
            return;
        }
        self.reports_after_cleanup.insert(
            pod.clone(),
            ReportGate {
                key: key.clone(),
                held: Vec::new(),
            },
        );
    }

    /// The clean-up of `pod` has ended (done, the pod gone, or given up): the reports it held
    /// go.
    pub(super) fn release_reports(&mut self, pod: &PodRef) {
        if self.reports_after_cleanup.is_empty() {
            return;
        }
        if let Some(gate) = self.reports_after_cleanup.remove(pod) {
            for (state, reason) in gate.held {
                self.emit_report(gate.key.clone(), state, reason);
            }
        }
    }
}
