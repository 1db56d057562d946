//! `compare`: one scenario and seed under two policies, side by side.

use super::args::{CompareArgs, Format};
use super::exit::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{create_output, fill_output, print_out, write_failed_with};
use crate::{comparison, runner};

pub(super) fn run_compare(lab: &Lab, args: &CompareArgs) -> u8 {
    if args.policy.len() != 2 {
        eprintln!(
            "{} compare: give exactly two --policy options, got {}",
            lab.program,
            args.policy.len()
        );
        return EXIT_UNREADABLE;
    }
    let scenario = match lab.load(&args.scenario, None) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let plot = match args.plot.as_deref().map(create_output).transpose() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{} compare: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let mut reports = Vec::new();
    let mut timelines = Vec::new();
    for policy in &args.policy {
        let mut scenario = scenario.clone();
        lab.attach(&mut scenario, Some(policy));
        let result = if args.plot.is_some() {
            runner::run_plotted(scenario, args.seed, None, None).map(|(r, t)| {
                timelines.push(t);
                r
            })
        } else {
            runner::run(scenario, args.seed, None, None)
        };
        match result {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("{} compare: {}", lab.program, lab.describe(&e));
                return EXIT_UNREADABLE;
            }
        }
    }
    if let (Some(svg), Some(file)) = (&args.plot, plot) {
        let all: Vec<&crate::plot::Timeline> = timelines.iter().collect();
        if let Err(e) = fill_output(file, svg, &crate::plot::to_svg(&all)) {
            eprintln!("{} compare: {e}", lab.program);
            return EXIT_UNREADABLE;
        }
    }
    let verdict = if reports.iter().any(|r| r.outcome.violation.is_some()) {
        EXIT_VIOLATION
    } else {
        EXIT_OK
    };
    let text = match args.format {
        Format::Text => comparison::side_by_side(&reports[0], &reports[1]),
        Format::Json => {
            let both = comparison::Comparison {
                scenario: &reports[0].scenario,
                seed: reports[0].seed,
                runs: [&reports[0], &reports[1]],
            };
            match serde_json::to_string_pretty(&both) {
                Ok(json) => json + "\n",
                Err(e) => {
                    eprintln!("{} compare: {e}", lab.program);
                    return EXIT_UNREADABLE;
                }
            }
        }
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}
