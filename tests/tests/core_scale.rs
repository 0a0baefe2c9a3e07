//! Scale: a million contexts deep or wide create, cancel and drop on a 2 MiB stack, with no
//! recursion over the tree.

use std::thread;
use std::time::Duration;

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
