//! Feature `tokio-util`: bridges between a [`Context`] and tokio-util's [`CancellationToken`],
//! both ways, with no task and no thread per bridge.
//!
//! - [`Context::to_token`]: each live cancellable context that was asked for a token gets one
//!   *shared* token, kept in a process-wide map, and a waker of ours (one [`Waiter::Task`])
//!   registered on it; cancellation wakes it, and waking it cancels the shared token. Callers
//!   get child tokens of the shared one, which tokio-util unlinks when they are dropped. So the
//!   tokens are cancelled on the cancelling thread, before `cancel()` returns, and a context
//!   asked for a million tokens keeps one registration, not a million.
//! - [`Context::with_token`]: a [`TokenLink`] polls the token's `cancelled_owned()` future
//!   with a waker made of the link itself, and is also registered as a waker on the child. When
//!   the token fires, tokio-util wakes the link, which polls the future to `Ready` and cancels
//!   the child, on the thread that cancelled the token, before `cancel()` returns. When the
//!   child is done first, its cancellation wakes the link, which drops the future (so the
//!   token forgets the link).
//!
//! # Invariants
//!
//! 0. The shared-token map has an entry for a cancel node exactly while a [`SharedToken`]
//!    guard is registered on it or being woken (it removes the entry when dropped, which the
//!    node's cancellation does, in its aftermath). The guard holds a `Weak` of the node, which
//!    keeps the node's allocation, so an entry's key (the node's address) is never reused
//!    while the entry exists. (A done node may be freed before the guard is dropped: a
//!    descendant reached by an ancestor's cancellation is settled before that cancellation
//!    wakes its waiters, and another thread may drop its last reference meanwhile.) Lock
//!    order: the map's lock, then a node's (to register); the guard takes the map's lock with
//!    no node lock held. Nothing of tokio-util is called under the map's lock (the map holds
//!    each token in an `Arc`, cloned under it, used after it): tokio-util before 0.7.20 runs
//!    a token's children's wakers (a `with_token` link, which runs a whole cancellation, whose
//!    guards take the map's lock) with that token's lock held.
//! 1. A link's `wait` is `Some` until the link is finished (token fired, or child done), then
//!    `None` forever; only the call that takes it out acts on it, so the child is cancelled at
//!    most once by the link.
//! 2. The link is polled and finished only under its `wait` lock, which is a leaf: nothing
//!    else of ours is locked under it, and the future it polls (tokio-util's) runs no user code
//!    and never wakes inline. The future is dropped, and the child cancelled, after that lock is
//!    released.
//! 3. Ownership: the token's waiter list holds the link (our waker) only while `wait` holds
//!    the future, whose token clone keeps that list alive: a cycle that invariant 1 breaks when
//!    the link finishes, which it does once the child is done, at the latest when its last
//!    handle is dropped. The link points at the child weakly, so the link never keeps a child
//!    alive.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Mutex as StdMutex, OnceLock, Weak};
use std::task::{Context as TaskContext, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::handle::CancelHandle;
use crate::sync::{lock, Arc, Mutex};
use crate::trace::Origin;
use crate::tree::Node;
use crate::tree::Waiter;
use crate::Context;

/// The [`Cause`](crate::Cause) of a context made by [`Context::with_token`] when the token
/// was cancelled; find it with `cause().downcast_ref::<TokenCancelled>()`. Its location is the
/// `with_token` call.
///
/// ```
/// use go_context::{Context, TokenCancelled};
/// use tokio_util::sync::CancellationToken;
///
/// let token = CancellationToken::new();
/// let (ctx, _cancel) = Context::background().with_token(&token);
/// token.cancel();
/// let cause = ctx.cause().unwrap();
/// assert!(cause.downcast_ref::<TokenCancelled>().is_some());
/// assert_eq!(cause.to_string(), "the CancellationToken was cancelled");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TokenCancelled;

impl fmt::Display for TokenCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the CancellationToken was cancelled")
    }
}

impl StdError for TokenCancelled {}

/// The shared token of each cancel node that was asked for one, by the node's address
/// (invariant 0).
fn shared_tokens() -> std::sync::MutexGuard<'static, HashMap<usize, Arc<CancellationToken>>> {
    static SHARED: OnceLock<StdMutex<HashMap<usize, Arc<CancellationToken>>>> = OnceLock::new();
    // No user code runs under this lock: poison can only be a bug here.
    SHARED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The waker registered on a context by [`Context::to_token`]: waking it cancels the shared
/// token; dropping it (which waking does) removes the map entry (invariant 0).
struct SharedToken {
    key: usize,
    token: Arc<CancellationToken>,
    /// Keeps the node's allocation, hence `key`, from being reused until the entry is gone
    /// (invariant 0). Dropped after `drop` has removed the entry.
    _node: Weak<Node>,
}

impl std::task::Wake for SharedToken {
    fn wake(self: Arc<Self>) {
        self.token.cancel();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.token.cancel();
    }
}

impl Drop for SharedToken {
    fn drop(&mut self) {
        let mut shared = shared_tokens();
        let removed = shared.remove(&self.key);
        super::give_back(&mut shared);
        drop(shared);
        drop(removed); // after the map's lock
    }
}

/// One [`Context::with_token`] bridge: see the module docs.
struct TokenLink {
    /// The token's `cancelled_owned()` future while the link is live (invariant 1).
    wait: Mutex<Option<Pin<Box<WaitForCancellationFutureOwned>>>>,
    child: Weak<Node>,
    /// The `with_token` call: the location of the cause.
    location: &'static Location<'static>,
}

impl TokenLink {
    /// Brings the link up to date: finishes it if the child is done, else polls the token's
    /// future and, if the token fired, finishes it and cancels the child.
    fn step(self: &Arc<Self>) {
        let child = self.child.upgrade();
        let mut wait = lock(&self.wait);
        let Some(fut) = wait.as_mut() else {
            return; // finished (invariant 1)
        };
        let fired = match &child {
            Some(node) if node.err().is_none() => {
                let waker = Waker::from(Arc::clone(self));
                fut.as_mut()
                    .poll(&mut TaskContext::from_waker(&waker))
                    .is_ready()
            }
            // The child is done (or gone, which implies done): nothing left to bridge.
            _ => false,
        };
        if fired || child.as_ref().is_none_or(|n| n.err().is_some()) {
            let fut = wait.take();
            drop(wait);
            // Invariant 2: dropped with no lock of ours held; this unregisters the link from
            // the token.
            drop(fut);
            if fired {
                if let Some(node) = &child {
                    super::cancel(node, Origin::Token, Box::new(TokenCancelled), self.location);
                }
            }
        }
    }
}

impl std::task::Wake for TokenLink {
    fn wake(self: Arc<Self>) {
        self.step();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.step();
    }
}

fn cancelled_token() -> CancellationToken {
    let token = CancellationToken::new();
    token.cancel();
    token
}

impl Context {
    /// A tokio-util [`CancellationToken`] that is cancelled when this context is done, for
    /// libraries that take a token. The token is cancelled synchronously: when `cancel()` (or
    /// the deadline, or the drop of the last handle) has made the context done, the token is
    /// cancelled too. No task or thread is involved: the context wakes the token as it would
    /// wake a task. On a context that can never be done, the token is never cancelled and
    /// nothing is registered.
    ///
    /// A dropped token is forgotten at once. The context keeps one registration for all its
    /// tokens, whatever their number, released when it is done (at the latest when its last
    /// [`CancelHandle`] is dropped). Cancelling a token does not cancel the context (use
    /// [`with_token`](Context::with_token) for that direction).
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let token = ctx.to_token();
    /// assert!(!token.is_cancelled());
    /// cancel.cancel();
    /// assert!(token.is_cancelled()); // already, synchronously
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
    pub fn to_token(&self) -> CancellationToken {
        let Some(signal) = self.node.signal() else {
            return CancellationToken::new(); // never done
        };
        let Some(core) = signal.cancel_node() else {
            unreachable!("a signal is a cancel node")
        };
        if core.is_done() {
            return cancelled_token();
        }
        #[cfg(all(test, not(loom)))]
        super::test_support::run_hook(&tests::BEFORE_THE_MAP_LOCK);
        let key = Arc::as_ptr(signal) as usize;
        let mut shared = shared_tokens();
        if let Some(token) = shared.get(&key) {
            #[cfg(all(test, not(loom)))]
            super::test_support::run_hook(&tests::UNDER_THE_MAP_LOCK);
            // Invariant 0: tokio-util is called after the map's lock (a child of a token
            // cancelled meanwhile is born cancelled).
            let token = Arc::clone(token);
            drop(shared);
            return token.child_token();
        }
        let token = Arc::new(CancellationToken::new());
        let guard = Waker::from(Arc::new(SharedToken {
            key,
            token: Arc::clone(&token),
            _node: Arc::downgrade(signal),
        }));
        // Invariant 0: the map's lock, then the node's.
        match core.register(Waiter::Task(guard)) {
            Ok(_) => {
                shared.insert(key, Arc::clone(&token));
                drop(shared);
                token.child_token()
            }
            Err((guard, _)) => {
                drop(shared);
                drop(guard); // done in between; its drop takes the map's lock
                cancelled_token()
            }
        }
    }

    /// A child of this context that is also cancelled when `token` is, with the cause
    /// [`TokenCancelled`] (located at this call), so code holding a tokio-util token can
    /// stop work running under contexts. It is cancelled synchronously: when
    /// `token.cancel()` returns, the child and its descendants report done. No task or thread
    /// is involved: the child waits on the token's `cancelled_owned()` future with a waker of
    /// its own.
    ///
    /// The bridge lasts until the child is done (by the token, its handle, its parent, or the
    /// drop of its last handle); then it lets go of the token. Cancelling the child does not
    /// cancel the token (use [`to_token`](Context::to_token) for that direction).
    ///
    /// ```
    /// use go_context::{Context, Error, TokenCancelled};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let shutdown = CancellationToken::new();
    /// let (ctx, _cancel) = Context::background().with_token(&shutdown);
    /// let (grandchild, _c) = ctx.with_cancel();
    /// shutdown.cancel();
    /// assert_eq!(grandchild.err(), Some(Error::Canceled)); // already, synchronously
    /// assert!(grandchild.cause().unwrap().downcast_ref::<TokenCancelled>().is_some());
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
    #[track_caller]
    pub fn with_token(&self, token: &CancellationToken) -> (Context, CancelHandle) {
        let location = Location::caller();
        let (child, handle) = self.with_cancel();
        let Some(core) = child.node.cancel_node() else {
            unreachable!("with_cancel makes a cancel node")
        };
        if core.is_done() {
            return (child, handle); // born done with the parent's cause
        }
        if token.is_cancelled() {
            super::cancel(
                &child.node,
                Origin::Token,
                Box::new(TokenCancelled),
                location,
            );
            return (child, handle);
        }
        let link = Arc::new(TokenLink {
            wait: Mutex::new(Some(Box::pin(token.clone().cancelled_owned()))),
            child: Arc::downgrade(&child.node),
            location,
        });
        // First the child side: if the child is done at any point from here on, its
        // cancellation wakes the link, which finishes it.
        if core
            .register(Waiter::Task(Waker::from(Arc::clone(&link))))
            .is_err()
        {
            // Done in between (its parent was cancelled): nothing to bridge.
            return (child, handle);
        }
        // Then the token side: the first poll registers the link with the token, or sees it
        // cancelled already and cancels the child.
        link.step();
        (child, handle)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::{mpsc, Mutex};
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::shared_tokens;
    use crate::Context;

    use crate::bridge::test_support::{hold_up, Hook, PATIENCE};

    /// The tests of this module share the process's map: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fault injection: run once by the next `to_token` of a live context, before it takes
    /// the map's lock.
    pub(super) static BEFORE_THE_MAP_LOCK: Mutex<Option<Hook>> = Mutex::new(None);
    /// Fault injection: run once by the next `to_token` that finds its context's shared
    /// token, with the map's lock held.
    pub(super) static UNDER_THE_MAP_LOCK: Mutex<Option<Hook>> = Mutex::new(None);

    /// Regression test (found by the core audit): `to_token` called into tokio-util (the
    /// shared token's `child_token`, which takes that token's lock) with the map's lock held.
    /// tokio-util before 0.7.20 (which the `0.7` requirement admits) wakes a token's children's
    /// waiters with the token's lock held, and a `with_token` bridge is such a waiter: it runs
    /// its context's whole cancellation there, whose bridged `to_token` guards take the map's
    /// lock. So a `to_token` on a context racing that context's cancellation deadlocked with
    /// the canceller (lock order inverted), and every later `to_token` of the process hung on
    /// the map's lock. The hooks pin the interleaving: the racing call passes the live check,
    /// takes the map's lock once the canceller is inside the shared token's `cancel`, and the
    /// canceller then needs the map's lock.
    #[test]
    fn to_token_racing_the_cancellation_of_a_bridged_chain_does_not_deadlock() {
        let _serial = serial();
        let (a, cancel_a) = Context::background().with_cancel();
        let token_a = a.to_token();
        let (b, _cancel_b) = Context::background().with_token(&token_a);
        let _token_b = b.to_token(); // b's guard takes the map's lock when b is done
                                     // Woken first of b's waiters, before b's guard.
        let held = hold_up(&b);
        let go_on_tx = held.go_on.clone();

        // The racing `to_token`: past the live check, it waits for the canceller to be inside
        // b's cancellation (woken by a's shared token), then takes the map's lock.
        let (passed_tx, passed) = mpsc::channel();
        let (in_cascade_tx, in_cascade) = mpsc::channel::<()>();
        *BEFORE_THE_MAP_LOCK.lock().unwrap() = Some(Box::new(move || {
            passed_tx.send(()).unwrap();
            let _ = in_cascade.recv_timeout(PATIENCE);
        }));
        *UNDER_THE_MAP_LOCK.lock().unwrap() = Some(Box::new(move || {
            go_on_tx.send(()).unwrap(); // the canceller goes on, towards the map's lock
        }));
        let racer = {
            let a = a.clone();
            std::thread::spawn(move || drop(a.to_token()))
        };
        passed
            .recv_timeout(PATIENCE)
            .expect("the racing to_token ran");
        let (cancelled_tx, cancelled) = mpsc::channel();
        let canceller = std::thread::spawn(move || {
            cancel_a.cancel();
            let _ = cancelled_tx.send(());
        });
        held.woken
            .recv_timeout(PATIENCE)
            .expect("b's cancellation woke its waker");
        in_cascade_tx.send(()).unwrap();
        let returned = cancelled.recv_timeout(Duration::from_secs(10));
        assert!(
            returned.is_ok(),
            "cancel() deadlocked with a to_token of the same context"
        );
        canceller.join().unwrap();
        racer.join().unwrap();
        assert!(b.is_done());
        drop(held);
    }

    /// Regression test: the shared-token map kept the capacity of its largest burst for the
    /// life of the process. Ten thousand contexts asked for a token at once, then all done,
    /// left a map sized for ten thousand entries, though every entry had gone.
    #[test]
    fn a_burst_of_shared_tokens_gives_the_map_memory_back() {
        let _serial = serial();
        const N: usize = 10_000;
        let contexts: Vec<_> = (0..N)
            .map(|_| Context::background().with_cancel())
            .collect();
        let tokens: Vec<CancellationToken> =
            contexts.iter().map(|(ctx, _)| ctx.to_token()).collect();
        assert!(shared_tokens().len() >= N);
        // Each last handle cancels its context, whose guard removes its entry.
        drop(contexts);
        assert!(tokens.iter().all(CancellationToken::is_cancelled));
        let (len, capacity) = {
            let shared = shared_tokens();
            (shared.len(), shared.capacity())
        };
        assert_eq!(len, 0, "every entry went with its context");
        assert!(
            capacity <= 1024,
            "the map kept room for {capacity} entries after the burst"
        );
    }
}
