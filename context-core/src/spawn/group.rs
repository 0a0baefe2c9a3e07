//! [`Group`]: Go's `errgroup` (and, with [`set_fail_fast(false)`](Group::set_fail_fast), Go's
//! `sync.WaitGroup` / tokio-util's `TaskTracker`), for threads and tokio tasks, on top of the
//! same spawning as [`GoHandle`]: a group adds admission (limit, queue, first failure, idle;
//! see `admission.rs`) and the failure policy, nothing else.
//!
//! # Invariants
//!
//! 1. A member ends in [`Shared::end`], called exactly once by the runtime glue: it records a
//!    failure (cause set, error kept) **before** the member stops counting as running, and
//!    frees its slot **before** its handle gets the outcome (so whoever joined it finds the
//!    slot free); it stops counting as ending (admission invariant 1) only after that, before
//!    anything else. Both counts are released by a guard, so an unwind (a panicking `Drop` of
//!    a user value) cannot skip them and hang `wait`.
//! 2. No user code under our locks: errors are formatted, and errors, payloads and unstarted
//!    members dropped, after every lock is released; locks are never nested.
//! 3. Member threads are reaped as the group goes (at launches, once their count doubles), so
//!    a long-lived group holds at most about twice its running threads' handles; `wait` joins
//!    the rest.
//! 4. While a member's code runs (its closure on its thread; its future's creation and each of
//!    its polls), the thread records which group and which member it runs ([`InMember`]), so
//!    that a blocking `wait` inside one of the group's own members, or a member's `join` of
//!    its own handle, which would wait for itself forever, panics instead.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::task::{self, Poll};
use std::thread::JoinHandle;

use super::admission::{Admission, Admit, After};
use super::errors::{panic_message, JoinError, LimitError, MemberFailed, Payload, SpawnError};
use super::handle::{GoHandle, Kind, Work};
use super::runtime;
use crate::sync::{lock, Arc, Mutex};
use crate::{BoxError, CancelHandle, Context, Done};

/// A set of members (threads or tokio tasks) working on one job under one context: Go's
/// `errgroup.WithContext`, made stricter.
///
/// - [`Group::new(&parent)`](Group::new) makes the group's [`context`](Group::context), a child
///   of `parent`. Each member runs under its own child of it (current while it runs, and also
///   passed as an argument), so [`GoHandle::cancel`] on a member stops that member only.
/// - [`spawn_blocking`](Group::spawn_blocking) starts a member on an OS thread,
///   `spawn` (feature `tokio`) a future as a task on the caller's tokio
///   runtime; `go!(group => f(args))` picks by type. Each returns the member's [`GoHandle`]:
///   members give their values back through it, no `Arc<Mutex<Vec<_>>>` needed.
/// - **The first failure cancels the group's context**, with a [`MemberFailed`] cause naming
///   the error, which member it was (its sequence number) and where it was started, so the
///   other members stop and can tell why (`ctx.cause()`).
/// - [`wait`](Group::wait) (blocking) or [`wait_async`](Group::wait_async) / `group.await`
///   waits for every member, then cancels the group's context (it is always done afterwards)
///   and returns the first error.
/// - **A panic is never dropped** (Go drops them): it cancels the group like an error, and
///   `wait` re-raises it (the first one) with [`std::panic::resume_unwind`] once every member
///   has finished, as [`std::thread::scope`] does.
/// - [`set_limit(n)`](Group::set_limit): never more than `n` members in flight. Members
///   started beyond the limit wait in a queue (the call does not block, so it is safe in async
///   code) and start as others finish; [`try_spawn_blocking`](Group::try_spawn_blocking)
///   starts only if a slot is free. After a member has failed, members not yet started are
///   dropped unstarted (their handles join to [`JoinError::is_cancelled`]); a plain
///   cancellation of the parent does not drop them, so `Ok` from `wait` always means that
///   every member ran and returned `Ok`.
/// - [`set_fail_fast(false)`](Group::set_fail_fast): graceful drain (Go's `sync.WaitGroup`,
///   tokio-util's `TaskTracker`): a failure cancels nothing and drops nothing; `wait` still
///   returns the first error, after every member ran.
///
/// # Errors
///
/// Members return `Result<T, E>`; `T` comes back through the member's handle, and `wait`
/// returns the first `Err` **by value, untouched**, so `?` and `match` on your own error type
/// work. `E` defaults to [`BoxError`]; any `E: Display + Send + 'static` works (`io::Error`,
/// `anyhow::Error`, your enum). Because Rust has one owner per value, the group's context
/// cannot hold that same `E`: its cause is a [`MemberFailed`] carrying the error's message.
///
/// If the OS refuses a thread for a member, the member fails the group as a panic would (its
/// handle joins to [`JoinError::is_refused`], and `wait` re-raises a message naming it): the
/// same policy as `go!`, where the refusal comes back from `join`; nothing panics at the spawn.
/// Likewise a task member whose runtime shuts down (or has shut down when it starts) before it
/// finished: it is dropped, its handle joins to [`JoinError::is_cancelled`], the group is
/// cancelled (its cause says the runtime shut down), and `wait` re-raises a message naming
/// the member, whichever thread or runtime it waits from.
///
/// # Memory
///
/// Finished members cost nothing: their threads are joined as the group goes, so a
/// long-lived group (one per server, one member per connection) runs in bounded memory.
///
/// # Dropping
///
/// Dropping a group without waiting cancels its context (members see it) and **does not
/// wait**: a drop never blocks, which matters in async code. Members keep running until they
/// notice; a panic in one of them is then reported only by the panic hook. Members still
/// queued behind the limit are dropped unstarted (their handles join to
/// [`JoinError::is_cancelled`]): nobody is left to wait for them, and their context is done.
/// Call `wait` to join.
///
/// # Examples
///
/// ```
/// use go_context::{Context, Group, MemberFailed};
///
/// let group: Group = Group::new(&Context::background());
/// let mut sizes = Vec::new();
/// for id in 0..4u32 {
///     sizes.push(group.spawn_blocking(move |ctx| {
///         if id == 2 {
///             return Err(format!("worker {id} failed").into());
///         }
///         ctx.wait(); // the others wait until the failure cancels them
///         Ok(id * 10)
///     }));
/// }
/// let ctx = group.context().clone();
/// let err = group.wait().unwrap_err();
/// assert_eq!(err.to_string(), "worker 2 failed");
/// let cause = ctx.cause().unwrap();
/// assert_eq!(cause.to_string(), "worker 2 failed");
/// assert_eq!(cause.downcast_ref::<MemberFailed>().unwrap().member(), 2);
/// assert_eq!(sizes.remove(0).join().unwrap(), 0);
/// ```
pub struct Group<E = BoxError> {
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    ctx: Context,
    /// The group's only `CancelHandle`. Taken out (and dropped, cancelling the context) when
    /// the group is waited or dropped; cloned for a moment by a failing member.
    cancel: Mutex<Option<CancelHandle>>,
    admission: Admission<Member>,
    failures: Mutex<Failures<E>>,
    threads: Mutex<Threads>,
}

/// The first error and the first panic, for `wait`.
struct Failures<E> {
    error: Option<E>,
    panic: Option<Payload>,
}

/// Member threads not joined yet (invariant 3).
struct Threads {
    live: Vec<JoinHandle<()>>,
    reap_at: usize,
}

/// A member that has not started: starting it spawns its thread (returned) or task.
/// Dropped unstarted, it drops the user's closure and its handle joins as cancelled.
struct Member {
    start: Box<dyn FnOnce() -> Option<JoinHandle<()>> + Send>,
}

/// How a member failed.
enum Failure<E> {
    Error(E),
    Panic(Payload),
}

impl<E: fmt::Display + Send + 'static> Shared<E> {
    /// Acts on an admission: launches, or drops what was refused (outside every lock).
    fn admitted(self: &Arc<Self>, admit: Admit<Member>) -> Result<(), SpawnError> {
        match admit {
            Admit::Start(member) => {
                self.launch(member);
                Ok(())
            }
            Admit::Queued => Ok(()),
            Admit::Refused(member, e) => {
                drop(member);
                Err(e)
            }
        }
    }

    /// Starts an admitted member (see [`Launches`]).
    fn launch(self: &Arc<Self>, member: Member) {
        if Launches::running() {
            let shared = Arc::clone(self);
            if let Some(unqueued) = Launches::queue(Box::new(move || shared.launch_now(member))) {
                unqueued();
            }
            return;
        }
        // Runs the launches this one causes when it is done, even if it unwinds: each was
        // admitted, and an admitted member that never starts would keep the group from ever
        // going idle.
        let _drain = Launches::begin();
        self.launch_now(member);
    }

    /// Starts an admitted member, records its thread, reaps finished ones.
    fn launch_now(self: &Arc<Self>, member: Member) {
        // May re-enter the group (a runtime shutting down drops the task at once, which ends
        // the member and launches the next queued one: `Launches` makes that a loop).
        let thread = (member.start)();
        let mut reaped = Vec::new();
        if let Some(thread) = thread {
            let mut threads = lock(&self.threads);
            threads.live.push(thread);
            if threads.live.len() >= threads.reap_at {
                let mut i = 0;
                while i < threads.live.len() {
                    if threads.live[i].is_finished() {
                        reaped.push(threads.live.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
                threads.reap_at = (2 * threads.live.len()).max(16);
            }
        }
        for thread in reaped {
            // Finished: only its exit is left, and the member's panic was caught.
            let _ = thread.join();
        }
        drop(self.admission.launched());
    }

    /// The end of a member (invariant 1): record a failure, free the slot, hand the value to
    /// the member's handle, then (in the guard) start what the freed slot lets start.
    fn end<T>(
        self: &Arc<Self>,
        outcome: Result<Result<T, E>, JoinError>,
        work: Work<T>,
        member: u64,
        site: &'static Location<'static>,
    ) {
        let mut finish = FinishGuard {
            shared: self,
            after: None,
        };
        let (failure, for_handle) = match outcome {
            Ok(Ok(value)) => (None, Ok(value)),
            Ok(Err(e)) => (Some(Failure::Error(e)), Err(JoinError::failed())),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                (Some(Failure::Panic(payload)), Err(JoinError::failed()))
            }
            Err(e) => {
                let message: Payload =
                    Box::new(format!("group member #{member} started at {site}: {e}"));
                (Some(Failure::Panic(message)), Err(e))
            }
        };
        if let Some(failure) = failure {
            self.failed(failure, member, site);
        }
        finish.free();
        work.deliver(for_handle);
    }

    /// Records a failure: the first one (fail-fast) cancels the group with its cause; the
    /// first of each kind is kept for `wait`, the others dropped here, outside the lock.
    fn failed(&self, failure: Failure<E>, member: u64, site: &'static Location<'static>) {
        let panicked = matches!(failure, Failure::Panic(_));
        let claim = self.admission.fail(panicked);
        if claim.cancel {
            let message = match &failure {
                // User code: outside every lock, and a panicking `Display` is contained.
                Failure::Error(e) => panic::catch_unwind(AssertUnwindSafe(|| e.to_string()))
                    .unwrap_or_else(|payload| {
                        crate::unwind::discard(payload);
                        "(the error's Display panicked)".to_owned()
                    }),
                Failure::Panic(payload) => panic_message(&**payload).unwrap_or("..").to_owned(),
            };
            let cause = MemberFailed::new(message, panicked, member, site);
            let handle = lock(&self.cancel).clone();
            if let Some(handle) = handle {
                // Traced as `Origin::MemberFailed` by the tree, once, if this call is the origin.
                handle.cancel_with_cause_at(cause, site);
            }
        }
        if claim.keep {
            let mut failures = lock(&self.failures);
            match failure {
                Failure::Error(e) => failures.error = Some(e),
                Failure::Panic(p) => failures.panic = Some(p),
            }
        } else {
            // A user value (an error, a panic's payload): its drop may panic, and the member's
            // handle still waits for its result.
            crate::unwind::contain(move || drop(failure));
        }
    }
}

impl<E> Shared<E> {
    /// Takes and drops the group's handle: its context is cancelled (unless already done)
    /// with the location of the `Group::new` call.
    fn close(&self) {
        let handle = lock(&self.cancel).take();
        drop(handle);
    }
}

/// The launches of this thread, run one after the other instead of inside each other.
///
/// Starting a member can end another at once: a runtime that has shut down drops the spawned
/// task on the spot, its end frees its slot, and that starts the next queued member, whose
/// spawn is dropped too. Done by recursion, that is one level of stack per queued member (a
/// graceful drain of thousands overflowed the stack). So a launch made while another runs on
/// this thread is queued here, and the outermost one runs the queue to its end.
///
/// Every access to the thread-local tolerates its destruction (`try_with`): a runtime kept in
/// a thread-local of the user's can be dropped as the thread exits, after ours, and its
/// members end then. Without the queue, launches nest (recursion, in that case only); a panic
/// there, in a thread-local destructor, left an admitted member unlaunched and `wait` hung.
struct Launches;

type Launch = Box<dyn FnOnce()>;

thread_local! {
    /// `Some` while a launch runs on this thread: the launches it caused, still to run.
    static PENDING: std::cell::RefCell<Option<std::collections::VecDeque<Launch>>> =
        const { std::cell::RefCell::new(None) };
}

impl Launches {
    /// Whether a launch runs on this thread (then this one is queued behind it).
    fn running() -> bool {
        PENDING.try_with(|p| p.borrow().is_some()).unwrap_or(false)
    }

    /// Queues `launch` behind the running one; gives it back if it could not be queued (then
    /// the caller runs it now).
    fn queue(launch: Launch) -> Option<Launch> {
        let mut launch = Some(launch);
        let _ = PENDING.try_with(|p| {
            if let Some(q) = p.borrow_mut().as_mut() {
                q.extend(launch.take());
            }
        });
        launch
    }

    /// The outermost launch of this thread begins: its guard runs the queue when dropped.
    fn begin() -> Launches {
        let _ = PENDING.try_with(|p| *p.borrow_mut() = Some(std::collections::VecDeque::new()));
        Launches
    }

    fn next() -> Option<Launch> {
        PENDING
            .try_with(|p| p.borrow_mut().as_mut().and_then(|q| q.pop_front()))
            .ok()
            .flatten()
    }
}

impl Drop for Launches {
    fn drop(&mut self) {
        let mut panic = None;
        while let Some(launch) = Launches::next() {
            // No borrow is held while a launch runs: it may queue more.
            if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(launch)) {
                panic.get_or_insert(payload);
            }
        }
        let _ = PENDING.try_with(|p| *p.borrow_mut() = None);
        if let Some(payload) = panic {
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
            crate::unwind::discard(payload);
        }
    }
}

/// Which group and member this thread is running, if any (invariant 4): the addresses of the
/// group's [`Shared`] and of the member's slot (see [`Work::key`]), both kept alive by the
/// member itself while it runs; 0 for none.
pub(crate) struct InMember((usize, usize));

thread_local! {
    static MEMBER_OF: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

impl InMember {
    /// The key of a group: the address of its shared state.
    fn key<E>(shared: &Arc<Shared<E>>) -> usize {
        &**shared as *const Shared<E> as usize
    }

    /// This thread runs the member `work` of the group `group` until the guard is dropped.
    fn enter(group: usize, work: usize) -> InMember {
        InMember(
            MEMBER_OF
                .try_with(|m| m.replace((group, work)))
                .unwrap_or((0, 0)),
        )
    }

    /// Whether this thread is running a member of the group `key` now.
    fn is(key: usize) -> bool {
        MEMBER_OF.try_with(|m| m.get().0 == key).unwrap_or(false)
    }

    /// Whether this thread is running the member whose slot is `work` now.
    pub(crate) fn is_work(work: usize) -> bool {
        MEMBER_OF.try_with(|m| m.get().1 == work).unwrap_or(false)
    }
}

impl Drop for InMember {
    fn drop(&mut self) {
        let _ = MEMBER_OF.try_with(|m| m.set(self.0));
    }
}

/// Frees a finished member's slot, even on unwind (invariant 1), and carries out what that
/// decides: the member's end is over (the waiter is woken if the group is idle), skipped
/// members are dropped, queued ones start.
struct FinishGuard<'a, E: fmt::Display + Send + 'static> {
    shared: &'a Arc<Shared<E>>,
    /// What freeing the slot decided, once [`free`](FinishGuard::free) ran.
    after: Option<After<Member>>,
}

impl<E: fmt::Display + Send + 'static> FinishGuard<'_, E> {
    /// Frees the slot now, before the member's handle gets its outcome.
    fn free(&mut self) {
        self.after = Some(self.shared.admission.finish());
    }
}

impl<E: fmt::Display + Send + 'static> Drop for FinishGuard<'_, E> {
    fn drop(&mut self) {
        let after = match self.after.take() {
            Some(after) => after,
            None => self.shared.admission.finish(),
        };
        // First, so that no drop or launch below can skip it: the members to start count as
        // running and starting, so the group is not idle before they are launched; the
        // skipped ones are out of the group already.
        drop(self.shared.admission.ended());
        drop(after.skipped);
        for member in after.start {
            self.shared.launch(member);
        }
    }
}

impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
{
    /// A group whose context is a new child of `parent`.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let (parent, cancel) = Context::background().with_cancel();
    /// let group: Group = Group::new(&parent);
    /// cancel.cancel();
    /// assert!(group.context().is_done());
    /// ```
    #[track_caller]
    pub fn new(parent: &Context) -> Group<E> {
        let (ctx, cancel) = parent.with_cancel();
        Group {
            shared: Arc::new(Shared {
                ctx,
                cancel: Mutex::new(Some(cancel)),
                admission: Admission::new(),
                failures: Mutex::new(Failures {
                    error: None,
                    panic: None,
                }),
                threads: Mutex::new(Threads {
                    live: Vec::new(),
                    reap_at: 16,
                }),
            }),
        }
    }

    /// The group's context: members run under children of it, and it is done after the first
    /// failure (fail-fast), after [`wait`](Group::wait), or when the parent is done.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// assert!(!ctx.is_done());
    /// group.wait().unwrap();
    /// assert!(ctx.is_done());
    /// ```
    pub fn context(&self) -> &Context {
        &self.shared.ctx
    }

    /// Never more than `n` members in flight from now on. Go's `SetLimit`, except that going
    /// over the limit queues instead of blocking; see
    /// [`try_spawn_blocking`](Group::try_spawn_blocking).
    ///
    /// # Errors
    ///
    /// [`LimitError::Zero`] if `n` is 0 (nothing could ever start), and
    /// [`LimitError::MembersActive`] if members are running or queued: set the limit before
    /// starting any, as Go requires (Go panics; we return an error). The limit is then
    /// unchanged.
    ///
    /// ```
    /// use go_context::{Context, Group};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(2).unwrap();
    /// let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..8 {
    ///     let (now, max) = (now.clone(), max.clone());
    ///     group.spawn_blocking(move |_| {
    ///         let n = now.fetch_add(1, Ordering::SeqCst) + 1;
    ///         max.fetch_max(n, Ordering::SeqCst);
    ///         std::thread::yield_now();
    ///         now.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// group.wait().unwrap();
    /// assert!(max.load(Ordering::SeqCst) <= 2);
    /// ```
    pub fn set_limit(&self, n: usize) -> Result<(), LimitError> {
        self.shared.admission.set_limit(n)
    }

    /// Whether a failure cancels the group (`true`, the default: Go's errgroup) or not
    /// (`false`: graceful drain, Go's `sync.WaitGroup`, tokio-util's `TaskTracker`). Without
    /// fail-fast, a member's error or panic cancels nothing and drops no queued member; `wait`
    /// still returns the first error (or re-raises the first panic) once every member ran.
    ///
    /// # Errors
    ///
    /// [`LimitError::MembersActive`] if members are running or queued.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_fail_fast(false).unwrap();
    /// group.spawn_blocking(|_| Err::<(), _>("one request failed".into()));
    /// let other = group.spawn_blocking(|ctx| Ok(ctx.is_done()));
    /// assert_eq!(group.wait().unwrap_err().to_string(), "one request failed");
    /// assert_eq!(other.join().unwrap(), false); // never cancelled: drained
    /// ```
    pub fn set_fail_fast(&self, on: bool) -> Result<(), LimitError> {
        self.shared.admission.set_fail_fast(on)
    }

    /// Starts `f` on a new OS thread as a member: Go's `g.Go(f)` for blocking code. `f` gets
    /// the member's context (a child of the group's), which is also its current context. If
    /// the limit is reached, `f` is queued and starts when a slot frees; this call never
    /// blocks. The handle gives back `f`'s `Ok` value (its `Err` goes to
    /// [`wait`](Group::wait); the handle then joins to [`JoinError::is_failed`]). Called inside
    /// a tokio runtime, the thread enters that runtime (also when `f` was queued and starts
    /// later, from another member's thread), so futures that `f` spawns land on it.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let squares: Vec<_> = (1..=3u32).map(|i| group.spawn_blocking(move |_| Ok(i * i))).collect();
    /// group.wait().unwrap();
    /// let got: Vec<u32> = squares.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(got, [1, 4, 9]);
    /// ```
    #[track_caller]
    pub fn spawn_blocking<T, F>(&self, f: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let (handle, admit) = self.blocking_member(true, f, Location::caller());
        let _ = self.shared.admitted(admit);
        handle
    }

    /// Like [`spawn_blocking`](Group::spawn_blocking), but starts `f` only if a slot is free
    /// under the limit (and no member has failed, in fail-fast mode): Go's `TryGo`. If not, `f`
    /// is dropped unrun and the error says why.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(1).unwrap();
    /// let first = group.try_spawn_blocking(|ctx| { ctx.wait(); Ok(()) }).unwrap();
    /// assert!(group.try_spawn_blocking(|_| Ok(())).unwrap_err().is_full());
    /// first.cancel();
    /// group.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn try_spawn_blocking<T, F>(&self, f: F) -> Result<GoHandle<T>, SpawnError>
    where
        F: FnOnce(Context) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let (handle, admit) = self.blocking_member(false, f, Location::caller());
        self.shared.admitted(admit).map(|()| handle)
    }

    fn blocking_member<T, F>(
        &self,
        queue: bool,
        f: F,
        site: &'static Location<'static>,
    ) -> (GoHandle<T>, Admit<Member>)
    where
        F: FnOnce(Context) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
    {
        let (handle, work, child) = GoHandle::prepare(&self.shared.ctx, Kind::Thread);
        let shared = Arc::clone(&self.shared);
        // The caller's runtime, now: a queued member is launched later, on another thread.
        let caller = runtime::Runtime::capture();
        let (key, at) = (InMember::key(&self.shared), work.key());
        let f = move |ctx| {
            let _in = InMember::enter(key, at);
            f(ctx)
        };
        let admit = self.shared.admission.admit(queue, move |member| Member {
            start: Box::new(move || {
                runtime::spawn_thread_in(caller, child, f, move |outcome| {
                    shared.end(outcome, work, member, site)
                })
            }),
        });
        (handle, admit)
    }

    /// Blocks until every member has finished, then cancels the group's context and returns
    /// the first error (Go's `Wait`). If a member panicked, re-raises the first panic instead,
    /// after every member has finished. Member threads have exited when this returns.
    ///
    /// On a multi-thread tokio runtime this is allowed (through `block_in_place`).
    ///
    /// # Panics
    ///
    /// With a member's panic, as above; on the thread that drives a current-thread tokio
    /// runtime (one of its tasks, or its root future), unless the group is already idle,
    /// where blocking would hang forever: use [`wait_async`](Group::wait_async) there; and
    /// inside one of the group's own members (its closure or future, not threads or tasks it
    /// starts), which would wait for itself forever ([`wait_async`](Group::wait_async)
    /// panics there too).
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group = Group::new(&Context::background());
    /// group.spawn_blocking(|_| Err::<(), _>(std::io::Error::other("disk on fire")));
    /// group.spawn_blocking(|_| Ok(()));
    /// let err: std::io::Error = group.wait().unwrap_err();
    /// assert_eq!(err.to_string(), "disk on fire");
    /// ```
    #[track_caller]
    pub fn wait(self) -> Result<(), E> {
        if let Some(idle) = self.shared.admission.idle_signal() {
            self.refuse_wait_in_own_member("Group::wait");
            runtime::block("Group::wait", "group.wait_async().await", || idle.wait());
        }
        let threads = std::mem::take(&mut lock(&self.shared.threads).live);
        for thread in threads {
            // The member's own panic was caught; its thread has only to exit.
            let _ = thread.join();
        }
        self.into_result()
    }

    /// Waits asynchronously until every member has finished, then as [`wait`](Group::wait).
    /// `group.await` does the same. The future is `Send` and needs no particular executor.
    ///
    /// # Panics
    ///
    /// With a member's panic, as [`wait`](Group::wait); and when polled inside one of the
    /// group's own members (its future, not tasks it starts) before the group is idle, which
    /// would wait for itself forever.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.spawn_blocking(|_| Ok(()));
    /// assert!(futures_executor::block_on(group.wait_async()).is_ok());
    /// ```
    pub fn wait_async(self) -> GroupWait<E> {
        GroupWait {
            group: Some(self),
            done: None,
        }
    }

    /// Panics if this thread is running one of the group's own members: waiting there for
    /// every member, that one included, would hang forever. Dropping the group (as the panic
    /// unwinds) cancels its context.
    #[track_caller]
    fn refuse_wait_in_own_member(&self, what: &str) {
        if InMember::is(InMember::key(&self.shared)) {
            panic!(
                "{what} inside one of the group's own members: it waits for every member to \
                 finish, this one included, so it would hang forever. Wait outside the \
                 group's members"
            );
        }
    }

    /// Closes the group (its context is cancelled) and gives the first panic or error.
    fn into_result(self) -> Result<(), E> {
        self.shared.close();
        let (error, panic) = {
            let mut failures = lock(&self.shared.failures);
            (failures.error.take(), failures.panic.take())
        };
        if let Some(payload) = panic {
            // The panic wins; the error is a user value whose drop may panic, which must not
            // replace the member's panic (the panic hook has reported it).
            crate::unwind::contain(move || drop(error));
            panic::resume_unwind(payload);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "tokio")]
impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
{
    /// Starts the future that `f` makes as a member task on the caller's tokio runtime (Go's
    /// `g.Go(f)` for async code). `f` gets the member's context, which is also current while
    /// the task runs. If the limit is reached, the member is queued; this call never blocks.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, with a message saying what to do; see
    /// [`try_spawn`](Group::try_spawn).
    ///
    /// ```
    /// use go_context::{Context, Error, Group};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group = Group::new(&Context::background());
    /// let waiter = group.spawn(|ctx| async move { Ok(ctx.done().await) });
    /// group.spawn(|_| async { Err::<(), _>(Error::DeadlineExceeded) });
    /// assert_eq!(group.await, Err(Error::DeadlineExceeded));
    /// assert_eq!(waiter.await.unwrap(), Error::Canceled);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<T, F, Fut>(&self, f: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<T, E>>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        match self.task_member(true, f, Location::caller()) {
            Ok((handle, admit)) => {
                let _ = self.shared.admitted(admit);
                handle
            }
            Err(_) => panic!("{}", super::errors::NO_RUNTIME),
        }
    }

    /// Like [`spawn`](Group::spawn), but starts only if a slot is free (Go's `TryGo`), and
    /// outside a tokio runtime returns an error instead of panicking.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(1).unwrap();
    /// assert!(group.try_spawn(|_| async { Ok(()) }).is_ok());
    /// assert!(group.try_spawn(|_| async { Ok(()) }).unwrap_err().is_full());
    /// group.await.unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn try_spawn<T, F, Fut>(&self, f: F) -> Result<GoHandle<T>, SpawnError>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<T, E>>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        let (handle, admit) = self.task_member(false, f, Location::caller())?;
        self.shared.admitted(admit).map(|()| handle)
    }

    #[allow(clippy::type_complexity)]
    fn task_member<T, F, Fut>(
        &self,
        queue: bool,
        f: F,
        site: &'static Location<'static>,
    ) -> Result<(GoHandle<T>, Admit<Member>), SpawnError>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<T, E>>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        let spawner = runtime::Spawner::captured()?;
        let (handle, work, child) = GoHandle::prepare(&self.shared.ctx, Kind::Task);
        let shared = Arc::clone(&self.shared);
        let (key, at) = (InMember::key(&self.shared), work.key());
        let f = move |ctx| {
            let fut = {
                let _in = InMember::enter(key, at);
                f(ctx).into_future()
            };
            async move {
                let mut fut = std::pin::pin!(fut);
                std::future::poll_fn(|cx| {
                    let _in = InMember::enter(key, at);
                    fut.as_mut().poll(cx)
                })
                .await
            }
        };
        let admit = self.shared.admission.admit(queue, move |member| Member {
            start: Box::new(move || {
                // The member's outcome goes to its slot; the task's `JoinHandle` is dropped.
                drop(spawner.spawn(child, f, move |outcome| {
                    shared.end(outcome, work, member, site)
                }));
                None
            }),
        });
        Ok((handle, admit))
    }
}

impl<E> Drop for Group<E> {
    /// Cancels the group's context and drops the members still queued (outside every lock);
    /// does not wait for the running ones.
    fn drop(&mut self) {
        self.shared.close();
        let after = self.shared.admission.abandon();
        drop(after.skipped);
        drop(after.idle);
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (limit, running, queued, failed) = self.shared.admission.snapshot();
        f.debug_struct("Group")
            .field("context", &self.shared.ctx)
            .field("limit", &limit)
            .field("running", &running)
            .field("queued", &queued)
            .field("failed", &failed)
            .finish()
    }
}

impl<E> IntoFuture for Group<E>
where
    E: fmt::Display + Send + 'static,
{
    type Output = Result<(), E>;
    type IntoFuture = GroupWait<E>;

    /// [`Group::wait_async`].
    fn into_future(self) -> GroupWait<E> {
        self.wait_async()
    }
}

// ===== GroupWait =====

/// The future of [`Group::wait_async`] (and of `group.await`).
///
/// ```
/// use go_context::{Context, Group};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let group: Group = Group::new(&Context::background());
/// group.spawn_blocking(|_| Ok(()));
/// let wait = group.wait_async();
/// assert!(wait.await.is_ok());
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct GroupWait<E> {
    group: Option<Group<E>>,
    /// Boxed, so that `GroupWait` stays `Unpin` (`Done` is not).
    done: Option<Pin<Box<Done>>>,
}

impl<E> Future for GroupWait<E>
where
    E: fmt::Display + Send + 'static,
{
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let group = this
            .group
            .as_ref()
            .expect("GroupWait polled after it completed");
        loop {
            if let Some(done) = &mut this.done {
                if done.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            match group.shared.admission.idle_signal() {
                Some(idle) => {
                    group.refuse_wait_in_own_member("Group::wait_async");
                    this.done = Some(Box::pin(idle.done()));
                }
                None => break,
            }
        }
        // Member threads are at their exit; they are not joined here, which would block.
        let threads = std::mem::take(&mut lock(&group.shared.threads).live);
        drop(threads);
        let group = this.group.take().expect("checked above");
        Poll::Ready(group.into_result())
    }
}

impl<E> fmt::Debug for GroupWait<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupWait")
            .field("group", &self.group)
            .finish()
    }
}
