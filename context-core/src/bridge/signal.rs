//! Feature `signal` (Unix and Windows): Go's `signal.NotifyContext`, as
//! [`Context::with_signals`].
//!
//! This file is what both platforms share: the registry of the contexts waiting for a signal,
//! their removal when they are done, the claim a signal makes on them, their cancellation with
//! the cause [`SignalReceived`], and when the OS's own handling comes back. The platform part
//! (`unix.rs`, `windows.rs`) only gets the OS to tell it "signal N arrived" and hands N to
//! [`claim`]; it also says what "our handler in" and "the previous handling back" mean there.
//!
//! - Unix (SIGINT, SIGTERM): the signal handler writes N to a socket (the self-pipe trick);
//!   the dispatcher thread reads it, claims, cancels, and sends the signal to the process
//!   again if nobody claimed it and its disposition is the default.
//! - Windows (the console's control events): the OS runs our handler on a thread of its own,
//!   with the console's handler lock held; the handler claims at once (the answer "handled or
//!   not" is its return value) and hands the claimed contexts to the dispatcher thread, which
//!   cancels them outside that lock.
//!
//! Either way one process-wide thread, `context-signal`, started by the first `with_signals`,
//! takes each signal's contexts, as the deadline timer is one thread per process, never one
//! per context; each signal's contexts are then cancelled on a thread of their own
//! (invariant 5).
//!
//! # Invariants
//!
//! 1. `installed` is `Some` exactly when `entries` is non-empty: our handling is in for every
//!    signal we listen to while some context waits for them. Both change together, under the
//!    registry lock.
//! 2. The registry lock is a leaf: nobody takes a node lock, cancels a context or wakes
//!    anything while holding it. (On Windows it is taken by a thread holding the console's
//!    handler lock, so nobody may call into the console while holding it either: the
//!    platform's `install`/`restore` there touch no OS state.)
//! 3. An entry is removed once: by the [`Unregister`] guard registered on its context (when the
//!    context is done, its waiters are taken and dropped) or, earlier, by [`claim`], which
//!    empties the registry when a signal arrives (taking the live contexts, to cancel them).
//!    Removal of a missing id is a no-op.
//! 4. A signal that finds no live registration (it raced with the last unregistration, or a
//!    second signal arrived right after the first) gets the handling it would have had without
//!    us: Unix sends it again to the process (`kill`, which any thread that does not block it
//!    takes) if the restored disposition is the default, so it still ends the process (any
//!    other disposition is left to its owner); Windows' handler answers "not
//!    handled", so the next handler runs (by default, the one that ends the process).
//! 5. The dispatcher runs no user code: it claims, then hands each claim's cancellation (which
//!    wakes wakers and drops values) to a short-lived thread of its own, so a waker that blocks
//!    delays no later signal. The references a claim took to contexts that were done already
//!    go to such a thread too: their owners may have let go since, so one may be the last,
//!    whose drop drops the context's values and cause. (A thread per signal costs nothing
//!    that matters: signals are few.)

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::{Mutex as StdMutex, OnceLock, Weak};
use std::task::Waker;

use crate::handle::CancelHandle;
use crate::sync::Arc;
use crate::trace::Origin;
use crate::tree::Node;
use crate::tree::Waiter;
use crate::Context;

/// The [`Cause`](crate::Cause) of a context made by [`Context::with_signals`] when a signal
/// arrived; find it with `cause().downcast_ref::<SignalReceived>()`. It names the signal; its
/// location is the `with_signals` call.
///
/// On Unix the signal is `SIGINT` or `SIGTERM`. On Windows it is the console's control event:
/// `CTRL_C` or `CTRL_BREAK` (what Go calls `os.Interrupt`), `CTRL_CLOSE`, `CTRL_LOGOFF` or
/// `CTRL_SHUTDOWN` (what Go reports as `SIGTERM`).
///
/// ```
/// use go_context::{Context, SignalReceived};
///
/// let (ctx, _stop) = Context::background().with_signals().unwrap();
/// # // The example presses Ctrl-C itself (Unix only: on Windows the event would reach
/// # // every process on the console, the test runner's too).
/// # #[cfg(not(unix))]
/// # return;
/// # #[cfg(unix)]
/// # unsafe { libc::raise(libc::SIGINT) };
/// ctx.wait(); // until Ctrl-C
/// let cause = ctx.cause().unwrap();
/// let signal = cause.downcast_ref::<SignalReceived>().unwrap();
/// if cfg!(unix) {
///     assert_eq!(signal.name(), "SIGINT");
///     assert_eq!(cause.to_string(), "received SIGINT");
/// } else {
///     assert_eq!(signal.name(), "CTRL_C");
///     assert_eq!(cause.to_string(), "received CTRL_C");
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(all(feature = "signal", any(unix, windows)))))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalReceived {
    signal: i32,
}

impl SignalReceived {
    /// The signal's number: on Unix `libc::SIGINT` or `libc::SIGTERM`; on Windows the control
    /// event's code (`CTRL_C_EVENT` is 0, `CTRL_BREAK_EVENT` 1, `CTRL_CLOSE_EVENT` 2,
    /// `CTRL_LOGOFF_EVENT` 5, `CTRL_SHUTDOWN_EVENT` 6).
    ///
    /// ```
    /// # use go_context::{Context, SignalReceived};
    /// let (ctx, _stop) = Context::background().with_signals().unwrap();
    /// # // The example presses Ctrl-C itself (Unix only: on Windows the event would reach
    /// # // every process on the console, the test runner's too).
    /// # #[cfg(not(unix))]
    /// # return;
    /// # #[cfg(unix)]
    /// # unsafe { libc::raise(libc::SIGINT) };
    /// ctx.wait(); // until Ctrl-C
    /// let number = ctx.cause().unwrap().downcast_ref::<SignalReceived>().unwrap().number();
    /// if cfg!(unix) {
    ///     assert!(number == 2 || number == 15); // SIGINT or SIGTERM
    /// }
    /// ```
    pub fn number(&self) -> i32 {
        self.signal
    }

    /// The signal's name: on Unix `SIGINT` or `SIGTERM`; on Windows `CTRL_C`, `CTRL_BREAK`,
    /// `CTRL_CLOSE`, `CTRL_LOGOFF` or `CTRL_SHUTDOWN`.
    ///
    /// ```
    /// # use go_context::{Context, SignalReceived};
    /// let (ctx, _stop) = Context::background().with_signals().unwrap();
    /// # // The example presses Ctrl-C itself (Unix only: on Windows the event would reach
    /// # // every process on the console, the test runner's too).
    /// # #[cfg(not(unix))]
    /// # return;
    /// # #[cfg(unix)]
    /// # unsafe { libc::raise(libc::SIGINT) };
    /// ctx.wait(); // until Ctrl-C
    /// let name = ctx.cause().unwrap().downcast_ref::<SignalReceived>().unwrap().name();
    /// if cfg!(unix) {
    ///     assert!(name == "SIGINT" || name == "SIGTERM");
    /// }
    /// ```
    pub fn name(&self) -> &'static str {
        platform::name(self.signal)
    }
}

impl fmt::Display for SignalReceived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "received {}", self.name())
    }
}

impl StdError for SignalReceived {}

// ===== the registry =====

struct Entry {
    node: Weak<Node>,
    location: &'static Location<'static>,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    /// What our handling replaced (invariant 1).
    installed: Option<platform::Saved>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<StdMutex<Registry>> = OnceLock::new();
    // No user code runs under this lock (invariant 2): poison can only be a bug here.
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Starts the platform's delivery path (the dispatcher thread, and what feeds it), once per
/// process. Only a start that succeeded is kept: if the OS refused it, the next call asks
/// again (as the timer and the callback pool do), rather than failing for good.
fn dispatcher() -> io::Result<()> {
    // A leaf, taken by `with_signals` alone (never by a handler or the dispatcher).
    static STARTED: StdMutex<bool> = StdMutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if !*started {
        platform::start().map_err(|e| {
            io::Error::new(
                e.kind(),
                "go-context: cannot start the signal dispatcher thread",
            )
        })?;
        *started = true;
    }
    Ok(())
}

/// Removes entry `id` if it is still there (invariant 3); takes our handling out with the
/// last one (invariant 1).
fn unregister(id: u64) {
    let mut reg = registry();
    let removed = reg.entries.remove(&id);
    super::give_back(&mut reg.entries);
    if reg.entries.is_empty() {
        if let Some(old) = reg.installed.take() {
            platform::restore(&old);
        }
    }
    drop(reg);
    drop(removed);
}

/// What a signal found in the registry.
enum Claim {
    /// The live contexts it cancels.
    Cancel(Claimed),
    /// Nobody was waiting (invariant 4); `default` tells whether the handling now in place
    /// for it is the OS's default (Unix sends it to the process again then; Windows passes
    /// every unclaimed event on to the next handler, and needs not ask).
    Nobody {
        #[cfg_attr(windows, allow(dead_code))]
        default: bool,
    },
}

/// The contexts a signal took from the registry: cancel them with no lock of ours held.
struct Claimed {
    signal: i32,
    targets: Vec<(Arc<Node>, &'static Location<'static>)>,
}

/// Empties the registry for `signal`: takes the live registrations, forgets the done ones, and
/// puts the previous handling back (invariants 1, 3, 4). Called by the platform part for each
/// signal that arrived, on a thread where locks may be taken (never in a Unix signal handler).
fn claim(signal: i32) -> Claim {
    let mut targets = Vec::new();
    // Upgraded nodes that were done: dropped after the lock, as one may be the last strong
    // reference, and a node's drop drops its cause and values, user values (invariant 2);
    // and not on this thread (invariant 5).
    let mut done = Vec::new();
    let default = {
        let mut reg = registry();
        // Every entry leaves: the live ones are this signal's to cancel (a second signal finds
        // them gone and gets the previous handling), the others are done already.
        for (_, entry) in reg.entries.drain() {
            match entry.node.upgrade() {
                Some(node) if node.err().is_none() => targets.push((node, entry.location)),
                Some(node) => done.push(node),
                None => {}
            }
        }
        super::give_back(&mut reg.entries);
        if let Some(old) = reg.installed.take() {
            platform::restore(&old);
        }
        // Invariant 4: asked under the lock, before a new registration may put ours back.
        targets.is_empty() && platform::is_default(signal)
    };
    #[cfg(all(test, unix))]
    crate::bridge::test_support::run_hook(&tests::AFTER_THE_LOCK);
    if !done.is_empty() {
        // Their owners may have let go since the upgrade: a drop may be slow, or block.
        on_a_thread_of_its_own("context-signal-drop", done, |done| {
            done.into_iter().for_each(drop_node);
        });
    }
    if targets.is_empty() {
        Claim::Nobody { default }
    } else {
        Claim::Cancel(Claimed { signal, targets })
    }
}

impl Claimed {
    /// Cancels the claimed contexts with the cause [`SignalReceived`], on a thread of its own
    /// (invariant 5): the cancellation wakes user code, and a waker that blocks must not keep
    /// the dispatcher from the next signal. If the OS refuses that thread, here.
    fn cancel(self) {
        on_a_thread_of_its_own("context-signal-cancel", self, Claimed::cancel_here);
    }

    /// Invariant 2: the registry lock is released (cancellation runs the `Unregister` guards,
    /// which take it).
    fn cancel_here(self) {
        let signal = self.signal;
        for (node, location) in self.targets {
            super::cancel(
                &node,
                Origin::Signal,
                Box::new(SignalReceived { signal }),
                location,
            );
            // The program may have dropped its references meanwhile (a waker may, woken by
            // this very cancellation): then this one is the last.
            drop_node(node);
        }
    }
}

/// Runs `run(what)` on a short-lived thread named `name` (invariant 5), or here if the OS
/// refuses one.
fn on_a_thread_of_its_own<T: Send + 'static>(name: &str, what: T, run: fn(T)) {
    fn take<T>(slot: &StdMutex<Option<T>>) -> Option<T> {
        slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
    let slot = Arc::new(StdMutex::new(Some(what)));
    let theirs = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(what) = take(&theirs) {
                run(what);
            }
        });
    if spawned.is_err() {
        // The closure was dropped unrun: `what` is still in its slot.
        if let Some(what) = take(&slot) {
            run(what);
        }
    }
}

/// Drops a node the dispatcher held. It may be the last reference, so its drop drops the
/// context's values and cause, user values: a panic there (the hook has reported it) must
/// neither kill the dispatcher, which every later signal needs, nor stop the rest of a claim.
fn drop_node(node: Arc<Node>) {
    crate::unwind::contain(move || drop(node));
}

/// Registered as a waker on a `with_signals` context: dropped when the context is done (its
/// waiters are taken, woken and dropped), it removes the registration.
struct Unregister(u64);

impl std::task::Wake for Unregister {
    fn wake(self: Arc<Self>) {}
}

impl Drop for Unregister {
    fn drop(&mut self) {
        unregister(self.0);
    }
}

impl Context {
    /// Go's `signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)`: a child of this context
    /// that is cancelled when the process receives SIGINT (Ctrl-C) or SIGTERM, or on Windows
    /// the console's Ctrl-C, Ctrl-Break, close, logoff or shutdown event, with the cause
    /// [`SignalReceived`] naming the signal (located at this call).
    ///
    /// While such a context is live, these signals no longer end the process: they cancel the
    /// context instead. Once it is done (the signal came, its handle was used or dropped, or
    /// its parent was cancelled) the signals' previous handling (usually the default) is back,
    /// so a **second Ctrl-C ends the process**, even while the program is still draining. (In
    /// Go, the signals stay caught until `stop()` is called.) Several such contexts may be live
    /// at once; a signal cancels them all, and the previous handling returns with the last.
    ///
    /// One process-wide thread, started by the first call, receives the signals; each signal's
    /// contexts are cancelled on a short-lived thread of its own, so a waker that blocks delays
    /// no later signal. It needs no async runtime. On each platform:
    ///
    /// - **Unix**: a handler for SIGINT and SIGTERM that only writes a byte to a socket; it is
    ///   installed while such a context is live, and the previous disposition is put back
    ///   after. Another library's handler installed while ours is live is left in place.
    ///   A signal the process started with ignored (as a shell does for `cmd &`) is caught
    ///   too while such a context is live, as Go's `signal.Notify` does; it is ignored again
    ///   after.
    ///   A process forked without exec (`fork()` alone) inherits the handler but not the
    ///   thread: there our handler puts back the previous disposition and raises the signal
    ///   again, so the fork's signals get the handling they had before `with_signals` (a
    ///   SIGTERM ends it by default), and never reach the parent's contexts. A `with_signals`
    ///   context made in such a fork is not cancelled by a signal (nor does a deadline fire
    ///   there: no thread of ours survives a fork); after an exec all is as new.
    /// - **Windows**: a console control handler (`SetConsoleCtrlHandler`), added by the first
    ///   call and kept: while no such context is live it answers "not handled", so the next
    ///   handler runs as if ours were not there (by default, the one that ends the process).
    ///   Ctrl-C and Ctrl-Break are then handled, and the process goes on. The close, logoff
    ///   and shutdown events end the process whatever a handler answers, once it returns: as
    ///   Go does, ours then never returns, so the program has until the OS's time-out (a few
    ///   seconds) to drain and exit. A process that ignores Ctrl-C (`SetConsoleCtrlHandler(NULL,
    ///   TRUE)`, or started in a new process group) still gets Ctrl-Break, not Ctrl-C.
    /// - Elsewhere this method does not exist.
    ///
    /// # Errors
    ///
    /// The error of the OS if the thread or the handler (and on Unix, the socket pair) cannot
    /// be set up. Nothing is kept of a failed call: the next one asks the OS again.
    ///
    /// # Examples
    ///
    /// ```
    /// use go_context::{Context, SignalReceived};
    /// use std::time::Duration;
    ///
    /// fn main() -> std::io::Result<()> {
    ///     let (ctx, _stop) = Context::background().with_signals()?;
    /// #   // The example presses Ctrl-C itself (Unix only: on Windows the event would reach
    /// #   // every process on the console, the test runner's too).
    /// #   #[cfg(not(unix))]
    /// #   return Ok(());
    /// #   #[cfg(unix)]
    /// #   unsafe { libc::raise(libc::SIGINT) };
    ///     while ctx.sleep(Duration::from_millis(100)).is_ok() {
    ///         // ... serve ...
    ///     }
    ///     let cause = ctx.cause().unwrap();
    ///     eprintln!("shutting down: {cause}"); // "received SIGINT" ("received CTRL_C")
    ///     assert!(cause.downcast_ref::<SignalReceived>().is_some());
    ///     Ok(())
    /// }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(all(feature = "signal", any(unix, windows)))))]
    #[track_caller]
    pub fn with_signals(&self) -> io::Result<(Context, CancelHandle)> {
        let location = Location::caller();
        let (child, handle) = self.with_cancel();
        let Some(core) = child.node.cancel_node() else {
            unreachable!("with_cancel makes a cancel node")
        };
        if core.is_done() {
            return Ok((child, handle)); // born done: nothing to wait for
        }
        dispatcher()?;
        let id = {
            let mut reg = registry();
            if reg.installed.is_none() {
                reg.installed = Some(platform::install()?);
            }
            let id = reg.next_id;
            reg.next_id += 1;
            reg.entries.insert(
                id,
                Entry {
                    node: Arc::downgrade(&child.node),
                    location,
                },
            );
            id
        };
        let guard = Waker::from(Arc::new(Unregister(id)));
        if let Err((waiter, _)) = core.register(Waiter::Task(guard)) {
            // Done in between: dropping the guard removes the entry at once.
            drop(waiter);
        }
        Ok((child, handle))
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! The claim on the dispatcher's thread, called directly (no signal is sent: one nobody
    //! claims would end the test process).

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::{Context, SignalReceived};

    use crate::bridge::test_support::{hold_up, HeldUp, Hook, PATIENCE};

    /// Fault injection: while set, `unix::start` fails as when the OS refuses the dispatcher
    /// thread.
    pub(in crate::bridge::signal) static REFUSE_THE_DISPATCHER: AtomicBool = AtomicBool::new(false);

    /// Set in the child processes that some tests below run themselves in (one test each).
    const CHILD: &str = "GO_CONTEXT_SIGNAL_DISPATCHER_CHILD";

    /// The tests that use this process's registry (a claim empties it): one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Regression test (found by the core audit): the first `with_signals` kept the outcome of
    /// starting the dispatcher for the life of the process, so once the OS had refused its
    /// thread (a transient `EAGAIN`), every later call failed too, though the timer and the
    /// callback pool ask again. Run in a process of its own: the dispatcher starts once per
    /// process, and another test of this binary may have started it.
    #[test]
    fn a_refused_dispatcher_is_started_by_the_next_call() {
        const NAME: &str =
            "bridge::signal::tests::a_refused_dispatcher_is_started_by_the_next_call";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && printed.contains("1 passed"),
                "the child failed ({}):\n{printed}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        // The child, started from the default handling (the runner may ignore SIGINT).
        // SAFETY: `signal` has no memory-safety preconditions; SIG_DFL is always valid.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        REFUSE_THE_DISPATCHER.store(true, Ordering::SeqCst);
        assert!(Context::background().with_signals().is_err());
        REFUSE_THE_DISPATCHER.store(false, Ordering::SeqCst);
        let (ctx, _stop) = Context::background()
            .with_signals()
            .expect("the next call starts the dispatcher");
        // And it delivers: a SIGINT cancels the context rather than ending the process.
        // SAFETY: `kill` and `getpid` have no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGINT) }, 0);
        assert!(
            ctx.wait_timeout(PATIENCE).is_some(),
            "no signal within {PATIENCE:?}"
        );
        let cause = ctx.cause().unwrap();
        assert_eq!(
            cause
                .downcast_ref::<SignalReceived>()
                .map(SignalReceived::name),
            Some("SIGINT")
        );
    }

    /// Fault injection: run once by the next `claim`, after it released the registry lock and
    /// before it lets go of the done nodes it upgraded (the window where another thread's
    /// last reference may go).
    pub(super) static AFTER_THE_LOCK: Mutex<Option<Hook>> = Mutex::new(None);

    /// Regression test (found by the core audit): a signal nobody claims is sent again, for
    /// the default handling (the process ends), but it was sent with `raise`, to the
    /// dispatcher's own thread, which has the signal mask of the thread that first called
    /// `with_signals`. Where that thread blocked the signal, it stayed pending there and the
    /// process went on, deaf to it. It is now sent to the process (`kill`), which a thread that
    /// does not block it takes. Run in a process of its own, which the signal must end.
    #[test]
    fn an_unclaimed_signal_ends_the_process_though_the_dispatcher_blocks_it() {
        const NAME: &str = "bridge::signal::tests::\
            an_unclaimed_signal_ends_the_process_though_the_dispatcher_blocks_it";
        if std::env::var_os(CHILD).is_none() {
            use std::os::unix::process::ExitStatusExt;
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // The child ends by itself either way: by the signal, or by failing after 10 s.
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGINT),
                "the child was not ended by SIGINT ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        // The child, started from the default handling (the runner may ignore SIGINT).
        // SAFETY: `signal` has no memory-safety preconditions; SIG_DFL is always valid.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
        // A thread that takes the signal sent to the process: started before this one blocks
        // it, it keeps the mask it was born with.
        std::thread::spawn(|| loop {
            std::thread::park();
        });
        // SAFETY: `sigemptyset` initialises the zeroed set; every pointer is valid for its call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            let blocked = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            assert_eq!(blocked, 0);
        }
        // The dispatcher starts here, with SIGINT blocked, as in this thread.
        let (ctx, handle) = Context::background().with_signals().unwrap();
        // A context done but still registered (a waker woken before its guard blocks the
        // canceller), so the signal finds nobody to cancel: the unclaimed path.
        let held = hold_up(&ctx);
        std::thread::spawn(move || handle.cancel());
        held.woken
            .recv_timeout(PATIENCE)
            .expect("the waker was woken");
        // SAFETY: `kill` and `getpid` have no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGINT) }, 0);
        // The signal ends this process; a never-done context bounds the wait for it.
        let (never, _keep) = Context::background().with_cancel();
        assert!(never.wait_timeout(Duration::from_secs(10)).is_none());
        panic!("an unclaimed SIGINT did not end the process");
    }

    /// Regression test (found by the core audit): the registry kept the room of its largest
    /// burst of live `with_signals` contexts for good (as the token bridge's map did,
    /// RELIABILITY.md 17); it now gives it back as they end.
    #[test]
    fn a_burst_of_signal_contexts_gives_the_registry_memory_back() {
        let _serial = serial();
        let burst: Vec<_> = (0..10_000)
            .map(|_| Context::background().with_signals().unwrap())
            .collect();
        assert!(super::registry().entries.capacity() >= 10_000);
        drop(burst); // each handle's drop cancels its context, whose guard unregisters it
        let room = super::registry().entries.capacity();
        assert!(room <= 64, "the registry kept room for {room} entries");
    }

    /// A value whose drop says so, then blocks until told to go on (bounded).
    struct SlowDrop {
        dropping: Mutex<mpsc::Sender<()>>,
        go_on: Mutex<mpsc::Receiver<()>>,
    }

    impl Drop for SlowDrop {
        fn drop(&mut self) {
            let _ = self.dropping.get_mut().unwrap().send(());
            let _ = self.go_on.get_mut().unwrap().recv_timeout(PATIENCE);
        }
    }

    /// Regression test (found by an audit): a signal's claim upgrades the registrations of
    /// contexts that are done (their `Unregister` guard not run yet: a waker woken before it
    /// blocks) and let go of them on the dispatcher's thread. When the program dropped its
    /// own references meanwhile, that was the last one, and the context's values (user
    /// values) were dropped there: a slow drop held up every later signal (invariant 5).
    #[test]
    fn a_claim_lets_go_of_done_contexts_off_its_thread() {
        let _serial = serial();
        let (dropping_tx, dropping) = mpsc::channel();
        let (drop_go_on, drop_go_on_rx) = mpsc::channel();
        let parent = Context::background().with_value(SlowDrop {
            dropping: Mutex::new(dropping_tx),
            go_on: Mutex::new(drop_go_on_rx),
        });
        let (ctx, handle) = parent.with_signals().unwrap();
        drop(parent);
        // Woken before the guard. `done` is kept until the cancellation took the waker
        // (dropping it unregisters the waker).
        let HeldUp {
            woken,
            go_on: wake_go_on,
            done,
        } = hold_up(&ctx);
        // The canceller blocks in the waker: the context is done, its registration still in.
        let canceller = std::thread::spawn(move || {
            handle.cancel();
            drop(handle);
        });
        woken.recv_timeout(PATIENCE).expect("the waker was woken");
        drop((done, ctx));
        // Once the claim holds its own reference, the canceller finishes and lets go of its
        // one: the claim's is the last.
        *AFTER_THE_LOCK.lock().unwrap() = Some(Box::new(move || {
            wake_go_on.send(()).unwrap();
            canceller.join().unwrap();
        }));
        let (claimed_tx, claimed) = mpsc::channel();
        std::thread::Builder::new()
            .name("context-signal".into())
            .spawn(move || {
                let _ = super::claim(libc::SIGINT);
                let _ = claimed_tx.send(());
            })
            .unwrap();
        let returned = claimed.recv_timeout(Duration::from_secs(10));
        dropping
            .recv_timeout(PATIENCE)
            .expect("the value was dropped");
        drop_go_on.send(()).unwrap();
        assert!(
            returned.is_ok(),
            "the claim waited for a slow drop of a context's value on its thread"
        );
    }
}
