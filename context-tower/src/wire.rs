//! The wire forms of a deadline: gRPC's `grpc-timeout` and the `*-timeout-ms` form of HTTP.
//!
//! Pure functions: no allocation, no clock, and no panic on any input bytes.
//!
//! `grpc-timeout` (gRPC's PROTOCOL-HTTP2): a positive integer of at most 8 ASCII digits, then
//! one unit: `H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n`
//! nanoseconds. [`format_grpc_timeout`] picks the finest unit whose value fits in 8 digits,
//! rounds **up** (a propagated deadline is never shortened), never writes `0n` and saturates
//! at `99999999H`. `*-timeout-ms` (e.g. Connect's `connect-timeout-ms`): at most 10 digits of
//! milliseconds, also rounded up, never `0`.
//!
//! ```
//! use context_tower::wire::{format_grpc_timeout, parse_grpc_timeout};
//! use std::time::Duration;
//!
//! // 1.5 s and 1 ns: the finest unit that fits in 8 digits is the microsecond, rounded up.
//! let budget = Duration::from_nanos(1_500_000_001);
//! let sent = format_grpc_timeout(budget);
//! assert_eq!(sent.as_str(), "1500001u");
//! let received = parse_grpc_timeout(sent.as_bytes()).unwrap();
//! assert!(received >= budget); // rounded up, never shortened
//! assert!(parse_grpc_timeout(b"123456789S").is_err()); // 9 digits
//! ```

use std::fmt;
use std::time::Duration;

/// The largest value `grpc-timeout` allows: 8 digits.
const GRPC_MAX_VALUE: u64 = 99_999_999;
/// The largest value `*-timeout-ms` allows: 10 digits.
const MS_MAX_VALUE: u64 = 9_999_999_999;

/// Why a timeout header could not be read.
///
/// ```
/// use context_tower::wire::{parse_grpc_timeout, WireError};
/// assert_eq!(parse_grpc_timeout(b"10x"), Err(WireError::UnknownUnit));
/// assert_eq!(WireError::UnknownUnit.to_string(), "unknown timeout unit");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// No digits at all (empty value, or a unit alone).
    Empty,
    /// More digits than the format allows (8 for `grpc-timeout`, 10 for `*-timeout-ms`).
    TooManyDigits,
    /// A byte that is not an ASCII digit where digits are expected (a sign, a space, ...).
    InvalidDigit,
    /// A `grpc-timeout` unit other than `H M S m u n`.
    UnknownUnit,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Empty => "empty timeout value",
            WireError::TooManyDigits => "too many digits in timeout value",
            WireError::InvalidDigit => "invalid digit in timeout value",
            WireError::UnknownUnit => "unknown timeout unit",
        })
    }
}

impl std::error::Error for WireError {}

/// A formatted timeout value, kept on the stack (at most 11 bytes).
///
/// ```
/// use context_tower::wire::format_grpc_timeout;
/// use std::time::Duration;
/// let v = format_grpc_timeout(Duration::from_secs(1));
/// assert_eq!(v.as_str(), "1000000u");
/// assert_eq!(v.as_bytes(), b"1000000u");
/// assert_eq!(v.to_string(), "1000000u");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimeoutValue {
    buf: [u8; 11],
    len: u8,
}

impl TimeoutValue {
    pub(crate) fn new(value: u64, unit: Option<u8>) -> TimeoutValue {
        let mut digits = [0u8; 10];
        let mut n = 0;
        let mut v = value;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 || n == digits.len() {
                break;
            }
        }
        let mut buf = [0u8; 11];
        for i in 0..n {
            buf[i] = digits[n - 1 - i];
        }
        let mut len = n;
        if let Some(u) = unit {
            buf[len] = u;
            len += 1;
        }
        TimeoutValue {
            buf,
            len: len as u8,
        }
    }

    /// The value as bytes, ready for a header.
    ///
    /// ```
    /// # use context_tower::wire::format_timeout_ms;
    /// # use std::time::Duration;
    /// assert_eq!(format_timeout_ms(Duration::from_micros(1500)).as_bytes(), b"2");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The value as text (always ASCII).
    ///
    /// ```
    /// # use context_tower::wire::format_grpc_timeout;
    /// # use std::time::Duration;
    /// assert_eq!(format_grpc_timeout(Duration::from_nanos(5)).as_str(), "5n");
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and unit letters are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The value as a header value (no allocation beyond the header's own copy).
    ///
    /// ```
    /// # use context_tower::wire::format_grpc_timeout;
    /// # use std::time::Duration;
    /// let h = format_grpc_timeout(Duration::from_millis(250)).to_header_value();
    /// assert_eq!(h, "250000u");
    /// ```
    pub fn to_header_value(&self) -> http::HeaderValue {
        // Digits and ASCII letters are always valid header bytes.
        http::HeaderValue::from_bytes(self.as_bytes())
            .unwrap_or_else(|_| http::HeaderValue::from_static("1n"))
    }
}

impl fmt::Display for TimeoutValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TimeoutValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeoutValue({:?})", self.as_str())
    }
}

/// Parses up to `max_digits` ASCII digits.
fn parse_digits(digits: &[u8], max_digits: usize) -> Result<u64, WireError> {
    if digits.is_empty() {
        return Err(WireError::Empty);
    }
    let mut value: u64 = 0;
    for (i, &b) in digits.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(WireError::InvalidDigit);
        }
        if i >= max_digits {
            return Err(WireError::TooManyDigits);
        }
        // At most 10 digits: never overflows a u64.
        value = value * 10 + u64::from(b - b'0');
    }
    Ok(value)
}

/// Parses a `grpc-timeout` value (`"100m"`, `"5S"`, ...).
///
/// `0n` (or any zero) parses to [`Duration::ZERO`]: a caller with no time left, which a server
/// answers without running the handler.
///
/// ```
/// use context_tower::wire::{parse_grpc_timeout, WireError};
/// use std::time::Duration;
/// assert_eq!(parse_grpc_timeout(b"100m"), Ok(Duration::from_millis(100)));
/// assert_eq!(parse_grpc_timeout(b"2H"), Ok(Duration::from_secs(7200)));
/// assert_eq!(parse_grpc_timeout(b"123456789n"), Err(WireError::TooManyDigits));
/// assert_eq!(parse_grpc_timeout(b"-1S"), Err(WireError::InvalidDigit));
/// ```
pub fn parse_grpc_timeout(value: &[u8]) -> Result<Duration, WireError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(WireError::Empty);
    };
    let per_unit: fn(u64) -> Duration = match unit {
        b'H' => |v| Duration::from_secs(v * 3600),
        b'M' => |v| Duration::from_secs(v * 60),
        b'S' => Duration::from_secs,
        b'm' => Duration::from_millis,
        b'u' => Duration::from_micros,
        b'n' => Duration::from_nanos,
        b'0'..=b'9' if digits.is_empty() => return Err(WireError::Empty),
        b'0'..=b'9' => return Err(WireError::UnknownUnit),
        _ => return Err(WireError::UnknownUnit),
    };
    // At most 8 digits: `v * 3600` cannot overflow.
    parse_digits(digits, 8).map(per_unit)
}

/// Formats a timeout as `grpc-timeout`: the finest unit whose value fits in 8 digits, rounded
/// up, never `0n` (zero becomes `1n`: treat a zero budget as expired before you get here),
/// saturating at `99999999H` (so [`Duration::MAX`] is fine).
///
/// ```
/// use context_tower::wire::format_grpc_timeout;
/// use std::time::Duration;
/// assert_eq!(format_grpc_timeout(Duration::from_millis(300)).as_str(), "300000u");
/// assert_eq!(format_grpc_timeout(Duration::from_secs(30)).as_str(), "30000000u");
/// assert_eq!(format_grpc_timeout(Duration::from_secs(300)).as_str(), "300000m");
/// assert_eq!(format_grpc_timeout(Duration::from_nanos(100_000_001)).as_str(), "100001u");
/// assert_eq!(format_grpc_timeout(Duration::ZERO).as_str(), "1n");
/// assert_eq!(format_grpc_timeout(Duration::MAX).as_str(), "99999999H");
/// ```
pub fn format_grpc_timeout(timeout: Duration) -> TimeoutValue {
    let (value, unit) = grpc_timeout_parts(timeout);
    TimeoutValue::new(value, Some(unit))
}

/// [`format_grpc_timeout`]'s value and unit, before they are written out.
pub(crate) fn grpc_timeout_parts(timeout: Duration) -> (u64, u8) {
    // Nanoseconds in a u64 cover 584 years (u64 division is much cheaper than u128); the
    // longer rest saturates to hours below.
    let Ok(nanos) = u64::try_from(timeout.as_nanos()) else {
        // A sub-second rest counts as one more second, so the hours still round up.
        let secs = timeout
            .as_secs()
            .saturating_add(u64::from(timeout.subsec_nanos() > 0));
        let hours = secs.div_ceil(3600).min(GRPC_MAX_VALUE);
        return (hours, b'H');
    };
    let nanos = nanos.max(1);
    const UNITS: [(u64, u8); 6] = [
        (1, b'n'),
        (1_000, b'u'),
        (1_000_000, b'm'),
        (1_000_000_000, b'S'),
        (60_000_000_000, b'M'),
        (3_600_000_000_000, b'H'),
    ];
    for (per, unit) in UNITS {
        let v = nanos.div_ceil(per);
        if v <= GRPC_MAX_VALUE {
            return (v, unit);
        }
    }
    (GRPC_MAX_VALUE, b'H')
}

/// Parses a `*-timeout-ms` value: at most 10 ASCII digits of milliseconds.
///
/// ```
/// use context_tower::wire::{parse_timeout_ms, WireError};
/// use std::time::Duration;
/// assert_eq!(parse_timeout_ms(b"1500"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_timeout_ms(b"1.5"), Err(WireError::InvalidDigit));
/// assert_eq!(parse_timeout_ms(b""), Err(WireError::Empty));
/// ```
pub fn parse_timeout_ms(value: &[u8]) -> Result<Duration, WireError> {
    parse_digits(value, 10).map(Duration::from_millis)
}

/// Formats a timeout as `*-timeout-ms`: milliseconds rounded up, never `0`, saturating at
/// ten nines.
///
/// ```
/// use context_tower::wire::format_timeout_ms;
/// use std::time::Duration;
/// assert_eq!(format_timeout_ms(Duration::from_micros(1)).as_str(), "1");
/// assert_eq!(format_timeout_ms(Duration::from_secs(2)).as_str(), "2000");
/// assert_eq!(format_timeout_ms(Duration::MAX).as_str(), "9999999999");
/// ```
pub fn format_timeout_ms(timeout: Duration) -> TimeoutValue {
    TimeoutValue::new(timeout_ms_value(timeout), None)
}

/// [`format_timeout_ms`]'s milliseconds, before they are written out.
pub(crate) fn timeout_ms_value(timeout: Duration) -> u64 {
    match u64::try_from(timeout.as_nanos()) {
        Ok(nanos) => nanos.div_ceil(1_000_000).clamp(1, MS_MAX_VALUE),
        Err(_) => MS_MAX_VALUE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grpc_examples() {
        assert_eq!(parse_grpc_timeout(b"0n"), Ok(Duration::ZERO));
        assert_eq!(
            parse_grpc_timeout(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse_grpc_timeout(b"n"), Err(WireError::Empty));
        assert_eq!(parse_grpc_timeout(b""), Err(WireError::Empty));
        assert_eq!(parse_grpc_timeout(b"5"), Err(WireError::Empty));
        assert_eq!(parse_grpc_timeout(b"55"), Err(WireError::UnknownUnit));
        assert_eq!(parse_grpc_timeout(b"1s"), Err(WireError::UnknownUnit));
        assert_eq!(parse_grpc_timeout(b" 1S"), Err(WireError::InvalidDigit));
        assert_eq!(parse_grpc_timeout(b"+1S"), Err(WireError::InvalidDigit));
        assert_eq!(
            parse_grpc_timeout(b"12345678M"),
            Ok(Duration::from_secs(12_345_678 * 60))
        );
        assert_eq!(
            format_grpc_timeout(Duration::from_nanos(99_999_999)).as_str(),
            "99999999n"
        );
        assert_eq!(
            format_grpc_timeout(Duration::from_nanos(100_000_000)).as_str(),
            "100000u"
        );
        assert_eq!(
            format_grpc_timeout(Duration::from_secs(100_000)).as_str(),
            "100000S"
        );
        assert_eq!(
            format_grpc_timeout(Duration::from_secs(3600 * 24 * 365 * 20)).as_str(),
            "10512000M"
        );
        assert_eq!(
            format_grpc_timeout(Duration::from_secs(6_000_000_000)).as_str(),
            "1666667H"
        );
    }

    #[test]
    fn ms_examples() {
        assert_eq!(parse_timeout_ms(b"0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_timeout_ms(b"9999999999"),
            Ok(Duration::from_millis(9_999_999_999))
        );
        assert_eq!(
            parse_timeout_ms(b"12345678901"),
            Err(WireError::TooManyDigits)
        );
        assert_eq!(parse_timeout_ms(b"-5"), Err(WireError::InvalidDigit));
        assert_eq!(format_timeout_ms(Duration::ZERO).as_str(), "1");
        assert_eq!(
            format_timeout_ms(Duration::from_nanos(1_000_001)).as_str(),
            "2"
        );
    }

    /// The unit of a formatted grpc-timeout, as a duration.
    fn unit_of(v: &TimeoutValue) -> Duration {
        match v.as_bytes().last() {
            Some(b'n') => Duration::from_nanos(1),
            Some(b'u') => Duration::from_micros(1),
            Some(b'm') => Duration::from_millis(1),
            Some(b'S') => Duration::from_secs(1),
            Some(b'M') => Duration::from_secs(60),
            _ => Duration::from_secs(3600),
        }
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..10_000_000_000).prop_map(Duration::from_nanos),
            (0u64..u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..400_000_000_000).prop_map(Duration::from_secs),
            // Whole hours past u64 nanoseconds, plus at most a nanosecond.
            (5_124_096u64..99_999_999, 0u32..2).prop_map(|(h, n)| Duration::new(h * 3600, n)),
        ]
    }

    /// Regression test (found by an audit): past u64 nanoseconds (584 years) the sub-second
    /// rest was dropped before rounding up to hours, so the value came out short.
    #[test]
    fn past_u64_nanoseconds_hours_still_round_up() {
        let hours = 5_124_096u64;
        let exact = Duration::from_secs(hours * 3600);
        assert_eq!(format_grpc_timeout(exact).as_str(), "5124096H");
        let over = exact + Duration::from_nanos(1);
        assert_eq!(format_grpc_timeout(over).as_str(), "5124097H");
        assert_eq!(format_grpc_timeout(Duration::MAX).as_str(), "99999999H");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn grpc_any_bytes_parse_or_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = parse_grpc_timeout(&bytes);
        }

        #[test]
        fn grpc_near_valid_bytes(digits in "[0-9+\\- ]{0,10}", unit in "[HMSmunxs0-9]") {
            let s = format!("{digits}{unit}");
            if let Ok(d) = parse_grpc_timeout(s.as_bytes()) {
                // Only what the spec allows parses.
                prop_assert!(digits.len() <= 8 && digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(d <= Duration::from_secs(99_999_999 * 3600));
            }
        }

        #[test]
        fn ms_any_bytes_parse_or_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(d) = parse_timeout_ms(&bytes) {
                prop_assert!(d <= Duration::from_millis(MS_MAX_VALUE));
            }
        }

        #[test]
        fn grpc_format_then_parse_never_shortens(d in any_duration()) {
            let v = format_grpc_timeout(d);
            prop_assert!(v.as_bytes().len() <= 9);
            prop_assert_ne!(v.as_str(), "0n");
            let back = parse_grpc_timeout(v.as_bytes()).unwrap();
            let saturated = v.as_str() == "99999999H";
            if !saturated {
                prop_assert!(back >= d, "{d:?} -> {v} -> {back:?}");
                prop_assert!(back - d < unit_of(&v).max(Duration::from_nanos(1)) || d.is_zero(),
                    "{d:?} -> {v} -> {back:?} loses more than one unit");
            } else {
                prop_assert!(d >= Duration::from_secs(99_999_998 * 3600));
            }
        }

        #[test]
        fn ms_format_then_parse_never_shortens(d in any_duration()) {
            let v = format_timeout_ms(d);
            prop_assert!(v.as_bytes().len() <= 10);
            prop_assert_ne!(v.as_str(), "0");
            let back = parse_timeout_ms(v.as_bytes()).unwrap();
            if v.as_str() != "9999999999" {
                prop_assert!(back >= d);
                prop_assert!(back - d < Duration::from_millis(1) || d.is_zero());
            }
        }
    }
}
