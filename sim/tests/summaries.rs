//! The summary of every shipped scenario at its own seed, reviewed by hand: a change in what a
//! scenario does must be a deliberate one.

use podwarden_sim::runner::{self, list, scenarios_dir};
use podwarden_sim::scenario::Scenario;

#[test]
fn every_shipped_scenario_summary() {
    let scenarios = list(&scenarios_dir()).expect("shipped scenarios");
    assert!(scenarios.len() >= 10, "{} scenarios", scenarios.len());
    for (name, _, path) in scenarios {
        let mut scenario = Scenario::load(&path.display().to_string()).expect("valid scenario");
        // Reproduce commands name the file as it was given; name it as a user at the
        // workspace root would, so the snapshot does not depend on where the checkout is.
        scenario.source = Some(format!("sim/scenarios/{name}.toml"));
        let expect_violation = scenario.policy != "default";
        let report = runner::run(scenario, None, None, None).expect("runs");
        assert_eq!(
            report.outcome.violation.is_some(),
            expect_violation,
            "{name}: {:?}",
            report
                .outcome
                .violation
                .as_ref()
                .map(|v| (&v.invariant, &v.detail))
        );
        let mut text = runner::to_text(&report);
        // The recent trace lines of a violation are long and add nothing to review here.
        if let Some(cut) = text.find("last trace lines:") {
            let tail = text[cut..]
                .find("trace hash")
                .map_or(text.len(), |i| cut + i);
            text.replace_range(cut..tail, "");
        }
        insta::assert_snapshot!(name.clone(), text);
    }
}
