//! `run`: one scenario, one seed, every invariant checked.

use super::args::{Format, RunArgs};
use super::exit::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{create_output, fill_output, print_out, write_failed_with};
use crate::runner;
use crate::sweep;

pub(super) fn run_scenario(lab: &Lab, args: &RunArgs) -> u8 {
    // As `sweep` does: the policy first, then the seed's draw over it.
    let mut scenario = match lab.load(&args.scenario, args.policy.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.swarm {
        let seed = args.seed.unwrap_or(scenario.seed);
        let (drawn, knobs) = sweep::swarm(&scenario, seed);
        eprintln!("swarm: {knobs}");
        scenario = drawn;
    }
    let plot = match args.plot.as_deref().map(create_output).transpose() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{} run: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let result = match (&args.plot, plot) {
        (Some(svg), Some(file)) => {
            runner::run_plotted(scenario, args.seed, None, args.trace.as_deref())
                .map_err(|e| e.to_string())
                .and_then(|(report, timeline)| {
                    fill_output(file, svg, &crate::plot::to_svg(&[&timeline]))?;
                    Ok(report)
                })
        }
        _ => {
            runner::run(scenario, args.seed, None, args.trace.as_deref()).map_err(|e| e.to_string())
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{} run: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let text = match args.format {
        Format::Text => runner::to_text(&report),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("{} run: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        },
    };
    let verdict = if report.outcome.violation.is_some() {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}
