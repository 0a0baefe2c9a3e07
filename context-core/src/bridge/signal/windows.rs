//! The Windows part of the `signal` feature: the console's control events, through a console
//! control handler (`SetConsoleCtrlHandler`).
//!
//! The OS runs the handler on a thread it creates for each event, and may run several at once.
//! Such a thread may take locks, so the handler makes the shared [`claim`] itself: its answer
//! to the OS ("handled", or "not handled": the next handler runs, by default the one that ends
//! the process) is whether a live context took the event. It runs with the console's handler
//! lock held, though, so the cancellation (which wakes user code) is handed to the dispatcher
//! thread, `context-signal`.
//!
//! The events Go turns into `os.Interrupt` (Ctrl-C, Ctrl-Break) are handled and the process
//! goes on. Those it reports as `SIGTERM` (close, logoff, shutdown) end the process as soon as
//! the handler returns, whatever it answers, so a handler that claimed one of them never
//! returns (as Go's does not): the program has until the OS's time-out to drain and exit. The
//! cause names the event itself (`CTRL_C`, ..., `CTRL_SHUTDOWN`).
//!
//! # Invariants
//!
//! 1. The handler is added once, by `start`, and never removed: removing it would take the
//!    console's handler lock under the registry lock, while the handler, holding the console's
//!    lock, waits for ours. So "our handling in" and "the previous handling back" (shared
//!    invariant 1) are the registry's entries alone: `install` and `restore` touch no OS
//!    state, and with no entry the handler answers "not handled", as if it were not there.
//! 2. `DISPATCHER` is set by `start` before the handler is added; if the dispatcher thread is
//!    gone, the handler cancels on its own thread rather than lose the event.

use std::io;
use std::sync::mpsc;
use std::sync::OnceLock;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{FALSE, TRUE};
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
};

use super::{claim, Claim, Claimed};

/// Nothing to save: see invariant 1.
pub(super) type Saved = ();

pub(super) fn name(signal: i32) -> &'static str {
    match u32::try_from(signal) {
        Ok(CTRL_C_EVENT) => "CTRL_C",
        Ok(CTRL_BREAK_EVENT) => "CTRL_BREAK",
        Ok(CTRL_CLOSE_EVENT) => "CTRL_CLOSE",
        Ok(CTRL_LOGOFF_EVENT) => "CTRL_LOGOFF",
        Ok(CTRL_SHUTDOWN_EVENT) => "CTRL_SHUTDOWN",
        _ => "console event",
    }
}

/// The dispatcher thread's queue (invariant 2).
static DISPATCHER: OnceLock<mpsc::Sender<Claimed>> = OnceLock::new();

/// Starts the dispatcher thread and adds our handler (once per process: the shared
/// `dispatcher()` calls it until it succeeds). If the handler was refused after the thread
/// started, the next call's thread finds `DISPATCHER` set, drops its queue and exits at once.
pub(super) fn start() -> io::Result<()> {
    let (queue, claims) = mpsc::channel::<Claimed>();
    std::thread::Builder::new()
        .name("context-signal".into())
        .spawn(move || claims.into_iter().for_each(Claimed::cancel))?;
    let _ = DISPATCHER.set(queue);
    // SAFETY: `on_console_event` has the signature of a `HandlerRoutine` and stays valid for
    // the life of the process (it is never removed: invariant 1).
    if unsafe { SetConsoleCtrlHandler(Some(on_console_event), TRUE) } == FALSE {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Our handling is in whenever a context is registered (invariant 1).
pub(super) fn install() -> io::Result<Saved> {
    Ok(())
}

/// The previous handling is back as soon as no context is registered (invariant 1).
pub(super) fn restore(_: &Saved) {}

/// Not asked for: an event nobody claims goes to the next handler whatever it is (by default,
/// the one that ends the process).
pub(super) fn is_default(_: i32) -> bool {
    true
}

/// The console control handler, on a thread the OS created for `event`.
extern "system" fn on_console_event(event: u32) -> BOOL {
    let ends_the_process = match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => false,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => true,
        _ => return FALSE,
    };
    // The codes are small (0 to 6): they fit.
    let Claim::Cancel(claimed) = claim(event as i32) else {
        // Shared invariant 4: nobody waits for it; the next handler decides.
        return FALSE;
    };
    match DISPATCHER.get() {
        Some(queue) => {
            if let Err(mpsc::SendError(claimed)) = queue.send(claimed) {
                claimed.cancel(); // the dispatcher is gone (invariant 2)
            }
        }
        None => claimed.cancel(),
    }
    if ends_the_process {
        // The OS ends the process when we return: give the program its time-out to drain.
        loop {
            std::thread::park();
        }
    }
    TRUE
}
