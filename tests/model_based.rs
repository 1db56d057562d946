//! Model-based property test: the real `Executor` and the reference model
//! (`tests/model/reference.rs`) are driven by the same generated inputs (submissions, create answers, pod events with
//! replays and deletions, DB answers, heartbeat snapshots, time steps), and after every step
//! their decisions must agree: the same creates, deletes, done labels, DB questions, requeues,
//! reports and completed-pod lists, and the same number of tracked tries and pod records.
//!
//! Inputs pick their target by index modulo what exists ("the 3rd pending create"), so every
//! generated sequence is valid and proptest shrinks it to the few steps that matter; time is a
//! generated step like any other.
//!
//! The parts live in `tests/model/` (see its module doc): the model, the executor's driver, the
//! step type and how it applies, and the generators. This file holds the properties.

mod model;
mod support;

use model::strategies::op_sequences;
use model::sut::Run;
use model::transition::Op;
use podwarden::Config;
use proptest::prelude::*;

/// Runs `ops` on an executor built with `config` next to the model; `Err` at the first
/// disagreement.
fn agree(config: Config, ops: &[Op]) -> Result<(), String> {
    let mut run = Run::new(config);
    for op in ops {
        run.apply(op)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// After every step, the executor and the model decide the same.
    #[test]
    fn the_executor_decides_as_the_model(ops in op_sequences()) {
        if let Err(e) = agree(model::model_config(), &ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Searches `cases` deterministic generated cases for a disagreement between an executor built
/// with `config` and the model; returns the shrunk case and why it disagrees.
fn search(config: &Config, cases: u32) -> Option<(String, Vec<Op>)> {
    use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    match runner.run(&op_sequences(), |ops| {
        agree(config.clone(), &ops).map_err(TestCaseError::fail)
    }) {
        Err(TestError::Fail(reason, minimal)) => Some((reason.to_string(), minimal)),
        _ => None,
    }
}

/// Negative control: an executor with Airflow's requeue bookkeeping (last-pod dedupe, failed
/// pods left unlabelled) is not what the model describes; the search finds it and shrinks it.
#[test]
fn the_comparison_fires_on_airflow_bookkeeping() {
    use podwarden::requeue::RequeueDedupe;
    let airflow = Config {
        pod_launch_failure_dedupe: RequeueDedupe::LastPod,
        label_kept_failed_pods_done: false,
        ..model::model_config()
    };
    let (reason, minimal) = search(&airflow, 2_000).expect("a disagreement");
    assert!(
        minimal.len() <= 8,
        "shrunk to a short case: {} steps, {minimal:?} ({reason})",
        minimal.len()
    );
}

/// Negative control: an executor whose requeue budget is one more than the model's. Finding it
/// takes a try whose pods fail before starting three times, the first two answered QUEUED: the
/// search must reach deep sequences, not only short ones.
#[test]
fn the_comparison_fires_on_an_off_by_one_budget() {
    let generous = Config {
        pod_launch_failure_retries: i64::from(model::REQUEUE_BUDGET) + 1,
        ..model::model_config()
    };
    let (reason, minimal) = search(&generous, 5_000).expect("a disagreement");
    // The executor asks the DB about a third pre-start failure where the model reports it.
    assert!(
        reason.contains("executor decided") && reason.contains("Ask"),
        "the third failure is the difference: {reason}"
    );
    assert!(minimal.len() <= 16, "shrunk: {minimal:?}");
}

/// The generator reaches every rule: over a fixed set of cases, every kind of decision occurs,
/// including a second requeue, a live peer kept out of adoption, and a failed heartbeat read.
#[test]
fn the_generator_reaches_every_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = op_sequences();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let ops = strategy.new_tree(&mut runner).expect("a case").current();
        let mut run = Run::new(model::model_config());
        for op in &ops {
            run.apply(op).expect("the model agrees");
        }
        seen.extend(run.seen.iter().cloned());
    }
    for kind in [
        "Create",
        "Delete",
        "MarkDone",
        "Ask",
        "Requeue 1",
        "Requeue 2",
        "Report succeeded",
        "Report failed",
        "AdoptCompleted self only",
        "AdoptCompleted with a live peer",
    ] {
        assert!(
            seen.contains(kind),
            "never reached: {kind} (reached {seen:?})"
        );
    }
}
