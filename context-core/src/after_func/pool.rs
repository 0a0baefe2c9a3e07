//! The threads that run `after_func` callbacks: Go runs each in a goroutine of its own; we run
//! them on a pool that grows whenever its threads are all stuck.
//!
//! - [`Pool::submit`] is what a cancelling thread (or the timer) pays per callback: one short
//!   lock and a push. It never runs a job and never spawns a worker; it wakes an idle worker
//!   only when fewer than one per [`PER_WORKER`] queued jobs is awake, so a burst of callbacks
//!   is handed over with one wake-up, not one per callback.
//! - A *supervisor* thread watches while jobs wait. If no worker is awake, or none took a job
//!   for a whole [`TICK`] (they are all blocked or slow), it wakes idle workers, or else starts
//!   new ones: at once up to [`EAGER`], then up to [`SPAWN_BATCH`] per tick, up to
//!   [`MAX_THREADS`]. So blocked callbacks never stop the others (up to `MAX_THREADS` blocked at
//!   once), a callback waits at most about a tick behind a slow one, and a burst of quick
//!   callbacks does not start hundreds of threads.
//! - If the OS refuses a thread, the jobs stay queued (never run on the submitting thread) and
//!   the supervisor tries again at the next tick; if it refuses the supervisor itself, the next
//!   `submit` tries again.
//! - Idle workers, and the supervisor, exit after [`Pool::idle`] (10 s for the callbacks).
//!
//! # Invariants
//!
//! 1. Every field of [`State`] is read and written under `state`; no job runs, is dropped or is
//!    spawned under it (jobs are moved out first), so a job may submit jobs itself.
//! 2. `woken` (notifications not yet consumed) is only approximately right (a notification can
//!    meet a timed-out worker); the counts only decide whom to wake, so an error costs a tick
//!    or an extra wake-up, never a lost job: a queued job is taken by an awake worker when it
//!    finishes its job, or by one the supervisor wakes or starts while jobs wait.
//! 3. While jobs are queued the supervisor is running and watching: `submit` sets `watching`
//!    (and starts or notifies it) whenever it leaves a job without waking a worker for it, and
//!    the supervisor clears it only when the queue is empty.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// A callback, boxed once at registration.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The most workers alive at once (tokio's blocking pool has as many): that many callbacks can
/// block at once and the others still run; beyond it, callbacks queue for a free worker.
pub(crate) const MAX_THREADS: usize = 512;

/// Workers started as soon as jobs wait with no idle worker.
pub(crate) const EAGER: usize = 4;

/// How often the supervisor looks for stuck workers while jobs wait.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// A submit wakes another idle worker only for every this many queued jobs (more awake
/// workers only fight the canceller for the lock: 256 cost 7x as much per callback as 4,096).
pub(crate) const PER_WORKER: usize = 4096;

/// The most workers started per tick beyond [`EAGER`].
pub(crate) const SPAWN_BATCH: usize = 32;

pub(crate) struct Pool {
    name: &'static str,
    idle: Duration,
    state: Mutex<State>,
    work: Condvar,
    grow: Condvar,
    /// Fault injection: the OS "refuses" every thread while set.
    #[cfg(test)]
    refuse_spawns: std::sync::atomic::AtomicBool,
}

struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    /// Notifications sent to idle workers and not yet consumed (invariant 2).
    woken: usize,
    /// Workers alive (or being started).
    threads: usize,
    /// Workers awake: running a job or about to look at the queue (or being started).
    running: usize,
    /// Jobs taken so far: the supervisor's measure of progress.
    taken: u64,
    supervisor: bool,
    watching: bool,
}

impl Pool {
    pub(crate) const fn new(name: &'static str, idle: Duration) -> Pool {
        Pool {
            name,
            idle,
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: 0,
                woken: 0,
                threads: 0,
                running: 0,
                taken: 0,
                supervisor: false,
                watching: false,
            }),
            work: Condvar::new(),
            grow: Condvar::new(),
            #[cfg(test)]
            refuse_spawns: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No job runs under this lock (invariant 1): poison can only be a bug here.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` to run on a pool thread. Never runs it here, never blocks but for the lock.
    pub(crate) fn submit(&'static self, job: Job) {
        let mut st = self.lock();
        st.jobs.push_back(job);
        // One awake worker per `PER_WORKER` queued jobs: a burst wakes one worker, not one per
        // job (invariant 3).
        let awake = st.running + st.woken;
        if awake <= st.jobs.len() / PER_WORKER && st.idle > st.woken {
            st.woken += 1;
            drop(st);
            self.work.notify_one();
            return;
        }
        // An awake worker will take it, unless they are all stuck: the supervisor watches.
        if st.watching {
            return;
        }
        st.watching = true;
        if st.supervisor {
            drop(st);
            self.grow.notify_one();
            return;
        }
        st.supervisor = true;
        drop(st);
        if self.spawn(|pool| pool.supervise()).is_err() {
            // The job stays queued; the next submit tries again.
            let mut st = self.lock();
            st.supervisor = false;
            st.watching = false;
        }
    }

    fn spawn(&'static self, f: fn(&'static Pool)) -> std::io::Result<()> {
        #[cfg(test)]
        if self.refuse_spawns.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        thread::Builder::new()
            .name(self.name.into())
            .spawn(move || f(self))
            .map(drop)
    }

    fn supervise(&'static self) {
        let mut st = self.lock();
        let mut last_taken = None;
        loop {
            if st.jobs.is_empty() {
                st.watching = false;
                last_taken = None;
                let (next, timeout) = self
                    .grow
                    .wait_timeout(st, self.idle)
                    .unwrap_or_else(|p| p.into_inner());
                st = next;
                if timeout.timed_out() && !st.watching && st.jobs.is_empty() {
                    st.supervisor = false;
                    return;
                }
                continue;
            }
            // Jobs wait. Stuck: no worker is awake to take them, or none took one for a whole
            // tick (they are all blocked, or slow).
            let stuck = st.running + st.woken == 0 || last_taken == Some(st.taken);
            last_taken = Some(st.taken);
            if stuck {
                let sleepers = st.idle.saturating_sub(st.woken).min(st.jobs.len());
                if sleepers > 0 {
                    // Idle workers first.
                    st.woken += sleepers;
                    for _ in 0..sleepers {
                        self.work.notify_one();
                    }
                } else {
                    let room = MAX_THREADS.saturating_sub(st.threads);
                    // At once up to EAGER workers, then a batch per stuck tick.
                    let want = if st.threads < EAGER {
                        EAGER - st.threads
                    } else {
                        SPAWN_BATCH
                    };
                    let n = want.min(room).min(st.jobs.len());
                    if n > 0 {
                        st.threads += n;
                        st.running += n;
                        let mut started = 0;
                        // Spawning takes a while: without the lock, so submits and workers go on.
                        drop(st);
                        for _ in 0..n {
                            if self.spawn(|pool| pool.work()).is_err() {
                                break;
                            }
                            started += 1;
                        }
                        st = self.lock();
                        // Refused: the rest are not started; the next tick tries again.
                        st.threads -= n - started;
                        st.running -= n - started;
                    }
                }
            }
            st = self
                .grow
                .wait_timeout(st, TICK)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn work(&'static self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                st.taken += 1;
                if st.jobs.is_empty() && st.jobs.capacity() > 64 {
                    // Give a burst's queue memory back.
                    st.jobs = VecDeque::new();
                }
                drop(st);
                // A panicking callback is reported by the panic hook and affects nothing else.
                crate::unwind::contain(job);
                st = self.lock();
                continue;
            }
            st.running -= 1;
            st.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(st, self.idle)
                .unwrap_or_else(|p| p.into_inner());
            st = next;
            st.idle -= 1;
            st.woken = st.woken.saturating_sub(1);
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
            st.running += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Instant;

    const PATIENCE: Duration = Duration::from_secs(30);

    fn pool(idle: Duration) -> &'static Pool {
        Box::leak(Box::new(Pool::new("test-pool", idle)))
    }

    /// A gate that jobs block on until it opens (bounded by PATIENCE; `true` if it opened).
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        changed: Condvar,
    }

    impl Gate {
        fn wait(&self) -> bool {
            let open = self.open.lock().unwrap();
            let (open, _) = self
                .changed
                .wait_timeout_while(open, PATIENCE, |open| !*open)
                .unwrap();
            *open
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.changed.notify_all();
        }
    }

    fn until(what: &str, mut f: impl FnMut() -> bool) {
        let bound = Instant::now() + PATIENCE;
        while !f() {
            assert!(Instant::now() < bound, "{what}: not within {PATIENCE:?}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn blocked_jobs_do_not_stop_the_others() {
        // As many blocked jobs as the old pool had threads, and a job that must still run.
        let p = pool(Duration::from_secs(10));
        let gate = Arc::new(Gate::default());
        let (tx, rx) = mpsc::channel();
        for _ in 0..64 {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            p.submit(Box::new(move || tx.send(gate.wait()).unwrap()));
        }
        let (free_tx, free_rx) = mpsc::channel();
        p.submit(Box::new(move || free_tx.send(()).unwrap()));
        assert!(
            free_rx.recv_timeout(PATIENCE).is_ok(),
            "stuck behind 64 blocked jobs"
        );
        gate.open();
        for _ in 0..64 {
            assert_eq!(rx.recv_timeout(PATIENCE), Ok(true));
        }
    }

    #[test]
    fn a_refused_thread_leaves_the_job_queued_until_a_retry_succeeds() {
        let p = pool(Duration::from_secs(10));
        let me = thread::current().id();
        let gate = Arc::new(Gate::default());
        let (tx, rx) = mpsc::channel();
        // One job running (and blocked) on a worker.
        {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            p.submit(Box::new(move || {
                tx.send(thread::current().id()).unwrap();
                gate.wait();
            }));
        }
        assert_ne!(rx.recv_timeout(PATIENCE).unwrap(), me);
        // The OS refuses every thread: the next job needs one, and waits; it never runs here.
        p.refuse_spawns.store(true, Ordering::SeqCst);
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let ran = Arc::clone(&ran);
            p.submit(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                tx.send(thread::current().id()).unwrap();
            }));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "never run by the submitter");
        // The supervisor keeps trying at every tick: once the OS agrees, the job runs, while the
        // first job is still blocked and without any further submit.
        until("the supervisor retried", || {
            p.lock().jobs.len() == 1 && p.lock().supervisor
        });
        p.refuse_spawns.store(false, Ordering::SeqCst);
        assert_ne!(rx.recv_timeout(PATIENCE).unwrap(), me);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        gate.open();
    }

    #[test]
    fn a_refused_supervisor_is_retried_by_the_next_submit() {
        let p = pool(Duration::from_secs(10));
        p.refuse_spawns.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        p.submit(Box::new(move || tx.send(1).unwrap()));
        assert!(!p.lock().supervisor);
        assert_eq!(p.lock().jobs.len(), 1, "queued, not run");
        p.refuse_spawns.store(false, Ordering::SeqCst);
        p.submit(Box::new(move || tx2.send(2).unwrap()));
        let mut got = [
            rx.recv_timeout(PATIENCE).unwrap(),
            rx.recv_timeout(PATIENCE).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [1, 2]);
    }

    #[test]
    fn a_burst_runs_every_job_once() {
        const N: usize = 100_000;
        let p = pool(Duration::from_secs(10));
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..N {
            let (ran, tx) = (Arc::clone(&ran), tx.clone());
            p.submit(Box::new(move || {
                if ran.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    tx.send(()).unwrap();
                }
            }));
        }
        assert!(rx.recv_timeout(PATIENCE).is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), N);
        assert!(p.lock().threads <= MAX_THREADS);
    }

    /// Regression test: the worker dropped a job's panic payload outside its `catch_unwind`,
    /// so a payload whose `Drop` panics killed the worker, which stayed counted as alive and
    /// awake (the pool then never shrank to zero, and woke no idle worker for a lone job).
    #[test]
    fn a_panic_payload_that_panics_on_drop_kills_no_worker() {
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                if !thread::panicking() {
                    panic!("payload drop");
                }
            }
        }
        let p = pool(Duration::from_millis(20));
        let (tx, rx) = mpsc::channel();
        p.submit(Box::new(move || {
            tx.send(()).unwrap();
            std::panic::panic_any(PanicsOnDrop);
        }));
        assert!(rx.recv_timeout(PATIENCE).is_ok());
        until("the worker went idle and exited", || {
            let st = p.lock();
            st.threads == 0 && st.running == 0 && !st.supervisor
        });
    }

    #[test]
    fn idle_threads_exit() {
        let p = pool(Duration::from_millis(20));
        let (tx, rx) = mpsc::channel();
        for _ in 0..8 {
            let tx = tx.clone();
            p.submit(Box::new(move || tx.send(()).unwrap()));
        }
        for _ in 0..8 {
            assert!(rx.recv_timeout(PATIENCE).is_ok());
        }
        until("idle threads exited", || {
            let st = p.lock();
            st.threads == 0 && !st.supervisor
        });
        // And the pool starts again.
        p.submit(Box::new(move || tx.send(()).unwrap()));
        assert!(rx.recv_timeout(PATIENCE).is_ok());
    }
}
