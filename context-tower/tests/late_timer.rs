//! Our answer when go-context's timer is late: a binary of its own, because it stalls the
//! process's deadline timer on purpose (every thread of it stuck in a waker) while it runs.

mod support;

use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Wake, Waker};
use std::time::Duration;

use context_tower::ContextLayer;
use go_context::{Context, Error};
use support::grpc::*;
use support::*;
use tonic::Code;

/// Blocks the timer thread that wakes it until the test lets it go (bounded: a minute).
struct StuckWaker {
    woken: mpsc::Sender<()>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl Wake for StuckWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.woken.send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60));
    }
}

/// How many expiries it takes to stall the timer: its thread limit (32, `timer/driver.rs`),
/// less the firer and standby it keeps, plus margin.
const STUCK: usize = 32;

/// Regression test: our `ResponseFuture` answered only once the timer had marked the request's
/// context done. tonic's own `Server` wraps our layer in its `GrpcTimeout`, which polls us
/// first and then answers `CANCELLED` on its own clock; when our timer thread was late (a
/// loaded machine descheduled it: 16 of 20 runs of the tonic test failed under four busy
/// loops), the caller got tonic's `CANCELLED`. Now a poll that finds the deadline passed
/// answers `DEADLINE_EXCEEDED` at once, and the context still ends with `DeadlineExceeded`
/// once the timer gets to it. Here the timer is made late for certain: every thread of it is
/// stuck in a waker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_timer_still_gives_deadline_exceeded_behind_tonics_own_timeout() {
    bounded(async {
        let probe = Probe::default();
        let s = serve_tonic_with_our_layer(oblivious(probe.clone()), ContextLayer::grpc()).await;
        let mut client = plain_hyper_client(s.addr);

        // Stall the timer: contexts due now whose wakers block the thread that fires them.
        let (woken_tx, woken_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let release = Arc::new(Mutex::new(release_rx));
        let mut stalls = Vec::new();
        for _ in 0..STUCK {
            let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(20));
            let waker = Waker::from(Arc::new(StuckWaker {
                woken: woken_tx.clone(),
                release: Arc::clone(&release),
            }));
            let mut done = Box::pin(ctx.done());
            let registered = done
                .as_mut()
                .poll(&mut TaskContext::from_waker(&waker))
                .is_pending();
            stalls.push((ctx, cancel, done, registered));
        }
        let expected = stalls.iter().filter(|s| s.3).count();
        // At most 30 expiries can be stuck at once: the rest wait, as our request's will.
        let stuck = tokio::task::spawn_blocking(move || {
            (0..expected.min(30))
                .filter(|_| woken_rx.recv_timeout(Duration::from_secs(20)).is_ok())
                .count()
        })
        .await
        .unwrap();
        assert!(stuck >= 30, "only {stuck} timer threads got stuck");

        let result = call_timed(
            &mut client,
            Hop { work_ms: 10_000 },
            Duration::from_millis(100),
        )
        .await;
        let ctx = probe.get();
        // Let the timer go again.
        for _ in 0..STUCK {
            let _ = release_tx.send(());
        }
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        let ctx = ctx.expect("the handler ran (the request arrived well before its deadline)");
        assert_eq!(done_within(&ctx, 20).await, Error::DeadlineExceeded);
        assert!(ctx
            .cause()
            .unwrap()
            .downcast_ref::<context_tower::RemoteDeadline>()
            .is_some());
        drop(stalls);
        s.stop.cancel();
        s.join().await;
    })
    .await;
}
