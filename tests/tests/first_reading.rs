//! A `with_timeout` that is the process's first reading of go-context's clock. This binary
//! has one test, so nothing of ours reads the clock before it.
//!
//! Regression test (found by the docs audit, session 11): the first reading came out a few
//! nanoseconds *before* the clock's epoch (the reading was taken before the epoch it is
//! measured from), so `now + Duration::MAX` in ticks did not overflow and
//! `with_timeout(Duration::MAX)` got a deadline 292 years out, with a timer entry, instead of
//! none; every later call gave none.

use std::time::Duration;

use go_context::Context;

#[test]
fn a_timeout_past_the_clocks_range_is_no_deadline_even_on_the_first_reading() {
    let (first, _c) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(first.deadline(), None, "the first reading");
    let (second, _c) = Context::background().with_timeout(Duration::MAX);
    assert_eq!(second.deadline(), None, "a later reading");
    assert!(!first.is_done() && !second.is_done());
}
