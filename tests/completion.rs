//! The completion path (`airflow-executor.md` §3), one test per step.
mod support;

use podwarden::{Config, EventType, PodPhase, ReportedState};
use support::*;

#[test]
fn succeeded_pod_is_deleted_then_reported() {
    let mut h = Harness::new(Config::default());
    let k = key("t");
    let pod = h.launch(&k);
    let out = h.event(EventType::Modified, &with_phase(pod, PodPhase::Succeeded, "11"));
    assert_eq!(kinds(&out), ["DeletePod", "Report"]);
    assert_eq!(reports(&out), [(k.clone(), ReportedState::Succeeded, None)]);
    assert!(!h.ex.is_tracking(&k));
}
