//! Feature `signal` (Unix): `ctx.with_signals()`, Go's `signal.NotifyContext`.
//!
//! Each scenario runs in a child process (this test binary, re-run with `--ignored --exact
//! <scenario>` and an env var), because it sends SIGINT/SIGTERM to its own process and, on
//! purpose, dies of the second one. The parent checks what the child printed and which signal
//! ended it. Each child is bounded in time: it exits by itself if a signal fails to end it.
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;

use go_context::{Context, Error, SignalReceived};

#[path = "support/child.rs"]
mod child;
use child::{check_printed, child_command, is_child, outlive_the_signal};

/// Runs scenario `name` of this binary in a child process and returns what it did.
fn run_child(name: &str) -> Output {
    child_command(name).output().unwrap()
}

/// Whether this is the child process; if so, starts it from the default dispositions (the
/// test runner may have been started with SIGINT ignored, as shells do for `cmd &`).
fn in_child() -> bool {
    if !is_child() {
        return false;
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `signal` has no memory-safety preconditions; SIG_DFL is always valid.
        let previous = unsafe { libc::signal(signal, libc::SIG_DFL) };
        assert_ne!(previous, libc::SIG_ERR);
    }
    true
}

fn send_to_self(signal: libc::c_int) {
    // SAFETY: `kill` and `getpid` have no memory-safety preconditions.
    let rc = unsafe { libc::kill(libc::getpid(), signal) };
    assert_eq!(rc, 0);
}

fn disposition(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a zeroed `sigaction` is a valid out-parameter; a null `act` only queries.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut cur) };
    assert_eq!(rc, 0);
    cur.sa_sigaction
}

/// Prints `what` for the parent, sends `signal` to this process, which must end it.
fn say_then_die_of(what: &str, signal: libc::c_int) -> ! {
    println!("{what}");
    send_to_self(signal);
    outlive_the_signal()
}

/// A context made now is still cancelled by its signal (the dispatcher lives and reads), then
/// the child prints `LATER CANCELLED` and dies of SIGTERM.
fn a_later_signal_still_cancels_then_die() -> ! {
    let (later, _stop) = Context::background().with_signals().unwrap();
    send_to_self(libc::SIGINT);
    assert_eq!(
        later.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled),
        "the dispatcher still reads signals"
    );
    say_then_die_of("LATER CANCELLED", libc::SIGTERM);
}

fn check(out: &Output, printed: &str, killed_by: libc::c_int) {
    let (stdout, stderr) = check_printed(out, printed);
    assert_eq!(
        out.status.signal(),
        Some(killed_by),
        "status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

// ===== scenario: Ctrl-C cancels; a second Ctrl-C ends the process =====

#[test]
#[ignore = "a child process of `sigint_cancels_and_a_second_sigint_ends_the_process`"]
fn child_sigint_then_sigint() {
    if !in_child() {
        return;
    }
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
    let (parent, _keep) = Context::background().with_cancel();
    let line = line!() + 1;
    let (ctx, _stop) = parent.with_signals().unwrap();
    let (grandchild, _c) = ctx.with_cancel();
    assert_ne!(
        disposition(libc::SIGINT),
        libc::SIG_DFL,
        "our handler is in"
    );

    send_to_self(libc::SIGINT);
    // Bounded: the dispatcher thread cancels at once.
    assert_eq!(
        grandchild.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled)
    );
    assert!(!parent.is_done(), "only the child is cancelled");
    let cause = grandchild.cause().unwrap();
    let signal = cause.downcast_ref::<SignalReceived>().unwrap();
    assert_eq!(signal.name(), "SIGINT");
    assert_eq!(signal.number(), libc::SIGINT);
    assert_eq!(cause.location().line(), line);
    // The handle (`_stop`) is still held: the second Ctrl-C ends the process anyway.
    say_then_die_of(&format!("CANCELLED: {cause}"), libc::SIGINT);
}

#[test]
fn sigint_cancels_and_a_second_sigint_ends_the_process() {
    let out = run_child("child_sigint_then_sigint");
    check(&out, "CANCELLED: received SIGINT", libc::SIGINT);
}

// ===== scenario: dropping the handle restores the default at once =====

#[test]
#[ignore = "a child process of `dropping_the_handle_restores_the_default_handling`"]
fn child_drop_then_sigterm() {
    if !in_child() {
        return;
    }
    let (ctx, stop) = Context::background().with_signals().unwrap();
    let (other, other_stop) = Context::background().with_signals().unwrap();
    drop(other_stop);
    assert!(other.is_done());
    assert_ne!(
        disposition(libc::SIGTERM),
        libc::SIG_DFL,
        "still caught while one such context lives"
    );
    drop(stop);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx
        .cause()
        .unwrap()
        .downcast_ref::<SignalReceived>()
        .is_none());
    // Synchronously: the default is back when the drop returns.
    assert_eq!(disposition(libc::SIGTERM), libc::SIG_DFL);
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
    say_then_die_of("RESTORED", libc::SIGTERM);
}

#[test]
fn dropping_the_handle_restores_the_default_handling() {
    let out = run_child("child_drop_then_sigterm");
    check(&out, "RESTORED", libc::SIGTERM);
}

// ===== scenario: SIGTERM reaches every live context; a prior disposition comes back =====

extern "C" fn count_usr(_: libc::c_int) {}

#[test]
#[ignore = "a child process of `sigterm_cancels_every_live_context_and_the_old_handler_returns`"]
fn child_sigterm_many() {
    if !in_child() {
        return;
    }
    // A handler of the program's own, installed before ours: it must come back after.
    // SAFETY: zeroed `sigaction`s are valid; `count_usr` does nothing, so it is
    // async-signal-safe.
    unsafe {
        let mut mine: libc::sigaction = std::mem::zeroed();
        mine.sa_sigaction = count_usr as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(
            libc::sigaction(libc::SIGINT, &mine, std::ptr::null_mut()),
            0
        );
    }
    let mine = count_usr as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let contexts: Vec<_> = (0..3)
        .map(|_| Context::background().with_signals().unwrap())
        .collect();
    send_to_self(libc::SIGTERM);
    for (ctx, _) in &contexts {
        assert_eq!(
            ctx.wait_timeout(Duration::from_secs(30)),
            Some(Error::Canceled)
        );
        let cause = ctx.cause().unwrap();
        assert_eq!(
            cause.downcast_ref::<SignalReceived>().unwrap().name(),
            "SIGTERM"
        );
    }
    // The contexts are done: their registrations are gone, and with the last, our handler.
    // (The dispatcher removes them after waking the waiters: wait for that, bounded.)
    let start = std::time::Instant::now();
    while disposition(libc::SIGINT) != mine {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "handler not restored"
        );
        std::thread::yield_now();
    }
    assert_eq!(disposition(libc::SIGTERM), libc::SIG_DFL);
    say_then_die_of("ALL CANCELLED", libc::SIGTERM);
}

#[test]
fn sigterm_cancels_every_live_context_and_the_old_handler_returns() {
    let out = run_child("child_sigterm_many");
    check(&out, "ALL CANCELLED", libc::SIGTERM);
}

// ===== scenario: a panicking waker neither stops the claim nor the dispatcher =====

struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("deliberate panic: a waker on a with_signals context");
    }
}

/// Regression test (found by an audit): the dispatcher thread used to die of a waker's panic
/// re-raised by the cancellation it ran; the rest of that signal's contexts were never
/// cancelled, and every later signal was caught and read by nobody.
#[test]
#[ignore = "a child process of `a_panicking_waker_stops_neither_the_claim_nor_later_signals`"]
fn child_panicking_waker() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Waker};
    if !in_child() {
        return;
    }
    let bad = Waker::from(std::sync::Arc::new(PanickingWaker));
    let contexts: Vec<_> = (0..3)
        .map(|_| {
            let (ctx, stop) = Context::background().with_signals().unwrap();
            let mut done = Box::pin(ctx.done());
            assert!(done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&bad))
                .is_pending());
            (ctx, stop, done)
        })
        .collect();
    send_to_self(libc::SIGINT);
    for (ctx, _, _) in &contexts {
        assert_eq!(
            ctx.wait_timeout(Duration::from_secs(30)),
            Some(Error::Canceled),
            "every context of the claim is cancelled"
        );
    }
    a_later_signal_still_cancels_then_die()
}

#[test]
fn a_panicking_waker_stops_neither_the_claim_nor_later_signals() {
    let out = run_child("child_panicking_waker");
    check(&out, "LATER CANCELLED", libc::SIGTERM);
}

/// A value whose `Drop` panics (deliberately; the child's output is not checked for it).
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("deliberate panic: a value's drop");
        }
    }
}

/// A waker that, when woken, drops what it holds (the program's references to the context,
/// and the `done()` future it was registered by), then says so.
struct DropsOnWake {
    #[allow(clippy::type_complexity)]
    held: std::sync::Mutex<
        Option<(
            Context,
            go_context::CancelHandle,
            std::pin::Pin<Box<go_context::Done>>,
        )>,
    >,
    done: std::sync::mpsc::Sender<()>,
}

impl std::task::Wake for DropsOnWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let held = self.held.lock().unwrap().take();
        drop(held);
        let _ = self.done.send(());
    }
}

/// Regression test: the dispatcher holds the contexts a signal claimed until it has cancelled
/// them. When the program drops its own references meanwhile (here a waker does, woken by that
/// very cancellation), the dispatcher's is the last, and a value's panicking `Drop` there
/// killed the dispatcher thread: every later signal was caught and read by nobody.
#[test]
#[ignore = "a child process of `a_panicking_drop_released_by_the_dispatcher_does_not_kill_it`"]
fn child_panicking_drop_on_dispatcher() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Waker};
    if !in_child() {
        return;
    }
    let base = Context::background().with_value(PanicOnDrop);
    let (ctx, stop) = base.with_signals().unwrap();
    drop(base);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut done = Box::pin(ctx.done());
    let waker = std::sync::Arc::new(DropsOnWake {
        held: std::sync::Mutex::new(None),
        done: tx,
    });
    assert!(done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&Waker::from(
            std::sync::Arc::clone(&waker)
        )))
        .is_pending());
    drop(done);
    // Registered again, now holding the only other references.
    let mut done = Box::pin(ctx.done());
    assert!(done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&Waker::from(
            std::sync::Arc::clone(&waker)
        )))
        .is_pending());
    *waker.held.lock().unwrap() = Some((ctx, stop, done));
    drop(waker);
    send_to_self(libc::SIGINT);
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the signal cancelled the context");
    a_later_signal_still_cancels_then_die()
}

#[test]
fn a_panicking_drop_released_by_the_dispatcher_does_not_kill_it() {
    let out = run_child("child_panicking_drop_on_dispatcher");
    check(&out, "LATER CANCELLED", libc::SIGTERM);
}

/// A waker that blocks until the test lets it go (bounded: a minute).
struct BlockingWaker {
    woken: std::sync::mpsc::SyncSender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl std::task::Wake for BlockingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let _ = self.woken.send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60));
    }
}

/// Regression test: the dispatcher ran each claim's cancellation itself, so a waker that
/// blocks (user code) kept it from every later signal: a context made after that was never
/// cancelled by its signal, which nobody read (and the process did not end either).
#[test]
#[ignore = "a child process of `a_blocking_waker_does_not_delay_later_signals`"]
fn child_blocking_waker() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Waker};
    if !in_child() {
        return;
    }
    let (woken_tx, woken_rx) = std::sync::mpsc::sync_channel(1);
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let waker = Waker::from(std::sync::Arc::new(BlockingWaker {
        woken: woken_tx,
        release: std::sync::Mutex::new(release_rx),
    }));
    let (stuck, _stop) = Context::background().with_signals().unwrap();
    let mut done = Box::pin(stuck.done());
    assert!(done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&waker))
        .is_pending());
    send_to_self(libc::SIGINT);
    woken_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the signal woke the waker");
    // That waker now blocks. A context made meanwhile still gets its signal.
    let (later, _stop) = Context::background().with_signals().unwrap();
    send_to_self(libc::SIGINT);
    let got = later.wait_timeout(Duration::from_secs(20));
    let _ = release_tx.send(());
    assert_eq!(
        got,
        Some(Error::Canceled),
        "a blocked waker delayed a later signal"
    );
    assert_eq!(stuck.err(), Some(Error::Canceled));
    say_then_die_of("LATER CANCELLED", libc::SIGTERM);
}

#[test]
fn a_blocking_waker_does_not_delay_later_signals() {
    let out = run_child("child_blocking_waker");
    check(&out, "LATER CANCELLED", libc::SIGTERM);
}

#[test]
fn a_child_of_a_done_context_is_born_done_and_installs_nothing() {
    let before = disposition(libc::SIGINT);
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("already over");
    let (ctx, _stop) = parent.with_signals().unwrap();
    assert_eq!(ctx.cause().unwrap().to_string(), "already over");
    assert_eq!(disposition(libc::SIGINT), before);
}

// ===== scenario: a fork's signal reaches neither the parent's contexts nor is swallowed =====

/// Regression test (found by an audit): a process forked without exec inherited our handler
/// and the dispatcher's socket, but not the dispatcher thread. A SIGTERM sent to the fork was
/// written to the parent's socket: the fork lived on (its signal swallowed) and the parent's
/// contexts were cancelled by a signal the parent never got.
#[test]
#[ignore = "a child process of `a_forked_process_gets_its_own_signals_and_the_parent_is_untouched`"]
fn child_fork_then_sigterm_in_the_fork() {
    if !in_child() {
        return;
    }
    let (ctx, _stop) = Context::background().with_signals().unwrap();
    // SAFETY: the fork calls only async-signal-safe functions (`getpid`, `kill`, `_exit`)
    // before it ends, as a fork of a multithreaded process must.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGTERM);
            // Only reached if the SIGTERM was swallowed.
            libc::_exit(7);
        }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-parameter.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
        "the fork was not ended by its SIGTERM (wait status {status:#x})"
    );
    // The dispatcher reads its socket in order: had the fork's SIGTERM been written there, it
    // would be read, and would cancel `ctx`, before this SIGINT.
    send_to_self(libc::SIGINT);
    assert_eq!(
        ctx.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled)
    );
    let cause = ctx.cause().unwrap();
    let name = cause.downcast_ref::<SignalReceived>().unwrap().name();
    say_then_die_of(&format!("FORK ENDED, PARENT GOT {name}"), libc::SIGINT);
}

#[test]
fn a_forked_process_gets_its_own_signals_and_the_parent_is_untouched() {
    let out = run_child("child_fork_then_sigterm_in_the_fork");
    check(&out, "FORK ENDED, PARENT GOT SIGINT", libc::SIGINT);
}

// ===== scenario: a signal ignored at start is caught while a context lives, then ignored =====

#[test]
#[ignore = "a child process of `an_ignored_signal_is_caught_while_a_context_lives_then_ignored_again`"]
fn child_ignored_sigint() {
    if !in_child() {
        return;
    }
    // As a shell starts `cmd &`.
    // SAFETY: `signal` has no memory-safety preconditions; SIG_IGN is always valid.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR);
    let (ctx, stop) = Context::background().with_signals().unwrap();
    send_to_self(libc::SIGINT);
    assert_eq!(
        ctx.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled),
        "caught while the context lives, as Go's signal.Notify does"
    );
    drop(stop);
    let start = std::time::Instant::now();
    while disposition(libc::SIGINT) != libc::SIG_IGN {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "SIG_IGN not restored"
        );
        std::thread::yield_now();
    }
    // Ignored again: this one does nothing, the SIGTERM after it ends the process.
    send_to_self(libc::SIGINT);
    say_then_die_of("IGNORED AGAIN", libc::SIGTERM);
}

#[test]
fn an_ignored_signal_is_caught_while_a_context_lives_then_ignored_again() {
    let out = run_child("child_ignored_sigint");
    check(&out, "IGNORED AGAIN", libc::SIGTERM);
}
