//! Replaying a trace: run the world its header describes again and compare every line, so a
//! trace from anywhere (a CI failure, another machine) can be checked and its first divergence
//! found exactly.

use std::cell::RefCell;
use std::io::{BufRead, Write};
use std::rc::Rc;

use serde::Serialize;

use crate::scenario::{Scenario, ScenarioError};
use crate::trace::{Trace, TraceHeader, TRACE_FORMAT, VIOLATION_LINE_PREFIX};
use crate::world::World;

/// Where a replay first differs from its trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// 1-based line number in the trace.
    pub line: u64,
    /// The trace's line (`None`: the trace ended first).
    pub expected: Option<String>,
    /// The replay's line (`None`: the replay ended first).
    pub actual: Option<String>,
}

/// The result of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Lines that matched.
    pub lines: u64,
    /// The replay's trace hash (of the lines it produced).
    pub hash: String,
    /// The first difference, if any.
    pub divergence: Option<Divergence>,
}

/// Why a trace cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file cannot be read.
    #[error("cannot read the trace: {0}")]
    Io(#[from] std::io::Error),
    /// The first line is not a podwarden trace header.
    #[error("the first line is not a podwarden trace header: {0}")]
    Header(String),
    /// The header's scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

type Lines = Box<dyn Iterator<Item = std::io::Result<String>>>;

struct State {
    expected: Lines,
    matched: u64,
    divergence: Option<Divergence>,
}

/// Compares what the replay writes with the trace, line by line; stops at the first difference.
struct Comparer {
    state: Rc<RefCell<State>>,
    partial: Vec<u8>,
}

impl Write for Comparer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b != b'\n' {
                self.partial.push(b);
                continue;
            }
            let actual = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            let mut state = self.state.borrow_mut();
            let expected = state.expected.next().transpose()?;
            if expected.as_deref() == Some(actual.as_str()) {
                state.matched += 1;
            } else if expected.is_none() && actual.starts_with(VIOLATION_LINE_PREFIX) {
                // A trace written before traces recorded their violation ends one line early.
            } else {
                let line = state.matched + 1;
                state.divergence = Some(Divergence {
                    line,
                    expected,
                    actual: Some(actual),
                });
                // Nothing after the first divergence is worth comparing.
                return Err(std::io::Error::other("diverged"));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scenario and seed a trace's header names: what to run to get the trace again.
///
/// # Errors
/// [`ReplayError`] if the first line cannot be read or is not a podwarden trace header.
pub fn read_header(reader: impl BufRead) -> Result<(Scenario, u64), ReplayError> {
    let first = reader
        .lines()
        .next()
        .transpose()?
        .ok_or_else(|| ReplayError::Header("the trace is empty".into()))?;
    let header = parse_header(&first)?;
    Ok((header.scenario, header.seed))
}

fn parse_header(line: &str) -> Result<TraceHeader, ReplayError> {
    let header: TraceHeader =
        serde_json::from_str(line).map_err(|e| ReplayError::Header(e.to_string()))?;
    if header.podwarden_trace != TRACE_FORMAT {
        return Err(ReplayError::Header(format!(
            "trace format {} is not supported",
            header.podwarden_trace
        )));
    }
    Ok(header)
}

/// Replays the trace read from `reader`. `attach` may add code of your own to the header's
/// scenario before it runs (its [`Scenario::extensions`]: the header names your policy but
/// cannot hold it); pass `|_| {}` for a world of podwarden's presets.
///
/// # Errors
/// [`ReplayError`] if the trace cannot be read or has no valid header.
pub fn replay(
    reader: impl BufRead + 'static,
    attach: impl FnOnce(&mut Scenario),
) -> Result<ReplayReport, ReplayError> {
    let mut lines = reader.lines();
    let first = lines
        .next()
        .transpose()?
        .ok_or_else(|| ReplayError::Header("the trace is empty".into()))?;
    let header = parse_header(&first)?;
    // The world writes the header again: compare from the first line, as this version writes
    // the same header (a trace written before an option existed names no value for it, and
    // runs with its default, which the header written now spells out).
    let first = serde_json::to_string(&header).unwrap_or(first);
    let expected: Lines = Box::new(std::iter::once(Ok(first)).chain(lines));
    let state = Rc::new(RefCell::new(State {
        expected,
        matched: 0,
        divergence: None,
    }));
    let comparer = Comparer {
        state: Rc::clone(&state),
        partial: Vec::new(),
    };
    let mut scenario = header.scenario;
    attach(&mut scenario);
    let outcome = World::new(
        scenario,
        Some(header.seed),
        Trace::writing(Box::new(comparer)),
    )?
    .run();
    let mut state = state.borrow_mut();
    if state.divergence.is_none() {
        // The replay is over; the trace must be over too.
        if let Some(extra) = state.expected.next().transpose()? {
            let line = state.matched + 1;
            state.divergence = Some(Divergence {
                line,
                expected: Some(extra),
                actual: None,
            });
        }
    }
    Ok(ReplayReport {
        lines: state.matched,
        hash: outcome.trace_hash,
        divergence: state.divergence.take(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Load;

    fn trace_of(seed: u64) -> String {
        trace_with(seed, |_| {})
    }

    fn trace_with(seed: u64, attach: impl FnOnce(&mut Scenario)) -> String {
        let mut scenario = Scenario {
            schedulers: 2,
            duration_s: 120.0,
            heal_s: 120.0,
            load: Load {
                tasks: 20,
                runtime_min_s: 5.0,
                runtime_max_s: 20.0,
                ..Load::default()
            },
            ..Scenario::default()
        };
        attach(&mut scenario);
        let buf = Rc::new(RefCell::new(Vec::new()));
        struct Sink(Rc<RefCell<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        World::new(
            scenario,
            Some(seed),
            Trace::writing(Box::new(Sink(Rc::clone(&buf)))),
        )
        .unwrap()
        .run();
        let text = String::from_utf8(buf.borrow().clone()).unwrap();
        text
    }

    #[test]
    fn a_trace_replays_to_the_same_lines() {
        let text = trace_of(4);
        let lines = text.lines().count() as u64;
        let report = replay(std::io::Cursor::new(text.into_bytes()), |_| {}).unwrap();
        assert_eq!(report.divergence, None);
        assert_eq!(report.lines, lines);
    }

    #[test]
    fn the_first_divergence_is_reported_exactly() {
        let text = trace_of(4);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[57] = lines[57].replace("\"t\":", "\"t\": ");
        let tampered = lines.join("\n") + "\n";
        let report = replay(std::io::Cursor::new(tampered.into_bytes()), |_| {}).unwrap();
        let d = report.divergence.expect("diverges");
        assert_eq!(d.line, 58);
        assert_eq!(d.expected.as_deref(), Some(lines[57].as_str()));
        // A trace longer than the run diverges where the run ended.
        let longer = text.clone() + "{\"t\":1}\n";
        let d = replay(std::io::Cursor::new(longer.into_bytes()), |_| {})
            .unwrap()
            .divergence
            .expect("extra line");
        assert_eq!((d.line, d.actual), (text.lines().count() as u64 + 1, None));
        assert!(matches!(
            replay(std::io::Cursor::new(b"not json\n".to_vec()), |_| {}),
            Err(ReplayError::Header(_))
        ));
    }

    /// An invariant of the test's own that fails once 60 simulated seconds have passed.
    struct PastOneMinute;

    impl crate::custom::Invariant for PastOneMinute {
        fn name(&self) -> &str {
            "past_one_minute"
        }
        fn kind(&self) -> crate::custom::InvariantKind {
            crate::custom::InvariantKind::Always
        }
        fn check(&mut self, world: &crate::custom::WorldView<'_>) -> Result<(), String> {
            if world.now().0 >= 60_000 {
                Err("a minute has passed".into())
            } else {
                Ok(())
            }
        }
    }

    fn with_the_invariant(s: &mut Scenario) {
        s.extensions =
            s.extensions
                .clone()
                .with_invariants(crate::extensions::InvariantFactory::new(|| {
                    vec![Box::new(PastOneMinute) as Box<dyn crate::custom::Invariant>]
                }));
    }

    #[test]
    fn a_trace_ends_with_its_violation_and_a_replay_that_goes_on_shows_it() {
        let text = trace_with(4, with_the_invariant);
        let last = text.lines().last().expect("lines");
        assert!(last.starts_with(VIOLATION_LINE_PREFIX), "{last}");
        assert!(last.contains("past_one_minute") && last.contains("a minute has passed"));
        // The same invariants: the replay stops there too and writes the same last line.
        let same = replay(
            std::io::Cursor::new(text.clone().into_bytes()),
            with_the_invariant,
        );
        assert_eq!(same.unwrap().divergence, None);
        // The invariant changed (here: gone): the replay goes on, and the divergence names the
        // violation the trace ended with, not "(end of trace)".
        let changed = replay(std::io::Cursor::new(text.clone().into_bytes()), |_| {}).unwrap();
        let d = changed
            .divergence
            .expect("the replay goes past the violation");
        assert_eq!(d.line, text.lines().count() as u64);
        assert_eq!(d.expected.as_deref(), Some(last));
        assert!(d.actual.is_some_and(|a| a.starts_with("{\"t\":")));
        // A trace written before traces ended with their violation still replays.
        let older: String = text
            .lines()
            .take(text.lines().count() - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let old = replay(std::io::Cursor::new(older.into_bytes()), with_the_invariant).unwrap();
        assert_eq!(old.divergence, None);
        // A run without a violation writes no such line.
        assert!(!trace_of(4)
            .lines()
            .any(|l| l.starts_with(VIOLATION_LINE_PREFIX)));
    }
}
