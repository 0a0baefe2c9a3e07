//! A node's deadline on the timer: the entry (`Deadline`) and what firing it does.
//!
//! The timer is generic over what it fires and knows nothing of nodes; this file is the one
//! place that knows both. It does not know how to cancel either: what firing does is a
//! [`Fire`], given by `cancel.rs` (which arms and disarms entries), so the imports go one way:
//! `cancel` → `deadline` → `timer` → `clock`.
//!
//! A queued entry is 16 bytes: the node's *address* (no reference count: arming and
//! disarming touch no counter of the node) and the cause the deadline reports (one word: the
//! location of the call that set it, or the shared location and custom error of a
//! `with_deadline_cause`); the queue adds the deadline. The cause travels with the entry, so
//! arming and disarming a custom cause takes no lock but the entry's shard's, and a disarmed
//! entry's cause is dropped with it, after every lock is released. A *due* entry (`Due`, taken out by the firer) holds a
//! strong reference instead, made under the shard's lock (timer invariant 7).
//!
//! # Invariant: a queued entry's node is alive
//!
//! While an entry is in a queue, its node's strong count is at least one. So `take` may make
//! a strong reference from the address, and the address is unique among queued entries: the
//! key `(deadline, address)` of a stale `disarm` can never remove somebody else's entry.
//!
//! Why. The entry is armed by `new_cancel_node` while the node is live and before it is linked
//! anywhere (no list, no handle: the caller holds the one `Arc`), so every cancellation of it
//! comes after the arm: one that reaches it through its parent's list took the parent's lock
//! after the link, which follows the arm; one through a handle, after `new_cancel_node`
//! returned; the firer, after taking the entry under its shard's lock. Freeing the node needs
//! its last handle gone, so a cancellation that made it done (tree invariant 3); that
//! cancellation disarms this entry (tree invariant 8), holding a strong reference to the node
//! until the disarm returns (its caller's `Arc` for the origin, a `strong()` reference for a
//! descendant). Its state was written under the node's lock after the arm, and before the
//! disarm takes the shard's lock. That disarm either removes the entry, or finds it gone: taken by the firer
//! (`take`, under the same shard lock, made its own reference first) or never armed. The one
//! way back into a queue is a takeover's `requeue`, which puts a due entry back only if its
//! node is not done, read under the shard's lock: a cancellation that makes it done later
//! takes the shard's lock after that (its state is written before its disarm locks), so its
//! disarm finds the entry again. Miri runs `tree::deadline::tests`, which race the firing of
//! entries against the drops of their last handles.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::error::CauseData;
use crate::sync::Arc;
use crate::timer::{Expire, Id, Ticks, Timer};

use super::node::Node;

/// What a due deadline does to its node (for the tree: cancel it with `DeadlineExceeded`).
pub(super) trait Fire: Send + 'static {
    fn fire(node: &Arc<Node>, cause: CauseData);
}

/// The timer of node deadlines, firing `F`.
pub(super) struct Deadlines<F: Fire> {
    timer: Timer<Deadline<F>>,
}

/// A node's deadline entry, as it waits in the queue: the node's address (alive while the
/// entry is queued: the invariant above).
struct Deadline<F> {
    node: NonNull<Node>,
    /// What the node reports when the entry fires.
    cause: CauseData,
    fire: PhantomData<fn() -> F>,
}

// SAFETY: the entry is a `Node` address (a `Node` is `Send + Sync`: it is shared as
// `Arc<Node>` across threads) and a `CauseData` (`Send`); the address is only turned into a
// reference under the invariant above.
unsafe impl<F> Send for Deadline<F> {}

/// A due entry, taken out of the queue by the firer: it holds its node.
struct Due<F> {
    node: Arc<Node>,
    cause: CauseData,
    fire: PhantomData<fn() -> F>,
}

/// The address of `node`, as `Arc::as_ptr` gives it (with the provenance `Arc::from_raw` needs).
fn address(node: &Arc<Node>) -> NonNull<Node> {
    NonNull::new(Arc::as_ptr(node).cast_mut()).expect("an `Arc` is never null")
}

fn id(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

impl<F: Fire> Id for Deadline<F> {
    fn id(&self) -> usize {
        self.node.as_ptr() as usize
    }
}

impl<F: Fire> Id for Due<F> {
    fn id(&self) -> usize {
        id(&self.node)
    }
}

impl<F: Fire> Expire for Deadline<F> {
    type Due = Due<F>;

    /// A clone of the node, to see whether it is done: the due entry's own reference outlives
    /// every look, so dropping the clone while `expire` runs never drops the node.
    type Probe = Arc<Node>;

    fn take(self) -> Due<F> {
        let ptr = self.node.as_ptr().cast_const();
        // SAFETY: called under the entry's shard lock while it was queued (timer invariant 7),
        // so the node is alive (the invariant above): its strong count is at least one, and
        // `ptr` came from `Arc::as_ptr` of an `Arc<Node>`.
        let node = unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        };
        Due {
            node,
            cause: self.cause,
            fire: PhantomData,
        }
    }

    fn requeue(due: Due<F>) -> Result<(Self, Arc<Node>), Due<F>> {
        // Under the shard's lock: a node done now is, or will be, disarmed by its
        // cancellation; one live now will be disarmed after this lock is released.
        #[cfg(test)]
        tests::REQUEUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if due.node.err().is_some() {
            return Err(due);
        }
        let entry = Deadline {
            node: address(&due.node),
            cause: due.cause,
            fire: PhantomData,
        };
        Ok((entry, due.node))
    }

    fn probe(due: &Due<F>) -> Arc<Node> {
        Arc::clone(&due.node)
    }

    fn landed(node: &Arc<Node>) -> bool {
        node.err().is_some()
    }

    fn expire(due: Due<F>, _at: Ticks) {
        F::fire(&due.node, due.cause);
    }
}

/// The OS refused to start the timer's thread: no deadline can fire until it does.
pub(super) struct Refused;

impl Refused {
    /// The panic that reports it (with no lock held).
    pub(super) const MESSAGE: &'static str = "go-context: the OS refused to start the timer thread";
}

impl<F: Fire> Deadlines<F> {
    pub(super) const fn new() -> Deadlines<F> {
        Deadlines {
            timer: Timer::new("context-timer"),
        }
    }

    /// Arms the timer to fire `node` with `cause` at `at`. Called while `node` is live and
    /// linked nowhere, by its only holder (the invariant above), with no lock held.
    ///
    /// `Err` if the OS refused to start the timer's thread: the entry is armed all the same
    /// (the next deadline tries to start the thread again); the caller cancels the node, which
    /// disarms it, and reports the refusal with no lock held (a panic runs the panic hook,
    /// user code).
    pub(super) fn arm(
        &'static self,
        at: Ticks,
        node: &Arc<Node>,
        cause: CauseData,
    ) -> Result<(), Refused> {
        let entry = Deadline {
            node: address(node),
            cause,
            fire: PhantomData,
        };
        let armed = self.timer.arm(at, entry);
        #[cfg(test)]
        if tests::REFUSE.with(std::cell::Cell::get) {
            return Err(Refused);
        }
        armed.map_err(|_| Refused)
    }

    /// Removes `node`'s entry armed for `at`, if it has not fired yet. The caller holds `node`
    /// until this returns (the invariant above).
    pub(super) fn disarm(&self, at: Ticks, node: &Arc<Node>) {
        // The entry (its custom cause) is dropped here, outside every timer lock. A custom
        // cause is a user value: a panic of its `Drop` (the hook has reported it) must not cut
        // short the cancellation, nor what follows it (the `unlink` of a dropped handle, tree
        // invariant 3).
        let entry = self.timer.disarm(at, id(node));
        crate::unwind::contain(move || drop(entry));
    }

    #[cfg(test)]
    pub(super) fn is_armed(&self, node: &Arc<Node>) -> bool {
        self.timer.contains_id(id(node))
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! A custom cause lives in its timer entry: it reaches the node when the entry fires, and a
    //! disarm frees it at once.

    use std::fmt;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Mutex, Weak};
    use std::task::{Context as TaskContext, Wake, Waker};
    use std::time::{Duration, Instant};

    use crate::sync::Arc;
    use crate::tree;
    use crate::{Context, Error};

    /// How many due entries a takeover offered back to the queues (`requeue`).
    pub(super) static REQUEUED: AtomicUsize = AtomicUsize::new(0);

    std::thread_local! {
        /// Fault injection, for this thread's arms only: the OS "refuses" the timer's thread.
        pub(in crate::tree) static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    const PATIENCE: Duration = Duration::from_secs(30);

    fn rounds() -> u32 {
        if cfg!(miri) {
            6
        } else {
            300
        }
    }

    /// Waits (bounded) until `weak`'s node is freed: the firer lets go of a due entry just
    /// after its expiry returns.
    fn freed<T>(weak: &Weak<T>) {
        let bound = Instant::now() + PATIENCE;
        while weak.strong_count() > 0 {
            assert!(Instant::now() < bound, "a node outlived its last reference");
            std::thread::yield_now();
        }
    }

    /// A custom cause that tells (through a `Weak` of its token) whether it is still alive.
    #[derive(Debug)]
    struct Tracked(#[allow(dead_code)] std::sync::Arc<()>);

    impl fmt::Display for Tracked {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("tracked cause")
        }
    }

    impl std::error::Error for Tracked {}

    fn tracked() -> (Tracked, Weak<()>) {
        let token = std::sync::Arc::new(());
        let weak = std::sync::Arc::downgrade(&token);
        (Tracked(token), weak)
    }

    #[test]
    fn a_custom_cause_survives_arm_to_fire() {
        let (cause, alive) = tracked();
        // Long enough for the next line to find the entry still queued on a loaded machine
        // (under Miri, 5 ms once passed before it: the entry had fired).
        let timeout = Duration::from_millis(if cfg!(miri) { 1000 } else { 100 });
        let (ctx, cancel) = Context::background().with_timeout_cause(timeout, cause);
        assert!(tree::is_armed(&ctx.node));
        assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        let got = ctx.cause().expect("done");
        assert_eq!(got.err(), Error::DeadlineExceeded);
        assert_eq!(got.to_string(), "tracked cause");
        assert!(
            got.downcast_ref::<Tracked>().is_some(),
            "the very error given"
        );
        assert_eq!(got.location().file(), file!());
        assert!(alive.upgrade().is_some(), "the node holds it now");
        drop((got, ctx, cancel));
        // Freed with the node, once the firer lets go of it too.
        freed(&alive);
    }

    #[test]
    fn a_disarm_frees_the_custom_cause_at_once() {
        let (cause, alive) = tracked();
        let (parent, _parent_cancel) = Context::background().with_cancel();
        let (ctx, cancel) = parent.with_timeout_cause(Duration::from_secs(3600), cause);
        let node = Arc::clone(&ctx.node);
        assert!(tree::is_armed(&node));
        assert!(alive.upgrade().is_some(), "held by the armed entry");
        cancel.cancel();
        assert!(!tree::is_armed(&node));
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            Error::Canceled.to_string()
        );
        // `ctx` and the node are still alive: only the entry held the cause.
        assert!(alive.upgrade().is_none(), "freed by the disarm");
        drop((ctx, cancel));
    }

    #[test]
    fn a_parents_cancellation_disarms_its_childs_custom_cause() {
        let (parent, parent_cancel) = Context::background().with_cancel();
        let mut kept = Vec::new();
        for _ in 0..3 {
            let (cause, alive) = tracked();
            let (ctx, cancel) = parent.with_timeout_cause(Duration::from_secs(3600), cause);
            kept.push((ctx, cancel, alive));
        }
        parent_cancel.cancel();
        for (ctx, _, alive) in &kept {
            assert_eq!(ctx.err(), Some(Error::Canceled));
            assert!(!tree::is_armed(&ctx.node));
            assert!(alive.upgrade().is_none(), "freed by the disarm");
        }
    }

    /// Under a done parent the child is born done with the parent's cause; no entry is armed,
    /// and its custom cause is dropped at once.
    #[test]
    fn a_child_born_done_gives_its_armed_cause_back() {
        let (parent, parent_cancel) = Context::background().with_cancel();
        parent_cancel.cancel();
        let (cause, alive) = tracked();
        let (ctx, cancel) = parent.with_timeout_cause(Duration::from_secs(3600), cause);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            Error::Canceled.to_string()
        );
        assert!(!tree::is_armed(&ctx.node));
        assert!(alive.upgrade().is_none(), "freed by the disarm");
        assert_eq!(tree::child_count(&parent.node), 0);
        drop((ctx, cancel));
    }

    /// The entry is armed before the child is linked, so a deadline may fire before the link:
    /// the child is then listed done, leaves the list with its handle, and every node is
    /// freed once.
    #[test]
    fn a_deadline_that_fires_before_the_link_lists_the_child_done() {
        let (parent, _parent_cancel) = Context::background().with_cancel();
        for i in 0..rounds() * 4 {
            let (ctx, cancel) = parent.with_timeout(Duration::from_nanos(u64::from(i % 64) * 50));
            assert!(tree::child_count(&parent.node) <= 1);
            let weak = Arc::downgrade(&ctx.node);
            assert_eq!(ctx.wait(), Error::DeadlineExceeded);
            assert!(!tree::is_armed(&ctx.node));
            drop((ctx, cancel));
            assert_eq!(tree::child_count(&parent.node), 0);
            freed(&weak);
        }
    }

    /// The firer takes entries out by their address alone while their last handles are
    /// dropped on this thread, some before the deadline, some after, some while it fires:
    /// every node is freed once (Miri reports a use of a freed node).
    #[test]
    fn a_firing_races_the_drop_of_the_last_handle() {
        let (parent, _parent_cancel) = Context::background().with_cancel();
        for round in 0..rounds() {
            let timeout = Duration::from_micros(u64::from(round % 40));
            let (ctx, cancel) = parent.with_timeout(timeout);
            let weak = Arc::downgrade(&ctx.node);
            if round % 3 == 0 {
                assert_eq!(ctx.wait(), Error::DeadlineExceeded);
            }
            drop((ctx, cancel));
            freed(&weak);
        }
    }

    /// Wakes on the firer's thread: cancels and drops `cancel` (whose entries the firer took
    /// out in the same batch), then blocks until told to go on: an expiry stuck in user code.
    struct Stuck {
        go_on: Mutex<mpsc::Receiver<()>>,
        cancel: Mutex<Vec<(Context, crate::CancelHandle)>>,
    }

    impl Wake for Stuck {
        fn wake(self: std::sync::Arc<Self>) {
            for (ctx, handle) in std::mem::take(&mut *self.cancel.lock().unwrap()) {
                handle.cancel();
                drop((ctx, handle));
            }
            let _ = self.go_on.lock().unwrap().recv_timeout(PATIENCE);
        }
    }

    /// A waker stuck in the firer: the standby takes over and puts back the due entries
    /// behind it (`requeue`). Those whose nodes were cancelled meanwhile (by the stuck waker,
    /// while the firer held them) are let go and freed; the others are queued again and fire.
    /// Requeuing a cancelled one would leave the address of a freed node in a queue (Miri).
    #[test]
    fn a_takeover_requeues_live_entries_and_frees_cancelled_ones() {
        let mut lead = Duration::from_millis(20);
        loop {
            let requeued = REQUEUED.load(Ordering::Relaxed);
            // One deadline for all: popped in one batch, in address order.
            let at = Instant::now() + lead;
            let mut nodes: Vec<_> = (0..9)
                .map(|_| Context::background().with_deadline(at))
                .collect();
            nodes.sort_by_key(|(ctx, _)| Arc::as_ptr(&ctx.node) as usize);
            let (stuck, _stuck_cancel) = nodes.remove(0);
            let mut cancelled = Vec::new();
            let mut to_cancel = Vec::new();
            let mut live = Vec::new();
            for (i, (ctx, handle)) in nodes.into_iter().enumerate() {
                if i % 2 == 0 {
                    cancelled.push(Arc::downgrade(&ctx.node));
                    to_cancel.push((ctx, handle));
                } else {
                    live.push((ctx, handle));
                }
            }
            let (go_on, rx) = mpsc::channel();
            let waker = Waker::from(std::sync::Arc::new(Stuck {
                go_on: Mutex::new(rx),
                cancel: Mutex::new(to_cancel),
            }));
            let mut done = Box::pin(stuck.done());
            let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
            drop(waker);
            if polled.is_ready() || Instant::now() >= at {
                // Too slow to set it up before the deadline (a loaded machine, Miri): again,
                // with more room.
                assert!(lead < PATIENCE, "could not set up before the deadline");
                lead *= 4;
                continue;
            }
            // While `stuck`'s waker still blocks the firer that popped them all.
            for (ctx, _) in &live {
                assert_eq!(ctx.wait(), Error::DeadlineExceeded);
            }
            for weak in &cancelled {
                freed(weak);
            }
            go_on.send(()).unwrap();
            drop(done);
            assert!(
                REQUEUED.load(Ordering::Relaxed) >= requeued + 8,
                "the takeover offered back every entry behind the stuck one"
            );
            return;
        }
    }

    /// A value whose drop blocks until told to go on, or `2 * PATIENCE`.
    struct SlowDrop {
        dropping: Mutex<mpsc::Sender<()>>,
        go_on: Mutex<mpsc::Receiver<()>>,
    }

    impl Drop for SlowDrop {
        fn drop(&mut self) {
            let _ = self.dropping.get_mut().unwrap().send(());
            let _ = self.go_on.get_mut().unwrap().recv_timeout(2 * PATIENCE);
        }
    }

    /// Wakes on the firer's thread and drops every other reference to the context it waits on.
    struct DropOnWake(Mutex<Option<(std::pin::Pin<Box<crate::Done>>, crate::CancelHandle)>>);

    impl Wake for DropOnWake {
        fn wake(self: std::sync::Arc<Self>) {
            let taken = self.0.lock().unwrap().take();
            drop(taken);
        }
    }

    /// The firer's probe of an expired entry holds the last reference to its node (its waker
    /// dropped every other one), whose parent holds a value that is slow to drop: the firer
    /// drops it after the expiry returned. A stall there must be taken over as a stall in the
    /// expiry is, not hold up every later deadline.
    #[test]
    fn a_slow_drop_of_the_last_reference_after_an_expiry_is_taken_over() {
        let mut lead = Duration::from_millis(20);
        loop {
            let (dropping_tx, dropping) = mpsc::channel();
            let (go_on, go_on_rx) = mpsc::channel();
            let parent = Context::background().with_value(SlowDrop {
                dropping: Mutex::new(dropping_tx),
                go_on: Mutex::new(go_on_rx),
            });
            let at = Instant::now() + lead;
            let (ctx, handle) = parent.with_deadline(at);
            drop(parent);
            let dropper = std::sync::Arc::new(DropOnWake(Mutex::new(None)));
            let waker = Waker::from(std::sync::Arc::clone(&dropper));
            let mut done = Box::pin(ctx.done());
            let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
            drop(waker);
            *dropper.0.lock().unwrap() = Some((done, handle));
            drop(ctx);
            if polled.is_ready() || Instant::now() >= at {
                // Too slow to set it up before the deadline: again, with more room (and the
                // value dropped at once, wherever that happens).
                go_on.send(()).unwrap();
                drop(dropper.0.lock().unwrap().take());
                assert!(lead < PATIENCE, "could not set up before the deadline");
                lead *= 4;
                continue;
            }
            // A timer thread is in the value's drop now.
            dropping
                .recv_timeout(PATIENCE)
                .expect("the value was dropped");
            let (other, _other_handle) =
                Context::background().with_timeout(Duration::from_millis(1));
            let fired = other.wait_timeout(PATIENCE);
            go_on.send(()).unwrap();
            assert_eq!(
                fired,
                Some(Error::DeadlineExceeded),
                "a later deadline waited for a slow drop on the timer's thread"
            );
            return;
        }
    }

    /// Cancels and drops `victim` (whose entry the firer took out in the same batch), then
    /// blocks until told to go on: an expiry stuck in user code.
    struct StuckDropping {
        go_on: Mutex<mpsc::Receiver<()>>,
        victim: Mutex<Option<(Context, crate::CancelHandle)>>,
    }

    impl Wake for StuckDropping {
        fn wake(self: std::sync::Arc<Self>) {
            if let Some((ctx, handle)) = self.victim.lock().unwrap().take() {
                handle.cancel();
                drop((ctx, handle));
            }
            let _ = self.go_on.lock().unwrap().recv_timeout(2 * PATIENCE);
        }
    }

    /// A takeover lets go of a due entry whose node was cancelled and let go of while the
    /// stuck firer held it: the last reference, to a node whose parent's value is slow to drop.
    /// A stall in that drop must not hold up every later deadline (it ran on the thread taking
    /// over, before it fired anything, with no standby to take over from it).
    #[test]
    fn a_slow_drop_in_a_takeover_does_not_hold_up_later_deadlines() {
        let mut lead = Duration::from_millis(20);
        loop {
            let at = Instant::now() + lead;
            let mut nodes: Vec<_> = (0..2)
                .map(|_| {
                    let (dropping_tx, dropping) = mpsc::channel();
                    let (go_on, go_on_rx) = mpsc::channel();
                    let parent = Context::background().with_value(SlowDrop {
                        dropping: Mutex::new(dropping_tx),
                        go_on: Mutex::new(go_on_rx),
                    });
                    let (ctx, handle) = parent.with_deadline(at);
                    (ctx, handle, dropping, go_on)
                })
                .collect();
            // One deadline for both: popped in one batch, in address order.
            nodes.sort_by_key(|(ctx, ..)| Arc::as_ptr(&ctx.node) as usize);
            let (victim, victim_handle, victim_dropping, victim_go_on) = nodes.pop().unwrap();
            let (stuck, _stuck_handle, _, stuck_go_on) = nodes.pop().unwrap();
            // The stuck one's value may drop at once, wherever that happens.
            stuck_go_on.send(()).unwrap();
            let (go_on, rx) = mpsc::channel();
            let waker = Waker::from(std::sync::Arc::new(StuckDropping {
                go_on: Mutex::new(rx),
                victim: Mutex::new(Some((victim, victim_handle))),
            }));
            let mut done = Box::pin(stuck.done());
            let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
            drop(waker);
            if polled.is_ready() || Instant::now() >= at {
                // Too slow to set it up before the deadline: again, with more room. The
                // deadline may have fired and the victim's value been dropped already (its
                // receiver gone), so these sends may find nobody.
                let _ = victim_go_on.send(());
                let _ = go_on.send(());
                assert!(lead < PATIENCE, "could not set up before the deadline");
                lead *= 4;
                continue;
            }
            // The takeover is in the victim's value's drop now (the stuck waker still blocks).
            victim_dropping
                .recv_timeout(PATIENCE)
                .expect("the victim's value was dropped");
            let (other, _other_handle) =
                Context::background().with_timeout(Duration::from_millis(1));
            let fired = other.wait_timeout(PATIENCE);
            victim_go_on.send(()).unwrap();
            go_on.send(()).unwrap();
            drop(done);
            assert_eq!(
                fired,
                Some(Error::DeadlineExceeded),
                "a later deadline waited for a slow drop in a takeover"
            );
            return;
        }
    }

    struct NoFire;

    impl super::Fire for NoFire {
        fn fire(_: &Arc<super::Node>, _: crate::error::CauseData) {}
    }

    /// A custom cause whose drop panics.
    #[derive(Debug)]
    struct PanicsOnDrop;

    impl fmt::Display for PanicsOnDrop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a cause that panics when dropped")
        }
    }

    impl std::error::Error for PanicsOnDrop {}

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("a cause's drop panics (on purpose)");
            }
        }
    }

    /// Regression test (found by the locks audit): a disarmed entry's custom cause is a user
    /// value, dropped by the cancellation that disarms it. Its panic unwound out of the drop
    /// of the last handle between its `cancel` and its `unlink`, so the freed node's address
    /// stayed in its parent's children (tree invariant 3).
    #[test]
    fn a_cause_that_panics_when_disarmed_does_not_cut_a_handle_drop_short() {
        // Declared first, dropped last: keeps the child alive (no use after free) even when
        // the drop below is cut short and the parent's cancellation walks its list.
        let mut keep = Vec::new();
        let (parent, _parent_cancel) = Context::background().with_cancel();
        let (child, handle) = parent.with_timeout_cause(Duration::from_secs(3600), PanicsOnDrop);
        keep.push(child);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle)));
        assert!(dropped.is_ok(), "the drop of the last handle unwound");
        assert_eq!(
            tree::child_count(&parent.node),
            0,
            "the child whose last handle was dropped is still listed"
        );
        drop(keep);
    }

    #[cfg(not(loom))]
    type Hook = Box<dyn FnOnce()>;

    #[cfg(not(loom))]
    std::thread_local! {
        /// Fault injection, for this thread's cancellations: run once, after a cancellation's
        /// disarms and before it lets go of the descendants it held for them.
        static AFTER_THE_DISARMS: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
    }

    #[cfg(not(loom))]
    pub(in crate::tree) fn after_the_disarms() {
        if let Some(hook) = AFTER_THE_DISARMS.with(|h| h.borrow_mut().take()) {
            hook();
        }
    }

    #[cfg(not(loom))]
    type ArmHook = Box<dyn FnOnce(&Arc<super::Node>)>;

    #[cfg(not(loom))]
    std::thread_local! {
        /// Fault injection, for this thread's derivations: run once, after a new node's entry
        /// is armed and before the node is linked under its parent (or born done).
        static AFTER_THE_ARM: std::cell::RefCell<Option<ArmHook>> = const { std::cell::RefCell::new(None) };
    }

    #[cfg(not(loom))]
    pub(in crate::tree) fn after_the_arm(node: &Arc<super::Node>) {
        if let Some(hook) = AFTER_THE_ARM.with(|h| h.borrow_mut().take()) {
            hook(node);
        }
    }

    /// Regression test (session 16, core audit): a child derived with a deadline from a parent
    /// that is already done must be born done with the parent's error and cause, with no timer
    /// armed (Go's rule). The entry was armed before the parent was looked at, so when the
    /// deriving thread lost the core between the arm and the link (the hook stands for that),
    /// a close deadline fired first and the child reported `DeadlineExceeded` and its own
    /// cause. Without the hook it happens by itself on a loaded machine
    /// (`core_tree::a_child_of_a_done_parent_never_reports_its_own_deadline`).
    #[cfg(not(loom))]
    #[test]
    fn a_child_of_a_done_parent_is_not_armed_so_its_deadline_cannot_win() {
        let (parent, parent_cancel) = Context::background().with_cancel();
        parent_cancel.cancel_with_cause("the parent is gone");
        AFTER_THE_ARM.with(|h| {
            *h.borrow_mut() = Some(Box::new(|node: &Arc<super::Node>| {
                // The deriving thread descheduled until the entry fires.
                let bound = Instant::now() + PATIENCE;
                while node.err().is_none() {
                    assert!(Instant::now() < bound, "the armed entry did not fire");
                    std::thread::yield_now();
                }
            }))
        });
        let (ctx, _cancel) =
            parent.with_timeout_cause(Duration::from_millis(1), "the child's own deadline");
        AFTER_THE_ARM.with(|h| h.borrow_mut().take());
        assert_eq!(
            ctx.cause().map(|c| (c.err(), c.to_string())),
            Some((Error::Canceled, "the parent is gone".to_string())),
            "a child of a done parent reported its own deadline"
        );
        assert!(!tree::is_armed(&ctx.node));
    }

    /// A value whose drop panics.
    #[cfg(not(loom))]
    struct ValuePanicsOnDrop;

    #[cfg(not(loom))]
    impl Drop for ValuePanicsOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("a value's drop panics (on purpose)");
            }
        }
    }

    /// Regression test (found by the locks audit): a cancellation holds a reference to each
    /// descendant with a deadline, to disarm it, and lets go of it after the disarms. If the
    /// descendant's own handles went meanwhile, that reference is the last, and its drop
    /// drops the values above it (user values). Their panic unwound out of the drop of the
    /// parent's last handle before its `unlink`, so the parent was freed still listed in the
    /// grandparent's children (invariant 3).
    #[cfg(not(loom))]
    #[test]
    fn a_panic_dropping_a_descendant_after_the_disarms_does_not_cut_a_handle_drop_short() {
        // Declared first, dropped last: keeps the parent alive (no use after free) even when
        // the drop below is cut short.
        let mut keep = Vec::new();
        let (grandparent, _grandparent_cancel) = Context::background().with_cancel();
        let (parent, parent_cancel) = grandparent.with_cancel();
        keep.push(parent.clone());
        let (child, child_cancel) = parent
            .with_value(ValuePanicsOnDrop)
            .with_timeout(std::time::Duration::from_secs(3600));
        drop(child);
        drop(parent);
        // Run by the parent's cancellation, after it disarmed the child's entry: the child's
        // handle goes (the child is done and settled, so its drop returns at once), and the
        // cancellation's reference is the child's last.
        AFTER_THE_DISARMS.with(|h| *h.borrow_mut() = Some(Box::new(move || drop(child_cancel))));
        let dropped =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(parent_cancel)));
        AFTER_THE_DISARMS.with(|h| h.borrow_mut().take());
        assert!(
            dropped.is_ok(),
            "the drop of the parent's last handle unwound"
        );
        assert_eq!(
            tree::child_count(&grandparent.node),
            0,
            "the parent whose last handle was dropped is still listed"
        );
        drop(keep);
    }

    #[test]
    fn an_entry_is_two_words() {
        use std::mem::size_of;
        // The node's address and the cause (one tagged word); the queue adds the deadline,
        // and its inline slot costs no more.
        assert_eq!(size_of::<crate::error::CauseData>(), 8);
        assert_eq!(size_of::<super::Deadline<NoFire>>(), 16);
        assert_eq!(
            size_of::<Option<(crate::timer::Ticks, super::Deadline<NoFire>)>>(),
            24
        );
    }

    /// The OS refusing the timer's thread is reported by a panic raised with no lock of ours
    /// held (the panic hook is user code). The hook here cancels the parent on another thread,
    /// which needs the new child's lock if the child is still linked: with the panic raised
    /// under that lock (as it was), the cancellation could not finish while the hook ran.
    #[test]
    fn a_refused_timer_thread_panics_with_no_lock_held() {
        use std::cell::Cell;
        std::thread_local!(static HOOKED: Cell<bool> = const { Cell::new(false) });
        let (parent, cancel) = Context::background().with_cancel();
        let cancel = Mutex::new(Some(cancel));
        let (finished_tx, finished_rx) = mpsc::channel::<bool>();
        let finished_tx = Mutex::new(finished_tx);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !HOOKED.with(Cell::get) {
                return previous(info);
            }
            let cancel = cancel.lock().unwrap().take().expect("one panic");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                cancel.cancel();
                let _ = tx.send(());
            });
            let finished = rx.recv_timeout(Duration::from_secs(5)).is_ok();
            finished_tx.lock().unwrap().send(finished).unwrap();
        }));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            REFUSE.with(|r| r.set(true));
            HOOKED.with(|h| h.set(true));
            let child = parent.with_timeout(Duration::from_secs(3600));
            drop(child);
        }));
        REFUSE.with(|r| r.set(false));
        HOOKED.with(|h| h.set(false));
        drop(std::panic::take_hook());
        let payload = result.expect_err("a refused timer thread panics");
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        assert_eq!(message, Some(super::Refused::MESSAGE));
        assert!(
            finished_rx.recv().unwrap(),
            "the hook ran under the new child's lock"
        );
        assert!(parent.is_done());
        assert_eq!(tree::child_count(&parent.node), 0);
    }
}
