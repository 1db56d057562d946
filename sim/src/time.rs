//! Simulated time: milliseconds since the world started, and seconds (as scenarios write them)
//! converted to it.

/// Milliseconds of simulated time.
pub(crate) type Ms = u64;

/// Seconds of simulated time as milliseconds (negative and NaN become 0).
pub(crate) fn secs(s: f64) -> Ms {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0).round() as Ms
    } else {
        0
    }
}
