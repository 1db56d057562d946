//! Invariants of the user's own (`podwarden_sim::custom`): each kind fires when it should, with
//! the same reproduction command and trace as the built-in invariants, and stays quiet otherwise.

use podwarden_core::db::TaskState;
use podwarden_sim::custom::{Invariant, InvariantKind, WorldView};
use podwarden_sim::scenario::Scenario;
use podwarden_sim::trace::Trace;
use podwarden_sim::{RunOutcome, World};

/// No pod is deleted within 10 s of its creation.
struct NoHastyDelete;

impl Invariant for NoHastyDelete {
    fn name(&self) -> &str {
        "no_hasty_delete"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &WorldView<'_>) -> Result<(), String> {
        for pod in world.pods() {
            if let (Some(c), Some(d)) = (pod.creation_timestamp, pod.deletion_timestamp) {
                if d.since(c) < 10_000 {
                    return Err(format!(
                        "{} deleted {} ms after creation",
                        pod.name,
                        d.since(c)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// By the end, every task succeeded.
struct AllSucceed;

impl Invariant for AllSucceed {
    fn name(&self) -> &str {
        "all_succeed"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &WorldView<'_>) -> Result<(), String> {
        let failed = world
            .tasks()
            .filter(|(_, s)| *s == Some(TaskState::Failed))
            .count();
        if failed == 0 {
            Ok(())
        } else {
            Err(format!("{failed} tasks failed"))
        }
    }
}

/// Some pod's task ran at all (coverage).
struct SomeTaskRan;

impl Invariant for SomeTaskRan {
    fn name(&self) -> &str {
        "some_task_ran"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &WorldView<'_>) -> Result<(), String> {
        let ran = world.pods().any(|p| world.task_started_in(&p.name));
        if ran {
            Ok(())
        } else {
            Err("no task process started".into())
        }
    }
}

fn small() -> Scenario {
    Scenario {
        name: "custom".into(),
        duration_s: 120.0,
        heal_s: 120.0,
        ..Scenario::default()
    }
}

fn run(s: Scenario, inv: Box<dyn Invariant>) -> RunOutcome {
    World::new(s, Some(3), Trace::hashing())
        .expect("valid")
        .with_invariant(inv)
        .run()
}

#[test]
fn always_fires_at_the_event_with_a_reproduce_command() {
    let mut s = small();
    // Images that never pull: the executor deletes such pods at once.
    s.cluster.image_pull_permanent_failure_rate = 1.0;
    let v = run(s, Box::new(NoHastyDelete)).violation.expect("it fires");
    assert_eq!(v.invariant, "no_hasty_delete");
    assert!(v.detail.contains("ms after creation"), "{}", v.detail);
    assert!(v.reproduce.contains("--seed 3"), "{}", v.reproduce);
    assert!(!v.recent_trace.is_empty());
    let held = run(small(), Box::new(NoHastyDelete));
    assert!(held.violation.is_none());
    // The report says your invariant was checked too.
    assert_eq!(held.custom_invariants, ["no_hasty_delete"]);
    let report = podwarden_sim::runner::RunReport {
        scenario: "custom".into(),
        seed: 3,
        policy: "default".into(),
        outcome: held,
    };
    let text = podwarden_sim::runner::to_text(&report);
    assert!(
        text.contains("all 10 held (9 built-in; yours: no_hasty_delete)"),
        "{text}"
    );
}

#[test]
fn eventually_is_judged_at_the_end() {
    let mut s = small();
    s.load.failure_rate = 0.5;
    s.load.retries = 0;
    let out = run(s, Box::new(AllSucceed));
    let v = out.violation.expect("failed tasks");
    assert_eq!(v.invariant, "all_succeed");
    assert!(
        out.summary.failed > 0
            && v.detail
                .starts_with(&format!("{} tasks failed", out.summary.failed))
    );
    assert!(run(small(), Box::new(AllSucceed)).violation.is_none());
}

#[test]
fn sometimes_must_be_reached_by_the_end() {
    assert!(run(small(), Box::new(SomeTaskRan)).violation.is_none());
    let mut never = small();
    // Every pod rejected at admission: no task ever runs.
    never.cluster.admission_rejection_rate = 1.0;
    let v = run(never, Box::new(SomeTaskRan))
        .violation
        .expect("never reached");
    assert_eq!(v.invariant, "some_task_ran");
    assert!(v.detail.starts_with("never reached"), "{}", v.detail);
}

// Custom requeue policies (a weak one caught by the built-in invariants, a sound one holding)
// are worked through, with their tests, in `sim/examples/policy_kit.rs`.

#[test]
fn a_sweep_checks_your_invariants_in_every_world() {
    use podwarden_sim::extensions::{Extensions, InvariantFactory};
    use podwarden_sim::sweep::{sweep, SweepSpec};
    let mut s = small();
    s.cluster.image_pull_permanent_failure_rate = 1.0;
    s.extensions = Extensions::new()
        .with_invariants(InvariantFactory::new(|| {
            vec![Box::new(NoHastyDelete) as Box<dyn Invariant>]
        }))
        .with_program("my-lab");
    let spec = SweepSpec {
        first: 0,
        end: 4,
        jobs: 2,
        shard: None,
        swarm: false,
        policy: None,
        progress: false,
    };
    let report = sweep(s, &spec).expect("runs");
    assert_eq!(
        report.violations.get("no_hasty_delete"),
        Some(&4),
        "{report:?}"
    );
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.reproduce.starts_with("my-lab run ") && f.reproduce.contains("--seed")),
        "{:?}",
        report.failures
    );
}

#[test]
fn sweep_and_compare_summaries_name_your_invariants_when_they_hold() {
    use podwarden_sim::extensions::{Extensions, InvariantFactory};
    use podwarden_sim::sweep::{sweep, SweepSpec};
    let mut s = small();
    s.extensions = Extensions::new().with_invariants(InvariantFactory::new(|| {
        vec![Box::new(NoHastyDelete) as Box<dyn Invariant>]
    }));
    let spec = SweepSpec {
        first: 0,
        end: 2,
        jobs: 1,
        shard: None,
        swarm: false,
        policy: None,
        progress: false,
    };
    let report = sweep(s.clone(), &spec).expect("runs");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.custom_invariants, ["no_hasty_delete"]);
    let text = report.to_text();
    assert!(
        text.contains("no_hasty_delete              0 violations (yours)"),
        "{text}"
    );
    let report_of = |policy: &str| {
        podwarden_sim::runner::run(s.clone(), Some(3), Some(policy), None).expect("runs")
    };
    let table =
        podwarden_sim::comparison::side_by_side(&report_of("default"), &report_of("airflow-10.25"));
    let verdict = table
        .lines()
        .find(|l| l.starts_with("invariants "))
        .expect("a verdict row");
    assert_eq!(
        verdict.split_whitespace().collect::<Vec<_>>(),
        ["invariants", "all", "10", "held", "all", "10", "held"]
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["your", "invariants", "no_hasty_delete", "no_hasty_delete"]),
        "{table}"
    );
}
