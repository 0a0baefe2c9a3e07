//! Test harness: bounded waits and a probe for handler contexts; with feature `tonic`, the
//! gRPC harness in `grpc`.
#![allow(dead_code)] // each test binary uses part of it

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use go_context::Context;

#[cfg(feature = "tonic")]
pub mod grpc;

/// The request's remaining budget in microseconds (0 without a deadline).
pub fn budget_micros(ctx: &Context) -> u64 {
    ctx.deadline()
        .map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .as_micros() as u64
        })
        .unwrap_or(0)
}

/// Keeps the contexts handlers ran under, for the test to inspect afterwards.
#[derive(Clone, Default)]
pub struct Probe(Arc<(Mutex<Vec<Context>>, tokio::sync::Notify)>);

impl Probe {
    pub fn put(&self, ctx: Context) {
        self.0 .0.lock().unwrap().push(ctx);
        self.0 .1.notify_waiters();
    }
    pub fn get(&self) -> Option<Context> {
        self.0 .0.lock().unwrap().last().cloned()
    }
    pub fn len(&self) -> usize {
        self.0 .0.lock().unwrap().len()
    }
    /// Waits until `n` handlers have run (and returns the last one's context).
    pub async fn wait(&self, n: usize) -> Context {
        loop {
            let notified = self.0 .1.notified();
            if self.len() >= n {
                return self.get().unwrap();
            }
            notified.await;
        }
    }
}

/// Bounds a whole test.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test finished in time")
}

/// Waits (bounded) until `ctx` is done, and returns its error.
pub async fn done_within(ctx: &Context, secs: u64) -> go_context::Error {
    tokio::time::timeout(Duration::from_secs(secs), ctx.done())
        .await
        .expect("context done in time")
}

/// A handler that records its context and works `work_ms` without looking at it: only the
/// layers around it can end the call.
#[cfg(feature = "tonic")]
pub fn oblivious(probe: Probe) -> grpc::ChainService {
    use context_tower::RequestContextExt;
    use grpc::*;
    ChainService {
        unary: unary(move |req: tonic::Request<Hop>| {
            probe.put(req.context());
            let work = Duration::from_millis(req.get_ref().work_ms);
            async move {
                tokio::time::sleep(work).await;
                Ok(Budgets::default())
            }
        }),
        stream: no_stream(),
    }
}
