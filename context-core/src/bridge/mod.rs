//! Bridges from other cancellation sources to contexts: tokio-util's `CancellationToken`
//! (feature `tokio-util`) and OS signals (feature `signal`).
//!
//! Each bridge is one module; what they share is here: cancelling a context from outside its
//! handles, with a cause of the bridge's own and one trace event as the origin.

#[cfg(all(feature = "signal", any(unix, windows)))]
pub(crate) mod signal;
#[cfg(feature = "tokio-util")]
pub(crate) mod token;

use std::panic::Location;

use crate::error::{BoxError, CauseData, Error};
use crate::sync::Arc;
use crate::trace::Origin;
use crate::tree::{self, Node};

/// Cancels `node` with [`Error::Canceled`] and `cause` (reported at `location`) unless it is
/// done already; `tree::cancel` traces `origin` if this call made it done. The caller holds no lock of
/// ours (tree invariant 6).
pub(crate) fn cancel(
    node: &Arc<Node>,
    origin: Origin,
    cause: BoxError,
    location: &'static Location<'static>,
) {
    tree::cancel(
        node,
        Error::Canceled,
        CauseData::custom(cause, location),
        origin,
    );
}

/// Gives a burst's memory back: a map under a quarter full shrinks to twice its entries
/// (only then, so the rehashes stay amortised O(1)), as the callback pool's queue does.
pub(crate) fn give_back<K: Eq + std::hash::Hash, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        let room = map.len() * 2;
        map.shrink_to(room);
    }
}

/// What the bridges' unit tests share.
#[cfg(test)]
#[allow(dead_code)] // each bridge's tests use it under that bridge's own cfg
pub(crate) mod test_support {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{mpsc, Mutex};
    use std::task::{Context as TaskContext, Wake, Waker};
    use std::time::Duration;

    use crate::{Context, Done};

    /// How long a test waits for what must happen before it fails.
    pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

    /// A fault-injection hook: set in a slot, run once by the code under test.
    pub(crate) type Hook = Box<dyn FnOnce() + Send>;

    /// Runs (and clears) the hook in `slot`, if one is set.
    pub(crate) fn run_hook(slot: &Mutex<Option<Hook>>) {
        let hook = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// A waker that says it was woken, then blocks until told to go on (bounded).
    struct Blocks {
        woken: Mutex<mpsc::Sender<()>>,
        go_on: Mutex<mpsc::Receiver<()>>,
    }

    impl Wake for Blocks {
        fn wake(self: std::sync::Arc<Self>) {
            let _ = self.woken.lock().unwrap().send(());
            let _ = self.go_on.lock().unwrap().recv_timeout(PATIENCE);
        }
    }

    /// A cancellation of a context held up in its first wake (see [`hold_up`]).
    pub(crate) struct HeldUp {
        /// Says the cancellation reached the waker.
        pub(crate) woken: mpsc::Receiver<()>,
        /// Lets it go on (so does dropping this sender).
        pub(crate) go_on: mpsc::Sender<()>,
        /// The registration: keep it until the cancellation has taken the waker.
        pub(crate) done: Pin<Box<Done>>,
    }

    /// Registers on `ctx.done()` a waker that blocks when woken. Registered after every
    /// waiter already there (a bridge's guard among them), it is woken first (a list is
    /// drained from its head), so a cancellation of `ctx` stops in it with `ctx` done and
    /// those waiters not yet woken.
    pub(crate) fn hold_up(ctx: &Context) -> HeldUp {
        let (woken_tx, woken) = mpsc::channel();
        let (go_on, go_on_rx) = mpsc::channel();
        let waker = Waker::from(std::sync::Arc::new(Blocks {
            woken: Mutex::new(woken_tx),
            go_on: Mutex::new(go_on_rx),
        }));
        let mut done = Box::pin(ctx.done());
        let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
        assert!(polled.is_pending(), "the context is done already");
        HeldUp { woken, go_on, done }
    }
}
