//! `replay`: a trace run again line by line, or a recorded Kubernetes watch stream.

use std::io;
use std::path::PathBuf;

use super::args::{DbState, ReplayArgs};
use super::exit::{EXIT_BAD_LINES, EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{print_out, read_input, write_failed_with};

pub(super) fn run_kube_replay(lab: &Lab, args: &ReplayArgs, path: &PathBuf) -> u8 {
    use crate::kube_replay::{self, DbAssumption, KubeReplaySpec};
    let input = match read_input(path) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("{} replay: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let spec = KubeReplaySpec {
        scheduler_id: args.scheduler_id.clone(),
        db: match args.db_state {
            DbState::Infer => DbAssumption::Infer,
            DbState::Queued => DbAssumption::Queued,
            DbState::Running => DbAssumption::Running,
            DbState::None => DbAssumption::NoRow,
        },
        ..KubeReplaySpec::default()
    };
    if let Err(e) = podwarden_core::Config::validate_scheduler_id(&spec.scheduler_id) {
        eprintln!("{} replay: --scheduler-id: {e}", lab.program);
        return EXIT_UNREADABLE;
    }
    let (events, summary) = kube_replay::replay_kube_watch(&input, &spec);
    let mut text = String::new();
    for e in &events {
        match e {
            Ok(decisions) => {
                text += &serde_json::to_string(decisions).unwrap_or_default();
                text.push('\n');
            }
            Err(bad) => eprintln!("line {}: {}", bad.line, bad.error),
        }
    }
    text += &serde_json::to_string(&serde_json::json!({ "summary": &summary })).unwrap_or_default();
    text.push('\n');
    eprintln!(
        "{} events, {} malformed lines skipped, {} tries tracked: {} deletes, {} done labels, \
         {} requeues, {} creates, {} reports",
        summary.events,
        summary.malformed,
        summary.tries_tracked,
        summary.deleted.len(),
        summary.labelled_done.len(),
        summary.requeued.len(),
        summary.created.len(),
        summary.reported.len()
    );
    let verdict = if summary.malformed > 0 {
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

pub(super) fn run_replay(lab: &Lab, args: &ReplayArgs) -> u8 {
    let trace = match (&args.kube_watch, &args.trace) {
        (Some(path), _) => return run_kube_replay(lab, args, path),
        (None, Some(trace)) => trace,
        (None, None) => {
            eprintln!("{} replay: give a TRACE or --kube-watch FILE", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let file = match std::fs::File::open(trace) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "{} replay: cannot read {}: {e}",
                lab.program,
                trace.display()
            );
            return EXIT_UNREADABLE;
        }
    };
    let (text, verdict) =
        match crate::replay::replay(io::BufReader::new(file), |s| lab.attach(s, None)) {
            Ok(report) => match &report.divergence {
                None => (
                    format!(
                        "replay matches: {} lines, trace hash {}\n",
                        report.lines, report.hash
                    ),
                    EXIT_OK,
                ),
                Some(d) => (
                    format!(
                        "replay diverges at line {} (after {} matching lines)\n  expected: {}\n  actual:   {}\n",
                        d.line,
                        report.lines,
                        d.expected.as_deref().unwrap_or("(end of trace)"),
                        d.actual.as_deref().unwrap_or("(end of run)")
                    ),
                    EXIT_VIOLATION,
                ),
            },
            Err(e) => {
                eprintln!("{} replay: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
    if let Err(e) = print_out(&text) {
        return write_failed_with(&e, verdict);
    }
    verdict
}
