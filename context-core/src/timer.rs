//! One timer engine for every deadline in the process, generic over what it fires.
//!
//! - [`queue`]: the ordered store (`(deadline, id)` order, sorted chunks);
//! - [`driver`]: the sharded queues and the threads that fire due entries, in order, never
//!   early, with no lock held, and take over when an expiry is stuck in slow user code.
//!
//! The timer knows nothing of nodes: what an entry is and does when it fires is the tree's
//! (`tree/deadline.rs` implements [`Expire`] for a node's deadline entry). This module imports
//! only the clock, whose [`Ticks`], [`NEVER`], [`ticks`], [`instant`] and [`now`] it re-exports
//! for the crate.
//!
//! # What runs on the timer's threads
//!
//! A due entry's [`Expire::expire`], which may run user code (for a node: its waiters' wakers,
//! the drops of the last references to values). None of it runs under a lock of the timer. If
//! one expiry takes longer than [`driver::STALL`] (10 ms) after it has landed (a slow waker, a slow
//! `Drop`), a standby thread takes over the firing, so later deadlines are late by about
//! 10 ms, not by the slow code's duration. Up to 30 expiries can be stuck at once
//! ([`driver::MAX_THREADS`] threads, less the firer and the standby); beyond that, deadlines wait for
//! one to return.

mod driver;
mod queue;

pub(crate) use crate::clock::{instant, now, ticks, Ticks, NEVER};
pub(crate) use driver::{Expire, Timer};
pub(crate) use queue::Id;
