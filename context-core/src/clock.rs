//! The clock: deadlines as [`Ticks`], 8 bytes instead of a 12-byte `Instant`.
//!
//! A tick is a signed nanosecond count from a process-wide epoch (the first reading), so a
//! deadline fits in one `i64` in every cancel node and in every timer entry. This module is a
//! leaf: it imports nothing of the crate.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A deadline: nanoseconds since the process's epoch (negative before it). [`NEVER`] means none.
pub(crate) type Ticks = i64;

/// "No deadline".
pub(crate) const NEVER: Ticks = i64::MIN;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as ticks; `None` if it is too far in the future to represent (about 292 years), which
/// the caller treats as "no deadline". An instant too far in the past is clamped to the earliest
/// tick (`NEVER + 1`): it has passed just as surely, and a passed deadline must still cancel.
pub(crate) fn ticks(at: Instant) -> Option<Ticks> {
    let e = epoch();
    match at.checked_duration_since(e) {
        Some(after) => i64::try_from(after.as_nanos()).ok(),
        // -i64::MAX is NEVER + 1: never NEVER.
        None => Some(-i64::try_from((e - at).as_nanos()).unwrap_or(i64::MAX)),
    }
}

/// The instant `t` stands for (`t` is not [`NEVER`]).
pub(crate) fn instant(t: Ticks) -> Instant {
    let e = epoch();
    if t >= 0 {
        e + Duration::from_nanos(t as u64)
    } else {
        e - Duration::from_nanos(t.unsigned_abs())
    }
}

/// The time now, in ticks.
pub(crate) fn now() -> Ticks {
    ticks(Instant::now()).expect("the clock is within 292 years of the epoch")
}

/// `d` in ticks, saturating (a `Duration` beyond 292 years is "forever" to the clock).
pub(crate) fn span(d: Duration) -> Ticks {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip_exactly() {
        let now = Instant::now();
        for at in [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(3600 * 24 * 365),
            epoch(),
        ] {
            assert_eq!(instant(ticks(at).unwrap()), at);
        }
        if let Some(past) = epoch().checked_sub(Duration::from_millis(5)) {
            assert_eq!(instant(ticks(past).unwrap()), past);
        }
        let far = now.checked_add(Duration::from_secs(400 * 365 * 24 * 3600));
        if let Some(far) = far {
            assert_eq!(ticks(far), None, "too far to represent: no deadline");
        }
        let long_ago = now.checked_sub(Duration::from_secs(400 * 365 * 24 * 3600));
        if let Some(long_ago) = long_ago {
            assert_eq!(
                ticks(long_ago),
                Some(NEVER + 1),
                "clamped: still in the past"
            );
        }
    }

    #[test]
    fn spans_saturate() {
        assert_eq!(span(Duration::from_millis(3)), 3_000_000);
        assert_eq!(span(Duration::MAX), i64::MAX);
    }
}
