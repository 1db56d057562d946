//! `check-determinism`: one seed run twice here and twice in fresh processes.

use super::args::CheckArgs;
use super::exit::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{print_out, write_failed_with};
use crate::runner;

pub(super) fn run_check(lab: &Lab, args: &CheckArgs) -> u8 {
    let scenario = match lab.load(&args.scenario, args.policy.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut hashes = Vec::new();
    for _ in 0..2 {
        match runner::run(scenario.clone(), args.seed, None, None) {
            Ok(r) => hashes.push(("in process", r.outcome.trace_hash)),
            Err(e) => {
                eprintln!("{} check-determinism: {}", lab.program, lab.describe(&e));
                return EXIT_UNREADABLE;
            }
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "{} check-determinism: cannot find this program: {e}",
                lab.program
            );
            return EXIT_UNREADABLE;
        }
    };
    for _ in 0..2 {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["run", &args.scenario, "--format", "json"]);
        if let Some(seed) = args.seed {
            cmd.args(["--seed", &seed.to_string()]);
        }
        if let Some(policy) = &args.policy {
            cmd.args(["--policy", policy]);
        }
        let hash = cmd
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["outcome"]["trace_hash"].as_str().map(str::to_string));
        match hash {
            Some(h) => hashes.push(("separate process", h)),
            None => {
                eprintln!(
                    "{} check-determinism: a child run produced no report",
                    lab.program
                );
                return EXIT_UNREADABLE;
            }
        }
    }
    let mut text: String = hashes
        .iter()
        .map(|(where_, h)| format!("{where_:<18} {h}\n"))
        .collect();
    let verdict = if hashes.iter().all(|(_, h)| *h == hashes[0].1) {
        text += "deterministic\n";
        EXIT_OK
    } else {
        text += "NOT deterministic\n";
        EXIT_VIOLATION
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}
