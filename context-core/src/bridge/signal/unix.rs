//! The Unix part of the `signal` feature: SIGINT and SIGTERM, through a signal handler and the
//! self-pipe trick.
//!
//! A signal handler may do almost nothing (POSIX lists the few async-signal-safe calls), so
//! ours only writes the signal's number, one byte, to a socket pair. The dispatcher thread,
//! `context-signal`, reads those bytes and hands each to the shared [`claim`], outside the
//! handler.
//!
//! Our handler is installed for both signals while at least one registration is live (shared
//! invariant 1), and the disposition that was there before (usually the default, which ends
//! the process) is put back with the last one, for each signal whose handler is still ours.
//!
//! # Invariants
//!
//! 1. `WRITE_FD` is set once, before any handler is installed, to a socket that is never
//!    closed: the handler may use it at any time. (Its `Release` store pairs with the
//!    handler's `Acquire` load.)
//! 2. The handler makes async-signal-safe calls only (`getpid`, `write`, and in a fork
//!    `sigaction` and `raise`), and leaves `errno` as it found it.
//! 3. The socket and the dispatcher belong to the process that started them, `OWNER` (stored
//!    before `WRITE_FD`, so the handler's `Acquire` load of `WRITE_FD` sees it). A process
//!    forked from it without exec inherits our handler and the socket but not the thread: its
//!    handler must not write there (the byte would reach the parent's dispatcher and cancel
//!    the parent's contexts, and the fork's own signal would be swallowed). There the handler
//!    puts back the disposition ours replaced (`PREVIOUS`: its handler and flags, stored
//!    `Relaxed` before ours goes in; the `sigaction` that installs ours orders them for any
//!    later fork) and raises the signal again, so the fork gets the handling it would have had
//!    without us.

use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering as AtomicOrdering};

use super::{claim, Claim};

/// The signals [`Context::with_signals`](crate::Context::with_signals) listens to.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The dispositions our handler replaced, one per [`SIGNALS`].
pub(super) type Saved = [libc::sigaction; 2];

pub(super) fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// The write end of the self-pipe, for the handler; -1 until the dispatcher runs (invariant 1).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// The process whose dispatcher reads the socket (invariant 3); 0 until it runs.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// The disposition our handler replaced, for each of [`SIGNALS`]: its handler (or `SIG_DFL`,
/// `SIG_IGN`) and its flags, for a fork's handler to put back (invariant 3).
static PREVIOUS: [(AtomicUsize, AtomicI32); 2] = [
    (AtomicUsize::new(libc::SIG_DFL), AtomicI32::new(0)),
    (AtomicUsize::new(libc::SIG_DFL), AtomicI32::new(0)),
];

/// Starts the dispatcher thread and its socket pair (once per process: the shared
/// `dispatcher()` calls it until it succeeds). A failure leaves nothing behind: the socket
/// pair is dropped, and `WRITE_FD` is set only once the thread runs.
pub(super) fn start() -> io::Result<()> {
    let (mut reader, writer) = UnixStream::pair()?;
    // The handler must never block: a full buffer just drops the byte (a signal is
    // already pending then, which is all the dispatcher needs to know).
    writer.set_nonblocking(true)?;
    #[cfg(test)]
    if super::tests::REFUSE_THE_DISPATCHER.load(AtomicOrdering::SeqCst) {
        return Err(io::ErrorKind::WouldBlock.into());
    }
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
    // SAFETY: `getpid` has no preconditions.
    OWNER.store(unsafe { libc::getpid() }, AtomicOrdering::Relaxed);
    // Never closed: the handler may write to it at any time (invariant 1).
    WRITE_FD.store(writer.into_raw_fd(), AtomicOrdering::Release);
    Ok(())
}

/// Runs on the dispatcher thread for each signal that arrived.
fn dispatch(signal: libc::c_int) {
    match claim(signal) {
        Claim::Cancel(claimed) => claimed.cancel(),
        // Shared invariant 4: nobody was waiting for this one; let it do what it does by
        // default (end the process).
        Claim::Nobody { default: true } => {
            // To the process, not with `raise` to this thread: it has the signal mask of the
            // thread that first called `with_signals`, which may block the signal, and there it
            // would stay pending while the process went on.
            // SAFETY: `kill` and `getpid` have no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), signal) };
        }
        Claim::Nobody { default: false } => {}
    }
}

/// The signal handler: async-signal-safe calls only (`getpid`, `write`, in a fork those of
/// [`in_a_fork`]; `errno` kept intact).
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = WRITE_FD.load(AtomicOrdering::Acquire);
    if fd < 0 {
        return;
    }
    let saved = errno::get();
    // SAFETY: `getpid` is async-signal-safe and has no preconditions.
    if unsafe { libc::getpid() } != OWNER.load(AtomicOrdering::Relaxed) {
        in_a_fork(signal);
        errno::set(saved);
        return;
    }
    let byte = signal as u8;
    // SAFETY: `fd` is a socket that stays open for the life of the process (invariant 1), and
    // `byte` is a valid one-byte buffer for the duration of the call. `write` is
    // async-signal-safe.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    errno::set(saved);
}

/// Our handler in a process forked without exec (invariant 3): the disposition from before
/// ours comes back (with an empty mask: the one it had is not kept), and the signal is raised
/// again, to be handled by it once this handler returns (the signal is blocked until then).
fn in_a_fork(signal: libc::c_int) {
    let Some(i) = SIGNALS.iter().position(|&s| s == signal) else {
        return;
    };
    let (handler, flags) = &PREVIOUS[i];
    // SAFETY: an all-zero `sigaction` is a valid value (no handler, no flags, empty mask).
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    previous.sa_sigaction = handler.load(AtomicOrdering::Relaxed);
    previous.sa_flags = flags.load(AtomicOrdering::Relaxed);
    // SAFETY: `sigemptyset`, `sigaction` and `raise` are async-signal-safe; the pointers are
    // valid for each call; the handler and flags are ones the kernel gave us for `signal`.
    unsafe {
        libc::sigemptyset(&mut previous.sa_mask);
        if libc::sigaction(signal, &previous, std::ptr::null_mut()) == 0
            && previous.sa_sigaction != libc::SIG_IGN
        {
            libc::raise(signal);
        }
    }
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
pub(super) fn install() -> io::Result<Saved> {
    // SAFETY: an all-zero `sigaction` is a valid value (no handler, no flags, empty mask).
    let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
    ours.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    ours.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid, writable `sigset_t`.
    unsafe { libc::sigemptyset(&mut ours.sa_mask) };
    // SAFETY: as above, zeroed `sigaction`s are valid out-parameters.
    let mut old: Saved = unsafe { std::mem::zeroed() };
    for (i, &signal) in SIGNALS.iter().enumerate() {
        // For a fork's handler (invariant 3): what ours is about to replace.
        if let Some((handler, flags)) = current(signal) {
            PREVIOUS[i].0.store(handler, AtomicOrdering::Relaxed);
            PREVIOUS[i].1.store(flags, AtomicOrdering::Relaxed);
        }
        // SAFETY: both pointers are valid for the call; `on_signal` is async-signal-safe.
        if unsafe { libc::sigaction(signal, &ours, &mut old[i]) } != 0 {
            let err = io::Error::last_os_error();
            restore_some(&old[..i]);
            return Err(err);
        }
    }
    Ok(old)
}

/// Puts back the dispositions `old` (one per signal of [`SIGNALS`]).
pub(super) fn restore(old: &Saved) {
    restore_some(old);
}

/// Puts back the dispositions `old` (one per signal of [`SIGNALS`], in order), for each
/// signal whose handler is still ours: one installed later by someone else is theirs to keep.
fn restore_some(old: &[libc::sigaction]) {
    for (&signal, old) in SIGNALS.iter().zip(old) {
        if current_handler(signal) == Some(on_signal as extern "C" fn(libc::c_int) as usize) {
            // SAFETY: `old` is a disposition the kernel gave us for this very signal.
            unsafe { libc::sigaction(signal, old, std::ptr::null_mut()) };
        }
    }
}

/// Whether `signal`'s disposition is the default (which, for ours, ends the process).
pub(super) fn is_default(signal: i32) -> bool {
    current_handler(signal) == Some(libc::SIG_DFL)
}

/// The handler address (or `SIG_DFL`/`SIG_IGN`) currently installed for `signal`.
fn current_handler(signal: libc::c_int) -> Option<usize> {
    current(signal).map(|(handler, _)| handler)
}

/// The handler address (or `SIG_DFL`/`SIG_IGN`) and the flags currently installed for `signal`.
fn current(signal: libc::c_int) -> Option<(usize, libc::c_int)> {
    // SAFETY: a zeroed `sigaction` is a valid out-parameter; a null `act` only queries.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut cur) };
    (rc == 0).then_some((cur.sa_sigaction, cur.sa_flags))
}
