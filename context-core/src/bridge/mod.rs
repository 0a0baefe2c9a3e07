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
    use std::sync::{mpsc, Mutex};
    use std::task::Wake;
    use std::time::Duration;

    /// How long a test waits for what must happen before it fails.
    pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

    /// A waker that says it was woken, then blocks until told to go on (bounded).
    pub(crate) struct Blocks {
        pub(crate) woken: Mutex<mpsc::Sender<()>>,
        pub(crate) go_on: Mutex<mpsc::Receiver<()>>,
    }

    impl Wake for Blocks {
        fn wake(self: std::sync::Arc<Self>) {
            let _ = self.woken.lock().unwrap().send(());
            let _ = self.go_on.lock().unwrap().recv_timeout(PATIENCE);
        }
    }
}
