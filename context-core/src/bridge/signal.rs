//! Feature `signal` (Unix): Go's `signal.NotifyContext`, as [`Context::with_signals`].
//!
//! A signal handler may do almost nothing (POSIX lists the few async-signal-safe calls), so
//! ours only writes the signal's number, one byte, to a socket pair (the self-pipe trick).
//! One process-wide thread, `context-signal`, started by the first `with_signals`, reads those
//! bytes and cancels the registered contexts, outside the handler. That is one thread per
//! process, as the deadline timer is, never one per context.
//!
//! Our handler is installed for SIGINT and SIGTERM while at least one registration is live,
//! and the disposition that was there before (usually the default, which ends the process) is
//! put back when the last one goes, so a second Ctrl-C ends the process. A registration goes
//! when its context is done, whatever made it done: the signal, its handle, its parent.
//!
//! # Invariants
//!
//! 1. `installed` is `Some` exactly when `entries` is non-empty: our handler is installed
//!    for both signals while some context waits for them. Both change together, under the
//!    registry lock.
//! 2. The registry lock is a leaf: nobody takes a node lock, cancels a context or wakes
//!    anything while holding it.
//! 3. An entry is removed once: by the [`Unregister`] guard registered on its context (when the
//!    context is done, its waiters are taken and dropped) or, earlier, by the dispatcher, which
//!    finds the context done. Removal of a missing id is a no-op.
//! 4. A signal that finds no live registration (the dispatcher raced with the last
//!    unregistration, or a second signal arrived right after the first) is raised again if the
//!    restored disposition is the default, so it still ends the process; any other
//!    disposition (ignored, another library's handler) is left to its owner.
//! 5. `WRITE_FD` is set once, before any handler is installed, to a socket that is never
//!    closed: the handler may use it at any time.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::panic::Location;
use std::sync::atomic::{AtomicI32, Ordering as AtomicOrdering};
use std::sync::{Mutex as StdMutex, OnceLock, Weak};
use std::task::Waker;

use crate::handle::CancelHandle;
use crate::sync::Arc;
use crate::trace::Origin;
use crate::tree::Node;
use crate::tree::Waiter;
use crate::Context;

/// The signals [`Context::with_signals`] listens to.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The [`Cause`](crate::Cause) of a context made by [`Context::with_signals`] when a signal
/// arrived; find it with `cause().downcast_ref::<SignalReceived>()`. It names the signal; its
/// location is the `with_signals` call.
///
/// ```no_run
/// use go_context::{Context, SignalReceived};
///
/// let (ctx, _stop) = Context::background().with_signals().unwrap();
/// ctx.wait(); // until Ctrl-C
/// let cause = ctx.cause().unwrap();
/// let signal = cause.downcast_ref::<SignalReceived>().unwrap();
/// assert_eq!(signal.name(), "SIGINT");
/// assert_eq!(cause.to_string(), "received SIGINT");
/// ```
#[cfg_attr(docsrs, doc(cfg(all(feature = "signal", unix))))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalReceived {
    signal: libc::c_int,
}

impl SignalReceived {
    /// The signal's number (`libc::SIGINT`, `libc::SIGTERM`).
    ///
    /// ```no_run
    /// # use go_context::{Context, SignalReceived};
    /// let (ctx, _stop) = Context::background().with_signals().unwrap();
    /// ctx.wait();
    /// let number = ctx.cause().unwrap().downcast_ref::<SignalReceived>().unwrap().number();
    /// assert!(number == 2 || number == 15); // SIGINT or SIGTERM
    /// ```
    pub fn number(&self) -> i32 {
        self.signal
    }

    /// The signal's name: `SIGINT` or `SIGTERM`.
    ///
    /// ```no_run
    /// # use go_context::{Context, SignalReceived};
    /// let (ctx, _stop) = Context::background().with_signals().unwrap();
    /// ctx.wait();
    /// let name = ctx.cause().unwrap().downcast_ref::<SignalReceived>().unwrap().name();
    /// assert!(name == "SIGINT" || name == "SIGTERM");
    /// ```
    pub fn name(&self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "signal",
        }
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
    /// The dispositions our handler replaced, one per [`SIGNALS`] (invariant 1).
    installed: Option<[libc::sigaction; 2]>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<StdMutex<Registry>> = OnceLock::new();
    // No user code runs under this lock (invariant 2): poison can only be a bug here.
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The write end of the self-pipe, for the handler; -1 until the dispatcher runs (invariant 5).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Starts the dispatcher thread and its socket pair, once per process.
fn dispatcher() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        let start = || -> io::Result<()> {
            let (mut reader, writer) = UnixStream::pair()?;
            // The handler must never block: a full buffer just drops the byte (a signal is
            // already pending then, which is all the dispatcher needs to know).
            writer.set_nonblocking(true)?;
            std::thread::Builder::new()
                .name("context-signal".into())
                .spawn(move || {
                    let mut buf = [0u8; 64];
                    loop {
                        match reader.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => buf[..n].iter().for_each(|&s| dispatch(s.into())),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return,
                        }
                    }
                })?;
            // Never closed: the handler may write to it at any time (invariant 5).
            WRITE_FD.store(writer.into_raw_fd(), AtomicOrdering::Release);
            Ok(())
        };
        start().map_err(|e| e.kind())
    });
    started.map_err(|kind| {
        io::Error::new(
            kind,
            "go-context: cannot start the signal dispatcher thread",
        )
    })
}

/// The signal handler: async-signal-safe calls only (`write`, and `errno` kept intact).
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = WRITE_FD.load(AtomicOrdering::Acquire);
    if fd < 0 {
        return;
    }
    let saved = errno::get();
    let byte = signal as u8;
    // SAFETY: `fd` is a socket that stays open for the life of the process (invariant 5), and
    // `byte` is a valid one-byte buffer for the duration of the call. `write` is
    // async-signal-safe.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    errno::set(saved);
}

/// `errno`, which a handler must leave as it found it.
mod errno {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns the calling thread's `errno` slot; no preconditions.
        unsafe { libc::__errno_location() }
    }

    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns the calling thread's `errno` slot; no preconditions.
        unsafe { libc::__error() }
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    ))]
    pub(super) fn get() -> libc::c_int {
        // SAFETY: the slot is valid and thread-local for the calling thread.
        unsafe { *location() }
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    ))]
    pub(super) fn set(value: libc::c_int) {
        // SAFETY: as in `get`.
        unsafe { *location() = value }
    }

    // Elsewhere `errno` is left as `write` set it (only on failure: a full socket buffer).
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )))]
    pub(super) fn get() -> libc::c_int {
        0
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )))]
    pub(super) fn set(_: libc::c_int) {}
}

/// Installs our handler for every signal of [`SIGNALS`], returning what it replaced.
fn install() -> io::Result<[libc::sigaction; 2]> {
    // SAFETY: an all-zero `sigaction` is a valid value (no handler, no flags, empty mask).
    let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
    ours.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    ours.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid, writable `sigset_t`.
    unsafe { libc::sigemptyset(&mut ours.sa_mask) };
    // SAFETY: as above, zeroed `sigaction`s are valid out-parameters.
    let mut old: [libc::sigaction; 2] = unsafe { std::mem::zeroed() };
    for (i, &signal) in SIGNALS.iter().enumerate() {
        // SAFETY: both pointers are valid for the call; `on_signal` is async-signal-safe.
        if unsafe { libc::sigaction(signal, &ours, &mut old[i]) } != 0 {
            let err = io::Error::last_os_error();
            restore(&old[..i]);
            return Err(err);
        }
    }
    Ok(old)
}

/// Puts back the dispositions `old` (one per signal of [`SIGNALS`], in order), for each
/// signal whose handler is still ours: one installed later by someone else is theirs to keep.
fn restore(old: &[libc::sigaction]) {
    for (&signal, old) in SIGNALS.iter().zip(old) {
        if current_handler(signal) == Some(on_signal as extern "C" fn(libc::c_int) as usize) {
            // SAFETY: `old` is a disposition the kernel gave us for this very signal.
            unsafe { libc::sigaction(signal, old, std::ptr::null_mut()) };
        }
    }
}

/// The handler address (or `SIG_DFL`/`SIG_IGN`) currently installed for `signal`.
fn current_handler(signal: libc::c_int) -> Option<usize> {
    // SAFETY: a zeroed `sigaction` is a valid out-parameter; a null `act` only queries.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut cur) };
    (rc == 0).then_some(cur.sa_sigaction)
}

/// Removes entry `id` if it is still there (invariant 3); uninstalls the handler with the
/// last one (invariant 1).
fn unregister(id: u64) {
    let mut reg = registry();
    let removed = reg.entries.remove(&id);
    if reg.entries.is_empty() {
        if let Some(old) = reg.installed.take() {
            restore(&old);
        }
    }
    drop(reg);
    drop(removed);
}

/// Runs on the dispatcher thread for each signal that arrived.
fn dispatch(signal: libc::c_int) {
    let (live, raise_again) = {
        let mut reg = registry();
        let mut live = Vec::new();
        let mut done = Vec::new();
        for (&id, entry) in &reg.entries {
            match entry.node.upgrade() {
                Some(node) if node.err().is_none() => live.push((node, entry.location)),
                _ => done.push(id),
            }
        }
        for id in done {
            reg.entries.remove(&id);
        }
        if reg.entries.is_empty() {
            if let Some(old) = reg.installed.take() {
                restore(&old);
            }
        }
        // Invariant 4: nobody was waiting for this one; let it do what it does by default.
        let raise_again = live.is_empty() && current_handler(signal) == Some(libc::SIG_DFL);
        (live, raise_again)
    };
    // Invariant 2: cancel with the registry lock released (cancellation runs the
    // `Unregister` guards, which take it).
    for (node, location) in live {
        super::cancel(
            &node,
            Origin::Signal,
            Box::new(SignalReceived { signal }),
            location,
        );
    }
    if raise_again {
        // SAFETY: `raise` has no memory-safety preconditions.
        unsafe { libc::raise(signal) };
    }
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
    /// that is cancelled when the process receives SIGINT (Ctrl-C) or SIGTERM, with the cause
    /// [`SignalReceived`] naming the signal (located at this call).
    ///
    /// While such a context is live, the two signals no longer end the process: they cancel the
    /// context instead. Once it is done (the signal came, its handle was used or dropped, or
    /// its parent was cancelled) the signals' previous handling (usually the default) is back,
    /// so a **second Ctrl-C ends the process**, even while the program is still draining. (In
    /// Go, the signals stay caught until `stop()` is called.) Several such contexts may be live
    /// at once; a signal cancels them all, and the previous handling returns with the last.
    ///
    /// The handler only writes a byte to a socket; one process-wide thread, started by the
    /// first call, cancels the contexts. It needs no async runtime. Another library's handler
    /// installed while ours is live is left in place. Unix only.
    ///
    /// # Errors
    ///
    /// The error of the OS if the socket pair, the thread or the handler cannot be set up.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use go_context::{Context, SignalReceived};
    /// use std::time::Duration;
    ///
    /// fn main() -> std::io::Result<()> {
    ///     let (ctx, _stop) = Context::background().with_signals()?;
    ///     while ctx.sleep(Duration::from_millis(100)).is_ok() {
    ///         // ... serve ...
    ///     }
    ///     let cause = ctx.cause().unwrap();
    ///     eprintln!("shutting down: {cause}"); // "received SIGINT"
    ///     assert!(cause.downcast_ref::<SignalReceived>().is_some());
    ///     Ok(())
    /// }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(all(feature = "signal", unix))))]
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
                reg.installed = Some(install()?);
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
