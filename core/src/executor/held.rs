//! Work the executor holds between inputs, kept apart from the code that drives it: a zombie
//! sweep's lists as they come in, and reports that wait for a pod's clean-up.

use crate::command::ReportedState;
use crate::key::TaskKey;
use crate::pod::PodView;

/// A sweep in flight: its lists (one per watched scope) and then its DB question.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct ZombieSweep {
    /// Lists not yet answered.
    pub(super) lists_unanswered: usize,
    /// Pod-operator pods listed so far, not already being deleted.
    pub(super) candidates: Vec<PodView>,
}

/// A try whose reports wait until its pod's clean-up call has ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ReportGate {
    /// The try.
    pub(super) key: TaskKey,
    /// Its reports, in order.
    pub(super) held: Vec<(ReportedState, Option<String>)>,
}
