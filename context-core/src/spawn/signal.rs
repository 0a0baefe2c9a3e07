//! The one waiting primitive of the wing: "finished" is a private cancel node.
//!
//! Blocking waits (`GoHandle::join`, `Group::wait`) call [`Context::wait`] on it, async ones
//! poll [`Context::done`]: the tree's own wait paths, which keep wakers and parked threads
//! outside every lock and are loom-tested. Nothing here stores, clones or drops a waker.
//!
//! # Invariants
//!
//! 1. A [`Signal`] lives inside its owner's state, under the owner's lock. The node is made
//!    only when someone is about to wait ([`Signal::listen`]), so work nobody waits for costs
//!    no node.
//! 2. [`Signal::fire`] takes the node's handle out under the owner's lock; the caller drops it
//!    (which cancels the node and wakes every waiter) **after** releasing that lock.
//! 3. The owner's own "finished" flag is set in the same critical section as `fire`, and a
//!    waiter checks that flag before `listen`, in one critical section: so a waiter either sees
//!    the flag or holds a node that the finisher will fire. No lost wake-up.

use crate::{CancelHandle, Context};

/// A lazily made private cancel node, fired once.
#[derive(Default)]
pub(crate) struct Signal {
    node: Option<(Context, CancelHandle)>,
}

impl Signal {
    /// The context to wait on (done once fired). Call under the owner's lock, after checking
    /// that the owner is not finished (invariant 3).
    pub(crate) fn listen(&mut self) -> Context {
        match &self.node {
            Some((ctx, _)) => ctx.clone(),
            None => {
                let (ctx, handle) = Context::background().with_cancel();
                self.node = Some((ctx.clone(), handle));
                ctx
            }
        }
    }

    /// The handle that wakes the waiters when dropped; drop it after the owner's lock
    /// (invariant 2). `None` if nobody listened.
    #[must_use = "drop the handle after releasing the lock: that wakes the waiters"]
    pub(crate) fn fire(&mut self) -> Option<CancelHandle> {
        self.node.take().map(|(_, handle)| handle)
    }
}
