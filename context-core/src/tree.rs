//! The context tree: nodes, the links from parents to children, and cancellation.
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
//! # Invariants
//!
//! 1. A cancel node's state (the top bits of its `word`) moves from live to `CANCELED` or
//!    `DEADLINE` once, under the node's lock, after its `cause` is written, and never changes
//!    again. Readers need no lock: `is_done`/`err` are one `Acquire` load of `word`.
//! 2. While a cancel node is live and has a link parent, it is in the link parent's `children`
//!    at index `slot` (written under the link parent's lock), unless the link parent is done.
//!    A node leaves that list exactly once: by its own cancellation (`detach`), or when the link
//!    parent's cancellation takes the whole list.
//! 3. A live cancel node is kept alive by its [`CancelHandle`](crate::CancelHandle)s, its link
//!    parent's `children` and, with a deadline, the timer. Dropping the last handle cancels it,
//!    and cancellation removes it from its link parent and the timer, so a context nobody
//!    holds is unlinked at once. Nothing links a node to its children strongly once it is done.
//! 4. Waiters (wakers, parked threads, `after_func` callbacks) are registered and removed only
//!    under the node's lock and only while it is live. Cancellation takes the whole waiter slab
//!    under that lock, so no waiter is missed and no waiter key is reused after the node is done.
//! 5. The thread that cancels a node (the *origin* of that cancellation) holds the origin's lock
//!    until every descendant is done, then marks every node it made done (and every done node it
//!    met) `settled`. A concurrent `cancel` that finds its node already done returns only once
//!    the node is settled or, failing that, after taking (and releasing) the lock of every done
//!    link ancestor in turn up to the first live one: the origin is among them, since a
//!    cancellation makes a node done only after every link ancestor between it and the origin.
//!    So when *any* `cancel` returns, the whole subtree reports done (propagation is
//!    synchronous, as DESIGN.md requires), even if another thread's cancellation of an ancestor
//!    is still walking it.
//! 6. No user code runs while a lock of ours is held: wakers are woken, threads unparked and
//!    callbacks handed to their pool after every lock is released.
//! 7. Nothing recurses over the depth or width of the tree: cancellation uses a work list and
//!    `Node::drop` releases the parent chain in a loop.
//!
//! # Lock order
//!
//! A node's lock is taken before its descendants' (creation order); nobody takes an ancestor's
//! lock while holding a descendant's (`detach` releases the node's own lock first). The timer's
//! lock is a leaf: it may be taken under node locks, and the timer thread never takes a node
//! lock while holding it.

use std::any::Any;
use std::time::Instant;

use crate::error::{Cause, CauseData, Error};
use crate::slab::Slab;
use crate::sync::{lock, Arc, AtomicU32, Mutex, Ordering};
use crate::timer::{self, Ticks, NEVER};
use crate::trace::{self, Origin};
use crate::values::ValueNode;
use crate::waiters::Waiter;

// The bits of `CancelNode::word`: the state in the top two bits (set once, invariant 1), the
// settled flag (invariant 5), and the count of live `CancelHandle`s in the rest. One word keeps
// a node small and `is_done` one load.
const CANCELED: u32 = 1 << 31;
const DEADLINE: u32 = 1 << 30;
const DONE_MASK: u32 = CANCELED | DEADLINE;
const SETTLED: u32 = 1 << 29;
const HANDLES_MASK: u32 = SETTLED - 1;

/// A node of the context tree; see the module docs.
pub(crate) struct Node {
    pub(crate) parent: Option<Arc<Node>>,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    Background,
    Todo,
    Cancel(CancelNode),
    Value(Box<ValueNode<dyn Any + Send + Sync>>),
    WithoutCancel,
}

/// The cancellable part of a node.
pub(crate) struct CancelNode {
    /// State (`CANCELED` / `DEADLINE`), `SETTLED` (this node and its whole subtree report done,
    /// invariant 5) and the number of live [`CancelHandle`](crate::CancelHandle) clones (the
    /// last one cancels on drop).
    word: AtomicU32,
    /// Index in the link parent's `children` (invariant 2).
    slot: AtomicU32,
    /// This node's own deadline, or [`timer::NEVER`]. (Its deadline cause lives in the timer
    /// entry: it is needed only when the timer fires.)
    pub(crate) deadline: Ticks,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    cause: Option<CauseData>,
    /// Allocated on the first child or waiter.
    links: Option<Box<Links>>,
}

#[derive(Default)]
struct Links {
    children: Children,
    waiters: Slab<Waiter>,
}

/// What one cancellation collected, to be acted on once every lock is released (invariant 6).
#[derive(Default)]
struct Aftermath {
    first_waiters: Option<Slab<Waiter>>,
    first_timer: Option<(Ticks, Arc<Node>)>,
    waiters: Vec<Waiter>,
    /// Timer entries to disarm.
    timers: Vec<(Ticks, Arc<Node>)>,
    released: Vec<Arc<Node>>,
}

impl Node {
    pub(crate) fn root(body: Body) -> Node {
        Node { parent: None, body }
    }

    /// The cancellable node whose state this node reports: itself, its scope, or none.
    #[inline]
    pub(crate) fn cancel_node(&self) -> Option<&CancelNode> {
        match &self.body {
            Body::Cancel(c) => Some(c),
            Body::Value(v) => match &v.scope {
                Some(scope) => scope.cancel_node(),
                None => None,
            },
            _ => None,
        }
    }

    /// The link parent (see the module docs): the cancel node whose `children` hold this one.
    fn link_parent(&self) -> Option<&Arc<Node>> {
        self.parent.as_ref().and_then(|p| p.signal())
    }

    /// Like [`Node::cancel_node`], as the owning `Arc`.
    pub(crate) fn signal(self: &Arc<Node>) -> Option<&Arc<Node>> {
        match &self.body {
            Body::Cancel(_) => Some(self),
            Body::Value(v) => v.scope.as_ref(),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        self.cancel_node().and_then(CancelNode::err)
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        self.cancel_node().and_then(CancelNode::cause)
    }

    /// The effective deadline: the nearest deadline node's, up to a root or `without_cancel`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let mut node = self;
        loop {
            match &node.body {
                Body::Cancel(c) if c.deadline != NEVER => return Some(timer::instant(c.deadline)),
                Body::Background | Body::Todo | Body::WithoutCancel => return None,
                _ => node = node.parent.as_deref()?,
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Invariant 7: release a long chain of parents iteratively, not by recursive drops.
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = match Arc::into_inner(parent) {
                Some(mut node) => node.parent.take(),
                None => None,
            };
        }
    }
}

impl CancelNode {
    pub(crate) fn new(deadline: Ticks) -> CancelNode {
        CancelNode {
            word: AtomicU32::new(1),
            slot: AtomicU32::new(u32::MAX),
            deadline,
            inner: Mutex::new(Inner::default()),
        }
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.word.load(Ordering::Acquire) & DONE_MASK != 0
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        let word = self.word.load(Ordering::Acquire);
        if word & CANCELED != 0 {
            Some(Error::Canceled)
        } else if word & DEADLINE != 0 {
            Some(Error::DeadlineExceeded)
        } else {
            None
        }
    }

    fn is_settled(&self) -> bool {
        self.word.load(Ordering::Acquire) & SETTLED != 0
    }

    fn settle(&self) {
        // Most nodes (leaves) are settled already: a load is cheaper than the read-modify-write.
        if !self.is_settled() {
            self.word.fetch_or(SETTLED, Ordering::Release);
        }
    }

    /// Sets the state (once, under the node's lock, after the cause: invariant 1), and the
    /// settled flag with it if `settled` (the node has no children).
    fn set_done(&self, err: Error, settled: bool) {
        let bit = match err {
            Error::Canceled => CANCELED,
            Error::DeadlineExceeded => DEADLINE,
        };
        let settled = if settled { SETTLED } else { 0 };
        self.word.fetch_or(bit | settled, Ordering::Release);
    }

    /// A new [`CancelHandle`](crate::CancelHandle) clone.
    pub(crate) fn acquire_handle(&self) {
        // As `Arc` does: a count this high can only come from leaked clones.
        if self.word.fetch_add(1, Ordering::Relaxed) & HANDLES_MASK >= HANDLES_MASK / 2 {
            std::process::abort();
        }
    }

    /// A dropped [`CancelHandle`](crate::CancelHandle) clone; `true` if it was the last.
    pub(crate) fn release_handle(&self) -> bool {
        self.word.fetch_sub(1, Ordering::AcqRel) & HANDLES_MASK == 1
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        if !self.is_done() {
            return None;
        }
        // Invariant 1: the cause was written before the state, under this lock.
        let data = lock(&self.inner).cause.clone()?;
        Some(Cause::from_parts(self.err()?, data))
    }

    /// Registers `waiter`, or gives it back with the error if the node is already done.
    pub(crate) fn register(&self, waiter: Waiter) -> Result<usize, (Waiter, Error)> {
        let mut inner = lock(&self.inner);
        if let Some(e) = self.err() {
            return Err((waiter, e));
        }
        Ok(inner
            .links
            .get_or_insert_with(Default::default)
            .waiters
            .insert(waiter))
    }

    /// Runs `f` on the waiter registered at `key`, unless the node is done.
    pub(crate) fn with_waiter<R>(&self, key: usize, f: impl FnOnce(&mut Waiter) -> R) -> Option<R> {
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return None;
        }
        inner.links.as_mut()?.waiters.get_mut(key).map(f)
    }

    /// Removes the waiter at `key`; `None` if the node is done (cancellation took it).
    pub(crate) fn unregister(&self, key: usize) -> Option<Waiter> {
        let mut inner = lock(&self.inner);
        if self.is_done() {
            return None;
        }
        inner.links.as_mut()?.waiters.remove(key)
    }

    /// Marks the node done (invariant 1) and moves what cancellation must act on into `acc`.
    /// The caller holds `inner`, the guard of this node's lock.
    fn finish(
        &self,
        node: &Arc<Node>,
        inner: &mut Inner,
        err: Error,
        cause: &CauseData,
        acc: &mut Aftermath,
        work: &mut Vec<Arc<Node>>,
    ) {
        inner.cause = Some(cause.clone());
        // A node without children is settled as soon as it is done (invariant 5): one atomic
        // operation for both.
        let leaf = inner.links.as_ref().is_none_or(|l| l.children.len() == 0);
        self.set_done(err, leaf);
        if let Some(links) = inner.links.take() {
            let Links { children, waiters } = *links;
            children.drain_into(work);
            if acc.first_waiters.is_none() {
                acc.first_waiters = Some(waiters);
            } else {
                acc.waiters.extend(waiters.drain());
            }
        }
        if self.deadline != NEVER {
            if acc.first_timer.is_none() {
                acc.first_timer = Some((self.deadline, Arc::clone(node)));
            } else {
                acc.timers.push((self.deadline, Arc::clone(node)));
            }
        }
    }
}

/// Creates a cancel node under `parent`, linked to `parent`'s signal (invariant 2) or born done
/// with the link parent's error and cause. Arms the timer for `deadline`, or cancels at once if
/// it has already passed.
pub(crate) fn new_cancel_node(
    parent: &Arc<Node>,
    deadline: Option<(Ticks, CauseData)>,
    now: Option<Ticks>,
) -> Arc<Node> {
    let node = Arc::new(Node {
        parent: Some(Arc::clone(parent)),
        body: Body::Cancel(CancelNode::new(deadline.as_ref().map_or(NEVER, |d| d.0))),
    });
    let Body::Cancel(core) = &node.body else {
        unreachable!()
    };
    if let Some(link) = parent.signal() {
        let link_core = link.cancel_node().expect("a signal is a cancel node");
        let mut link_inner = lock(&link_core.inner);
        match link_core.err() {
            Some(err) => {
                // Born done: nobody else can see `node` yet, so taking its lock cannot block.
                let cause = link_inner.cause.clone().expect("a done node has a cause");
                drop(link_inner);
                {
                    let mut inner = lock(&core.inner);
                    inner.cause = Some(cause);
                    // No children: its subtree is done too (invariant 5).
                    core.set_done(err, true);
                }
                return node;
            }
            None => {
                let links = link_inner.links.get_or_insert_with(Default::default);
                let slot = u32::try_from(links.children.len()).expect("fewer than 2^32 children");
                core.slot.store(slot, Ordering::Relaxed);
                links.children.push(Arc::clone(&node));
            }
        }
    }
    if let Some((at, cause)) = deadline {
        if at <= now.unwrap_or_else(timer::now) {
            // A deadline already past is a deadline firing: one origin, traced as such.
            if cancel(&node, Error::DeadlineExceeded, cause) {
                trace::cancelled(Origin::Deadline, || crate::Context {
                    node: Arc::clone(&node),
                });
            }
        } else {
            // Under the node's lock, so a concurrent cancellation either sees the entry (and
            // removes it) or happens first (and we do not arm the timer at all).
            let _inner = lock(&core.inner);
            if !core.is_done() {
                timer::arm(at, &node, cause);
            }
        }
    }
    node
}

/// Cancels `node` (a cancel node) and its whole subtree with `err` and `cause`, unless it is
/// already done. On return every descendant reports done (invariant 5). Returns `true` if this
/// call is the one that made `node` done (the *origin*, which `trace::cancelled` reports).
pub(crate) fn cancel(node: &Arc<Node>, err: Error, cause: CauseData) -> bool {
    let Body::Cancel(core) = &node.body else {
        return false;
    };
    // Settled: done with its whole subtree (invariant 5); no need for the lock.
    if core.is_settled() {
        return false;
    }
    let mut acc = Aftermath::default();
    {
        let mut inner = lock(&core.inner);
        if core.is_done() {
            // Another cancellation got here first; it may still be walking the subtree.
            drop(inner);
            wait_settled(node);
            return false;
        }
        let mut work = Vec::new();
        core.finish(node, &mut inner, err, &cause, &mut acc, &mut work);
        // Invariant 5: keep `inner` (this node's lock) until the work list is empty.
        while let Some(child) = work.pop() {
            if let Body::Cancel(child_core) = &child.body {
                let mut child_inner = lock(&child_core.inner);
                if !child_core.is_done() {
                    child_core.finish(&child, &mut child_inner, err, &cause, &mut acc, &mut work);
                }
            }
            acc.released.push(child);
        }
        // Invariant 5: every node this call made done, or met done, has its subtree done now.
        core.settle();
        for child in &acc.released {
            if let Body::Cancel(child_core) = &child.body {
                child_core.settle();
            }
        }
        drop(inner);
    }
    detach(node, core);
    run_aftermath(acc);
    true
}

/// Returns once the subtree of `node`, a done cancel node, is all done (invariant 5): at once if
/// it is settled, else after the cancellation that made it done has let go of its origin's lock.
/// Takes one lock at a time, climbing towards the root: no lock-order issue.
fn wait_settled(node: &Arc<Node>) {
    let mut cur = node;
    while let Body::Cancel(core) = &cur.body {
        if core.is_settled() {
            return;
        }
        // If `cur` is the origin, its lock is held until the subtree is done.
        drop(lock(&core.inner));
        match cur.link_parent() {
            // A done link parent may be the origin, or lie below it.
            Some(link) if link.cancel_node().is_some_and(CancelNode::is_done) => cur = link,
            // A live (or no) link parent: `cur` was cancelled by itself, and is finished.
            _ => return,
        }
    }
}

/// Removes a freshly cancelled `node` from its link parent's children (invariant 2).
fn detach(node: &Arc<Node>, core: &CancelNode) {
    let Some(link) = node.link_parent() else {
        return;
    };
    let link_core = link.cancel_node().expect("a signal is a cancel node");
    let removed = {
        let mut link_inner = lock(&link_core.inner);
        if link_core.is_done() {
            // The link parent's cancellation took (or is about to take) the whole list.
            return;
        }
        let Some(links) = link_inner.links.as_mut() else {
            unreachable!("a linked child implies its parent has links")
        };
        let slot = core.slot.load(Ordering::Relaxed) as usize;
        let removed = links.children.swap_remove(slot);
        debug_assert!(Arc::ptr_eq(&removed, node));
        if let Some(moved) = links.children.get(slot) {
            if let Body::Cancel(moved_core) = &moved.body {
                moved_core.slot.store(slot as u32, Ordering::Relaxed);
            }
        }
        removed
    };
    drop(removed);
}

fn run_aftermath(acc: Aftermath) {
    for (at, node) in acc.first_timer.into_iter().chain(acc.timers) {
        timer::disarm(at, &node);
    }
    let mut first_panic = None;
    let first = acc.first_waiters.into_iter().flat_map(Slab::drain);
    for waiter in first.chain(acc.waiters) {
        // A panicking waker must not stop the others from being woken.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waiter.notify()));
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
        }
    }
    drop(acc.released);
    if let Some(payload) = first_panic {
        if !std::thread::panicking() {
            std::panic::resume_unwind(payload);
        }
    }
}

#[cfg(test)]
pub(crate) fn child_count(node: &Node) -> usize {
    match node.cancel_node() {
        Some(core) => lock(&core.inner)
            .links
            .as_ref()
            .map_or(0, |l| l.children.len()),
        None => 0,
    }
}

/// A node's children: the first one inline, a `Vec` from the second on.
#[derive(Default)]
enum Children {
    #[default]
    Empty,
    One(Arc<Node>),
    Many(Vec<Arc<Node>>),
}

impl Children {
    fn len(&self) -> usize {
        match self {
            Children::Empty => 0,
            Children::One(_) => 1,
            Children::Many(v) => v.len(),
        }
    }

    fn push(&mut self, node: Arc<Node>) {
        match std::mem::take(self) {
            Children::Empty => *self = Children::One(node),
            Children::One(first) => {
                let mut v = Vec::with_capacity(4);
                v.push(first);
                v.push(node);
                *self = Children::Many(v);
            }
            Children::Many(mut v) => {
                v.push(node);
                *self = Children::Many(v);
            }
        }
    }

    fn get(&self, i: usize) -> Option<&Arc<Node>> {
        match self {
            Children::Empty => None,
            Children::One(n) => (i == 0).then_some(n),
            Children::Many(v) => v.get(i),
        }
    }

    fn swap_remove(&mut self, i: usize) -> Arc<Node> {
        match self {
            Children::Many(v) => {
                let removed = v.swap_remove(i);
                if v.is_empty() && v.capacity() > 16 {
                    *self = Children::Empty;
                }
                removed
            }
            _ => match std::mem::take(self) {
                Children::One(n) => n,
                _ => unreachable!("no child at this slot"),
            },
        }
    }

    fn drain_into(self, work: &mut Vec<Arc<Node>>) {
        match self {
            Children::Empty => {}
            Children::One(n) => work.push(n),
            Children::Many(v) if work.is_empty() => *work = v,
            Children::Many(v) => work.extend(v),
        }
    }
}
