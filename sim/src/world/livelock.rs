//! The livelock guard: a run whose events pile up at one simulated instant (a component that
//! keeps rescheduling itself "now") is stopped and reported as the `livelock` violation, instead
//! of spinning for ever and writing gigabytes of identical trace lines.

use super::event::Ev;
use crate::scenario::Scenario;
use crate::time::Ms;

/// The name a livelock is reported under, like an invariant's.
pub(crate) const LIVELOCK: &str = "livelock";

/// Events the world handles at one simulated millisecond before it stops the run as a livelock,
/// in a world of up to 25,000 task instances and scheduled faults (larger worlds get more, see
/// [`limit_for`]).
///
/// Measured on every shipped scenario and regression case, seed 0, under the `default` and
/// `airflow` policies: the busiest instant of any of them holds 68 events
/// (`admission-rejects`); a hand-made burst (100,000 tasks, 3 schedulers, a SIGTERM storm of
/// 100,000 pods) 900. A million is far above both, and a real spin reaches it in a few
/// seconds.
pub(crate) const SAME_INSTANT_LIMIT: u64 = 1_000_000;

/// The livelock limit of a world: [`SAME_INSTANT_LIMIT`], or, for a big world, 10 events per
/// task instance or scheduled fault per scheduler (plus 4), whichever is larger. At one instant
/// a burst may legitimately touch every pod once (a SIGTERM storm of every pod), and each change
/// reaches every scheduler's watch; that bound keeps a million-task world from being stopped
/// for its size.
pub(crate) fn limit_for(scenario: &Scenario) -> u64 {
    let things = u64::from(scenario.load.tasks) + scenario.faults.len() as u64;
    let per_world = things
        .saturating_mul(u64::from(scenario.schedulers) + 4)
        .saturating_mul(10);
    SAME_INSTANT_LIMIT.max(per_world)
}

/// Counts the events handled at the current instant, by kind and scheduler.
#[derive(Debug)]
pub(crate) struct SameInstant {
    limit: u64,
    at: Ms,
    events: u64,
    /// `((kind, scheduler index), events)` at this instant: a handful of entries.
    kinds: Vec<((&'static str, Option<u32>), u64)>,
}

impl SameInstant {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            at: 0,
            events: 0,
            kinds: Vec::new(),
        }
    }

    /// Counts `ev`, handled at `at`. True when this instant is past the limit.
    pub(crate) fn count(&mut self, at: Ms, ev: &Ev) -> bool {
        if at != self.at {
            self.at = at;
            self.events = 0;
            self.kinds.clear();
        }
        self.events += 1;
        let key = ev.kind();
        match self.kinds.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.kinds.push((key, 1)),
        }
        self.events > self.limit
    }

    /// What piled up: "1,000,001 events at 300000 ms, 999,990 of them exec_timer of scheduler 1".
    pub(crate) fn detail(&self) -> String {
        let Some(((kind, sched), n)) = self.kinds.iter().max_by_key(|(_, n)| *n) else {
            return format!("{} events at {} ms", thousands(self.events), self.at);
        };
        let whose = sched.map_or_else(String::new, |s| format!(" of scheduler {s}"));
        format!(
            "{} events at {} ms (more than {} at one instant), {} of them {kind}{whose}",
            thousands(self.events),
            self.at,
            thousands(self.limit),
            thousands(*n)
        )
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Ev {
    /// The event's kind as the trace names it, and its scheduler index if it has one.
    pub(crate) fn kind(&self) -> (&'static str, Option<u32>) {
        match self {
            Self::TaskArrives { .. } => ("task_arrives", None),
            Self::SchedLoop { sched, .. } => ("sched_loop", Some(*sched)),
            Self::ExecTimer { sched, .. } => ("exec_timer", Some(*sched)),
            Self::ApiRequest { sched, .. } => ("api_request", Some(*sched)),
            Self::ApiReply { sched, .. } => ("api_reply", Some(*sched)),
            Self::DbAnswer { sched, .. } => ("db_answer", Some(*sched)),
            Self::WatchDeliver { sched, .. } => ("watch_deliver", Some(*sched)),
            Self::WatchGone { sched, .. } => ("watch_gone", Some(*sched)),
            Self::Pod { .. } => ("pod", None),
            Self::Node { .. } => ("node", None),
            Self::Fault { .. } => ("fault", None),
            Self::StallEnds { sched, .. } => ("stall_ends", Some(*sched)),
            Self::PartitionHeals { sched } => ("partition_heals", Some(*sched)),
            Self::DbRecovers => ("db_recovers", None),
            Self::ApiErrorsEnd => ("api_errors_end", None),
            Self::Uncordon { .. } => ("uncordon", None),
            Self::Restart { sched } => ("restart", Some(*sched)),
            Self::Probe => ("probe", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_a_million_but_grows_with_a_big_world() {
        let mut s = Scenario::default();
        assert_eq!(limit_for(&s), SAME_INSTANT_LIMIT);
        s.load.tasks = 1_000_000;
        s.schedulers = 3;
        assert_eq!(limit_for(&s), 70_000_000);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_999_990), "1,999,990");
    }

    #[test]
    fn the_count_restarts_at_each_instant_and_names_the_dominant_kind() {
        let mut g = SameInstant::new(3);
        let timer = Ev::ExecTimer {
            sched: 1,
            inc: 1,
            gen: 7,
        };
        assert!(!g.count(5, &Ev::Probe));
        assert!(!g.count(5, &timer));
        assert!(!g.count(5, &timer));
        assert!(!g.count(6, &timer), "a new instant starts from 1");
        assert!(!g.count(6, &timer));
        assert!(!g.count(6, &timer));
        assert!(g.count(6, &timer));
        assert_eq!(
            g.detail(),
            "4 events at 6 ms (more than 3 at one instant), 4 of them exec_timer of scheduler 1"
        );
    }
}
