//! Model-based property test: random sequences of operations on a real context tree, checked
//! after every step against a plain reference model of Go's semantics (a `Vec` of nodes with
//! parent links and no concurrency).
//!
//! Checked after each step, for every context the test still holds: `is_done`, `err`,
//! `check`, `cause` (its text), `deadline`, `value`, `wait_timeout(0)` and one poll of
//! `done()`; for every `after_func` registration: the callback ran exactly when the model says
//! it must (awaited with a generous bound, since it runs on a pool thread) and never otherwise,
//! and every `stop()` returned what the model says.
//!
//! Deadlines are explicit instants, either at least a second in the past or at least an hour in
//! the future, so no timer fires during a run and the model needs no clock.
//!
//! `PROPTEST_CASES` (default 64 here) sets the number of sequences; shrunk failures are kept
//! below as named regression tests.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use go_context::{AfterFunc, CancelHandle, Context, Error};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag(u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Other(u8);

/// Picks among the contexts / handles / registrations held at that point: `Pick(n)` takes
/// item `n % len`, so regression tests read plainly.
#[derive(Clone, Copy, Debug)]
struct Index(u16);

impl Index {
    fn index(&self, len: usize) -> usize {
        usize::from(self.0) % len
    }
}

/// One step.
#[derive(Clone, Debug)]
enum Op {
    WithCancel(Index),
    /// A deadline `1 + secs` seconds in the past; with a cause if the flag is set.
    WithDeadlinePast(Index, u8, bool),
    /// A deadline `3600 + secs` seconds in the future; with a cause if the flag is set.
    WithDeadlineFuture(Index, u8, bool),
    /// `with_timeout(Duration::MAX)`: no deadline at all.
    WithTimeoutHuge(Index),
    WithValue(Index, u32),
    WithOtherValue(Index, u8),
    WithoutCancel(Index),
    Cancel(Index),
    CancelWithCause(Index),
    CloneHandle(Index),
    DropHandle(Index),
    DropContext(Index),
    AfterFunc(Index),
    Stop(Index),
    DropAfterFunc(Index),
}

fn op() -> impl Strategy<Value = Op> {
    let i = || any::<u16>().prop_map(Index);
    prop_oneof![
        3 => i().prop_map(Op::WithCancel),
        1 => (i(), 0..5u8, any::<bool>()).prop_map(|(i, s, c)| Op::WithDeadlinePast(i, s, c)),
        2 => (i(), 0..5u8, any::<bool>()).prop_map(|(i, s, c)| Op::WithDeadlineFuture(i, s, c)),
        1 => i().prop_map(Op::WithTimeoutHuge),
        2 => (i(), 0..4u32).prop_map(|(i, v)| Op::WithValue(i, v)),
        1 => (i(), any::<u8>()).prop_map(|(i, v)| Op::WithOtherValue(i, v)),
        1 => i().prop_map(Op::WithoutCancel),
        2 => i().prop_map(Op::Cancel),
        2 => i().prop_map(Op::CancelWithCause),
        1 => i().prop_map(Op::CloneHandle),
        2 => i().prop_map(Op::DropHandle),
        2 => i().prop_map(Op::DropContext),
        2 => i().prop_map(Op::AfterFunc),
        2 => i().prop_map(Op::Stop),
        1 => i().prop_map(Op::DropAfterFunc),
    ]
}

// ===== the reference model =====

#[derive(Clone, Debug)]
enum Kind {
    Root,
    Cancel,
    Value,
    WithoutCancel,
}

#[derive(Clone, Debug)]
struct MNode {
    parent: Option<usize>,
    kind: Kind,
    /// For cancel nodes: the error and cause text once done.
    state: Option<(Error, String)>,
    /// For cancel nodes: the deadline kept by `derive` (Go drops one later than the parent's).
    deadline: Option<Instant>,
    tag: Option<Tag>,
    other: Option<Other>,
    /// For cancel nodes: live handle clones.
    handles: usize,
}

#[derive(Default)]
struct Model {
    nodes: Vec<MNode>,
}

impl Model {
    fn add(&mut self, n: MNode) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    /// The cancel node whose state `id` reports.
    fn signal(&self, id: usize) -> Option<usize> {
        match self.nodes[id].kind {
            Kind::Cancel => Some(id),
            Kind::Value => self.signal(self.nodes[id].parent.unwrap()),
            Kind::Root | Kind::WithoutCancel => None,
        }
    }

    fn state(&self, id: usize) -> Option<(Error, String)> {
        self.signal(id).and_then(|s| self.nodes[s].state.clone())
    }

    fn deadline(&self, mut id: usize) -> Option<Instant> {
        loop {
            let n = &self.nodes[id];
            match n.kind {
                Kind::Cancel if n.deadline.is_some() => return n.deadline,
                Kind::Root | Kind::WithoutCancel => return None,
                _ => id = n.parent?,
            }
        }
    }

    fn tag(&self, mut id: usize) -> Option<Tag> {
        loop {
            let n = &self.nodes[id];
            if n.tag.is_some() {
                return n.tag;
            }
            id = n.parent?;
        }
    }

    fn other(&self, mut id: usize) -> Option<Other> {
        loop {
            let n = &self.nodes[id];
            if n.other.is_some() {
                return n.other;
            }
            id = n.parent?;
        }
    }

    /// Go's cancel: the first cancellation of a node or of any ancestor fixes error and cause;
    /// it reaches every cancel node below, through value nodes, not through `without_cancel`.
    fn cancel(&mut self, id: usize, err: Error, text: String) {
        if self.nodes[id].state.is_some() {
            return;
        }
        self.nodes[id].state = Some((err, text.clone()));
        let mut reached = vec![false; self.nodes.len()];
        reached[id] = true;
        // Parents come before children, so one forward pass reaches the whole subtree.
        for n in id + 1..self.nodes.len() {
            if !matches!(self.nodes[n].kind, Kind::Cancel) {
                continue;
            }
            let link = self.nodes[n].parent.and_then(|p| self.signal(p));
            if link.is_some_and(|l| reached[l]) && self.nodes[n].state.is_none() {
                self.nodes[n].state = Some((err, text.clone()));
                reached[n] = true;
            }
        }
    }

    /// `with_cancel` / `with_deadline[_cause]` under `parent`.
    fn derive(&mut self, parent: usize, deadline: Option<(Instant, Option<String>)>) -> usize {
        let deadline = deadline.filter(|(at, _)| self.deadline(parent).is_none_or(|p| *at <= p));
        let born = self.state(parent);
        let id = self.add(MNode {
            parent: Some(parent),
            kind: Kind::Cancel,
            state: born.clone(),
            deadline: deadline.as_ref().map(|d| d.0),
            tag: None,
            other: None,
            handles: 1,
        });
        if born.is_none() {
            if let Some((at, cause)) = deadline {
                if at <= Instant::now() {
                    let text = cause.unwrap_or_else(|| Error::DeadlineExceeded.to_string());
                    self.cancel(id, Error::DeadlineExceeded, text);
                }
            }
        }
        id
    }

    fn plain(
        &mut self,
        parent: usize,
        kind: Kind,
        tag: Option<Tag>,
        other: Option<Other>,
    ) -> usize {
        self.add(MNode {
            parent: Some(parent),
            kind,
            state: None,
            deadline: None,
            tag,
            other,
            handles: 0,
        })
    }
}

// ===== the real tree, as the test holds it =====

struct Registration {
    node: usize,
    /// `None` once the `AfterFunc` was dropped (the callback stays registered).
    handle: Option<AfterFunc>,
    rx: Receiver<()>,
    stopped: bool,
    /// The callback's run has been observed.
    seen: bool,
}

struct World {
    model: Model,
    /// Held contexts: model id and the context. Index 0 is `background` and is never dropped.
    ctxs: Vec<(usize, Context)>,
    handles: Vec<(usize, CancelHandle)>,
    regs: Vec<Registration>,
    past: Instant,
    future: Instant,
    step: usize,
}

impl World {
    fn new() -> World {
        let now = Instant::now();
        let mut model = Model::default();
        let root = model.add(MNode {
            parent: None,
            kind: Kind::Root,
            state: None,
            deadline: None,
            tag: None,
            other: None,
            handles: 0,
        });
        World {
            model,
            ctxs: vec![(root, Context::background())],
            handles: Vec::new(),
            regs: Vec::new(),
            // On a freshly booted machine `now - 1s` may not exist: fall back to `now`, which
            // has passed too by the time anything compares with it.
            past: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            future: now + Duration::from_secs(3600),
            step: 0,
        }
    }

    fn pick_ctx(&self, i: &Index) -> (usize, Context) {
        let (id, ctx) = &self.ctxs[i.index(self.ctxs.len())];
        (*id, ctx.clone())
    }

    fn push_derived(&mut self, id: usize, (ctx, handle): (Context, CancelHandle)) {
        self.ctxs.push((id, ctx));
        self.handles.push((id, handle));
    }

    fn apply(&mut self, op: &Op) {
        self.step += 1;
        match op {
            Op::WithCancel(i) => {
                let (p, ctx) = self.pick_ctx(i);
                let id = self.model.derive(p, None);
                self.push_derived(id, ctx.with_cancel());
            }
            Op::WithDeadlinePast(i, secs, with_cause) => {
                let (p, ctx) = self.pick_ctx(i);
                let at = self
                    .past
                    .checked_sub(Duration::from_secs(u64::from(*secs)))
                    .unwrap_or(self.past);
                self.deadline(p, ctx, at, *with_cause);
            }
            Op::WithDeadlineFuture(i, secs, with_cause) => {
                let (p, ctx) = self.pick_ctx(i);
                let at = self.future + Duration::from_secs(u64::from(*secs));
                self.deadline(p, ctx, at, *with_cause);
            }
            Op::WithTimeoutHuge(i) => {
                let (p, ctx) = self.pick_ctx(i);
                let id = self.model.derive(p, None);
                self.push_derived(id, ctx.with_timeout(Duration::MAX));
            }
            Op::WithValue(i, v) => {
                let (p, ctx) = self.pick_ctx(i);
                let id = self.model.plain(p, Kind::Value, Some(Tag(*v)), None);
                self.ctxs.push((id, ctx.with_value(Tag(*v))));
            }
            Op::WithOtherValue(i, v) => {
                let (p, ctx) = self.pick_ctx(i);
                let id = self.model.plain(p, Kind::Value, None, Some(Other(*v)));
                self.ctxs.push((id, ctx.with_value(Other(*v))));
            }
            Op::WithoutCancel(i) => {
                let (p, ctx) = self.pick_ctx(i);
                let id = self.model.plain(p, Kind::WithoutCancel, None, None);
                self.ctxs.push((id, ctx.without_cancel()));
            }
            Op::Cancel(i) => {
                if let Some((id, h)) = self.pick_handle(i) {
                    h.cancel();
                    self.model
                        .cancel(id, Error::Canceled, "context canceled".into());
                }
            }
            Op::CancelWithCause(i) => {
                let text = format!("cause {}", self.step);
                if let Some((id, h)) = self.pick_handle(i) {
                    h.cancel_with_cause(text.clone());
                    self.model.cancel(id, Error::Canceled, text);
                }
            }
            Op::CloneHandle(i) => {
                if let Some((id, h)) = self.pick_handle(i) {
                    let h = h.clone();
                    self.model.nodes[id].handles += 1;
                    self.handles.push((id, h));
                }
            }
            Op::DropHandle(i) => {
                if !self.handles.is_empty() {
                    let (id, h) = self.handles.swap_remove(i.index(self.handles.len()));
                    drop(h);
                    let n = &mut self.model.nodes[id];
                    n.handles -= 1;
                    if n.handles == 0 {
                        self.model
                            .cancel(id, Error::Canceled, "context canceled".into());
                    }
                }
            }
            Op::DropContext(i) => {
                if self.ctxs.len() > 1 {
                    let k = 1 + i.index(self.ctxs.len() - 1);
                    drop(self.ctxs.swap_remove(k));
                }
            }
            Op::AfterFunc(i) => {
                let (id, ctx) = self.pick_ctx(i);
                let (tx, rx) = mpsc::channel();
                let handle = ctx.after_func(move || tx.send(()).unwrap());
                self.regs.push(Registration {
                    node: id,
                    handle: Some(handle),
                    rx,
                    stopped: false,
                    seen: false,
                });
            }
            Op::Stop(i) => {
                if self.regs.is_empty() {
                    return;
                }
                let k = i.index(self.regs.len());
                let done = self.model.state(self.regs[k].node).is_some();
                let r = &mut self.regs[k];
                if let Some(h) = &r.handle {
                    let expected = !r.stopped && !done;
                    assert_eq!(h.stop(), expected, "stop() on registration {k}");
                    r.stopped |= expected;
                }
            }
            Op::DropAfterFunc(i) => {
                if !self.regs.is_empty() {
                    let k = i.index(self.regs.len());
                    drop(self.regs[k].handle.take());
                }
            }
        }
    }

    /// A handle for one call: a clone, dropped at the end of the step (never the last one).
    fn pick_handle(&self, i: &Index) -> Option<(usize, CancelHandle)> {
        if self.handles.is_empty() {
            return None;
        }
        let (id, h) = &self.handles[i.index(self.handles.len())];
        Some((*id, h.clone()))
    }

    fn deadline(&mut self, p: usize, ctx: Context, at: Instant, with_cause: bool) {
        let cause = with_cause.then(|| format!("deadline {}", self.step));
        let id = self.model.derive(p, Some((at, cause.clone())));
        let pair = match cause {
            Some(c) => ctx.with_deadline_cause(at, c),
            None => ctx.with_deadline(at),
        };
        self.push_derived(id, pair);
    }

    /// Compares every held context and registration with the model.
    fn check(&mut self) {
        let waker = Waker::noop();
        let mut cx = TaskContext::from_waker(waker);
        for (id, ctx) in &self.ctxs {
            let expected = self.model.state(*id);
            let err = expected.as_ref().map(|s| s.0);
            let what = format!("step {}, node {id}: {ctx:?}", self.step);
            assert_eq!(ctx.err(), err, "err, {what}");
            assert_eq!(ctx.is_done(), err.is_some(), "is_done, {what}");
            assert_eq!(ctx.check(), err.map_or(Ok(()), Err), "check, {what}");
            assert_eq!(
                ctx.cause().map(|c| c.to_string()),
                expected.map(|s| s.1),
                "cause, {what}"
            );
            assert_eq!(ctx.deadline(), self.model.deadline(*id), "deadline, {what}");
            assert_eq!(
                ctx.value::<Tag>(),
                self.model.tag(*id).as_ref(),
                "value, {what}"
            );
            assert_eq!(
                ctx.value::<Other>(),
                self.model.other(*id).as_ref(),
                "other value, {what}"
            );
            assert_eq!(
                ctx.wait_timeout(Duration::ZERO),
                err,
                "wait_timeout(0), {what}"
            );
            let done = std::pin::pin!(ctx.done());
            let polled = done.poll_ready(&mut cx);
            assert_eq!(
                polled,
                err.map_or(Poll::Pending, Poll::Ready),
                "done(), {what}"
            );
        }
        for (k, r) in self.regs.iter_mut().enumerate() {
            let fires = !r.stopped && self.model.state(r.node).is_some();
            if fires && !r.seen {
                // It runs on a pool thread: wait for it (bounded), do not sleep.
                match r.rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(()) => r.seen = true,
                    Err(e) => panic!("step {}: callback {k} did not run: {e:?}", self.step),
                }
            }
            match r.rx.try_recv() {
                Ok(()) => panic!("step {}: callback {k} ran when it must not", self.step),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
            }
            if !fires {
                assert!(!r.seen);
                // A stopped callback's function is dropped: its sender is gone.
                if r.stopped {
                    assert_eq!(
                        r.rx.recv_timeout(Duration::ZERO),
                        Err(RecvTimeoutError::Disconnected),
                        "step {}: a stopped callback keeps its function",
                        self.step
                    );
                }
            }
        }
    }
}

trait PollReady {
    fn poll_ready(self, cx: &mut TaskContext<'_>) -> Poll<Error>;
}

impl PollReady for std::pin::Pin<&mut go_context::Done> {
    fn poll_ready(self, cx: &mut TaskContext<'_>) -> Poll<Error> {
        std::future::Future::poll(self, cx)
    }
}

/// Runs `ops` from a fresh world, checking after every step, then drops everything in a
/// random-ish order and checks the registrations once more.
fn run(ops: &[Op]) {
    let mut world = World::new();
    world.check();
    for op in ops {
        world.apply(op);
        world.check();
    }
    // Dropping every handle cancels every cancel node still live: the model agrees.
    let handles = std::mem::take(&mut world.handles);
    for (id, h) in handles {
        drop(h);
        let n = &mut world.model.nodes[id];
        n.handles -= 1;
        if n.handles == 0 {
            world
                .model
                .cancel(id, Error::Canceled, "context canceled".into());
        }
        world.check();
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_tree_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops);
    }
}

// ===== regression tests (shrunk failures and hand-picked corner cases) =====

fn ix(i: u16) -> Index {
    Index(i)
}

#[test]
fn deadline_later_than_the_parents_is_dropped_with_its_cause() {
    run(&[
        Op::WithDeadlineFuture(ix(0), 0, false),
        Op::WithDeadlineFuture(ix(1), 3, true),
        Op::WithDeadlinePast(ix(2), 0, true),
        Op::Cancel(ix(0)),
    ]);
}

#[test]
fn a_past_deadline_under_a_value_under_without_cancel() {
    run(&[
        Op::WithCancel(ix(0)),
        Op::WithValue(ix(1), 2),
        Op::WithoutCancel(ix(2)),
        Op::WithDeadlinePast(ix(3), 1, true),
        Op::AfterFunc(ix(4)),
        Op::DropHandle(ix(0)),
        Op::Stop(ix(0)),
    ]);
}

#[test]
fn stop_after_a_drop_of_the_afterfunc_value_is_impossible_but_the_callback_runs() {
    run(&[
        Op::WithCancel(ix(0)),
        Op::AfterFunc(ix(1)),
        Op::DropAfterFunc(ix(0)),
        Op::CancelWithCause(ix(0)),
    ]);
}

// ===== concurrent cancels against the model =====

/// A random tree (cancel nodes, some under value nodes) whose nodes two threads cancel at once,
/// each with its own causes. Checked: when a thread's `cancel` returns, that node's whole
/// subtree reports done (also while the other thread is still walking an ancestor's subtree);
/// at the end a node is done exactly when it or a link ancestor was cancelled, its cause is one
/// of theirs, and it agrees with its link parent unless it was cancelled itself.
#[derive(Clone, Debug)]
struct Race {
    /// For each node after the root: (parent index, through a value node).
    shape: Vec<(Index, bool)>,
    /// (node, thread) cancels, in each thread's order.
    cancels: Vec<(Index, bool)>,
}

fn race() -> impl Strategy<Value = Race> {
    (
        prop::collection::vec((any::<u16>().prop_map(Index), any::<bool>()), 1..300),
        prop::collection::vec((any::<u16>().prop_map(Index), any::<bool>()), 1..12),
    )
        .prop_map(|(shape, cancels)| Race { shape, cancels })
}

/// One cancel of a race: the node, its cause, the nodes below it, and a handle.
type RaceOp = (usize, String, Vec<usize>, CancelHandle);

fn run_race(race: &Race) {
    use std::sync::{Arc, Barrier};
    // Node 0 is a cancellable root; node i > 0 hangs under `parent[i]`.
    let (root, root_cancel) = Context::background().with_cancel();
    let mut nodes = vec![(root, root_cancel)];
    let mut parent = vec![usize::MAX];
    for (p, through_value) in &race.shape {
        // Mostly deep (a parent among the last few nodes), so that walking a subtree takes a
        // while and the other thread's cancels land inside it.
        let p = nodes.len() - 1 - p.index(nodes.len().min(3));
        let base = if *through_value {
            nodes[p].0.with_value(Tag(p as u32))
        } else {
            nodes[p].0.clone()
        };
        nodes.push(base.with_cancel());
        parent.push(p);
    }
    let n = nodes.len();
    let subtree = |root: usize| -> Vec<usize> {
        (0..n)
            .filter(|&i| {
                let mut j = i;
                loop {
                    if j == root {
                        return true;
                    }
                    if j == 0 {
                        return false;
                    }
                    j = parent[j];
                }
            })
            .collect()
    };
    let ctxs: Arc<Vec<Context>> = Arc::new(nodes.iter().map(|(c, _)| c.clone()).collect());
    let handles: Vec<CancelHandle> = nodes.iter().map(|(_, h)| h.clone()).collect();
    let mut per_thread: [Vec<RaceOp>; 2] = Default::default();
    for (k, (i, second)) in race.cancels.iter().enumerate() {
        let i = i.index(n);
        let text = format!("cause {k} on {i}");
        per_thread[usize::from(*second)].push((i, text, subtree(i), handles[i].clone()));
    }
    let cancelled: Vec<(usize, String)> = per_thread
        .iter()
        .flatten()
        .map(|(i, t, ..)| (*i, t.clone()))
        .collect();
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = per_thread
        .into_iter()
        .map(|ops| {
            let (ctxs, barrier) = (Arc::clone(&ctxs), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for (i, text, below, handle) in ops {
                    handle.cancel_with_cause(text);
                    for j in below {
                        assert!(
                            ctxs[j].is_done(),
                            "cancel of node {i} returned before node {j} below it was done"
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for j in 0..n {
        let ctx = &ctxs[j];
        // Cancelled itself or through an ancestor.
        let mut causes = Vec::new();
        let mut k = j;
        loop {
            causes.extend(
                cancelled
                    .iter()
                    .filter(|(i, _)| *i == k)
                    .map(|(_, t)| t.clone()),
            );
            if k == 0 {
                break;
            }
            k = parent[k];
        }
        assert_eq!(ctx.is_done(), !causes.is_empty(), "node {j}");
        if let Some(cause) = ctx.cause() {
            let text = cause.to_string();
            assert!(
                causes.contains(&text),
                "node {j}: cause {text:?} not among {causes:?}"
            );
            assert_eq!(ctx.err(), Some(Error::Canceled));
            if j > 0 {
                let own = cancelled.iter().any(|(i, t)| *i == j && *t == text);
                let from_parent = ctxs[parent[j]].cause().map(|c| c.to_string());
                assert!(
                    own || from_parent.as_deref() == Some(text.as_str()),
                    "node {j}: cause {text:?}, neither its own nor its parent's {from_parent:?}"
                );
            }
        }
    }
    drop(handles);
    drop(nodes);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn concurrent_cancels_keep_the_rules(race in race()) {
        run_race(&race);
    }
}
