//! Airflow's multi-namespace mode in the simulated world (`multi-namespace`: one watch per
//! listed namespace; `all-namespaces`: one watch across all). The invariants must see every
//! namespace: the legacy adoption (Airflow 10.15's `all_others`), whose lists cover the watched
//! namespaces, thrashes live schedulers' pods that are none of them in the configured
//! `namespace`, and the default policy holds on the same seeds.

mod support;

use podwarden_sim::runner;
use podwarden_sim::scenario::Scenario;
use support::{run, shipped};

/// `scenario` with every task in `etl` or `ml`: no pod is in the configured `namespace`.
fn outside_the_default_namespace(mut scenario: Scenario) -> Scenario {
    scenario.load.namespaces = vec!["etl".into(), "ml".into()];
    scenario
}

fn thrash_fires_and_default_holds(scenario: &Scenario) {
    for seed in 0..3 {
        let bad = run(scenario, seed, "legacy-adoption");
        let fired = bad.outcome.violation.as_ref().map(|v| v.invariant.as_str());
        assert_eq!(
            fired,
            Some("no_thrash"),
            "{} seed {seed}: the legacy adoption (Airflow 10.15's) takes live schedulers' pods in \
             the watched namespaces\n{}",
            scenario.name,
            runner::to_text(&bad)
        );
        let good = run(scenario, seed, "default");
        assert!(
            good.outcome.violation.is_none(),
            "{} seed {seed}: the default policy holds\n{}",
            scenario.name,
            runner::to_text(&good)
        );
        assert!(
            good.outcome.summary.succeeded > 0 && good.outcome.summary.unfinished == 0,
            "{} seed {seed}: tasks ran\n{}",
            scenario.name,
            runner::to_text(&good)
        );
    }
}

#[test]
fn adoption_lists_reach_every_listed_namespace() {
    thrash_fires_and_default_holds(&outside_the_default_namespace(shipped("multi-namespace")));
}

#[test]
fn adoption_lists_reach_every_namespace_without_a_list() {
    thrash_fires_and_default_holds(&outside_the_default_namespace(shipped("all-namespaces")));
}

#[test]
fn a_task_namespace_the_executors_do_not_watch_is_refused_with_its_field() {
    let mut scenario = shipped("multi-namespace");
    scenario.load.namespaces = vec!["etl".into(), "finance".into()];
    let err = scenario.validate().unwrap_err().to_string();
    assert!(
        err.contains("load.namespaces[1] is \"finance\", which the executors do not watch"),
        "{err}"
    );
}
