//! `replay`: a trace run again line by line, or a recorded Kubernetes watch stream.

use std::io::{self, Write};
use std::path::PathBuf;

use super::args::{DbState, ReplayArgs};
use super::exit::{EXIT_BAD_LINES, EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use super::output::{open_input, print_out, write_failed_with};

pub(super) fn run_kube_replay(lab: &Lab, args: &ReplayArgs, path: &PathBuf) -> u8 {
    use crate::kube_replay::{DbAssumption, KubeReplay, KubeReplaySpec};
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
    let (input, name) = match open_input(path) {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("{} replay: {message}", lab.program);
            return EXIT_UNREADABLE;
        }
    };
    let mut replay = KubeReplay::new(&spec);
    let mut out = io::BufWriter::new(io::stdout().lock());
    // Printed as read: one recorded event in memory at a time.
    for item in crate::classify::watch_lines_from(input) {
        let (line, parsed) = match item {
            Ok(item) => item,
            Err(e) => {
                if let Err(e) = out.flush() {
                    return write_failed_with(&e, EXIT_UNREADABLE);
                }
                eprintln!("{} replay: cannot read {name}: {e}", lab.program);
                return EXIT_UNREADABLE;
            }
        };
        let written = match replay.push(line, parsed) {
            Ok(decisions) => writeln!(
                out,
                "{}",
                serde_json::to_string(&decisions).unwrap_or_default()
            ),
            Err(bad) => out
                .flush()
                .map(|()| eprintln!("line {}: {}", bad.line, bad.error)),
        };
        if let Err(e) = written {
            return write_failed_with(&e, EXIT_OK);
        }
    }
    let summary = replay.finish();
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
    let mut verdict = if summary.malformed > 0 {
        EXIT_BAD_LINES
    } else {
        EXIT_OK
    };
    let own = summary.events_owned_by(&spec.scheduler_id);
    if own > 0 {
        eprintln!(
            "{} replay: {}",
            lab.program,
            own_pods_warning(&spec.scheduler_id, own, &summary.owners)
        );
        if summary.tries_tracked == 0 {
            verdict = EXIT_UNREADABLE;
        }
    }
    let line =
        serde_json::to_string(&serde_json::json!({ "summary": &summary })).unwrap_or_default();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        return write_failed_with(&e, verdict);
    }
    verdict
}

/// What `--scheduler-id` means, when it names a recorded owner: its pods are not taken over.
fn own_pods_warning(
    scheduler_id: &str,
    own: usize,
    owners: &std::collections::BTreeMap<String, usize>,
) -> String {
    let seen: Vec<String> = owners
        .iter()
        .map(|(owner, events)| format!("{owner:?} ({events} events)"))
        .collect();
    format!(
        "--scheduler-id {scheduler_id:?} owns the pods of {own} recorded events (their \
         airflow-worker label): --scheduler-id is the replaying executor's own id, and it takes \
         each recorded try over from the scheduler that owns the pod, so it does not track the \
         pods it already owns. The recording's owners are {}; give an id that is none of them \
         (the default, podwarden-replay, unless it is one)",
        seen.join(", ")
    )
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
    let (text, verdict) = match crate::replay::replay(io::BufReader::new(file), |s| {
        lab.attach(s, None)
    }) {
        Ok(report) => match &report.divergence {
            None => (
                format!(
                    "replay matches: {} lines, trace hash {}\n",
                    report.lines, report.hash
                ),
                EXIT_OK,
            ),
            Some(d) => {
                let recorded = |l: &Option<String>| {
                    l.as_deref()
                        .is_some_and(|l| l.starts_with(crate::trace::VIOLATION_LINE_PREFIX))
                };
                let hint = if recorded(&d.expected) {
                    "  (the trace ended at this violation and the replay did not: an invariant changed, or the code)\n"
                } else if recorded(&d.actual) {
                    "  (the replay stopped at this violation where the trace went on: an invariant changed, or the code)\n"
                } else {
                    ""
                };
                (
                        format!(
                            "replay diverges at line {} (after {} matching lines)\n  expected: {}\n  actual:   {}\n{hint}",
                            d.line,
                            report.lines,
                            d.expected.as_deref().unwrap_or("(end of trace)"),
                            d.actual.as_deref().unwrap_or("(end of run)")
                        ),
                        EXIT_VIOLATION,
                    )
            }
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
