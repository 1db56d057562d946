//! Shrinking a failing run to a small one that still breaks the same invariant.
//!
//! A swarm failure is a world of hundreds of tasks, several schedulers and a handful of faults;
//! a person wants to read the few events that matter. [`shrink`] reduces the world greedily
//! (stateright and proptest shrink the same way): it tries smaller worlds in a fixed order
//! (drop a fault, fewer schedulers, fewer nodes, fewer tasks, a shorter load, no random faults,
//! no failure rates, milder faults) and keeps the first one whose run still violates the **same
//! invariant**, until no candidate does. Every step is a deterministic run, so the result is the
//! same on every machine, and the last world is written as a scenario file plus a trace that
//! `podwarden-sim replay` checks.
//!
//! Each candidate is run on the current seed and, with `seeds_per_candidate > 1`, on the next
//! few seeds too: in a smaller world the same seed draws different randomness, and a rare
//! interleaving is often still reachable one seed away. The seed found is part of the result.

mod candidates;

use serde::Serialize;

use crate::invariants::Violation;
use crate::scenario::{Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;

use self::candidates::candidates;

/// How hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkSpec {
    /// Most world runs in all (each candidate costs up to `seeds_per_candidate`).
    pub max_runs: usize,
    /// Seeds tried for each candidate: the current one and the next `n - 1`.
    pub seeds_per_candidate: u64,
}

impl Default for ShrinkSpec {
    fn default() -> Self {
        Self {
            max_runs: 6_000,
            seeds_per_candidate: 16,
        }
    }
}

/// Why a run cannot be shrunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShrinkError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The starting run breaks no invariant: there is nothing to shrink.
    #[error("seed {seed} of {scenario} breaks no invariant: nothing to shrink")]
    NoViolation {
        /// Scenario name.
        scenario: String,
        /// The seed run.
        seed: u64,
    },
}

/// A shrunk failing run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shrunk {
    /// The smallest world found (its `seed` field is set to [`Shrunk::seed`]).
    pub scenario: Scenario,
    /// The seed that makes it fail.
    pub seed: u64,
    /// Its violation: the same invariant as the original run's.
    pub violation: Violation,
    /// The original run's violation.
    pub original: Violation,
    /// World runs spent.
    pub runs: usize,
    /// The reductions kept, in order.
    pub steps: Vec<String>,
}

/// Shrinks `scenario` run with `seed` (the scenario's own when `None`); `progress` is told of
/// each reduction kept.
///
/// # Errors
/// [`ShrinkError::NoViolation`] when the run breaks no invariant; [`ShrinkError::Scenario`]
/// when it is invalid.
pub fn shrink(
    scenario: Scenario,
    seed: Option<u64>,
    spec: &ShrinkSpec,
    mut progress: impl FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let seed = seed.unwrap_or(scenario.seed);
    let original = violation_of(&scenario, seed)?.ok_or_else(|| ShrinkError::NoViolation {
        scenario: scenario.name.clone(),
        seed,
    })?;
    let target = original.invariant.clone();
    // Every candidate is a world of its own, no longer the file's (nor its swarm draw): their
    // reproduce commands must not name the file.
    let mut scenario = scenario;
    scenario.source = None;
    scenario.extensions = scenario.extensions.not_drawn().shrink_candidate();
    let mut best = (scenario, seed, original.clone());
    let mut runs = 1;
    let mut steps = Vec::new();
    'pass: loop {
        for (what, candidate) in candidates(&best.0) {
            for s in seeds_to_try(best.1, spec.seeds_per_candidate) {
                if runs >= spec.max_runs {
                    break 'pass;
                }
                runs += 1;
                // A candidate the scenario rules reject is simply not smaller.
                let Ok(Some(v)) = violation_of(&candidate, s) else {
                    continue;
                };
                if v.invariant == target {
                    let step = if s == best.1 {
                        what.clone()
                    } else {
                        format!("{what} (seed {s})")
                    };
                    progress(&step);
                    steps.push(step);
                    best = (candidate, s, v);
                    continue 'pass;
                }
            }
        }
        break;
    }
    let (mut scenario, seed, violation) = best;
    scenario.seed = seed;
    Ok(Shrunk {
        scenario,
        seed,
        violation,
        original,
        runs,
        steps,
    })
}

/// The current seed first, then the next ones (wrapping).
fn seeds_to_try(seed: u64, n: u64) -> impl Iterator<Item = u64> {
    (0..n.max(1)).map(move |i| seed.wrapping_add(i))
}

fn violation_of(scenario: &Scenario, seed: u64) -> Result<Option<Violation>, ScenarioError> {
    let world = World::new(scenario.clone(), Some(seed), Trace::hashing())?;
    Ok(world.run().violation)
}

/// The size of a world in one line: what shrinking reduces.
#[must_use]
pub fn size_line(s: &Scenario) -> String {
    format!(
        "{} schedulers, {} nodes, {} tasks over {:.0} s, {} faults, random faults {}/{}/{} per hour",
        s.schedulers,
        s.cluster.nodes,
        s.load.tasks,
        s.duration_s,
        s.faults.len(),
        s.random_faults.sigterms_per_hour,
        s.random_faults.watch_expiries_per_hour,
        s.random_faults.preemptions_per_hour
    )
}

/// Reduces a failing world's scheduled faults to as few as still fail on `seed`, deterministically:
/// first each fault alone (so when one fault on its own breaks the property, that one fault is
/// the answer), then dropping one fault at a time while the world still fails. `fails` runs a
/// world and says whether it still breaks your property.
///
/// For a proptest counterexample: proptest's own shrinking often keeps two faults, because a
/// world without one of them draws different events from the same seed; run this on what it
/// returns. Each candidate is one run: at most `n + n·(n−1)/2` runs for `n` faults.
pub fn fewest_faults(
    scenario: &Scenario,
    seed: u64,
    mut fails: impl FnMut(&Scenario, u64) -> bool,
) -> Scenario {
    let with = |faults: Vec<crate::scenario::Fault>| Scenario {
        faults,
        ..scenario.clone()
    };
    for fault in &scenario.faults {
        let alone = with(vec![fault.clone()]);
        if scenario.faults.len() > 1 && fails(&alone, seed) {
            return alone;
        }
    }
    let mut current = scenario.clone();
    let mut i = 0;
    while i < current.faults.len() && current.faults.len() > 1 {
        let mut fewer = current.faults.clone();
        fewer.remove(i);
        let candidate = with(fewer);
        if fails(&candidate, seed) {
            current = candidate;
        } else {
            i += 1;
        }
    }
    current
}

/// The scenario as TOML with only what differs from the defaults (plus its name, description,
/// seed and policy), so a shrunk case reads as what makes it special.
///
/// # Errors
/// [`ScenarioError::Invalid`] if it cannot be written as TOML (a seed above `i64::MAX`).
pub fn to_minimal_toml(s: &Scenario) -> Result<String, ScenarioError> {
    let invalid = |e: toml::ser::Error| ScenarioError::Invalid(format!("cannot write TOML: {e}"));
    let mut value = toml::Table::try_from(s).map_err(invalid)?;
    let defaults = toml::Table::try_from(Scenario::default()).map_err(invalid)?;
    strip_defaults(
        &mut value,
        &defaults,
        &["name", "description", "seed", "policy"],
    );
    toml::to_string(&value).map_err(invalid)
}

fn strip_defaults(value: &mut toml::Table, defaults: &toml::Table, keep: &[&str]) {
    value.retain(|k, v| {
        if keep.contains(&k) {
            return true;
        }
        match (v, defaults.get(k)) {
            (toml::Value::Table(t), Some(toml::Value::Table(d))) => {
                strip_defaults(t, d, &[]);
                !t.is_empty()
            }
            (v, Some(d)) => v != d,
            (_, None) => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::candidates::smaller_counts;
    use super::*;
    use crate::scenario::Fault;

    #[test]
    fn candidates_are_strictly_smaller_and_valid() {
        let s = Scenario {
            schedulers: 3,
            faults: vec![
                Fault::CrashScheduler {
                    at_s: 60.0,
                    scheduler: 2,
                    restart_after_s: 30.0,
                },
                Fault::SigtermStorm {
                    at_s: 90.0,
                    pods: 10,
                },
            ],
            ..Scenario::default()
        };
        let all = candidates(&s);
        assert!(all
            .iter()
            .any(|(w, c)| w.starts_with("drop fault crash") && c.faults.len() == 1));
        // Two schedulers: the crash of scheduler 2 goes with the third scheduler.
        let two = all
            .iter()
            .find(|(_, c)| c.schedulers == 2)
            .expect("fewer schedulers");
        assert_eq!(two.1.faults.len(), 1);
        assert!(all.iter().all(|(_, c)| c != &s && c.validate().is_ok()));
        assert!(all
            .iter()
            .any(|(_, c)| c.faults.contains(&Fault::SigtermStorm {
                at_s: 90.0,
                pods: 1
            })));
    }

    #[test]
    fn smaller_counts_end_at_the_minimum() {
        assert_eq!(smaller_counts(10, 1), [1, 5, 9]);
        assert_eq!(smaller_counts(2, 1), [1]);
        assert!(smaller_counts(1, 1).is_empty());
    }

    #[test]
    fn a_run_without_a_violation_cannot_be_shrunk() {
        let s = Scenario {
            duration_s: 60.0,
            heal_s: 60.0,
            ..Scenario::default()
        };
        let err = shrink(s, Some(1), &ShrinkSpec::default(), |_| {}).unwrap_err();
        assert!(
            matches!(err, ShrinkError::NoViolation { seed: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn minimal_toml_keeps_only_what_differs_and_loads_back() {
        let s = Scenario {
            name: "tiny".into(),
            seed: 42,
            schedulers: 2,
            faults: vec![Fault::StallScheduler {
                duration_s: None,
                at_s: 30.0,
                scheduler: 1,
            }],
            ..Scenario::default()
        };
        let text = to_minimal_toml(&s).unwrap();
        assert!(text.contains("schedulers = 2"), "{text}");
        assert!(!text.contains("nodes"), "defaults are left out: {text}");
        let back: Scenario = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
