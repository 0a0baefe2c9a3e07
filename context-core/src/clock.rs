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
        Some(after) => nanos(after),
        // -i64::MAX is NEVER + 1: never NEVER.
        None => Some(-i64::try_from((e - at).as_nanos()).unwrap_or(i64::MAX)),
    }
}

/// `d` in nanoseconds, if it fits an `i64` (in 64-bit arithmetic: cheaper than `as_nanos`'s
/// 128 bits on the `now()` of every `with_timeout`).
#[inline]
fn nanos(d: Duration) -> Option<i64> {
    let secs = i64::try_from(d.as_secs()).ok()?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(d.subsec_nanos()))
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

/// The time now, in ticks: never negative, since the epoch is fixed before the clock is read
/// (the first reading is the epoch or after it).
pub(crate) fn now() -> Ticks {
    let e = epoch();
    nanos(Instant::now().saturating_duration_since(e))
        .expect("the clock is within 292 years of the epoch")
}

/// `d` in ticks, saturating (a `Duration` beyond 292 years is "forever" to the clock).
pub(crate) fn span(d: Duration) -> Ticks {
    checked_span(d).unwrap_or(i64::MAX)
}

/// `d` in ticks, if it fits (about 292 years); `None` beyond, which a timeout takes as "no
/// deadline".
pub(crate) fn checked_span(d: Duration) -> Option<Ticks> {
    nanos(d)
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
    fn nanos_is_exact_up_to_i64_max_and_none_past_it() {
        let max = Duration::from_nanos(i64::MAX as u64);
        assert_eq!(nanos(max), Some(i64::MAX));
        assert_eq!(nanos(max + Duration::from_nanos(1)), None);
        assert_eq!(nanos(Duration::new(u64::MAX, 999_999_999)), None);
        assert_eq!(nanos(Duration::new(3, 7)), Some(3_000_000_007));
        assert_eq!(nanos(Duration::ZERO), Some(0));
    }

    #[test]
    fn spans_saturate() {
        assert_eq!(span(Duration::from_millis(3)), 3_000_000);
        assert_eq!(span(Duration::MAX), i64::MAX);
        assert_eq!(checked_span(Duration::MAX), None);
        assert_eq!(checked_span(Duration::from_nanos(7)), Some(7));
    }
}
