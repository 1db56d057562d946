//! Simulated time: milliseconds since the world started, and seconds (as scenarios write them)
//! converted to it.

/// Milliseconds of simulated time.
pub(crate) type Ms = u64;

/// Seconds of simulated time as milliseconds (negative and NaN become 0): the core's own
/// conversion, so a scenario's seconds mean what a `Config`'s seconds mean.
pub(crate) fn secs(s: f64) -> Ms {
    podwarden_core::time::secs_to_ms(s)
}
