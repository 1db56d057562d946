//! Time as a value: the core never reads a clock.
//!
//! Every mutating call takes `now`, so a host can drive the executor faster than real time (the
//! simulator) or from a monotonic clock (a real driver). Timers are a fixed table keyed by
//! `TimerKind`, fired in declaration order, as quinn-proto's `TimerTable` does, so two hosts
//! that feed the same inputs see the same commands in the same order.

use serde::{Deserialize, Serialize};

/// Milliseconds on the host's clock.
///
/// The epoch is the host's choice (Unix time in a real driver, zero in the simulator); the core
/// only compares and subtracts timestamps. Pod timestamps read from Kubernetes JSON are converted
/// to Unix milliseconds, so a real driver should use Unix time if it wants to compare them with
/// `now`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp `ms` milliseconds later, saturating instead of overflowing: a far-future
    /// deadline is harmless, a panic is not.
    #[must_use]
    pub fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds elapsed since `earlier`, zero if `earlier` is in the future (a host whose
    /// clock stepped back must not make the core think time ran backwards).
    #[must_use]
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Converts a duration in (possibly fractional) seconds, as Airflow writes its options, into
/// milliseconds. Callers validate the value first; anything non-finite or negative becomes 0.
#[must_use]
pub fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        // Truncation is intended: sub-millisecond precision is meaningless here.
        let ms = (secs * 1000.0).round();
        if ms >= u64::MAX as f64 {
            u64::MAX
        } else {
            ms as u64
        }
    } else {
        0
    }
}

/// Delay before retry number `attempt` (1-based) of anything the API server or the DB refused
/// for now (a clean-up, a relist, a create, a DB question): 1 s, 2 s, 4 s, … capped at 60 s.
pub(crate) fn retry_backoff_ms(attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(6);
    (1000u64 << exp).min(60_000)
}

/// The executor's timers. Declaration order is firing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// A relist that failed is retried.
    Relist,
    /// Pod creation resumes after a rate-limit back-off or a new batch window opens.
    Launch,
    /// A failed pod clean-up (delete or done-label patch) is retried.
    Cleanup,
    /// API commands held back by the token bucket are released.
    ApiBudget,
    /// Completed pods of dead schedulers are adopted (`orphaned_tasks_check_interval`).
    CompletedAdoption,
    /// Operator pods are swept for zombies.
    ZombieSweep,
    /// Pods Pending for too long are timed out.
    PendingCheck,
    /// A failed pod's DB question is asked again (the DB could not answer).
    DbRetry,
}

const TIMER_COUNT: usize = 8;

impl TimerKind {
    pub(crate) const ALL: [Self; TIMER_COUNT] = [
        Self::Relist,
        Self::Launch,
        Self::Cleanup,
        Self::ApiBudget,
        Self::CompletedAdoption,
        Self::ZombieSweep,
        Self::PendingCheck,
        Self::DbRetry,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A deadline per [`TimerKind`]; only the earliest one is visible to the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Timestamp>; TIMER_COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, kind: TimerKind, at: Timestamp) {
        self.deadlines[kind.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, kind: TimerKind) {
        self.deadlines[kind.index()] = None;
    }

    pub(crate) fn get(&self, kind: TimerKind) -> Option<Timestamp> {
        self.deadlines[kind.index()]
    }

    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns every timer due at `now`, in firing order.
    pub(crate) fn take_expired(&mut self, now: Timestamp) -> impl Iterator<Item = TimerKind> {
        let mut fired = [None; TIMER_COUNT];
        for kind in TimerKind::ALL {
            if self.get(kind).is_some_and(|t| t <= now) {
                self.stop(kind);
                fired[kind.index()] = Some(kind);
            }
        }
        fired.into_iter().flatten()
    }
}

/// Parses an RFC 3339 timestamp as Kubernetes writes it (`2024-01-02T03:04:05Z`, optionally with
/// fractional seconds or a numeric offset) into Unix milliseconds.
///
/// Hand-written because the core needs only this one format and must not pull a date library
/// into every host; anything else is rejected rather than guessed.
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled = 0i64;
        for (i, c) in frac.bytes().take(digits).enumerate() {
            if i < 3 {
                scaled = scaled * 10 + i64::from(c - b'0');
            }
        }
        for _ in digits..3 {
            scaled *= 10;
        }
        millis = scaled;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' || !(ob[0] == b'+' || ob[0] == b'-') {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    u64::try_from(ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-01-01T00:00:01.5Z"),
            Some(1_704_067_201_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(parse_rfc3339_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("1960-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("2024-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn timers_fire_in_declaration_order_and_once() {
        let mut t = TimerTable::default();
        t.set(TimerKind::ApiBudget, Timestamp(5));
        t.set(TimerKind::Relist, Timestamp(7));
        t.set(TimerKind::Relist, Timestamp(5));
        assert_eq!(t.next(), Some(Timestamp(5)));
        let fired: Vec<_> = t.take_expired(Timestamp(6)).collect();
        assert_eq!(fired, vec![TimerKind::Relist, TimerKind::ApiBudget]);
        assert_eq!(t.next(), None);
        assert_eq!(t.take_expired(Timestamp(6)).count(), 0);
    }

    #[test]
    fn retry_backoff_grows_and_caps() {
        let v: Vec<u64> = (1..=9).map(retry_backoff_ms).collect();
        assert_eq!(
            v,
            [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(retry_backoff_ms(0), 1000);
        assert_eq!(retry_backoff_ms(u32::MAX), 60_000);
    }

    #[test]
    fn seconds_convert_without_panicking() {
        assert_eq!(secs_to_ms(1.5), 1500);
        assert_eq!(secs_to_ms(-1.0), 0);
        assert_eq!(secs_to_ms(f64::NAN), 0);
        assert_eq!(secs_to_ms(f64::INFINITY), 0);
        assert_eq!(secs_to_ms(1e300), u64::MAX);
    }
}
