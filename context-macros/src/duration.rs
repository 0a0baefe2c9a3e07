//! Go's `time.ParseDuration`, at expansion time: `300ms`, `1.5h`, `2h45m`, `10us`, `1µs`, `1ns`.
//!
//! Grammar (Go's): `0`, or one or more `<number><unit>` pairs, where a number is `digits`,
//! `digits.digits`, `digits.` or `.digits` and a unit is one of `ns`, `us`, `µs` (U+00B5),
//! `μs` (U+03BC), `ms`, `s`, `m`, `h`. Range (Go's): at most `i64::MAX` nanoseconds, about
//! 2,562,047 hours. Where we differ: Go accepts a sign; a timeout has none, so `-1s` and `+1s`
//! are errors. Fractions are exact and truncated to the nanosecond (Go goes through `f64`,
//! which only differs past 2^53 ns).

use std::time::Duration;

/// Units as Go spells them, with their length in nanoseconds.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// What to write, appended to every error.
pub(crate) const ACCEPTED: &str =
    "expected a number followed by a unit, one of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`; \
     e.g. \"300ms\", \"1.5h\", \"2h45m\"";

/// Go's `time.ParseDuration` limit: `i64::MAX` nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses `text`; the error says what is wrong, without the list of units (see [`ACCEPTED`]).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let rest = match text.as_bytes().first() {
        None => return Err("empty duration".to_owned()),
        Some(b'-') => return Err("a timeout cannot be negative: remove the `-`".to_owned()),
        Some(b'+') => return Err("a timeout takes no sign: remove the `+`".to_owned()),
        Some(_) => text,
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut s = rest;
    while !s.is_empty() {
        // The number: digits, then optionally `.` and digits; at least one digit in all.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = s.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(match after.chars().next() {
                Some(c) if after.len() == s.len() => {
                    format!("expected a number, found `{c}`")
                }
                _ => "a `.` needs digits on at least one side".to_owned(),
            });
        }
        // The unit: everything up to the next digit or `.`.
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let number = &s[..s.len() - after.len()];
        if unit.is_empty() {
            return Err(format!("missing unit after `{number}`"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit `{unit}` in `{number}{unit}`"));
        };
        let overflow =
            || format!("`{text}` is out of range: the longest timeout is 2562047h47m16.854775807s");
        // Integer part, exactly; anything above the limit is an overflow.
        let mut value: u128 = 0;
        for d in int_part.bytes() {
            value = value * 10 + u128::from(d - b'0');
            if value * scale > MAX_NANOS {
                return Err(overflow());
            }
        }
        value *= scale;
        // Fraction, truncated to whole nanoseconds; digits past 20 change less than a nanosecond.
        let mut num: u128 = 0;
        let mut den: u128 = 1;
        for d in frac_part.bytes().take(20) {
            num = num * 10 + u128::from(d - b'0');
            den *= 10;
        }
        value += num * scale / den;
        total += value;
        if total > MAX_NANOS {
            return Err(overflow());
        }
        s = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "out of range".to_owned())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| "out of range".to_owned())?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn go_examples() {
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("1\u{b5}s"), Duration::from_micros(1));
        assert_eq!(ok("1\u{3bc}s"), Duration::from_micros(1));
        assert_eq!(ok("1ns"), Duration::from_nanos(1));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1));
        assert_eq!(ok("1h1m1s1ms1us1ns"), Duration::new(3661, 1_001_001));
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        assert_eq!(
            ok("9223372036854775807ns"),
            Duration::new(9_223_372_036, 854_775_807)
        );
    }

    #[test]
    fn go_rejections() {
        for bad in [
            "",
            "-1s",
            "+1s",
            "1",
            "s",
            ".s",
            "1x",
            "1.5",
            "1sec",
            "2562048h",
            "9223372036854775808ns",
            "99999999999999999999999999999999999999999h",
            "3000000h",
            "1h 2m",
            "1S",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse("1x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("2562048h").unwrap_err().contains("out of range"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
        assert!(parse("5").unwrap_err().contains("missing unit"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Go's `time.Duration.String()`: `0s`, `1ns`, `1.5µs`, `300ms`, `2h45m0s`, `1m0.5s`.
    fn go_format(nanos: u64) -> String {
        fn fixed(value: u64, scale: u64, digits: usize) -> String {
            let (int, frac) = (value / scale, value % scale);
            if frac == 0 {
                return int.to_string();
            }
            let frac = format!("{frac:0digits$}");
            format!("{int}.{}", frac.trim_end_matches('0'))
        }
        match nanos {
            0 => "0s".to_owned(),
            1..=999 => format!("{nanos}ns"),
            1_000..=999_999 => format!("{}\u{b5}s", fixed(nanos, 1_000, 3)),
            1_000_000..=999_999_999 => format!("{}ms", fixed(nanos, 1_000_000, 6)),
            _ => {
                let secs = nanos / 1_000_000_000;
                let (h, m) = (secs / 3600, secs / 60 % 60);
                let s = fixed(
                    secs % 60 * 1_000_000_000 + nanos % 1_000_000_000,
                    1_000_000_000,
                    9,
                );
                match (h, m) {
                    (0, 0) => format!("{s}s"),
                    (0, m) => format!("{m}m{s}s"),
                    (h, m) => format!("{h}h{m}m{s}s"),
                }
            }
        }
    }

    #[test]
    fn go_format_matches_go() {
        assert_eq!(go_format(5400 * 1_000_000_000), "1h30m0s");
        assert_eq!(go_format(1_500), "1.5\u{b5}s");
        assert_eq!(go_format(60_500_000_000), "1m0.5s");
        assert_eq!(go_format(i64::MAX as u64), "2562047h47m16.854775807s");
    }

    proptest! {
        #[test]
        fn any_string_gives_a_value_or_an_error(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn duration_like_strings_never_panic(s in "[-+]?([0-9]{0,22}(\\.[0-9]{0,25})?(ns|us|\u{b5}s|ms|s|m|h|x|)){1,4}") {
            if let Ok(d) = parse(&s) {
                prop_assert!(d.as_nanos() <= MAX_NANOS);
            }
        }

        #[test]
        fn round_trips_go_formatting(nanos in 0..=i64::MAX as u64) {
            let text = go_format(nanos);
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed.as_nanos(), u128::from(nanos), "{}", text);
        }
    }
}
