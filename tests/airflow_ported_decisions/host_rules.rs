//! podwarden's own: the host's rules (`podwarden::policy`) over requeue and adoption.

use podwarden::liveness::JobState;
use podwarden::{ApiOutcome, EventType, PodPhase, PodView, TaskKey};

use crate::common::*;
use crate::support::*;

/// A rule that declines whatever it is asked about, and counts how often it was asked.
#[derive(Debug, Default)]
struct Decline(std::sync::atomic::AtomicUsize);

impl Decline {
    fn asked(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn ask(&self) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        false
    }
}

impl podwarden::policy::RequeuePolicy for Decline {
    fn may_requeue(&self, _: &podwarden::policy::FailureContext<'_>) -> bool {
        self.ask()
    }
}

/// Declines only the completed pod named `one` and the orphan of task `a`.
#[derive(Debug)]
struct DeclineSome;

impl podwarden::policy::AdoptionPolicy for DeclineSome {
    fn may_adopt(&self, c: &podwarden::policy::AdoptionCandidate<'_>) -> bool {
        use podwarden::policy::AdoptionPath;
        match c.path {
            AdoptionPath::Completed => c.pod.name != "one",
            _ => c.key.task_id != "a",
        }
    }
}

fn with_rules(h: &mut Harness, rules: podwarden::policy::Policies) {
    h.ex = h.ex.clone().with_policies(rules);
}

/// A launched try under a requeue rule that declines everything.
fn launched_under_a_declining_requeue_rule() -> (Harness, std::sync::Arc<Decline>, TaskKey, PodView)
{
    let mut h = Harness::new(retries(1));
    let rule = std::sync::Arc::new(Decline::default());
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().requeue(rule.clone()),
    );
    let k = key("task");
    let pod = h.launch(&k);
    (h, rule, k, pod)
}

/// A requeue rule's veto fails the try at once, where podwarden's rules alone would ask the DB
/// and requeue; the rule is asked once per pod failure, not per event.
#[test]
fn a_requeue_rule_vetoes_a_requeue() {
    let (mut h, rule, k, pod) = launched_under_a_declining_requeue_rule();
    let out = h.event(EventType::Modified, &failed_before_start(&pod, "11"));
    assert!(queries(&out).is_empty(), "no DB question: {out:?}");
    assert!(requeues(&out).is_empty());
    assert_failed(&out, &k, "ContainerStatusUnknown");
    let again = h.event(EventType::Deleted, &failed_before_start(&pod, "12"));
    assert!(reports(&again).is_empty(), "one failure, one outcome");
    assert_eq!(rule.asked(), 1);
    assert!(!h.ex.is_tracking(&k));
}

/// The rule is not asked when podwarden's own rules already say no (the task's own error).
#[test]
fn a_requeue_rule_is_not_asked_when_podwarden_says_no() {
    let (mut h, rule, k, pod) = launched_under_a_declining_requeue_rule();
    let out = h.event(EventType::Modified, &failed_with_error(&pod));
    assert_failed(&out, &k, "Error");
    assert_eq!(rule.asked(), 0);
}

/// A completed pod the adoption rule declines is not relabelled (so never deleted); the others
/// are adopted as usual.
#[test]
fn an_adoption_rule_declines_a_completed_pod() {
    let mut h = Harness::with_id(ported_config(), "modified");
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().adoption(std::sync::Arc::new(DeclineSome)),
    );
    let out = one_and_two_dead(&mut h);
    let l = only_list(&out);
    let (k1, k2) = (key("one"), key("two"));
    let one = pod_of("default", "one", &k1, "one", PodPhase::Succeeded);
    let two = pod_of("default", "two", &k2, "two", PodPhase::Succeeded);
    let out = h.answer(l.id, listed(vec![one, two.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1, "{out:?}");
    assert_eq!(p[0].pod, two.pod_ref());
}

/// An orphan whose pod the adoption rule declines is reset, as one with no pod; the other
/// orphan of the hand-over is adopted.
#[test]
fn an_adoption_rule_declines_an_orphan() {
    let mut h = Harness::with_id(ported_config(), "10");
    with_rules(
        &mut h,
        podwarden::policy::Policies::new().adoption(std::sync::Arc::new(DeclineSome)),
    );
    let out = heartbeats(&mut h, &[("10", JobState::Running)]);
    h.answer(only_list(&out).id, listed(vec![]));
    let (a, b) = (key("a"), key("b"));
    let out = adopt(&mut h, vec![orphan(&a, Some("1")), orphan(&b, Some("1"))]);
    let l = lists(&out);
    h.answer(l[1].id, listed(vec![]));
    let pa = pod_of("default", "pa", &a, "1", PodPhase::Running);
    let pb = pod_of("default", "pb", &b, "1", PodPhase::Running);
    let out = h.answer(l[0].id, listed(vec![pa, pb.clone()]));
    let p = patches(&out);
    assert_eq!(p.len(), 1, "{out:?}");
    assert_eq!(p[0].pod, pb.pod_ref());
    let out = h.answer(p[0].id, ApiOutcome::Ok);
    assert_eq!(resolved(&out), [(vec![b.clone()], vec![a.clone()])]);
    assert!(h.ex.is_tracking(&b) && !h.ex.is_tracking(&a));
}
