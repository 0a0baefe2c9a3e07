//! Scale: a million contexts deep or wide create, cancel and drop on a 2 MiB stack, with no
//! recursion over the tree.

use std::thread;
use std::time::{Duration, Instant};

use go_context::{CancelHandle, Context, Error};

const MILLION: usize = 1_000_000;
const STACK: usize = 2 * 1024 * 1024;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the scenario overflowed its 2 MiB stack or panicked")
}

fn chain(depth: usize, with_deadlines: bool) -> Vec<(Context, CancelHandle)> {
    let mut levels: Vec<(Context, CancelHandle)> = Vec::with_capacity(depth);
    let mut parent = Context::background();
    for i in 0..depth {
        let (ctx, cancel) = if with_deadlines && i % 1000 == 0 {
            parent.with_timeout(Duration::from_secs(3600))
        } else {
            parent.with_cancel()
        };
        parent = if i % 10 == 0 {
            ctx.with_value(i)
        } else {
            ctx.clone()
        };
        levels.push((ctx, cancel));
    }
    levels
}

#[test]
fn a_million_deep_chain_cancels_from_the_root() {
    on_small_stack(|| {
        let levels = chain(MILLION, true);
        let leaf = levels.last().unwrap().0.clone();
        assert_eq!(leaf.value::<usize>(), Some(&(MILLION - 10)));
        levels[0].1.cancel();
        assert_eq!(leaf.err(), Some(Error::Canceled));
        assert!(levels.iter().all(|(c, _)| c.is_done()));
        drop(levels);
        assert!(format!("{leaf:?}").starts_with("background.with_deadline"));
    });
}

#[test]
fn a_million_deep_chain_drops_without_cancel_in_either_order() {
    on_small_stack(|| {
        drop(chain(MILLION, false));
        let mut levels = chain(MILLION, false);
        while let Some(level) = levels.pop() {
            drop(level); // leaf first
        }
        // Only contexts kept: dropping the handles first, then the contexts, root last.
        let levels = chain(MILLION, false);
        let (contexts, handles): (Vec<_>, Vec<_>) = levels.into_iter().unzip();
        drop(handles);
        assert!(contexts.last().unwrap().is_done());
        drop(contexts);
    });
}

#[path = "../../context-core/benches/support/mixed_chain.rs"]
mod mixed_chain;
use mixed_chain::mixed_chain;

#[test]
fn a_million_mixed_layers_are_linear_and_cancel_from_the_root() {
    on_small_stack(|| {
        let first_deadline = Instant::now() + Duration::from_secs(3600);
        let start = Instant::now();
        let (contexts, handles) = mixed_chain(&Context::background(), MILLION, first_deadline);
        let leaf = contexts.last().unwrap().clone();
        // Every layer below the first deadline reports it, in O(1).
        assert_eq!(
            leaf.deadline(),
            Some(first_deadline + Duration::from_nanos(2))
        );
        assert_eq!(contexts[1].deadline(), None);
        assert_eq!(leaf.value::<usize>(), Some(&(MILLION - 4)));
        handles[0].cancel();
        assert_eq!(leaf.err(), Some(Error::Canceled));
        // All but the first layer, a value over `background`.
        assert!(contexts[1..].iter().all(Context::is_done));
        drop(handles);
        drop(contexts);
        drop(leaf);
        // Quadratic (a walk up the chain per layer) took 50 s for 160,000 layers; linear takes
        // well under a second per million in release, a few in debug. A bound no loaded machine
        // misses, and no quadratic implementation meets.
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(120),
            "a million mixed layers took {took:?}"
        );

        // And without any cancel: dropping the handles cancels, dropping all unlinks.
        let (contexts, handles) = mixed_chain(&Context::background(), MILLION, first_deadline);
        drop(handles);
        assert!(contexts.last().unwrap().is_done());
        drop(contexts);
    });
}

#[test]
fn a_million_children_of_one_parent_cancel_and_drop() {
    on_small_stack(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let children: Vec<_> = (0..MILLION).map(|_| parent.with_cancel()).collect();
        cancel.cancel();
        assert!(children
            .iter()
            .all(|(c, _)| c.err() == Some(Error::Canceled)));
        drop(children);

        // And without any cancel: every child unlinks itself on drop.
        let (parent, _cancel) = Context::background().with_cancel();
        let children: Vec<_> = (0..MILLION).map(|_| parent.with_cancel()).collect();
        drop(children);
        assert!(!parent.is_done());
        let (late, _c) = parent.with_cancel();
        assert!(!late.is_done());
    });
}

#[test]
fn a_hundred_thousand_waiting_threads_and_tasks_all_wake() {
    let (ctx, cancel) = Context::background().with_cancel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..100_000)
        .map(|_| {
            let ctx = ctx.clone();
            rt.spawn(async move { ctx.done().await })
        })
        .collect();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.wait())
        })
        .collect();
    // Let every task register before the cancel.
    rt.block_on(async {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    });
    cancel.cancel();
    rt.block_on(async {
        for t in tasks {
            assert_eq!(t.await.unwrap(), Error::Canceled);
        }
    });
    for t in threads {
        assert_eq!(t.join().unwrap(), Error::Canceled);
    }
}
