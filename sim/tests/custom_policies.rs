//! Policies of your own in the simulator: a scenario carries them (`Scenario::extensions`), and
//! a rule that never declines changes nothing but the policy's name.

use std::sync::Arc;

use podwarden_core::policy::{
    AdoptionCandidate, AdoptionPolicy, FailureContext, Policies, RequeuePolicy,
};
use podwarden_sim::extensions::{CustomPolicy, Extensions};
use podwarden_sim::scenario::{Scenario, ScenarioError};
use podwarden_sim::trace::Trace;
use podwarden_sim::{sweep, World};

/// Says yes to everything.
#[derive(Debug)]
struct Yes;

impl RequeuePolicy for Yes {
    fn may_requeue(&self, _: &FailureContext<'_>) -> bool {
        true
    }
}

impl AdoptionPolicy for Yes {
    fn may_adopt(&self, _: &AdoptionCandidate<'_>) -> bool {
        true
    }
}

fn steady_ha() -> Scenario {
    Scenario::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/steady-ha.toml"
    ))
    .expect("a shipped scenario")
}

fn yes() -> CustomPolicy {
    let yes = Arc::new(Yes);
    CustomPolicy::new("yes", Policies::new().requeue(yes.clone()).adoption(yes))
}

/// Swarm seed 1 draws a requeue budget of 2: the invariants must check the custom policy's
/// world against that budget, not the default's (they once did, and `requeue_bounded` fired).
#[test]
fn a_policy_of_yours_that_never_declines_changes_nothing() {
    for seed in [1, 3] {
        let (ours, _) = sweep::swarm(&steady_ha(), seed);
        let mut yours = ours.clone();
        yours.policy = "yes".into();
        yours.extensions = Extensions::new().with_policy(yes());
        let run = |s: Scenario| {
            World::new(s, Some(seed), Trace::hashing())
                .expect("valid")
                .run()
        };
        let (a, b) = (run(ours), run(yours));
        assert_eq!(a.violation, None, "seed {seed}");
        assert_eq!(b.violation, None, "seed {seed}");
        assert_eq!(a.summary, b.summary, "seed {seed}");
        assert_eq!(a.trace_lines, b.trace_lines, "seed {seed}");
    }
}

#[test]
fn a_policy_of_yours_needs_its_code_and_its_own_name() {
    let mut s = Scenario {
        policy: "yes".into(),
        ..Scenario::default()
    };
    assert!(
        matches!(s.validate(), Err(ScenarioError::UnknownPolicy(p)) if p == "yes"),
        "named but not attached"
    );
    s.extensions = Extensions::new().with_policy(yes());
    assert!(s.validate().is_ok());
    s.extensions =
        Extensions::new().with_policy(CustomPolicy::new("airflow-10.25", Policies::new()));
    s.policy = "airflow-10.25".into();
    assert!(
        matches!(s.validate(), Err(ScenarioError::Invalid(m)) if m.contains("preset's name")),
        "a preset's name is taken"
    );
    s.extensions = Extensions::new().with_policy(yes().on_preset("nope"));
    s.policy = "yes".into();
    assert!(
        matches!(s.validate(), Err(ScenarioError::UnknownPolicy(p)) if p == "nope"),
        "an unknown preset under the rules"
    );
}
