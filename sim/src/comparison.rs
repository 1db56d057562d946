//! `compare`'s report: two runs of one scenario and seed under two policies, as a table whose
//! columns are sized to what they hold, each violation in full (time, detail, reproduce
//! command), or as JSON ([`Comparison`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::invariants::INVARIANTS;
use crate::run_report::RunReport;

/// `compare --format json`: the scenario and seed, then each policy's run exactly as
/// `run --format json` prints it, in the order the policies were given. Fields are added, never
/// renamed or removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// The seed both runs used.
    pub seed: u64,
    /// One report per policy, in the order given.
    pub runs: [&'a RunReport; 2],
}

/// The verdict cell of one run: `all N held` (built-in and your own invariants) or
/// `VIOLATED name`.
fn verdict(r: &RunReport) -> String {
    match &r.outcome.violation {
        None => format!(
            "all {} held",
            INVARIANTS.len() + r.outcome.custom_invariants.len()
        ),
        Some(v) => format!("VIOLATED {}", v.invariant),
    }
}

/// Two reports side by side, line by line, then each violation with its time, detail and
/// reproduce command. Every column is as wide as its widest cell.
#[must_use]
pub fn side_by_side(a: &RunReport, b: &RunReport) -> String {
    let mut rows = vec![("policy".to_string(), a.policy.clone(), b.policy.clone())];
    let la = a.outcome.summary.lines();
    let lb = b.outcome.summary.lines();
    // Every row of either run, a row only the second has (a requeue cause) right after the
    // row it follows there, so a cause stays under its `requeues` row.
    let mut keys: Vec<String> = la.iter().map(|(k, _)| k.clone()).collect();
    let mut after: Option<usize> = None;
    for (k, _) in &lb {
        if let Some(i) = keys.iter().position(|x| x == k) {
            after = Some(i);
        } else {
            let i = after.map_or(0, |i| i + 1);
            keys.insert(i, k.clone());
            after = Some(i);
        }
    }
    for k in keys {
        let get = |l: &[(String, String)]| {
            l.iter()
                .find(|(x, _)| *x == k)
                .map_or_else(|| "-".into(), |(_, v)| v.clone())
        };
        rows.push((k.clone(), get(&la), get(&lb)));
    }
    rows.push(("invariants".into(), verdict(a), verdict(b)));
    let mut yours = a.outcome.custom_invariants.clone();
    for name in &b.outcome.custom_invariants {
        if !yours.contains(name) {
            yours.push(name.clone());
        }
    }
    if !yours.is_empty() {
        let list = yours.join(", ");
        rows.push(("your invariants".into(), list.clone(), list));
    }
    let key_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = format!("scenario {} (seed {})\n", a.scenario, a.seed);
    for (k, x, y) in rows {
        let _ = writeln!(out, "{k:<key_width$}  {x:<width$}  {y}");
    }
    for r in [a, b] {
        if let Some(v) = &r.outcome.violation {
            let _ = writeln!(
                out,
                "{} VIOLATED {} at {} ms: {}",
                r.policy, v.invariant, v.at_ms, v.detail
            );
            let _ = writeln!(out, "  reproduce: {}", v.reproduce);
        }
    }
    out
}
