//! [`Slot`]: where spawned work leaves its outcome, and how a joiner waits for it (through a
//! [`Signal`], the wing's one waiting primitive).
//!
//! # Invariants
//!
//! 1. `put` happens once (the runtime glue delivers exactly once); it sets `finished` and
//!    fires the signal in one critical section, dropping the signal's handle after the lock.
//! 2. The outcome (a user value) is moved out under the lock and dropped, or handed to the
//!    joiner, outside it. No user code runs under the lock.

use std::future::Future;
use std::pin::Pin;
use std::task::{self, Poll};

use super::errors::JoinError;
use super::signal::Signal;
use crate::sync::{lock, Mutex};
use crate::Done;

pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    finished: bool,
    outcome: Option<Result<T, JoinError>>,
    signal: Signal,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot {
            state: Mutex::new(State {
                finished: false,
                outcome: None,
                signal: Signal::default(),
            }),
        }
    }

    /// Leaves the outcome and wakes the joiner (invariant 1).
    pub(crate) fn put(&self, outcome: Result<T, JoinError>) {
        let fire = {
            let mut st = lock(&self.state);
            debug_assert!(!st.finished, "spawned work delivers exactly once");
            st.finished = true;
            st.outcome = Some(outcome);
            st.signal.fire()
        };
        drop(fire);
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    /// The outcome if finished; else the context to wait on.
    fn take_or_listen(&self) -> Result<Result<T, JoinError>, crate::Context> {
        let mut st = lock(&self.state);
        if st.finished {
            Ok(st.outcome.take().expect(
                "a spawned work's outcome is taken once: join and await consume the handle",
            ))
        } else {
            Err(st.signal.listen())
        }
    }

    /// Blocks until the outcome is there (the caller checked that it may block).
    pub(crate) fn take_blocking(&self) -> Result<T, JoinError> {
        loop {
            match self.take_or_listen() {
                Ok(outcome) => return outcome,
                Err(finished) => {
                    finished.wait();
                }
            }
        }
    }

    /// Polls for the outcome, waiting on `done` (made on the first pending poll).
    pub(crate) fn poll_take(
        &self,
        done: &mut Option<Pin<Box<Done>>>,
        cx: &mut task::Context<'_>,
    ) -> Poll<Result<T, JoinError>> {
        loop {
            if let Some(d) = done {
                if d.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            match self.take_or_listen() {
                Ok(outcome) => {
                    *done = None;
                    return Poll::Ready(outcome);
                }
                Err(finished) => *done = Some(Box::pin(finished.done())),
            }
        }
    }
}
