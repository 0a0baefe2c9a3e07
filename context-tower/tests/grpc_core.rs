//! Interop with gRPC's C core, the reference implementation behind Python's, Ruby's, PHP's
//! and C++'s gRPC (Python `grpcio`, driven by `support/grpc_core_peer.py`), over real
//! connections on 127.0.0.1, both ways:
//! - a C core client calls our server (tonic through `Routes::into_axum_router()` with
//!   `ContextLayer`): the `grpc-timeout` it writes becomes the handler's deadline, its expiry
//!   reaches it as `DEADLINE_EXCEEDED` and ends the handler's context, and its cancellation
//!   ends that context with `RequestDropped`;
//! - our client (`PropagateLayer` over tonic's `Channel`) calls a C core server: the server
//!   sees our deadline as its `time_remaining()`, we get `DEADLINE_EXCEEDED` when it passes
//!   while the server works, and a cancelled context ends the server's call.
//!
//! Needs `python3` with `grpcio` (`pip install grpcio`); without it each test says so and
//! passes, unless `CONTEXT_TOWER_GRPC_CORE` is set (CI sets it), which makes it fail instead.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use context_tower::{ContextLayer, RequestDropped};
use go_context::{Context, Error};
use std::io::{BufRead, BufReader, Write};
use support::grpc::*;
use support::*;
use tonic::Code;

const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/grpc_core_peer.py"
);

/// Whether the peer can run; see the module docs.
fn grpc_core() -> bool {
    let ok = std::process::Command::new("python3")
        .args([PEER, "check"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CONTEXT_TOWER_GRPC_CORE").is_none(),
            "CONTEXT_TOWER_GRPC_CORE is set, but python3 cannot import grpcio"
        );
        eprintln!("skipped: no python3 with grpcio (pip install grpcio)");
    }
    ok
}

/// A running `grpc_core_peer.py`, killed when dropped. A thread reads its lines (std's
/// process API: no process support in the test's tokio).
struct Peer {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = std::process::Command::new("python3")
            .arg(PEER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Peer { child, lines }
    }

    /// The peer's next line (bounded: a peer that says nothing fails the test).
    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.lines.recv())
            .await
            .expect("the peer answered in time")
            .expect("the peer is still running")
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `prefix` in `line`.
fn number(line: &str, prefix: &str) -> u64 {
    line.strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected {prefix:?} and a number, got {line:?}"))
}

/// A handler that records its context, waits `work_ms` (the work a deadline interrupts), and
/// answers with the budget it received.
fn recording(probe: Probe) -> ChainService {
    ChainService {
        unary: unary(move |req: tonic::Request<Hop>| {
            let probe = probe.clone();
            async move {
                let ctx = Context::current();
                probe.put(ctx.clone());
                let budget = budget_micros(&ctx);
                let work = Duration::from_millis(req.get_ref().work_ms);
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                Ok(Budgets {
                    micros: vec![budget],
                })
            }
        }),
        stream: no_stream(),
    }
}

/// Whether a handler's context ended because its request went away.
fn request_dropped(ctx: &Context) -> bool {
    ctx.cause()
        .is_some_and(|c| c.downcast_ref::<RequestDropped>().is_some())
}

/// Bounds a test that starts Python processes (slower to start than our own servers).
async fn bounded_peer<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test finished in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_core_client_gets_its_deadline_and_cancellation_to_our_handler() {
    if !grpc_core() {
        return;
    }
    bounded_peer(async {
        let probe = Probe::default();
        let server = serve_ours(recording(probe.clone()), ContextLayer::grpc()).await;
        let addr = server.addr.to_string();

        // The deadline it writes is the handler's: at most the 300 ms it gave, less the
        // time to connect and send (generous on a loaded machine).
        let mut client = Peer::spawn(&["call", &addr, "0.3", "0"]);
        assert_eq!(client.line().await, "sent");
        let budget = number(&client.line().await, "status OK budgets ");
        assert!((100_000..=300_000).contains(&budget), "budget {budget} us");
        assert!(probe.get().unwrap().deadline().is_some());

        // It passes while the handler works: C core reports DEADLINE_EXCEEDED, and the
        // handler's context ends (with its deadline, or with `RequestDropped` when C core's
        // own timer resets the call a moment before ours fires).
        let mut client = Peer::spawn(&["call", &addr, "0.3", "10000"]);
        assert_eq!(client.line().await, "sent");
        let out = client.line().await;
        assert!(out.starts_with("status DEADLINE_EXCEEDED"), "{out}");
        let ctx = probe.wait(2).await;
        match done_within(&ctx, 5).await {
            Error::DeadlineExceeded => {}
            Error::Canceled => assert!(request_dropped(&ctx), "{:?}", ctx.cause()),
        }

        // It cancels the call: the handler's context ends with `RequestDropped`.
        let mut client = Peer::spawn(&["call", &addr, "none", "10000"]);
        assert_eq!(client.line().await, "sent");
        let ctx = probe.wait(3).await;
        assert_eq!(ctx.deadline(), None);
        client.send("cancel");
        let out = client.line().await;
        assert!(out.starts_with("status CANCELLED"), "{out}");
        assert_eq!(done_within(&ctx, 5).await, Error::Canceled);
        assert!(request_dropped(&ctx), "{:?}", ctx.cause());

        server.stop.cancel();
        server.join().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_carries_its_deadline_and_cancellation_to_a_grpc_core_server() {
    if !grpc_core() {
        return;
    }
    bounded_peer(async {
        let mut server = Peer::spawn(&["serve"]);
        let port = number(&server.line().await, "port ");
        let addr: SocketAddr = ([127, 0, 0, 1], port as u16).into();
        let mut client = our_client(addr);

        // Our deadline is the server's `time_remaining()`.
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
        let answer = call(&mut client, Hop { work_ms: 0 }, Some(ctx))
            .await
            .unwrap();
        let seen = number(&server.line().await, "started budget_us=");
        assert!((100_000..=300_000).contains(&seen), "budget {seen} us");
        assert_eq!(answer.micros, vec![seen]);
        assert_eq!(server.line().await, "ended how=done");

        // It passes while the server works: DEADLINE_EXCEEDED (not CANCELLED), and the
        // server's call ends (its own deadline, or our reset of the call at ours).
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
        let err = call(&mut client, Hop { work_ms: 10_000 }, Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(server.line().await.starts_with("started budget_us="));
        let ended = server.line().await;
        assert!(
            ended == "ended how=deadline" || ended == "ended how=cancelled",
            "{ended}"
        );

        // Our context is cancelled while the server works: the call ends with CANCELLED and
        // the server's call is cancelled.
        let (ctx, cancel) = Context::background().with_cancel();
        let mut second = client.clone();
        let pending =
            tokio::spawn(
                async move { call(&mut second, Hop { work_ms: 10_000 }, Some(ctx)).await },
            );
        assert_eq!(number(&server.line().await, "started budget_us="), 0);
        cancel.cancel();
        let err = pending.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err:?}");
        assert_eq!(server.line().await, "ended how=cancelled");
    })
    .await;
}
