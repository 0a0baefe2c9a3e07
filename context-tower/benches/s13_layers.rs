//! S13 of `shared/BENCHMARKS.md`: a loopback hyper service (HTTP/2 on 127.0.0.1) with and
//! without `ContextLayer` (server) + `PropagateLayer` (client), in the same run.
//!
//! - `S13/latency/{bare,layers}`: one request round trip, client and server on one
//!   current-thread runtime (so the figure is the CPU cost of both sides plus loopback I/O).
//! - `S13/latency/header_only`: `bare` plus the deadline header written by hand, no context:
//!   what sending a deadline costs on the wire (HPACK, header maps) before any layer of ours.
//! - `S13/throughput/{bare,layers,header_only}`: 32 requests in flight on the connection per
//!   iteration (`header_only` as above).
//! - Paired only (`S13_PAIRED=1`): `ambient`, the layers with the call's context current
//!   (`ctx.scope(..)`, as a handler's outgoing call has it) instead of set on the request;
//!   and `http1`, the same service and layers over HTTP/1.1 (latency on one connection,
//!   throughput as one request on each of 32 connections, with a `header_only` row each),
//!   where a header costs a copy instead of HPACK, so the layers' own cost shows; and `axum`,
//!   the same over an axum `Router` (bare, and with `.layer(ContextLayer::http())`); with
//!   feature `tonic` (as `scripts/bench.sh` runs it), `grpc`: a unary call on tonic's own
//!   `Server` and a `Channel` with no deadline, with tonic's own (`set_timeout`) and with ours,
//!   and ours against tonic's (the peer).
//!
//! With layers, each request carries a context with a deadline: the client writes
//! `connect-timeout-ms`, the server parses it, derives a child with that deadline (a timer
//! entry), makes it current for the handler and drops it after the body.
//!
//! Run: `cargo bench -p context-tower --bench s13_layers` (criterion prints the time per
//! iteration and elements/s; the ratios are layers / bare of the same run; `scripts/bench.sh`
//! prints both rows).
//!
//! Instruction counts, repeatable under load: `S13_COUNT=bare:N` (or `layers:N`) makes the
//! binary send N sequential requests and exit, so two callgrind runs with different N give the
//! instructions per request with the setup subtracted (see the crate README). `server:N` and
//! `client:N` put one layer only (the other side bare); `ambient:N` is `layers` with the
//! call's context current (`ctx.scope(..)`) instead of set on the request; `header:N` is
//! `bare` plus the deadline header written by hand (the wire's share); `bare32:N` /
//! `layers32:N` / `header32:N` send N batches of 32 requests in flight (the throughput
//! scenario; `bare32b` / `layers32b`: one `block_on` per batch, as the criterion loop does).
//! `bare1:N` / `layers1:N` / `header1:N` are `bare` / `layers` / `header` over HTTP/1.1.
//! `sched:R` (Linux) times R interleaved rounds of `bare32` and `layers32` and splits each
//! round's wall time into on-CPU, run-queue and idle time of the runtime's thread, plus the
//! CPU time of the other threads: where 32 requests in flight spend their time.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use context_tower::{ContextLayer, PropagateLayer, RequestContextExt};
use criterion::{criterion_group, Criterion, Throughput};
use go_context::Context;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower::{Layer, Service, ServiceExt};

#[path = "../tests/support/loopback.rs"]
mod loopback;
use loopback::{connect_h2, serve, H2Sender, Version};

const IN_FLIGHT: usize = 32;

async fn hello(_req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    Ok(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// hyper's HTTP/1.1 `SendRequest` as a tower service (one request at a time; the bench's
/// runtime is current-thread, so the connection's handle is shared without a lock).
#[derive(Clone)]
struct Sender1(Rc<RefCell<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>>);

impl Service<http::Request<Empty<Bytes>>> for Sender1 {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.borrow_mut().poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Empty<Bytes>>) -> Self::Future {
        Box::pin(self.0.borrow_mut().send_request(req))
    }
}

/// `IN_FLIGHT` HTTP/1.1 connections to `addr`, each one a [`Sender1`].
async fn connect1(addr: SocketAddr, n: usize) -> Vec<Sender1> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        out.push(Sender1(Rc::new(RefCell::new(send))));
    }
    out
}

/// One request through `client`, body read to the end.
async fn one<S, B>(client: &S, uri: &http::Uri, ctx: Option<&Context>)
where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut req = http::Request::get(uri.clone()).body(Empty::new()).unwrap();
    if let Some(ctx) = ctx {
        req.set_context(ctx.clone());
    }
    let resp = client.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
}

/// One request through the bare client carrying the deadline header written by hand, as a
/// client without our layer that still sends a deadline would (the value the layer would
/// write, also never-indexed): what the wire alone costs, without any context.
async fn one_header<S, B>(client: &S, uri: &http::Uri, deadline: Instant)
where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut req = http::Request::get(uri.clone()).body(Empty::new()).unwrap();
    let left = deadline.saturating_duration_since(Instant::now());
    let mut value = context_tower::wire::format_timeout_ms(left).to_header_value();
    value.set_sensitive(true);
    req.headers_mut()
        .insert(http::HeaderName::from_static("connect-timeout-ms"), value);
    let resp = client.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
}

/// `IN_FLIGHT` requests at once on the connection.
async fn batch<S, B>(client: &S, uri: &http::Uri, ctx: Option<&Context>)
where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    futures_util::future::join_all((0..IN_FLIGHT).map(|_| one(client, uri, ctx))).await;
}

/// `IN_FLIGHT` requests at once on the bare connection, each with the deadline header written
/// by hand ([`one_header`]).
async fn batch_header(client: &H2Sender, uri: &http::Uri, deadline: Instant) {
    futures_util::future::join_all((0..IN_FLIGHT).map(|_| one_header(client, uri, deadline))).await;
}

/// One request on each of `clients` at once (HTTP/1.1: a connection carries one request at
/// a time, so `IN_FLIGHT` requests in flight take `IN_FLIGHT` connections), with the context
/// (`Some`), the header by hand (`header`), or neither.
async fn batch_conns<S, B>(
    clients: &[S],
    uri: &http::Uri,
    ctx: Option<&Context>,
    header: Option<Instant>,
) where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    futures_util::future::join_all(clients.iter().map(|c| async move {
        match header {
            Some(deadline) => one_header(c, uri, deadline).await,
            None => one(c, uri, ctx).await,
        }
    }))
    .await;
}

/// The HTTP/1.1 pair: `IN_FLIGHT` connections to a bare server and as many, through
/// `PropagateLayer`, to one behind `ContextLayer`.
struct Setup1 {
    bare: Vec<Sender1>,
    layered: Vec<context_tower::PropagateService<Sender1>>,
    uri_bare: http::Uri,
    uri_layered: http::Uri,
}

fn setup1(rt: &tokio::runtime::Runtime) -> Setup1 {
    rt.block_on(async {
        let bare_addr = serve(tower::service_fn(hello), Version::H1).await;
        let layered_addr = serve(
            ContextLayer::http().layer(tower::service_fn(hello)),
            Version::H1,
        )
        .await;
        let bare = connect1(bare_addr, IN_FLIGHT).await;
        let layered = connect1(layered_addr, IN_FLIGHT)
            .await
            .into_iter()
            .map(|s| PropagateLayer::http().layer(s))
            .collect();
        let u = |a: SocketAddr| format!("http://{a}/").parse::<http::Uri>().unwrap();
        Setup1 {
            bare,
            layered,
            uri_bare: u(bare_addr),
            uri_layered: u(layered_addr),
        }
    })
}

type Setup = (
    H2Sender,
    context_tower::PropagateService<H2Sender>,
    http::Uri,
    http::Uri,
);

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    setup_pair(
        rt,
        serve(tower::service_fn(hello), Version::H2),
        serve(
            ContextLayer::http().layer(tower::service_fn(hello)),
            Version::H2,
        ),
    )
}

/// The axum pair over HTTP/2: a `Router` with the one route, bare and with
/// `.layer(ContextLayer::http())` as an axum user writes it (the router's own work, its
/// routing and request extensions, is in both).
fn setup_axum(rt: &tokio::runtime::Runtime) -> Setup {
    let app = || axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    setup_pair(
        rt,
        serve(app(), Version::H2),
        serve(app().layer(ContextLayer::http()), Version::H2),
    )
}

/// Starts the bare and the layered HTTP/2 servers, and makes a client connection to each (the
/// second through `PropagateLayer`), with their URIs.
fn setup_pair(
    rt: &tokio::runtime::Runtime,
    bare: impl Future<Output = SocketAddr>,
    layered: impl Future<Output = SocketAddr>,
) -> Setup {
    rt.block_on(async {
        let bare_addr = bare.await;
        let layered_addr = layered.await;
        let bare = connect_h2(bare_addr).await;
        let layered = PropagateLayer::http().layer(connect_h2(layered_addr).await);
        let u = |a: SocketAddr| format!("http://{a}/").parse::<http::Uri>().unwrap();
        (bare, layered, u(bare_addr), u(layered_addr))
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `S13_COUNT=bare:N` / `layers:N`: N sequential requests, for instruction counts.
fn count(spec: &str) {
    let (variant, n) = spec.split_once(':').expect("S13_COUNT=bare:N or layers:N");
    let n: usize = n.parse().expect("a request count");
    let rt = runtime();
    let (bare, layered, uri_bare, uri_layered) = setup(&rt);
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let deadline = ctx.deadline().unwrap();
    // `server` / `client`: one layer only (the other side bare), to split the cost.
    let (server_only, client_only) = rt.block_on(async {
        (
            connect_h2(uri_layered.authority().unwrap().as_str().parse().unwrap()).await,
            PropagateLayer::http()
                .layer(connect_h2(uri_bare.authority().unwrap().as_str().parse().unwrap()).await),
        )
    });
    // `sched:R`: R rounds of 100 batches of `bare32` then `layers32`, interleaved, printing for
    // each the wall time, this (the runtime's only) thread's time on a CPU and waiting in the
    // run queue (Linux `/proc/thread-self/schedstat`), and the CPU time of every other thread
    // (the timer's). Wall minus the two is the time the runtime sat idle in `epoll_wait`.
    if variant == "sched" {
        fn sched() -> (u64, u64) {
            let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
            let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        }
        fn others() -> u64 {
            let me = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let me = me.split_whitespace().next().unwrap().to_string();
            let mut t = 0;
            for e in std::fs::read_dir("/proc/self/task").unwrap() {
                let e = e.unwrap();
                if e.file_name().to_str().unwrap() == me {
                    continue;
                }
                let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
                t += s
                    .split_whitespace()
                    .next()
                    .map_or(0, |x| x.parse::<u64>().unwrap());
            }
            t
        }
        let mut tot = [[0f64; 4]; 2];
        for round in 0..n {
            for (i, name) in ["bare", "layers"].iter().enumerate() {
                let (c0, w0) = sched();
                let o0 = others();
                let t0 = Instant::now();
                for _ in 0..100 {
                    if i == 0 {
                        rt.block_on(batch(&bare, &uri_bare, None));
                    } else {
                        rt.block_on(batch(&layered, &uri_layered, Some(&ctx)));
                    }
                }
                let wall = t0.elapsed().as_nanos() as f64;
                let (c1, w1) = sched();
                let o1 = others();
                let v = [wall, (c1 - c0) as f64, (w1 - w0) as f64, (o1 - o0) as f64];
                if round > 0 {
                    for k in 0..4 {
                        tot[i][k] += v[k];
                    }
                }
                eprintln!("{round} {name}: wall {:.0} us/batch, on-cpu {:.0}, runq {:.0}, other threads {:.0}", v[0] / 100e3, v[1] / 100e3, v[2] / 100e3, v[3] / 100e3);
            }
        }
        eprintln!("rounds 1..: wall ratio {:.3}, on-cpu ratio {:.3}, idle bare {:.0} layers {:.0} us/batch",
            tot[1][0] / tot[0][0], tot[1][1] / tot[0][1],
            (tot[0][0] - tot[0][1] - tot[0][2]) / ((n - 1) as f64 * 100e3),
            (tot[1][0] - tot[1][1] - tot[1][2]) / ((n - 1) as f64 * 100e3));
        return;
    }
    // `bare32b` / `layers32b`: one `block_on` per batch, as the criterion loop runs them.
    match variant {
        "bare32b" => {
            for _ in 0..n {
                rt.block_on(batch(&bare, &uri_bare, None));
            }
            return;
        }
        "layers32b" => {
            for _ in 0..n {
                rt.block_on(batch(&layered, &uri_layered, Some(&ctx)));
            }
            return;
        }
        _ => {}
    }
    // `bare1` / `layers1` / `header1`: the same over HTTP/1.1 (one connection of `setup1`).
    if let Some(v1) = variant.strip_suffix('1') {
        let h1 = setup1(&rt);
        rt.block_on(async {
            for _ in 0..n {
                match v1 {
                    "bare" => one(&h1.bare[0], &h1.uri_bare, None).await,
                    "layers" => one(&h1.layered[0], &h1.uri_layered, Some(&ctx)).await,
                    "header" => one_header(&h1.bare[0], &h1.uri_bare, deadline).await,
                    other => panic!("S13_COUNT: unknown variant {other}1"),
                }
            }
        });
        return;
    }
    rt.block_on(async {
        for _ in 0..n {
            match variant {
                "bare" => one(&bare, &uri_bare, None).await,
                "server" => one(&server_only, &uri_layered, None).await,
                "client" => one(&client_only, &uri_bare, Some(&ctx)).await,
                "layers" => one(&layered, &uri_layered, Some(&ctx)).await,
                // The call's context as the current one (a handler's outgoing call) instead
                // of a request extension set by hand.
                "ambient" => ctx.scope(one(&layered, &uri_layered, None)).await,
                "header" => one_header(&bare, &uri_bare, deadline).await,
                "bare32" => batch(&bare, &uri_bare, None).await,
                "layers32" => batch(&layered, &uri_layered, Some(&ctx)).await,
                "header32" => batch_header(&bare, &uri_bare, deadline).await,
                other => panic!("S13_COUNT: unknown variant {other}"),
            }
        }
    });
}

fn s13(c: &mut Criterion) {
    let rt = runtime();
    let (bare, layered, uri_bare, uri_layered) = setup(&rt);
    // The caller's context: a deadline that never fires during the run.
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let deadline = ctx.deadline().unwrap();

    let mut g = c.benchmark_group("S13/latency");
    g.bench_function("bare", |b| {
        b.iter(|| rt.block_on(one(&bare, &uri_bare, None)))
    });
    g.bench_function("layers", |b| {
        b.iter(|| rt.block_on(one(&layered, &uri_layered, Some(&ctx))))
    });
    // No layers, but the deadline header written by hand: the wire's share of the cost.
    g.bench_function("header_only", |b| {
        b.iter(|| rt.block_on(one_header(&bare, &uri_bare, deadline)))
    });
    g.finish();

    let mut g = c.benchmark_group("S13/throughput");
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    g.bench_function("bare", |b| {
        b.iter(|| rt.block_on(batch(&bare, &uri_bare, None)))
    });
    g.bench_function("layers", |b| {
        b.iter(|| rt.block_on(batch(&layered, &uri_layered, Some(&ctx))))
    });
    g.bench_function("header_only", |b| {
        b.iter(|| rt.block_on(batch_header(&bare, &uri_bare, deadline)))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
}

criterion_group! {
    name = benches;
    config = config();
    targets = s13
}

/// Paired rounds: measured rounds per row.
const ROUNDS: usize = 301;
/// Paired rounds: leading rounds run but not counted.
const WARM_UP: usize = 20;
/// Paired rounds: the target length of one side's batch in a round.
const BATCH: Duration = Duration::from_millis(4);

/// One side of a paired row: runs `iters` iterations (one `block_on` each, as criterion's loop
/// does) and returns the wall time and this thread's time on a CPU.
type Side<'a> = &'a dyn Fn(u64) -> (Duration, Duration);

/// This thread's CPU time so far (`CLOCK_THREAD_CPUTIME_ID`; zero where there is none): the
/// runtime is current-thread, so it is all the work of both sides but the timer's.
fn on_cpu() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`, the only memory the call writes.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Iterations of `side` that take about [`BATCH`] of CPU time (at least 1; wall time where
/// there is no thread CPU clock), so that a preemption during calibration does not shrink it.
fn calibrate(side: Side<'_>) -> u64 {
    let mut iters = 1u64;
    loop {
        let (wall, cpu) = side(iters);
        let took = if cpu.is_zero() { wall } else { cpu };
        if took >= BATCH / 4 || iters >= 1 << 20 {
            let per = took.as_secs_f64() / iters as f64;
            return ((BATCH.as_secs_f64() / per.max(1e-12)) as u64).max(1);
        }
        iters *= 2;
    }
}

/// Alternating short batches of `ours` and `peer` (the order flips every round, so neither
/// always runs first), so that a burst of load on this shared machine slows both halves of a
/// round alike; prints the median of the per-round ratios of time per iteration (`ours /
/// peer`) with the 10th and 90th percentiles, in the line format `scripts/bench.sh` reads, and
/// the median ratio of on-CPU times (`cpu_ratio`, which a preemption does not move).
fn pair(id: &str, ours: Side<'_>, peer: Side<'_>) {
    // Both sides run the same number of iterations (the peer's batch size): same-sized
    // batches are equally likely to be preempted.
    let n = calibrate(peer);
    let (n_ours, n_peer) = (n, n);
    let (mut ratios, mut t_ours, mut t_peer) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_ratios = Vec::new();
    for round in 0..WARM_UP + ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = ours(n_ours);
            (a, peer(n_peer))
        } else {
            let b = peer(n_peer);
            (ours(n_ours), b)
        };
        if round >= WARM_UP {
            let ((a, ca), (b, cb)) = (a, b);
            let per = |d: Duration, n: u64| d.as_secs_f64() * 1e9 / n as f64;
            if !cb.is_zero() {
                cpu_ratios.push(per(ca, n_ours) / per(cb, n_peer));
            }
            let (a, b) = (per(a, n_ours), per(b, n_peer));
            ratios.push(a / b);
            t_ours.push(a);
            t_peer.push(b);
        }
    }
    for v in [&mut ratios, &mut t_ours, &mut t_peer, &mut cpu_ratios] {
        v.sort_by(f64::total_cmp);
    }
    let cpu = if cpu_ratios.is_empty() {
        String::new()
    } else {
        format!(
            " cpu_ratio={:.4} cpu_p10={:.4} cpu_p90={:.4}",
            percentile(&cpu_ratios, 0.5),
            percentile(&cpu_ratios, 0.1),
            percentile(&cpu_ratios, 0.9)
        )
    };
    println!(
        "RESULT paired {id} ratio={:.4} p10={:.4} p90={:.4} ours_ns={:.1} peer_ns={:.1} rounds={ROUNDS}{cpu}",
        percentile(&ratios, 0.5),
        percentile(&ratios, 0.1),
        percentile(&ratios, 0.9),
        percentile(&t_ours, 0.5),
        percentile(&t_peer, 0.5),
    );
}

/// `S13_PAIRED=1`: the S13 rows as paired rounds (time per iteration, layers or header / bare),
/// instead of criterion's back-to-back groups, whose ratio swings between runs on a loaded
/// machine. For throughput the time ratio is the inverse of the requests-per-second ratio.
fn paired() {
    let rt = runtime();
    let (bare, layered, uri_bare, uri_layered) = setup(&rt);
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let deadline = ctx.deadline().unwrap();
    let timed = |iters: u64, f: &dyn Fn()| {
        let (start, cpu) = (Instant::now(), on_cpu());
        for _ in 0..iters {
            f();
        }
        (start.elapsed(), on_cpu().saturating_sub(cpu))
    };
    let one_bare = |n| timed(n, &|| rt.block_on(one(&bare, &uri_bare, None)));
    let one_layers = |n| timed(n, &|| rt.block_on(one(&layered, &uri_layered, Some(&ctx))));
    let one_hdr = |n| timed(n, &|| rt.block_on(one_header(&bare, &uri_bare, deadline)));
    let batch_bare = |n| timed(n, &|| rt.block_on(batch(&bare, &uri_bare, None)));
    let batch_layers = |n| {
        timed(n, &|| {
            rt.block_on(batch(&layered, &uri_layered, Some(&ctx)))
        })
    };
    let batch_hdr = |n| timed(n, &|| rt.block_on(batch_header(&bare, &uri_bare, deadline)));
    // A handler's outgoing call: the context is the current one (`ctx.scope`), not set on the
    // request (no request extension on the client side).
    let one_ambient = |n| {
        timed(n, &|| {
            rt.block_on(ctx.scope(one(&layered, &uri_layered, None)))
        })
    };
    let batch_ambient = |n| {
        timed(n, &|| {
            rt.block_on(ctx.scope(batch(&layered, &uri_layered, None)))
        })
    };
    pair("S13 latency", &one_layers, &one_bare);
    pair("S13 latency header_only", &one_hdr, &one_bare);
    pair("S13 latency ambient", &one_ambient, &one_bare);
    pair("S13 throughput", &batch_layers, &batch_bare);
    pair("S13 throughput header_only", &batch_hdr, &batch_bare);
    pair("S13 throughput ambient", &batch_ambient, &batch_bare);

    // axum over HTTP/2: a router with and without the layer, the same clients.
    let (ab, al, uab, ual) = setup_axum(&rt);
    let one_bare_ax = |n| timed(n, &|| rt.block_on(one(&ab, &uab, None)));
    let one_layers_ax = |n| timed(n, &|| rt.block_on(one(&al, &ual, Some(&ctx))));
    let batch_bare_ax = |n| timed(n, &|| rt.block_on(batch(&ab, &uab, None)));
    let batch_layers_ax = |n| timed(n, &|| rt.block_on(batch(&al, &ual, Some(&ctx))));
    pair("S13 latency axum", &one_layers_ax, &one_bare_ax);
    pair("S13 throughput axum", &batch_layers_ax, &batch_bare_ax);

    // HTTP/1.1: the same service, one connection for latency, `IN_FLIGHT` for throughput.
    let h1 = setup1(&rt);
    let (b1, l1) = (&h1.bare[..], &h1.layered[..]);
    let (ub, ul) = (&h1.uri_bare, &h1.uri_layered);
    let one_bare1 = |n| timed(n, &|| rt.block_on(one(&b1[0], ub, None)));
    let one_layers1 = |n| timed(n, &|| rt.block_on(one(&l1[0], ul, Some(&ctx))));
    let one_hdr1 = |n| timed(n, &|| rt.block_on(one_header(&b1[0], ub, deadline)));
    let batch_bare1 = |n| timed(n, &|| rt.block_on(batch_conns(b1, ub, None, None)));
    let batch_layers1 = |n| timed(n, &|| rt.block_on(batch_conns(l1, ul, Some(&ctx), None)));
    let batch_hdr1 = |n| {
        timed(n, &|| {
            rt.block_on(batch_conns(b1, ub, None, Some(deadline)))
        })
    };
    pair("S13 http1 latency", &one_layers1, &one_bare1);
    pair("S13 http1 latency header_only", &one_hdr1, &one_bare1);
    pair("S13 http1 throughput", &batch_layers1, &batch_bare1);
    pair(
        "S13 http1 throughput header_only",
        &batch_hdr1,
        &batch_bare1,
    );

    #[cfg(feature = "tonic")]
    tonic_rows::paired(&rt, &timed, &ctx);
}

/// With feature `tonic`: the peer. A unary gRPC call on tonic's own `Server` and a `Channel`,
/// three ways: `bare` (no deadline), `tonic` (tonic's own deadline: `Request::set_timeout`,
/// which the `Channel` and the `Server` each enforce with a tokio timer) and ours
/// (`Server::builder().layer(ContextLayer::grpc())`, `PropagateLayer::grpc()` over the
/// `Channel`, the call's context set on the request), so that `ours / tonic` is what our
/// deadline costs next to the one tonic users have.
#[cfg(feature = "tonic")]
#[path = "../tests/support/grpc.rs"]
#[allow(dead_code)] // the bench uses part of the test harness
mod grpc;

#[cfg(feature = "tonic")]
mod tonic_rows {
    use std::time::Duration;

    use context_tower::ContextLayer;
    use go_context::Context;

    use super::grpc::*;
    use super::{pair, IN_FLIGHT};

    fn service() -> ChainService {
        ChainService {
            unary: unary(|_| async { Ok(Budgets::default()) }),
            stream: no_stream(),
        }
    }

    type Timed<'a> = &'a dyn Fn(u64, &dyn Fn()) -> (Duration, Duration);

    pub(super) fn paired(rt: &tokio::runtime::Runtime, timed: Timed<'_>, ctx: &Context) {
        let (plain_server, our_server) = rt.block_on(async {
            (
                serve_plain_tonic(service(), None).await,
                serve_tonic_with_our_layer(service(), ContextLayer::grpc()).await,
            )
        });
        // tonic's `Channel` spawns its worker: inside the runtime.
        let _in_rt = rt.enter();
        let plain = plain_client(plain_server.addr);
        let ours = our_client(our_server.addr);
        let hour = Duration::from_secs(3600);
        // One call of each kind (each checks its answer).
        let bare_call = || {
            let mut c = plain.clone();
            async move { call(&mut c, Hop::default(), None).await.unwrap() }
        };
        let tonic_call = || {
            let mut c = plain.clone();
            async move { call_timed(&mut c, Hop::default(), hour).await.unwrap() }
        };
        let our_call = || {
            let mut c = ours.clone();
            let ctx = ctx.clone();
            async move { call(&mut c, Hop::default(), Some(ctx)).await.unwrap() }
        };
        // `IN_FLIGHT` calls of one kind at once, as the HTTP rows' `batch`.
        fn many<F: std::future::Future>(rt: &tokio::runtime::Runtime, call: impl Fn() -> F) {
            rt.block_on(futures_util::future::join_all(
                (0..IN_FLIGHT).map(|_| call()),
            ));
        }
        let one_bare = |n| timed(n, &|| drop(rt.block_on(bare_call())));
        let one_tonic = |n| timed(n, &|| drop(rt.block_on(tonic_call())));
        let one_ours = |n| timed(n, &|| drop(rt.block_on(our_call())));
        let batch_bare = |n| timed(n, &|| many(rt, bare_call));
        let batch_tonic = |n| timed(n, &|| many(rt, tonic_call));
        let batch_ours = |n| timed(n, &|| many(rt, our_call));
        pair("S13 grpc latency", &one_ours, &one_bare);
        pair("S13 grpc latency tonic", &one_tonic, &one_bare);
        pair("S13 grpc latency ours_vs_tonic", &one_ours, &one_tonic);
        pair("S13 grpc throughput", &batch_ours, &batch_bare);
        pair("S13 grpc throughput tonic", &batch_tonic, &batch_bare);
        pair(
            "S13 grpc throughput ours_vs_tonic",
            &batch_ours,
            &batch_tonic,
        );
        rt.block_on(async {
            plain_server.stop.cancel();
            our_server.stop.cancel();
            plain_server.join().await;
            our_server.join().await;
        });
    }
}

fn main() {
    if let Ok(spec) = std::env::var("S13_COUNT") {
        count(&spec);
        return;
    }
    if std::env::var_os("S13_PAIRED").is_some() {
        paired();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
