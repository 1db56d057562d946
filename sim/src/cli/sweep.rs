//! `sweep`: many seeds on every core, and merging the shards' reports.

use std::io;

use super::args::{Format, SweepArgs};
use super::exit::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{print_out, write_failed_with};
use crate::sweep::{self, Shard, SweepReport, SweepSpec};

pub(super) fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds must be A..B, got {s:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad first seed {a:?}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad end seed {b:?}"))?;
    if b <= a {
        return Err(format!("--seeds {s}: the end must be above the start"));
    }
    Ok((a, b))
}

/// Worker threads for `--jobs`: every core by default; 0 is refused; more than 4 per core is
/// capped to that (each thread is a whole world, so more only costs memory), with a note.
pub(super) fn sweep_jobs(asked: Option<usize>) -> Result<(usize, Option<String>), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let most = cores.saturating_mul(MAX_JOBS_PER_CORE);
    match asked {
        None => Ok((cores, None)),
        Some(0) => Err("--jobs 0: give at least 1 worker thread".into()),
        Some(n) if n > most => Ok((
            most,
            Some(format!(
                "--jobs {n} capped to {most} ({MAX_JOBS_PER_CORE} per core, {cores} cores)"
            )),
        )),
        Some(n) => Ok((n, None)),
    }
}

/// `--jobs` above this many threads per core is capped.
const MAX_JOBS_PER_CORE: usize = 4;

pub(super) fn run_sweep(lab: &Lab, args: &SweepArgs) -> u8 {
    let report = if args.merge.is_empty() {
        let Some(path) = args.scenario.as_deref() else {
            eprintln!("{} sweep: a scenario is needed", lab.program);
            return EXIT_UNREADABLE;
        };
        let scenario = match lab.load(path, args.policy.as_deref()) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let parsed = parse_range(&args.seeds).and_then(|r| {
            let shard = args.shard.as_deref().map(str::parse::<Shard>).transpose()?;
            Ok((r, shard))
        });
        let ((first, end), shard) = match parsed {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        let jobs = match sweep_jobs(args.jobs) {
            Ok((jobs, note)) => {
                if let Some(note) = note {
                    eprintln!("{} sweep: {note}", lab.program);
                }
                jobs
            }
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        let spec = SweepSpec {
            first,
            end,
            jobs,
            shard,
            swarm: args.swarm,
            policy: None,
            progress: io::IsTerminal::is_terminal(&io::stderr()),
        };
        if spec.seed_count() > sweep::MAX_SEEDS_PER_PROCESS {
            eprintln!(
                "{} sweep: --seeds {}{} is {} seeds for this process, more than {}: split the \
                 range over machines with --shard i/n",
                lab.program,
                args.seeds,
                args.shard
                    .as_deref()
                    .map_or_else(String::new, |s| format!(" --shard {s}")),
                spec.seed_count(),
                sweep::MAX_SEEDS_PER_PROCESS
            );
            return EXIT_UNREADABLE;
        }
        match sweep::sweep(scenario, &spec) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    } else {
        let mut reports = Vec::new();
        for file in &args.merge {
            let parsed = std::fs::read_to_string(file)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<SweepReport>(&t).map_err(|e| e.to_string()));
            match parsed {
                Ok(r) => reports.push((file.display().to_string(), r)),
                Err(e) => {
                    eprintln!("{} sweep --merge: {}: {e}", lab.program, file.display());
                    return EXIT_UNREADABLE;
                }
            }
        }
        match sweep::merge_reports(reports, args.allow_partial) {
            Ok(merged) => {
                if let Some(warning) = merged.warning {
                    eprintln!("{} sweep --merge: warning: {warning}", lab.program);
                }
                merged.report
            }
            Err(e) => {
                eprintln!("{} sweep --merge: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        }
    };
    let text = match args.format {
        Format::Text => report.to_text(),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("{} sweep: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        },
    };
    let verdict = if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_VIOLATION
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}
