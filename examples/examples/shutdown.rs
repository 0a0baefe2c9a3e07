//! Graceful shutdown, Go's `signal.NotifyContext`: a pool of workers drains its queue on
//! Ctrl-C (SIGINT) or SIGTERM (on Windows: the console's Ctrl-C, Ctrl-Break or close). The
//! signal stops the producer; jobs already queued are finished, within a grace period; a
//! second Ctrl-C ends the process at once.
//!
//! Run: `cargo run -p context-examples --example shutdown` and press Ctrl-C. If nobody does,
//! it sends itself SIGINT after a while (`--after-ms 300` for a short run, as CI does), so it
//! always ends by itself. (On Windows it raises Ctrl-C in its console, as a key press would:
//! every process attached to that console gets it.)

#[cfg(any(unix, windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    pool::run()
}

#[cfg(not(any(unix, windows)))]
fn main() {
    eprintln!("the `signal` feature is for Unix and Windows");
}

#[cfg(any(unix, windows))]
mod pool {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    use go_context::{Context, Error, Group, SignalReceived};

    const WORKERS: usize = 4;
    const JOB_TIME: Duration = Duration::from_millis(40);
    /// How long the queued jobs get once the signal came.
    const GRACE: Duration = Duration::from_secs(5);

    type Job = u64;

    pub fn run() -> Result<(), Box<dyn std::error::Error>> {
        let after = self_interrupt_after();
        // Cancelled by SIGINT/SIGTERM; until then, those signals no longer end the process.
        let (shutdown, stop) = Context::background().with_signals()?;
        println!(
            "serving with {WORKERS} workers; press Ctrl-C (or wait {} ms)",
            after.as_millis()
        );
        let watched = shutdown.clone();
        std::thread::spawn(move || {
            // Nobody pressed Ctrl-C in time: do it ourselves, so the example always ends.
            if watched.wait_timeout(after).is_none() {
                if let Err(e) = press_ctrl_c() {
                    eprintln!("cannot send ourselves Ctrl-C: {e}");
                    std::process::exit(2);
                }
            }
        });

        // The workers run under their own context, not `shutdown`: the signal must not
        // interrupt the jobs they hold, only stop new ones. The grace period cancels them.
        let (work, cancel_work) = Context::background().with_cancel();
        let (queue, jobs) = mpsc::sync_channel::<Job>(16);
        let jobs = Arc::new(Mutex::new(jobs));
        let done = Arc::new(AtomicUsize::new(0));
        let group: Group<Error> = Group::new(&work);
        for _ in 0..WORKERS {
            let jobs = Arc::clone(&jobs);
            let done = Arc::clone(&done);
            group.spawn_blocking(move |ctx| {
                loop {
                    let job = jobs.lock().unwrap().recv();
                    let Ok(_job) = job else {
                        return Ok(()); // the queue is closed and empty: drained
                    };
                    ctx.sleep(JOB_TIME)?; // the work; stops at once if the grace period ends
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }

        // The producer: a job every 5 ms until the signal, faster than the workers go, so
        // the queue is full when the signal comes.
        let mut queued: u64 = 0;
        while shutdown.sleep(Duration::from_millis(5)).is_ok() {
            queued += 1;
            if queue.try_send(queued).is_err() {
                queued -= 1; // full: the workers are behind; try again next tick
            }
        }
        let cause = shutdown.cause().expect("a done context has a cause");
        let signal = cause
            .downcast_ref::<SignalReceived>()
            .map(SignalReceived::name);
        println!("{cause}: no new jobs; draining, at most {GRACE:?}");
        assert!(signal.is_some(), "only a signal cancels `shutdown`");
        // The signal's default handling is back already (the context is done): a second
        // Ctrl-C ends the process. `stop` would have done the same if dropped before.
        drop(stop);

        // Close the queue, and end the drain after the grace period, whichever comes first.
        drop(queue);
        let (grace, _grace) = Context::background().with_timeout(GRACE);
        let _deadline =
            grace.after_func(move || cancel_work.cancel_with_cause("grace period over"));
        let result = group.wait();
        let finished = done.load(Ordering::Relaxed) as u64;
        println!("drained: {finished} of {queued} jobs done, result {result:?}");
        assert_eq!(result, Ok(()), "drained within the grace period");
        assert_eq!(finished, queued, "no queued job lost");
        Ok(())
    }

    /// What Ctrl-C does: SIGINT to this process.
    #[cfg(unix)]
    fn press_ctrl_c() -> std::io::Result<()> {
        // SAFETY: `kill` and `getpid` have no memory-safety preconditions.
        match unsafe { libc::kill(libc::getpid(), libc::SIGINT) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// What Ctrl-C does: the console's Ctrl-C event, to every process attached to it. (A
    /// process without a console, started detached, gets no console events at all.)
    #[cfg(windows)]
    fn press_ctrl_c() -> std::io::Result<()> {
        use windows_sys::Win32::System::Console::{GenerateConsoleCtrlEvent, CTRL_C_EVENT};
        // SAFETY: no pointers; group 0 is every process of our console.
        match unsafe { GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) } {
            0 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        }
    }

    /// `--after-ms N` (or the env var `SHUTDOWN_AFTER_MS`): when to send ourselves SIGINT.
    fn self_interrupt_after() -> Duration {
        let args: Vec<String> = std::env::args().collect();
        let from_args = args
            .windows(2)
            .find(|w| w[0] == "--after-ms")
            .and_then(|w| w[1].parse().ok());
        let from_env = std::env::var("SHUTDOWN_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok());
        Duration::from_millis(from_args.or(from_env).unwrap_or(10_000))
    }
}
