//! Coverage of the "sometimes" events, VOPR-style: how often a run reached each fault kind and
//! each decision the core can make, so a sweep can show which ones it exercised (and a decision
//! no seed reaches is a hole in the evidence, not a pass).
//!
//! A run counts events by name ([`RunCoverage`], part of its summary); a sweep adds the runs up
//! and also counts the seeds in which each event happened at least once ([`Coverage`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Every decision of the core the coverage table names, so that one never reached shows as 0.
pub const DECISIONS: [&str; 16] = [
    "adopt orphan",
    "reset orphan",
    "adopt completed pod",
    "adopt leftover pod",
    "requeue",
    "report succeeded",
    "report failed",
    "relist after 410",
    "delete pod",
    "zombie force-delete",
    "revoke stuck in queued",
    "pending timeout",
    "DB question asked again",
    "create retried",
    "clean-up retried",
    "zombie task instance failed",
];

/// Every fault kind, and world properties drawn like faults.
pub const FAULTS: [&str; 15] = [
    "drain_node",
    "sigterm_storm",
    "node_loss",
    "preempt",
    "crash_scheduler",
    "stall_scheduler",
    "stall that ends by itself",
    "partition",
    "watch_expiry",
    "clock_skew",
    "clock_step",
    "db_outage",
    "api_errors",
    "Kubernetes before 1.27",
    "scheduler resumed after peers declared it dead",
];

/// What one run reached: events by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunCoverage(pub BTreeMap<String, u64>);

impl RunCoverage {
    /// Counts one `event`.
    pub fn count(&mut self, event: &str) {
        self.count_n(event, 1);
    }

    /// Counts `n` of `event`.
    pub fn count_n(&mut self, event: &str, n: u64) {
        if n > 0 {
            *self.0.entry(event.to_string()).or_default() += n;
        }
    }
}

/// Events and the seeds that reached them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// Events over all seeds.
    pub events: u64,
    /// Seeds with at least one.
    pub seeds: u64,
}

/// What a sweep reached, by event name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Coverage(pub BTreeMap<String, Reached>);

impl Coverage {
    /// Adds one seed's run.
    pub fn add_run(&mut self, run: &RunCoverage) {
        for (event, n) in &run.0 {
            let r = self.0.entry(event.clone()).or_default();
            r.events += n;
            r.seeds += 1;
        }
    }

    /// Adds another sweep's (a shard's) coverage.
    pub fn merge(&mut self, other: &Self) {
        for (event, o) in &other.0 {
            let r = self.0.entry(event.clone()).or_default();
            r.events += o.events;
            r.seeds += o.seeds;
        }
    }

    /// The table: every named fault kind and decision, then anything else reached, with the
    /// events and the share of `seeds` that reached it.
    #[must_use]
    pub fn to_text(&self, seeds: u64) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, r: Reached| {
            let share = if seeds == 0 {
                0.0
            } else {
                r.seeds as f64 * 100.0 / seeds as f64
            };
            let _ = writeln!(
                out,
                "  {name:<48} {:>10} events in {:>6} seeds ({share:.1} %)",
                r.events, r.seeds
            );
        };
        let _ = writeln!(out, "faults reached:");
        for name in FAULTS {
            row(&mut out, name, self.get(name));
        }
        let _ = writeln!(out, "decisions reached:");
        for name in DECISIONS {
            row(&mut out, name, self.get(name));
        }
        let others: Vec<(&String, &Reached)> = self
            .0
            .iter()
            .filter(|(k, _)| !FAULTS.contains(&k.as_str()) && !DECISIONS.contains(&k.as_str()))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(out, "also reached:");
            for (name, r) in others {
                row(&mut out, name, *r);
            }
        }
        out
    }

    fn get(&self, name: &str) -> Reached {
        self.0.get(name).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_add_up_by_events_and_seeds() {
        let mut a = RunCoverage::default();
        a.count("requeue");
        a.count_n("requeue", 2);
        a.count_n("relist after 410", 0);
        let mut b = RunCoverage::default();
        b.count("requeue");
        let mut c = Coverage::default();
        c.add_run(&a);
        c.add_run(&b);
        assert_eq!(
            c.0["requeue"],
            Reached {
                events: 4,
                seeds: 2
            }
        );
        assert!(!c.0.contains_key("relist after 410"));
        let mut whole = Coverage::default();
        whole.merge(&c);
        whole.merge(&c);
        assert_eq!(whole.0["requeue"].seeds, 4);
        let text = whole.to_text(4);
        assert!(text.contains("relist after 410"), "{text}");
        assert!(text.contains("(100.0 %)"), "{text}");
    }
}
