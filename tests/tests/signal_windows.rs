//! Feature `signal` on Windows: `ctx.with_signals()` and the console's control events.
//!
//! As on Unix (tests/signal.rs), each scenario runs in a child process (this test binary,
//! re-run with `--ignored --exact <scenario>` and an env var), because it raises Ctrl-C or
//! Ctrl-Break in its own console and, on purpose, dies of the second one. The child gets a
//! console of its own (`CREATE_NEW_CONSOLE`), so the events it raises reach nobody else. The
//! parent checks what the child printed and its exit status: `STATUS_CONTROL_C_EXIT` is what
//! the default handler ends a process with. Each child is bounded in time: it exits by itself
//! if an event fails to end it.
//!
//! Under wine (CI runs these with wine64, `.ci/steps/60-windows.sh`), two things differ from
//! Windows, and only there do the checks allow for them: wine before 9 ends the process with
//! status 0 on Ctrl-C, and wine cannot raise Ctrl-Break (`GenerateConsoleCtrlEvent` fails), so
//! the one Ctrl-Break scenario runs on Windows only.
#![cfg(windows)]

use std::os::windows::process::CommandExt;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use go_context::{Context, Error, SignalReceived};
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, STATUS_CONTROL_C_EXIT, TRUE};
use windows_sys::Win32::System::Console::{
    AllocConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
use windows_sys::Win32::System::Threading::CREATE_NEW_CONSOLE;

#[path = "support/child.rs"]
mod child;
use child::{check_printed, child_command, is_child, outlive_the_signal};

/// Runs scenario `name` of this binary in a child process with its own console.
fn run_child(name: &str) -> Output {
    child_command(name)
        .creation_flags(CREATE_NEW_CONSOLE)
        .output()
        .unwrap()
}

/// Whether this is the child process; if so, lets Ctrl-C through (a process may have
/// inherited "ignore Ctrl-C", as one started in a new process group does).
fn in_child() -> bool {
    if !is_child() {
        return false;
    }
    // A console of its own, if `CREATE_NEW_CONSOLE` gave it none (wine without a display
    // does that); with one already, this fails, harmlessly.
    // SAFETY: no arguments.
    let _ = unsafe { AllocConsole() };
    // SAFETY: a null handler with FALSE only clears the process's "ignore Ctrl-C" flag.
    assert_ne!(unsafe { SetConsoleCtrlHandler(None, FALSE) }, FALSE);
    true
}

/// Raises `event` (CTRL_C_EVENT or CTRL_BREAK_EVENT) in this process's console: only this
/// process is attached to it.
fn send_to_self(event: u32) {
    // SAFETY: no pointers; group 0 is every process of our console.
    let ok = unsafe { GenerateConsoleCtrlEvent(event, 0) };
    assert_ne!(ok, FALSE, "{}", std::io::Error::last_os_error());
}

/// Prints `what` for the parent, raises `event`, which must end this process.
fn say_then_die_of(what: &str, event: u32) -> ! {
    println!("{what}");
    send_to_self(event);
    outlive_the_signal()
}

/// Whether this runs under wine (its ntdll exports `wine_get_version`).
fn under_wine() -> bool {
    // SAFETY: both names are NUL-terminated; a null result is checked.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

fn check(out: &Output, printed: &str) {
    let (stdout, stderr) = check_printed(out, printed);
    // Wine before 9 ends the process with 0 instead; the child never exits with 0 by itself
    // (`outlive_the_signal` exits with 3).
    let expected: &[i32] = if under_wine() {
        &[STATUS_CONTROL_C_EXIT, 0]
    } else {
        &[STATUS_CONTROL_C_EXIT]
    };
    assert!(
        out.status.code().is_some_and(|c| expected.contains(&c)),
        "status {:?}, not {expected:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

// ===== scenario: Ctrl-C cancels; a second Ctrl-C ends the process =====

#[test]
#[ignore = "a child process of `ctrl_c_cancels_and_a_second_ctrl_c_ends_the_process`"]
fn child_ctrl_c_then_ctrl_c() {
    if !in_child() {
        return;
    }
    let (parent, _keep) = Context::background().with_cancel();
    let line = line!() + 1;
    let (ctx, _stop) = parent.with_signals().unwrap();
    let (grandchild, _c) = ctx.with_cancel();

    send_to_self(CTRL_C_EVENT);
    // Bounded: the handler hands the context to the dispatcher thread at once.
    assert_eq!(
        grandchild.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled)
    );
    assert!(!parent.is_done(), "only the child is cancelled");
    let cause = grandchild.cause().unwrap();
    let signal = cause.downcast_ref::<SignalReceived>().unwrap();
    assert_eq!(signal.name(), "CTRL_C");
    assert_eq!(signal.number(), CTRL_C_EVENT as i32);
    assert_eq!(cause.location().line(), line);
    // The handle (`_stop`) is still held: the second Ctrl-C ends the process anyway.
    say_then_die_of(&format!("CANCELLED: {cause}"), CTRL_C_EVENT);
}

#[test]
fn ctrl_c_cancels_and_a_second_ctrl_c_ends_the_process() {
    let out = run_child("child_ctrl_c_then_ctrl_c");
    check(&out, "CANCELLED: received CTRL_C");
}

// ===== scenario: dropping the handle restores the default handling at once =====

#[test]
#[ignore = "a child process of `dropping_the_handle_restores_the_default_handling`"]
fn child_drop_then_ctrl_c() {
    if !in_child() {
        return;
    }
    let (ctx, stop) = Context::background().with_signals().unwrap();
    let (other, other_stop) = Context::background().with_signals().unwrap();
    drop(other_stop);
    assert!(other.is_done());
    drop(stop);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx
        .cause()
        .unwrap()
        .downcast_ref::<SignalReceived>()
        .is_none());
    // Synchronously: with no context registered, our handler passes the event on, and the
    // default handler ends the process.
    say_then_die_of("RESTORED", CTRL_C_EVENT);
}

#[test]
fn dropping_the_handle_restores_the_default_handling() {
    let out = run_child("child_drop_then_ctrl_c");
    check(&out, "RESTORED");
}

// ===== scenario: Ctrl-C reaches every live context; an earlier handler gets the next =====

/// The program's own handler, added before ours: it takes Ctrl-C once our contexts are done.
static MINE: AtomicUsize = AtomicUsize::new(0);

extern "system" fn count_ctrl_c(event: u32) -> BOOL {
    if event == CTRL_C_EVENT {
        MINE.fetch_add(1, Ordering::SeqCst);
        TRUE
    } else {
        FALSE
    }
}

#[test]
#[ignore = "a child process of `ctrl_c_cancels_every_live_context_then_earlier_handlers_run`"]
fn child_ctrl_c_many() {
    if !in_child() {
        return;
    }
    // SAFETY: `count_ctrl_c` is a valid handler routine for the life of the process.
    let added = unsafe { SetConsoleCtrlHandler(Some(count_ctrl_c), TRUE) };
    assert_ne!(added, FALSE);
    let contexts: Vec<_> = (0..3)
        .map(|_| Context::background().with_signals().unwrap())
        .collect();
    send_to_self(CTRL_C_EVENT);
    for (ctx, _) in &contexts {
        assert_eq!(
            ctx.wait_timeout(Duration::from_secs(30)),
            Some(Error::Canceled)
        );
        let cause = ctx.cause().unwrap();
        assert_eq!(cause.to_string(), "received CTRL_C");
    }
    assert_eq!(MINE.load(Ordering::SeqCst), 0, "ours took that Ctrl-C");
    // The contexts are done: the next Ctrl-C goes past ours to the program's handler.
    send_to_self(CTRL_C_EVENT);
    let start = Instant::now();
    while MINE.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the earlier handler never got Ctrl-C"
        );
        std::thread::yield_now();
    }
    // SAFETY: removes the handler added above.
    let removed = unsafe { SetConsoleCtrlHandler(Some(count_ctrl_c), FALSE) };
    assert_ne!(removed, FALSE);
    say_then_die_of("ALL CANCELLED", CTRL_C_EVENT);
}

#[test]
fn ctrl_c_cancels_every_live_context_then_earlier_handlers_run() {
    let out = run_child("child_ctrl_c_many");
    check(&out, "ALL CANCELLED");
}

// ===== scenario: Ctrl-Break cancels too, with its own name (Windows only: see the top) =====

#[test]
#[ignore = "a child process of `ctrl_break_cancels_and_names_itself`"]
fn child_ctrl_break() {
    if !in_child() {
        return;
    }
    let (ctx, _stop) = Context::background().with_signals().unwrap();
    send_to_self(CTRL_BREAK_EVENT);
    assert_eq!(
        ctx.wait_timeout(Duration::from_secs(30)),
        Some(Error::Canceled)
    );
    let cause = ctx.cause().unwrap();
    let signal = cause.downcast_ref::<SignalReceived>().unwrap();
    assert_eq!(signal.number(), CTRL_BREAK_EVENT as i32);
    say_then_die_of(&format!("CANCELLED: {cause}"), CTRL_BREAK_EVENT);
}

#[test]
fn ctrl_break_cancels_and_names_itself() {
    if under_wine() {
        eprintln!("skipped: wine cannot raise Ctrl-Break");
        return;
    }
    let out = run_child("child_ctrl_break");
    check(&out, "CANCELLED: received CTRL_BREAK");
}

#[test]
fn a_child_of_a_done_context_is_born_done() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("already over");
    let (ctx, _stop) = parent.with_signals().unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().to_string(), "already over");
}
