//! What the `run`, `compare` and `list` commands do, as functions (the binary only parses
//! arguments and prints).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::invariants::INVARIANTS;
use crate::scenario::{Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;

pub use crate::run_report::RunReport;

/// Runs `scenario` with `seed` and `policy` (the scenario's own when `None`), writing the trace
/// to `trace` if given.
///
/// # Errors
/// [`ScenarioError`] for an invalid scenario or policy; [`ScenarioError::Write`] for a trace
/// file that cannot be created (before the run) or written (after it).
pub fn run(
    scenario: Scenario,
    seed: Option<u64>,
    policy: Option<&str>,
    trace: Option<&Path>,
) -> Result<RunReport, ScenarioError> {
    drive(scenario, seed, policy, trace, None)
}

/// Runs exactly like [`run`] (same events, same stop at the first violation, same summary and
/// trace) and draws the run's [`Timeline`](crate::plot::Timeline) from its trace as it goes: a
/// picture shows what the run did and never changes it.
///
/// # Errors
/// As [`run`].
pub fn run_plotted(
    scenario: Scenario,
    seed: Option<u64>,
    policy: Option<&str>,
    trace: Option<&Path>,
) -> Result<(RunReport, crate::plot::Timeline), ScenarioError> {
    let (sink, timeline) = crate::plot::timeline_sink();
    let report = drive(scenario, seed, policy, trace, Some(Box::new(sink)))?;
    let timeline = timeline.borrow().clone().with_report(&report);
    Ok((report, timeline))
}

/// One run: the policy override, the trace file (and `also`, which sees every trace line but
/// changes nothing of the run), the report.
fn drive(
    mut scenario: Scenario,
    seed: Option<u64>,
    policy: Option<&str>,
    trace: Option<&Path>,
    also: Option<Box<dyn std::io::Write>>,
) -> Result<RunReport, ScenarioError> {
    if let Some(p) = policy {
        p.clone_into(&mut scenario.policy);
    }
    let file: Option<Box<dyn std::io::Write>> = match trace {
        Some(path) => {
            // Created before the run, so a path that cannot be written fails at once.
            let file = std::fs::File::create(path).map_err(|source| ScenarioError::Write {
                path: path.display().to_string(),
                source,
            })?;
            Some(Box::new(std::io::BufWriter::new(file)))
        }
        None => None,
    };
    let sink = match (file, also) {
        (Some(f), Some(a)) => Trace::writing(Box::new(crate::plot::Tee(f, a))),
        (Some(out), None) | (None, Some(out)) => Trace::writing(out),
        (None, None) => Trace::hashing(),
    };
    let name = scenario.name.clone();
    let policy = scenario.policy.clone();
    let world = World::new(scenario, seed, sink)?;
    let seed = world.seed();
    let outcome = world.run();
    if let Some(e) = &outcome.trace_error {
        return Err(ScenarioError::Write {
            path: trace.map_or_else(|| "the trace".into(), |p| p.display().to_string()),
            source: std::io::Error::other(e.clone()),
        });
    }
    Ok(RunReport {
        scenario: name,
        seed,
        policy,
        outcome,
    })
}

/// The report as text: the summary, the invariants' verdict, the trace hash.
#[must_use]
pub fn to_text(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {} (seed {}, policy {})",
        "scenario", r.scenario, r.seed, r.policy
    );
    out.push_str(&r.outcome.summary.to_text());
    match &r.outcome.violation {
        None => {
            let yours = &r.outcome.custom_invariants;
            if yours.is_empty() {
                let _ = writeln!(out, "{:<24} all {} held", "invariants", INVARIANTS.len());
            } else {
                let _ = writeln!(
                    out,
                    "{:<24} all {} held ({} built-in; yours: {})",
                    "invariants",
                    INVARIANTS.len() + yours.len(),
                    INVARIANTS.len(),
                    yours.join(", ")
                );
            }
        }
        Some(v) => {
            let _ = writeln!(
                out,
                "{:<24} VIOLATED {} at {} ms: {}",
                "invariants", v.invariant, v.at_ms, v.detail
            );
            let _ = writeln!(out, "{:<24} {}", "reproduce", v.reproduce);
            let _ = writeln!(out, "last trace lines:");
            for line in v.recent_trace.iter().rev().take(12).rev() {
                let _ = writeln!(out, "  {}", truncate(line, 240));
            }
        }
    }
    let _ = writeln!(
        out,
        "{:<24} {} ({} lines)",
        "trace hash", r.outcome.trace_hash, r.outcome.trace_lines
    );
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

/// Two reports side by side: [`crate::comparison::side_by_side`].
#[must_use]
pub fn side_by_side(a: &RunReport, b: &RunReport) -> String {
    crate::comparison::side_by_side(a, b)
}

/// The shipped scenarios: `(name, description, path)`, sorted by name.
///
/// # Errors
/// [`ScenarioError`] if the folder or a file in it cannot be read.
pub fn list(dir: &Path) -> Result<Vec<(String, String, PathBuf)>, ScenarioError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ScenarioError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| ScenarioError::Read {
                path: dir.display().to_string(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path.display().to_string())?;
            out.push((s.name, s.description, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The shipped scenarios, from the copies compiled into the binary (so the list is the same from
/// any directory, and every name in it runs as `run NAME`): `(name, description)`, by name.
#[must_use]
pub fn shipped() -> Vec<(String, String)> {
    crate::scenario::shipped::SHIPPED
        .iter()
        .map(|(name, text)| {
            let description = toml::from_str::<Scenario>(text)
                .map(|s| s.description)
                .unwrap_or_default();
            ((*name).to_string(), description)
        })
        .collect()
}

/// Where the shipped scenarios are: `sim/scenarios` under the working directory, else next to
/// this crate's sources.
#[must_use]
pub fn scenarios_dir() -> PathBuf {
    let here = PathBuf::from("sim/scenarios");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }
}
