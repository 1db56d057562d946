//! A token bucket that caps the API requests one executor sends.
//!
//! Airflow has no such cap: a burst of submissions with a large batch size, or a retry storm,
//! goes straight to the API server. client-go rate-limits every controller the same way
//! (QPS/burst); this is that limiter, with integer arithmetic so it is exact and deterministic.

use crate::time::Timestamp;

const MILLI: u64 = 1000;

/// Requests per second sustained, `burst` at once after an idle period.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenBucket {
    /// Milli-tokens available; one request costs 1000.
    tokens: u64,
    capacity: u64,
    /// Milli-tokens refilled per millisecond (= requests per second).
    per_ms: u64,
    updated: Timestamp,
}

impl TokenBucket {
    pub(crate) fn new(qps: u32, burst: u32, now: Timestamp) -> Self {
        let capacity = u64::from(burst.max(1)) * MILLI;
        Self {
            tokens: capacity,
            capacity,
            per_ms: u64::from(qps.max(1)),
            updated: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        let elapsed = now.since(self.updated);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.per_ms))
            .min(self.capacity);
        if now > self.updated {
            self.updated = now;
        }
    }

    /// Takes one request's token if there is one.
    pub(crate) fn try_take(&mut self, now: Timestamp) -> bool {
        self.refill(now);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// When the next token will be available.
    pub(crate) fn next_token_at(&self) -> Timestamp {
        let missing = MILLI.saturating_sub(self.tokens);
        self.updated.plus_ms(missing.div_ceil(self.per_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let mut b = TokenBucket::new(2, 3, Timestamp(0));
        assert!((0..3).all(|_| b.try_take(Timestamp(0))));
        assert!(!b.try_take(Timestamp(0)));
        assert_eq!(b.next_token_at(), Timestamp(500));
        assert!(!b.try_take(Timestamp(499)));
        assert!(b.try_take(Timestamp(500)));
        // Idle for a long time: never more than the burst.
        assert!((0..3).all(|_| b.try_take(Timestamp(100_000))));
        assert!(!b.try_take(Timestamp(100_000)));
    }

    #[test]
    fn clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(1, 1, Timestamp(10_000));
        assert!(b.try_take(Timestamp(10_000)));
        assert!(!b.try_take(Timestamp(5_000)));
        assert!(!b.try_take(Timestamp(10_500)));
        assert!(b.try_take(Timestamp(11_000)));
    }
}
