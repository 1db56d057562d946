//! Simulated time: milliseconds since the world started, and seconds (as scenarios write them)
//! converted to it.

/// Milliseconds of simulated time.
pub(crate) type Ms = u64;

/// Seconds of simulated time as milliseconds (negative and NaN become 0): the core's own
/// conversion, so a scenario's seconds mean what a `Config`'s seconds mean.
pub(crate) fn secs(s: f64) -> Ms {
    podwarden_core::time::secs_to_ms(s)
}

/// Milliseconds as seconds for a person to read, to a tenth: `900` for 900,000 ms, `12.5` for
/// 12,500 ms, `250` for 250,040 ms.
pub(crate) fn secs_text(ms: Ms) -> String {
    let tenths = ms.saturating_add(50) / 100;
    if tenths.is_multiple_of(10) {
        (tenths / 10).to_string()
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}
