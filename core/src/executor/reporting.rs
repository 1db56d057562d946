//! A try's end reported to the scheduler: at once, or held while the report fence is up or the
//! try's hand-over is still open.

use super::Executor;
use crate::command::Notice;
use crate::command::ReportedState;
use crate::key::TaskKey;

impl Executor {
    /// Emits a try's end, or holds it while the try's hand-over is still open (in Airflow the
    /// hand-over is one transaction and the scheduler reads executor events after it commits).
    pub(super) fn emit_report(
        &mut self,
        key: TaskKey,
        state: ReportedState,
        reason: Option<String>,
    ) {
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
