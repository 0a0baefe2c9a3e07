//! The context tree: nodes, the links from parents to children, cancellation, and the waiters
//! of each node.
//!
//! Every [`Context`](crate::Context) is an `Arc<Node>`. A node points *up* to its parent
//! (strongly: values, deadlines and `Debug` walk upwards). Cancellation flows *down*: every
//! cancellable node (a [`CancelNode`], made by `with_cancel` / `with_deadline`) keeps the list of
//! its live cancellable descendants that have no other cancellable node in between (its
//! *children*). A value node or a `without_cancel` node is not cancellable itself: a value node
//! borrows the signal of its nearest cancellable ancestor (its *scope*), a `without_cancel` node
//! and the roots have none.
//!
//! The *link parent* of a cancel node is the cancellable node its parent's signal comes from:
//! the parent itself, the parent's scope, or nothing (under a root or `without_cancel`).
//!
//! Modules: [`node`] (the node, its body and its state word), [`lock`] (the node's lock, two
//! bits of that word, and the table its waiters park on), [`children`] (the children list),
//! [`waiter_list`] (the intrusive waiter list), [`deadline`] (a node's entry on the timer),
//! [`cancel`](mod@cancel) (linking and cancelling) and [`chain`] (a context's chain, printed by
//! `Context`'s `Debug` and the trace event). They import downwards only: `cancel` → `chain`,
//! `deadline` → `node` → `children`, `lock`, `waiter_list`; `deadline` is the one module that knows
//! the timer, which knows nothing of nodes; nothing in the tree imports `Context`.
//!
//! # Invariants
//!
//! 1. A cancel node's state (the top bits of its `word`) moves from live to `CANCELED` or
//!    `DEADLINE` once, under the node's lock, after its cause is written (`Phase::Done`), and
//!    never changes again. Readers need no lock: `is_done`/`err` are one `Acquire` load of
//!    `word`, which pairs with the `Release` of `set_done` or of the unlock that sets it
//!    (`set_done_on_unlock`: most nodes' state is set by the read-modify-write that releases
//!    their lock, so lock holders see the cause and the state together), so a reader that saw
//!    the state and then takes the lock finds the cause. The state is set at once, not by the
//!    unlock, where something read without the lock must not be seen before it: on an origin
//!    with children (invariant 5) and on a node with waiters (their notified marks).
//! 2. From its creation until the drop of its last [`CancelHandle`](crate::CancelHandle), a
//!    cancel node with a link parent has its address in the link parent's `children` at index
//!    `slot` (written under the link parent's lock, so `Relaxed` suffices: the lock's
//!    acquire/release orders every access), unless the link parent is done. It leaves that
//!    list exactly once: by `unlink`, which the drop of its last handle runs after that drop's
//!    `cancel`, or when the link parent's cancellation takes the whole list. Not at its own
//!    cancellation: a cancelled child whose handle is still held stays listed (as
//!    tokio-util's does), so `cancel()` does only what its waiters wait for, and a child's
//!    unlink and the release of its parent come together when it goes (S6 and S2p of
//!    docs/benchmarks.md). The parent's cancellation meets such children done and passes them
//!    by (invariant 3, case (b)).
//! 3. A cancel node is kept alive by its [`CancelHandle`](crate::CancelHandle)s; its link
//!    parent's `children` hold only its *address* ([`children::ChildPtr`], no reference
//!    count), and so does its timer entry while it is queued (`deadline.rs` argues why that
//!    address is never dangling: the entry is disarmed by the cancellation that precedes any
//!    free, which holds the node until then). Dropping the last handle cancels it (the
//!    handle count is released as `Arc`'s: an `Acquire` load that sees 1, or an `AcqRel`
//!    `fetch_sub`, each pairing with the `Release` of the others'), and removes it from its
//!    link parent (cancellation removes it from the timer), so a context nobody holds is
//!    unlinked at once.
//!
//!    Why an address in a list is never dangling. Every cancel node is made by
//!    `new_cancel_node`, whose only caller wraps it in a `CancelHandle` at once (if the timer's
//!    thread is refused, the node is cancelled before it is linked, then dropped).
//!    Freeing a node needs its last `Arc`, so its last handle gone, so an `unlink` of it run
//!    by that drop, which holds the handle's `Arc` of the node until it returns.
//!    Two places hold an address: (a) a live link parent's list, read only under that
//!    parent's lock; the node leaves it in `unlink`, under the same lock; (b) the work list of a cancellation that took the list (with the
//!    link parent done). There the address stays valid until that cancellation has *settled*
//!    the node: `cancel` settles the nodes it met after its work list is empty, descendants
//!    before their ancestors and the origin last, all under the origin's lock, and touches
//!    no node of a subtree once its root is settled (a descendant with children is never
//!    settled under its own lock, as releasing the guard would touch it after the flag; a leaf
//!    descendant is settled by the read-modify-write that releases its lock, that unlock's
//!    last access to it (`lock.rs`, invariant 4), and is then left off the list of nodes met). So every path that could
//!    free a node in a work list first waits for that: `unlink` that finds the link parent
//!    done returns only through `wait_settled` on it, which returns once a done ancestor is
//!    settled (it was settled after the node) or once it has taken and released the lock of
//!    the cancellation's origin (released only after the settling); a `cancel` that finds its
//!    node done returns only through the same `wait_settled` (or the node is settled
//!    already). A node can also be settled by a cancellation other than the one holding its
//!    address: only by its own, as origin, earlier or at the same time (a list is taken once, so
//!    a node met done by a cancellation was made done by one whose origin it is); such a node
//!    is still listed, so the `unlink` of its last handle (above) waits for the holder. The loom models
//!    `loom_tree_unowned_*` check this with a count of holders asserted zero when a node is
//!    dropped; Miri runs `tree::cancel::tests`.
//! 4. Waiters (wakers, parked threads, `after_func` callbacks) are registered and removed only
//!    under the node's lock and only while it is live: the waiter list exists only in
//!    `Phase::Live`. Cancellation replaces that phase by `Phase::Done` under the lock and, in
//!    the same critical section, drains the list (moving each waiter out, marking each inline
//!    entry notified), so a waiter is either in the list it drains or refused by `register`
//!    (which finds `Phase::Done`): no wake-up is lost, no waiter key is used after the node is
//!    done, and no entry is touched once the lock is released (an inline entry's owner may
//!    free it then; see `waiter_list`).
//! 5. The thread that cancels a node (the *origin* of that cancellation) holds the origin's lock
//!    until every descendant is done, then marks every node it made done (and every done node it
//!    met) `settled` (a `Release` RMW; for a leaf and for the origin, part of the unlock's), in
//!    the order of invariant 3. A concurrent `cancel` that finds its node settled (an
//!    `Acquire` load, pairing with it) returns at once: every descendant's state was set
//!    before the flag. One that finds it done but not settled returns only after taking (and
//!    releasing) the lock of every done link ancestor in turn up to the first settled or live
//!    one: the origin is among them, since a cancellation makes a node done only
//!    after every link ancestor between it and the origin, and the origin's lock is released
//!    only once the subtree is done (the lock's release/acquire orders those states before the
//!    waiter's return). So when *any* `cancel` returns, the whole subtree reports done
//!    (propagation is synchronous, as DESIGN.md requires), even if another thread's
//!    cancellation of an ancestor is still walking it.
//! 6. No user code runs while a lock of ours is held: wakers are woken, threads unparked,
//!    callbacks handed to their pool, disarmed timer entries dropped and the trace event emitted after
//!    every lock is released. Moving a `Waker` into or out of a list runs no user code; cloning
//!    and dropping one does, so those happen outside the lock (see `waiters.rs`). A panic of
//!    that user code (a waker, a trace subscriber) unwinds out of a cancellation only to a
//!    user's own `cancel()` call, once the cancellation is complete; every other origin (a
//!    drop, the timer, a group, a token, a signal) drops it, so the bookkeeping that follows
//!    those cancellations (unlinking the node, recording a failure) is never skipped. A
//!    payload is a user value too: every one we drop goes through `unwind::discard`, which
//!    contains a panic of its `Drop` (the wakers after a second panicking one are still woken).
//!    So are a disarmed entry (its custom cause) and the references a cancellation held to
//!    descendants to disarm them (one may be a descendant's last, dropping its values): both
//!    are dropped through `unwind::contain`, the references after every entry is disarmed.
//! 7. Nothing recurses over the depth or width of the tree: cancellation uses a work list and
//!    `Node::drop` releases the parent chain in a loop. Nothing walks the chain either: each
//!    cancel node stores its effective deadline (the earlier of its own and its link parent's,
//!    fixed at creation), so `deadline()` and deriving are O(1) per level at any depth.
//! 8. A node's own deadline, if it armed one, is flagged in `word` (`OWN_DEADLINE`, set before
//!    the node is shared, read `Relaxed`); the cancellation that makes the node done disarms
//!    exactly that entry before it returns, holding the node meanwhile (the origin through
//!    its caller's `Arc`, a descendant through a reference made while it is alive).
//!
//! # Lock order
//!
//! Node locks are taken parent before child (creation order), and nobody takes an ancestor's
//! lock while holding a descendant's. Deadlock is impossible because every place that holds
//! two locks respects that order:
//! - `cancel` holds the origin's lock and takes each descendant's in turn (one at a time under
//!   the origin's; the origin is an ancestor of each);
//! - `new_cancel_node` arms the timer before it takes any lock (the new node is linked nowhere
//!   yet), then holds the link parent's lock alone; for a child born done it releases it,
//!   then takes the new child's (which only the timer can see yet);
//! - `unlink` and `wait_settled` hold one lock at a time, never the node's own while taking an
//!   ancestor's (`unlink` releases the link parent's before it waits).
//!
//! Any cycle of waiting threads would need one of them to hold a descendant's lock while
//! waiting for an ancestor's; none does. The timer's lock is a leaf: no node lock is held
//! while it is taken (arming comes before the new node's links, disarming after a
//! cancellation's unlocks), and the timer thread never takes a node lock while holding it. The `after_func` pool's lock is taken only after every node lock is
//! released (invariant 6). The parking table's bucket mutexes (`lock.rs`) are leaves too: a
//! thread holds one only inside a node lock's own lock or unlock, and takes nothing under it.

mod cancel;
mod chain;
mod children;
mod deadline;
mod lock;
mod node;
mod waiter_list;

pub(crate) use cancel::{cancel, new_cancel_node, unlink};
pub(crate) use chain::Chain;
pub(crate) use node::{Body, CancelNode, Node, ValueNode};
pub(crate) use waiter_list::{Entry, Waiter, WaiterKey};

#[cfg(test)]
pub(crate) use cancel::{child_count, children_capacity, is_armed, waiter_count};
#[cfg(all(test, loom))]
pub(crate) use lock::{WordLock, PARKED};
